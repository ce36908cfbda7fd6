//! The task field set (Outlook's TaskItem) read from a VTODO (RFC 5545 §3.6.2), patched in place
//! and created. Outlook's tasks have dates, not times: a DUE or DTSTART with a time keeps its
//! time and zone when its date is patched.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde_json::Value;

use super::alarm::{self, Trigger};
use super::appointment::{master, skeleton};
use super::caltime::{self, When};
use super::props::{self, Changes, Target, put};
use super::{FieldSet, PatchError, given, recurrence};
use crate::formats::lines::{Component, Doc};

/// Outlook's "waiting on someone else" has no RFC 5545 STATUS: it is written NEEDS-ACTION plus this.
const WAITING: &str = "X-OPCONNECT-STATUS";

/// Keys an Unsupported task refuses to patch.
const RECURRENCE_KEYS: &[&str] = &["Recurrence", "StartDate"];

pub fn read(body: &str) -> Result<FieldSet, String> {
    read_doc(&Doc::parse(body))
}

pub fn patch(body: &str, changes: &FieldSet) -> Result<String, PatchError> {
    patch_at(body, changes, Utc::now(), false)
}

pub fn create(uid: &str, fields: &FieldSet) -> Result<String, PatchError> {
    create_at(uid, fields, Utc::now())
}

pub fn create_at(uid: &str, fields: &FieldSet, now: DateTime<Utc>) -> Result<String, PatchError> {
    patch_at(&skeleton("VTODO", uid, now), fields, now, true)
}

fn when(doc: &Doc, comp: Component, name: &str) -> Option<When> {
    doc.first_prop(comp, name)
        .and_then(|l| caltime::parse_value(doc, l))
}

/// STATUS (RFC 5545 §3.8.1.11) → Outlook's status; a COMPLETED time alone means complete.
fn status(doc: &Doc, comp: Component) -> i64 {
    match doc
        .first_prop(comp, "STATUS")
        .map(|l| l.value().trim().to_ascii_uppercase())
        .as_deref()
    {
        Some("IN-PROCESS") => 1,
        Some("COMPLETED") => 2,
        Some("CANCELLED") => 4,
        _ if doc.first_prop(comp, "COMPLETED").is_some() => 2,
        _ if doc.first_prop(comp, WAITING).is_some() => 3,
        _ => 0,
    }
}

/// The zone dates of this task are seen in (DUE's or DTSTART's), for COMPLETED and reminders.
fn task_zone(doc: &Doc, comp: Component) -> calcard::common::timezone::Tz {
    [when(doc, comp, "DUE"), when(doc, comp, "DTSTART")]
        .into_iter()
        .flatten()
        .find_map(|w| w.zone().filter(|z| !z.is_floating()))
        .unwrap_or(caltime::UTC)
}

/// The reminder: the first VALARM with an absolute trigger, else the first one at all, as an instant.
fn reminder(doc: &Doc, comp: Component) -> Option<(alarm::Alarm, Option<DateTime<Utc>>)> {
    let alarms = alarm::alarms(doc, comp);
    let pick = alarms
        .iter()
        .position(|a| matches!(alarm::trigger(doc, a.comp), Some(Trigger::Absolute(_))))
        .or((!alarms.is_empty()).then_some(0))?;
    let a = alarms.into_iter().nth(pick)?;
    let at = match alarm::trigger(doc, a.comp) {
        Some(Trigger::Absolute(t)) => Some(t),
        Some(Trigger::Relative { offset, to_end }) => {
            let anchor = if to_end { "DUE" } else { "DTSTART" };
            when(doc, comp, anchor)
                .or_else(|| when(doc, comp, "DUE"))
                .map(|w| w.utc() + offset)
        }
        None => None,
    };
    Some((a, at))
}

