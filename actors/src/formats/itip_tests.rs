//! Tests of iTIP objects and iMIP mail: exact bytes where RFC 5546 says what a method contains.

use chrono::TimeZone;

use super::*;

const STORED: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//EN\r\n\
BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nBEGIN:STANDARD\r\nDTSTART:19701025T030000\r\n\
TZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n\
BEGIN:VEVENT\r\nUID:m1@example.org\r\nDTSTAMP:20261101T000000Z\r\nSEQUENCE:2\r\n\
DTSTART;TZID=Europe/Berlin:20261210T100000\r\nDTEND;TZID=Europe/Berlin:20261210T110000\r\n\
SUMMARY:Planning\r\nLOCATION:Room 1\r\nORGANIZER;CN=Alice:mailto:alice@example.org\r\n\
ATTENDEE;CN=Alice;PARTSTAT=ACCEPTED:mailto:alice@example.org\r\n\
ATTENDEE;CN=Bob;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:Bob@Example.org\r\n\
ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:carol@example.org\r\n\
BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT15M\r\nDESCRIPTION:x\r\nEND:VALARM\r\n\
END:VEVENT\r\nEND:VCALENDAR\r\n";

const TZ: &str = "BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nBEGIN:STANDARD\r\nDTSTART:19701025T030000\r\n\
TZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 3, 14, 0, 0).unwrap()
}

#[test]
fn a_stored_event_is_read_as_a_meeting() {
    let m = meeting(STORED).unwrap();
    assert_eq!(m.uid, "m1@example.org");
    assert_eq!(m.sequence, 2);
    assert_eq!(m.method, None);
    assert!(m.organized_by("MAILTO:ALICE@example.org"));
    assert_eq!(
        m.others("alice@example.org"),
        ["Bob@Example.org", "carol@example.org"]
    );
    assert_eq!(m.partstat_of("bob@example.org"), Some("NEEDS-ACTION"));
    assert_eq!(m.location.as_deref(), Some("Room 1"));
}

