//! The mail side of the mirror: folders, message summaries and cached bodies, written one
//! transaction per batch (DESIGN.md, "Speed").

use std::collections::BTreeMap;
use std::ops::Bound;

use heed::types::{DecodeIgnore, SerdeJson};
use serde::Deserialize;

use crate::store::counts::Moved;
use crate::store::records::{FolderRecord, MessageRecord};
use crate::store::{Store, StoreError, keys};

/// The flags alone of a stored [`MessageRecord`]: reading them skips the other fields without
/// allocating their strings (a folder of 100,000 messages is scanned on every flag comparison).
#[derive(Deserialize)]
pub(super) struct FlagsOnly {
    #[serde(default)]
    pub(super) flags: Vec<String>,
}

/// The UID at the end of a message key ([`keys::message`]).
fn uid_of(key: &[u8]) -> u32 {
    key.len()
        .checked_sub(4)
        .and_then(|at| key[at..].try_into().ok())
        .map(u32::from_be_bytes)
        .unwrap_or(0)
}

pub(super) fn is_unseen(flags: &[String]) -> bool {
    !flags.iter().any(|f| f.eq_ignore_ascii_case("\\Seen"))
}

/// What replacing the folder list changed.
#[derive(Debug, Default, PartialEq)]
pub struct FolderChanges {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub updated: Vec<String>,
}

impl FolderChanges {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.updated.is_empty()
    }
}

/// The first key after every message key of a folder: its prefix ends in NUL, so the prefix
/// with that byte raised to 1 sorts after all of them.
pub(super) fn folder_end(account: &str, folder: &str) -> Vec<u8> {
    let mut end = keys::folder_prefix(account, folder);
    *end.last_mut().expect("a folder prefix is not empty") = 1;
    end
}

impl Store {
    /// The account's folders, sorted by path.
    pub fn folders(&self, account: &str) -> Result<Vec<FolderRecord>, StoreError> {
        let rtxn = self.env().read_txn()?;
        let prefix = keys::account_prefix(account);
        let mut out = Vec::new();
        for item in self.mail_folders.prefix_iter(&rtxn, &prefix)? {
            out.push(item?.1);
        }
        Ok(out)
    }

    pub fn folder(&self, account: &str, path: &str) -> Result<Option<FolderRecord>, StoreError> {
        let rtxn = self.env().read_txn()?;
        Ok(self.mail_folders.get(&rtxn, &keys::with_str(account, path))?)
    }

    /// Replaces the folder list with `listed`, keeping each known folder's sync state; a folder
    /// that is gone loses its messages and bodies too.
    pub fn replace_folders(
        &self,
        account: &str,
        listed: &[FolderRecord],
    ) -> Result<FolderChanges, StoreError> {
        let mut wtxn = self.env().write_txn()?;
        let prefix = keys::account_prefix(account);
        let mut known: BTreeMap<String, FolderRecord> = BTreeMap::new();
        for item in self.mail_folders.prefix_iter(&wtxn, &prefix)? {
            let (_, rec) = item?;
            known.insert(rec.path.clone(), rec);
        }
        let mut changes = FolderChanges::default();
        for folder in listed {
            let mut rec = folder.clone();
            match known.remove(&folder.path) {
                Some(old) => {
                    rec.uidvalidity = old.uidvalidity;
                    rec.uidnext = old.uidnext;
                    rec.highestmodseq = old.highestmodseq;
                    rec.total = old.total;
                    rec.unseen = old.unseen;
                    rec.rights = rec.rights.or(old.rights.clone());
                    if rec == old {
                        continue;
                    }
                    changes.updated.push(rec.path.clone());
                }
                None => changes.added.push(rec.path.clone()),
            }
            self.mail_folders
                .put(&mut wtxn, &keys::with_str(account, &rec.path), &rec)?;
        }
        for (path, _) in known {
            self.mail_folders
                .delete(&mut wtxn, &keys::with_str(account, &path))?;
            self.clear_folder(&mut wtxn, account, &path)?;
            changes.removed.push(path);
        }
        // An unchanged list (every poll and `sync`) commits nothing, so nothing is synced to disk.
        if changes.is_empty() {
            wtxn.abort();
        } else {
            wtxn.commit()?;
        }
        Ok(changes)
    }

