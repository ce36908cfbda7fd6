//! The local mirror, journal, conflicts and sync state in one LMDB environment (heed).
//!
//! One writer, many readers; writes are batched per page of results (DESIGN.md, "Speed").
//! Keys are built by [`keys`] so that every record of one account shares a prefix.
//!
//! | table             | key                              | value                  | filled by          |
//! |-------------------|----------------------------------|------------------------|--------------------|
//! | `meta`            | name                             | bytes                  | this module        |
//! | `mail_folders`    | account, folder path             | [`records::FolderRecord`]  | IMAP sync      |
//! | `mail_messages`   | account, folder, uid (BE)        | [`records::MessageRecord`] | IMAP sync      |
//! | `mail_bodies`     | account, folder, uid (BE)        | raw RFC 5322 bytes     | `mail.fetch` cache |
//! | `dav_collections` | account, collection href         | [`records::CollectionRecord`] | DAV sync    |
//! | `dav_items`       | account, collection, item href   | [`records::ItemRecord`]    | DAV sync       |
//! | `journal`         | account, op id (BE u64)          | [`records::JournalEntry`]  | writes, replay |
//! | `conflicts`       | account, conflict id (BE u64)    | [`records::ConflictRecord`] | replay        |
//! | `sync_state`      | account, scope                   | JSON                   | sync actors        |
//! |   (`mail.unseen`, `mail.count`) | account, scope, folder | a folder's kept counts | [`counts`]     |
//! | `dav_feeds`       | account, collection              | [`changes::FeedState`] | every item write   |
//! | `dav_changes`     | account, collection, seq (BE)    | flag, item href        | every item write   |
//! | `dav_change_index`| account, collection, item href   | seq (BE)               | every item write   |

pub mod accounts;
pub mod changes;
pub mod conflicts;
pub mod counts;
pub mod dav;
pub mod journal;
pub mod keys;
pub mod mail;
pub mod records;

use std::path::{Path, PathBuf};

use heed::types::{Bytes, SerdeJson, Str};
use heed::{CommitOrAbort, Database, Env, EnvOpenOptions};

use records::{CollectionRecord, ConflictRecord, FolderRecord, ItemRecord, JournalEntry, MessageRecord};

/// Bump when a record's layout changes incompatibly; an older agent refuses a newer store.
pub const SCHEMA_VERSION: u32 = 1;

/// LMDB maps the file sparsely; this is an upper bound, not an allocation.
const MAP_SIZE: usize = 16 << 30;

/// What the caller does next: fix the data dir (`Open`, `SchemaMismatch`) or report a bug (`Db`).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the store in {path}: {source}")]
    Open { path: PathBuf, source: heed::Error },
    #[error(
        "the store in {path} has schema version {found}, this agent understands {expected}; \
         move the directory aside to start a fresh mirror (pending operations are kept there)"
    )]
    SchemaMismatch {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error("store: {0}")]
    Db(#[from] heed::Error),
    #[error("store record {key} is corrupt: {reason}")]
    Corrupt { key: String, reason: String },
}

/// The typed tables of one environment.
#[derive(Clone)]
pub struct Store {
    env: Env,
    path: PathBuf,
    pub meta: Database<'static, Str, Bytes>,
    pub mail_folders: Database<'static, Bytes, SerdeJson<FolderRecord>>,
    pub mail_messages: Database<'static, Bytes, SerdeJson<MessageRecord>>,
    pub mail_bodies: Database<'static, Bytes, Bytes>,
    pub dav_collections: Database<'static, Bytes, SerdeJson<CollectionRecord>>,
    pub dav_items: Database<'static, Bytes, SerdeJson<ItemRecord>>,
    pub journal: Database<'static, Bytes, SerdeJson<JournalEntry>>,
    pub conflicts: Database<'static, Bytes, SerdeJson<ConflictRecord>>,
    pub sync_state: Database<'static, Bytes, SerdeJson<serde_json::Value>>,
    pub dav_feeds: Database<'static, Bytes, SerdeJson<changes::FeedState>>,
    pub dav_changes: Database<'static, Bytes, Bytes>,
    pub dav_change_index: Database<'static, Bytes, Bytes>,
}

