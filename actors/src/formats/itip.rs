//! iTIP messages (RFC 5546) built from a stored calendar object, and their iMIP mail (RFC 6047).
//!
//! ```text
//!  stored VEVENT ──request/cancel (organizer)──► METHOD:REQUEST|CANCEL object ─┐
//!                ──reply (attendee, PARTSTAT)──► METHOD:REPLY object ──────────┼─► imip_mail
//!  incoming mail ──calendar_part──► (method, object) ──meeting──► Meeting      │   multipart/
//!                                                                              │   alternative
//! ```
//!
//! Pure: the caller supplies the time (DTSTAMP) and the Message-ID, so a journaled message is the
//! same bytes on every retry.

use chrono::{DateTime, Utc};
use mail_parser::{MessageParser, MimeHeaders};

use crate::formats::lines::{Component, Doc, escape_text, unescape_text};

const PRODID: &str = "-//opconnect//iTIP//EN";

/// An attendee as the object lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attendee {
    /// Without `mailto:`.
    pub address: String,
    /// PARTSTAT (RFC 5545 §3.2.12); `NEEDS-ACTION` when absent.
    pub partstat: String,
}

/// What iTIP needs to know about a calendar object's master VEVENT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meeting {
    pub method: Option<String>,
    pub uid: String,
    pub recurrence_id: Option<String>,
    pub sequence: u32,
    pub summary: String,
    /// Without `mailto:`.
    pub organizer: Option<String>,
    pub attendees: Vec<Attendee>,
    pub location: Option<String>,
    pub status: Option<String>,
}

impl Meeting {
    /// Whether `address` is the organizer (case-insensitively, without `mailto:`).
    pub fn organized_by(&self, address: &str) -> bool {
        self.organizer.as_deref().is_some_and(|o| same(o, address))
    }

    /// The attendees other than `address` (the user), whom an organizer's message goes to.
    pub fn others(&self, address: &str) -> Vec<String> {
        let mut out: Vec<String> = self
            .attendees
            .iter()
            .filter(|a| !same(&a.address, address))
            .map(|a| a.address.clone())
            .collect();
        out.dedup();
        out
    }

    /// `address`'s PARTSTAT, when they are an attendee.
    pub fn partstat_of(&self, address: &str) -> Option<&str> {
        self.attendees
            .iter()
            .find(|a| same(&a.address, address))
            .map(|a| a.partstat.as_str())
    }
}

/// Calendar user addresses compare case-insensitively without their `mailto:` scheme.
pub fn same(a: &str, b: &str) -> bool {
    address(a).eq_ignore_ascii_case(address(b))
}

/// A CAL-ADDRESS value without `mailto:` (RFC 5545 §3.3.3).
pub fn address(value: &str) -> &str {
    let v = value.trim();
    if v.len() >= 7 && v[..7].eq_ignore_ascii_case("mailto:") {
        &v[7..]
    } else {
        v
    }
}

/// The master VEVENT (no RECURRENCE-ID), else the first one.
fn master(doc: &Doc) -> Option<Component> {
    let events = doc.components_named("VEVENT");
    events
        .iter()
        .copied()
        .find(|c| doc.first_prop(*c, "RECURRENCE-ID").is_none())
        .or_else(|| events.first().copied())
}

/// Reads the master VEVENT of `ics`; `None` when it has none or no UID.
pub fn meeting(ics: &str) -> Option<Meeting> {
    let doc = Doc::parse(ics);
    let comp = master(&doc)?;
    let text = |name: &str| doc.first_prop(comp, name).map(|l| unescape_text(l.value()));
    let uid = text("UID")?.trim().to_owned();
    if uid.is_empty() {
        return None;
    }
    let method = doc
        .components_named("VCALENDAR")
        .first()
        .and_then(|c| doc.first_prop(*c, "METHOD"))
        .map(|l| l.value().trim().to_ascii_uppercase());
    let attendees = doc
        .find_prop(comp, "ATTENDEE")
        .into_iter()
        .map(|i| {
            let line = &doc.lines[i];
            Attendee {
                address: address(line.value()).to_owned(),
                partstat: line
                    .param("PARTSTAT")
                    .map(|p| p.to_ascii_uppercase())
                    .unwrap_or_else(|| "NEEDS-ACTION".into()),
            }
        })
        .collect();
    Some(Meeting {
        method,
        uid,
        recurrence_id: doc
            .first_prop(comp, "RECURRENCE-ID")
            .map(|l| l.value().trim().to_owned()),
        sequence: text("SEQUENCE").and_then(|s| s.trim().parse().ok()).unwrap_or(0),
        summary: text("SUMMARY").unwrap_or_default(),
        organizer: doc
            .first_prop(comp, "ORGANIZER")
            .map(|l| address(l.value()).to_owned()),
        attendees,
        location: text("LOCATION").filter(|l| !l.is_empty()),
        status: text("STATUS").map(|s| s.trim().to_ascii_uppercase()),
    })
}

