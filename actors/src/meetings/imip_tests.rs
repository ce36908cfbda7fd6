//! Tests of which iMIP messages a write sends.

use chrono::TimeZone;

use super::*;

const EVENT: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//T//EN\r\nBEGIN:VEVENT\r\nUID:u1\r\n\
DTSTAMP:20261101T000000Z\r\nDTSTART:20261210T090000Z\r\nDTEND:20261210T100000Z\r\nSUMMARY:Sync\r\n\
ORGANIZER:mailto:alice@localhost\r\nATTENDEE;PARTSTAT=ACCEPTED:mailto:alice@localhost\r\n\
ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:bob@localhost\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 3, 14, 0, 0).unwrap()
}

fn mails(ops: &[MailOp]) -> Vec<(String, String)> {
    ops.iter()
        .map(|op| {
            let MailOp::Send { raw, message_id, .. } = op else {
                panic!("not a send")
            };
            let raw = base64::engine::general_purpose::STANDARD.decode(raw).unwrap();
            let text = String::from_utf8(raw.clone()).unwrap();
            assert!(text.contains(&format!("Message-ID: {}\r\n", message_id.as_ref().unwrap())));
            let (method, _) = itip::calendar_part(&raw).unwrap();
            let to = crate::smtp::addressing(&raw).unwrap().recipients.join(",");
            (method, to)
        })
        .collect()
}

#[test]
fn creating_a_meeting_invites_the_others() {
    let (body, sends) = on_put("Alice@localhost", None, EVENT, now());
    assert_eq!(body, EVENT);
    assert_eq!(
        mails(&sends),
        [("REQUEST".to_owned(), "bob@localhost".to_owned())]
    );
}

#[test]
fn only_significant_changes_are_sent_and_they_raise_the_sequence() {
    let retitled = EVENT.replace("SUMMARY:Sync", "SUMMARY:Sync!");
    assert!(
        on_put("alice@localhost", Some(EVENT), &retitled, now())
            .1
            .is_empty()
    );
    let moved = EVENT.replace("T090000Z", "T083000Z");
    let (body, sends) = on_put("alice@localhost", Some(EVENT), &moved, now());
    assert_eq!(itip::meeting(&body).unwrap().sequence, 1);
    assert_eq!(
        mails(&sends),
        [("REQUEST".to_owned(), "bob@localhost".to_owned())]
    );
    let dropped = EVENT.replace(
        "ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:bob@localhost\r\n",
        "",
    );
    let (_, sends) = on_put("alice@localhost", Some(EVENT), &dropped, now());
    assert_eq!(mails(&sends), [("CANCEL".to_owned(), "bob@localhost".to_owned())]);
}

#[test]
fn deleting_or_cancelling_sends_a_cancel_once() {
    assert_eq!(
        mails(&on_delete("alice@localhost", EVENT, now())),
        [("CANCEL".to_owned(), "bob@localhost".to_owned())]
    );
    let cancelled = itip::cancelled(EVENT);
    let (_, sends) = on_put("alice@localhost", Some(EVENT), &cancelled, now());
    assert_eq!(mails(&sends), [("CANCEL".to_owned(), "bob@localhost".to_owned())]);
    assert!(on_delete("alice@localhost", &cancelled, now()).is_empty());
}

#[test]
fn an_attendee_s_writes_send_nothing_and_their_reply_goes_to_the_organizer() {
    assert!(on_put("bob@localhost", None, EVENT, now()).1.is_empty());
    assert!(on_delete("bob@localhost", EVENT, now()).is_empty());
    let sent = reply("bob@localhost", EVENT, "DECLINED", Some("no"), now()).unwrap();
    assert_eq!(
        mails(&[sent]),
        [("REPLY".to_owned(), "alice@localhost".to_owned())]
    );
}

#[test]
fn an_arrived_request_is_an_invitation() {
    let request = itip::request(EVENT, now());
    let inv = invitation(
        "mail:INBOX:1:2".into(),
        "REQUEST",
        &request,
        "bob@localhost",
        None,
    )
    .unwrap();
    assert_eq!(inv.uid, "u1");
    assert_eq!(inv.start, "2026-12-10T09:00:00Z");
    assert_eq!(inv.end.as_deref(), Some("2026-12-10T10:00:00Z"));
    assert_eq!(inv.organizer, "alice@localhost");
    assert_eq!(inv.partstat, "NEEDS-ACTION");
    assert!(!stored_copy(&request).contains("METHOD"));
}
