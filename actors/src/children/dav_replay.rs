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

use serde_json::{Value, json};

use crate::children::AccountEnv;
use crate::dav::DavClient;
use crate::dav::client::WriteAnswer;
use crate::error::ServiceError;
use crate::journal::dav_op::{Delete, Put, is_dav_kind, same_content};
use crate::journal::{DavOp, MAX_ATTEMPTS};
use crate::settings::ConflictPolicy;
use crate::store::StoreError;
use crate::store::records::{ConflictRecord, ItemRecord, JournalEntry};

fn db(e: StoreError) -> ServiceError {
    ServiceError::Config(format!("the local mirror: {e}"))
}

/// Replays the pending writes of this child's service (`calendar` true: CalDAV).
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
    let mut started = 0;
    for entry in pending {
        let kind = entry
            .op
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        if ours(&entry.op) {
            progress.update(started, total);
            started += 1;
        }
        if !is_dav_kind(&kind) || kind.starts_with("calendar.") != calendar || entry.attempts >= MAX_ATTEMPTS
        {
            continue;
        }
        let op: DavOp = match serde_json::from_value(entry.op.clone()) {
            Ok(op) => op,
            Err(e) => {
                let error = format!("journal entry {} is damaged: {e}", entry.id);
                env.store.journal_failed(&account, entry.id, &error).map_err(db)?;
                env.store.journal_attempt(&account, entry.id).map_err(db)?;
                env.emit(
                    "op.failed",
                    json!({"op": entry.id, "kind": kind, "error": error, "final": true}),
                );
                continue;
            }
        };
        let Some(entry) = env.store.journal_attempt(&account, entry.id).map_err(db)? else {
            continue;
        };
        // To the host of the item's home, which may not be the configured one (iCloud).
        let url = client.locate(op.href())?;
        let answer = match &op {
            DavOp::CalendarPut(p) | DavOp::ContactsPut(p) => {
                client
                    .put_scheduled(
                        &url,
                        &p.body,
                        op.content_type(),
                        p.if_match.as_deref(),
                        p.schedule_tag.as_deref(),
                    )
                    .await
            }
            DavOp::CalendarDelete(d) | DavOp::ContactsDelete(d) => {
                client.delete(&url, d.if_match.as_deref()).await
            }
        };
        let outcome = match answer {
            Ok(WriteAnswer::Done { etag }) => done(env, &entry, &op, etag, None),
            Ok(WriteAnswer::Gone) if matches!(op, DavOp::CalendarDelete(_) | DavOp::ContactsDelete(_)) => {
                env.store.journal_done(&account, entry.id).map_err(db)?;
                env.emit(
                    "op.done",
                    json!({"op": entry.id, "kind": op.kind(), "href": op.href(), "moot": true,
                                           "reason": "already deleted on the server"}),
                );
                Ok(())
            }
            Ok(WriteAnswer::PreconditionFailed | WriteAnswer::Gone) => match client.get(&url).await {
                // The server holds what was sent: an earlier attempt landed and its answer was
                // lost (a crash or a dropped connection after the server's 2xx). Not a conflict.
                Ok(Some((body, etag))) if op.body().is_some_and(|sent| same_content(sent, &body)) => done(
                    env,
                    &entry,
                    &op,
                    etag,
                    Some("the server already had this version"),
                ),
                Ok(server) => conflict(env, &entry, &op, server, calendar),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        match outcome {
            Ok(()) => {}
            Err(e @ ServiceError::Transient { .. }) => {
                // Timeouts, dropped connections, 5xx, 408, 429: the attempt is given back.
                env.store
                    .journal_transient(&account, entry.id, &e.to_string())
                    .map_err(db)?;
                return Err(e);
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
    progress.update(total, total);
    Ok(())
}

fn done(
    env: &AccountEnv,
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
        let later_write = env
            .store
            .journal_pending(Some(account))
            .map_err(db)?
            .iter()
            .any(|e| e.id > entry.id && e.op.get("href").and_then(Value::as_str) == Some(p.href.as_str()));
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

/// Keeps both sides, then lets the policy decide what is in effect; the loser stays in the record.
fn conflict(
    env: &AccountEnv,
    entry: &JournalEntry,
    op: &DavOp,
    server: Option<(String, Option<String>)>,
    calendar: bool,
) -> Result<(), ServiceError> {
    let account = env.spec.name.clone();
    let collection = op.collection().to_owned();
    let href = op.href().to_owned();
    let local_body = match op {
        DavOp::CalendarPut(p) | DavOp::ContactsPut(p) => Some(p.body.clone()),
        _ => None,
    };
    let summary = summary_of(
        local_body.as_deref().or(server.as_ref().map(|s| s.0.as_str())),
        calendar,
        &href,
    );
    let policy = env.settings.conflict_policy;
    let copy = match (policy, &local_body) {
        (ConflictPolicy::KeepBoth, Some(body)) => Some(copy_op(op, body, calendar)),
        _ => None,
    };
    let applied = match policy {
        ConflictPolicy::ServerWins => "server",
        ConflictPolicy::LocalWins => "local",
        ConflictPolicy::KeepBoth => "both",
    };
    let record = ConflictRecord {
        id: 0,
        account: account.clone(),
        kind: if calendar { "calendar" } else { "contacts" }.into(),
        summary: summary.clone(),
        local: json!({"href": href, "collection": collection, "body": local_body, "deleted": local_body.is_none(),
                      "copy_href": copy.as_ref().map(DavOp::href)}),
        server: json!({"href": href, "collection": collection, "body": server.as_ref().map(|s| &s.0),
                       "etag": server.as_ref().and_then(|s| s.1.clone()), "deleted": server.is_none(),
                       "applied": applied}),
        detected: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
    };
    let id = env
        .store
        .record_conflict(&account, entry.id, record)
        .map_err(db)?;
    // What the mirror and the server hold from now on.
    let server_item = server
        .as_ref()
        .map(|(body, etag)| ItemRecord::parsed(&collection, &href, etag.clone(), body.clone(), calendar));
    match policy {
        ConflictPolicy::ServerWins => {
            env.store
                .set_dav_item(&account, &collection, &href, server_item.as_ref())
                .map_err(db)?;
        }
        ConflictPolicy::LocalWins => {
            let etag = server.as_ref().map(|s| s.1.clone().unwrap_or_else(|| "*".into()));
            let again = rewrite(op, etag);
            env.store
                .journal_dav(&account, &again, current(&again, calendar)?.as_ref())
                .map_err(db)?;
        }
        ConflictPolicy::KeepBoth => {
            env.store
                .set_dav_item(&account, &collection, &href, server_item.as_ref())
                .map_err(db)?;
            if let Some(copy) = &copy {
                env.store
                    .journal_dav(&account, copy, current(copy, calendar)?.as_ref())
                    .map_err(db)?;
            }
        }
    }
    tracing::warn!(account, conflict = id, %href, ?policy, "conflict: both versions kept");
    env.emit(
        "conflict",
        json!({"id": id, "summary": summary, "href": href, "applied": applied}),
    );
    env.emit(
        "op.done",
        json!({"op": entry.id, "kind": op.kind(), "href": href, "conflict": id}),
    );
    Ok(())
}

/// The same write again, now based on the server's current version.
pub fn rewrite(op: &DavOp, if_match: Option<String>) -> DavOp {
    match op.clone() {
        // Based on the server's version now: its etag is the condition, no older Schedule-Tag.
        DavOp::CalendarPut(p) => DavOp::CalendarPut(Put {
            if_match,
            schedule_tag: None,
            ..p
        }),
        DavOp::ContactsPut(p) => DavOp::ContactsPut(Put {
            if_match,
            schedule_tag: None,
            ..p
        }),
        DavOp::CalendarDelete(d) => DavOp::CalendarDelete(Delete { if_match, ..d }),
        DavOp::ContactsDelete(d) => DavOp::ContactsDelete(Delete { if_match, ..d }),
    }
}

/// A create of `body` under a new UID and href next to the original ("keep both"). A calendar
/// copy is the user's private one: without ORGANIZER and ATTENDEE (MEETINGS.md), so that a
/// scheduling server never invites anyone to it (RFC 6638 §3.2: it schedules any object that has
/// them) and the agent never sends it as iMIP.
pub fn copy_op(op: &DavOp, body: &str, calendar: bool) -> DavOp {
    let uid = format!("opconnect-copy-{}", nonce());
    let body = replace_uid(body, &uid);
    let body = if calendar { unscheduled(&body) } else { body };
    let ext = if calendar { "ics" } else { "vcf" };
    let put = Put {
        collection: op.collection().to_owned(),
        href: format!("{}{uid}.{ext}", op.collection()),
        body,
        if_match: None,
        schedule_tag: None,
    };
    DavOp::put(calendar, put)
}

/// Replaces every `UID:` property value (RFC 5545 §3.8.4.7, RFC 6350 §6.7.6), overrides included.
pub fn replace_uid(body: &str, uid: &str) -> String {
    body.split_inclusive('\n')
        .map(|line| {
            if line.len() >= 4 && line[..4].eq_ignore_ascii_case("UID:") {
                let ending = if line.ends_with("\r\n") {
                    "\r\n"
                } else if line.ends_with('\n') {
                    "\n"
                } else {
                    ""
                };
                format!("UID:{uid}{ending}")
            } else {
                line.to_owned()
            }
        })
        .collect()
}

/// `body` without its ORGANIZER and ATTENDEE lines (their SCHEDULE-* parameters go with them),
/// in every component; everything else keeps its bytes.
pub fn unscheduled(body: &str) -> String {
    let doc = crate::formats::lines::Doc::parse(body);
    doc.lines
        .iter()
        .filter(|l| !(l.is("ORGANIZER") || l.is("ATTENDEE")))
        .map(|l| l.raw.as_str())
        .collect()
}

fn nonce() -> String {
    use rand::Rng;
    format!("{:016x}", rand::rng().random::<u64>())
}

/// The mirror item a put will leave behind (`None` for a delete).
pub fn current(op: &DavOp, calendar: bool) -> Result<Option<ItemRecord>, ServiceError> {
    Ok(match op {
        DavOp::CalendarPut(p) | DavOp::ContactsPut(p) => Some(ItemRecord::parsed(
            &p.collection,
            &p.href,
            None,
            p.body.clone(),
            calendar,
        )),
        _ => None,
    })
}

fn summary_of(body: Option<&str>, calendar: bool, href: &str) -> String {
    let parsed = body.and_then(|b| {
        if calendar {
            crate::formats::ical::parse_event(b.as_bytes())
                .ok()
                .and_then(|e| e.summary)
        } else {
            crate::formats::vcard::parse_contact(b.as_bytes())
                .ok()
                .map(|c| c.name)
        }
    });
    parsed
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| href.rsplit('/').next().unwrap_or(href).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_replaced_everywhere_and_line_endings_kept() {
        let body = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:abc\r\nSUMMARY:x\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nuid:abc\r\nRECURRENCE-ID:20261124T090000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let out = replace_uid(body, "new");
        assert_eq!(out.matches("UID:new\r\n").count(), 2, "{out}");
        assert!(!out.contains("abc"));
        assert!(out.contains("SUMMARY:x\r\n"));
    }

    #[test]
    fn a_kept_copy_of_a_meeting_invites_nobody() {
        let body = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:m\r\nSUMMARY:Plan\r\nORGANIZER;SCHEDULE-STATUS=1.2:mailto:a@x\r\n\
ATTENDEE;PARTSTAT=ACCEPTED;SCHEDULE-AGENT=SERVER;CN=\"Bob,\r\n Jr\":mailto:b@x\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let op = DavOp::CalendarPut(Put {
            collection: "/c/".into(),
            href: "/c/m.ics".into(),
            body: body.into(),
            if_match: Some("\"1\"".into()),
            schedule_tag: None,
        });
        let DavOp::CalendarPut(copy) = copy_op(&op, body, true) else {
            panic!("a put")
        };
        assert!(
            !copy.body.contains("ORGANIZER") && !copy.body.contains("ATTENDEE"),
            "{}",
            copy.body
        );
        assert!(!copy.body.contains("Jr") && !copy.body.contains("UID:m\r\n"));
        assert!(
            copy.body.contains("SUMMARY:Plan\r\nEND:VEVENT\r\n"),
            "{}",
            copy.body
        );
    }

    #[test]
    fn a_copy_is_a_create_next_to_the_original() {
        let op = DavOp::ContactsPut(Put {
            collection: "/a/book/".into(),
            href: "/a/book/x.vcf".into(),
            body: "BEGIN:VCARD\nUID:x\nEND:VCARD\n".into(),
            if_match: Some("\"1\"".into()),
            schedule_tag: None,
        });
        let copy = copy_op(&op, "BEGIN:VCARD\nUID:x\nEND:VCARD\n", false);
        match copy {
            DavOp::ContactsPut(p) => {
                assert!(p.href.starts_with("/a/book/opconnect-copy-") && p.href.ends_with(".vcf"));
                assert!(p.if_match.is_none());
                assert!(!p.body.contains("UID:x\n"));
            }
            other => panic!("{other:?}"),
        }
    }
}
