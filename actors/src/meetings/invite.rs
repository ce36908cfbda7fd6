//! Invitations as the user sees them, and the user's answer written into their copy: pure
//! functions on iCalendar text (RFC 5545) read as iTIP (RFC 5546), no I/O.
//!
//! ```text
//!   inbox message (METHOD:REQUEST|CANCEL) ──from_inbox──┐
//!   calendar copy (user is ATTENDEE, not ORGANIZER) ─from_calendar─┴─► Invitation (one per UID: merge)
//!   calendar copy ──answer(me, ACCEPTED, comment)──► same bytes but the user's PARTSTAT (+ COMMENT)
//! ```

use std::collections::BTreeMap;

use super::{Invitation, Response};
use crate::formats::item::appointment::{self, address};
use crate::formats::item::caltime::{self, When};
use crate::formats::lines::{Component, Doc, escape_text, unescape_text};

/// Whether `value` (a calendar user address, with or without `mailto:`) is one of `me`.
pub fn is_me(value: &str, me: &[String]) -> bool {
    let a = address(value).to_ascii_lowercase();
    me.contains(&a)
}

/// An iTIP message from the scheduling inbox (RFC 6638 §2.2) as an invitation, when it is a
/// REQUEST or CANCEL addressed to the user by someone else (a REPLY is for the organizer's copy,
/// which the server updates itself).
pub fn from_inbox(id: &str, body: &str, me: &[String]) -> Option<Invitation> {
    let doc = Doc::parse(body);
    let cal = *doc.components_named("VCALENDAR").first()?;
    let method = doc.first_prop(cal, "METHOD")?.value().trim().to_ascii_uppercase();
    if method != "REQUEST" && method != "CANCEL" {
        return None;
    }
    invitation(&doc, id, "server", &method, body, me)
}

/// A calendar object the server put in the user's calendar for a meeting someone else
/// organizes; `CANCEL` when the organizer cancelled it (RFC 5545 §3.8.1.11 STATUS:CANCELLED).
pub fn from_calendar(id: &str, body: &str, me: &[String]) -> Option<Invitation> {
    let doc = Doc::parse(body);
    let (_, comp) = appointment::master(&doc, "VEVENT")?;
    let method = match doc.first_prop(comp, "STATUS") {
        Some(l) if l.value().trim().eq_ignore_ascii_case("CANCELLED") => "CANCEL",
        _ => "REQUEST",
    };
    invitation(&doc, id, "server", method, body, me)
}

fn invitation(
    doc: &Doc,
    id: &str,
    source: &str,
    method: &str,
    ics: &str,
    me: &[String],
) -> Option<Invitation> {
    let events = doc.components_named("VEVENT");
    let comp = appointment::master(doc, "VEVENT")
        .map(|(_, c)| c)
        .or_else(|| events.first().copied())?;
    let organizer = doc.first_prop(comp, "ORGANIZER").map(|l| address(l.value()))?;
    if is_me(&organizer, me) {
        return None;
    }
    let partstat = my_partstat(doc, comp, me)?;
    let text = |name: &str| doc.first_prop(comp, name).map(|l| unescape_text(l.value()));
    let (start, end) = appointment::times(doc, comp).ok()?;
    Some(Invitation {
        id: id.to_owned(),
        source: source.to_owned(),
        method: method.to_owned(),
        uid: text("UID")?,
        recurrence_id: doc
            .first_prop(comp, "RECURRENCE-ID")
            .map(|l| l.value().trim().to_owned()),
        sequence: text("SEQUENCE").and_then(|s| s.trim().parse().ok()).unwrap_or(0),
        summary: text("SUMMARY").unwrap_or_default(),
        organizer,
        start: start.as_ref().map(instant)?,
        end: end.as_ref().map(instant),
        location: text("LOCATION").filter(|l| !l.is_empty()),
        partstat,
        ics: ics.to_owned(),
    })
}

/// The user's PARTSTAT in `comp` (RFC 5545 §3.2.12: NEEDS-ACTION when absent); `None` when the
/// user is not an attendee. A CANCEL may name no attendees at all: it concerns the user anyway.
fn my_partstat(doc: &Doc, comp: Component, me: &[String]) -> Option<String> {
    let attendees = doc.find_prop(comp, "ATTENDEE");
    let mine = attendees.iter().find(|&&i| is_me(doc.lines[i].value(), me));
    match mine {
        Some(&i) => Some(
            doc.lines[i]
                .param("PARTSTAT")
                .map(|p| p.to_ascii_uppercase())
                .unwrap_or_else(|| "NEEDS-ACTION".into()),
        ),
        None if attendees.is_empty() => Some("NEEDS-ACTION".into()),
        None => None,
    }
}

