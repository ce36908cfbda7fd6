//! The reminder Outlook shows, as one VALARM among those other clients wrote (RFC 5545 §3.6.6,
//! TRIGGER §3.8.6.3). Only that alarm is read and edited; every other VALARM stays byte for byte.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};

use super::caltime;
use super::props::Target;
use crate::formats::lines::{Component, Doc, Line};

/// A VALARM of a component, addressed as the `index`th VALARM of the object.
pub struct Alarm {
    pub target: Target,
    pub comp: Component,
}

/// The TRIGGER of an alarm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Trigger {
    /// Relative to the start (`RELATED=END`: to the end or due time).
    Relative {
        offset: Duration,
        to_end: bool,
    },
    Absolute(DateTime<Utc>),
}

/// The VALARMs nested in `comp`, in order.
pub fn alarms(doc: &Doc, comp: Component) -> Vec<Alarm> {
    doc.components_named("VALARM")
        .into_iter()
        .enumerate()
        .filter(|(_, a)| a.begin > comp.begin && a.end < comp.end)
        .map(|(index, a)| Alarm {
            target: Target {
                name: "VALARM",
                index,
            },
            comp: a,
        })
        .collect()
}

pub fn trigger(doc: &Doc, alarm: Component) -> Option<Trigger> {
    let line = doc.first_prop(alarm, "TRIGGER")?;
    parse_trigger(line)
}

fn parse_trigger(line: &Line) -> Option<Trigger> {
    if line
        .param("VALUE")
        .is_some_and(|v| v.eq_ignore_ascii_case("DATE-TIME"))
    {
        let t =
            NaiveDateTime::parse_from_str(line.value().trim().trim_end_matches('Z'), "%Y%m%dT%H%M%S").ok()?;
        return Some(Trigger::Absolute(t.and_utc()));
    }
    let offset = caltime::parse_duration(line.value())?;
    let to_end = line
        .param("RELATED")
        .is_some_and(|v| v.eq_ignore_ascii_case("END"));
    Some(Trigger::Relative { offset, to_end })
}

/// The appointment's reminder: the first alarm with a relative trigger, as the offset from the
/// start (a trigger `RELATED=END` counts from the end: the event's duration is added).
pub fn appointment_reminder(doc: &Doc, comp: Component) -> Option<(Alarm, Duration)> {
    alarms(doc, comp)
        .into_iter()
        .find_map(|a| match trigger(doc, a.comp) {
            Some(Trigger::Relative { offset, to_end }) => {
                let length = match super::appointment::times(doc, comp) {
                    Ok((Some(s), Some(e))) if to_end => e.since(&s),
                    _ => Duration::zero(),
                };
                Some((a, offset + length))
            }
            _ => None,
        })
}

/// Minutes before the start Outlook shows for a relative offset (`-PT15M` → 15).
pub fn minutes_before(offset: Duration) -> i64 {
    -offset.num_minutes()
}

/// Points the alarm's TRIGGER at `content` (a whole TRIGGER line), unless it already means
/// the same (the line then stays as written).
pub fn set_trigger(doc: &mut Doc, alarm: Target, content: &str) {
    let comp = alarm.get(doc);
    let same =
        doc.first_prop(comp, "TRIGGER").and_then(parse_trigger) == parse_trigger(&doc.new_line(content));
    if !same {
        doc.set(comp, "TRIGGER", content);
    }
}

pub fn relative_trigger(minutes_before: i64) -> String {
    format!(
        "TRIGGER:{}",
        caltime::fmt_duration(Duration::minutes(-minutes_before))
    )
}

pub fn absolute_trigger(at: &DateTime<Utc>) -> String {
    format!("TRIGGER;VALUE=DATE-TIME:{}", caltime::fmt_utc(at))
}

/// Adds a display alarm with `trigger` at the end of `owner` (after its other alarms).
pub fn add(doc: &mut Doc, owner: Target, trigger: &str) {
    let end = owner.get(doc).end;
    doc.insert_lines(
        end,
        &[
            "BEGIN:VALARM".into(),
            "ACTION:DISPLAY".into(),
            "DESCRIPTION:Reminder".into(),
            trigger.into(),
            "END:VALARM".into(),
        ],
    );
}

pub fn remove(doc: &mut Doc, alarm: Target) {
    let comp = alarm.get(doc);
    doc.remove_component(comp);
}
