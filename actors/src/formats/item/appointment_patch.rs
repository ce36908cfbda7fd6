//! Patch writes of appointments: the changed fields are applied to the stored VEVENT through
//! [`Doc`], one property at a time; every line no change concerns stays byte for byte (other
//! VALARMs, X- properties, untouched ATTENDEE lines, ATTACH, an unchanged RRULE). RFC 5546
//! §2.1.4: SEQUENCE goes up when times or recurrence change; DTSTAMP and LAST-MODIFIED always move.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Duration, Utc};
use serde_json::Value;

use super::appointment::{self, RECURRENCE_KEYS, recipient, times};
use super::caltime::{self, When};
use super::exceptions::{self, Series};
use super::props::{self, Changes, Target};
use super::{FieldSet, PatchError, alarm, given, recurrence, tzrules};
use crate::formats::lines::{Doc, escape_text};
use crate::formats::zones;

/// Applies `changes` to `body` at time `now`. `create` marks a new object (no SEQUENCE bump,
/// VTIMEZONEs generated for the zones it uses).
pub fn patch_at(
    body: &str,
    changes: &FieldSet,
    now: DateTime<Utc>,
    create: bool,
) -> Result<String, PatchError> {
    let mut doc = Doc::parse(body);
    let current = appointment::read_doc(&doc).map_err(PatchError::Unreadable)?;
    let (index, _) = appointment::master(&doc, "VEVENT")
        .ok_or_else(|| PatchError::Unfaithful("no master VEVENT (only overrides of a series)".into()))?;
    let mut t = Target {
        name: "VEVENT",
        index,
    };
    let c = Changes(changes);
    let differs = |k: &str| changes.contains_key(k) && given(changes.get(k)) != given(current.get(k));
    if let Some(why) = current.get("Unsupported").and_then(Value::as_str)
        && RECURRENCE_KEYS.iter().any(|k| differs(k))
    {
        return Err(PatchError::Unfaithful(why.to_owned()));
    }
    let zones_before = used_tzids(&doc);
    let had_vtimezones = create || !doc.components_named("VTIMEZONE").is_empty();
    let mut significant = false;
    let texts = [
        ("Subject", "SUMMARY"),
        ("Location", "LOCATION"),
        ("Body", "DESCRIPTION"),
    ];
    props::patch_descriptive(&mut doc, t, &c, &differs, &texts)?;
    if differs("BusyStatus") {
        set_busy(&mut doc, t, c.int("BusyStatus")?.unwrap_or(2))?;
    }
    if ["Start", "End", "StartTimeZone", "EndTimeZone", "AllDayEvent"]
        .iter()
        .any(|k| differs(k))
    {
        patch_times(&mut doc, t, &c, &current)?;
        significant = true;
    }
    if differs("ReminderSet") || differs("ReminderMinutesBeforeStart") {
        patch_reminder(&mut doc, t, &c, &current)?;
    }
    if differs("Organizer") || differs("OrganizerName") {
        patch_organizer(&mut doc, t, &c, &current)?;
    }
    if differs("Recipients") {
        patch_recipients(&mut doc, t, c.value("Recipients").unwrap_or(&Value::Null))?;
    }
    if differs("Recurrence") {
        significant |= patch_recurrence(&mut doc, t, &c, &current)?;
    }
    if differs("Exceptions") {
        let series = Series::of(&doc, t.get(&doc))
            .ok_or_else(|| PatchError::field("Exceptions", "the series has no Start"))?;
        significant |= exceptions::patch(
            &mut doc,
            t,
            &series,
            c.value("Exceptions").unwrap_or(&Value::Null),
            now,
        )?;
        // An override removed from before the master (servers order them freely) moves it.
        if let Some((index, _)) = appointment::master(&doc, "VEVENT") {
            t.index = index;
        }
    }
    if significant && !create {
        props::bump_sequence(&mut doc, t);
    }
    props::stamp(&mut doc, t, now);
    if significant || create {
        sync_vtimezones(&mut doc, t, had_vtimezones, &zones_before);
    }
    Ok(doc.to_string())
}