pub fn read_doc(doc: &Doc) -> Result<FieldSet, String> {
    let (_, comp) = master(doc, "VTODO")
        .or_else(|| doc.components_named("VTODO").first().map(|c| (0, *c)))
        .ok_or("no VTODO")?;
    let mut f = FieldSet::new();
    let mut reasons: Vec<String> = Vec::new();
    put(&mut f, "GlobalUid", props::text(doc, comp, "UID"));
    put(&mut f, "Subject", props::text(doc, comp, "SUMMARY"));
    put(&mut f, "Body", props::text(doc, comp, "DESCRIPTION"));
    let start = when(doc, comp, "DTSTART");
    let due = when(doc, comp, "DUE");
    put(
        &mut f,
        "StartDate",
        start.map(|w| w.date().format("%Y-%m-%d").to_string()),
    );
    put(
        &mut f,
        "DueDate",
        due.map(|w| w.date().format("%Y-%m-%d").to_string()),
    );
    let status = status(doc, comp);
    f.insert("Status".into(), status.into());
    f.insert("Complete".into(), (status == 2).into());
    if let Some(done) = when(doc, comp, "COMPLETED") {
        let date = done.in_zone(task_zone(doc, comp)).date();
        f.insert("DateCompleted".into(), date.format("%Y-%m-%d").to_string().into());
    }
    let percent = doc
        .first_prop(comp, "PERCENT-COMPLETE")
        .and_then(|l| l.value().trim().parse::<i64>().ok());
    f.insert(
        "PercentComplete".into(),
        percent.unwrap_or(0).clamp(0, 100).into(),
    );
    f.insert("Importance".into(), props::importance(doc, comp).into());
    f.insert("Sensitivity".into(), props::sensitivity(doc, comp).into());
    put(&mut f, "Categories", props::categories(doc, comp));
    match reminder(doc, comp) {
        Some((_, Some(at))) => {
            f.insert("ReminderSet".into(), true.into());
            f.insert("ReminderTime".into(), caltime::fmt_instant(&at).into());
        }
        _ => {
            f.insert("ReminderSet".into(), false.into());
        }
    }
    let rrules = doc.find_prop(comp, "RRULE");
    f.insert("IsRecurring".into(), (!rrules.is_empty()).into());
    if rrules.len() > 1 {
        reasons.push("several RRULEs".into());
    }
    if !doc.find_prop(comp, "RDATE").is_empty() {
        reasons.push("RDATE (occurrences outside the rule)".into());
    }
    match (rrules.first(), start.or(due)) {
        (Some(&i), Some(anchor)) => match recurrence::from_rrule(doc.lines[i].value(), &anchor) {
            Ok(p) => {
                f.insert("Recurrence".into(), recurrence::to_json(&p));
            }
            Err(why) => reasons.push(why),
        },
        (Some(_), None) => reasons.push("a rule without DTSTART or DUE to start from".into()),
        _ => {}
    }
    if !reasons.is_empty() {
        f.insert("Unsupported".into(), reasons.join("; ").into());
    }
    Ok(f)
}

pub fn patch_at(
    body: &str,
    changes: &FieldSet,
    now: DateTime<Utc>,
    create: bool,
) -> Result<String, PatchError> {
    let mut doc = Doc::parse(body);
    let current = read_doc(&doc).map_err(PatchError::Unreadable)?;
    let (index, _) = master(&doc, "VTODO").ok_or_else(|| PatchError::Unfaithful("no master VTODO".into()))?;
    let t = Target { name: "VTODO", index };
    let c = Changes(changes);
    let differs = |k: &str| changes.contains_key(k) && given(changes.get(k)) != given(current.get(k));
    if let Some(why) = current.get("Unsupported").and_then(Value::as_str)
        && RECURRENCE_KEYS.iter().any(|k| differs(k))
    {
        return Err(PatchError::Unfaithful(why.to_owned()));
    }
    let mut significant = false;
    let texts = [("Subject", "SUMMARY"), ("Body", "DESCRIPTION")];
    props::patch_descriptive(&mut doc, t, &c, &differs, &texts)?;
    for (key, prop, other) in [("StartDate", "DTSTART", "DUE"), ("DueDate", "DUE", "DTSTART")] {
        if differs(key) {
            let date = c
                .str(key)?
                .map(caltime::parse_field_date)
                .transpose()
                .map_err(|e| PatchError::field(key, e))?;
            write_date(&mut doc, t, prop, other, date);
            significant = true;
        }
    }
    if ["Status", "Complete", "PercentComplete", "DateCompleted"]
        .iter()
        .any(|k| differs(k))
    {
        patch_progress(&mut doc, t, &c, &current, now, &differs)?;
    }
    if differs("ReminderSet") || differs("ReminderTime") {
        patch_reminder(&mut doc, t, &c, &current)?;
    }
    if differs("Recurrence") {
        significant |= patch_recurrence(&mut doc, t, &c, &current)?;
    }
    if significant && !create {
        props::bump_sequence(&mut doc, t);
    }
    props::stamp(&mut doc, t, now);
    Ok(doc.to_string())
}

/// Writes a date property, keeping the time and zone of a date-time one (RFC 5545 §3.6.2: DUE
/// and DTSTART share their value type).
fn write_date(doc: &mut Doc, t: Target, name: &str, other: &str, date: Option<NaiveDate>) {
    let comp = t.get(doc);
    let Some(date) = date else {
        doc.remove(comp, name);
        return;
    };
    let template = doc.first_prop(comp, name).or_else(|| doc.first_prop(comp, other));
    let (w, tzid) = match template.and_then(|l| Some((caltime::parse_value(doc, l)?, l.param("TZID")))) {
        Some((When::Time(old, tz), tzid)) => {
            let time = if doc.first_prop(comp, name).is_some() {
                old.time()
            } else {
                NaiveTime::MIN
            };
            (When::Time(date.and_time(time), tz), tzid)
        }
        _ => (When::Date(date), None),
    };
    doc.set(comp, name, &caltime::property(name, &w, tzid.as_deref()));
}

