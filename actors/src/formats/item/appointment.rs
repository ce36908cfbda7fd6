//! SCRATCH (feed's own testing, reverted before merge): Subject-only appointment mapping.

use super::{FieldSet, PatchError};
use crate::formats::lines::{Doc, escape_text, unescape_text};

fn master(doc: &Doc) -> Option<crate::formats::lines::Component> {
    doc.components_named("VEVENT")
        .into_iter()
        .find(|c| doc.first(*c, "RECURRENCE-ID").is_none())
}

pub fn read(body: &str) -> Result<FieldSet, String> {
    let doc = Doc::parse(body);
    let m = master(&doc).ok_or("no VEVENT")?;
    let mut f = FieldSet::new();
    for (key, prop) in [("Subject", "SUMMARY"), ("Location", "LOCATION")] {
        if let Some(l) = doc.first(m, prop) {
            f.insert(key.into(), unescape_text(l.value()).into());
        }
    }
    let trigger = doc
        .components_named("VALARM")
        .into_iter()
        .find_map(|a| doc.first(a, "TRIGGER").map(|l| l.value().to_owned()));
    f.insert("ReminderSet".into(), trigger.is_some().into());
    if let Some(t) = trigger
        && let Some(n) = t.strip_prefix("-PT").and_then(|x| x.strip_suffix('M'))
        && let Ok(n) = n.parse::<u64>()
    {
        f.insert("ReminderMinutesBeforeStart".into(), n.into());
    }
    f.insert("IsRecurring".into(), doc.first(m, "RRULE").is_some().into());
    Ok(f)
}

pub fn patch(body: &str, changes: &FieldSet) -> Result<String, PatchError> {
    let mut doc = Doc::parse(body);
    let m = master(&doc).ok_or(PatchError::Unreadable("no VEVENT".into()))?;
    if let Some(s) = changes.get("Subject").and_then(|v| v.as_str()) {
        doc.set(m, "SUMMARY", &format!("SUMMARY:{}", escape_text(s)));
    }
    Ok(doc.to_string())
}

pub fn create(_uid: &str, _fields: &FieldSet) -> Result<String, PatchError> {
    Err(PatchError::Unfaithful("the appointment field set is not built yet".into()))
}
