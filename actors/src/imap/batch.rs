//! Batches of journaled mail operations: adjacent flag changes, moves, copies and deletes on one
//! folder are carried out as one UID command over the union of their UIDs (RFC 3501 §6.4.8).
//!
//! ```text
//!  journal:  flag 7 +\Seen │ flag 9 +\Seen │ flag 12 +\Seen │ move 3 → Archive │ move 5 → Archive
//!  server:   SELECT INBOX, UID SEARCH UID 7,9,12, UID STORE 7,9,12 +FLAGS.SILENT (\Seen)
//!            SELECT INBOX, UID SEARCH UID 3,5,    UID MOVE 3,5 Archive
//! ```
//!
//! Only operations that are the same command on the same folder join, and only when they are
//! adjacent among the account's mail operations, so the order of everything else is kept. Each
//! operation still has its own outcome: one whose messages are all gone is moot. A batch the
//! server refuses is carried out again one operation at a time (by the caller) so that each
//! refusal names its operation.

use async_imap::Session;

use crate::error::ServiceError;
use crate::imap::connect::{ImapConnection, classify_error};
use crate::imap::ops::{self, Applied, OpCaps};
use crate::imap::sync::uid_set;
use crate::journal::MailOp;

/// Most operations one batch carries.
pub const MAX_OPS: usize = 256;
/// Most UIDs one batch names, so that its command line stays short (RFC 7162 §4 advises
/// servers to take at least 8,192 octets).
pub const MAX_UIDS: usize = 1000;

/// What operations must share to be carried out as one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    Flag {
        folder: String,
        uidvalidity: Option<u32>,
        add: Vec<String>,
        remove: Vec<String>,
    },
    Delete {
        folder: String,
        uidvalidity: Option<u32>,
    },
    Move {
        folder: String,
        uidvalidity: Option<u32>,
        to: String,
    },
    Copy {
        folder: String,
        uidvalidity: Option<u32>,
        to: String,
    },
}

/// The batch `op` may join, or `None` when it is carried out alone. `retry` says an earlier
/// attempt may have reached the server: a repeated COPY must first look for what it already
/// copied, and a MOVE without RFC 6851 is COPY + EXPUNGE, so those go alone (ops.rs).
pub fn key(op: &MailOp, caps: OpCaps, retry: bool) -> Option<Key> {
    match op {
        MailOp::Flag {
            folder,
            uidvalidity,
            add,
            remove,
            ..
        } => Some(Key::Flag {
            folder: folder.clone(),
            uidvalidity: *uidvalidity,
            add: add.clone(),
            remove: remove.clone(),
        }),
        MailOp::Delete {
            folder, uidvalidity, ..
        } => Some(Key::Delete {
            folder: folder.clone(),
            uidvalidity: *uidvalidity,
        }),
        MailOp::Move {
            folder,
            uidvalidity,
            to,
            ..
        } if caps.move_ => Some(Key::Move {
            folder: folder.clone(),
            uidvalidity: *uidvalidity,
            to: to.clone(),
        }),
        MailOp::Copy {
            folder,
            uidvalidity,
            to,
            ..
        } if !retry => Some(Key::Copy {
            folder: folder.clone(),
            uidvalidity: *uidvalidity,
            to: to.clone(),
        }),
        _ => None,
    }
}

/// The UIDs and Message-IDs an operation names (the ids padded to the UIDs' length).
fn messages(op: &MailOp) -> (&[u32], Vec<Option<String>>) {
    match op {
        MailOp::Flag {
            uids, message_ids, ..
        }
        | MailOp::Delete {
            uids, message_ids, ..
        }
        | MailOp::Move {
            uids, message_ids, ..
        }
        | MailOp::Copy {
            uids, message_ids, ..
        } => (
            uids,
            message_ids
                .iter()
                .cloned()
                .chain(std::iter::repeat(None))
                .take(uids.len())
                .collect(),
        ),
        _ => (&[], Vec::new()),
    }
}

/// How many UIDs `op` names (for [`MAX_UIDS`]).
pub fn size(op: &MailOp) -> usize {
    messages(op).0.len()
}

/// Why an operation of this batch has nothing left to do.
fn moot_reason(key: &Key) -> &'static str {
    match key {
        Key::Flag { .. } => "the messages are no longer on the server",
        Key::Delete { .. } => "the messages were already deleted",
        Key::Move { .. } | Key::Copy { .. } => "the messages are no longer in the folder",
    }
}

