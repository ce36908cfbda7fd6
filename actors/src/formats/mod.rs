//! Pure formats: server discovery candidates (`discovery`, RFC 6186/6764; `autoconfig`,
//! Thunderbird's files; `providers`, presets for known providers), and iCalendar
//! (RFC 5545) and vCard (RFC 6350, RFC 2426) reading for the mirror: the few fields the IPC
//! answers need, and recurrence expansion for time-range reads. Pure functions over the
//! server's bytes, which are stored verbatim elsewhere (invariant 3); nothing here re-serializes.
//!
//! ```text
//!   server bytes ──unfold (bytes)──► UTF-8 ──calcard──► EventFields / ContactFields
//!                                                  └──► instances in [start, end)
//! ```

pub mod autoconfig;
pub mod discovery;
pub mod expand;
pub mod freebusy;
pub mod group;
pub mod ical;
pub mod item;
pub mod itip;
pub mod lines;
pub mod note;
pub mod providers;
pub mod text;
pub mod vcard;
pub mod zones;

pub use ical::{EventFields, Instance, When};
pub use vcard::ContactFields;
