//! The DAV poller child: OPTIONS to check the server speaks CalDAV or CardDAV, discovery of the
//! principal and homes, then a sync round per `dav_poll_interval` or on `sync`.
//!
//! ```text
//!   OPTIONS ─► discover (principal, homes) ─► online
//!   loop: PROPFIND Depth 1 per home ──► collections whose marker moved (stamp/token/ctag)
//!           └─► per moved collection: list changes ─► plan ─► multigets (4 in flight)
//!                 ─► one LMDB transaction per batch ─► removals (or held) ─► token, event
//!               (a new collection: one streaming query with the data and nothing else,
//!                dav::stream, written per batch as it arrives; its marker the next round)
//!         synced; sleep until the interval or `sync`
//! ```
//!
//! An unchanged account costs one PROPFIND per home per poll: the listing carries the marker
//! each collection is polled by (`dav::marker`): Radicale's getlastmodified, else the
//! sync-token, else the ctag. The first listing of a home asks for neither token nor ctag, as
//! nothing is mirrored to compare them with. The calendar homes of
//! people who made the user their calendar proxy are homes too; who they are is read again every
//! [`DELEGATION_REFRESH`], and at once on "sync now".

use std::collections::HashSet;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;
use tracing::Instrument;
use url::Url;

use crate::children::dav_first::{self, Pipeline};
use crate::children::dav_others::{DelegatedHome, delegated_homes, search_directories};
use crate::children::{AccountEnv, dav_replay, freebusy};
use crate::dav::discovery::{self, CollectionInfo, DavService};
use crate::dav::marker::{self, Marker};
use crate::dav::stream::{self, FirstPull};
use crate::dav::sync::{self, Fetched, Listing, MULTIGET_BATCH, MULTIGET_IN_FLIGHT};
use crate::dav::{DavClient, verify, window};
use crate::error::ServiceError;
use crate::meetings;
use crate::net::endpoint::Endpoint;
use crate::status::ServiceKind;
use crate::store::StoreError;
use crate::store::records::{CollectionRecord, ItemRecord};
use crate::supervise::{ChildCommand, ChildContext, ChildFactory};

/// How often the delegations (calendar-proxy) are read again. Grants change rarely, and an idle
/// poll should stay one PROPFIND per home; a restart or reconnect reads them at once.
pub const DELEGATION_REFRESH: Duration = Duration::from_secs(600);

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
    if service == DavService::CalDav {
        // RFC 6638: who delivers invitations, stored before the first replay writes a meeting.
        match meetings::server::discover(&client, &principal, &homes, &compliance).await {
            Ok(record) => {
                tracing::debug!(schedules = record.schedules(), "scheduling (RFC 6638) read");
                env.store
                    .put_dav_scheduling(&env.spec.name, &record)
                    .map_err(store_err)?;
            }
            Err(e @ ServiceError::Transient { .. }) => return Err(e),
            Err(e) => tracing::warn!(error = %e, "scheduling (RFC 6638) not readable"),
        }
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
    let mut polls: u64 = 0;
    loop {
        // Push before pull: journaled writes first, so a poll never undoes them.
        dav_replay::replay(&env, &client, calendar).await?;
        let delegated = if calendar {
            delegated_homes(&env, &client, &principal, &mut delegations_read).await?
        } else {
            Vec::new()
        };
        let span = tracing::info_span!("dav_round", account = %env.spec.name, service = ?service);
        polls += 1;
        poller.round(&homes, &delegated, polls).instrument(span).await?;
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
        token_untrusted_since: None,
        marker: None,
        stamp: None,
    }
}

