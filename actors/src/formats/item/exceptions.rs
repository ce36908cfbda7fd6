//! Outlook's recurrence exceptions against EXDATE (RFC 5545 §3.8.5.1) and overriding components
//! (RECURRENCE-ID, §3.8.4.4), both ways. An exception is addressed by its original start written
//! as the series' Start is; Outlook's all-day overrides carry a date-time RECURRENCE-ID in a
//! Windows zone, which maps to the date of the nearest local midnight.

use chrono::{Duration, Timelike};
use serde_json::{Value, json};

use super::appointment::{occurrence_fields, times};
use super::appointment_patch::set_busy;
use super::caltime::{self, When};
use super::props::{self, Target};
use super::{FieldSet, PatchError};
use crate::formats::lines::{Component, Doc};

const TEXT_KEYS: [(&str, &str); 3] = [
    ("Subject", "SUMMARY"),
    ("Location", "LOCATION"),
    ("Body", "DESCRIPTION"),
];

/// Master lines an override does not copy: the rule, the series' times and the stamps.
const NOT_COPIED: &[&str] = &[
    "RRULE",
    "RDATE",
    "EXDATE",
    "EXRULE",
    "DTSTART",
    "DTEND",
    "DURATION",
    "RECURRENCE-ID",
    "DTSTAMP",
    "LAST-MODIFIED",
    "CREATED",
];

/// The series an exception belongs to: its start and end after any edit of this patch.
pub struct Series {
    pub start: When,
    pub end: When,
    /// The TZID text the master's DTSTART carries (kept for new lines).
    pub tzid: Option<String>,
    /// The zone Start is shown in (`StartTimeZone`).
    pub zone_field: Option<String>,
}

impl Series {
    pub fn of(doc: &Doc, master: Component) -> Option<Series> {
        let (start, end) = times(doc, master).ok()?;
        let start = start?;
        let zone_field = caltime::to_field(&start).1;
        Some(Series {
            start,
            end: end.unwrap_or(start),
            tzid: doc.first_prop(master, "DTSTART").and_then(|l| l.param("TZID")),
            zone_field,
        })
    }

    /// A RECURRENCE-ID or EXDATE value as the original start of an occurrence of this series.
    pub fn original(&self, v: &When) -> When {
        match (self.start, v) {
            (When::Date(_), When::Date(d)) => When::Date(*d),
            (When::Date(_), When::Time(t, _)) => When::Date(if t.hour() >= 12 {
                t.date() + Duration::days(1)
            } else {
                t.date()
            }),
            (When::Time(_, tz), When::Time(..)) => v.in_zone(tz),
            (When::Time(st, tz), When::Date(d)) => When::Time(d.and_time(st.time()), tz),
        }
    }

    fn show(&self, w: &When) -> String {
        caltime::to_field(w).0
    }

    fn parse(&self, text: &str, key: &str) -> Result<When, PatchError> {
        let w =
            caltime::from_field(text, self.zone_field.as_deref()).map_err(|e| PatchError::field(key, e))?;
        Ok(match (self.start, w) {
            (When::Date(_), w) => When::Date(w.date()),
            (When::Time(_, tz), When::Time(..)) => w.in_zone(tz),
            (When::Time(st, tz), When::Date(d)) => When::Time(d.and_time(st.time()), tz),
        })
    }

    fn duration(&self) -> Duration {
        self.end.since(&self.start)
    }

    fn line(&self, name: &str, w: &When) -> String {
        caltime::property(name, w, if w.is_date() { None } else { self.tzid.as_deref() })
    }
}

fn overrides(doc: &Doc) -> Vec<(usize, Component)> {
    doc.components_named("VEVENT")
        .into_iter()
        .enumerate()
        .filter(|(_, c)| doc.first_prop(*c, "RECURRENCE-ID").is_some())
        .collect()
}

fn rid(doc: &Doc, series: &Series, comp: Component) -> Option<When> {
    let line = doc.first_prop(comp, "RECURRENCE-ID")?;
    caltime::parse_value(doc, line).map(|w| series.original(&w))
}