/// A change attendees must hear about (RFC 5546 §2.1.4 "significant"): time, recurrence, place,
/// the attendee list, or a cancellation. Summary and description edits alone are not.
pub fn significant_change(old: &str, new: &str) -> bool {
    const KEYS: [&str; 8] = [
        "DTSTART", "DTEND", "DURATION", "RRULE", "RDATE", "EXDATE", "LOCATION", "STATUS",
    ];
    let fingerprint = |ics: &str| {
        let doc = Doc::parse(ics);
        let mut out: Vec<String> = Vec::new();
        for comp in doc.components_named("VEVENT") {
            for i in doc.own_lines(comp) {
                let line = &doc.lines[i];
                let name = line.name();
                if KEYS.contains(&name.as_str()) || name == "RECURRENCE-ID" {
                    out.push(line.unfolded.clone());
                } else if name == "ATTENDEE" {
                    out.push(format!("ATTENDEE:{}", address(line.value()).to_ascii_lowercase()));
                }
            }
        }
        out.sort();
        out
    };
    fingerprint(old) != fingerprint(new)
}

/// `ics` with the master's SEQUENCE set to `sequence` (the organizer's revision counter, RFC 5545
/// §3.8.7.4); every other byte stays.
pub fn with_sequence(ics: &str, sequence: u32) -> String {
    let mut doc = Doc::parse(ics);
    if let Some(comp) = master(&doc) {
        doc.set(comp, "SEQUENCE", &format!("SEQUENCE:{sequence}"));
    }
    doc.to_string()
}

/// `ics` with `who`'s PARTSTAT set on every VEVENT that lists them (RSVP dropped: answered), and,
/// for a CANCEL, STATUS:CANCELLED. Every other line keeps its bytes.
pub fn with_partstat(ics: &str, who: &str, partstat: &str) -> String {
    let mut doc = Doc::parse(ics);
    for comp in doc.components_named("VEVENT") {
        for i in doc.find_prop(comp, "ATTENDEE") {
            let line = doc.lines[i].clone();
            if same(line.value(), who) {
                let head = Doc::parse(&line.with_param("PARTSTAT", Some(partstat)));
                let updated = head.lines.first().map(|l| l.with_param("RSVP", None));
                if let Some(updated) = updated {
                    doc.replace(i, updated.trim_end_matches(['\r', '\n']));
                }
            }
        }
    }
    doc.to_string()
}

/// `ics` with STATUS:CANCELLED on every VEVENT (what an attendee's copy becomes on a CANCEL).
pub fn cancelled(ics: &str) -> String {
    let mut doc = Doc::parse(ics);
    // Back to front: setting a property inserts lines and shifts later components.
    for comp in doc.components_named("VEVENT").into_iter().rev() {
        doc.set(comp, "STATUS", "STATUS:CANCELLED");
    }
    doc.to_string()
}

fn stamp(now: DateTime<Utc>) -> String {
    format!("DTSTAMP:{}", now.format("%Y%m%dT%H%M%SZ"))
}

fn wrap(method: &str, timezones: &[String], events: &[String]) -> String {
    let mut out = format!("BEGIN:VCALENDAR\r\nPRODID:{PRODID}\r\nVERSION:2.0\r\nMETHOD:{method}\r\n");
    for part in timezones.iter().chain(events) {
        out.push_str(part);
    }
    out.push_str("END:VCALENDAR\r\n");
    out
}

/// The text of `comp` with CRLF line endings, minus nested VALARMs (alarms are the user's own).
fn component_text(doc: &Doc, comp: Component) -> String {
    let alarms = doc.components_named("VALARM");
    let mut out = String::new();
    for i in comp.begin..=comp.end {
        if alarms
            .iter()
            .any(|a| a.begin <= i && i <= a.end && a.begin > comp.begin)
        {
            continue;
        }
        out.push_str(&crlf(&doc.lines[i].raw));
    }
    out
}

