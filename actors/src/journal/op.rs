//! Journaled mail operations, named after the IPC methods that create them (INTERFACE §4).
//!
//! Each operation carries what replay needs to stay idempotent across crashes (invariant 6): the
//! folder's UIDVALIDITY when it was made, and the Message-IDs of the messages it names, so that
//! UIDs can be remapped when UIDVALIDITY changed and a repeated APPEND or COPY can be detected.

use serde::{Deserialize, Serialize};

/// A mail write waiting for the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum MailOp {
    /// UID STORE ±FLAGS (RFC 3501 §6.4.6).
    #[serde(rename = "mail.flag")]
    Flag {
        folder: String,
        uids: Vec<u32>,
        #[serde(default)]
        add: Vec<String>,
        #[serde(default)]
        remove: Vec<String>,
        uidvalidity: Option<u32>,
        #[serde(default)]
        message_ids: Vec<Option<String>>,
    },
    /// UID MOVE (RFC 6851), or COPY + \Deleted + UID EXPUNGE without it.
    #[serde(rename = "mail.move")]
    Move {
        folder: String,
        uids: Vec<u32>,
        to: String,
        uidvalidity: Option<u32>,
        #[serde(default)]
        message_ids: Vec<Option<String>>,
    },
    /// UID COPY (RFC 3501 §6.4.7).
    #[serde(rename = "mail.copy")]
    Copy {
        folder: String,
        uids: Vec<u32>,
        to: String,
        uidvalidity: Option<u32>,
        #[serde(default)]
        message_ids: Vec<Option<String>>,
    },
    /// \Deleted + UID EXPUNGE (RFC 4315 §2.1).
    #[serde(rename = "mail.delete")]
    Delete {
        folder: String,
        uids: Vec<u32>,
        uidvalidity: Option<u32>,
        #[serde(default)]
        message_ids: Vec<Option<String>>,
    },
    /// APPEND (RFC 3501 §6.3.11); `raw` is base64 of the message.
    #[serde(rename = "mail.append")]
    Append {
        folder: String,
        raw: String,
        #[serde(default)]
        flags: Vec<String>,
        message_id: Option<String>,
    },
    /// Submission over SMTP, then a copy in the Sent folder. `submitted` is set durably once the
    /// server accepted the message, so a crash afterwards never sends it twice.
    #[serde(rename = "mail.send")]
    Send {
        raw: String,
        message_id: Option<String>,
        #[serde(default)]
        submitted: bool,
    },
    /// Copies a folder with its subfolders and messages into `to` (the tree's new root).
    /// `done` lists the source folders already copied, recorded durably as the copy goes, so a
    /// crash resumes where it stopped.
    #[serde(rename = "mail.folder.copy")]
    FolderCopy {
        path: String,
        to: String,
        #[serde(default)]
        done: Vec<String>,
    },
    /// SETACL, or DELETEACL for empty rights (RFC 4314 §3.1, §3.2).
    #[serde(rename = "mail.acl.set")]
    AclSet {
        folder: String,
        identifier: String,
        rights: String,
    },
    #[serde(rename = "mail.folder.create")]
    FolderCreate { path: String },
    /// RENAME moves the folder with its subfolders and content (RFC 3501 §6.3.5).
    #[serde(rename = "mail.folder.rename")]
    FolderRename { path: String, to: String },
    #[serde(rename = "mail.folder.delete")]
    FolderDelete { path: String },
}

/// Why a write was refused before it was journaled; the IPC answers -32602 with this text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct OpError(pub String);