/// RFC 3339 in UTC, or the date of an all-day event.
fn instant(w: &When) -> String {
    match w {
        When::Date(d) => d.format("%Y-%m-%d").to_string(),
        When::Time(..) => caltime::fmt_instant(&w.utc()),
    }
}

/// One invitation per UID (and RECURRENCE-ID): the highest SEQUENCE, a CANCEL over a REQUEST of
/// the same SEQUENCE (RFC 5546 §2.1.5), an inbox message over the calendar copy it produced; the
/// partstat is the calendar copy's, as it stands. Newest first (by start, then UID).
pub fn merge(inbox: Vec<Invitation>, calendar: Vec<Invitation>) -> Vec<Invitation> {
    let mut by_uid: BTreeMap<(String, Option<String>), Invitation> = BTreeMap::new();
    let rank = |i: &Invitation| (i.sequence, i.method == "CANCEL");
    for inv in inbox {
        let key = (inv.uid.clone(), inv.recurrence_id.clone());
        match by_uid.get(&key) {
            Some(old) if rank(old) >= rank(&inv) => {}
            _ => {
                by_uid.insert(key, inv);
            }
        }
    }
    for copy in calendar {
        let key = (copy.uid.clone(), copy.recurrence_id.clone());
        match by_uid.get_mut(&key) {
            Some(inv) => {
                inv.partstat = copy.partstat.clone();
                if rank(&copy) > rank(inv) {
                    *inv = copy;
                }
            }
            None => {
                by_uid.insert(key, copy);
            }
        }
    }
    let mut out: Vec<Invitation> = by_uid.into_values().collect();
    out.sort_by(|a, b| b.start.cmp(&a.start).then_with(|| a.uid.cmp(&b.uid)));
    out
}

/// Why an answer could not be written into the user's copy.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AnswerError {
    #[error("the event has no VEVENT")]
    NoEvent,
    #[error("the user ({0}) is not an attendee of this event")]
    NotAnAttendee(String),
}

/// The user's copy with their PARTSTAT set to `response` in every VEVENT (the master and its
/// overrides) where they attend, RSVP and SCHEDULE-STATUS dropped from their line, and `comment`
/// as the event's COMMENT (RFC 5546 §3.2.3: a REPLY may carry one). Everything else keeps its
/// bytes; a `METHOD` is removed, since a stored calendar object has none (RFC 4791 §4.1). An
/// attendee changes nothing else (RFC 6638 §3.2.2.1), so the server sends a REPLY and no more.
pub fn answer(
    body: &str,
    me: &[String],
    response: Response,
    comment: Option<&str>,
) -> Result<String, AnswerError> {
    let mut doc = Doc::parse(body);
    if let Some(cal) = doc.components_named("VCALENDAR").first().copied() {
        doc.remove(cal, "METHOD");
    }
    let events = doc.components_named("VEVENT");
    if events.is_empty() {
        return Err(AnswerError::NoEvent);
    }
    let mut found = false;
    // From the last event backwards: edits of one never move the lines of those before it.
    for comp in events.into_iter().rev() {
        let mine: Vec<usize> = doc
            .find_prop(comp, "ATTENDEE")
            .into_iter()
            .filter(|&i| is_me(doc.lines[i].value(), me))
            .collect();
        for &i in &mine {
            let line = doc.lines[i].clone();
            let content = line.with_param("PARTSTAT", Some(response.partstat()));
            let line = doc.new_line(&content);
            let content = line.with_param("RSVP", None);
            let line = doc.new_line(&content);
            let content = line.with_param("SCHEDULE-STATUS", None);
            doc.replace(i, &content);
            found = true;
        }
        if !mine.is_empty() {
            doc.remove(comp, "COMMENT");
            if let Some(c) = comment.filter(|c| !c.trim().is_empty()) {
                let line = doc.new_line(&format!("COMMENT:{}", escape_text(c)));
                doc.insert_property(comp, line);
            }
        }
    }
    if !found {
        return Err(AnswerError::NotAnAttendee(
            me.first().cloned().unwrap_or_default(),
        ));
    }
    Ok(doc.to_string())
}

