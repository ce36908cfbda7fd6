//! What the probes established about each server: plain data, filled by `probe::{imap, dav,
//! sieve}` and read by the pure feature matrix (`probe::matrix`) and the report renderers.
//!
//! ```text
//!   probe::run ──► Probes { imap, caldav, carddav, sieve }   each an Outcome<Facts>
//!                      └──► matrix::features(&Probes, &MatrixOptions) ──► [Feature; 14]
//! ```

use serde::Serialize;

/// How one probe came out.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Outcome<T> {
    /// The account has no URL for this service.
    NotConfigured,
    /// The probe ran and failed (unreachable, login refused, timeout…); the reason is shown.
    Failed { error: String },
    /// The probe ran; what it found.
    Ok { facts: T },
}

impl<T> Outcome<T> {
    pub fn facts(&self) -> Option<&T> {
        match self {
            Outcome::Ok { facts } => Some(facts),
            _ => None,
        }
    }
}

/// IMAP after login: capabilities (RFC 3501 §6.1.1), NAMESPACE (RFC 2342) and the folder list.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ImapFacts {
    pub url: String,
    pub encrypted: bool,
    /// Upper-cased, as the server sent them after login.
    pub capabilities: Vec<String>,
    /// Namespace prefixes; empty when the server has no NAMESPACE.
    pub personal_namespaces: Vec<String>,
    pub other_namespaces: Vec<String>,
    pub shared_namespaces: Vec<String>,
    /// Selectable folders seen in LIST.
    pub folders: usize,
    /// Folders in the other-users and shared namespaces.
    pub other_folders: Vec<String>,
    pub shared_folders: Vec<String>,
    /// The `Notes` folder's path when it exists.
    pub notes_folder: Option<String>,
}

impl ImapFacts {
    pub fn has(&self, capability: &str) -> bool {
        self.capabilities
            .iter()
            .any(|c| c.eq_ignore_ascii_case(capability))
    }
}

/// One DAV collection as the report shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CollectionFacts {
    pub href: String,
    pub name: Option<String>,
    /// `calendar`, `tasks` or `addressbook`.
    pub kind: String,
    pub components: Vec<String>,
    pub read_only: bool,
    pub directory: bool,
}

/// CalDAV (RFC 4791) or CardDAV (RFC 6352): principal, homes, collections and extras.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DavFacts {
    pub url: String,
    /// RFC 5397 current-user-principal.
    pub principal: String,
    /// RFC 4791 §6.2.1 calendar-home-set / RFC 6352 §7.1.1 addressbook-home-set.
    pub homes: Vec<String>,
    pub collections: Vec<CollectionFacts>,
    /// RFC 6638 §2.1.1 schedule-outbox-URL (CalDAV only).
    pub schedule_outbox: Option<String>,
    /// RFC 6638 §2.2.1 schedule-inbox-URL (CalDAV only).
    pub schedule_inbox: Option<String>,
    /// RFC 6638 §2: `calendar-auto-schedule` in the DAV header of the calendar home.
    pub auto_schedule: bool,
    /// CalendarServer calendar-proxy-read-for / -write-for (caldav-proxy.txt §5.3).
    pub proxy_read_for: Vec<String>,
    pub proxy_write_for: Vec<String>,
    /// Whether the principal answers the proxy properties at all (200, even if empty).
    pub proxy_supported: bool,
    /// draft-daboo-carddav-directory-gateway §3: the principal's directory-gateway (CardDAV).
    pub directory_gateway: Option<String>,
    /// RFC 6578 §3: `sync-collection` in a collection's supported-report-set.
    pub sync_collection: Option<bool>,
}

impl DavFacts {
    pub fn with_component(&self, component: &str) -> impl Iterator<Item = &CollectionFacts> {
        self.collections
            .iter()
            .filter(move |c| c.components.iter().any(|x| x.eq_ignore_ascii_case(component)))
    }
}

/// ManageSieve capabilities as sent in the greeting (RFC 5804 §1.7).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SieveFacts {
    pub url: String,
    pub encrypted: bool,
    pub implementation: Option<String>,
    /// The `SIEVE` capability: the script language extensions (RFC 5804 §1.7).
    pub extensions: Vec<String>,
    pub sasl: Vec<String>,
}

impl SieveFacts {
    pub fn has_extension(&self, name: &str) -> bool {
        self.extensions.iter().any(|e| e.eq_ignore_ascii_case(name))
    }
}

/// Everything the report is built from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Probes {
    pub imap: Outcome<ImapFacts>,
    pub caldav: Outcome<DavFacts>,
    pub carddav: Outcome<DavFacts>,
    pub sieve: Outcome<SieveFacts>,
}

impl Default for Probes {
    fn default() -> Self {
        Probes {
            imap: Outcome::NotConfigured,
            caldav: Outcome::NotConfigured,
            carddav: Outcome::NotConfigured,
            sieve: Outcome::NotConfigured,
        }
    }
}

/// A URL as the report may show it: without user name or password (invariant 7).
pub fn public_url(url: &url::Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_credentials() {
        let u = url::Url::parse("https://alice:hunter2@dav.example.org/x/").unwrap();
        assert_eq!(public_url(&u), "https://dav.example.org/x/");
    }

    #[test]
    fn capabilities_compare_without_case() {
        let f = ImapFacts {
            capabilities: vec!["IDLE".into(), "X-COPYFOLDER".into()],
            ..ImapFacts::default()
        };
        assert!(f.has("idle") && f.has("X-CopyFolder") && !f.has("ACL"));
    }
}
