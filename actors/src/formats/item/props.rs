//! Properties appointments and tasks share (RFC 5545 §3.8.1 descriptive, §3.8.7 change
//! management), read from and written into a [`Doc`] one line at a time, and the typed access to
//! field-set values that patches need.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{FieldSet, PatchError, caltime};
use crate::formats::lines::{Component, Doc, escape_text, split_escaped, unescape_text};

/// Which component an edit addresses: the `index`th component named `name`. Edits shift line
/// numbers, so a [`Component`] is looked up again after each one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    pub name: &'static str,
    pub index: usize,
}

impl Target {
    pub fn get(&self, doc: &Doc) -> Component {
        doc.components_named(self.name)[self.index]
    }
}

/// The unescaped text of the first `name` line.
pub fn text(doc: &Doc, comp: Component, name: &str) -> Option<String> {
    doc.first_prop(comp, name).map(|l| unescape_text(l.value()))
}

/// Sets or (for null or "") removes a TEXT property. An existing line keeps its parameters
/// (LANGUAGE…) except ALTREP, which pointed at the old text; a new DESCRIPTION drops Outlook's
/// X-ALT-DESC, the old text's HTML form, which Outlook would show instead.
pub fn set_text(doc: &mut Doc, t: Target, name: &str, value: Option<&str>) {
    if name == "DESCRIPTION" {
        doc.remove(t.get(doc), "X-ALT-DESC");
    }
    let Some(v) = value.filter(|v| !v.is_empty()) else {
        doc.remove(t.get(doc), name);
        return;
    };
    let content = match doc.first_prop(t.get(doc), name) {
        Some(line) => {
            let kept = doc.new_line(&line.with_param("ALTREP", None));
            let head = &kept.unfolded[..kept.unfolded.len() - kept.value().len()];
            format!("{head}{}", escape_text(v))
        }
        None => format!("{name}:{}", escape_text(v)),
    };
    doc.set(t.get(doc), name, &content);
}

/// Outlook's Categories: every CATEGORIES line's names, joined by ", ".
pub fn categories(doc: &Doc, comp: Component) -> Option<String> {
    let names: Vec<String> = doc
        .find_prop(comp, "CATEGORIES")
        .iter()
        .flat_map(|&i| split_escaped(doc.lines[i].value(), ','))
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .collect();
    (!names.is_empty()).then(|| names.join(", "))
}

pub fn set_categories(doc: &mut Doc, t: Target, value: Option<&str>) {
    let names: Vec<String> = value
        .unwrap_or("")
        .split([',', ';'])
        .map(|n| n.trim())
        .filter(|n| !n.is_empty())
        .map(escape_text)
        .collect();
    if names.is_empty() {
        doc.remove(t.get(doc), "CATEGORIES");
        return;
    }
    let lines = doc.find_prop(t.get(doc), "CATEGORIES");
    for &i in lines.iter().skip(1).rev() {
        doc.lines.remove(i);
    }
    doc.set(
        t.get(doc),
        "CATEGORIES",
        &format!("CATEGORIES:{}", names.join(",")),
    );
}

/// CLASS → Sensitivity (0 normal, 1 personal, 2 private, 3 confidential). Personal has no RFC 5545
/// value: it is written `X-PERSONAL`, which other clients treat as PRIVATE (RFC 5545 §3.8.1.3).
pub fn sensitivity(doc: &Doc, comp: Component) -> i64 {
    match doc
        .first_prop(comp, "CLASS")
        .map(|l| l.value().trim().to_ascii_uppercase())
        .as_deref()
    {
        None | Some("PUBLIC") => 0,
        Some("X-PERSONAL") => 1,
        Some("CONFIDENTIAL") => 3,
        Some(_) => 2,
    }
}

pub fn set_sensitivity(doc: &mut Doc, t: Target, value: i64) -> Result<(), PatchError> {
    let class = match value {
        0 if doc.first_prop(t.get(doc), "CLASS").is_none() => return Ok(()),
        0 => "PUBLIC",
        1 => "X-PERSONAL",
        2 => "PRIVATE",
        3 => "CONFIDENTIAL",
        _ => return Err(PatchError::field("Sensitivity", "must be 0, 1, 2 or 3")),
    };
    doc.set(t.get(doc), "CLASS", &format!("CLASS:{class}"));
    Ok(())
}

