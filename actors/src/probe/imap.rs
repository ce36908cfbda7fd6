//! The IMAP probe: log in, read the capabilities, NAMESPACE and the folder list, and look for the
//! `Notes` folder. Read-only: nothing is created, selected or changed on the server.
//!
//! ```text
//!   connect_and_login ─ CAPABILITY (RFC 3501 §6.1.1) ─ folders::discover (NAMESPACE RFC 2342,
//!   LSUB, LIST, MYRIGHTS RFC 4314 on shared folders) ─ LOGOUT
//! ```

use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;

use crate::account::Secret;
use crate::error::ServiceError;
use crate::imap::connect::connect_and_login;
use crate::imap::folders;
use crate::imap::namespace::{NamespaceEntry, Namespaces};
use crate::net::endpoint::Endpoint;
use crate::probe::facts::{ImapFacts, public_url};
use crate::store::records::FolderRecord;

/// The capabilities the report lists first, in this order; the rest follow.
pub const NOTABLE: [&str; 8] = [
    "IDLE",
    "CONDSTORE",
    "QRESYNC",
    "NAMESPACE",
    "ACL",
    "X-COPYFOLDER",
    "SPECIAL-USE",
    "MOVE",
];

/// Logs in and reads what the report needs.
pub async fn probe(
    endpoint: &Endpoint,
    tls: Arc<ClientConfig>,
    username: &str,
    password: &Secret,
    timeout: Duration,
) -> Result<ImapFacts, ServiceError> {
    let mut s = connect_and_login(endpoint, tls, username, password, timeout).await?;
    let (has_ns, has_acl) = (s.has("NAMESPACE"), s.has("ACL"));
    let listed = folders::discover(&mut s.session, has_ns, has_acl).await;
    let _ = s.session.logout().await;
    let (folders, namespaces) = listed?;
    let mut facts = facts_from(&folders, &namespaces);
    facts.url = public_url(&endpoint.url);
    facts.encrypted = s.encrypted;
    facts.capabilities = s.capabilities.clone();
    Ok(facts)
}

/// The pure part: folders and namespaces to facts.
pub fn facts_from(folders: &[FolderRecord], ns: &Namespaces) -> ImapFacts {
    let prefixes = |v: &[NamespaceEntry]| v.iter().map(|e| e.prefix.clone()).collect::<Vec<_>>();
    let in_ns = |kind: &str| {
        folders
            .iter()
            .filter(|f| f.namespace == kind)
            .map(|f| f.path.clone())
            .collect::<Vec<_>>()
    };
    ImapFacts {
        personal_namespaces: prefixes(&ns.personal),
        other_namespaces: prefixes(&ns.other),
        shared_namespaces: prefixes(&ns.shared),
        folders: folders.len(),
        other_folders: in_ns("other"),
        shared_folders: in_ns("shared"),
        // The agent's notes live in the personal folder `Notes` (INTERFACE §4, api/notes.rs).
        notes_folder: folders
            .iter()
            .find(|f| f.namespace == "personal" && is_notes(f))
            .map(|f| f.path.clone()),
        ..ImapFacts::default()
    }
}

/// The agent's notes folder is `Notes` at the top level, matched as the sync matches it
/// (children/imap.rs); `INBOX.Notes` or `Archive/Notes` is someone else's folder.
fn is_notes(f: &FolderRecord) -> bool {
    f.path.eq_ignore_ascii_case("Notes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(path: &str, namespace: &str) -> FolderRecord {
        FolderRecord {
            path: path.into(),
            namespace: namespace.into(),
            delimiter: Some(".".into()),
            ..FolderRecord::default()
        }
    }

    fn entry(prefix: &str) -> NamespaceEntry {
        NamespaceEntry {
            prefix: prefix.into(),
            delimiter: Some(".".into()),
        }
    }

    #[test]
    fn namespaces_and_notes() {
        let ns = Namespaces {
            personal: vec![entry("")],
            other: vec![entry("shared.")],
            shared: vec![entry("Public.")],
        };
        let folders = [
            folder("INBOX", "personal"),
            folder("Notes", "personal"),
            folder("shared.bob.INBOX", "other"),
            folder("Public.News", "shared"),
        ];
        let f = facts_from(&folders, &ns);
        assert_eq!(f.notes_folder.as_deref(), Some("Notes"));
        assert_eq!(f.other_namespaces, vec!["shared."]);
        assert_eq!(f.shared_folders, vec!["Public.News"]);
        assert_eq!(f.folders, 4);
    }

    #[test]
    fn notes_deep_in_the_tree_or_elsewhere_do_not_count() {
        let ns = Namespaces::default();
        let folders = [
            folder("Archive.2020.Notes", "personal"),
            folder("Public.Notes", "shared"),
        ];
        assert_eq!(facts_from(&folders, &ns).notes_folder, None);
        assert_eq!(
            facts_from(&[folder("INBOX.Notes", "personal")], &ns).notes_folder,
            None
        );
        assert_eq!(
            facts_from(&[folder("notes", "personal")], &ns)
                .notes_folder
                .as_deref(),
            Some("notes")
        );
    }
}