fn crlf(raw: &str) -> String {
    let body = raw.trim_end_matches(['\r', '\n']).replace("\r\n", "\n");
    format!("{}\r\n", body.replace('\n', "\r\n"))
}

fn timezones(doc: &Doc) -> Vec<String> {
    doc.components_named("VTIMEZONE")
        .into_iter()
        .map(|c| component_text(doc, c))
        .collect()
}

/// METHOD:REQUEST (RFC 5546 §3.2.2): the organizer's whole object (master and overrides, their
/// VTIMEZONEs), alarms removed, DTSTAMP set to `now` on each VEVENT.
pub fn request(ics: &str, now: DateTime<Utc>) -> String {
    let mut doc = Doc::parse(ics);
    for comp in doc.components_named("VEVENT").into_iter().rev() {
        doc.set(comp, "DTSTAMP", &stamp(now));
    }
    let events: Vec<String> = doc
        .components_named("VEVENT")
        .into_iter()
        .map(|c| component_text(&doc, c))
        .collect();
    wrap("REQUEST", &timezones(&doc), &events)
}

/// The lines `names` of `comp`, in the object's order, each as a CRLF-ended content line.
fn keep(doc: &Doc, comp: Component, names: &[&str]) -> String {
    doc.own_lines(comp)
        .into_iter()
        .filter(|&i| names.contains(&doc.lines[i].name().as_str()))
        .map(|i| crlf(&doc.lines[i].raw))
        .collect()
}

/// METHOD:CANCEL of the whole meeting (RFC 5546 §3.2.5): ORGANIZER, the attendees told (`to`,
/// all when `None`), UID, SEQUENCE (`sequence`: the organizer raises it), DTSTAMP and
/// STATUS:CANCELLED; DTSTART, DTEND and SUMMARY so a reader sees what was cancelled.
pub fn cancel(ics: &str, sequence: u32, to: Option<&[String]>, now: DateTime<Utc>) -> Option<String> {
    let doc = Doc::parse(ics);
    let comp = master(&doc)?;
    let mut event = String::from("BEGIN:VEVENT\r\n");
    event.push_str(&keep(
        &doc,
        comp,
        &["UID", "ORGANIZER", "DTSTART", "DTEND", "DURATION", "SUMMARY"],
    ));
    for i in doc.find_prop(comp, "ATTENDEE") {
        let line = &doc.lines[i];
        if to.is_none_or(|to| to.iter().any(|t| same(t, line.value()))) {
            event.push_str(&crlf(&line.raw));
        }
    }
    event.push_str(&format!(
        "SEQUENCE:{sequence}\r\n{}\r\nSTATUS:CANCELLED\r\nEND:VEVENT\r\n",
        stamp(now)
    ));
    Some(wrap("CANCEL", &timezones(&doc), &[event]))
}

/// METHOD:REPLY (RFC 5546 §3.2.3): the replying attendee only, with PARTSTAT; ORGANIZER, UID,
/// SEQUENCE, RECURRENCE-ID (when the invitation had one), DTSTAMP; COMMENT when given.
pub fn reply(
    ics: &str,
    who: &str,
    partstat: &str,
    comment: Option<&str>,
    now: DateTime<Utc>,
) -> Option<String> {
    let doc = Doc::parse(ics);
    let comp = master(&doc)?;
    let mut event = String::from("BEGIN:VEVENT\r\n");
    event.push_str(&keep(
        &doc,
        comp,
        &[
            "UID",
            "RECURRENCE-ID",
            "SEQUENCE",
            "ORGANIZER",
            "DTSTART",
            "DTEND",
            "DURATION",
            "SUMMARY",
        ],
    ));
    let mine = doc
        .find_prop(comp, "ATTENDEE")
        .into_iter()
        .map(|i| &doc.lines[i])
        .find(|l| same(l.value(), who));
    let line = match mine {
        Some(line) => {
            let with = Doc::parse(&line.with_param("PARTSTAT", Some(partstat)));
            with.lines.first()?.with_param("RSVP", None)
        }
        None => format!("ATTENDEE;PARTSTAT={partstat}:mailto:{}", address(who)),
    };
    event.push_str(&crlf(&crate::formats::lines::fold(
        line.trim_end_matches(['\r', '\n']),
        "\r\n",
    )));
    if let Some(comment) = comment.filter(|c| !c.is_empty()) {
        let line = format!("COMMENT:{}", escape_text(comment));
        event.push_str(&crate::formats::lines::fold(&line, "\r\n"));
    }
    event.push_str(&format!("{}\r\nEND:VEVENT\r\n", stamp(now)));
    Some(wrap("REPLY", &timezones(&doc), &[event]))
}

