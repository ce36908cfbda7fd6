//! Reading the account's calendar delegations from the server (calendar-proxy, see `proxy`):
//! one PROPFIND of the user's principal with its proxy groups, then one per linked principal
//! for their name, address and calendar homes.
//!
//! ```text
//!   PROPFIND principal Depth 1 ──► links: read_for, write_for, delegates (principal paths)
//!   per linked principal: PROPFIND Depth 0 ──► name, mailto, calendar-home-set
//!        └─ refused (403, 404): listed by path only; its principal is taken as its home
//! ```
//!
//! Linked principals are paths joined to the answering URL (same host); their calendar homes
//! are links that pass [`DavClient::named`] (the credential rule) or are skipped.

use url::Url;

use crate::dav::DavClient;
use crate::dav::proxy::{self, Access, PrincipalCard};
use crate::error::ServiceError;
use crate::store::records::{DelegationsRecord, PrincipalRecord};

/// The delegations of the user whose principal is `principal`.
pub async fn fetch(client: &DavClient, principal: &Url) -> Result<DelegationsRecord, ServiceError> {
    let (answered, ms) = client
        .propfind(principal, "1", proxy::PROPFIND_DELEGATION)
        .await?;
    let links = proxy::links(&ms, &answered);
    let mut out = DelegationsRecord {
        supported: links.supported,
        checked: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        ..DelegationsRecord::default()
    };
    for (path, access) in links
        .read_for
        .iter()
        .map(|p| (p, Access::Read))
        .chain(links.write_for.iter().map(|p| (p, Access::Write)))
    {
        let record = describe(client, &answered, path, access, true).await?;
        match access {
            Access::Read => out.read_for.push(record),
            Access::Write => out.write_for.push(record),
        }
    }
    for (path, access) in &links.delegates {
        out.delegates
            .push(describe(client, &answered, path, *access, false).await?);
    }
    Ok(out)
}

/// One linked principal, with its calendar homes when `homes` (someone the user acts for).
async fn describe(
    client: &DavClient,
    base: &Url,
    path: &str,
    access: Access,
    homes: bool,
) -> Result<PrincipalRecord, ServiceError> {
    let url = base
        .join(path)
        .map_err(|e| ServiceError::Protocol(format!("{base}: bad principal href {path}: {e}")))?;
    let (answered, card) = match client.propfind(&url, "0", proxy::PROPFIND_PRINCIPAL_CARD).await {
        Ok((answered, ms)) => {
            let card = proxy::card(&ms, &answered);
            (answered, card)
        }
        Err(e @ (ServiceError::Transient { .. } | ServiceError::Auth(_) | ServiceError::Tls(_))) => {
            return Err(e);
        }
        Err(e) => {
            tracing::warn!(principal = %path, error = %e, "delegation: principal not readable");
            (url.clone(), PrincipalCard::default())
        }
    };
    let calendar_homes = match (homes, card.calendar_homes.is_empty()) {
        (false, _) => Vec::new(),
        // A principal without a home set is its own home (as in discovery).
        (true, true) => vec![url.to_string()],
        (true, false) => {
            let mut homes = Vec::new();
            for home in &card.calendar_homes {
                match client.named(&answered, home.clone()) {
                    Ok(home) => homes.push(home.to_string()),
                    Err(e) => {
                        tracing::warn!(principal = %path, error = %e, "delegation: calendar home skipped")
                    }
                }
            }
            homes
        }
    };
    Ok(PrincipalRecord {
        principal: url.path().to_owned(),
        name: card.name,
        email: card.email,
        calendar_homes,
        access: access.as_str().to_owned(),
    })
}
