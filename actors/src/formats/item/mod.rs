//! The Outlook item model: each calendar object or vCard as a flat field set named after
//! Outlook's own properties, read from the server's bytes, and patch writes that apply changed
//! fields to those bytes and leave every other line as it was (DESIGN invariant 3, per property).
//!
//! ```text
//!   server bytes ──read──► FieldSet {"Subject": …, "Start": …}  ──IPC──► add-in ──► Outlook item
//!   server bytes + changed fields ──patch──► new bytes (only the changed properties rewritten)
//!   fields ──create──► a new object (UID chosen by the caller)
//! ```
//!
//! A field set is a JSON object. Absent keys are unknown or empty; in a patch, a key set to
//! `null` clears that property. An item Outlook cannot show faithfully carries `"Unsupported":
//! "<why>"` and refuses field-set patches of the fields it concerns (it can still be written as
//! raw iCalendar with `calendar.put`).

mod alarm;
pub mod appointment;
mod appointment_patch;
#[cfg(test)]
mod appointment_tests;
pub mod caltime;
pub mod contact;
pub mod distlist;
mod exceptions;
#[cfg(test)]
mod expansion_tests;
pub mod note;
mod props;
pub mod recurrence;
#[cfg(test)]
mod recurrence_tests;
#[cfg(test)]
mod roundtrip_tests;
pub mod task;
pub mod tzrules;

use serde::{Deserialize, Serialize};

/// A flat field set: Outlook property name → value.
pub type FieldSet = serde_json::Map<String, serde_json::Value>;

/// Outlook's item classes this model maps (olAppointmentItem, olTaskItem, olContactItem,
/// olDistributionListItem, olNoteItem).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemClass {
    Appointment,
    Task,
    Contact,
    DistList,
    Note,
}

impl ItemClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemClass::Appointment => "appointment",
            ItemClass::Task => "task",
            ItemClass::Contact => "contact",
            ItemClass::DistList => "distlist",
            ItemClass::Note => "note",
        }
    }

    pub fn parse(text: &str) -> Option<ItemClass> {
        match text {
            "appointment" => Some(ItemClass::Appointment),
            "task" => Some(ItemClass::Task),
            "contact" => Some(ItemClass::Contact),
            "distlist" => Some(ItemClass::DistList),
            "note" => Some(ItemClass::Note),
            _ => None,
        }
    }

    /// The class of a calendar object by its main component (`VEVENT`, `VTODO`).
    pub fn of_component(component: &str) -> Option<ItemClass> {
        match component {
            "VEVENT" => Some(ItemClass::Appointment),
            "VTODO" => Some(ItemClass::Task),
            _ => None,
        }
    }

    /// The class of a vCard by its kind (`individual`, `group`).
    pub fn of_contact_kind(kind: &str) -> ItemClass {
        if kind == "group" {
            ItemClass::DistList
        } else {
            ItemClass::Contact
        }
    }
}

/// Why a patch or create was refused; each variant says what the caller does next.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PatchError {
    /// The request is wrong: fix the named field (IPC: invalid params).
    #[error("field `{field}`: {reason}")]
    Field { field: String, reason: String },
    /// The item has something Outlook cannot express and the patch touches it: write raw
    /// iCalendar/vCard instead (IPC: not supported).
    #[error("this item cannot be written from a field set: {0}")]
    Unfaithful(String),
    /// The stored bytes cannot be read at all (the item carries an error in the mirror).
    #[error("the stored item cannot be read: {0}")]
    Unreadable(String),
}

