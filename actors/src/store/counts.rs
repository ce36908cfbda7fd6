//! A folder's counts kept in the mirror by difference (issue 22): how many messages it holds and
//! how many lack `\\Seen`. Counting them read every record of the folder (100,000 flag lists on
//! every round after new mail); now every write that moves them — a round's new messages, flag
//! changes and expunges, the journal's optimistic flag writes, deletes and moves — adjusts them
//! in its own transaction, and a folder is counted again only when its count is missing (a
//! mirror from before, a UIDVALIDITY change or a rename dropped it).
//!
//! ```text
//!   put_message / delete_message ──► Moved {unseen ±1, messages ±1} ──┐ summed per transaction
//!   apply_mail_batch, journal ────────────────────────────────────────┴─► adjust_counts (kept ones)
//!   clear_folder, rename ──► forget_counts ──► the next read counts and keeps
//! ```

use std::ops::Bound;

use heed::types::{DecodeIgnore, SerdeJson};

use crate::store::mail::{FlagsOnly, folder_end, is_unseen};
use crate::store::records::MessageRecord;
use crate::store::{Store, StoreError, keys};

/// A count kept in `sync_state` under `account NUL mail.SCOPE NUL folder`.
#[derive(Clone, Copy)]
enum Kept {
    /// Messages without `\Seen`.
    Unseen,
    /// Mirrored messages.
    Messages,
}

impl Kept {
    fn key(self, account: &str, folder: &str) -> Vec<u8> {
        let scope = match self {
            Kept::Unseen => "mail.unseen",
            Kept::Messages => "mail.count",
        };
        let mut key = keys::with_str(account, scope);
        key.push(0);
        key.extend_from_slice(folder.as_bytes());
        key
    }
}

/// How writes moved a folder's kept counts, summed over a transaction.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct Moved {
    pub unseen: i64,
    pub messages: i64,
}

impl std::ops::AddAssign for Moved {
    fn add_assign(&mut self, other: Moved) {
        self.unseen += other.unseen;
        self.messages += other.messages;
    }
}

impl Store {
    /// Writes one message record; how the folder's counts moved, for [`Store::adjust_counts`]
    /// once per transaction.
    pub(crate) fn put_message(
        &self,
        wtxn: &mut heed::RwTxn<'_>,
        account: &str,
        folder: &str,
        rec: &MessageRecord,
    ) -> Result<Moved, StoreError> {
        let key = keys::message(account, folder, rec.uid);
        let before = self
            .mail_messages
            .remap_data_type::<SerdeJson<FlagsOnly>>()
            .get(wtxn, &key)?
            .map(|old| is_unseen(&old.flags));
        self.mail_messages.put(wtxn, &key, rec)?;
        Ok(Moved {
            unseen: i64::from(is_unseen(&rec.flags)) - i64::from(before == Some(true)),
            messages: i64::from(before.is_none()),
        })
    }

    /// Removes one message and its cached body; how the folder's counts moved.
    pub(crate) fn delete_message(
        &self,
        wtxn: &mut heed::RwTxn<'_>,
        account: &str,
        folder: &str,
        uid: u32,
    ) -> Result<Moved, StoreError> {
        let key = keys::message(account, folder, uid);
        let before = self
            .mail_messages
            .remap_data_type::<SerdeJson<FlagsOnly>>()
            .get(wtxn, &key)?
            .map(|old| is_unseen(&old.flags));
        self.mail_messages.delete(wtxn, &key)?;
        self.mail_bodies.delete(wtxn, &key)?;
        Ok(Moved {
            unseen: -i64::from(before == Some(true)),
            messages: -i64::from(before.is_some()),
        })
    }

    /// Moves the folder's kept counts, in the transaction of the writes that moved them; a count
    /// not kept stays so (the next read takes it).
    pub(crate) fn adjust_counts(
        &self,
        wtxn: &mut heed::RwTxn<'_>,
        account: &str,
        folder: &str,
        moved: Moved,
    ) -> Result<(), StoreError> {
        for (kept, delta) in [(Kept::Unseen, moved.unseen), (Kept::Messages, moved.messages)] {
            if delta == 0 {
                continue;
            }
            let key = kept.key(account, folder);
            if let Some(n) = self.sync_state.get(wtxn, &key)?.and_then(|v| v.as_u64()) {
                let now = (n as i64).saturating_add(delta).max(0);
                self.sync_state.put(wtxn, &key, &serde_json::Value::from(now))?;
            }
        }
        Ok(())
    }

