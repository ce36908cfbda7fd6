//! The DAV part of the mirror: collections and their items, written one transaction per batch.
//!
//! Keys: a collection is `account NUL href`; an item is `account NUL collection NUL href`, so
//! one prefix scan lists a collection's items.

use super::records::{CollectionRecord, DelegationsRecord, ItemRecord, SchedulingRecord};
use super::{Store, StoreError, keys};

/// The `sync_state` scope of an account's calendar delegations.
const DELEGATIONS: &str = "caldav.delegations";
/// The `sync_state` scope of what the CalDAV server says about scheduling (RFC 6638).
const SCHEDULING: &str = "caldav.scheduling";

/// The href and etag of a stored [`ItemRecord`]; serde skips its body and fields unallocated.
#[derive(serde::Deserialize)]
struct HrefEtag {
    href: String,
    #[serde(default)]
    etag: Option<String>,
}

pub(crate) fn item_key(account: &str, collection: &str, href: &str) -> Vec<u8> {
    let mut key = keys::folder_prefix(account, collection);
    key.extend_from_slice(href.as_bytes());
    key
}

impl Store {
    /// The account's collections whose `kind` is one of `kinds` (`calendar`, `tasks`, `addressbook`).
    pub fn dav_collections_of(
        &self,
        account: &str,
        kinds: &[&str],
    ) -> Result<Vec<CollectionRecord>, StoreError> {
        let rtxn = self.env().read_txn()?;
        let mut out = Vec::new();
        for entry in self
            .dav_collections
            .prefix_iter(&rtxn, &keys::account_prefix(account))?
        {
            let (_, record) = entry?;
            if kinds.contains(&record.kind.as_str()) {
                out.push(record);
            }
        }
        Ok(out)
    }

    /// One collection, if mirrored.
    pub fn dav_collection(&self, account: &str, href: &str) -> Result<Option<CollectionRecord>, StoreError> {
        let rtxn = self.env().read_txn()?;
        Ok(self.dav_collections.get(&rtxn, &keys::with_str(account, href))?)
    }

    /// Writes (creates or replaces) collection records in one transaction.
    pub fn put_dav_collections(&self, account: &str, records: &[CollectionRecord]) -> Result<(), StoreError> {
        let mut wtxn = self.env().write_txn()?;
        for r in records {
            self.dav_collections
                .put(&mut wtxn, &keys::with_str(account, &r.href), r)?;
        }
        wtxn.commit()?;
        Ok(())
    }

    /// Removes a collection and every item of it in one transaction.
    pub fn remove_dav_collection(&self, account: &str, href: &str) -> Result<(), StoreError> {
        let mut wtxn = self.env().write_txn()?;
        self.dav_collections
            .delete(&mut wtxn, &keys::with_str(account, href))?;
        let prefix = keys::folder_prefix(account, href);
        let doomed: Vec<Vec<u8>> = self
            .dav_items
            .prefix_iter(&wtxn, &prefix)?
            .map(|e| e.map(|(k, _)| k.to_vec()))
            .collect::<Result<_, _>>()?;
        for key in doomed {
            self.dav_items.delete(&mut wtxn, &key)?;
        }
        self.feed_forget(&mut wtxn, account, href)?;
        wtxn.commit()?;
        Ok(())
    }

    /// The calendar delegations last read from the server, if any were.
    pub fn dav_delegations(&self, account: &str) -> Result<Option<DelegationsRecord>, StoreError> {
        let rtxn = self.env().read_txn()?;
        let Some(value) = self
            .sync_state
            .get(&rtxn, &keys::with_str(account, DELEGATIONS))?
        else {
            return Ok(None);
        };
        // A record this agent cannot read is as good as none: the next poll writes it again.
        Ok(serde_json::from_value(value).ok())
    }

    /// Replaces the account's calendar delegations.
    pub fn put_dav_delegations(&self, account: &str, record: &DelegationsRecord) -> Result<(), StoreError> {
        let value = serde_json::to_value(record).map_err(|e| StoreError::Corrupt {
            key: DELEGATIONS.into(),
            reason: e.to_string(),
        })?;
        let mut wtxn = self.env().write_txn()?;
        self.sync_state
            .put(&mut wtxn, &keys::with_str(account, DELEGATIONS), &value)?;
        wtxn.commit()?;
        Ok(())
    }

    /// What the CalDAV server last said about scheduling, if it was asked.
    pub fn dav_scheduling(&self, account: &str) -> Result<Option<SchedulingRecord>, StoreError> {
        let rtxn = self.env().read_txn()?;
        let Some(value) = self.sync_state.get(&rtxn, &keys::with_str(account, SCHEDULING))? else {
            return Ok(None);
        };
        // Unreadable is as good as none: the CalDAV child writes it again when it connects.
        Ok(serde_json::from_value(value).ok())
    }

    /// Replaces what the CalDAV server says about scheduling.
    pub fn put_dav_scheduling(&self, account: &str, record: &SchedulingRecord) -> Result<(), StoreError> {
        let value = serde_json::to_value(record).map_err(|e| StoreError::Corrupt {
            key: SCHEDULING.into(),
            reason: e.to_string(),
        })?;
        let mut wtxn = self.env().write_txn()?;
        self.sync_state
            .put(&mut wtxn, &keys::with_str(account, SCHEDULING), &value)?;
        wtxn.commit()?;
        Ok(())
    }

    /// Every item of a collection, in href order.
    pub fn dav_items_of(&self, account: &str, collection: &str) -> Result<Vec<ItemRecord>, StoreError> {
        let rtxn = self.env().read_txn()?;
        let mut out = Vec::new();
        for entry in self
            .dav_items
            .prefix_iter(&rtxn, &keys::folder_prefix(account, collection))?
        {
            out.push(entry?.1);
        }
        Ok(out)
    }