pub(super) fn store_err(e: StoreError) -> ServiceError {
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

    /// One poll (`poll` counts from 1): list the homes (the user's, then the delegated ones), keep
    /// the collections the account chose, sync what moved, forget collections that are gone.
    async fn round(&self, homes: &[Url], delegated: &[DelegatedHome], poll: u64) -> Result<(), ServiceError> {
        let store = &self.env.store;
        let stored = store
            .dav_collections_of(self.account(), self.kinds())
            .map_err(store_err)?;
        // Ask only for the change markers this round compares (`dav::marker`).
        let listing = marker::home_listing(&stored);
        let mut seen = Vec::new();
        for home in homes {
            let answer = discovery::list_home(self.client, home, discovery::listing_body(listing)).await?;
            for info in discovery::listed_collections(&answer, self.service) {
                seen.push((answer.url.clone(), info));
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
        let listed_any = !seen.is_empty();
        let choice = &self.env.spec.sync;
        if poll == 1 {
            let listed: Vec<&CollectionInfo> = seen.iter().map(|(_, c)| c).collect();
            let unmatched = choice.unmatched(&listed);
            if !unmatched.is_empty() {
                tracing::info!(
                    ?unmatched,
                    "[account.sync] names that match none of these collections (they may be on the other DAV service)"
                );
            }
        }
        let unchosen: HashSet<String> = seen
            .iter()
            .filter(|(_, c)| !choice.chosen(c))
            .map(|(_, c)| c.href.clone())
            .collect();
        seen.retain(|(_, c)| choice.chosen(c));
        for (_, info) in seen.iter_mut() {
            // Server → client only: the API refuses writes to read-only collections up front.
            info.read_only |= choice.read_only(info);
        }
        let verify_round = choice.verifies(poll);
        let mut progress = self.env.dav_progress(self.service, "collections");
        for (i, (home, info)) in seen.iter().enumerate() {
            progress.update(i as u64, seen.len() as u64);
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
            let unchanged = old.is_some_and(|o| marker::unchanged(o, info));
            // A token's word is checked every few polls, even when it says nothing moved.
            let check = verify_round
                && self.window(info).is_none()
                && old.is_some_and(|o| o.sync_token.is_some() && o.token_untrusted_since.is_none());
            // A window moves with the days (and may be new since the last run): it is listed again
            // at start and on every check round even when nothing changed.
            let window_due = self.window(info).is_some() && (poll == 1 || verify_round);
            if unchanged && !check && !window_due {
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
            self.sync_collection(&url, info, old, check)
                .instrument(span)
                .await?;
        }
        progress.update(seen.len() as u64, seen.len() as u64);
        let present: HashSet<&str> = seen.iter().map(|(_, c)| c.href.as_str()).collect();
        let gone: Vec<&CollectionRecord> = stored
            .iter()
            .filter(|c| !present.contains(c.href.as_str()))
            .filter(|c| !c.owner.as_deref().is_some_and(|o| unlisted.contains(&o)))
            .collect();
        if !gone.is_empty() && !listed_any {
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
                if unchosen.contains(&c.href) {
                    tracing::info!(collection = %c.href, "collection not chosen in [account.sync]: dropped from the mirror");
                } else {
                    tracing::info!(collection = %c.href, "collection removed on the server");
                }
                store
                    .remove_dav_collection(self.account(), &c.href)
                    .map_err(store_err)?;
            }
        }
        Ok(())
    }

    /// Where the account's window of events starts for `info`, when it has one: calendars only,
    /// not task lists or address books.
    fn window(&self, info: &CollectionInfo) -> Option<chrono::DateTime<chrono::Utc>> {
        (self.service == DavService::CalDav && info.kind == "calendar")
            .then(|| self.env.spec.sync.window_start(chrono::Utc::now()))
            .flatten()
    }

    /// Mirrored events that a windowed listing left out because they ended before the window.
    fn left_window(
        &self,
        info: &CollectionInfo,
        stored: &[(String, Option<String>)],
        listing: &Listing,
    ) -> Result<Vec<String>, ServiceError> {
        let Some(start) = self.window(info).filter(|_| listing.complete) else {
            return Ok(Vec::new());
        };
        let present: HashSet<&str> = listing.present.iter().map(|(h, _)| h.as_str()).collect();
        let mut left = Vec::new();
        for (href, _) in stored.iter().filter(|(h, _)| !present.contains(h.as_str())) {
            let item = self
                .env
                .store
                .dav_item(self.account(), &info.href, href)
                .map_err(store_err)?;
            if item
                .and_then(|i| i.event)
                .is_some_and(|e| crate::dav::choice::ended_before(&e, start))
            {
                left.push(href.clone());
            }
        }
        Ok(left)
    }

    /// Hrefs with a write still in the journal (not yet answered by the server).
    fn journaled(&self) -> Result<HashSet<String>, ServiceError> {
        let pending = self
            .env
            .store
            .journal_pending(Some(self.account()))
            .map_err(store_err)?;
        Ok(pending
            .into_iter()
            .filter_map(|e| serde_json::from_value::<crate::journal::DavOp>(e.op).ok())
            .map(|op| op.href().to_owned())
            .collect())
    }

    /// What changed in `info`: the window's listing, else the token's delta (checked against an
    /// etag listing when `check`), else an etag listing. Also says since when the collection's
    /// token is not believed. With `trim`, the listing holds only what differs from `stored`
    /// (`dav::listing`): the caller plans against that same `stored`.
    async fn listing(
        &self,
        url: &Url,
        info: &CollectionInfo,
        old: Option<&CollectionRecord>,
        stored: &[(String, Option<String>)],
        check: bool,
        trim: bool,
    ) -> Result<(Listing, Option<String>), ServiceError> {
        let untrusted = old.and_then(|o| o.token_untrusted_since.clone());
        if let Some(start) = self.window(info)
            && let Some(mut listing) = window::list_window(self.client, url, &info.components, start).await?
        {
            // The marker seen before the query: a change after it moves it, and is seen next poll.
            listing.token = info.sync_token.clone();
            return Ok((listing, untrusted));
        }
        // A mirror from before hrefs had one form: a full listing replaces its odd hrefs.
        let odd_hrefs = stored.iter().any(|(h, _)| sync::normalize_href(h) != *h);
        let token = old.and_then(|o| o.sync_token.as_deref()).filter(|_| !odd_hrefs);
        let tokens = (info.sync_token.is_some() || info.reports_sync) && untrusted.is_none();
        // Compared with the mirror as it is read, so only what differs is held (issue 22), when
        // the plan is made against this same `stored` and no check needs the whole listing.
        let trim = (trim && !check).then_some(stored);
        let delta = sync::list_changes(self.client, url, token, tokens, trim).await?;
        if !check || delta.complete {
            return Ok((delta, untrusted));
        }
        let full = sync::list_etags(self.client, url, None).await?;
        let wrong = verify::differences(stored, &delta, &full);
        if wrong.is_empty() {
            tracing::debug!("sync-token checked against an etag listing: they agree");
            return Ok((delta, None));
        }
        let examples: Vec<String> = wrong.iter().take(3).map(ToString::to_string).collect();
        tracing::warn!(
            differences = wrong.len(),
            ?examples,
            "the server's sync-collection left out changes an etag listing shows: this collection is synced by listings from now on"
        );
        let since = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        self.env.emit(
            "dav.token_untrusted",
            json!({
                "collection": info.href,
                "differences": wrong.len(),
                "examples": examples,
            }),
        );
        Ok((full, Some(since)))
    }

    async fn sync_collection(
        &self,
        url: &Url,
        info: &CollectionInfo,
        old: Option<&CollectionRecord>,
        check: bool,
    ) -> Result<(), ServiceError> {
        let store = &self.env.store;
        let account = self.account();
        let stored = store.dav_etags(account, &info.href).map_err(store_err)?;
        let mut changes = Changes::default();
        let mut fetched_count = 0usize;
        // An empty mirror takes the bodies in one streaming query rather than many multigets
        // (issue 22). A collection seen for the first time is pulled by the query alone: its
        // marker (sync-token or stamp) is taken by the next round, whose listing from an empty
        // token is compared with what the query stored, so whatever changed after the query is
        // fetched or removed then (the stamp of this round's home listing, read before the query,
        // is kept but vouches for nothing until a round has listed the collection). A collection
        // mirrored empty that has filled since gets the listing beside the query, as the
        // progress of a long first pull counts against the listing's total. A calendar with a
        // past-days window is listed by its own query and fetched as before.
        let first_round = stored.is_empty()
            && old.and_then(|o| o.sync_token.as_deref()).is_none()
            && self.window(info).is_none();
        let mut listed = true;
        let (listing, untrusted, stored) = if first_round && old.is_none() {
            let mut progress = self
                .env
                .dav_progress(self.service, "items")
                .named("collection", &info.href);
            let first = self
                .first_pull(url, info, &mut changes, &mut |written| {
                    progress.update(written, written)
                })
                .await?;
            progress.finish();
            fetched_count = first.as_ref().map_or(0, |f| f.written);
            match first {
                // Nothing to compare: the plan below is empty, so the mirror is not read back.
                Some(f) if !f.truncated && f.missing.is_empty() => {
                    listed = false;
                    (Listing::default(), None, Vec::new())
                }
                // Refused, or members without their data: listed now (the plan fetches the rest).
                _ => {
                    let stored = store.dav_etags(account, &info.href).map_err(store_err)?;
                    let (listing, untrusted) = self.listing(url, info, old, &stored, false, true).await?;
                    (listing, untrusted, stored)
                }
            }
        } else if first_round {
            // Progress counts the items written against the listing's count, once it is known.
            let listed_count = std::sync::atomic::AtomicU64::new(0);
            let mut progress = self
                .env
                .dav_progress(self.service, "items")
                .named("collection", &info.href);
            let (listed, first) = futures::future::join(
                async {
                    // Not compared with `stored`: the query fills the mirror meanwhile.
                    let listed = self.listing(url, info, old, &stored, false, false).await;
                    if let Ok((l, _)) = &listed {
                        listed_count.store(l.members as u64, std::sync::atomic::Ordering::Relaxed);
                    }
                    listed
                },
                self.first_pull(url, info, &mut changes, &mut |written| {
                    let total = listed_count.load(std::sync::atomic::Ordering::Relaxed);
                    if total > 0 {
                        progress.update(written, total);
                    }
                }),
            )
            .await;
            if let Some(first) = first? {
                fetched_count = first.written;
            }
            let (listing, untrusted) = listed?;
            progress.update(fetched_count as u64, listing.members as u64);
            progress.finish();
            let stored = store.dav_etags(account, &info.href).map_err(store_err)?;
            (listing, untrusted, stored)
        } else {
            // A windowed calendar's listing must stay whole: `left_window` reads what it lacks.
            let trim = self.window(info).is_none();
            let (listing, untrusted) = self.listing(url, info, old, &stored, check, trim).await?;
            (listing, untrusted, stored)
        };
        let known: HashSet<&str> = stored.iter().map(|(h, _)| h.as_str()).collect();
        let left = self.left_window(info, &stored, &listing)?;
        if !left.is_empty() {
            // Not deletions on the server: the mass-deletion guard has no say over them.
            store
                .apply_dav_items(account, &info.href, &[], &left)
                .map_err(store_err)?;
            changes.removed += left.len();
            tracing::info!(
                events = left.len(),
                "events before the past_days window dropped from the mirror"
            );
        }
        // Copied only when the window dropped some (a copy of 20,000 etags was 3.7 MB of the heap).
        let filtered: Vec<(String, Option<String>)>;
        let in_window = if left.is_empty() {
            &stored[..]
        } else {
            filtered = stored
                .iter()
                .filter(|(h, _)| !left.contains(h))
                .cloned()
                .collect();
            &filtered[..]
        };
        let plan = sync::plan(in_window, &listing, &self.journaled()?);
        let mut progress = self
            .env
            .dav_progress(self.service, "items")
            .named("collection", &info.href);
        progress.total(plan.fetch.len() as u64);
        let mut results = futures::stream::iter(plan.fetch.chunks(MULTIGET_BATCH))
            .map(|batch| sync::multiget(self.client, url, self.service, batch))
            .buffer_unordered(MULTIGET_IN_FLIGHT);
        while let Some(batch) = results.next().await {
            let batch = batch?;
            progress.advance(batch.len() as u64);
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
        progress.finish();
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
            token_untrusted_since: untrusted.clone(),
            marker: listed.then(|| {
                // A token caught lying is no marker; Radicale's stamp does not depend on it.
                let token = listing.token.as_deref().or(info.sync_token.as_deref());
                Marker::after_round(
                    old.map(Marker::of),
                    token.filter(|_| untrusted.is_none()),
                    info.ctag.as_deref(),
                )
                .as_str()
                .to_owned()
            }),
            // Read before this round's listing or query, so it vouches for what they brought.
            stamp: info.stamp.clone().filter(|_| info.stamp_settled),
        };
        let marker = record.marker.clone().unwrap_or_else(|| "unknown".into());
        if listed && old.and_then(|o| o.marker.as_deref()) != record.marker.as_deref() {
            tracing::info!(%marker, "change marker chosen for this collection (dav::marker)");
        }
        if plan.held.is_empty() {
            store
                .apply_dav_items(account, &info.href, &[], &plan.remove)
                .map_err(store_err)?;
            changes.removed += plan.remove.len();
            // An untrusted token is not kept: the ctag (or, without one, a listing) decides.
            record.sync_token = listing.token.clone().filter(|_| untrusted.is_none());
        } else {
            // Invariant 5: keep the items and the old token; the next round sees the same removals
            // (no stamp kept, so that it looks again).
            record.stamp = None;
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
            %marker,
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

    /// The first pull of an empty collection in one streaming request, parsed and written in
    /// batches on other threads as it arrives (`dav::stream`, `dav_first`); `None` when the server
    /// refused it.
    async fn first_pull(
        &self,
        url: &Url,
        info: &CollectionInfo,
        changes: &mut Changes,
        written: &mut dyn FnMut(u64),
    ) -> Result<Option<FirstPull>, ServiceError> {
        let calendar = self.service == DavService::CalDav;
        let began = std::time::Instant::now();
        let (batches, mut done, pipeline) =
            Pipeline::start(self.env.store.clone(), self.account(), &info.href, calendar);
        let progress = async {
            while let Some(n) = done.recv().await {
                changes.added += n;
                written(changes.added as u64);
            }
        };
        // `progress` ends when the writer does, which is once the pull has dropped `batches`.
        let (read, ()) = futures::future::join(
            stream::first_pull(self.client, url, self.service, batches),
            progress,
        )
        .await;
        // A failed write is the cause of a pull that stopped sending.
        pipeline.finish().await?;
        // Read by benchmark 7: the collection's own first sync, from the query to the last commit.
        tracing::info!(
            collection = %info.href,
            items = changes.added,
            total_s = began.elapsed().as_secs_f64(),
            "first pull: the collection's query sent, read, parsed and written in total_s"
        );
        read
    }

    /// The mirror record of one fetched item: its bytes as sent, and its fields or its error.
    fn item_record(&self, collection: &str, f: Fetched) -> ItemRecord {
        dav_first::record(collection, f, self.service == DavService::CalDav)
    }
}