/// PRIORITY (RFC 5545 §3.8.1.9) → Importance (0 low ← 6-9, 1 normal ← 5/0/none, 2 high ← 1-4),
/// or Outlook's X-MICROSOFT-CDO-IMPORTANCE when there is no PRIORITY.
pub fn importance(doc: &Doc, comp: Component) -> i64 {
    if let Some(p) = doc
        .first_prop(comp, "PRIORITY")
        .and_then(|l| l.value().trim().parse::<i64>().ok())
    {
        return match p {
            1..=4 => 2,
            6..=9 => 0,
            _ => 1,
        };
    }
    doc.first_prop(comp, "X-MICROSOFT-CDO-IMPORTANCE")
        .and_then(|l| l.value().trim().parse::<i64>().ok())
        .filter(|v| (0..=2).contains(v))
        .unwrap_or(1)
}

pub fn set_importance(doc: &mut Doc, t: Target, value: i64) -> Result<(), PatchError> {
    let priority = match value {
        0 => 9,
        1 => 5,
        2 => 1,
        _ => return Err(PatchError::field("Importance", "must be 0, 1 or 2")),
    };
    if value != 1 || doc.first_prop(t.get(doc), "PRIORITY").is_some() {
        doc.set(t.get(doc), "PRIORITY", &format!("PRIORITY:{priority}"));
    }
    if doc.first_prop(t.get(doc), "X-MICROSOFT-CDO-IMPORTANCE").is_some() {
        doc.set(
            t.get(doc),
            "X-MICROSOFT-CDO-IMPORTANCE",
            &format!("X-MICROSOFT-CDO-IMPORTANCE:{value}"),
        );
    }
    Ok(())
}

/// RFC 5545 §3.8.7.2, §3.8.7.3: every write stamps DTSTAMP and LAST-MODIFIED.
pub fn stamp(doc: &mut Doc, t: Target, now: DateTime<Utc>) {
    let at = caltime::fmt_utc(&now);
    doc.set(t.get(doc), "DTSTAMP", &format!("DTSTAMP:{at}"));
    doc.set(t.get(doc), "LAST-MODIFIED", &format!("LAST-MODIFIED:{at}"));
}

/// RFC 5546 §2.1.4: a change of time or recurrence increments SEQUENCE.
pub fn bump_sequence(doc: &mut Doc, t: Target) {
    let seq = doc
        .first_prop(t.get(doc), "SEQUENCE")
        .and_then(|l| l.value().trim().parse::<i64>().ok())
        .unwrap_or(0);
    doc.set(t.get(doc), "SEQUENCE", &format!("SEQUENCE:{}", seq + 1));
}

/// The descriptive properties appointments and tasks share (RFC 5545 §3.8.1): the TEXT ones in
/// `texts` (field → property), CATEGORIES, CLASS and PRIORITY, each rewritten only when
/// `differs` says the patch changes it.
pub fn patch_descriptive(
    doc: &mut Doc,
    t: Target,
    c: &Changes,
    differs: &dyn Fn(&str) -> bool,
    texts: &[(&str, &str)],
) -> Result<(), PatchError> {
    for (key, prop) in texts {
        if differs(key) {
            set_text(doc, t, prop, c.str(key)?);
        }
    }
    if differs("Categories") {
        set_categories(doc, t, c.str("Categories")?);
    }
    if differs("Sensitivity") {
        set_sensitivity(doc, t, c.int("Sensitivity")?.unwrap_or(0))?;
    }
    if differs("Importance") {
        set_importance(doc, t, c.int("Importance")?.unwrap_or(1))?;
    }
    Ok(())
}

/// Typed access to a patch's values; errors name the field.
pub struct Changes<'a>(pub &'a FieldSet);

impl Changes<'_> {
    pub fn has(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// A string or null (None); absent keys are None too (check `has` first).
    pub fn str(&self, key: &str) -> Result<Option<&str>, PatchError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(PatchError::field(key, "must be a string or null")),
        }
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>, PatchError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(PatchError::field(key, "must be true or false")),
        }
    }

    pub fn int(&self, key: &str) -> Result<Option<i64>, PatchError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| PatchError::field(key, "must be an integer")),
        }
    }

    pub fn value(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }
}

/// Inserts a text property into a field set when it is present and not empty.
pub fn put(fields: &mut FieldSet, key: &str, value: Option<String>) {
    if let Some(v) = value.filter(|v| !v.is_empty()) {
        fields.insert(key.into(), v.into());
    }
}