#[test]
fn a_request_is_the_whole_object_with_method_and_dtstamp_and_no_alarm() {
    let expected = format!(
        "BEGIN:VCALENDAR\r\nPRODID:-//opconnect//iTIP//EN\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\n{TZ}\
BEGIN:VEVENT\r\nUID:m1@example.org\r\nDTSTAMP:20261203T140000Z\r\nSEQUENCE:2\r\n\
DTSTART;TZID=Europe/Berlin:20261210T100000\r\nDTEND;TZID=Europe/Berlin:20261210T110000\r\n\
SUMMARY:Planning\r\nLOCATION:Room 1\r\nORGANIZER;CN=Alice:mailto:alice@example.org\r\n\
ATTENDEE;CN=Alice;PARTSTAT=ACCEPTED:mailto:alice@example.org\r\n\
ATTENDEE;CN=Bob;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:Bob@Example.org\r\n\
ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:carol@example.org\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    );
    assert_eq!(request(STORED, now()), expected);
}

#[test]
fn a_cancel_names_the_attendees_told_and_raises_nothing_itself() {
    let to = ["bob@example.org".to_owned()];
    let expected = format!(
        "BEGIN:VCALENDAR\r\nPRODID:-//opconnect//iTIP//EN\r\nVERSION:2.0\r\nMETHOD:CANCEL\r\n{TZ}\
BEGIN:VEVENT\r\nUID:m1@example.org\r\n\
DTSTART;TZID=Europe/Berlin:20261210T100000\r\nDTEND;TZID=Europe/Berlin:20261210T110000\r\n\
SUMMARY:Planning\r\nORGANIZER;CN=Alice:mailto:alice@example.org\r\n\
ATTENDEE;CN=Bob;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:Bob@Example.org\r\n\
SEQUENCE:3\r\nDTSTAMP:20261203T140000Z\r\nSTATUS:CANCELLED\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    );
    assert_eq!(cancel(STORED, 3, Some(&to), now()).unwrap(), expected);
    let all = cancel(STORED, 3, None, now()).unwrap();
    assert_eq!(all.matches("ATTENDEE").count(), 3);
}

#[test]
fn a_reply_carries_only_the_replying_attendee() {
    let expected = format!(
        "BEGIN:VCALENDAR\r\nPRODID:-//opconnect//iTIP//EN\r\nVERSION:2.0\r\nMETHOD:REPLY\r\n{TZ}\
BEGIN:VEVENT\r\nUID:m1@example.org\r\nSEQUENCE:2\r\n\
DTSTART;TZID=Europe/Berlin:20261210T100000\r\nDTEND;TZID=Europe/Berlin:20261210T110000\r\n\
SUMMARY:Planning\r\nORGANIZER;CN=Alice:mailto:alice@example.org\r\n\
ATTENDEE;CN=Bob;PARTSTAT=DECLINED:mailto:Bob@Example.org\r\n\
COMMENT:Away\\, sorry\r\nDTSTAMP:20261203T140000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    );
    assert_eq!(
        reply(STORED, "bob@example.org", "DECLINED", Some("Away, sorry"), now()).unwrap(),
        expected
    );
    let stranger = reply(STORED, "dave@example.org", "ACCEPTED", None, now()).unwrap();
    assert!(stranger.contains("ATTENDEE;PARTSTAT=ACCEPTED:mailto:dave@example.org\r\n"));
    assert!(!stranger.contains("COMMENT"));
}

#[test]
fn partstat_and_cancellation_edit_only_their_lines() {
    let out = with_partstat(STORED, "mailto:bob@example.org", "DECLINED");
    assert_eq!(
        out,
        STORED.replace(
            "ATTENDEE;CN=Bob;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:Bob@Example.org",
            "ATTENDEE;CN=Bob;PARTSTAT=DECLINED:mailto:Bob@Example.org"
        )
    );
    assert_eq!(
        meeting(&out).unwrap().partstat_of("bob@example.org"),
        Some("DECLINED")
    );
    let c = cancelled(STORED);
    assert_eq!(
        c,
        STORED.replace("BEGIN:VALARM", "STATUS:CANCELLED\r\nBEGIN:VALARM")
    );
    assert_eq!(
        with_sequence(STORED, 5),
        STORED.replace("SEQUENCE:2", "SEQUENCE:5")
    );
}

#[test]
fn significant_changes_are_time_place_and_attendees() {
    assert!(!significant_change(
        STORED,
        &STORED.replace("SUMMARY:Planning", "SUMMARY:Plans")
    ));
    assert!(!significant_change(
        STORED,
        &STORED.replace("mailto:Bob@Example.org", "mailto:bob@example.org")
    ));
    assert!(significant_change(
        STORED,
        &STORED.replace("T100000\r\nDTEND", "T103000\r\nDTEND")
    ));
    assert!(significant_change(STORED, &STORED.replace("Room 1", "Room 2")));
    assert!(significant_change(STORED, &STORED.replace("carol@", "dave@")));
}

#[test]
fn the_imip_mail_is_multipart_alternative_with_the_method() {
    let itip = reply(STORED, "bob@example.org", "ACCEPTED", None, now()).unwrap();
    let to = ["alice@example.org".to_owned()];
    let envelope = Envelope {
        from: "bob@example.org",
        to: &to,
        subject: "Accepted: Planning",
        text: "Bob has accepted.",
        message_id: "<imip.1@example.org>",
    };
    let raw = imip_mail(&envelope, &itip, now());
    let expected = format!(
        "From: bob@example.org\r\nTo: alice@example.org\r\nSubject: Accepted: Planning\r\n\
Date: Thu, 03 Dec 2026 14:00:00 +0000\r\nMessage-ID: <imip.1@example.org>\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/alternative; boundary=\"=_imip_imip1exampleorg\"\r\n\r\n\
--=_imip_imip1exampleorg\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n\
Bob has accepted.\r\n\r\n\
--=_imip_imip1exampleorg\r\nContent-Type: text/calendar; method=REPLY; charset=UTF-8\r\n\
Content-Transfer-Encoding: 7bit\r\n\r\n{itip}\r\n--=_imip_imip1exampleorg--\r\n"
    );
    assert_eq!(String::from_utf8(raw.clone()).unwrap(), expected);
    let (method, ics) = calendar_part(&raw).unwrap();
    assert_eq!(method, "REPLY");
    assert_eq!(ics, itip);
    assert_eq!(crate::smtp::addressing(&raw).unwrap().recipients, to);
}

#[test]
fn a_subject_outside_ascii_is_an_encoded_word() {
    assert_eq!(encode_header("Café"), "=?UTF-8?B?Q2Fmw6k=?=");
    assert_eq!(encode_header("a\r\nBcc: x"), "aBcc: x");
}

#[test]
fn mail_without_an_itip_part_is_not_an_invitation() {
    let plain = b"From: a@b.c\r\nTo: d@e.f\r\nSubject: hi\r\n\r\nhello\r\n";
    assert_eq!(calendar_part(plain), None);
    let attachment = b"From: a@b.c\r\nTo: d@e.f\r\nContent-Type: text/calendar\r\n\r\n\
BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    assert_eq!(calendar_part(attachment), None);
    let bare = b"From: a@b.c\r\nTo: d@e.f\r\nContent-Type: text/calendar; method=CANCEL\r\n\r\n\
BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    assert_eq!(calendar_part(bare).unwrap().0, "CANCEL");
}

proptest::proptest! {
    #[test]
    fn never_panics(text in "[A-Z:;=\\r\\n -~]{0,300}") {
        let _ = meeting(&text);
        let _ = request(&text, now());
        let _ = cancel(&text, 1, None, now());
        let _ = reply(&text, "a@b", "ACCEPTED", Some("x"), now());
        let _ = calendar_part(text.as_bytes());
        let _ = with_partstat(&text, "a@b", "DECLINED");
        let _ = cancelled(&text);
    }
}
