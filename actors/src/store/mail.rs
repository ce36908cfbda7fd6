//! The mail side of the mirror: folders, message summaries and cached bodies, written one
//! transaction per batch (DESIGN.md, "Speed").

use std::collections::BTreeMap;

use crate::store::records::{FolderRecord, MessageRecord};
use crate::store::{Store, StoreError, keys};

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
                    if rec != old {
                        changes.updated.push(rec.path.clone());
                    }
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
        wtxn.commit()?;
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
        let rtxn = self.env().read_txn()?;
        let start = keys::message(account, folder, after_uid.saturating_add(1));
        let prefix = keys::folder_prefix(account, folder);
        let mut out = Vec::new();
        if after_uid == u32::MAX {
            return Ok(out);
        }
        // Keys sort by UID (big-endian), so everything from `start` on is the page.
        let mut iter = self.mail_messages.prefix_iter(&rtxn, &prefix)?;
        for item in iter.by_ref() {
            let (key, rec) = item?;
            if key >= start.as_slice() {
                out.push(rec);
                if out.len() >= limit {
                    break;
                }
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
        for item in self.mail_messages.prefix_iter(&rtxn, &prefix)? {
            let (_, rec) = item?;
            out.insert(rec.uid, rec.flags);
        }
        Ok(out)
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
        for rec in upserts {
            self.mail_messages
                .put(&mut wtxn, &keys::message(account, folder, rec.uid), rec)?;
        }
        for (uid, flags, modseq) in flag_updates {
            let key = keys::message(account, folder, *uid);
            if let Some(mut rec) = self.mail_messages.get(&wtxn, &key)? {
                rec.flags = flags.clone();
                if modseq.is_some() {
                    rec.modseq = *modseq;
                }
                self.mail_messages.put(&mut wtxn, &key, &rec)?;
            }
        }
        for uid in removals {
            let key = keys::message(account, folder, *uid);
            self.mail_messages.delete(&mut wtxn, &key)?;
            self.mail_bodies.delete(&mut wtxn, &key)?;
        }
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
        Ok(())
    }

    /// Count of mirrored messages without `\Seen`.
    pub fn unseen_count(&self, account: &str, folder: &str) -> Result<u32, StoreError> {
        let rtxn = self.env().read_txn()?;
        let prefix = keys::folder_prefix(account, folder);
        let mut n = 0;
        for item in self.mail_messages.prefix_iter(&rtxn, &prefix)? {
            if !item?.1.flags.iter().any(|f| f.eq_ignore_ascii_case("\\Seen")) {
                n += 1;
            }
        }
        Ok(n)
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
mod tests {
    use super::*;

    fn folder(path: &str) -> FolderRecord {
        FolderRecord {
            path: path.into(),
            namespace: "personal".into(),
            ..FolderRecord::default()
        }
    }

    fn msg(uid: u32, flags: &[&str]) -> MessageRecord {
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
}