/// TRANSP (RFC 5545 §3.8.2.7) and, when it is there or TRANSP cannot say it, Outlook's
/// X-MICROSOFT-CDO-BUSYSTATUS.
pub fn set_busy(doc: &mut Doc, t: Target, busy: i64) -> Result<(), PatchError> {
    let cdo = ["FREE", "TENTATIVE", "BUSY", "OOF", "WORKINGELSEWHERE"]
        .get(busy as usize)
        .filter(|_| busy >= 0)
        .ok_or_else(|| PatchError::field("BusyStatus", "must be 0 to 4"))?;
    if busy == 0 {
        doc.set(t.get(doc), "TRANSP", "TRANSP:TRANSPARENT");
    } else if doc.first_prop(t.get(doc), "TRANSP").is_some() {
        doc.set(t.get(doc), "TRANSP", "TRANSP:OPAQUE");
    }
    if doc.first_prop(t.get(doc), "X-MICROSOFT-CDO-BUSYSTATUS").is_some() || matches!(busy, 1 | 3 | 4) {
        doc.set(
            t.get(doc),
            "X-MICROSOFT-CDO-BUSYSTATUS",
            &format!("X-MICROSOFT-CDO-BUSYSTATUS:{cdo}"),
        );
    }
    Ok(())
}

/// The value of `key` after the patch: the change if there is one, else the current value.
fn after<'a>(c: &'a Changes, current: &'a FieldSet, key: &str) -> Option<&'a Value> {
    if c.has(key) {
        given(c.value(key))
    } else {
        given(current.get(key))
    }
}

fn when_of(
    text: Option<&Value>,
    zone: Option<&Value>,
    all_day: bool,
    key: &str,
) -> Result<Option<When>, PatchError> {
    let Some(text) = text else { return Ok(None) };
    let text = text
        .as_str()
        .ok_or_else(|| PatchError::field(key, "must be a string"))?;
    let w = caltime::from_field(text, zone.and_then(Value::as_str)).map_err(|e| PatchError::field(key, e))?;
    match (all_day, w) {
        (true, w) => Ok(Some(When::Date(w.date()))),
        (false, When::Date(_)) => Err(PatchError::field(
            key,
            "a timed appointment needs YYYY-MM-DDTHH:MM:SS",
        )),
        (false, w) => Ok(Some(w)),
    }
}

/// Writes `name` (DTSTART, DTEND) keeping the TZID text the object already uses for that zone.
pub fn write_time(doc: &mut Doc, t: Target, name: &str, w: &When) {
    let comp = t.get(doc);
    let keep = doc.first_prop(comp, name).and_then(|l| {
        let tzid = l.param("TZID")?;
        let old = caltime::parse_value(doc, l)?.zone()?;
        let new = w.zone()?;
        let same = old == new
            || (caltime::windows_id(old).is_some() && caltime::windows_id(old) == caltime::windows_id(new));
        same.then_some(tzid)
    });
    let content = caltime::property(name, w, keep.as_deref());
    doc.set(comp, name, &content);
}