/// A stored calendar object made from an iTIP REQUEST (the user answers before the server's copy
/// reached their calendar, or on a server that puts none there): the same object without METHOD.
pub fn stored_form(itip: &str) -> String {
    let mut doc = Doc::parse(itip);
    if let Some(cal) = doc.components_named("VCALENDAR").first().copied() {
        doc.remove(cal, "METHOD");
    }
    doc.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUEST: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//EN\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\n\
UID:m1\r\nSEQUENCE:1\r\nDTSTAMP:20261203T100000Z\r\nDTSTART:20261210T090000Z\r\nDTEND:20261210T100000Z\r\n\
SUMMARY:Planning\r\nLOCATION:Room 1\r\nORGANIZER;CN=Alice:mailto:alice@localhost\r\n\
ATTENDEE;PARTSTAT=ACCEPTED:mailto:alice@localhost\r\n\
ATTENDEE;CN=Bob;PARTSTAT=NEEDS-ACTION;RSVP=TRUE;SCHEDULE-STATUS=1.2:mailto:Bob@localhost\r\n\
END:VEVENT\r\nEND:VCALENDAR\r\n";

    fn bob() -> Vec<String> {
        vec!["bob@localhost".into()]
    }

    #[test]
    fn a_request_in_the_inbox_is_an_invitation() {
        let inv = from_inbox("server:/in/1.ics", REQUEST, &bob()).unwrap();
        assert_eq!(inv.method, "REQUEST");
        assert_eq!(inv.uid, "m1");
        assert_eq!(inv.sequence, 1);
        assert_eq!(inv.organizer, "alice@localhost");
        assert_eq!(inv.start, "2026-12-10T09:00:00Z");
        assert_eq!(inv.end.as_deref(), Some("2026-12-10T10:00:00Z"));
        assert_eq!(inv.location.as_deref(), Some("Room 1"));
        assert_eq!(inv.partstat, "NEEDS-ACTION");
        // The organizer's own meeting and a REPLY are not invitations.
        assert!(from_inbox("x", REQUEST, &["alice@localhost".into()]).is_none());
        assert!(from_inbox("x", &REQUEST.replace("METHOD:REQUEST", "METHOD:REPLY"), &bob()).is_none());
    }

    #[test]
    fn answering_sets_only_the_users_partstat() {
        let stored = stored_form(REQUEST);
        let out = answer(&stored, &bob(), Response::Accepted, Some("See you; bring notes")).unwrap();
        assert!(!out.contains("METHOD"), "{out}");
        assert!(
            out.contains("ATTENDEE;CN=Bob;PARTSTAT=ACCEPTED:mailto:Bob@localhost\r\n"),
            "{out}"
        );
        assert!(out.contains("ATTENDEE;PARTSTAT=ACCEPTED:mailto:alice@localhost\r\n"));
        assert!(out.contains("COMMENT:See you\\; bring notes\r\n"), "{out}");
        assert!(out.contains("SEQUENCE:1\r\n"));
        let inv = from_calendar("server:/cal/m1.ics", &out, &bob()).unwrap();
        assert_eq!(inv.partstat, "ACCEPTED");
        assert_eq!(
            answer(&stored, &["carol@localhost".into()], Response::Declined, None),
            Err(AnswerError::NotAnAttendee("carol@localhost".into()))
        );
    }

    #[test]
    fn one_invitation_per_uid_with_the_calendars_partstat() {
        let inbox1 = from_inbox("server:/in/1.ics", REQUEST, &bob()).unwrap();
        let cancel = REQUEST
            .replace("METHOD:REQUEST", "METHOD:CANCEL")
            .replace("SEQUENCE:1", "SEQUENCE:2");
        let inbox2 = from_inbox("server:/in/2.ics", &cancel, &bob()).unwrap();
        let accepted = answer(&stored_form(REQUEST), &bob(), Response::Tentative, None).unwrap();
        let copy = from_calendar("server:/cal/m1.ics", &accepted, &bob()).unwrap();
        let merged = merge(vec![inbox1.clone(), inbox2], vec![copy.clone()]);
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].method, "CANCEL");
        assert_eq!(merged[0].id, "server:/in/2.ics");
        assert_eq!(merged[0].partstat, "TENTATIVE");
        let merged = merge(vec![inbox1], vec![copy]);
        assert_eq!(merged[0].id, "server:/in/1.ics");
        assert_eq!(merged[0].partstat, "TENTATIVE");
    }

    #[test]
    fn a_cancelled_copy_is_a_cancel() {
        let cancelled =
            stored_form(REQUEST).replace("SUMMARY:Planning\r\n", "SUMMARY:Planning\r\nSTATUS:CANCELLED\r\n");
        assert_eq!(from_calendar("x", &cancelled, &bob()).unwrap().method, "CANCEL");
    }
}
