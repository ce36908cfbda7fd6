//! iMIP (RFC 6047) for servers that do not schedule: which messages a calendar write sends, the
//! REPLY an answer sends, and an arrived iTIP object as an [`Invitation`].
//!
//! ```text
//!  calendar.put / items.* / calendar.delete ─► on_put / on_delete ─► [MailOp::Send] ─┐
//!  meetings.respond ─► reply ─► MailOp::Send ────────────────────────────────────────┤
//!    one LMDB txn with the DAV write (imip_store::journal_with_mail) ◄────────────────┘
//!    └► the IMAP child's mail.send replay: transmitting mark, Sent check → sent exactly once
//! ```
//!
//! Every message is built whole (Message-ID included) before it is journaled, so a retry after a
//! crash submits the same bytes and the Sent-folder check recognizes it.

use base64::Engine as _;
use chrono::{DateTime, Utc};

use crate::formats::itip::{self, Envelope, Meeting};
use crate::journal::MailOp;
use crate::meetings::Invitation;

#[path = "imip_store.rs"]
pub mod store;

/// The DTSTAMP and Date of messages built now (RFC 5546 §2.1.5: when the message was created).
pub fn now() -> DateTime<Utc> {
    Utc::now()
}

/// A Message-ID in the user's domain, unique per message (RFC 5322 §3.6.4).
fn message_id(user: &str) -> String {
    let domain = user
        .rsplit_once('@')
        .map(|(_, d)| d)
        .unwrap_or("opconnect.invalid");
    format!(
        "<imip.{:016x}.{:x}@{domain}>",
        rand::random::<u64>(),
        Utc::now().timestamp()
    )
}

/// The journaled send of one iMIP message.
fn send(user: &str, to: &[String], subject: &str, text: &str, itip: &str, now: DateTime<Utc>) -> MailOp {
    let id = message_id(user);
    let envelope = Envelope {
        from: user,
        to,
        subject,
        text,
        message_id: &id,
    };
    let raw = itip::imip_mail(&envelope, itip, now);
    MailOp::Send {
        raw: base64::engine::general_purpose::STANDARD.encode(raw),
        message_id: Some(id),
        submitted: false,
    }
}

fn title(m: &Meeting) -> &str {
    if m.summary.is_empty() {
        "(no subject)"
    } else {
        &m.summary
    }
}

fn cancel_send(
    user: &str,
    ics: &str,
    m: &Meeting,
    to: &[String],
    sequence: u32,
    now: DateTime<Utc>,
) -> Option<MailOp> {
    let itip = itip::cancel(ics, sequence, Some(to), now)?;
    let text = format!("{user} has cancelled \"{}\".", title(m));
    Some(send(
        user,
        to,
        &format!("Canceled: {}", title(m)),
        &text,
        &itip,
        now,
    ))
}

/// What writing `body` (over `previous`, the mirror's copy, if any) sends, as the organizer
/// `user`: a REQUEST to the attendees on creation and on a significant change (time, place,
/// attendees; SEQUENCE raised in the stored body when the client did not), a CANCEL to attendees
/// removed, a CANCEL to all when the event became STATUS:CANCELLED. Returns the body to store.
/// Events the user does not organize, or without other attendees, send nothing.
pub fn on_put(user: &str, previous: Option<&str>, body: &str, now: DateTime<Utc>) -> (String, Vec<MailOp>) {
    let Some(new) = itip::meeting(body).filter(|m| m.organized_by(user)) else {
        return (body.to_owned(), Vec::new());
    };
    let old = previous.and_then(|p| itip::meeting(p).map(|m| (p, m)));
    if let Some((p, _)) = &old
        && !itip::significant_change(p, body)
    {
        return (body.to_owned(), Vec::new());
    }
    let mut body = body.to_owned();
    let mut sequence = new.sequence;
    if let Some((_, o)) = &old
        && new.sequence <= o.sequence
    {
        sequence = o.sequence + 1;
        body = itip::with_sequence(&body, sequence);
    }
    let mut sends = Vec::new();
    let others = new.others(user);
    let was_cancelled = old
        .as_ref()
        .is_some_and(|(_, o)| o.status.as_deref() == Some("CANCELLED"));
    if new.status.as_deref() == Some("CANCELLED") {
        if !was_cancelled && !others.is_empty() {
            sends.extend(cancel_send(user, &body, &new, &others, sequence, now));
        }
        return (body, sends);
    }
    if !others.is_empty() {
        let itip = itip::request(&body, now);
        let update = old.as_ref().is_some_and(|(_, o)| !o.others(user).is_empty());
        let (subject, verb) = if update {
            (format!("Updated: {}", title(&new)), "updated")
        } else {
            (format!("Invitation: {}", title(&new)), "invites you to")
        };
        let text = format!("{user} {verb} \"{}\".", title(&new));
        sends.push(send(user, &others, &subject, &text, &itip, now));
    }
    if let Some((p, o)) = &old {
        let removed: Vec<String> = o
            .others(user)
            .into_iter()
            .filter(|a| !others.iter().any(|n| itip::same(n, a)))
            .collect();
        if !removed.is_empty() {
            sends.extend(cancel_send(user, p, o, &removed, sequence, now));
        }
    }
    (body, sends)
}