/// Carries out `ops` (all of batch `key`) as one command; returns each operation's outcome, in
/// order. One SELECT and one UID SEARCH find what is still there, then one UID STORE, UID MOVE,
/// UID COPY, or STORE \Deleted + UID EXPUNGE covers the union.
pub async fn execute(
    session: &mut Session<ImapConnection>,
    key: &Key,
    ops: &[&MailOp],
    caps: OpCaps,
) -> Result<Vec<Applied>, ServiceError> {
    let (folder, uidvalidity) = match key {
        Key::Flag {
            folder, uidvalidity, ..
        }
        | Key::Delete { folder, uidvalidity }
        | Key::Move {
            folder, uidvalidity, ..
        }
        | Key::Copy {
            folder, uidvalidity, ..
        } => (folder, *uidvalidity),
    };
    let mut uids = Vec::new();
    let mut ids = Vec::new();
    for op in ops {
        let (u, m) = messages(op);
        uids.extend_from_slice(u);
        ids.extend(m);
    }
    let moot = || Applied::Moot(moot_reason(key).into());
    let Some(found) = ops::resolve_uids(session, folder, &uids, uidvalidity, &ids).await? else {
        return Ok(ops.iter().map(|_| moot()).collect());
    };
    let set = uid_set(&found.uids);
    match key {
        Key::Flag { add, remove, .. } => {
            if !add.is_empty() {
                ops::store(session, &set, &format!("+FLAGS.SILENT ({})", add.join(" "))).await?;
            }
            if !remove.is_empty() {
                ops::store(session, &set, &format!("-FLAGS.SILENT ({})", remove.join(" "))).await?;
            }
        }
        Key::Delete { .. } => ops::expunge(session, &set, caps).await?,
        Key::Move { to, .. } => session.uid_mv(&set, to).await.map_err(classify_error)?,
        Key::Copy { to, .. } => session.uid_copy(&set, to).await.map_err(classify_error)?,
    }
    Ok(ops
        .iter()
        .map(|op| {
            // After a UIDVALIDITY change the new UIDs no longer say which operation they were.
            let gone = !found.remapped && !messages(op).0.iter().any(|u| found.uids.binary_search(u).is_ok());
            if gone { moot() } else { Applied::Done }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag(uid: u32, add: &str) -> MailOp {
        MailOp::Flag {
            folder: "INBOX".into(),
            uids: vec![uid],
            add: vec![add.into()],
            remove: vec![],
            uidvalidity: Some(7),
            message_ids: vec![],
        }
    }

    fn mv(uid: u32, to: &str) -> MailOp {
        MailOp::Move {
            folder: "INBOX".into(),
            uids: vec![uid],
            to: to.into(),
            uidvalidity: Some(7),
            message_ids: vec![Some(format!("<{uid}@x>"))],
        }
    }

    const MOVE: OpCaps = OpCaps {
        move_: true,
        uidplus: true,
        multiappend: true,
    };

    #[test]
    fn the_same_command_on_the_same_folder_shares_a_key() {
        assert_eq!(
            key(&flag(1, "\\Seen"), MOVE, false),
            key(&flag(2, "\\Seen"), MOVE, true)
        );
        assert_ne!(
            key(&flag(1, "\\Seen"), MOVE, false),
            key(&flag(2, "\\Flagged"), MOVE, false)
        );
        assert_eq!(key(&mv(1, "A"), MOVE, false), key(&mv(2, "A"), MOVE, false));
        assert_ne!(key(&mv(1, "A"), MOVE, false), key(&mv(2, "B"), MOVE, false));
        assert_ne!(
            key(&mv(1, "A"), MOVE, false),
            key(&flag(1, "\\Seen"), MOVE, false)
        );
    }

    #[test]
    fn what_must_check_an_earlier_attempt_goes_alone() {
        assert_eq!(key(&mv(1, "A"), OpCaps::default(), false), None);
        let copy = MailOp::Copy {
            folder: "INBOX".into(),
            uids: vec![1],
            to: "A".into(),
            uidvalidity: None,
            message_ids: vec![],
        };
        assert!(key(&copy, MOVE, false).is_some());
        assert_eq!(key(&copy, MOVE, true), None);
        let append = MailOp::Append {
            folder: "Sent".into(),
            raw: String::new(),
            flags: vec![],
            message_id: None,
        };
        assert_eq!(key(&append, MOVE, false), None);
    }

    #[test]
    fn message_ids_are_padded_to_the_uids() {
        let mut op = flag(3, "\\Seen");
        if let MailOp::Flag { uids, .. } = &mut op {
            uids.push(4);
        }
        let (uids, ids) = messages(&op);
        assert_eq!(uids, &[3, 4]);
        assert_eq!(ids, vec![None, None]);
        assert_eq!(size(&op), 2);
    }
}
