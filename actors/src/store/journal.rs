//! The journal table: appending an operation together with its effect on the mirror in one
//! durable transaction (invariants 1 and 6), and the replay bookkeeping.

use heed::RwTxn;

use crate::journal::MailOp;
use crate::store::counts::Moved;
use crate::store::records::{FolderRecord, JournalEntry};
use crate::store::{Store, StoreError, keys};

/// Set in an entry's operation by its first attempt: from then on the server may have it.
pub const TRIED: &str = "tried";

/// Whether an earlier attempt of `entry` may have reached the server (a retry must check first).
pub fn tried_before(entry: &JournalEntry) -> bool {
    entry.attempts > 0 || entry.op.get(TRIED) == Some(&serde_json::Value::Bool(true))
}

/// Ids are global and never reused, so an `op.done` names exactly one write.
const NEXT_ID: &str = "journal_next_id";

/// A journal record whose bytes no longer decode, as an entry the user can see in `ops`.
fn damaged(key: &[u8], bytes: &[u8], error: serde_json::Error) -> JournalEntry {
    let split = key.iter().position(|b| *b == 0).unwrap_or(key.len());
    let account = String::from_utf8_lossy(&key[..split]).into_owned();
    let id = key
        .get(split + 1..)
        .and_then(|rest| <[u8; 8]>::try_from(rest).ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0);
    JournalEntry {
        id,
        account,
        created: String::new(),
        attempts: 0,
        last_error: Some(format!("damaged journal record: {error}")),
        op: serde_json::json!({"kind": "damaged", "bytes": String::from_utf8_lossy(bytes)}),
    }
}

impl Store {
    /// Journals `op` for `account` and applies it to the mirror, atomically and durably (LMDB
    /// syncs on commit). Fills in the folder's UIDVALIDITY and the messages' Message-IDs so that
    /// replay can remap and deduplicate. Returns the operation id.
    pub fn journal_mail(&self, account: &str, op: MailOp) -> Result<u64, StoreError> {
        let mut wtxn = self.env().write_txn()?;
        let id = self.next_journal_id(&mut wtxn)?;
        let op = self.enrich(&wtxn, account, op)?;
        self.apply_to_mirror(&mut wtxn, account, &op)?;
        let value = serde_json::to_value(&op).map_err(|e| StoreError::Corrupt {
            key: format!("journal {id}"),
            reason: e.to_string(),
        })?;
        let entry = JournalEntry::new(id, account, value);
        self.journal
            .put(&mut wtxn, &keys::with_u64(account, id), &entry)?;
        wtxn.commit()?;
        Ok(id)
    }

    /// Pending entries of `account` (or all accounts), oldest first.
    pub fn journal_pending(&self, account: Option<&str>) -> Result<Vec<JournalEntry>, StoreError> {
        let rtxn = self.env().read_txn()?;
        // Read raw so that one damaged record cannot hide the others: it is listed with its
        // error and a kind no service replays, never dropped (invariant 2).
        let raw = self.journal.remap_data_type::<heed::types::Bytes>();
        let mut out = Vec::new();
        let mut take = |key: &[u8], bytes: &[u8]| {
            out.push(
                serde_json::from_slice::<JournalEntry>(bytes).unwrap_or_else(|e| damaged(key, bytes, e)),
            );
        };
        match account {
            Some(account) => {
                for item in raw.prefix_iter(&rtxn, &keys::account_prefix(account))? {
                    let (key, bytes) = item?;
                    take(key, bytes);
                }
            }
            // LMDB keys cannot be empty: all accounts is a plain scan.
            None => {
                for item in raw.iter(&rtxn)? {
                    let (key, bytes) = item?;
                    take(key, bytes);
                }
            }
        }
        out.sort_by_key(|e| e.id);
        Ok(out)
    }

    /// Counts one more attempt before the request is sent (invariant 6) and returns the entry.
    pub fn journal_attempt(&self, account: &str, id: u64) -> Result<Option<JournalEntry>, StoreError> {
        let mut wtxn = self.env().write_txn()?;
        let key = keys::with_u64(account, id);
        let Some(mut entry) = self.journal.get(&wtxn, &key)? else {
            return Ok(None);
        };
        entry.attempts += 1;
        // Attempts given back after a transient failure (`journal_transient`) must not hide
        // that a request may have reached the server: this mark stays.
        if let Some(map) = entry.op.as_object_mut() {
            map.insert(TRIED.into(), serde_json::Value::Bool(true));
        }
        self.journal.put(&mut wtxn, &key, &entry)?;
        wtxn.commit()?;
        Ok(Some(entry))
    }

