//! The DAV poller child: OPTIONS to check the server speaks CalDAV or CardDAV, discovery of the
//! principal and homes, then a sync round per `dav_poll_interval` or on `sync`.
//!
//! ```text
//!   OPTIONS ─► discover (principal, homes) ─► online
//!   loop: PROPFIND Depth 1 per home ──► collections whose ctag/token moved
//!           └─► per moved collection: list changes ─► plan ─► multigets (4 in flight)
//!                 ─► one LMDB transaction per batch ─► removals (or held) ─► token, event
//!               (an empty mirror: one streaming query with the data instead of the multigets,
//!                dav::stream, written per batch as it arrives; multiget only for what it left out)
//!         synced; sleep until the interval or `sync`
//! ```
//!
//! An unchanged account costs one PROPFIND per home per poll: the listing carries every
//! collection's sync-token (or ctag, where a collection has no token). The first listing of a
//! home asks for neither, as nothing is mirrored to compare them with. The calendar homes of
//! people who made the user their calendar proxy are homes too; who they are is read again every
//! [`DELEGATION_REFRESH`], and at once on "sync now".

use std::collections::HashSet;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;
use tracing::Instrument;
use url::Url;

use crate::children::{AccountEnv, dav_replay, freebusy};
use crate::dav::discovery::{self, CollectionInfo, DavService};
use crate::dav::stream::{self, FirstPull};
use crate::dav::sync::{self, Fetched, MULTIGET_BATCH, MULTIGET_IN_FLIGHT};
use crate::dav::{DavClient, delegation};
use crate::error::ServiceError;
use crate::net::endpoint::Endpoint;
use crate::status::ServiceKind;
use crate::store::StoreError;
use crate::store::records::{CollectionRecord, ItemRecord};
use crate::supervise::{ChildCommand, ChildContext, ChildFactory};

/// How often the delegations (calendar-proxy) are read again. Grants change rarely, and an idle
/// poll should stay one PROPFIND per home; a restart or reconnect reads them at once.
pub const DELEGATION_REFRESH: Duration = Duration::from_secs(600);

/// A calendar home of someone the user is a calendar proxy for.
struct DelegatedHome {
    url: Url,
    /// Their principal path, shown as the collections' `owner`.
    owner: String,
    /// Read proxies may not write, whatever the listing says.
    read_only: bool,
}

pub fn factory(env: AccountEnv, endpoint: Endpoint, kind: ServiceKind) -> ChildFactory {
    Rc::new(move |cx| Box::pin(run(env.clone(), endpoint.clone(), kind, cx)))
}

async fn run(
    env: AccountEnv,
    endpoint: Endpoint,
    kind: ServiceKind,
    cx: ChildContext,
) -> Result<(), ServiceError> {
    let tls = env.tls.clone()?;
    let password = env.password().await?;
    let client = DavClient::new(
        &endpoint,
        &env.spec.username,
        password,
        tls,
        env.settings.connect_timeout,
    )?;
    let start = client.base().clone();
    let mut compliance = client.options(&start).await?;
    // RFC 4791 §5.1 / RFC 6352 §6.1: the compliance class a server must announce.
    let (class, service) = match kind {
        ServiceKind::Caldav => ("calendar-access", DavService::CalDav),
        _ => ("addressbook", DavService::CardDav),
    };
    let (principal, homes) = discovery::discover(&client, service).await?;
    // The class is owed only by resources that support the service: a server root that is not
    // one (Cyrus answers OPTIONS / without a DAV header) is asked again at the home it led to.
    if !compliance.has(class)
        && let Some(home) = homes.first()
    {
        compliance = client.options(home).await?;
    }
    if !compliance.has(class) {
        return Err(ServiceError::Unsupported(format!(
            "{start} does not announce `{class}` in its DAV header ({})",
            compliance.classes.join(", ")
        )));
    }
    let home_list: Vec<&str> = homes.iter().map(Url::as_str).collect();
    cx.online(json!({
        "principal": principal.as_str(),
        "homes": home_list,
        "dav": compliance.classes,
    }));
    let directories = match (service, &env.spec.gal) {
        (DavService::CardDav, Some(gal)) => discovery::configured_directory(&client, &gal.url).await?,
        _ => Vec::new(),
    };
    let poller = Poller {
        env: &env,
        client: &client,
        service,
        directories,
    };
    let calendar = service == DavService::CalDav;
    let mut delegations_read: Option<Instant> = None;
    loop {
        // Push before pull: journaled writes first, so a poll never undoes them.
        dav_replay::replay(&env, &client, calendar).await?;
        let delegated = if calendar {
            delegated_homes(&env, &client, &principal, &mut delegations_read).await?
        } else {
            Vec::new()
        };
        let span = tracing::info_span!("dav_round", account = %env.spec.name, service = ?service);
        poller.round(&homes, &delegated).instrument(span).await?;
        env.synced(&cx);
        tokio::select! {
            _ = tokio::time::sleep(env.settings.dav_poll_interval) => {}
            // Sync now: the user may be waiting for a grant just made, so read delegations too.
            _ = cx.woken() => delegations_read = None,
            command = cx.next_command() => match command {
                ChildCommand::FreeBusy { attendees, start, end, reply } if calendar => {
                    let result = freebusy::ask(&env, &client, &principal, &attendees, start, end).await;
                    let lost = matches!(result, Err(ServiceError::Transient { .. }));
                    let failure = result.as_ref().err().cloned();
                    let _ = reply.send(result);
                    if let (true, Some(e)) = (lost, failure) {
                        return Err(e);
                    }
                }
                ChildCommand::GalSearch { query, limit, reply } if !calendar => {
                    let result = search_directories(&env, &client, &query, limit).await;
                    let lost = matches!(result, Err(ServiceError::Transient { .. }));
                    let failure = result.as_ref().err().cloned();
                    let _ = reply.send(result);
                    if let (true, Some(e)) = (lost, failure) {
                        return Err(e);
                    }
                }
                other => {
                    if let Some(other) = other.fail(ServiceError::Unsupported("not a DAV request".into())) {
                        // Replay (new writes in the journal) is handled at the top of the loop.
                        tracing::trace!(?other, "DAV child woken by a command");
                    }
                }
            },
        }
    }
}