/// The `Exceptions` list of a series.
pub fn read(doc: &Doc, master: Component, start: &When, end: &When, reasons: &mut Vec<String>) -> Vec<Value> {
    let Some(mut series) = Series::of(doc, master) else {
        return Vec::new();
    };
    series.start = *start;
    series.end = *end;
    let mut out: Vec<(chrono::DateTime<chrono::Utc>, Value)> = Vec::new();
    let mut deleted = Vec::new();
    for &i in &doc.find_prop(master, "EXDATE") {
        for v in caltime::parse_list(doc, &doc.lines[i]) {
            let o = series.original(&v);
            deleted.push(o);
            out.push((o.utc(), json!({"OriginalDate": series.show(&o), "Deleted": true})));
        }
    }
    let master_occ = occurrence_fields(doc, master);
    for (_, comp) in overrides(doc) {
        let Some(line) = doc.first_prop(comp, "RECURRENCE-ID") else {
            continue;
        };
        if line
            .param("RANGE")
            .is_some_and(|r| r.eq_ignore_ascii_case("THISANDFUTURE"))
        {
            reasons
                .push("RECURRENCE-ID;RANGE=THISANDFUTURE (Outlook changes one occurrence at a time)".into());
        }
        let Some(o) = rid(doc, &series, comp) else {
            continue;
        };
        if deleted.contains(&o) {
            continue;
        }
        let mut entry = json!({"OriginalDate": series.show(&o), "Deleted": false});
        for (key, value) in occurrence_fields(doc, comp) {
            if master_occ.get(&key) != Some(&value) {
                entry[key] = value;
            }
        }
        let (s, e) = times(doc, comp).unwrap_or((None, None));
        let s = s.map_or(o, |s| s.in_zone_of(&series));
        let e = e.map_or(s.add(series.duration()), |e| e.in_zone_of(&series));
        if s.is_date() != series.start.is_date() {
            entry["AllDayEvent"] = s.is_date().into();
            entry["Start"] = series.show(&s).into();
            entry["End"] = series.show(&e).into();
        } else {
            if s != o {
                entry["Start"] = series.show(&s).into();
            }
            if e != s.add(series.duration()) {
                entry["End"] = series.show(&e).into();
            }
        }
        out.push((o.utc(), entry));
    }
    out.sort_by_key(|(at, _)| *at);
    out.into_iter().map(|(_, v)| v).collect()
}

trait InZone {
    fn in_zone_of(&self, series: &Series) -> When;
}

impl InZone for When {
    /// An override's own time in the series' zone (dates stay dates; not rounded like a
    /// RECURRENCE-ID: a moved occurrence keeps its time).
    fn in_zone_of(&self, series: &Series) -> When {
        match (self, series.start) {
            (When::Time(..), When::Time(_, tz)) => self.in_zone(tz),
            _ => *self,
        }
    }
}