    /// Up to `limit` items of a collection after the item `after` (none: from the first), in href
    /// order, and whether more follow: one page of `calendar.items` / `contacts.items`.
    pub fn dav_items_after(
        &self,
        account: &str,
        collection: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<ItemRecord>, bool), StoreError> {
        use std::ops::Bound;
        let rtxn = self.env().read_txn()?;
        let prefix = keys::folder_prefix(account, collection);
        let from_key = after.map(|h| item_key(account, collection, h));
        let from = match &from_key {
            Some(key) => Bound::Excluded(key.as_slice()),
            None => Bound::Included(prefix.as_slice()),
        };
        // The prefix ends in NUL: every key of the collection sorts before prefix-with-1.
        let mut end = prefix.clone();
        *end.last_mut().expect("prefix is not empty") = 1;
        let range = (from, Bound::Excluded(end.as_slice()));
        let mut out = Vec::new();
        for entry in self.dav_items.range(&rtxn, &range)? {
            if out.len() >= limit {
                return Ok((out, true));
            }
            out.push(entry?.1);
        }
        Ok((out, false))
    }

    /// `(href, etag)` of every item of a collection: what a sync round compares against. Only
    /// those two fields are decoded: every round calls this, and decoding whole records held
    /// every body at once (54 MB at 20,000 cards with photos, issue 22).
    pub fn dav_etags(
        &self,
        account: &str,
        collection: &str,
    ) -> Result<Vec<(String, Option<String>)>, StoreError> {
        let rtxn = self.env().read_txn()?;
        let prefix = keys::folder_prefix(account, collection);
        let mut out = Vec::new();
        let iter = self.dav_items.prefix_iter(&rtxn, &prefix)?;
        for entry in iter.remap_data_type::<heed::types::SerdeJson<HrefEtag>>() {
            let (_, item) = entry?;
            out.push((item.href, item.etag));
        }
        Ok(out)
    }

    /// Writes one batch of items and removes `remove`, in one transaction (DESIGN "Speed"), with
    /// their entries in the collection's change feed.
    pub fn apply_dav_items(
        &self,
        account: &str,
        collection: &str,
        put: &[ItemRecord],
        remove: &[String],
    ) -> Result<(), StoreError> {
        let mut wtxn = self.env().write_txn()?;
        // The feed's entries first, in the items' order: a feed started here counts the items
        // mirrored before it, not this batch twice. Its state is read and written once.
        if !put.is_empty() {
            let puts = put.iter().map(|item| (item.href.as_str(), false));
            self.feed_note_all(&mut wtxn, account, collection, puts)?;
        }
        for item in put {
            self.dav_items
                .put(&mut wtxn, &item_key(account, collection, &item.href), item)?;
        }
        let mut removed = Vec::new();
        for href in remove {
            if self
                .dav_items
                .delete(&mut wtxn, &item_key(account, collection, href))?
            {
                removed.push((href.as_str(), true));
            }
        }
        if !removed.is_empty() {
            self.feed_note_all(&mut wtxn, account, collection, removed)?;
        }
        wtxn.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_listed_per_collection_and_removed_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let col = |href: &str, kind: &str| CollectionRecord {
            href: href.into(),
            kind: kind.into(),
            ..CollectionRecord::default()
        };
        store
            .put_dav_collections(
                "a",
                &[
                    col("/a/cal/", "calendar"),
                    col("/a/cal2/", "tasks"),
                    col("/a/book/", "addressbook"),
                ],
            )
            .unwrap();
        let item = |c: &str, h: &str| ItemRecord {
            href: h.into(),
            collection: c.into(),
            etag: Some("e".into()),
            ..ItemRecord::default()
        };
        store
            .apply_dav_items(
                "a",
                "/a/cal/",
                &[
                    item("/a/cal/1.ics", "/a/cal/1.ics"),
                    item("/a/cal/", "/a/cal/2.ics"),
                ],
                &[],
            )
            .unwrap();
        store
            .apply_dav_items("a", "/a/cal2/", &[item("/a/cal2/", "/a/cal2/1.ics")], &[])
            .unwrap();
        assert_eq!(store.dav_items_of("a", "/a/cal/").unwrap().len(), 2);
        assert_eq!(
            store
                .dav_collections_of("a", &["calendar", "tasks"])
                .unwrap()
                .len(),
            2
        );
        store
            .apply_dav_items("a", "/a/cal/", &[], &["/a/cal/1.ics".into()])
            .unwrap();
        assert_eq!(store.dav_etags("a", "/a/cal/").unwrap().len(), 1);
        store.remove_dav_collection("a", "/a/cal/").unwrap();
        assert!(store.dav_items_of("a", "/a/cal/").unwrap().is_empty());
        assert_eq!(store.dav_items_of("a", "/a/cal2/").unwrap().len(), 1);
        assert!(store.dav_collection("a", "/a/cal/").unwrap().is_none());
    }

    #[test]
    fn items_are_paged_in_href_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let items: Vec<ItemRecord> = (0..7)
            .map(|i| ItemRecord {
                href: format!("/c/{i}.vcf"),
                collection: "/c/".into(),
                ..ItemRecord::default()
            })
            .collect();
        store.apply_dav_items("a", "/c/", &items, &[]).unwrap();
        store.apply_dav_items("a", "/c/x/", &items[..1], &[]).unwrap();
        let (first, more) = store.dav_items_after("a", "/c/", None, 3).unwrap();
        assert!(more);
        assert_eq!(first.last().unwrap().href, "/c/2.vcf");
        let (rest, more) = store.dav_items_after("a", "/c/", Some("/c/2.vcf"), 10).unwrap();
        assert!(!more);
        assert_eq!(rest.len(), 4, "the other collection is not listed");
    }
}
