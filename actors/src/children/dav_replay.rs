//! Replay of journaled calendar and contact writes by a DAV child, before each poll (push, then
//! pull), with conflicts kept whole (invariant 2).
//!
//! ```text
//!  PUT If-Match / If-None-Match: *  ─ 2xx ─► mirror gets the new etag, op.done
//!                                   └ 412 / 404 ─► GET the server's version ─► conflict record
//!                                       (both versions) ─► conflict_policy decides what the
//!                                       server and the mirror hold now ─► `conflict` event
//!                                   (unless the server holds exactly what was sent: a lost
//!                                    acknowledgement, done)
//!  timeout / 5xx / 408 / 429 ─► attempt given back, retry later; other 4xx ─► parked, op.failed final
//! ```
//!
//! Up to [`WINDOW`] writes are in flight at once, on different hrefs; answers are recorded in
//! journal order, and a write waits while an earlier write to its href is out.

use std::collections::{HashMap, HashSet, VecDeque};

use futures::StreamExt;
use futures::stream::FuturesOrdered;
use serde_json::{Value, json};
use url::Url;

pub use super::dav_conflict::{copy_op, current, replace_uid, rewrite, unscheduled};
use crate::children::AccountEnv;
use crate::dav::DavClient;
use crate::dav::client::WriteAnswer;
use crate::error::ServiceError;
use crate::journal::dav_op::{is_dav_kind, same_content};
use crate::journal::{DavOp, MAX_ATTEMPTS};
use crate::store::StoreError;
use crate::store::records::{ItemRecord, JournalEntry};

/// Writes in flight at once per service child. Writes to one href never overlap: the next one
/// starts only after the previous one's answer was recorded, so each item sees journal order.
pub const WINDOW: usize = 6;

fn db(e: StoreError) -> ServiceError {
    ServiceError::Config(format!("the local mirror: {e}"))
}

/// Replays the pending writes of this child's service (`calendar` true: CalDAV), up to
/// [`WINDOW`] at once on different hrefs. Answers are recorded in journal order as they come;
/// after a transient failure no new write starts, the ones in flight are still recorded, and
/// the error is returned (the child retries later).
pub async fn replay(env: &AccountEnv, client: &DavClient, calendar: bool) -> Result<(), ServiceError> {
    let account = env.spec.name.clone();
    let pending = env.store.journal_pending(Some(&account)).map_err(db)?;
    let ours = |op: &Value| {
        let kind = op.get("kind").and_then(Value::as_str).unwrap_or("");
        is_dav_kind(kind) && kind.starts_with("calendar.") == calendar
    };
    let service = if calendar {
        crate::dav::discovery::DavService::CalDav
    } else {
        crate::dav::discovery::DavService::CardDav
    };
    let mut progress = env.dav_progress(service, "operations");
    let total = pending.iter().filter(|e| ours(&e.op)).count() as u64;
    // Entries answered or set aside so far (for the progress).
    let mut settled = 0;
    let later = Later::of(&pending);
    let mut queue = VecDeque::new();
    for entry in pending {
        if !ours(&entry.op) {
            continue;
        }
        if entry.attempts >= MAX_ATTEMPTS {
            // Set aside for the user.
            settled += 1;
            continue;
        }
        match serde_json::from_value::<DavOp>(entry.op.clone()) {
            Ok(op) => queue.push_back((entry, op)),
            Err(e) => {
                settled += 1;
                let kind = entry.op.get("kind").and_then(Value::as_str).unwrap_or("");
                let error = format!("journal entry {} is damaged: {e}", entry.id);
                env.store.journal_failed(&account, entry.id, &error).map_err(db)?;
                env.store.journal_attempt(&account, entry.id).map_err(db)?;
                env.emit(
                    "op.failed",
                    json!({"op": entry.id, "kind": kind, "error": error, "final": true}),
                );
            }
        }
    }
    let mut in_flight = FuturesOrdered::new();
    let mut busy: HashSet<String> = HashSet::new();
    let mut stopped: Option<ServiceError> = None;
    loop {
        while stopped.is_none() && in_flight.len() < WINDOW {
            let Some((_, op)) = queue.front() else { break };
            if busy.contains(op.href()) {
                // The same item's earlier write is still out: wait for its answer.
                break;
            }
            let (entry, op) = queue.pop_front().expect("a front entry");
            // To the host of the item's home, which may not be the configured one (iCloud).
            let url = match client.locate(op.href()) {
                Ok(url) => url,
                Err(e) => {
                    stopped = Some(e);
                    break;
                }
            };
            // Counted durably before the request goes (invariant 6).
            let Some(entry) = env.store.journal_attempt(&account, entry.id).map_err(db)? else {
                continue;
            };
            let if_match = condition(env, &op)?;
            busy.insert(op.href().to_owned());
            in_flight.push_back(async move {
                let answer = send(client, &url, &op, if_match.as_deref()).await;
                (entry, op, url, answer)
            });
        }
        let Some((entry, op, url, answer)) = in_flight.next().await else {
            break;
        };
        busy.remove(op.href());
        progress.update(settled, total);
        settled += 1;
        let outcome = settle(env, &later, client, &entry, &op, &url, answer, calendar).await;
        match outcome {
            Ok(()) => {}
            Err(e @ ServiceError::Transient { .. }) => {
                // Timeouts, dropped connections, 5xx, 408, 429: the attempt is given back.
                env.store
                    .journal_transient(&account, entry.id, &e.to_string())
                    .map_err(db)?;
                stopped.get_or_insert(e);
            }
            Err(e @ ServiceError::Protocol(_)) => {
                // A definite refusal (4xx): trying again cannot change the answer. The write is
                // set aside for the user with its reason, never dropped (invariant 2).
                let error = e.to_string();
                env.store.journal_park(&account, entry.id, &error).map_err(db)?;
                env.emit(
                    "op.failed",
                    json!({"op": entry.id, "kind": op.kind(), "error": error,
                                             "attempts": entry.attempts, "final": true, "parked": true}),
                );
            }
            Err(e) => {
                let error = e.to_string();
                env.store.journal_failed(&account, entry.id, &error).map_err(db)?;
                env.emit("op.failed", json!({"op": entry.id, "kind": op.kind(), "error": error,
                                             "attempts": entry.attempts, "final": entry.attempts >= MAX_ATTEMPTS}));
            }
        }
    }
    match stopped {
        Some(e) => Err(e),
        None => {
            progress.update(total, total);
            Ok(())
        }
    }
}

