//! Meetings (RFC 5546 iTIP): who sends invitations for a calendar, and invitations that arrived.
use serde::{Deserialize, Serialize};

/// Who delivers a calendar's invitations and replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    /// The server schedules (RFC 6638 `calendar-auto-schedule`): the agent only writes the event.
    Server,
    /// The agent sends iMIP (RFC 6047) over the account's SMTP.
    Imip,
    /// Neither: no SMTP and no server scheduling; meetings are stored, nobody is told.
    None,
}

/// An invitation, a cancellation or an update that reached the user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invitation {
    /// Stable id for `meetings.respond`: `"server:" + inbox href` or `"mail:" + folder + ":" + uidvalidity + ":" + uid`.
    pub id: String,
    /// `"server"` or `"mail"`.
    pub source: String,
    /// iTIP METHOD: `REQUEST` or `CANCEL`.
    pub method: String,
    pub uid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recurrence_id: Option<String>,
    pub sequence: u32,
    pub summary: String,
    /// Organizer's address, without `mailto:`.
    pub organizer: String,
    /// RFC 3339 (UTC) or a date for all-day events.
    pub start: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// The user's PARTSTAT as it stands: `NEEDS-ACTION`, `ACCEPTED`, `TENTATIVE`, `DECLINED`.
    pub partstat: String,
    /// The raw iTIP object as received.
    pub ics: String,
}

/// The user's answer to an invitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Response {
    Accepted,
    Tentative,
    Declined,
}

impl Response {
    /// The PARTSTAT value (RFC 5545 §3.2.12).
    pub fn partstat(self) -> &'static str {
        match self {
            Response::Accepted => "ACCEPTED",
            Response::Tentative => "TENTATIVE",
            Response::Declined => "DECLINED",
        }
    }
}

pub mod imip;
