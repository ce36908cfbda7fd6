//! Conflicts met by the DAV replay (412 / 404 to a conditional write): both versions are kept
//! in a conflict record, then the account's `conflict_policy` decides what is in effect
//! (invariant 2). Also the "keep both" copy and the rewritten write of "local wins".

use serde_json::json;

use crate::children::AccountEnv;
use crate::error::ServiceError;
use crate::journal::DavOp;
use crate::journal::dav_op::{Delete, Put};
use crate::settings::ConflictPolicy;
use crate::store::StoreError;
use crate::store::records::{ConflictRecord, ItemRecord, JournalEntry};

fn db(e: StoreError) -> ServiceError {
    ServiceError::Config(format!("the local mirror: {e}"))
}

/// Keeps both sides, then lets the policy decide what is in effect; the loser stays in the record.
pub(super) fn conflict(
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