    /// Forgets the folder's kept counts (its messages were dropped or re-keyed): the next reads
    /// count again.
    pub(crate) fn forget_counts(
        &self,
        wtxn: &mut heed::RwTxn<'_>,
        account: &str,
        folder: &str,
    ) -> Result<(), StoreError> {
        for kept in [Kept::Unseen, Kept::Messages] {
            self.sync_state.delete(wtxn, &kept.key(account, folder))?;
        }
        Ok(())
    }

    /// The kept count, else `count` over the folder, kept from then on (counted and kept in one
    /// write transaction, so no write slips between the two).
    fn kept_count(
        &self,
        kept: Kept,
        account: &str,
        folder: &str,
        count: impl FnOnce(&heed::RoTxn<'_>) -> Result<u32, StoreError>,
    ) -> Result<u32, StoreError> {
        let key = kept.key(account, folder);
        {
            let rtxn = self.env().read_txn()?;
            if let Some(n) = self.sync_state.get(&rtxn, &key)?.and_then(|v| v.as_u64()) {
                return Ok(u32::try_from(n).unwrap_or(u32::MAX));
            }
        }
        let mut wtxn = self.env().write_txn()?;
        let n = count(&wtxn)?;
        self.sync_state
            .put(&mut wtxn, &key, &serde_json::Value::from(n))?;
        wtxn.commit()?;
        Ok(n)
    }

    /// How many messages of the folder the mirror holds (kept, see [`Kept`]).
    pub fn message_count(&self, account: &str, folder: &str) -> Result<u32, StoreError> {
        self.kept_count(Kept::Messages, account, folder, |txn| {
            self.count_range(txn, account, folder, 0, u32::MAX)
        })
    }

    /// Mirrored messages of a folder with `from <= UID < below`; keys only.
    pub(super) fn count_range(
        &self,
        txn: &heed::RoTxn<'_>,
        account: &str,
        folder: &str,
        from: u32,
        below: u32,
    ) -> Result<u32, StoreError> {
        let start = keys::message(account, folder, from);
        let end = if below == u32::MAX {
            folder_end(account, folder)
        } else {
            keys::message(account, folder, below)
        };
        let range = (Bound::Included(start.as_slice()), Bound::Excluded(end.as_slice()));
        let mut n = 0;
        for item in self
            .mail_messages
            .remap_data_type::<DecodeIgnore>()
            .range(txn, &range)?
        {
            item?;
            n += 1;
        }
        Ok(n)
    }

    /// Count of mirrored messages without `\Seen`: the count kept by difference on every write
    /// that moves it (issue 22: counting read every flag list of the folder, 100,000 of them,
    /// on every round after new mail), else counted once and kept from then on.
    pub fn unseen_count(&self, account: &str, folder: &str) -> Result<u32, StoreError> {
        self.kept_count(Kept::Unseen, account, folder, |txn| {
            self.recount_unseen(txn, account, folder)
        })
    }

    /// Count of mirrored messages without `\Seen`, from every flag list of the folder.
    fn recount_unseen(&self, txn: &heed::RoTxn<'_>, account: &str, folder: &str) -> Result<u32, StoreError> {
        let prefix = keys::folder_prefix(account, folder);
        let mut n = 0;
        let iter = self.mail_messages.prefix_iter(txn, &prefix)?;
        for item in iter.remap_data_type::<SerdeJson<FlagsOnly>>() {
            if is_unseen(&item?.1.flags) {
                n += 1;
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::mail::tests::{folder, msg};

    #[test]
    fn the_kept_unseen_count_equals_a_recount_after_mixed_writes() {
        use crate::journal::MailOp;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let recount = |folder: &str| {
            let rtxn = store.env().read_txn().unwrap();
            store.recount_unseen(&rtxn, "a", folder).unwrap()
        };
        let check = |folder: &str, step: &str| {
            assert_eq!(
                store.unseen_count("a", folder).unwrap(),
                recount(folder),
                "{step}"
            );
            let all = {
                let rtxn = store.env().read_txn().unwrap();
                store.count_range(&rtxn, "a", folder, 0, u32::MAX).unwrap()
            };
            assert_eq!(store.message_count("a", folder).unwrap(), all, "{step}: messages");
        };
        store
            .replace_folders("a", &[folder("INBOX"), folder("Archive")])
            .unwrap();
        let batch: Vec<_> = (1..=100)
            .map(|uid| msg(uid, if uid % 4 == 0 { &["\\Seen"] } else { &["$Label"] }))
            .collect();
        store
            .apply_mail_batch("a", "INBOX", &batch, &[], &[], None)
            .unwrap();
        // No count kept yet: counted once, then kept.
        assert_eq!(store.unseen_count("a", "INBOX").unwrap(), 75);
        type Step<'a> = (&'a str, Box<dyn Fn() + 'a>);
        let steps: Vec<Step> = vec![
            (
                "new messages",
                Box::new(|| {
                    let new: Vec<_> = (101..=110).map(|uid| msg(uid, &[])).collect();
                    store
                        .apply_mail_batch("a", "INBOX", &new, &[], &[], None)
                        .unwrap();
                }),
            ),
            (
                "a message written again with \\Seen",
                Box::new(|| {
                    store
                        .apply_mail_batch("a", "INBOX", &[msg(1, &["\\seen"])], &[], &[], None)
                        .unwrap();
                }),
            ),
            (
                "server flag changes both ways, and one unchanged",
                Box::new(|| {
                    let flags = [
                        (2, vec!["\\Seen".to_string()], None),
                        (4, vec![], Some(3)),
                        (8, vec!["\\Seen".to_string(), "\\Flagged".to_string()], None),
                        (999, vec![], None),
                    ];
                    store
                        .apply_mail_batch("a", "INBOX", &[], &flags, &[], None)
                        .unwrap();
                }),
            ),
            (
                "expunges of seen, unseen and unknown messages",
                Box::new(|| {
                    store
                        .apply_mail_batch("a", "INBOX", &[], &[], &[3, 12, 5000], None)
                        .unwrap();
                }),
            ),
            (
                "the journal's optimistic flag writes",
                Box::new(|| {
                    let flag = |uids: Vec<u32>, add: &str, remove: &str| MailOp::Flag {
                        folder: "INBOX".into(),
                        uids,
                        add: [add]
                            .iter()
                            .filter(|f| !f.is_empty())
                            .map(|f| f.to_string())
                            .collect(),
                        remove: [remove]
                            .iter()
                            .filter(|f| !f.is_empty())
                            .map(|f| f.to_string())
                            .collect(),
                        uidvalidity: None,
                        message_ids: vec![],
                    };
                    store
                        .journal_mail("a", flag(vec![5, 6, 7, 16], "\\Seen", ""))
                        .unwrap();
                    store
                        .journal_mail("a", flag(vec![20, 24, 28], "", "\\SEEN"))
                        .unwrap();
                    store
                        .journal_mail("a", flag(vec![21, 22], "\\Flagged", ""))
                        .unwrap();
                }),
            ),
            (
                "the journal's deletes and moves",
                Box::new(|| {
                    let delete = MailOp::Delete {
                        folder: "INBOX".into(),
                        uids: vec![9, 32],
                        uidvalidity: None,
                        message_ids: vec![],
                    };
                    store.journal_mail("a", delete).unwrap();
                    let moved = MailOp::Move {
                        folder: "INBOX".into(),
                        uids: vec![10, 36],
                        to: "Archive".into(),
                        uidvalidity: None,
                        message_ids: vec![],
                    };
                    store.journal_mail("a", moved).unwrap();
                }),
            ),
        ];
        for (step, write) in &steps {
            write();
            check("INBOX", step);
        }
        // UIDVALIDITY changed: the count is dropped with the messages and taken again.
        store.reset_folder("a", "INBOX").unwrap();
        check("INBOX", "reset");
        assert_eq!(store.unseen_count("a", "INBOX").unwrap(), 0);
        store
            .apply_mail_batch("a", "INBOX", &[msg(1, &[])], &[], &[], None)
            .unwrap();
        check("INBOX", "refilled after the reset");
        assert_eq!(store.unseen_count("a", "INBOX").unwrap(), 1);
        check("Archive", "another folder");
    }
}
