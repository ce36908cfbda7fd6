//! What the DAV poller reads beyond the user's own homes: the calendar homes of people who made
//! the user their calendar proxy (CalendarServer calendar-proxy, read every `DELEGATION_REFRESH`),
//! and the directory collections searched by `gal.search`.

use std::time::Instant;

use url::Url;

use crate::children::AccountEnv;
use crate::children::dav::{DELEGATION_REFRESH, store_err};
use crate::dav::{DavClient, delegation};
use crate::error::ServiceError;

/// A calendar home of someone the user is a calendar proxy for.
pub(super) struct DelegatedHome {
    pub url: Url,
    /// Their principal path, shown as the collections' `owner`.
    pub owner: String,
    /// Read proxies may not write, whatever the listing says.
    pub read_only: bool,
}

/// The delegations (read again when due and stored for `calendar.delegations`), as the calendar
/// homes to list beside the user's own. A server that refuses the question keeps the last answer.
pub(super) async fn delegated_homes(
    env: &AccountEnv,
    client: &DavClient,
    principal: &Url,
    read: &mut Option<Instant>,
) -> Result<Vec<DelegatedHome>, ServiceError> {
    if read.is_none_or(|at| at.elapsed() >= DELEGATION_REFRESH) {
        match delegation::fetch(client, principal).await {
            Ok(record) => {
                tracing::debug!(
                    read_for = record.read_for.len(),
                    write_for = record.write_for.len(),
                    delegates = record.delegates.len(),
                    "delegations read"
                );
                env.store
                    .put_dav_delegations(&env.spec.name, &record)
                    .map_err(store_err)?;
            }
            Err(e @ ServiceError::Transient { .. }) => return Err(e),
            Err(e) => tracing::warn!(error = %e, "delegations (calendar-proxy) not readable"),
        }
        *read = Some(Instant::now());
    }
    let Some(record) = env.store.dav_delegations(&env.spec.name).map_err(store_err)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (people, read_only) in [(&record.read_for, true), (&record.write_for, false)] {
        for p in people {
            for home in &p.calendar_homes {
                match Url::parse(home) {
                    Ok(url) => {
                        // Their collections' hrefs resolve to this host (it may be another).
                        client.add_home(&url);
                        out.push(DelegatedHome {
                            url,
                            owner: p.principal.clone(),
                            read_only,
                        })
                    }
                    Err(e) => tracing::warn!(%home, error = %e, "delegated home skipped"),
                }
            }
        }
    }
    Ok(out)
}

/// `gal.search` over every directory collection of the account, up to `limit` entries.
pub(super) async fn search_directories(
    env: &AccountEnv,
    client: &DavClient,
    query: &str,
    limit: usize,
) -> Result<Vec<crate::dav::gal::Entry>, ServiceError> {
    let books = env
        .store
        .dav_collections_of(&env.spec.name, &["addressbook"])
        .map_err(store_err)?;
    let directories: Vec<_> = books.into_iter().filter(|b| b.directory).collect();
    if directories.is_empty() {
        return Err(ServiceError::Unsupported(
            "the server publishes no directory (global address list)".into(),
        ));
    }
    let mut out = Vec::new();
    for book in directories {
        let url = client.locate(&book.href)?;
        out.extend(crate::dav::gal::search(client, &url, query, limit - out.len()).await?);
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}
