//! The appointment field set (Outlook's AppointmentItem) read from a VEVENT series (RFC 5545
//! §3.6.1) and new objects created from one; patches are in `appointment_patch`.
//!
//! ```text
//!   VCALENDAR ─ VTIMEZONE*  (resolved by name, else by their rules)
//!             ─ VEVENT master (no RECURRENCE-ID) ──► Subject, Start…, Recurrence
//!             ─ VEVENT overrides + EXDATE        ──► Exceptions
//! ```

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::caltime::{self, When};
use super::props::{self, put};
use super::{FieldSet, PatchError, alarm, appointment_patch, exceptions, recurrence};
use crate::formats::lines::{Component, Doc, unescape_text};

/// Keys a patch of an item marked Unsupported may not touch: they concern its recurrence.
pub const RECURRENCE_KEYS: &[&str] = &[
    "Recurrence",
    "Exceptions",
    "Start",
    "StartTimeZone",
    "AllDayEvent",
];

pub fn read(body: &str) -> Result<FieldSet, String> {
    read_doc(&Doc::parse(body))
}

pub fn patch(body: &str, changes: &FieldSet) -> Result<String, PatchError> {
    appointment_patch::patch_at(body, changes, Utc::now(), false)
}

/// A new VCALENDAR holding one VEVENT (and its overrides) from `fields`.
pub fn create(uid: &str, fields: &FieldSet) -> Result<String, PatchError> {
    create_at(uid, fields, Utc::now())
}

pub fn create_at(uid: &str, fields: &FieldSet, now: DateTime<Utc>) -> Result<String, PatchError> {
    if !fields.contains_key("Start") {
        return Err(PatchError::field("Start", "is required to create an appointment"));
    }
    let skeleton = skeleton("VEVENT", uid, now);
    appointment_patch::patch_at(&skeleton, fields, now, true)
}

/// The smallest object a create starts from (RFC 5545 §3.4, §3.6.1).
pub fn skeleton(component: &str, uid: &str, now: DateTime<Utc>) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//opconnect//EN\r\nCALSCALE:GREGORIAN\r\nBEGIN:{component}\r\n\
         UID:{}\r\nDTSTAMP:{now}\r\nCREATED:{now}\r\nSEQUENCE:0\r\nEND:{component}\r\nEND:VCALENDAR\r\n",
        crate::formats::lines::escape_text(uid),
        now = caltime::fmt_utc(&now),
    )
}

/// The master VEVENT (the one without RECURRENCE-ID) and its index among the VEVENTs.
pub fn master(doc: &Doc, name: &str) -> Option<(usize, Component)> {
    let all = doc.components_named(name);
    all.iter()
        .position(|c| doc.first_prop(*c, "RECURRENCE-ID").is_none())
        .map(|i| (i, all[i]))
}

/// DTSTART and the end (DTEND, or DTSTART + DURATION, or RFC 5545 §3.6.1's defaults), with
/// Outlook's X-MICROSOFT-CDO-ALLDAYEVENT honoured for midnight-to-midnight date-times.
pub fn times(doc: &Doc, comp: Component) -> Result<(Option<When>, Option<When>), String> {
    let value = |name: &str| -> Result<Option<When>, String> {
        match doc.first_prop(comp, name) {
            None => Ok(None),
            Some(l) => caltime::parse_value(doc, l)
                .map(Some)
                .ok_or_else(|| format!("{name} `{}` is not a date or date-time", l.value())),
        }
    };
    let mut start = value("DTSTART")?;
    let mut end = value("DTEND")?;
    if end.is_none()
        && let (Some(s), Some(d)) = (&start, doc.first_prop(comp, "DURATION"))
    {
        let d = caltime::parse_duration(d.value()).ok_or("malformed DURATION")?;
        end = Some(s.add(d));
    }
    let cdo_all_day = doc
        .first_prop(comp, "X-MICROSOFT-CDO-ALLDAYEVENT")
        .is_some_and(|l| l.value().trim().eq_ignore_ascii_case("TRUE"));
    if cdo_all_day && let Some(When::Time(t, _)) = start {
        start = Some(When::Date(t.date()));
        if let Some(When::Time(e, _)) = end {
            end = Some(When::Date(e.date()));
        }
    }
    if end.is_none() {
        end = start.map(|s| {
            if s.is_date() {
                s.add(chrono::Duration::days(1))
            } else {
                s
            }
        });
    }
    Ok((start, end))
}