fn patch_times(doc: &mut Doc, t: Target, c: &Changes, current: &FieldSet) -> Result<(), PatchError> {
    let all_day = after(c, current, "AllDayEvent")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let zone_s = after(c, current, "StartTimeZone");
    let zone_e = if c.has("EndTimeZone") || current.contains_key("EndTimeZone") {
        after(c, current, "EndTimeZone")
    } else {
        zone_s
    };
    let start = when_of(after(c, current, "Start"), zone_s, all_day, "Start")?
        .ok_or_else(|| PatchError::field("Start", "is required"))?;
    let end = when_of(after(c, current, "End"), zone_e, all_day, "End")?.unwrap_or_else(|| {
        if all_day {
            start.add(Duration::days(1))
        } else {
            start
        }
    });
    if end.since(&start) < Duration::zero() {
        return Err(PatchError::field("End", "is before Start (RFC 5545 §3.8.2.2)"));
    }
    write_time(doc, t, "DTSTART", &start);
    doc.remove(t.get(doc), "DURATION");
    write_time(doc, t, "DTEND", &end);
    if doc
        .first_prop(t.get(doc), "X-MICROSOFT-CDO-ALLDAYEVENT")
        .is_some()
    {
        let v = if all_day { "TRUE" } else { "FALSE" };
        doc.set(
            t.get(doc),
            "X-MICROSOFT-CDO-ALLDAYEVENT",
            &format!("X-MICROSOFT-CDO-ALLDAYEVENT:{v}"),
        );
    }
    // RFC 5545 §3.3.10: UNTIL follows DTSTART's type and time; re-derive it from the pattern.
    if !c.has("Recurrence")
        && let Some(p) = given(current.get("Recurrence"))
        && doc
            .first_prop(t.get(doc), "RRULE")
            .is_some_and(|l| l.value().to_ascii_uppercase().contains("UNTIL"))
    {
        let p = recurrence::from_json(p, start.date()).map_err(|e| PatchError::field("Recurrence", e))?;
        let rule = recurrence::to_rrule(&p, &start);
        let until = rule
            .split(';')
            .find(|part| part.starts_with("UNTIL="))
            .unwrap_or_default();
        let comp = t.get(doc);
        if let Some(&i) = doc.find_prop(comp, "RRULE").first() {
            let line = &doc.lines[i];
            let head = &line.unfolded[..line.unfolded.len() - line.value().len()];
            let parts: Vec<&str> = line
                .value()
                .split(';')
                .map(|part| {
                    if part.to_ascii_uppercase().starts_with("UNTIL=") {
                        until
                    } else {
                        part
                    }
                })
                .collect();
            let content = format!("{head}{}", parts.join(";"));
            doc.replace(i, &content);
        }
    }
    Ok(())
}

