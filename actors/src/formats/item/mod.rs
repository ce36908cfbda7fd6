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