/// The delegations (read again when due and stored for `calendar.delegations`), as the calendar
/// homes to list beside the user's own. A server that refuses the question keeps the last answer.
async fn delegated_homes(
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
                    Ok(url) => out.push(DelegatedHome {
                        url,
                        owner: p.principal.clone(),
                        read_only,
                    }),
                    Err(e) => tracing::warn!(%home, error = %e, "delegated home skipped"),
                }
            }
        }
    }
    Ok(out)
}

/// `gal.search` over every directory collection of the account, up to `limit` entries.
async fn search_directories(
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
        let url = client
            .base()
            .join(&book.href)
            .map_err(|e| ServiceError::Protocol(format!("bad href {}: {e}", book.href)))?;
        out.extend(crate::dav::gal::search(client, &url, query, limit - out.len()).await?);
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}

struct Poller<'a> {
    env: &'a AccountEnv,
    client: &'a DavClient,
    service: DavService,
    /// Directory collections from the account's `gal` setting, listed beside the homes'.
    directories: Vec<CollectionInfo>,
}

/// Counts of one collection's round, for `calendar.changed` / `contacts.changed`.
#[derive(Default)]
struct Changes {
    added: usize,
    changed: usize,
    removed: usize,
}

/// The mirror record of a directory collection: its description, no items and no sync state.
fn directory_record(info: &CollectionInfo) -> CollectionRecord {
    CollectionRecord {
        href: info.href.clone(),
        name: info.name.clone(),
        color: None,
        components: Vec::new(),
        kind: info.kind.clone(),
        read_only: true,
        directory: true,
        owner: info.owner.clone(),
        ctag: None,
        sync_token: None,
        held: Vec::new(),
        held_since: None,
    }
}

fn store_err(e: StoreError) -> ServiceError {
    ServiceError::Config(format!("the local mirror: {e}"))
}

