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
pub mod invite;
pub mod server;

use crate::AccountSpec;
use crate::store::records::SchedulingRecord;
use crate::store::{Store, StoreError};

/// Who delivers the invitations of `spec`'s calendars (MEETINGS.md "Rules both follow"). The
/// server says it once per account (RFC 6638 §2: `calendar-auto-schedule` in the DAV header of
/// the calendar home, and a scheduling inbox and outbox on the principal), so every calendar of
/// the account answers alike. `None` while the CalDAV child has not asked the server yet (the
/// record is written before its first replay): a caller that must not send twice waits.
pub fn delivery(store: &Store, spec: &AccountSpec) -> Result<Option<Delivery>, StoreError> {
    let scheduling = match spec.caldav {
        Some(_) => store.dav_scheduling(&spec.name)?,
        None => Some(SchedulingRecord::default()),
    };
    Ok(scheduling.map(|s| delivery_for(&s, spec.smtp.is_some())))
}

/// The rule itself: the server when it schedules, else iMIP when there is SMTP, else nobody.
pub fn delivery_for(scheduling: &SchedulingRecord, smtp: bool) -> Delivery {
    if scheduling.schedules() {
        Delivery::Server
    } else if smtp {
        Delivery::Imip
    } else {
        Delivery::None
    }
}

/// The user's calendar user addresses, lower-cased and without `mailto:`: the account's e-mail
/// and the principal's `calendar-user-address-set` (RFC 6638 §2.4.1).
pub fn my_addresses(spec: &AccountSpec, scheduling: Option<&SchedulingRecord>) -> Vec<String> {
    let mut out = vec![spec.email.trim().to_ascii_lowercase()];
    for a in scheduling.map(|s| s.addresses.as_slice()).unwrap_or_default() {
        let a = a.trim().to_ascii_lowercase();
        if !a.is_empty() && !out.contains(&a) {
            out.push(a);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_wins_over_smtp_and_nobody_is_the_last_resort() {
        let scheduling = SchedulingRecord {
            auto_schedule: true,
            inbox: Some("http://h/dav/calendars/user/a/Inbox/".into()),
            outbox: Some("http://h/dav/calendars/user/a/Outbox/".into()),
            ..SchedulingRecord::default()
        };
        assert_eq!(delivery_for(&scheduling, true), Delivery::Server);
        assert_eq!(delivery_for(&SchedulingRecord::default(), true), Delivery::Imip);
        assert_eq!(delivery_for(&SchedulingRecord::default(), false), Delivery::None);
        // An inbox without the DAV class is not enough: the server says it schedules, or not.
        let half = SchedulingRecord {
            auto_schedule: false,
            ..scheduling
        };
        assert_eq!(delivery_for(&half, false), Delivery::None);
    }
}
