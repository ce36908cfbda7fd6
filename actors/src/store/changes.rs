//! The per-collection change feed: every item put or removal in the mirror gets the collection's
//! next sequence number, in the same transaction as the item itself, and drops the item's older
//! entry; a removal leaves a tombstone. "What changed since cursor C" is then a range scan from
//! C, so it costs what changed, not the size of the collection.
//!
//! ```text
//!   dav_feeds         account NUL collection            → FeedState {epoch, next}
//!   dav_changes       account NUL collection NUL seq_be → flag (0 put, 1 removed) ++ href
//!   dav_change_index  account NUL collection NUL href   → seq_be (the item's one live entry)
//! ```
//!
//! A cursor is `epoch.seq` in hex, opaque to clients. The epoch is drawn when a collection's
//! feed starts (first write, or first read of a collection mirrored before feeds existed), so a
//! cursor from before the collection was removed and created again, or a corrupt one, is
//! answered with `reset`: the client starts over from the beginning.

use heed::RwTxn;
use serde::{Deserialize, Serialize};
use std::ops::Bound;

use super::records::ItemRecord;
use super::{Store, StoreError, keys};

const PUT: u8 = 0;
const REMOVED: u8 = 1;

/// Where a collection's feed stands.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct FeedState {
    /// Drawn when the feed starts; a cursor of another epoch is from an earlier collection.
    pub epoch: u64,
    /// The sequence number the next change gets (the first is 1).
    pub next: u64,
}

/// One entry of a page: the item as the mirror holds it now, or `None` when it was removed.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedEntry {
    pub seq: u64,
    pub href: String,
    pub item: Option<ItemRecord>,
}

/// One page of `changes_since`.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedPage {
    /// The cursor was from another epoch or unreadable: this page starts from the beginning
    /// and the client drops what it had.
    pub reset: bool,
    pub entries: Vec<FeedEntry>,
    /// More entries follow the last one of this page.
    pub more: bool,
    epoch: u64,
    /// The sequence the page started after.
    after: u64,
    /// The newest sequence number of the feed when the page was read.
    newest: u64,
}

impl FeedPage {
    /// The cursor that follows the first `n` entries of this page: a caller that answers with
    /// fewer entries than it read (a byte limit) hands this one out.
    pub fn cursor_after(&self, n: usize) -> String {
        let seq = match n {
            0 => self.after,
            n if n >= self.entries.len() && !self.more => self.newest,
            n => self.entries[n.min(self.entries.len()) - 1].seq,
        };
        cursor(self.epoch, seq)
    }

    /// The cursor after the whole page.
    pub fn cursor(&self) -> String {
        self.cursor_after(self.entries.len())
    }
}

fn cursor(epoch: u64, seq: u64) -> String {
    format!("{epoch:016x}.{seq:x}")
}

/// `(epoch, seq)` of a cursor, if it is one.
fn parse_cursor(text: &str) -> Option<(u64, u64)> {
    let (epoch, seq) = text.split_once('.')?;
    Some((
        u64::from_str_radix(epoch, 16).ok()?,
        u64::from_str_radix(seq, 16).ok()?,
    ))
}