/// What an iMIP message carries besides its iTIP object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope<'a> {
    pub from: &'a str,
    pub to: &'a [String],
    pub subject: &'a str,
    /// A human-readable line or two for mail readers without calendar support.
    pub text: &'a str,
    /// With angle brackets: `<…@…>`.
    pub message_id: &'a str,
}

/// The iMIP message (RFC 6047 §2.2–2.4): multipart/alternative with text/plain and
/// `text/calendar; method=…; charset=UTF-8` (the METHOD parameter matches the object's).
pub fn imip_mail(envelope: &Envelope<'_>, itip: &str, now: DateTime<Utc>) -> Vec<u8> {
    let method = meeting(itip)
        .and_then(|m| m.method)
        .unwrap_or_else(|| "REQUEST".into());
    let boundary = format!(
        "=_imip_{}",
        envelope
            .message_id
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(40)
            .collect::<String>()
    );
    let encoding = |s: &str| if s.is_ascii() { "7bit" } else { "8bit" };
    // Each part ends with its own CRLF; the CRLF before a boundary belongs to the boundary
    // (RFC 2046 §5.1.1).
    let text = crlf(envelope.text);
    let mut out = String::new();
    out.push_str(&format!("From: {}\r\n", envelope.from));
    out.push_str(&format!("To: {}\r\n", envelope.to.join(", ")));
    out.push_str(&format!("Subject: {}\r\n", encode_header(envelope.subject)));
    out.push_str(&format!(
        "Date: {}\r\n",
        now.format("%a, %d %b %Y %H:%M:%S +0000")
    ));
    out.push_str(&format!("Message-ID: {}\r\n", envelope.message_id));
    out.push_str("MIME-Version: 1.0\r\n");
    out.push_str(&format!(
        "Content-Type: multipart/alternative; boundary=\"{boundary}\"\r\n\r\n"
    ));
    out.push_str(&format!(
        "--{boundary}\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: {}\r\n\r\n{text}\r\n",
        encoding(&text)
    ));
    out.push_str(&format!(
        "--{boundary}\r\nContent-Type: text/calendar; method={method}; charset=UTF-8\r\n\
         Content-Transfer-Encoding: {}\r\n\r\n{itip}\r\n",
        encoding(itip)
    ));
    out.push_str(&format!("--{boundary}--\r\n"));
    out.into_bytes()
}

/// An unstructured header value, as an RFC 2047 encoded word when it is not plain ASCII.
fn encode_header(value: &str) -> String {
    let value: String = value.chars().filter(|c| !c.is_control()).collect();
    if value.is_ascii() {
        value
    } else {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(value.as_bytes());
        format!("=?UTF-8?B?{b64}?=")
    }
}

/// The iTIP object of a mail: its first `text/calendar` part, with the METHOD it declares
/// (the object's own METHOD property, else the Content-Type parameter). `None` when the mail has
/// no calendar part or one without METHOD (a plain attachment, not iMIP).
pub fn calendar_part(raw: &[u8]) -> Option<(String, String)> {
    let message = MessageParser::default().parse(raw)?;
    for part in &message.parts {
        let Some(ct) = part.content_type() else {
            continue;
        };
        if !ct.ctype().eq_ignore_ascii_case("text")
            || !ct.subtype().is_some_and(|s| s.eq_ignore_ascii_case("calendar"))
        {
            continue;
        }
        let text = part.text_contents()?.to_owned();
        let method = meeting(&text)
            .and_then(|m| m.method)
            .or_else(|| ct.attribute("method").map(|m| m.trim().to_ascii_uppercase()))?;
        return Some((method, text));
    }
    None
}

#[cfg(test)]
#[path = "itip_tests.rs"]
mod tests;