    /// Messages of a folder with a UID above `after_uid`, at most `limit`, in UID order.
    pub fn messages(
        &self,
        account: &str,
        folder: &str,
        after_uid: u32,
        limit: usize,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        let mut out = Vec::new();
        if after_uid == u32::MAX || limit == 0 {
            return Ok(out);
        }
        let rtxn = self.env().read_txn()?;
        // Keys sort by UID (big-endian): the page is a range from `start`, whatever its depth.
        let start = keys::message(account, folder, after_uid.saturating_add(1));
        let end = folder_end(account, folder);
        let range = (Bound::Included(start.as_slice()), Bound::Excluded(end.as_slice()));
        for item in self.mail_messages.range(&rtxn, &range)? {
            out.push(item?.1);
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// UID → flags of every mirrored message of a folder (for flag comparison and expunges).
    pub fn message_flags(
        &self,
        account: &str,
        folder: &str,
    ) -> Result<BTreeMap<u32, Vec<String>>, StoreError> {
        let rtxn = self.env().read_txn()?;
        let prefix = keys::folder_prefix(account, folder);
        let mut out = BTreeMap::new();
        let iter = self.mail_messages.prefix_iter(&rtxn, &prefix)?;
        for item in iter.remap_data_type::<SerdeJson<FlagsOnly>>() {
            let (key, rec) = item?;
            out.insert(uid_of(key), rec.flags);
        }
        Ok(out)
    }

    /// UID → flags of the mirrored messages among `uids` (one lookup each; absent ones are left
    /// out): what a CONDSTORE flag fetch of a few changed messages is compared with.
    pub fn message_flags_of(
        &self,
        account: &str,
        folder: &str,
        uids: impl IntoIterator<Item = u32>,
    ) -> Result<BTreeMap<u32, Vec<String>>, StoreError> {
        let rtxn = self.env().read_txn()?;
        let db = self.mail_messages.remap_data_type::<SerdeJson<FlagsOnly>>();
        let mut out = BTreeMap::new();
        for uid in uids {
            if let Some(rec) = db.get(&rtxn, &keys::message(account, folder, uid))? {
                out.insert(uid, rec.flags);
            }
        }
        Ok(out)
    }

    /// The mirrored UIDs of a folder below `below`, ascending; keys only, no record is read.
    pub fn message_uids_below(
        &self,
        account: &str,
        folder: &str,
        below: u32,
    ) -> Result<Vec<u32>, StoreError> {
        let rtxn = self.env().read_txn()?;
        let prefix = keys::folder_prefix(account, folder);
        let end = keys::message(account, folder, below);
        let range = (
            Bound::Included(prefix.as_slice()),
            Bound::Excluded(end.as_slice()),
        );
        let mut out = Vec::new();
        for item in self
            .mail_messages
            .remap_data_type::<DecodeIgnore>()
            .range(&rtxn, &range)?
        {
            out.push(uid_of(item?.0));
        }
        Ok(out)
    }

    /// How many mirrored messages of a folder have a UID below `below`: the kept count less the
    /// few at or above `below` (none, in a round: new messages are stored above UIDNEXT).
    pub fn message_count_below(&self, account: &str, folder: &str, below: u32) -> Result<u32, StoreError> {
        let all = self.message_count(account, folder)?;
        let rtxn = self.env().read_txn()?;
        let above = self.count_range(&rtxn, account, folder, below, u32::MAX)?;
        Ok(all.saturating_sub(above))
    }

    /// Applies one batch of sync results in one transaction: new or replaced messages, flag
    /// updates, removals (with their cached bodies), and optionally the folder's new state.
    pub fn apply_mail_batch(
        &self,
        account: &str,
        folder: &str,
        upserts: &[MessageRecord],
        flag_updates: &[(u32, Vec<String>, Option<u64>)],
        removals: &[u32],
        folder_state: Option<&FolderRecord>,
    ) -> Result<(), StoreError> {
        let mut wtxn = self.env().write_txn()?;
        let mut moved = Moved::default();
        for rec in upserts {
            moved += self.put_message(&mut wtxn, account, folder, rec)?;
        }
        for (uid, flags, modseq) in flag_updates {
            let key = keys::message(account, folder, *uid);
            if let Some(mut rec) = self.mail_messages.get(&wtxn, &key)? {
                moved.unseen += i64::from(is_unseen(flags)) - i64::from(is_unseen(&rec.flags));
                rec.flags = flags.clone();
                if modseq.is_some() {
                    rec.modseq = *modseq;
                }
                self.mail_messages.put(&mut wtxn, &key, &rec)?;
            }
        }
        for uid in removals {
            moved += self.delete_message(&mut wtxn, account, folder, *uid)?;
        }
        self.adjust_counts(&mut wtxn, account, folder, moved)?;
        if let Some(state) = folder_state {
            self.mail_folders
                .put(&mut wtxn, &keys::with_str(account, folder), state)?;
        }
        wtxn.commit()?;
        Ok(())
    }

    /// Drops every message and body of a folder (its UIDVALIDITY changed, RFC 3501 §2.3.1.1).
    pub fn reset_folder(&self, account: &str, folder: &str) -> Result<(), StoreError> {
        let mut wtxn = self.env().write_txn()?;
        self.clear_folder(&mut wtxn, account, folder)?;
        wtxn.commit()?;
        Ok(())
    }

    pub(crate) fn clear_folder(
        &self,
        wtxn: &mut heed::RwTxn<'_>,
        account: &str,
        folder: &str,
    ) -> Result<(), StoreError> {
        let prefix = keys::folder_prefix(account, folder);
        let mut doomed = Vec::new();
        for item in self.mail_messages.prefix_iter(wtxn, &prefix)? {
            doomed.push(item?.0.to_vec());
        }
        for key in doomed {
            self.mail_messages.delete(wtxn, &key)?;
            self.mail_bodies.delete(wtxn, &key)?;
        }
        self.forget_counts(wtxn, account, folder)
    }

    pub fn body(&self, account: &str, folder: &str, uid: u32) -> Result<Option<Vec<u8>>, StoreError> {
        let rtxn = self.env().read_txn()?;
        Ok(self
            .mail_bodies
            .get(&rtxn, &keys::message(account, folder, uid))?
            .map(<[u8]>::to_vec))
    }

    pub fn put_body(&self, account: &str, folder: &str, uid: u32, raw: &[u8]) -> Result<(), StoreError> {
        let mut wtxn = self.env().write_txn()?;
        self.mail_bodies
            .put(&mut wtxn, &keys::message(account, folder, uid), raw)?;
        wtxn.commit()?;
        Ok(())
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(crate) fn folder(path: &str) -> FolderRecord {
        FolderRecord {
            path: path.into(),
            namespace: "personal".into(),
            ..FolderRecord::default()
        }
    }

    pub(crate) fn msg(uid: u32, flags: &[&str]) -> MessageRecord {
        MessageRecord {
            uid,
            flags: flags.iter().map(|f| f.to_string()).collect(),
            ..MessageRecord::default()
        }
    }

    #[test]
    fn folders_keep_state_and_removed_ones_lose_messages() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let changes = store
            .replace_folders("a", &[folder("INBOX"), folder("Old")])
            .unwrap();
        assert_eq!(changes.added, vec!["INBOX", "Old"]);
        let mut inbox = folder("INBOX");
        inbox.uidvalidity = Some(7);
        store
            .apply_mail_batch("a", "INBOX", &[msg(1, &[])], &[], &[], Some(&inbox))
            .unwrap();
        store
            .apply_mail_batch("a", "Old", &[msg(1, &[]), msg(2, &[])], &[], &[], None)
            .unwrap();
        store.put_body("a", "Old", 2, b"raw").unwrap();
        let changes = store.replace_folders("a", &[folder("INBOX")]).unwrap();
        assert_eq!(changes.removed, vec!["Old"]);
        assert!(
            changes.added.is_empty() && changes.updated.is_empty(),
            "{changes:?}"
        );
        assert_eq!(store.folder("a", "INBOX").unwrap().unwrap().uidvalidity, Some(7));
        assert!(store.messages("a", "Old", 0, 10).unwrap().is_empty());
        assert_eq!(store.body("a", "Old", 2).unwrap(), None);
        assert_eq!(store.messages("a", "INBOX", 0, 10).unwrap().len(), 1);
    }

    #[test]
    fn batches_page_flag_and_remove() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let batch: Vec<_> = (1..=300).map(|uid| msg(uid, &[])).collect();
        store
            .apply_mail_batch("a", "INBOX", &batch, &[], &[], None)
            .unwrap();
        // A folder whose name extends another's must not leak into it.
        store
            .apply_mail_batch("a", "INBOX.x", &[msg(1, &[])], &[], &[], None)
            .unwrap();
        let page = store.messages("a", "INBOX", 100, 50).unwrap();
        assert_eq!((page[0].uid, page.len()), (101, 50));
        assert_eq!(store.messages("a", "INBOX", 0, 1000).unwrap().len(), 300);
        store
            .apply_mail_batch(
                "a",
                "INBOX",
                &[],
                &[(5, vec!["\\Seen".into()], Some(9))],
                &[6, 7],
                None,
            )
            .unwrap();
        let flags = store.message_flags("a", "INBOX").unwrap();
        assert_eq!(flags.len(), 298);
        assert_eq!(flags[&5], vec!["\\Seen"]);
        assert_eq!(store.unseen_count("a", "INBOX").unwrap(), 297);
        store.reset_folder("a", "INBOX").unwrap();
        assert!(store.messages("a", "INBOX", 0, 10).unwrap().is_empty());
        assert_eq!(store.messages("a", "INBOX.x", 0, 10).unwrap().len(), 1);
    }

    #[test]
    fn reads_by_range_stay_inside_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let batch: Vec<_> = (1..=1000)
            .filter(|uid| uid % 10 != 0)
            .map(|uid| msg(uid, if uid % 3 == 0 { &["\\Seen"] } else { &[] }))
            .collect();
        store
            .apply_mail_batch("a", "INBOX", &batch, &[], &[], None)
            .unwrap();
        for (folder, uid) in [("INBOX.x", 1), ("INBOW", 2), ("INBOX", u32::MAX - 1)] {
            store
                .apply_mail_batch("a", folder, &[msg(uid, &[])], &[], &[], None)
                .unwrap();
        }
        // A deep page starts at its UID; the last page stops at the folder's end.
        let page = store.messages("a", "INBOX", 995, 10).unwrap();
        let uids: Vec<u32> = page.iter().map(|m| m.uid).collect();
        assert_eq!(uids, vec![996, 997, 998, 999, u32::MAX - 1]);
        assert!(store.messages("a", "INBOX", 0, 0).unwrap().is_empty());
        assert!(store.messages("a", "INBOX", u32::MAX, 10).unwrap().is_empty());
        assert_eq!(store.message_count_below("a", "INBOX", 101).unwrap(), 90);
        assert_eq!(store.message_count_below("a", "INBOX", u32::MAX).unwrap(), 901);
        assert_eq!(
            store.message_count_below("a", "INBOX", u32::MAX - 1).unwrap(),
            900
        );
        let uids = store.message_uids_below("a", "INBOX", 25).unwrap();
        assert_eq!(
            uids,
            vec![
                1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16, 17, 18, 19, 21, 22, 23, 24
            ]
        );
        let some = store.message_flags_of("a", "INBOX", [3, 4, 10]).unwrap();
        assert_eq!(some.len(), 2, "UID 10 is not mirrored");
        assert_eq!(
            (some[&3].clone(), some[&4].clone()),
            (vec!["\\Seen".to_string()], vec![])
        );
        assert_eq!(store.message_flags("a", "INBOX").unwrap().len(), 901);
        assert_eq!(store.unseen_count("a", "INBOX").unwrap(), 901 - 300);
    }
}