impl Store {
    /// Opens (creating if needed) the store in `dir/store`, checking the schema version.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Store::open_sized(dir, MAP_SIZE)
    }

    /// `open` with a chosen map size: a full store behaves like a full disk (writes fail with
    /// an error, nothing half-written), which the tests use to prove it.
    pub fn open_sized(dir: &Path, map_size: usize) -> Result<Store, StoreError> {
        let path = dir.join("store");
        let open_err = |source| StoreError::Open {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(&path).map_err(|e| open_err(heed::Error::Io(e)))?;
        let env = open_env(&path, map_size).map_err(open_err)?;
        let wtxn = env.write_txn()?;
        let opened = env.create_databases_and_commit(wtxn, |dbo, wtxn| -> heed::Result<_> {
            let meta: Database<'_, Str, Bytes> = dbo.create_database(wtxn, Some("meta"))?;
            match meta.get(wtxn, "schema_version")? {
                None => meta.put(wtxn, "schema_version", &SCHEMA_VERSION.to_be_bytes())?,
                Some(bytes) => {
                    let found = <[u8; 4]>::try_from(bytes).map(u32::from_be_bytes).unwrap_or(0);
                    if found != SCHEMA_VERSION {
                        return Ok(CommitOrAbort::Abort(found));
                    }
                }
            }
            Ok(CommitOrAbort::Commit((
                meta,
                dbo.create_database(wtxn, Some("mail_folders"))?,
                dbo.create_database(wtxn, Some("mail_messages"))?,
                dbo.create_database(wtxn, Some("mail_bodies"))?,
                dbo.create_database(wtxn, Some("dav_collections"))?,
                dbo.create_database(wtxn, Some("dav_items"))?,
                dbo.create_database(wtxn, Some("journal"))?,
                dbo.create_database(wtxn, Some("conflicts"))?,
                dbo.create_database(wtxn, Some("sync_state"))?,
                dbo.create_database(wtxn, Some("dav_feeds"))?,
                dbo.create_database(wtxn, Some("dav_changes"))?,
                dbo.create_database(wtxn, Some("dav_change_index"))?,
            )))
        })?;
        let (
            meta,
            mail_folders,
            mail_messages,
            mail_bodies,
            dav_collections,
            dav_items,
            journal,
            conflicts,
            sync_state,
            dav_feeds,
            dav_changes,
            dav_change_index,
        ) = match opened {
            CommitOrAbort::Commit(dbs) => dbs,
            CommitOrAbort::Abort(found) => {
                return Err(StoreError::SchemaMismatch {
                    path,
                    found,
                    expected: SCHEMA_VERSION,
                });
            }
        };
        Ok(Store {
            env,
            path,
            meta,
            mail_folders,
            mail_messages,
            mail_bodies,
            dav_collections,
            dav_items,
            journal,
            conflicts,
            sync_state,
            dav_feeds,
            dav_changes,
            dav_change_index,
        })
    }

    pub fn env(&self) -> &Env {
        &self.env
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Operations of `account` still waiting in the journal.
    pub fn pending_ops(&self, account: &str) -> Result<u64, StoreError> {
        let rtxn = self.env.read_txn()?;
        let prefix = keys::account_prefix(account);
        let count = self.journal.prefix_iter(&rtxn, &prefix)?.count();
        Ok(count as u64)
    }

    /// Unresolved conflicts of `account`.
    pub fn conflict_count(&self, account: &str) -> Result<u64, StoreError> {
        let rtxn = self.env.read_txn()?;
        let prefix = keys::account_prefix(account);
        let count = self.conflicts.prefix_iter(&rtxn, &prefix)?.count();
        Ok(count as u64)
    }
}

#[allow(unsafe_code)]
fn open_env(path: &Path, map_size: usize) -> heed::Result<Env> {
    let mut options = EnvOpenOptions::new();
    options.map_size(map_size).max_dbs(16);
    // SAFETY: heed requires that the same file is not opened twice in one process and that no
    // one truncates it while mapped. The agent opens its data dir once (the IPC socket's
    // single-agent check runs first), and the directory is private to the user.
    unsafe { options.open(path) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Closes the environment so the same path can be opened again in this process.
    fn close(store: Store) {
        let env = store.env().clone();
        drop(store);
        env.prepare_for_closing().wait();
    }

    #[test]
    fn creates_tables_and_counts_per_account() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut wtxn = store.env().write_txn().unwrap();
        for (account, id) in [("work", 1u64), ("work", 2), ("home", 1)] {
            let entry = JournalEntry::new(id, account, serde_json::json!({"kind": "test"}));
            store
                .journal
                .put(&mut wtxn, &keys::with_u64(account, id), &entry)
                .unwrap();
        }
        wtxn.commit().unwrap();
        assert_eq!(store.pending_ops("work").unwrap(), 2);
        assert_eq!(store.pending_ops("home").unwrap(), 1);
        // "wor" must not count "work"'s entries: the account prefix is terminated.
        assert_eq!(store.pending_ops("wor").unwrap(), 0);
        assert_eq!(store.conflict_count("work").unwrap(), 0);
    }

    #[test]
    fn reopening_keeps_data() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let mut wtxn = store.env().write_txn().unwrap();
            let entry = JournalEntry::new(7, "a", serde_json::json!({}));
            store
                .journal
                .put(&mut wtxn, &keys::with_u64("a", 7), &entry)
                .unwrap();
            wtxn.commit().unwrap();
            close(store);
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.pending_ops("a").unwrap(), 1);
    }

    #[test]
    fn schema_mismatch_is_refused_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let mut wtxn = store.env().write_txn().unwrap();
            store
                .meta
                .put(&mut wtxn, "schema_version", &99u32.to_be_bytes())
                .unwrap();
            wtxn.commit().unwrap();
            close(store);
        }
        let err = Store::open(dir.path()).err().expect("mismatch must be refused");
        let text = err.to_string();
        assert!(matches!(
            err,
            StoreError::SchemaMismatch {
                found: 99,
                expected: 1,
                ..
            }
        ));
        assert!(text.contains(&dir.path().display().to_string()), "{text}");
    }
}
