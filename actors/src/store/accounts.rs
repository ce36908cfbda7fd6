//! Whole-account operations on the store: what an account holds, and dropping all of it when the
//! user removes the account (`opconnect account remove`). Every table keys its records by
//! `account NUL …` (see `keys`), so one prefix scan per table finds them all.

use super::{Store, StoreError, keys};

/// How many records of one account each part of the store holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccountRecords {
    pub folders: u64,
    pub messages: u64,
    pub bodies: u64,
    pub collections: u64,
    pub items: u64,
    pub journal: u64,
    pub conflicts: u64,
    pub sync_state: u64,
}

impl AccountRecords {
    pub fn total(&self) -> u64 {
        self.folders
            + self.messages
            + self.bodies
            + self.collections
            + self.items
            + self.journal
            + self.conflicts
            + self.sync_state
    }
}

/// Deletes every key under `prefix` in `db` and returns how many there were.
fn drop_prefix<V>(
    db: &heed::Database<heed::types::Bytes, V>,
    wtxn: &mut heed::RwTxn<'_>,
    prefix: &[u8],
    delete: bool,
) -> Result<u64, StoreError>
where
    V: 'static,
{
    let keys: Vec<Vec<u8>> = db
        .remap_data_type::<heed::types::DecodeIgnore>()
        .prefix_iter(wtxn, prefix)?
        .map(|item| item.map(|(k, _)| k.to_vec()))
        .collect::<Result<_, _>>()?;
    if delete {
        for key in &keys {
            db.delete(wtxn, key)?;
        }
    }
    Ok(keys.len() as u64)
}

impl Store {
    /// Counts the records of `account` (`delete: false`) or removes them all in one transaction.
    fn sweep_account(&self, account: &str, delete: bool) -> Result<AccountRecords, StoreError> {
        let prefix = keys::account_prefix(account);
        let mut wtxn = self.env().write_txn()?;
        let counts = AccountRecords {
            folders: drop_prefix(&self.mail_folders, &mut wtxn, &prefix, delete)?,
            messages: drop_prefix(&self.mail_messages, &mut wtxn, &prefix, delete)?,
            bodies: drop_prefix(&self.mail_bodies, &mut wtxn, &prefix, delete)?,
            collections: drop_prefix(&self.dav_collections, &mut wtxn, &prefix, delete)?,
            items: drop_prefix(&self.dav_items, &mut wtxn, &prefix, delete)?,
            journal: drop_prefix(&self.journal, &mut wtxn, &prefix, delete)?,
            conflicts: drop_prefix(&self.conflicts, &mut wtxn, &prefix, delete)?,
            sync_state: drop_prefix(&self.sync_state, &mut wtxn, &prefix, delete)?,
        };
        if delete {
            wtxn.commit()?;
        } else {
            wtxn.abort();
        }
        Ok(counts)
    }

    /// What the mirror holds for `account`.
    pub fn account_records(&self, account: &str) -> Result<AccountRecords, StoreError> {
        self.sweep_account(account, false)
    }

    /// Removes the mirror, journal, conflicts and sync state of `account` in one transaction;
    /// other accounts are untouched (the prefix ends with NUL, so "wor" never matches "work").
    pub fn remove_account(&self, account: &str) -> Result<AccountRecords, StoreError> {
        self.sweep_account(account, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::records::JournalEntry;

    #[test]
    fn removes_one_account_and_keeps_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut wtxn = store.env().write_txn().unwrap();
        for (account, id) in [("work", 1u64), ("work", 2), ("wor", 1)] {
            let entry = JournalEntry::new(id, account, serde_json::json!({"kind": "test"}));
            store
                .journal
                .put(&mut wtxn, &keys::with_u64(account, id), &entry)
                .unwrap();
            store
                .mail_bodies
                .put(&mut wtxn, &keys::message(account, "INBOX", id as u32), b"raw")
                .unwrap();
            store
                .sync_state
                .put(
                    &mut wtxn,
                    &keys::with_str(account, "imap"),
                    &serde_json::json!({}),
                )
                .unwrap();
        }
        wtxn.commit().unwrap();
        let before = store.account_records("work").unwrap();
        assert_eq!((before.journal, before.bodies, before.sync_state), (2, 2, 1));
        assert_eq!(
            store.account_records("work").unwrap(),
            before,
            "counting changes nothing"
        );
        let removed = store.remove_account("work").unwrap();
        assert_eq!(removed.total(), 5);
        assert_eq!(store.account_records("work").unwrap().total(), 0);
        assert_eq!(store.account_records("wor").unwrap().total(), 3);
        assert_eq!(store.pending_ops("wor").unwrap(), 1);
    }
}