    /// Records why the last attempt failed; the entry stays for the next try or for the user.
    pub fn journal_failed(&self, account: &str, id: u64, error: &str) -> Result<(), StoreError> {
        let mut wtxn = self.env().write_txn()?;
        let key = keys::with_u64(account, id);
        if let Some(mut entry) = self.journal.get(&wtxn, &key)? {
            entry.last_error = Some(error.to_owned());
            self.journal.put(&mut wtxn, &key, &entry)?;
        }
        wtxn.commit()?;
        Ok(())
    }

    /// The attempt met a transient failure (timeout, dropped connection, 5xx, 408/429): it is
    /// given back, so that outages never use up the cap; the error stays visible in `ops`.
    pub fn journal_transient(&self, account: &str, id: u64, error: &str) -> Result<(), StoreError> {
        let mut wtxn = self.env().write_txn()?;
        let key = keys::with_u64(account, id);
        if let Some(mut entry) = self.journal.get(&wtxn, &key)? {
            entry.attempts = entry.attempts.saturating_sub(1);
            entry.last_error = Some(error.to_owned());
            self.journal.put(&mut wtxn, &key, &entry)?;
        }
        wtxn.commit()?;
        Ok(())
    }

    /// Puts a parked entry back in line with a fresh budget (`ops.retry`). A send whose earlier
    /// outcome was unknown is sent again: the user decided. Returns false for an unknown id.
    pub fn journal_retry(&self, id: u64) -> Result<bool, StoreError> {
        let mut wtxn = self.env().write_txn()?;
        let mut found = None;
        // Raw, so that a damaged record elsewhere cannot stop the search.
        let raw = self.journal.remap_data_type::<heed::types::Bytes>();
        for item in raw.iter(&wtxn)? {
            let (key, bytes) = item?;
            if let Ok(entry) = serde_json::from_slice::<JournalEntry>(bytes)
                && entry.id == id
            {
                found = Some((key.to_vec(), entry));
                break;
            }
        }
        let Some((key, mut entry)) = found else {
            return Ok(false);
        };
        entry.attempts = 0;
        entry.last_error = None;
        if let Some(map) = entry.op.as_object_mut() {
            map.remove("transmitting");
        }
        self.journal.put(&mut wtxn, &key, &entry)?;
        wtxn.commit()?;
        Ok(true)
    }

    /// Sets an entry aside for the user: replay skips it (its attempts reach the cap) until
    /// `journal_retry`. `reason` is shown in `ops`.
    pub fn journal_park(&self, account: &str, id: u64, reason: &str) -> Result<(), StoreError> {
        let mut wtxn = self.env().write_txn()?;
        let key = keys::with_u64(account, id);
        if let Some(mut entry) = self.journal.get(&wtxn, &key)? {
            entry.attempts = entry.attempts.max(crate::journal::MAX_ATTEMPTS);
            entry.last_error = Some(reason.to_owned());
            self.journal.put(&mut wtxn, &key, &entry)?;
        }
        wtxn.commit()?;
        Ok(())
    }

    /// Replaces an entry's operation (a step of it is done: a sent message not yet filed).
    pub fn journal_update(&self, account: &str, id: u64, op: serde_json::Value) -> Result<(), StoreError> {
        let mut wtxn = self.env().write_txn()?;
        let key = keys::with_u64(account, id);
        if let Some(mut entry) = self.journal.get(&wtxn, &key)? {
            entry.op = op;
            self.journal.put(&mut wtxn, &key, &entry)?;
        }
        wtxn.commit()?;
        Ok(())
    }

    /// The server confirmed the operation (or it became moot): it leaves the journal.
    pub fn journal_done(&self, account: &str, id: u64) -> Result<(), StoreError> {
        let mut wtxn = self.env().write_txn()?;
        self.journal.delete(&mut wtxn, &keys::with_u64(account, id))?;
        wtxn.commit()?;
        Ok(())
    }

    /// Ids of journal entries and conflicts come from one counter and are never reused.
    pub(crate) fn next_journal_id(&self, wtxn: &mut RwTxn<'_>) -> Result<u64, StoreError> {
        let id = match self.meta.get(wtxn, NEXT_ID)? {
            Some(bytes) => <[u8; 8]>::try_from(bytes).map(u64::from_be_bytes).unwrap_or(1),
            None => 1,
        };
        self.meta.put(wtxn, NEXT_ID, &(id + 1).to_be_bytes())?;
        Ok(id)
    }

