//! The records kept in the store. Later fields are optional so older records still read.

use serde::{Deserialize, Serialize};

/// A mail folder (RFC 3501 LIST, RFC 6154 SPECIAL-USE, RFC 2342 NAMESPACE) and its sync state.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FolderRecord {
    pub path: String,
    pub delimiter: Option<String>,
    /// `personal`, `other` or `shared`.
    pub namespace: String,
    pub special_use: Option<String>,
    pub subscribed: bool,
    pub uidvalidity: Option<u32>,
    pub uidnext: Option<u32>,
    pub highestmodseq: Option<u64>,
    pub total: u32,
    pub unseen: u32,
    pub rights: Option<String>,
}

/// A message's envelope and flags; the body lives in `mail_bodies` once fetched.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MessageRecord {
    pub uid: u32,
    pub flags: Vec<String>,
    pub subject: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub date: Option<String>,
    pub internal_date: Option<String>,
    pub size: u32,
    pub message_id: Option<String>,
    pub modseq: Option<u64>,
}

/// Another principal a delegation links to (caldav-proxy.txt §5.3): who they are and, for
/// those whose calendars the user may act on, their calendar homes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PrincipalRecord {
    /// The principal's path on the server (`/caldav.php/bob/`).
    pub principal: String,
    pub name: Option<String>,
    pub email: Option<String>,
    /// Calendar homes (absolute URLs); empty for delegates.
    #[serde(default)]
    pub calendar_homes: Vec<String>,
    /// `read` or `write`.
    pub access: String,
}

/// The account's calendar delegations as last read from the server (`calendar.delegations`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DelegationsRecord {
    /// Whether the server publishes calendar-proxy at all.
    pub supported: bool,
    /// Principals whose calendars the user may read (only), and write.
    pub read_for: Vec<PrincipalRecord>,
    pub write_for: Vec<PrincipalRecord>,
    /// Principals who act for the user.
    pub delegates: Vec<PrincipalRecord>,
    /// When they were read (RFC 3339).
    pub checked: String,
}

/// A CalDAV calendar or CardDAV address book (RFC 4791 §5.2, RFC 6352 §6.2).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CollectionRecord {
    pub href: String,
    pub name: Option<String>,
    pub color: Option<String>,
    pub components: Vec<String>,
    /// `calendar`, `tasks` or `addressbook`.
    pub kind: String,
    pub read_only: bool,
    pub directory: bool,
    pub owner: Option<String>,
    pub ctag: Option<String>,
    pub sync_token: Option<String>,
    /// Removals the mass-deletion guard refused to apply (invariant 5), and since when.
    #[serde(default)]
    pub held: Vec<String>,
    #[serde(default)]
    pub held_since: Option<String>,
    /// Since when (RFC 3339) this collection's sync-token is not believed: an etag listing showed
    /// changes that sync-collection left out, so the collection is synced by listings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_untrusted_since: Option<String>,
    /// Which change marker polls this collection (`stamp`, `sync-token`, `ctag`, `listing`:
    /// `dav::marker`), once a round has listed it; absent after a first pull alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marker: Option<String>,
    /// The collection's `DAV:getlastmodified` as last listed, kept only once settled
    /// (`dav::marker::settled`): with the `stamp` marker, an equal stamp means unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stamp: Option<String>,
}

/// One calendar object or vCard: the server's bytes, kept verbatim (invariant 3), and its etag.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ItemRecord {
    pub href: String,
    pub collection: String,
    pub etag: Option<String>,
    pub body: String,
    /// Set when the item could not be parsed; it is kept and the rest of the collection syncs (invariant 4).
    pub error: Option<String>,
    /// What the mirror indexes of a calendar object (absent for vCards and broken items).
    #[serde(default)]
    pub event: Option<crate::formats::EventFields>,
    /// What the mirror indexes of a vCard (absent for calendar objects and broken items).
    #[serde(default)]
    pub contact: Option<crate::formats::ContactFields>,
}

impl ItemRecord {
    /// An item with its bytes kept verbatim and its fields read, or its parse error recorded
    /// (invariants 3 and 4).
    pub fn parsed(
        collection: &str,
        href: &str,
        etag: Option<String>,
        body: String,
        calendar: bool,
    ) -> ItemRecord {
        let mut record = ItemRecord {
            href: href.to_owned(),
            collection: collection.to_owned(),
            etag,
            ..ItemRecord::default()
        };
        let parsed = if calendar {
            crate::formats::ical::parse_event(body.as_bytes()).map(|e| record.event = Some(e))
        } else {
            crate::formats::vcard::parse_contact(body.as_bytes()).map(|c| record.contact = Some(c))
        };
        if let Err(error) = parsed {
            record.error = Some(error);
        }
        record.body = body;
        record
    }
}

/// One journaled write (invariant 1): durable before the caller hears `{op}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JournalEntry {
    pub id: u64,
    pub account: String,
    pub created: String,
    /// Counted before each request is sent (invariant 6).
    pub attempts: u32,
    pub last_error: Option<String>,
    pub op: serde_json::Value,
}

impl JournalEntry {
    pub fn new(id: u64, account: &str, op: serde_json::Value) -> Self {
        JournalEntry {
            id,
            account: account.to_owned(),
            created: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            attempts: 0,
            last_error: None,
            op,
        }
    }
}

/// Both sides of a conflict, kept until the user resolves it (invariant 2).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ConflictRecord {
    pub id: u64,
    pub account: String,
    pub kind: String,
    pub summary: String,
    pub local: serde_json::Value,
    pub server: serde_json::Value,
    pub detected: String,
}

/// What a CalDAV server says about scheduling (RFC 6638 §2), read by the CalDAV child when it
/// connects; `meetings::delivery` decides from it who sends invitations.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SchedulingRecord {
    /// `calendar-auto-schedule` in the DAV header (RFC 6638 §2).
    pub auto_schedule: bool,
    /// schedule-inbox-URL (§2.2.1) and schedule-outbox-URL (§2.1.1), absolute.
    pub inbox: Option<String>,
    pub outbox: Option<String>,
    /// calendar-user-address-set (§2.4.1), without `mailto:`.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// When it was read (RFC 3339).
    #[serde(default)]
    pub checked: String,
}

impl SchedulingRecord {
    /// The server schedules: it says so and has the inbox it delivers into.
    pub fn schedules(&self) -> bool {
        self.auto_schedule && self.inbox.is_some()
    }
}