/// Applies a new `Exceptions` list. Returns whether the series' EXDATEs changed (a change
/// RFC 5546 counts for SEQUENCE).
pub fn patch(
    doc: &mut Doc,
    master: Target,
    series: &Series,
    new: &Value,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<bool, PatchError> {
    let list = match new {
        Value::Null => Vec::new(),
        Value::Array(a) => a.clone(),
        _ => return Err(PatchError::field("Exceptions", "must be a list or null")),
    };
    let mut wanted_deleted = Vec::new();
    let mut wanted_changed: Vec<(When, &serde_json::Map<String, Value>)> = Vec::new();
    for e in &list {
        let o = e
            .as_object()
            .ok_or_else(|| PatchError::field("Exceptions", "entries must be objects"))?;
        let date = o
            .get("OriginalDate")
            .and_then(Value::as_str)
            .ok_or_else(|| PatchError::field("Exceptions", "each entry needs OriginalDate"))?;
        let original = series.parse(date, "Exceptions")?;
        if o.get("Deleted").and_then(Value::as_bool).unwrap_or(false) {
            wanted_deleted.push(original);
        } else {
            wanted_changed.push((original, o));
        }
    }
    let mut exdates_changed = false;
    // EXDATE values no longer wanted go; wanted ones are added.
    let mut present = Vec::new();
    let comp = master.get(doc);
    for &i in doc.find_prop(comp, "EXDATE").iter().rev() {
        let line = doc.lines[i].clone();
        let values: Vec<&str> = line.value().split(',').collect();
        let parsed = caltime::parse_list(doc, &line);
        if parsed.len() != values.len() {
            continue;
        }
        let keep: Vec<&str> = values
            .iter()
            .zip(&parsed)
            .filter(|(_, w)| wanted_deleted.contains(&series.original(w)))
            .map(|(v, _)| *v)
            .collect();
        present.extend(parsed.iter().map(|w| series.original(w)));
        if keep.len() == values.len() {
            continue;
        }
        exdates_changed = true;
        if keep.is_empty() {
            doc.lines.remove(i);
        } else {
            let head = &line.unfolded[..line.unfolded.len() - line.value().len()];
            doc.replace(i, &format!("{head}{}", keep.join(",")));
        }
    }
    for w in &wanted_deleted {
        if !present.contains(w) {
            exdates_changed = true;
            let comp = master.get(doc);
            doc.insert_property(comp, doc.new_line(&series.line("EXDATE", w)));
        }
    }
    // Overrides: update or create the changed ones, then drop the rest.
    let master_occ = occurrence_fields(doc, master.get(doc));
    for (original, entry) in &wanted_changed {
        let existing = overrides(doc)
            .into_iter()
            .find(|(_, c)| rid(doc, series, *c).as_ref() == Some(original));
        let target = match existing {
            Some((index, _)) => Target {
                name: "VEVENT",
                index,
            },
            None => create_override(doc, master, series, original, now),
        };
        update_override(doc, target, series, original, entry, &master_occ, now)?;
    }
    loop {
        let doomed = overrides(doc).into_iter().find(|(_, c)| {
            rid(doc, series, *c).is_some_and(|o| !wanted_changed.iter().any(|(w, _)| *w == o))
        });
        match doomed {
            Some((_, comp)) => doc.remove_component(comp),
            None => break,
        }
    }
    Ok(exdates_changed)
}

/// A copy of the master (its alarms, attendees and other properties) for one occurrence.
fn create_override(
    doc: &mut Doc,
    master: Target,
    series: &Series,
    original: &When,
    now: chrono::DateTime<chrono::Utc>,
) -> Target {
    let m = master.get(doc);
    let own = doc.own_lines(m);
    let lines: Vec<_> = (m.begin..=m.end)
        .filter(|i| !(own.contains(i) && NOT_COPIED.contains(&doc.lines[*i].name().as_str())))
        .map(|i| doc.lines[i].clone())
        .collect();
    let events = doc.components_named("VEVENT");
    let at = events.iter().map(|c| c.end + 1).max().unwrap_or(m.end + 1);
    let index = events.iter().filter(|c| c.end < at).count();
    for (k, line) in lines.into_iter().enumerate() {
        doc.lines.insert(at + k, line);
    }
    let target = Target {
        name: "VEVENT",
        index,
    };
    let comp = target.get(doc);
    let rid_line = doc.new_line(&series.line("RECURRENCE-ID", original));
    doc.insert_property(comp, rid_line);
    let start = *original;
    let end = start.add(series.duration());
    doc.set(target.get(doc), "DTSTART", &series.line("DTSTART", &start));
    doc.set(target.get(doc), "DTEND", &series.line("DTEND", &end));
    // RFC 5545 §3.6.1: DTSTAMP is required in every VEVENT.
    props::stamp(doc, target, now);
    target
}

fn update_override(
    doc: &mut Doc,
    target: Target,
    series: &Series,
    original: &When,
    entry: &serde_json::Map<String, Value>,
    master_occ: &FieldSet,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), PatchError> {
    let current = occurrence_fields(doc, target.get(doc));
    let mut changed = false;
    for (key, prop) in TEXT_KEYS {
        let want = entry
            .get(key)
            .or(master_occ.get(key))
            .and_then(Value::as_str)
            .unwrap_or("");
        if current.get(key).and_then(Value::as_str) != Some(want) {
            props::set_text(doc, target, prop, Some(want));
            changed = true;
        }
    }
    let busy = entry
        .get("BusyStatus")
        .or(master_occ.get("BusyStatus"))
        .and_then(Value::as_i64)
        .unwrap_or(2);
    if current.get("BusyStatus").and_then(Value::as_i64) != Some(busy) {
        set_busy(doc, target, busy)?;
        changed = true;
    }
    let all_day = entry
        .get("AllDayEvent")
        .and_then(Value::as_bool)
        .unwrap_or(series.start.is_date());
    let start = match entry.get("Start").and_then(Value::as_str) {
        Some(s) => series.parse(s, "Exceptions")?,
        None => *original,
    };
    let start = if all_day { When::Date(start.date()) } else { start };
    let end = match entry.get("End").and_then(Value::as_str) {
        Some(e) => series.parse(e, "Exceptions")?,
        None if all_day != series.start.is_date() => start.add(Duration::days(1)),
        None => start.add(series.duration()),
    };
    let end = if all_day { When::Date(end.date()) } else { end };
    if !all_day && (start.is_date() || end.is_date()) {
        return Err(PatchError::field(
            "Exceptions",
            "Start and End of a timed occurrence need a time",
        ));
    }
    let (s, e) = times(doc, target.get(doc)).map_err(PatchError::Unreadable)?;
    if s.map(|s| s.in_zone_of(series)) != Some(start) || e.map(|e| e.in_zone_of(series)) != Some(end) {
        let comp = target.get(doc);
        doc.remove(comp, "DURATION");
        doc.set(target.get(doc), "DTSTART", &series.line("DTSTART", &start));
        doc.set(target.get(doc), "DTEND", &series.line("DTEND", &end));
        props::bump_sequence(doc, target);
        changed = true;
    }
    if changed {
        props::stamp(doc, target, now);
    }
    Ok(())
}