impl Poller<'_> {
    fn account(&self) -> &str {
        &self.env.spec.name
    }

    fn kinds(&self) -> &'static [&'static str] {
        match self.service {
            DavService::CalDav => &["calendar", "tasks"],
            DavService::CardDav => &["addressbook"],
        }
    }

    /// One poll: list the homes (the user's, then the delegated ones), sync what moved, forget
    /// collections that are gone.
    async fn round(&self, homes: &[Url], delegated: &[DelegatedHome]) -> Result<(), ServiceError> {
        let store = &self.env.store;
        let stored = store
            .dav_collections_of(self.account(), self.kinds())
            .map_err(store_err)?;
        // Ask only for the change markers this round compares (see the listings' docs).
        let listing = if stored.is_empty() {
            discovery::PROPFIND_NEW_COLLECTIONS
        } else if stored.iter().all(|c| c.sync_token.is_some()) {
            discovery::PROPFIND_COLLECTIONS_SYNC_TOKEN
        } else {
            discovery::PROPFIND_COLLECTIONS
        };
        let mut seen = Vec::new();
        for home in homes {
            let (answered, ms) = self.client.propfind(home, "1", listing).await?;
            for info in discovery::collections(&ms, &answered, self.service) {
                seen.push((answered.clone(), info));
            }
        }
        for info in &self.directories {
            seen.push((self.client.base().clone(), info.clone()));
        }
        // Owners whose home could not be listed this round: their collections are kept.
        let mut unlisted: Vec<&str> = Vec::new();
        for d in delegated {
            let (answered, ms) = match self
                .client
                .propfind(&d.url, "1", discovery::PROPFIND_COLLECTIONS)
                .await
            {
                Ok(answer) => answer,
                Err(e @ ServiceError::Transient { .. }) => return Err(e),
                Err(e) => {
                    tracing::warn!(home = %d.url, error = %e, "delegated calendar home not listed");
                    unlisted.push(&d.owner);
                    continue;
                }
            };
            for mut info in discovery::collections(&ms, &answered, self.service) {
                info.owner = Some(d.owner.clone());
                info.read_only |= d.read_only;
                seen.push((answered.clone(), info));
            }
        }
        for (home, info) in &seen {
            let old = stored.iter().find(|c| c.href == info.href);
            if info.directory {
                // A directory is searched on the server (gal.search), never downloaded whole.
                let record = directory_record(info);
                if old != Some(&record) {
                    store
                        .put_dav_collections(self.account(), &[record])
                        .map_err(store_err)?;
                }
                continue;
            }
            let unchanged = old.is_some_and(|o| {
                (o.ctag.is_some() && o.ctag == info.ctag)
                    || (o.sync_token.is_some() && o.sync_token == info.sync_token)
            });
            if unchanged {
                // Name, color and rights may change without touching the content.
                let o = old.expect("checked");
                if o.name != info.name || o.color != info.color || o.read_only != info.read_only {
                    let mut r = o.clone();
                    (r.name, r.color, r.read_only) = (info.name.clone(), info.color.clone(), info.read_only);
                    store
                        .put_dav_collections(self.account(), &[r])
                        .map_err(store_err)?;
                }
                continue;
            }
            let url = home.join(&info.href).map_err(|e| {
                ServiceError::Protocol(format!("{home}: bad collection href {}: {e}", info.href))
            })?;
            let span = tracing::info_span!("collection", collection = %info.href);
            self.sync_collection(&url, info, old).instrument(span).await?;
        }
        let present: HashSet<&str> = seen.iter().map(|(_, c)| c.href.as_str()).collect();
        let gone: Vec<&CollectionRecord> = stored
            .iter()
            .filter(|c| !present.contains(c.href.as_str()))
            .filter(|c| !c.owner.as_deref().is_some_and(|o| unlisted.contains(&o)))
            .collect();
        if !gone.is_empty() && seen.is_empty() {
            // Invariant 5 for whole collections: a home that suddenly lists nothing is held.
            tracing::warn!(
                collections = gone.len(),
                "home lists no collections any more: not applied"
            );
            self.env.emit(
                "dav.held",
                json!({
                    "collections": gone.iter().map(|c| &c.href).collect::<Vec<_>>(),
                    "reason": "home listed no collections",
                }),
            );
        } else {
            for c in gone {
                tracing::info!(collection = %c.href, "collection removed on the server");
                store
                    .remove_dav_collection(self.account(), &c.href)
                    .map_err(store_err)?;
            }
        }
        Ok(())
    }

    async fn sync_collection(
        &self,
        url: &Url,
        info: &CollectionInfo,
        old: Option<&CollectionRecord>,
    ) -> Result<(), ServiceError> {
        let store = &self.env.store;
        let account = self.account();
        let stored = store.dav_etags(account, &info.href).map_err(store_err)?;
        // A mirror from before hrefs had one form: a full listing replaces its odd hrefs.
        let odd_hrefs = stored.iter().any(|(h, _)| sync::normalize_href(h) != *h);
        let token = old.and_then(|o| o.sync_token.as_deref()).filter(|_| !odd_hrefs);
        let tokens = info.sync_token.is_some() || info.reports_sync;
        let mut changes = Changes::default();
        let mut fetched_count = 0usize;
        // An empty mirror takes the bodies in one streaming query rather than many multigets
        // (issue 22), sent beside the listing that gives the token, so the round lasts the longer
        // of the two instead of their sum. The two answers may describe different moments, so
        // the plan compares the listing with what the query stored: a member that changed,
        // appeared or went away in between is fetched or removed as in any later round.
        let (listing, stored) = if stored.is_empty() && token.is_none() {
            let (listing, first) = futures::future::join(
                sync::list_changes(self.client, url, None, tokens),
                self.first_pull(url, info, &mut changes),
            )
            .await;
            if let Some(first) = first? {
                fetched_count = first.written;
            }
            let listing = listing?;
            (listing, store.dav_etags(account, &info.href).map_err(store_err)?)
        } else {
            (sync::list_changes(self.client, url, token, tokens).await?, stored)
        };
        let plan = sync::plan(&stored, &listing);
        let known: HashSet<&str> = stored.iter().map(|(h, _)| h.as_str()).collect();
        let mut results = futures::stream::iter(plan.fetch.chunks(MULTIGET_BATCH))
            .map(|batch| sync::multiget(self.client, url, self.service, batch))
            .buffer_unordered(MULTIGET_IN_FLIGHT);
        while let Some(batch) = results.next().await {
            let batch = batch?;
            let mut put = Vec::with_capacity(batch.len());
            let mut vanished = Vec::new();
            for f in batch {
                if f.body.is_none() {
                    // Gone between the listing and the multiget (RFC 4791 §7.9: 404 per href).
                    if known.contains(f.href.as_str()) {
                        vanished.push(f.href);
                    }
                    continue;
                }
                if known.contains(f.href.as_str()) {
                    changes.changed += 1;
                } else {
                    changes.added += 1;
                }
                put.push(self.item_record(&info.href, f));
            }
            fetched_count += put.len();
            changes.removed += vanished.len();
            store
                .apply_dav_items(account, &info.href, &put, &vanished)
                .map_err(store_err)?;
        }
        drop(results);
        let mut record = CollectionRecord {
            href: info.href.clone(),
            name: info.name.clone(),
            color: info.color.clone(),
            components: info.components.clone(),
            kind: info.kind.clone(),
            read_only: info.read_only,
            directory: info.directory,
            owner: info.owner.clone(),
            ctag: info.ctag.clone(),
            sync_token: old.and_then(|o| o.sync_token.clone()),
            held: Vec::new(),
            held_since: None,
        };
        if plan.held.is_empty() {
            store
                .apply_dav_items(account, &info.href, &[], &plan.remove)
                .map_err(store_err)?;
            changes.removed += plan.remove.len();
            record.sync_token = listing.token.clone();
        } else {
            // Invariant 5: keep the items and the old token; the next round sees the same removals.
            let newly = old.is_none_or(|o| o.held != plan.held);
            record.held_since = old
                .and_then(|o| o.held_since.clone())
                .filter(|_| !newly)
                .or_else(|| {
                    Some(humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string())
                });
            record.held = plan.held.clone();
            tracing::warn!(
                held = plan.held.len(),
                items = stored.len(),
                "server would remove most of this collection: removals held, mirror kept"
            );
            if newly {
                self.env.emit(
                    "dav.held",
                    json!({
                        "collection": info.href,
                        "kind": info.kind,
                        "removals": plan.held.len(),
                        "items": stored.len(),
                    }),
                );
            }
        }
        store.put_dav_collections(account, &[record]).map_err(store_err)?;
        tracing::info!(
            fetched = fetched_count,
            added = changes.added,
            changed = changes.changed,
            removed = changes.removed,
            "collection synced"
        );
        if changes.added + changes.changed + changes.removed > 0 {
            let (topic, key) = match self.service {
                DavService::CalDav => ("calendar.changed", "calendar"),
                DavService::CardDav => ("contacts.changed", "book"),
            };
            self.env.emit(
                topic,
                json!({
                    key: info.href,
                    "collection": info.href,
                    "cursor": store.dav_feed_cursor(account, &info.href).map_err(store_err)?,
                    "added": changes.added,
                    "changed": changes.changed,
                    "removed": changes.removed,
                }),
            );
        }
        Ok(())
    }

    /// The first pull of an empty collection in one streaming request, written in batches as it
    /// arrives (`dav::stream`); `None` when the server refused it.
    async fn first_pull(
        &self,
        url: &Url,
        info: &CollectionInfo,
        changes: &mut Changes,
    ) -> Result<Option<FirstPull>, ServiceError> {
        let (store, account) = (&self.env.store, self.account());
        stream::first_pull(self.client, url, self.service, |batch| {
            let put: Vec<ItemRecord> = batch
                .into_iter()
                .map(|f| self.item_record(&info.href, f))
                .collect();
            changes.added += put.len();
            store
                .apply_dav_items(account, &info.href, &put, &[])
                .map_err(store_err)
        })
        .await
    }

    /// The mirror record of one fetched item: its bytes as sent, and its fields or its error.
    fn item_record(&self, collection: &str, f: Fetched) -> ItemRecord {
        let record = ItemRecord::parsed(
            collection,
            &f.href,
            f.etag,
            f.body.unwrap_or_default(),
            self.service == DavService::CalDav,
        );
        if let Some(error) = &record.error {
            tracing::warn!(href = %record.href, %error, "item kept with its error (invariant 4)");
        }
        record
    }
}
