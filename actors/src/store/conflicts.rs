//! DAV writes in the journal, and the conflicts table: both sides of a conflict are kept until the
//! user resolves it (invariant 2).

use crate::journal::DavOp;
use crate::store::dav::item_key;
use crate::store::records::{ConflictRecord, ItemRecord, JournalEntry};
use crate::store::{Store, StoreError, keys};

impl Store {
    /// Journals a DAV write and applies it to the mirror in one durable transaction: a put stores
    /// `item` (its etag unknown until the server answers), a delete removes the item.
    pub fn journal_dav(
        &self,
        account: &str,
        op: &DavOp,
        item: Option<&ItemRecord>,
    ) -> Result<u64, StoreError> {
        let mut wtxn = self.env().write_txn()?;
        let id = self.journal_dav_in(&mut wtxn, account, op, item)?;
        wtxn.commit()?;
        Ok(id)
    }

    /// The journal entry and its mirror change, inside the caller's transaction.
    pub(crate) fn journal_dav_in(
        &self,
        wtxn: &mut heed::RwTxn<'_>,
        account: &str,
        op: &DavOp,
        item: Option<&ItemRecord>,
    ) -> Result<u64, StoreError> {
        let id = self.next_journal_id(wtxn)?;
        let key = item_key(account, op.collection(), op.href());
        match (op, item) {
            (DavOp::CalendarPut(_) | DavOp::ContactsPut(_), Some(item)) => {
                self.dav_items.put(wtxn, &key, item)?;
                self.feed_note(wtxn, account, op.collection(), op.href(), false)?;
            }
            (DavOp::CalendarDelete(_) | DavOp::ContactsDelete(_), _) => {
                // Only an item the mirror had leaves a tombstone.
                let existed = self.dav_items.delete(wtxn, &key)?;
                if existed {
                    self.feed_note(wtxn, account, op.collection(), op.href(), true)?;
                }
            }
            _ => {}
        }
        let value = serde_json::to_value(op).map_err(|e| StoreError::Corrupt {
            key: format!("journal {id}"),
            reason: e.to_string(),
        })?;
        self.journal.put(
            wtxn,
            &keys::with_u64(account, id),
            &JournalEntry::new(id, account, value),
        )?;
        Ok(id)
    }

    /// One mirrored DAV item.
    pub fn dav_item(
        &self,
        account: &str,
        collection: &str,
        href: &str,
    ) -> Result<Option<ItemRecord>, StoreError> {
        let rtxn = self.env().read_txn()?;
        Ok(self.dav_items.get(&rtxn, &item_key(account, collection, href))?)
    }

    /// Writes or removes one item (after the server answered a replayed write).
    pub fn set_dav_item(
        &self,
        account: &str,
        collection: &str,
        href: &str,
        item: Option<&ItemRecord>,
    ) -> Result<(), StoreError> {
        let mut wtxn = self.env().write_txn()?;
        let key = item_key(account, collection, href);
        match item {
            Some(item) => {
                self.dav_items.put(&mut wtxn, &key, item)?;
                self.feed_note(&mut wtxn, account, collection, href, false)?;
            }
            None => {
                if self.dav_items.delete(&mut wtxn, &key)? {
                    self.feed_note(&mut wtxn, account, collection, href, true)?;
                }
            }
        }
        wtxn.commit()?;
        Ok(())
    }

    /// Records a conflict and, in the same transaction, retires the journal entry that met it:
    /// its content now lives in the conflict record, so nothing is lost.
    pub fn record_conflict(
        &self,
        account: &str,
        journal_id: u64,
        mut conflict: ConflictRecord,
    ) -> Result<u64, StoreError> {
        let mut wtxn = self.env().write_txn()?;
        let id = self.next_journal_id(&mut wtxn)?;
        conflict.id = id;
        self.conflicts
            .put(&mut wtxn, &keys::with_u64(account, id), &conflict)?;
        self.journal
            .delete(&mut wtxn, &keys::with_u64(account, journal_id))?;
        wtxn.commit()?;
        Ok(id)
    }

    /// Every unresolved conflict, oldest first.
    pub fn conflicts_all(&self) -> Result<Vec<ConflictRecord>, StoreError> {
        let rtxn = self.env().read_txn()?;
        let mut out = Vec::new();
        for item in self.conflicts.iter(&rtxn)? {
            out.push(item?.1);
        }
        out.sort_by_key(|c| c.id);
        Ok(out)
    }

    pub fn conflict(&self, id: u64) -> Result<Option<ConflictRecord>, StoreError> {
        Ok(self.conflicts_all()?.into_iter().find(|c| c.id == id))
    }

    /// Resolves a conflict: journals the writes that carry out the user's choice and drops the
    /// record, in one transaction.
    pub fn resolve_conflict(
        &self,
        conflict: &ConflictRecord,
        writes: &[(DavOp, Option<ItemRecord>)],
    ) -> Result<Vec<u64>, StoreError> {
        let mut wtxn = self.env().write_txn()?;
        let account = conflict.account.as_str();
        let mut ids = Vec::new();
        for (op, item) in writes {
            ids.push(self.journal_dav_in(&mut wtxn, account, op, item.as_ref())?);
        }
        self.conflicts
            .delete(&mut wtxn, &keys::with_u64(account, conflict.id))?;
        wtxn.commit()?;
        Ok(ids)
    }
}
