//! Journaled calendar and contact writes, named after the IPC methods (INTERFACE §4).
//!
//! Each carries the etag the client's version was based on: replay sends it as `If-Match`
//! (RFC 9110 §13.1.1), or `If-None-Match: *` for a create (§13.1.2), so a change made on the
//! server meanwhile comes back as 412 and becomes a conflict instead of being overwritten.

use serde::{Deserialize, Serialize};

/// A DAV write waiting for the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum DavOp {
    #[serde(rename = "calendar.put")]
    CalendarPut(Put),
    #[serde(rename = "calendar.delete")]
    CalendarDelete(Delete),
    #[serde(rename = "contacts.put")]
    ContactsPut(Put),
    #[serde(rename = "contacts.delete")]
    ContactsDelete(Delete),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Put {
    pub collection: String,
    pub href: String,
    pub body: String,
    /// `None`: a new item (`If-None-Match: *`).
    pub if_match: Option<String>,
    /// RFC 6638 §3.2.10: an attendee's answer is sent with `If-Schedule-Tag-Match` instead of
    /// `If-Match`, so that the organizer's copy changing only in other attendees' replies does not
    /// turn it into a conflict, while a real change of the meeting still does (§8.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_tag: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delete {
    pub collection: String,
    pub href: String,
    pub if_match: Option<String>,
}

/// Whether the server's copy of an item is the one that was sent: equal bytes, or equal once
/// line endings and folding are undone (RFC 5545 §3.1, RFC 6350 §3.2) and content lines compared
/// without regard to order (servers such as Radicale re-serialize what they store).
pub fn same_content(sent: &str, server: &str) -> bool {
    if sent == server {
        return true;
    }
    let lines = |text: &str| {
        let unfolded = text.replace("\r\n", "\n").replace("\n ", "").replace("\n\t", "");
        let mut lines: Vec<String> = unfolded
            .lines()
            .map(|l| l.trim_end().to_owned())
            .filter(|l| !l.is_empty() && !l.to_ascii_uppercase().starts_with("PRODID:"))
            .collect();
        lines.sort();
        lines
    };
    lines(sent) == lines(server)
}

impl DavOp {
    /// The body a put sends (`None` for a delete).
    pub fn body(&self) -> Option<&str> {
        match self {
            DavOp::CalendarPut(p) | DavOp::ContactsPut(p) => Some(&p.body),
            DavOp::CalendarDelete(_) | DavOp::ContactsDelete(_) => None,
        }
    }

    /// A put of the calendar (`calendar` true) or contact flavour.
    pub fn put(calendar: bool, put: Put) -> DavOp {
        if calendar {
            DavOp::CalendarPut(put)
        } else {
            DavOp::ContactsPut(put)
        }
    }

    /// A delete of the calendar (`calendar` true) or contact flavour.
    pub fn delete(calendar: bool, delete: Delete) -> DavOp {
        if calendar {
            DavOp::CalendarDelete(delete)
        } else {
            DavOp::ContactsDelete(delete)
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            DavOp::CalendarPut(_) => "calendar.put",
            DavOp::CalendarDelete(_) => "calendar.delete",
            DavOp::ContactsPut(_) => "contacts.put",
            DavOp::ContactsDelete(_) => "contacts.delete",
        }
    }

    /// True for CalDAV operations, false for CardDAV ones.
    pub fn is_calendar(&self) -> bool {
        matches!(self, DavOp::CalendarPut(_) | DavOp::CalendarDelete(_))
    }

    pub fn href(&self) -> &str {
        match self {
            DavOp::CalendarPut(p) | DavOp::ContactsPut(p) => &p.href,
            DavOp::CalendarDelete(d) | DavOp::ContactsDelete(d) => &d.href,
        }
    }

    pub fn collection(&self) -> &str {
        match self {
            DavOp::CalendarPut(p) | DavOp::ContactsPut(p) => &p.collection,
            DavOp::CalendarDelete(d) | DavOp::ContactsDelete(d) => &d.collection,
        }
    }

    /// The media type of the body (RFC 4791 §5.3.2, RFC 6352 §5.3).
    pub fn content_type(&self) -> &'static str {
        if self.is_calendar() {
            "text/calendar; charset=utf-8"
        } else {
            "text/vcard; charset=utf-8"
        }
    }
}

/// A journal kind that belongs to a DAV service.
pub fn is_dav_kind(kind: &str) -> bool {
    kind.starts_with("calendar.") || kind.starts_with("contacts.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_with_the_method_name() {
        let op = DavOp::CalendarPut(Put {
            collection: "/alice/cal/".into(),
            href: "/alice/cal/x.ics".into(),
            body: "BEGIN:VCALENDAR".into(),
            if_match: Some("\"1\"".into()),
            schedule_tag: None,
        });
        let v = serde_json::to_value(&op).unwrap();
        assert_eq!(v["kind"], "calendar.put");
        assert_eq!(v["href"], "/alice/cal/x.ics");
        assert_eq!(serde_json::from_value::<DavOp>(v).unwrap(), op);
        assert!(is_dav_kind("contacts.delete") && !is_dav_kind("mail.flag"));
    }

    #[test]
    fn a_lost_acknowledgement_is_recognized_through_reserialization() {
        let sent = "BEGIN:VCALENDAR\nPRODID:-//Outlook//EN\nBEGIN:VEVENT\nUID:a\nSUMMARY:a long\n  title\nEND:VEVENT\nEND:VCALENDAR\n";
        let server = "BEGIN:VCALENDAR\r\nPRODID:-//Radicale//EN\r\nBEGIN:VEVENT\r\nSUMMARY:a long \r\n title\r\nUID:a\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        assert!(same_content(sent, server));
        assert!(same_content(sent, sent));
        assert!(!same_content(sent, &server.replace("title", "tittle")));
        assert!(!same_content(sent, &server.replace("UID:a", "UID:b")));
    }
}