/// BusyStatus from X-MICROSOFT-CDO-BUSYSTATUS, else TRANSP (RFC 5545 §3.8.2.7).
pub fn busy_status(doc: &Doc, comp: Component) -> i64 {
    let cdo = doc
        .first_prop(comp, "X-MICROSOFT-CDO-BUSYSTATUS")
        .map(|l| l.value().trim().to_ascii_uppercase());
    match cdo.as_deref() {
        Some("FREE") => 0,
        Some("TENTATIVE") => 1,
        Some("BUSY") => 2,
        Some("OOF") => 3,
        Some("WORKINGELSEWHERE") => 4,
        _ => match doc.first_prop(comp, "TRANSP") {
            Some(l) if l.value().trim().eq_ignore_ascii_case("TRANSPARENT") => 0,
            _ => 2,
        },
    }
}

/// The fields an occurrence override can change, as the master's are compared with them.
pub fn occurrence_fields(doc: &Doc, comp: Component) -> FieldSet {
    let mut out = FieldSet::new();
    out.insert(
        "Subject".into(),
        props::text(doc, comp, "SUMMARY").unwrap_or_default().into(),
    );
    out.insert(
        "Location".into(),
        props::text(doc, comp, "LOCATION").unwrap_or_default().into(),
    );
    out.insert(
        "Body".into(),
        props::text(doc, comp, "DESCRIPTION").unwrap_or_default().into(),
    );
    out.insert("BusyStatus".into(), busy_status(doc, comp).into());
    out
}

pub fn read_doc(doc: &Doc) -> Result<FieldSet, String> {
    let (_, comp) = master(doc, "VEVENT")
        .or_else(|| doc.components_named("VEVENT").first().map(|c| (0, *c)))
        .ok_or("no VEVENT")?;
    let mut reasons: Vec<String> = Vec::new();
    if doc.first_prop(comp, "RECURRENCE-ID").is_some() {
        reasons.push("an occurrence of a series whose master is not in this object".into());
    }
    let mut f = FieldSet::new();
    put(&mut f, "GlobalUid", props::text(doc, comp, "UID"));
    for (key, value) in occurrence_fields(doc, comp) {
        if value.as_str() != Some("") {
            f.insert(key, value);
        }
    }
    let (start, end) = times(doc, comp)?;
    let all_day = start.is_some_and(|s| s.is_date());
    f.insert("AllDayEvent".into(), all_day.into());
    for (key, when) in [("Start", start), ("End", end)] {
        let Some(when) = when else { continue };
        let (text, zone) = caltime::to_field(&when);
        f.insert(key.into(), text.into());
        if let Some(z) = zone {
            f.insert(format!("{key}TimeZone"), z.into());
        }
        if let When::Time(_, tz) = when
            && !tz.is_floating()
        {
            f.insert(format!("{key}UTC"), caltime::fmt_instant(&when.utc()).into());
        }
    }
    f.insert("Sensitivity".into(), props::sensitivity(doc, comp).into());
    f.insert("Importance".into(), props::importance(doc, comp).into());
    put(&mut f, "Categories", props::categories(doc, comp));
    match alarm::appointment_reminder(doc, comp) {
        Some((_, offset)) => {
            f.insert("ReminderSet".into(), true.into());
            f.insert(
                "ReminderMinutesBeforeStart".into(),
                alarm::minutes_before(offset).into(),
            );
        }
        None => {
            f.insert("ReminderSet".into(), false.into());
        }
    }
    if let Some(org) = doc.first_prop(comp, "ORGANIZER") {
        put(&mut f, "Organizer", Some(address(org.value())));
        put(&mut f, "OrganizerName", org.param("CN"));
    }
    let recipients: Vec<Value> = doc
        .find_prop(comp, "ATTENDEE")
        .iter()
        .map(|&i| recipient(&doc.lines[i]))
        .collect();
    f.insert(
        "MeetingStatus".into(),
        meeting_status(!recipients.is_empty(), cancelled(doc, comp), false).into(),
    );
    if !recipients.is_empty() {
        f.insert("Recipients".into(), recipients.into());
    }
    let rrules = doc.find_prop(comp, "RRULE");
    let recurring = !rrules.is_empty() || !doc.find_prop(comp, "RDATE").is_empty();
    f.insert("IsRecurring".into(), recurring.into());
    if rrules.len() > 1 {
        reasons.push("several RRULEs".into());
    }
    if !doc.find_prop(comp, "RDATE").is_empty() {
        reasons.push("RDATE (occurrences outside the rule)".into());
    }
    if !doc.find_prop(comp, "EXRULE").is_empty() {
        reasons.push("EXRULE".into());
    }
    if let (Some(&i), Some(start)) = (rrules.first(), start) {
        match recurrence::from_rrule(doc.lines[i].value(), &start) {
            Ok(p) => {
                f.insert("Recurrence".into(), recurrence::to_json(&p));
            }
            Err(why) => reasons.push(why),
        }
    }
    if recurring && let (Some(start), Some(end)) = (start, end) {
        let list = exceptions::read(doc, comp, &start, &end, &mut reasons);
        if !list.is_empty() {
            f.insert("Exceptions".into(), list.into());
        }
    }
    if !reasons.is_empty() {
        f.insert("Unsupported".into(), reasons.join("; ").into());
    }
    Ok(f)
}