fn patch_reminder(doc: &mut Doc, t: Target, c: &Changes, current: &FieldSet) -> Result<(), PatchError> {
    let set = if c.has("ReminderSet") {
        c.bool("ReminderSet")?.unwrap_or(false)
    } else {
        current
            .get("ReminderSet")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    let minutes = match c.int("ReminderMinutesBeforeStart")? {
        Some(m) => m,
        None => current
            .get("ReminderMinutesBeforeStart")
            .and_then(Value::as_i64)
            .unwrap_or(15),
    };
    match (set, alarm::appointment_reminder(doc, t.get(doc))) {
        (false, Some((a, _))) => alarm::remove(doc, a.target),
        (true, Some((a, _))) => alarm::set_trigger(doc, a.target, &alarm::relative_trigger(minutes)),
        (true, None) => alarm::add(doc, t, &alarm::relative_trigger(minutes)),
        (false, None) => {}
    }
    Ok(())
}

fn patch_organizer(doc: &mut Doc, t: Target, c: &Changes, current: &FieldSet) -> Result<(), PatchError> {
    let addr = if c.has("Organizer") {
        c.str("Organizer")?.map(str::to_owned)
    } else {
        str_of(current, "Organizer")
    };
    let name = if c.has("OrganizerName") {
        c.str("OrganizerName")?.map(str::to_owned)
    } else {
        str_of(current, "OrganizerName")
    };
    let comp = t.get(doc);
    let Some(addr) = addr.filter(|a| !a.is_empty()) else {
        doc.remove(comp, "ORGANIZER");
        return Ok(());
    };
    let base = match doc.first_prop(comp, "ORGANIZER") {
        Some(l) if appointment::address(l.value()).eq_ignore_ascii_case(&addr) => l.clone(),
        Some(l) => {
            let head = &l.unfolded[..l.unfolded.len() - l.value().len()];
            doc.new_line(&format!("{head}mailto:{addr}"))
        }
        None => doc.new_line(&format!("ORGANIZER:mailto:{addr}")),
    };
    let content = base.with_param("CN", name.as_deref().filter(|n| !n.is_empty()));
    doc.set(comp, "ORGANIZER", &content);
    Ok(())
}

fn str_of(f: &FieldSet, key: &str) -> Option<String> {
    f.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// The ATTENDEE parameters for a recipient's type, status and RSVP.
fn params_of(r: &Value, old: Option<&Value>) -> Vec<(&'static str, Option<String>)> {
    let mut out = Vec::new();
    let get = |v: &Value, k: &str| v.get(k).cloned().unwrap_or(Value::Null);
    let changed = |k: &str| old.is_none_or(|o| get(o, k) != get(r, k));
    if changed("Name") {
        out.push((
            "CN",
            r.get("Name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .map(str::to_owned),
        ));
    }
    if changed("Type") {
        let kind = r.get("Type").and_then(Value::as_i64).unwrap_or(1);
        let was_resource = old.is_some_and(|o| get(o, "Type") == 3);
        if kind == 3 {
            out.push(("CUTYPE", Some("RESOURCE".into())));
        } else if was_resource {
            out.push(("CUTYPE", None));
        }
        let role = match kind {
            2 => "OPT-PARTICIPANT",
            3 => "NON-PARTICIPANT",
            _ => "REQ-PARTICIPANT",
        };
        out.push(("ROLE", Some(role.into())));
    }
    if changed("MeetingResponseStatus") {
        let status = match r
            .get("MeetingResponseStatus")
            .and_then(Value::as_i64)
            .unwrap_or(0)
        {
            2 => Some("TENTATIVE"),
            3 => Some("ACCEPTED"),
            4 => Some("DECLINED"),
            5 => Some("NEEDS-ACTION"),
            _ => None,
        };
        out.push(("PARTSTAT", status.map(str::to_owned)));
    }
    if changed("Rsvp") {
        let rsvp = r.get("Rsvp").and_then(Value::as_bool).unwrap_or(false);
        out.push(("RSVP", rsvp.then(|| "TRUE".to_owned())));
    }
    out
}

/// Recipients matched by address: untouched ones keep their line, changed ones get only their
/// changed parameters rewritten, removed ones go, new ones are added.
fn patch_recipients(doc: &mut Doc, t: Target, new: &Value) -> Result<(), PatchError> {
    let list: Vec<Value> = match new {
        Value::Null => Vec::new(),
        Value::Array(a) => a.clone(),
        _ => return Err(PatchError::field("Recipients", "must be a list or null")),
    };
    let addr_of = |r: &Value| {
        r.get("Address")
            .and_then(Value::as_str)
            .map(|a| a.trim().to_ascii_lowercase())
    };
    for r in &list {
        if addr_of(r).is_none_or(|a| a.is_empty()) {
            return Err(PatchError::field("Recipients", "each recipient needs an Address"));
        }
    }
    let comp = t.get(doc);
    for &i in doc.find_prop(comp, "ATTENDEE").iter().rev() {
        let a = appointment::address(doc.lines[i].value()).to_ascii_lowercase();
        if !list.iter().any(|r| addr_of(r).as_deref() == Some(a.as_str())) {
            doc.lines.remove(i);
        }
    }
    for r in &list {
        let addr = addr_of(r).unwrap_or_default();
        let comp = t.get(doc);
        let existing = doc
            .find_prop(comp, "ATTENDEE")
            .into_iter()
            .find(|&i| appointment::address(doc.lines[i].value()).eq_ignore_ascii_case(&addr));
        let (mut line, old) = match existing {
            Some(i) => (doc.lines[i].clone(), Some(recipient(&doc.lines[i]))),
            None => {
                let address = r
                    .get("Address")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .trim();
                (doc.new_line(&format!("ATTENDEE:mailto:{address}")), None)
            }
        };
        for (param, value) in params_of(r, old.as_ref()) {
            let content = line.with_param(param, value.as_deref());
            line = doc.new_line(&content);
        }
        match existing {
            Some(i) => doc.replace(i, &line.unfolded),
            None => doc.insert_property(comp, line),
        }
    }
    Ok(())
}

/// Returns whether the rule changed.
fn patch_recurrence(doc: &mut Doc, t: Target, c: &Changes, current: &FieldSet) -> Result<bool, PatchError> {
    let comp = t.get(doc);
    let (start, end) = times(doc, comp).map_err(PatchError::Unreadable)?;
    let Some(mut start) = start else {
        return Err(PatchError::field("Recurrence", "the appointment has no Start"));
    };
    let Some(v) = given(c.value("Recurrence")) else {
        for name in ["RRULE", "RDATE", "EXRULE", "EXDATE"] {
            doc.remove(t.get(doc), name);
        }
        while let Some(ov) = doc
            .components_named("VEVENT")
            .into_iter()
            .find(|o| doc.first_prop(*o, "RECURRENCE-ID").is_some())
        {
            doc.remove_component(ov);
        }
        return Ok(true);
    };
    let mut p = recurrence::from_json(v, start.date()).map_err(|e| PatchError::field("Recurrence", e))?;
    if p.start != start.date() && !c.has("Start") {
        // PatternStartDate moves the series: DTSTART and DTEND shift by the same days.
        let by = Duration::days((p.start - start.date()).num_days());
        let end = end.unwrap_or(start).add(by);
        start = start.add(by);
        write_time(doc, t, "DTSTART", &start);
        doc.remove(t.get(doc), "DURATION");
        write_time(doc, t, "DTEND", &end);
    }
    p.start = start.date();
    let old = given(current.get("Recurrence")).and_then(|o| recurrence::from_json(o, start.date()).ok());
    if old.map(|o| recurrence::Pattern { start: p.start, ..o }).as_ref() == Some(&p)
        && doc.first_prop(t.get(doc), "RRULE").is_some()
    {
        return Ok(false);
    }
    let old_rule = doc.first_prop(t.get(doc), "RRULE").map(|l| l.value().to_owned());
    let rule = recurrence::keep_parts(old_rule.as_deref(), recurrence::to_rrule(&p, &start));
    doc.set(t.get(doc), "RRULE", &format!("RRULE:{rule}"));
    Ok(true)
}

/// Every TZID parameter the object's properties use.
fn used_tzids(doc: &Doc) -> BTreeSet<String> {
    doc.lines
        .iter()
        .filter(|l| l.name() != "TZID")
        .filter_map(|l| l.param("TZID"))
        .collect()
}

/// Adds a VTIMEZONE for each TZID that lacks one (when the object carries VTIMEZONEs), and drops
/// those this patch stopped using.
fn sync_vtimezones(doc: &mut Doc, t: Target, generate: bool, before: &BTreeSet<String>) {
    let used = used_tzids(doc);
    let tzid_of = |doc: &Doc, c| {
        doc.first_prop(c, "TZID")
            .map(|l| l.value().trim().trim_matches('"').to_owned())
    };
    while let Some(vtz) = doc
        .components_named("VTIMEZONE")
        .into_iter()
        .find(|&c| tzid_of(doc, c).is_some_and(|id| before.contains(&id) && !used.contains(&id)))
    {
        doc.remove_component(vtz);
    }
    if !generate {
        return;
    }
    let have: BTreeSet<String> = doc
        .components_named("VTIMEZONE")
        .into_iter()
        .filter_map(|c| tzid_of(doc, c))
        .collect();
    let first = times(doc, t.get(doc))
        .ok()
        .and_then(|(s, _)| s)
        .map_or(2026, |s| s.date().year());
    let last = doc
        .first_prop(t.get(doc), "RRULE")
        .and_then(|l| {
            l.value()
                .split(';')
                .find_map(|p| p.strip_prefix("UNTIL="))
                .map(str::to_owned)
        })
        .and_then(|u| u.get(..4).and_then(|y| y.parse::<i32>().ok()))
        .unwrap_or(first + 1)
        .clamp(first + 1, first + 10);
    for id in used.difference(&have) {
        let Some(calcard::common::timezone::Tz::Tz(tz)) = zones::resolve(id) else {
            continue;
        };
        if tz == chrono_tz::UTC {
            continue;
        }
        let text = tzrules::generate_vtimezone(&escape_text(id), tz, first, last);
        let at = doc
            .components()
            .into_iter()
            .find(|(n, c)| c.depth == 1 && n != "VTIMEZONE")
            .map_or(t.get(doc).begin, |(_, c)| c.begin);
        let contents: Vec<String> = Doc::parse(&text).lines.into_iter().map(|l| l.unfolded).collect();
        doc.insert_lines(at, &contents);
    }
}