fn patch_progress(
    doc: &mut Doc,
    t: Target,
    c: &Changes,
    current: &FieldSet,
    now: DateTime<Utc>,
    differs: &dyn Fn(&str) -> bool,
) -> Result<(), PatchError> {
    let int = |k: &str| -> Result<Option<i64>, PatchError> {
        if c.has(k) {
            c.int(k)
        } else {
            Ok(current.get(k).and_then(Value::as_i64))
        }
    };
    let old_status = current.get("Status").and_then(Value::as_i64).unwrap_or(0);
    let percent = int("PercentComplete")?.unwrap_or(0);
    let mut status = int("Status")?.unwrap_or(0);
    if !(0..=4).contains(&status) {
        return Err(PatchError::field("Status", "must be 0 to 4"));
    }
    if differs("Complete") {
        if c.bool("Complete")?.unwrap_or(false) {
            status = 2;
        } else if status == 2 {
            status = if percent > 0 { 1 } else { 0 };
        }
    }
    if differs("PercentComplete") {
        if !(0..=100).contains(&percent) {
            return Err(PatchError::field("PercentComplete", "must be 0 to 100"));
        }
        if percent > 0 || doc.first_prop(t.get(doc), "PERCENT-COMPLETE").is_some() {
            doc.set(
                t.get(doc),
                "PERCENT-COMPLETE",
                &format!("PERCENT-COMPLETE:{percent}"),
            );
        }
    } else if status == 2 && old_status != 2 && !c.has("PercentComplete") {
        doc.set(t.get(doc), "PERCENT-COMPLETE", "PERCENT-COMPLETE:100");
    }
    if status != old_status || doc.first_prop(t.get(doc), "STATUS").is_none() && status != 0 {
        let value = [
            "NEEDS-ACTION",
            "IN-PROCESS",
            "COMPLETED",
            "NEEDS-ACTION",
            "CANCELLED",
        ][status as usize];
        doc.set(t.get(doc), "STATUS", &format!("STATUS:{value}"));
        if status == 3 {
            doc.set(t.get(doc), WAITING, &format!("{WAITING}:WAITING"));
        } else {
            doc.remove(t.get(doc), WAITING);
        }
    }
    if status != 2 {
        doc.remove(t.get(doc), "COMPLETED");
    } else if differs("DateCompleted") || doc.first_prop(t.get(doc), "COMPLETED").is_none() {
        let at = match c.str("DateCompleted")? {
            // Noon UTC: the same date wherever the reader is (±12 h).
            Some(d) => caltime::parse_field_date(d)
                .map_err(|e| PatchError::field("DateCompleted", e))?
                .and_hms_opt(12, 0, 0)
                .unwrap_or_default()
                .and_utc(),
            None => now,
        };
        doc.set(
            t.get(doc),
            "COMPLETED",
            &format!("COMPLETED:{}", caltime::fmt_utc(&at)),
        );
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
    let existing = reminder(doc, t.get(doc));
    if !set {
        if let Some((a, _)) = existing {
            alarm::remove(doc, a.target);
        }
        return Ok(());
    }
    let text = if c.has("ReminderTime") {
        c.str("ReminderTime")?
    } else {
        current.get("ReminderTime").and_then(Value::as_str)
    };
    let at = caltime::parse_instant(
        text.ok_or_else(|| PatchError::field("ReminderTime", "is needed when ReminderSet is true"))?,
    )
    .map_err(|e| PatchError::field("ReminderTime", e))?;
    match existing {
        Some((_, Some(old))) if old == at => {}
        Some((a, _)) => alarm::set_trigger(doc, a.target, &alarm::absolute_trigger(&at)),
        None => alarm::add(doc, t, &alarm::absolute_trigger(&at)),
    }
    Ok(())
}

fn patch_recurrence(doc: &mut Doc, t: Target, c: &Changes, current: &FieldSet) -> Result<bool, PatchError> {
    let comp = t.get(doc);
    let Some(v) = given(c.value("Recurrence")) else {
        doc.remove(comp, "RRULE");
        return Ok(true);
    };
    let anchor = when(doc, comp, "DTSTART")
        .or_else(|| when(doc, comp, "DUE"))
        .ok_or_else(|| PatchError::field("Recurrence", "a recurring task needs StartDate or DueDate"))?;
    let mut p = recurrence::from_json(v, anchor.date()).map_err(|e| PatchError::field("Recurrence", e))?;
    p.start = anchor.date();
    let old = given(current.get("Recurrence")).and_then(|o| recurrence::from_json(o, anchor.date()).ok());
    if old.map(|o| recurrence::Pattern { start: p.start, ..o }).as_ref() == Some(&p)
        && doc.first_prop(comp, "RRULE").is_some()
    {
        return Ok(false);
    }
    let old_rule = doc.first_prop(comp, "RRULE").map(|l| l.value().to_owned());
    let rule = recurrence::keep_parts(old_rule.as_deref(), recurrence::to_rrule(&p, &anchor));
    doc.set(comp, "RRULE", &format!("RRULE:{rule}"));
    Ok(true)
}