/// STATUS:CANCELLED (RFC 5545 §3.8.1.11): the organizer cancelled the meeting.
pub fn cancelled(doc: &Doc, comp: Component) -> bool {
    doc.first_prop(comp, "STATUS")
        .is_some_and(|l| l.value().trim().eq_ignore_ascii_case("CANCELLED"))
}

/// Outlook's OlMeetingStatus: 0 not a meeting, 1 a meeting the user organizes, 3 one the user
/// received, 5 cancelled (organizer's copy), 7 received and cancelled. [`read`] does not know
/// who the user is and answers as if they organized; [`received`] corrects that.
pub fn meeting_status(meeting: bool, cancelled: bool, received: bool) -> i64 {
    match (meeting, cancelled, received) {
        (false, _, _) => 0,
        (true, false, false) => 1,
        (true, false, true) => 3,
        (true, true, false) => 5,
        (true, true, true) => 7,
    }
}

/// Sets `MeetingStatus` to "received" (3, or 7 when cancelled) when the meeting's organizer is
/// none of `me` (addresses without `mailto:`, lower case).
pub fn received(fields: &mut FieldSet, me: &[String]) {
    let organizer = fields
        .get("Organizer")
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase);
    let theirs = organizer.is_some_and(|o| !me.contains(&o));
    match fields.get("MeetingStatus").and_then(Value::as_i64) {
        Some(1) if theirs => {
            fields.insert("MeetingStatus".into(), 3.into());
        }
        Some(5) if theirs => {
            fields.insert("MeetingStatus".into(), 7.into());
        }
        _ => {}
    }
}

/// A calendar user address without `mailto:` (RFC 5545 §3.3.3).
pub fn address(value: &str) -> String {
    let v = value.trim();
    match v.get(..7) {
        Some(p) if p.eq_ignore_ascii_case("mailto:") => v[7..].to_owned(),
        _ => v.to_owned(),
    }
}

/// An ATTENDEE line as an Outlook recipient (RFC 5545 §3.2.3 CUTYPE, §3.2.12 PARTSTAT, §3.2.16
/// ROLE, §3.2.17 RSVP).
pub fn recipient(line: &crate::formats::lines::Line) -> Value {
    let upper = |k: &str| line.param(k).map(|v| v.to_ascii_uppercase());
    let kind = match (upper("CUTYPE").as_deref(), upper("ROLE").as_deref()) {
        (Some("RESOURCE" | "ROOM"), _) => 3,
        (_, Some("OPT-PARTICIPANT" | "NON-PARTICIPANT")) => 2,
        _ => 1,
    };
    let status = match upper("PARTSTAT").as_deref() {
        Some("ACCEPTED") => 3,
        Some("TENTATIVE") => 2,
        Some("DECLINED") => 4,
        Some("NEEDS-ACTION") => 5,
        _ => 0,
    };
    let mut r = json!({
        "Address": address(line.value()),
        "Type": kind,
        "MeetingResponseStatus": status,
        "Rsvp": upper("RSVP").as_deref() == Some("TRUE"),
    });
    if let Some(cn) = line.param("CN").filter(|c| !c.is_empty()) {
        r["Name"] = unescape_text(&cn).into();
    }
    r
}