impl MailOp {
    /// The IPC method name of the operation.
    pub fn kind(&self) -> &'static str {
        match self {
            MailOp::Flag { .. } => "mail.flag",
            MailOp::Move { .. } => "mail.move",
            MailOp::Copy { .. } => "mail.copy",
            MailOp::Delete { .. } => "mail.delete",
            MailOp::Append { .. } => "mail.append",
            MailOp::Send { .. } => "mail.send",
            MailOp::AclSet { .. } => "mail.acl.set",
            MailOp::FolderCopy { .. } => "mail.folder.copy",
            MailOp::FolderCreate { .. } => "mail.folder.create",
            MailOp::FolderRename { .. } => "mail.folder.rename",
            MailOp::FolderDelete { .. } => "mail.folder.delete",
        }
    }

    /// Every folder the operation reads or changes (synced after replay: push, then pull).
    pub fn folders(&self) -> Vec<String> {
        match self {
            MailOp::Flag { folder, .. } | MailOp::Delete { folder, .. } | MailOp::Append { folder, .. } => {
                vec![folder.clone()]
            }
            MailOp::Move { folder, to, .. } | MailOp::Copy { folder, to, .. } => {
                vec![folder.clone(), to.clone()]
            }
            MailOp::FolderCreate { path } | MailOp::FolderDelete { path } => vec![path.clone()],
            MailOp::Send { .. } => Vec::new(),
            MailOp::AclSet { folder, .. } => vec![folder.clone()],
            // The copy syncs its new folders itself.
            MailOp::FolderCopy { .. } => Vec::new(),
            MailOp::FolderRename { path, to } => vec![path.clone(), to.clone()],
        }
    }

    /// Checks what can be checked without the server: names, UIDs, flags.
    pub fn validate(&self) -> Result<(), OpError> {
        let folder_ok = |name: &str, key: &str| {
            if name.is_empty() || name.len() > 1024 || name.chars().any(|c| c.is_control()) {
                Err(OpError(format!("`{key}` is not a usable folder name")))
            } else {
                Ok(())
            }
        };
        let uids_ok = |uids: &[u32]| {
            if uids.is_empty() || uids.contains(&0) {
                Err(OpError("`uids` must list message UIDs (1 or more)".into()))
            } else {
                Ok(())
            }
        };
        match self {
            MailOp::Flag {
                folder,
                uids,
                add,
                remove,
                ..
            } => {
                folder_ok(folder, "folder")?;
                uids_ok(uids)?;
                if add.is_empty() && remove.is_empty() {
                    return Err(OpError("give `add` or `remove` flags".into()));
                }
                for flag in add.iter().chain(remove) {
                    if !valid_flag(flag) {
                        return Err(OpError(format!("`{flag}` is not an IMAP flag (RFC 3501 §2.3.2)")));
                    }
                }
                Ok(())
            }
            MailOp::Move { folder, uids, to, .. } | MailOp::Copy { folder, uids, to, .. } => {
                folder_ok(folder, "folder")?;
                folder_ok(to, "to")?;
                uids_ok(uids)
            }
            MailOp::Delete { folder, uids, .. } => {
                folder_ok(folder, "folder")?;
                uids_ok(uids)
            }
            MailOp::Append { folder, flags, .. } => {
                folder_ok(folder, "folder")?;
                match flags
                    .iter()
                    .find(|f| !valid_flag(f) || f.eq_ignore_ascii_case("\\Recent"))
                {
                    Some(bad) => Err(OpError(format!("`{bad}` cannot be set on APPEND"))),
                    None => Ok(()),
                }
            }
            MailOp::FolderCreate { path } | MailOp::FolderDelete { path } => folder_ok(path, "path"),
            MailOp::FolderCopy { path, to, .. } => {
                folder_ok(path, "path")?;
                folder_ok(to, "to")?;
                let inside = [format!("{path}/"), format!("{path}.")]
                    .iter()
                    .any(|p| to.starts_with(p.as_str()));
                if to == path || inside {
                    return Err(OpError("a folder cannot be copied into itself".into()));
                }
                Ok(())
            }
            MailOp::Send { message_id, .. } => {
                if message_id.is_none() {
                    return Err(OpError(
                        "the message needs a Message-ID so it is never sent twice".into(),
                    ));
                }
                Ok(())
            }
            MailOp::AclSet {
                folder,
                identifier,
                rights,
            } => {
                folder_ok(folder, "folder")?;
                if identifier.is_empty() || identifier.chars().any(|c| c.is_control()) {
                    return Err(OpError(
                        "`identifier` must name a user or group (RFC 4314 §2)".into(),
                    ));
                }
                // RFC 4314 §2.1 rights letters, plus the obsolete c/d (§2.1.1).
                match rights.chars().find(|c| !"lrswipkxteacd0123456789".contains(*c)) {
                    Some(bad) => Err(OpError(format!("`{bad}` is not an IMAP right (RFC 4314 §2.1)"))),
                    None => Ok(()),
                }
            }
            MailOp::FolderRename { path, to } => {
                folder_ok(path, "path")?;
                folder_ok(to, "to")?;
                if path.eq_ignore_ascii_case("INBOX") {
                    return Err(OpError("INBOX cannot be renamed here".into()));
                }
                Ok(())
            }
        }
    }
}

/// `\System` flags or keyword atoms (RFC 3501 §9: flag-keyword = atom; no specials).
pub fn valid_flag(flag: &str) -> bool {
    let atom = flag.strip_prefix('\\').unwrap_or(flag);
    !atom.is_empty()
        && atom.len() <= 256
        && atom
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"(){%*\"\\]".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag(add: &[&str]) -> MailOp {
        MailOp::Flag {
            folder: "INBOX".into(),
            uids: vec![1, 2],
            add: add.iter().map(|s| s.to_string()).collect(),
            remove: vec![],
            uidvalidity: Some(7),
            message_ids: vec![],
        }
    }

    #[test]
    fn serializes_with_the_method_name() {
        let v = serde_json::to_value(flag(&["\\Seen"])).unwrap();
        assert_eq!(v["kind"], "mail.flag");
        let back: MailOp = serde_json::from_value(v).unwrap();
        assert_eq!(back, flag(&["\\Seen"]));
        assert_eq!(back.kind(), "mail.flag");
    }

    #[test]
    fn validation_names_the_problem() {
        assert!(flag(&["\\Seen", "$Label1"]).validate().is_ok());
        assert!(flag(&["bad flag"]).validate().unwrap_err().0.contains("bad flag"));
        assert!(flag(&["a)b"]).validate().is_err());
        assert!(flag(&[]).validate().is_err());
        let no_uids = MailOp::Delete {
            folder: "INBOX".into(),
            uids: vec![],
            uidvalidity: None,
            message_ids: vec![],
        };
        assert!(no_uids.validate().unwrap_err().0.contains("uids"));
        let rename = MailOp::FolderRename {
            path: "INBOX".into(),
            to: "X".into(),
        };
        assert!(rename.validate().is_err());
        let bad = MailOp::FolderCreate { path: "a\nb".into() };
        assert!(bad.validate().is_err());
    }

    proptest::proptest! {
        #[test]
        fn flags_that_validate_are_atoms(flag in "\\\\?[ -~]{0,12}") {
            if valid_flag(&flag) {
                proptest::prop_assert!(!flag.contains(' ') && !flag.contains('(') && !flag.contains('"'));
            }
        }
    }
}