    fn enrich(&self, wtxn: &RwTxn<'_>, account: &str, mut op: MailOp) -> Result<MailOp, StoreError> {
        if let MailOp::Append { raw, message_id, .. } = &mut op
            && message_id.is_none()
        {
            // A retried APPEND is recognized by Message-ID (imap/ops.rs): a message without one
            // gets one now, in the journaled bytes, before the first attempt (RFC 5322 §3.6.4).
            use base64::Engine as _;
            let engine = &base64::engine::general_purpose::STANDARD;
            if let Ok(bytes) = engine.decode(raw.as_bytes()) {
                let id = format!("<opconnect.{:016x}@append.invalid>", rand::random::<u64>());
                let mut with_id = format!("Message-ID: {id}\r\n").into_bytes();
                with_id.extend_from_slice(&bytes);
                *raw = engine.encode(with_id);
                *message_id = Some(id);
            }
        }
        if let MailOp::Flag {
            folder,
            uids,
            uidvalidity,
            message_ids,
            ..
        }
        | MailOp::Move {
            folder,
            uids,
            uidvalidity,
            message_ids,
            ..
        }
        | MailOp::Copy {
            folder,
            uids,
            uidvalidity,
            message_ids,
            ..
        }
        | MailOp::Delete {
            folder,
            uids,
            uidvalidity,
            message_ids,
            ..
        } = &mut op
        {
            *uidvalidity = self
                .mail_folders
                .get(wtxn, &keys::with_str(account, folder))?
                .and_then(|f| f.uidvalidity);
            *message_ids = uids
                .iter()
                .map(|uid| {
                    self.mail_messages
                        .get(wtxn, &keys::message(account, folder, *uid))
                        .map(|m| m.and_then(|m| m.message_id))
                })
                .collect::<Result<_, _>>()?;
        }
        Ok(op)
    }

    /// The mirror as it will be once the server has the change. Copies and appends show up
    /// after replay, when the server has given the new messages their UIDs.
    fn apply_to_mirror(&self, wtxn: &mut RwTxn<'_>, account: &str, op: &MailOp) -> Result<(), StoreError> {
        match op {
            MailOp::Flag {
                folder,
                uids,
                add,
                remove,
                ..
            } => {
                // The folder's kept counts move with the flags (store::mail).
                let mut moved = Moved::default();
                for uid in uids {
                    let key = keys::message(account, folder, *uid);
                    if let Some(mut rec) = self.mail_messages.get(wtxn, &key)? {
                        rec.flags
                            .retain(|f| !remove.iter().any(|r| r.eq_ignore_ascii_case(f)));
                        for flag in add {
                            if !rec.flags.iter().any(|f| f.eq_ignore_ascii_case(flag)) {
                                rec.flags.push(flag.clone());
                            }
                        }
                        moved += self.put_message(wtxn, account, folder, &rec)?;
                    }
                }
                self.adjust_counts(wtxn, account, folder, moved)?;
            }
            MailOp::Move { folder, uids, .. } | MailOp::Delete { folder, uids, .. } => {
                let mut moved = Moved::default();
                for uid in uids {
                    moved += self.delete_message(wtxn, account, folder, *uid)?;
                }
                self.adjust_counts(wtxn, account, folder, moved)?;
            }
            MailOp::FolderCreate { path } => {
                let key = keys::with_str(account, path);
                if self.mail_folders.get(wtxn, &key)?.is_none() {
                    let delimiter = self.any_delimiter(wtxn, account)?;
                    let rec = FolderRecord {
                        path: path.clone(),
                        delimiter,
                        namespace: "personal".into(),
                        subscribed: true,
                        ..FolderRecord::default()
                    };
                    self.mail_folders.put(wtxn, &key, &rec)?;
                }
            }
            MailOp::FolderRename { path, to } => self.rename_in_mirror(wtxn, account, path, to)?,
            MailOp::FolderDelete { path } => {
                self.mail_folders.delete(wtxn, &keys::with_str(account, path))?;
                self.clear_folder(wtxn, account, path)?;
            }
            MailOp::Copy { .. }
            | MailOp::Append { .. }
            | MailOp::Send { .. }
            | MailOp::AclSet { .. }
            | MailOp::FolderCopy { .. } => {}
        }
        Ok(())
    }

    fn any_delimiter(&self, wtxn: &RwTxn<'_>, account: &str) -> Result<Option<String>, StoreError> {
        for item in self
            .mail_folders
            .prefix_iter(wtxn, &keys::account_prefix(account))?
        {
            if let Some(d) = item?.1.delimiter {
                return Ok(Some(d));
            }
        }
        Ok(None)
    }