fn change_key(account: &str, collection: &str, seq: u64) -> Vec<u8> {
    let mut key = keys::folder_prefix(account, collection);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

fn new_epoch() -> u64 {
    use rand::Rng;
    // Never 0, so that no cursor made up of zeros matches a feed.
    rand::rng().random::<u64>() | 1
}

impl Store {
    /// Records that `href` was put (`removed` false) or removed in `collection`, inside the
    /// caller's transaction, dropping its previous entry. Every mirror write of an item calls this.
    pub(crate) fn feed_note(
        &self,
        wtxn: &mut RwTxn<'_>,
        account: &str,
        collection: &str,
        href: &str,
        removed: bool,
    ) -> Result<(), StoreError> {
        let mut state = self.feed_state_in(wtxn, account, collection)?;
        self.feed_append(wtxn, account, collection, href, removed, &mut state)?;
        self.dav_feeds
            .put(wtxn, &keys::with_str(account, collection), &state)?;
        Ok(())
    }

    /// [`Store::feed_note`] for several items of one collection, reading and writing the feed's
    /// state once (a batch of a first pull: 500 items, issue 22).
    pub(crate) fn feed_note_all<'h>(
        &self,
        wtxn: &mut RwTxn<'_>,
        account: &str,
        collection: &str,
        changes: impl IntoIterator<Item = (&'h str, bool)>,
    ) -> Result<(), StoreError> {
        let mut state = self.feed_state_in(wtxn, account, collection)?;
        let before = state;
        for (href, removed) in changes {
            self.feed_append(wtxn, account, collection, href, removed, &mut state)?;
        }
        if state != before {
            self.dav_feeds
                .put(wtxn, &keys::with_str(account, collection), &state)?;
        }
        Ok(())
    }

    fn feed_append(
        &self,
        wtxn: &mut RwTxn<'_>,
        account: &str,
        collection: &str,
        href: &str,
        removed: bool,
        state: &mut FeedState,
    ) -> Result<(), StoreError> {
        let index_key = super::dav::item_key(account, collection, href);
        if let Some(old) = self.dav_change_index.get(wtxn, &index_key)? {
            let old = <[u8; 8]>::try_from(old).map(u64::from_be_bytes).unwrap_or(0);
            self.dav_changes
                .delete(wtxn, &change_key(account, collection, old))?;
        }
        let seq = state.next;
        state.next += 1;
        let mut value = Vec::with_capacity(href.len() + 1);
        value.push(if removed { REMOVED } else { PUT });
        value.extend_from_slice(href.as_bytes());
        self.dav_changes
            .put(wtxn, &change_key(account, collection, seq), &value)?;
        self.dav_change_index.put(wtxn, &index_key, &seq.to_be_bytes())?;
        Ok(())
    }

    /// The collection's feed state, starting the feed if it has none: a collection mirrored
    /// before feeds existed gets one entry per item it holds.
    fn feed_state_in(
        &self,
        wtxn: &mut RwTxn<'_>,
        account: &str,
        collection: &str,
    ) -> Result<FeedState, StoreError> {
        let key = keys::with_str(account, collection);
        if let Some(state) = self.dav_feeds.get(wtxn, &key)? {
            return Ok(state);
        }
        let mut state = FeedState {
            epoch: new_epoch(),
            next: 1,
        };
        let hrefs: Vec<String> = self
            .dav_items
            .prefix_iter(wtxn, &keys::folder_prefix(account, collection))?
            .map(|e| e.map(|(_, item)| item.href))
            .collect::<Result<_, _>>()?;
        for href in hrefs {
            self.feed_append(wtxn, account, collection, &href, false, &mut state)?;
        }
        self.dav_feeds.put(wtxn, &key, &state)?;
        Ok(state)
    }

    /// Forgets a collection's feed (the collection is gone): a later collection of the same
    /// href starts a new epoch, and old cursors reset.
    pub(crate) fn feed_forget(
        &self,
        wtxn: &mut RwTxn<'_>,
        account: &str,
        collection: &str,
    ) -> Result<(), StoreError> {
        self.dav_feeds
            .delete(wtxn, &keys::with_str(account, collection))?;
        let prefix = keys::folder_prefix(account, collection);
        for db in [&self.dav_changes, &self.dav_change_index] {
            let doomed: Vec<Vec<u8>> = db
                .prefix_iter(wtxn, &prefix)?
                .map(|e| e.map(|(k, _)| k.to_vec()))
                .collect::<Result<_, _>>()?;
            for key in doomed {
                db.delete(wtxn, &key)?;
            }
        }
        Ok(())
    }

    /// The newest cursor of a collection's feed (what `calendar.changed` carries).
    pub fn dav_feed_cursor(&self, account: &str, collection: &str) -> Result<Option<String>, StoreError> {
        let rtxn = self.env().read_txn()?;
        Ok(self
            .dav_feeds
            .get(&rtxn, &keys::with_str(account, collection))?
            .map(|s| cursor(s.epoch, s.next - 1)))
    }

    /// Up to `limit` changes of `collection` after `since` (`None`: from the beginning), oldest
    /// first, each with the item as the mirror holds it now. Costs O(changes returned).
    pub fn changes_since(
        &self,
        account: &str,
        collection: &str,
        since: Option<&str>,
        limit: usize,
    ) -> Result<FeedPage, StoreError> {
        let state_key = keys::with_str(account, collection);
        let state = {
            let rtxn = self.env().read_txn()?;
            self.dav_feeds.get(&rtxn, &state_key)?
        };
        let state = match state {
            Some(state) => state,
            None => {
                let mut wtxn = self.env().write_txn()?;
                let state = self.feed_state_in(&mut wtxn, account, collection)?;
                wtxn.commit()?;
                state
            }
        };
        let (reset, after) = match since.map(parse_cursor) {
            None => (false, 0),
            Some(Some((epoch, seq))) if epoch == state.epoch && seq < state.next => (false, seq),
            Some(_) => (true, 0),
        };
        let rtxn = self.env().read_txn()?;
        let from = change_key(account, collection, after.saturating_add(1));
        let to = change_key(account, collection, u64::MAX);
        let range = (Bound::Included(from.as_slice()), Bound::Included(to.as_slice()));
        let mut entries = Vec::new();
        let mut more = false;
        for entry in self.dav_changes.range(&rtxn, &range)? {
            let (key, value) = entry?;
            if entries.len() >= limit {
                more = true;
                break;
            }
            let seq = key[key.len() - 8..]
                .try_into()
                .map(u64::from_be_bytes)
                .unwrap_or(0);
            let Some((&flag, href)) = value.split_first() else {
                continue;
            };
            let href = String::from_utf8_lossy(href).into_owned();
            let item = if flag == REMOVED {
                None
            } else {
                self.dav_items
                    .get(&rtxn, &super::dav::item_key(account, collection, &href))?
            };
            entries.push(FeedEntry { seq, href, item });
        }
        Ok(FeedPage {
            reset,
            entries,
            more,
            epoch: state.epoch,
            after,
            newest: state.next - 1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::records::CollectionRecord;

    fn item(href: &str, etag: &str) -> ItemRecord {
        ItemRecord {
            href: href.into(),
            collection: "/c/".into(),
            etag: Some(etag.into()),
            body: format!("body of {href}"),
            ..ItemRecord::default()
        }
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .put_dav_collections(
                "a",
                &[CollectionRecord {
                    href: "/c/".into(),
                    kind: "calendar".into(),
                    ..CollectionRecord::default()
                }],
            )
            .unwrap();
        (dir, store)
    }

    fn hrefs(page: &FeedPage) -> Vec<(String, bool)> {
        page.entries
            .iter()
            .map(|e| (e.href.clone(), e.item.is_some()))
            .collect()
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_no_cursor() {
        assert_eq!(parse_cursor(&cursor(0xabc, 17)), Some((0xabc, 17)));
        assert_eq!(parse_cursor("nonsense"), None);
        assert_eq!(parse_cursor("12.zz"), None);
    }

    #[test]
    fn a_new_feed_lists_everything_then_only_what_changed() {
        let (_d, store) = store();
        let put: Vec<_> = (0..5).map(|i| item(&format!("/c/{i}.ics"), "e1")).collect();
        store.apply_dav_items("a", "/c/", &put, &[]).unwrap();
        let page = store.changes_since("a", "/c/", None, 100).unwrap();
        assert_eq!(page.entries.len(), 5);
        assert!(!page.more && !page.reset);
        let c1 = page.cursor();
        // Nothing changed: an empty page, and the same cursor again.
        let empty = store.changes_since("a", "/c/", Some(&c1), 100).unwrap();
        assert!(empty.entries.is_empty() && !empty.more);
        assert_eq!(empty.cursor(), c1);
        // One changed twice, one removed: two entries, the removal a tombstone.
        store
            .apply_dav_items("a", "/c/", &[item("/c/1.ics", "e2")], &[])
            .unwrap();
        store
            .apply_dav_items("a", "/c/", &[item("/c/1.ics", "e3")], &["/c/3.ics".into()])
            .unwrap();
        let page = store.changes_since("a", "/c/", Some(&c1), 100).unwrap();
        assert_eq!(
            hrefs(&page),
            vec![("/c/1.ics".into(), true), ("/c/3.ics".into(), false)]
        );
        assert_eq!(page.entries[0].item.as_ref().unwrap().etag.as_deref(), Some("e3"));
        // From the beginning, every item appears once and the tombstone stays.
        let all = store.changes_since("a", "/c/", None, 100).unwrap();
        assert_eq!(all.entries.len(), 5);
        assert_eq!(all.entries.iter().filter(|e| e.item.is_none()).count(), 1);
        // A removed item put again loses its tombstone.
        store
            .apply_dav_items("a", "/c/", &[item("/c/3.ics", "e4")], &[])
            .unwrap();
        let all = store.changes_since("a", "/c/", None, 100).unwrap();
        assert_eq!(all.entries.len(), 5);
        assert!(all.entries.iter().all(|e| e.item.is_some()));
    }

    #[test]
    fn pages_follow_their_cursors_without_gaps_or_repeats() {
        let (_d, store) = store();
        let put: Vec<_> = (0..25).map(|i| item(&format!("/c/{i:02}.ics"), "e")).collect();
        store.apply_dav_items("a", "/c/", &put, &[]).unwrap();
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = store.changes_since("a", "/c/", cursor.as_deref(), 10).unwrap();
            seen.extend(page.entries.iter().map(|e| e.href.clone()));
            cursor = Some(page.cursor());
            if !page.more {
                break;
            }
        }
        assert_eq!(seen.len(), 25);
        seen.dedup();
        assert_eq!(seen.len(), 25);
        // A caller that answers with only 3 of a page continues right after them.
        let page = store.changes_since("a", "/c/", None, 10).unwrap();
        let next = store
            .changes_since("a", "/c/", Some(&page.cursor_after(3)), 10)
            .unwrap();
        assert_eq!(next.entries[0].href, page.entries[3].href);
    }

    #[test]
    fn a_recreated_collection_or_a_corrupt_cursor_resets() {
        let (_d, store) = store();
        store
            .apply_dav_items("a", "/c/", &[item("/c/1.ics", "e")], &[])
            .unwrap();
        let old = store.changes_since("a", "/c/", None, 10).unwrap().cursor();
        assert_eq!(store.dav_feed_cursor("a", "/c/").unwrap(), Some(old.clone()));
        store.remove_dav_collection("a", "/c/").unwrap();
        assert_eq!(store.dav_feed_cursor("a", "/c/").unwrap(), None);
        store
            .apply_dav_items("a", "/c/", &[item("/c/2.ics", "e")], &[])
            .unwrap();
        let page = store.changes_since("a", "/c/", Some(&old), 10).unwrap();
        assert!(page.reset);
        assert_eq!(hrefs(&page), vec![("/c/2.ics".into(), true)]);
        let page = store.changes_since("a", "/c/", Some("garbage"), 10).unwrap();
        assert!(page.reset && page.entries.len() == 1);
        // A cursor from the future of this epoch is as good as corrupt.
        let (epoch, _) = parse_cursor(&page.cursor()).unwrap();
        let future = cursor(epoch, 999);
        assert!(store.changes_since("a", "/c/", Some(&future), 10).unwrap().reset);
    }

    #[test]
    fn journaled_writes_and_replay_answers_are_changes_too() {
        use crate::journal::DavOp;
        use crate::journal::dav_op::{Delete, Put};
        let (_d, store) = store();
        store
            .apply_dav_items("a", "/c/", &[item("/c/1.ics", "e")], &[])
            .unwrap();
        let c = store.changes_since("a", "/c/", None, 10).unwrap().cursor();
        let put = DavOp::put(
            true,
            Put {
                collection: "/c/".into(),
                href: "/c/2.ics".into(),
                body: "x".into(),
                if_match: None,
                schedule_tag: None,
            },
        );
        store.journal_dav("a", &put, Some(&item("/c/2.ics", ""))).unwrap();
        let delete = DavOp::delete(
            true,
            Delete {
                collection: "/c/".into(),
                href: "/c/1.ics".into(),
                if_match: None,
            },
        );
        store.journal_dav("a", &delete, None).unwrap();
        store
            .set_dav_item("a", "/c/", "/c/2.ics", Some(&item("/c/2.ics", "new")))
            .unwrap();
        let page = store.changes_since("a", "/c/", Some(&c), 10).unwrap();
        assert_eq!(
            hrefs(&page),
            vec![("/c/1.ics".into(), false), ("/c/2.ics".into(), true)]
        );
    }

    #[test]
    fn the_cost_follows_the_changes_not_the_collection() {
        let (_d, store) = store();
        let put: Vec<_> = (0..20_000)
            .map(|i| item(&format!("/c/{i:05}.ics"), "e"))
            .collect();
        store.apply_dav_items("a", "/c/", &put, &[]).unwrap();
        let c = store.dav_feed_cursor("a", "/c/").unwrap().unwrap();
        let changed: Vec<_> = (0..10)
            .map(|i| item(&format!("/c/{:05}.ics", i * 997), "f"))
            .collect();
        store.apply_dav_items("a", "/c/", &changed, &[]).unwrap();
        let started = std::time::Instant::now();
        let page = store.changes_since("a", "/c/", Some(&c), 200).unwrap();
        let took = started.elapsed();
        assert_eq!(page.entries.len(), 10);
        // A full scan of 20,000 JSON records takes tens of milliseconds; ten lookups do not.
        assert!(took < std::time::Duration::from_millis(20), "{took:?}");
    }
}