impl PatchError {
    pub fn field(field: &str, reason: impl Into<String>) -> PatchError {
        PatchError::Field {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }
}

/// A patch value that sets something: `null` (clear) and absence read alike.
pub(crate) fn given(v: Option<&serde_json::Value>) -> Option<&serde_json::Value> {
    v.filter(|v| !v.is_null())
}

/// Reads an item's field set from its server bytes.
pub fn read(class: ItemClass, body: &str) -> Result<FieldSet, String> {
    match class {
        ItemClass::Appointment => appointment::read(body),
        ItemClass::Task => task::read(body),
        ItemClass::Contact => contact::read(body),
        ItemClass::DistList => distlist::read(body),
        ItemClass::Note => note::read(body),
    }
}

/// Applies the changed fields `changes` to the server bytes `body`; every line the changes do not
/// concern stays byte for byte.
pub fn patch(class: ItemClass, body: &str, changes: &FieldSet) -> Result<String, PatchError> {
    match class {
        ItemClass::Appointment => appointment::patch(body, changes),
        ItemClass::Task => task::patch(body, changes),
        ItemClass::Contact => contact::patch(body, changes),
        ItemClass::DistList => distlist::patch(body, changes),
        ItemClass::Note => note::patch(body, changes),
    }
}

/// A new object from a field set, with the given UID.
pub fn create(class: ItemClass, uid: &str, fields: &FieldSet) -> Result<String, PatchError> {
    match class {
        ItemClass::Appointment => appointment::create(uid, fields),
        ItemClass::Task => task::create(uid, fields),
        ItemClass::Contact => contact::create(uid, fields),
        ItemClass::DistList => distlist::create(uid, fields),
        ItemClass::Note => note::create(uid, fields),
    }
}

/// The photo of a vCard as `(mime, bytes)`, if it carries one inline: vCard 4's `data:` URI
/// (RFC 6350 §6.2.4) or vCard 3's `ENCODING=b` with `TYPE` (RFC 2426 §3.1.4). A photo given as
/// an external URL is not fetched (`None`). Used by `contacts.photo`, so that listings never
/// carry photos inline.
pub fn photo(body: &str) -> Option<(String, Vec<u8>)> {
    use base64::Engine;
    let doc = crate::formats::lines::Doc::parse(body);
    let card = *doc.components_named("VCARD").first()?;
    let line = doc.first(card, "PHOTO")?;
    let value: String = line.value().chars().filter(|c| !c.is_whitespace()).collect();
    let (mime, data) = if let Some(uri) = value.strip_prefix("data:") {
        let (head, data) = uri.split_once(',')?;
        let mime = head.split(';').next().filter(|m| !m.is_empty());
        head.to_ascii_lowercase().ends_with(";base64").then_some(())?;
        (
            mime.unwrap_or("application/octet-stream").to_owned(),
            data.to_owned(),
        )
    } else {
        let encoding = line.param("ENCODING")?.to_ascii_lowercase();
        if encoding != "b" && encoding != "base64" {
            return None;
        }
        let mime = match line.param("TYPE") {
            Some(t) if t.contains('/') => t.to_ascii_lowercase(),
            Some(t) => format!("image/{}", t.to_ascii_lowercase()),
            None => "application/octet-stream".to_owned(),
        };
        (mime, value)
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&data)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(data.trim_end_matches('=')))
        .ok()?;
    Some((mime, bytes))
}

/// A new UID for `create`, in the form of a random (version 4) UUID, RFC 9562 §5.4.
pub fn new_uid() -> String {
    use rand::Rng;
    let b: [u8; 16] = rand::rng().random();
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let variant = ["8", "9", "a", "b"][(b[8] >> 6) as usize];
    format!(
        "{}-{}-4{}-{}{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        variant,
        &hex[17..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_look_like_uuids() {
        let u = new_uid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_ne!(u, new_uid());
    }

    #[test]
    fn photos_of_both_vcard_versions() {
        let v4 = "BEGIN:VCARD\r\nVERSION:4.0\r\nUID:a\r\nFN:A\r\nPHOTO:data:image/png;base64,iVBO\r\n Rw==\r\nEND:VCARD\r\n";
        let (mime, bytes) = photo(v4).unwrap();
        assert_eq!(mime, "image/png");
        assert_eq!(bytes, vec![0x89, 0x50, 0x4e, 0x47]);
        let v3 = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:B\r\nPHOTO;ENCODING=b;TYPE=JPEG:/9j/\r\nEND:VCARD\r\n";
        let (mime, bytes) = photo(v3).unwrap();
        assert_eq!(mime, "image/jpeg");
        assert_eq!(bytes, vec![0xff, 0xd8, 0xff]);
        assert!(photo("BEGIN:VCARD\r\nFN:C\r\nEND:VCARD\r\n").is_none());
        assert!(photo("BEGIN:VCARD\r\nPHOTO;VALUE=uri:https://x/y.jpg\r\nEND:VCARD\r\n").is_none());
    }
}