/// What deleting `previous` sends: a CANCEL to its attendees when the user organized it and it
/// was not cancelled already (RFC 5546 §3.2.5, SEQUENCE raised).
pub fn on_delete(user: &str, previous: &str, now: DateTime<Utc>) -> Vec<MailOp> {
    let Some(old) = itip::meeting(previous).filter(|m| m.organized_by(user)) else {
        return Vec::new();
    };
    let others = old.others(user);
    if others.is_empty() || old.status.as_deref() == Some("CANCELLED") {
        return Vec::new();
    }
    cancel_send(user, previous, &old, &others, old.sequence + 1, now)
        .into_iter()
        .collect()
}

/// The REPLY the attendee `user` sends the organizer of `ics` (RFC 5546 §3.2.3).
pub fn reply(
    user: &str,
    ics: &str,
    partstat: &str,
    comment: Option<&str>,
    now: DateTime<Utc>,
) -> Option<MailOp> {
    let m = itip::meeting(ics)?;
    let organizer = m.organizer.clone()?;
    let itip = itip::reply(ics, user, partstat, comment, now)?;
    let word = match partstat {
        "ACCEPTED" => "Accepted",
        "TENTATIVE" => "Tentative",
        _ => "Declined",
    };
    let mut text = format!("{user}: {} \"{}\".", word.to_lowercase(), title(&m));
    if let Some(c) = comment.filter(|c| !c.is_empty()) {
        text.push_str(&format!("\n\n{c}"));
    }
    Some(send(
        user,
        &[organizer],
        &format!("{word}: {}", title(&m)),
        &text,
        &itip,
        now,
    ))
}

/// An RFC 3339 UTC time, or the date of an all-day value, from the parsed event.
fn when(w: Option<&crate::formats::When>) -> Option<String> {
    let w = w?;
    if w.all_day {
        return Some(w.value.clone());
    }
    Some(match DateTime::parse_from_rfc3339(&w.value) {
        Ok(t) => t.with_timezone(&Utc).format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Err(_) => w.value.clone(),
    })
}

/// An arrived REQUEST or CANCEL as the user's invitation; `partstat` is the user's answer as it
/// stands (from their calendar copy when they have one, else from the object).
pub fn invitation(
    id: String,
    method: &str,
    ics: &str,
    user: &str,
    partstat: Option<&str>,
) -> Option<Invitation> {
    let m = itip::meeting(ics)?;
    let fields = crate::formats::ical::parse_event(ics.as_bytes()).ok();
    Some(Invitation {
        id,
        source: "mail".into(),
        method: method.to_owned(),
        uid: m.uid.clone(),
        recurrence_id: m.recurrence_id.clone(),
        sequence: m.sequence,
        summary: m.summary.clone(),
        organizer: m.organizer.clone().unwrap_or_default(),
        start: when(fields.as_ref().and_then(|f| f.start.as_ref())).unwrap_or_default(),
        end: when(fields.as_ref().and_then(|f| f.end.as_ref())),
        location: m.location.clone(),
        partstat: partstat
            .or(m.partstat_of(user))
            .unwrap_or("NEEDS-ACTION")
            .to_owned(),
        ics: ics.to_owned(),
    })
}

/// The user's calendar copy made from a REQUEST: the object without METHOD (RFC 4791 §4.1
/// forbids it in a stored resource).
pub fn stored_copy(itip_object: &str) -> String {
    let mut doc = crate::formats::lines::Doc::parse(itip_object);
    if let Some(cal) = doc.components_named("VCALENDAR").first().copied() {
        doc.remove(cal, "METHOD");
    }
    doc.to_string()
}

#[cfg(test)]
#[path = "imip_tests.rs"]
mod tests;