/// Which items still have a write waiting after a given one (whose bytes are then newer than
/// what was just sent), without reading the whole journal at every answer: the ids per href of
/// the snapshot the replay started from, plus what the client journaled since, read as the
/// range of ids after the snapshot's last (usually empty).
struct Later {
    last: u64,
    ids: HashMap<String, Vec<u64>>,
}

impl Later {
    fn of(pending: &[JournalEntry]) -> Later {
        let mut ids: HashMap<String, Vec<u64>> = HashMap::new();
        for e in pending {
            if let Some(href) = e.op.get("href").and_then(Value::as_str) {
                ids.entry(href.to_owned()).or_default().push(e.id);
            }
        }
        Later {
            last: pending.iter().map(|e| e.id).max().unwrap_or(0),
            ids,
        }
    }

    fn waiting(&self, env: &AccountEnv, id: u64, href: &str) -> Result<bool, ServiceError> {
        if self.ids.get(href).is_some_and(|ids| ids.iter().any(|i| *i > id)) {
            return Ok(true);
        }
        let account = &env.spec.name;
        let (from, to) = (
            crate::store::keys::with_u64(account, self.last.saturating_add(1)),
            crate::store::keys::with_u64(account, u64::MAX),
        );
        let store = &env.store;
        let rtxn = store.env().read_txn().map_err(|e| db(e.into()))?;
        let raw = store.journal.remap_data_type::<heed::types::Bytes>();
        let range = (
            std::ops::Bound::Included(from.as_slice()),
            std::ops::Bound::Included(to.as_slice()),
        );
        for item in raw.range(&rtxn, &range).map_err(|e| db(e.into()))? {
            let (_, bytes) = item.map_err(|e| db(e.into()))?;
            let newer: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
            if newer["op"]["href"].as_str() == Some(href) {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// The `If-Match` a write goes with: the etag the client saw. A write made while an earlier
/// write to the same item was still waiting carries `*` ("the version my earlier write left"),
/// which some servers never match (Radicale 3 compares it as a literal etag and answers 412).
/// By the time it is sent the earlier write has been answered, and the mirror holds the etag
/// that answer gave: that precise etag is sent instead, which also catches an edit by someone
/// else in between (a conflict, as it should be).
fn condition(env: &AccountEnv, op: &DavOp) -> Result<Option<String>, ServiceError> {
    let if_match = match op {
        DavOp::CalendarPut(p) | DavOp::ContactsPut(p) => p.if_match.clone(),
        DavOp::CalendarDelete(d) | DavOp::ContactsDelete(d) => d.if_match.clone(),
    };
    if if_match.as_deref() != Some("*") {
        return Ok(if_match);
    }
    let known = env
        .store
        .dav_item(&env.spec.name, op.collection(), op.href())
        .map_err(db)?
        .and_then(|item| item.etag);
    Ok(known.or(if_match))
}

/// The write itself: one PUT or DELETE, conditional on `if_match`.
async fn send(
    client: &DavClient,
    url: &Url,
    op: &DavOp,
    if_match: Option<&str>,
) -> Result<WriteAnswer, ServiceError> {
    match op {
        DavOp::CalendarPut(p) | DavOp::ContactsPut(p) => {
            client
                .put_scheduled(
                    url,
                    &p.body,
                    op.content_type(),
                    if_match,
                    p.schedule_tag.as_deref(),
                )
                .await
        }
        DavOp::CalendarDelete(_) | DavOp::ContactsDelete(_) => client.delete(url, if_match).await,
    }
}

/// Records the server's answer to one write: done, moot, or a conflict kept whole.
#[allow(clippy::too_many_arguments)]
async fn settle(
    env: &AccountEnv,
    later: &Later,
    client: &DavClient,
    entry: &JournalEntry,
    op: &DavOp,
    url: &Url,
    answer: Result<WriteAnswer, ServiceError>,
    calendar: bool,
) -> Result<(), ServiceError> {
    match answer {
        Ok(WriteAnswer::Done { etag }) => done(env, later, entry, op, etag, None),
        Ok(WriteAnswer::Gone) if matches!(op, DavOp::CalendarDelete(_) | DavOp::ContactsDelete(_)) => {
            env.store.journal_done(&env.spec.name, entry.id).map_err(db)?;
            env.emit(
                "op.done",
                json!({"op": entry.id, "kind": op.kind(), "href": op.href(), "moot": true,
                       "reason": "already deleted on the server"}),
            );
            Ok(())
        }
        Ok(WriteAnswer::PreconditionFailed | WriteAnswer::Gone) => match client.get(url).await {
            // The server holds what was sent: an earlier attempt landed and its answer was
            // lost (a crash or a dropped connection after the server's 2xx). Not a conflict.
            Ok(Some((body, etag))) if op.body().is_some_and(|sent| same_content(sent, &body)) => done(
                env,
                later,
                entry,
                op,
                etag,
                Some("the server already had this version"),
            ),
            Ok(server) => super::dav_conflict::conflict(env, entry, op, server, calendar),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    }
}

fn done(
    env: &AccountEnv,
    later: &Later,
    entry: &JournalEntry,
    op: &DavOp,
    etag: Option<String>,
    reason: Option<&str>,
) -> Result<(), ServiceError> {
    let account = &env.spec.name;
    if let DavOp::CalendarPut(p) | DavOp::ContactsPut(p) = op {
        // The server now holds exactly what was sent. A poll that ran between the client's write
        // and this answer may have put the older server version back in the mirror: with only the
        // new etag beside it, no later poll would ever see the item as changed. So the mirror takes
        // the sent bytes too, unless a later write to the same item is still waiting (its bytes
        // are the newer ones). Without an ETag (RFC 4791 §5.3.4) the next poll fills it in.
        let later_write = later.waiting(env, entry.id, &p.href)?;
        let calendar = matches!(op, DavOp::CalendarPut(_));
        let item = match env.store.dav_item(account, &p.collection, &p.href).map_err(db)? {
            Some(mut item) if later_write => {
                item.etag = etag.clone();
                Some(item)
            }
            Some(_) | None if !later_write => Some(ItemRecord::parsed(
                &p.collection,
                &p.href,
                etag.clone(),
                p.body.clone(),
                calendar,
            )),
            _ => None,
        };
        if let Some(item) = item {
            env.store
                .set_dav_item(account, &p.collection, &p.href, Some(&item))
                .map_err(db)?;
        }
    }
    env.store.journal_done(account, entry.id).map_err(db)?;
    let mut event = json!({"op": entry.id, "kind": op.kind(), "href": op.href(), "etag": etag});
    if let Some(reason) = reason {
        event["reason"] = json!(reason);
    }
    env.emit("op.done", event);
    Ok(())
}