    /// RENAME takes subfolders along (RFC 3501 §6.3.5): re-key the folder, its children and their
    /// messages without fetching anything again.
    fn rename_in_mirror(
        &self,
        wtxn: &mut RwTxn<'_>,
        account: &str,
        from: &str,
        to: &str,
    ) -> Result<(), StoreError> {
        let mut moving = Vec::new();
        for item in self
            .mail_folders
            .prefix_iter(wtxn, &keys::account_prefix(account))?
        {
            let (_, rec) = item?;
            let child_prefix = rec.delimiter.as_ref().map(|d| format!("{from}{d}"));
            if rec.path == from || child_prefix.is_some_and(|p| rec.path.starts_with(&p)) {
                moving.push(rec);
            }
        }
        for mut rec in moving {
            let old = rec.path.clone();
            rec.path = format!("{to}{}", &old[from.len()..]);
            // Re-keyed messages: both folders count again when next asked.
            self.forget_counts(wtxn, account, &old)?;
            self.forget_counts(wtxn, account, &rec.path)?;
            let mut messages = Vec::new();
            for item in self
                .mail_messages
                .prefix_iter(wtxn, &keys::folder_prefix(account, &old))?
            {
                messages.push(item?.1);
            }
            for msg in messages {
                let old_key = keys::message(account, &old, msg.uid);
                let body = self.mail_bodies.get(wtxn, &old_key)?.map(<[u8]>::to_vec);
                self.mail_messages.delete(wtxn, &old_key)?;
                self.mail_bodies.delete(wtxn, &old_key)?;
                let new_key = keys::message(account, &rec.path, msg.uid);
                self.mail_messages.put(wtxn, &new_key, &msg)?;
                if let Some(body) = body {
                    self.mail_bodies.put(wtxn, &new_key, &body)?;
                }
            }
            self.mail_folders.delete(wtxn, &keys::with_str(account, &old))?;
            self.mail_folders
                .put(wtxn, &keys::with_str(account, &rec.path), &rec)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::records::MessageRecord;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        (dir, store)
    }

    fn folder(path: &str) -> FolderRecord {
        FolderRecord {
            path: path.into(),
            delimiter: Some("/".into()),
            namespace: "personal".into(),
            uidvalidity: Some(42),
            ..FolderRecord::default()
        }
    }

    fn msg(uid: u32) -> MessageRecord {
        MessageRecord {
            uid,
            message_id: Some(format!("<{uid}@x>")),
            ..MessageRecord::default()
        }
    }

    #[test]
    fn a_flag_op_is_journaled_enriched_and_visible_at_once() {
        let (_d, store) = store();
        store.replace_folders("a", &[folder("INBOX")]).unwrap();
        store
            .apply_mail_batch("a", "INBOX", &[msg(1), msg(2)], &[], &[], Some(&folder("INBOX")))
            .unwrap();
        let op = MailOp::Flag {
            folder: "INBOX".into(),
            uids: vec![2],
            add: vec!["\\Seen".into()],
            remove: vec![],
            uidvalidity: None,
            message_ids: vec![],
        };
        let id = store.journal_mail("a", op).unwrap();
        assert_eq!(store.message_flags("a", "INBOX").unwrap()[&2], vec!["\\Seen"]);
        let pending = store.journal_pending(Some("a")).unwrap();
        assert_eq!((pending.len(), pending[0].id), (1, id));
        let op: MailOp = serde_json::from_value(pending[0].op.clone()).unwrap();
        match op {
            MailOp::Flag {
                uidvalidity,
                message_ids,
                ..
            } => {
                assert_eq!(uidvalidity, Some(42));
                assert_eq!(message_ids, vec![Some("<2@x>".to_owned())]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(store.journal_attempt("a", id).unwrap().unwrap().attempts, 1);
        assert_eq!(store.journal_attempt("a", id).unwrap().unwrap().attempts, 2);
        store.journal_failed("a", id, "NO [SERVERBUG]").unwrap();
        assert_eq!(
            store.journal_pending(None).unwrap()[0].last_error.as_deref(),
            Some("NO [SERVERBUG]")
        );
        store.journal_done("a", id).unwrap();
        assert!(store.journal_pending(None).unwrap().is_empty());
        let next = store
            .journal_mail("a", MailOp::FolderCreate { path: "New".into() })
            .unwrap();
        assert!(next > id, "ids are never reused");
    }

    #[test]
    fn a_damaged_record_is_listed_with_its_error_and_hides_nothing() {
        let (_d, store) = store();
        let good = store
            .journal_mail("a", MailOp::FolderCreate { path: "X".into() })
            .unwrap();
        let mut wtxn = store.env().write_txn().unwrap();
        let raw = store.journal.remap_data_type::<heed::types::Bytes>();
        raw.put(&mut wtxn, &keys::with_u64("a", 99), b"{\"id\": 99, trunc")
            .unwrap();
        wtxn.commit().unwrap();
        let pending = store.journal_pending(Some("a")).unwrap();
        assert_eq!(pending.len(), 2);
        assert_eq!(pending[0].id, good);
        assert_eq!((pending[1].id, pending[1].account.as_str()), (99, "a"));
        assert!(
            pending[1]
                .last_error
                .as_deref()
                .unwrap()
                .starts_with("damaged journal record")
        );
        assert_eq!(pending[1].op["kind"], "damaged");
        assert_eq!(store.pending_ops("a").unwrap(), 2, "status counts it");
    }

    #[test]
    fn a_full_store_refuses_the_write_and_keeps_everything_before_it() {
        // 1 MiB of map: the store fills up like a full disk.
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sized(dir.path(), 1 << 20).unwrap();
        let raw = "x".repeat(64 << 10);
        let mut acknowledged = Vec::new();
        let error = loop {
            let op = MailOp::Append {
                folder: "INBOX".into(),
                raw: raw.clone(),
                flags: vec![],
                message_id: None,
            };
            match store.journal_mail("a", op) {
                Ok(id) => acknowledged.push(id),
                Err(e) => break e,
            }
            assert!(acknowledged.len() < 100, "a 1 MiB store cannot hold 6 MiB");
        };
        let text = error.to_string();
        assert!(
            text.contains("MDB_MAP_FULL") || text.to_lowercase().contains("full"),
            "a clear error: {text}"
        );
        // Every acknowledged write is there, and nothing of the refused one.
        let pending: Vec<u64> = store
            .journal_pending(Some("a"))
            .unwrap()
            .iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(pending, acknowledged);
        assert!(!acknowledged.is_empty());
    }

    #[test]
    fn rename_moves_children_and_messages_in_the_mirror() {
        let (_d, store) = store();
        store
            .replace_folders(
                "a",
                &[
                    folder("INBOX"),
                    folder("Work"),
                    folder("Work/2026"),
                    folder("Workshop"),
                ],
            )
            .unwrap();
        store
            .apply_mail_batch("a", "Work/2026", &[msg(5)], &[], &[], None)
            .unwrap();
        store.put_body("a", "Work/2026", 5, b"raw").unwrap();
        store
            .journal_mail(
                "a",
                MailOp::FolderRename {
                    path: "Work".into(),
                    to: "Archive/Work".into(),
                },
            )
            .unwrap();
        let paths: Vec<String> = store.folders("a").unwrap().into_iter().map(|f| f.path).collect();
        assert_eq!(
            paths,
            vec!["Archive/Work", "Archive/Work/2026", "INBOX", "Workshop"]
        );
        assert_eq!(store.messages("a", "Archive/Work/2026", 0, 10).unwrap().len(), 1);
        assert_eq!(
            store.body("a", "Archive/Work/2026", 5).unwrap().as_deref(),
            Some(&b"raw"[..])
        );
        assert!(store.messages("a", "Work/2026", 0, 10).unwrap().is_empty());
    }

    #[test]
    fn delete_and_folder_ops_change_the_mirror() {
        let (_d, store) = store();
        store.replace_folders("a", &[folder("INBOX")]).unwrap();
        store
            .apply_mail_batch("a", "INBOX", &[msg(1), msg(2)], &[], &[], None)
            .unwrap();
        store
            .journal_mail(
                "a",
                MailOp::Delete {
                    folder: "INBOX".into(),
                    uids: vec![1],
                    uidvalidity: None,
                    message_ids: vec![],
                },
            )
            .unwrap();
        assert_eq!(store.messages("a", "INBOX", 0, 10).unwrap().len(), 1);
        store
            .journal_mail(
                "a",
                MailOp::FolderCreate {
                    path: "Projects".into(),
                },
            )
            .unwrap();
        let created = store.folder("a", "Projects").unwrap().unwrap();
        assert_eq!(created.delimiter.as_deref(), Some("/"));
        store
            .journal_mail(
                "a",
                MailOp::FolderDelete {
                    path: "Projects".into(),
                },
            )
            .unwrap();
        assert!(store.folder("a", "Projects").unwrap().is_none());
        assert_eq!(store.journal_pending(Some("a")).unwrap().len(), 3);
    }
}
