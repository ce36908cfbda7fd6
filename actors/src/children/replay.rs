//! Replay of journaled mail operations by the IMAP child, on its sync connection, oldest first.
//!
//! For each entry: count the attempt durably, then send (invariant 6). Done or moot → the entry
//! leaves the journal and `op.done` is emitted. A refused operation stays with its error and
//! `op.failed` tells the client; after `MAX_ATTEMPTS` it is set aside for the user, never
//! dropped. A lost connection stops replay; the child restarts and replay resumes. Adjacent
//! flag changes, moves, copies and deletes on one folder go as one command (imap/batch.rs), and
//! adjacent appends to one folder as one MULTIAPPEND (imap/multiappend.rs).

use std::collections::BTreeSet;

use serde_json::json;

use crate::children::imap::MailSync;
use crate::error::ServiceError;
use crate::imap::ops::{self, Applied};
use crate::imap::{batch, multiappend};
use crate::journal::{MAX_ATTEMPTS, MailOp};
use crate::store::StoreError;
use crate::store::records::JournalEntry;

/// Set in a journaled `mail.send` once its bytes may have reached the SMTP server (smtp.rs).
const TRANSMITTING: &str = "transmitting";

/// Whether a journal entry is this service's (a mail operation).
fn is_mail(op: &serde_json::Value) -> bool {
    op.get("kind")
        .and_then(|k| k.as_str())
        .is_some_and(|k| k.starts_with("mail."))
}

/// A store failure (a full disk) is no server's answer: it stops the service with the reason
/// (state `error`), never passes for a folder the server refused.
fn db(e: StoreError) -> ServiceError {
    ServiceError::Config(format!("the local {e} (is the disk full?)"))
}

/// Operations carried out as one command.
enum Group {
    /// The same UID command on one folder (imap/batch.rs).
    Uids(batch::Key),
    /// Appends to this folder, as one MULTIAPPEND (imap/multiappend.rs).
    Append(String),
}

impl MailSync {
    /// Replays every pending mail operation; returns the folders they touched.
    ///
    /// Adjacent operations that are the same command on the same folder go as one batch
    /// (imap/batch.rs): every attempt in it is counted durably first, one command covers their
    /// UIDs, then each entry leaves the journal with its own `op.done`.
    pub(super) async fn replay(&mut self) -> Result<BTreeSet<String>, ServiceError> {
        let account = self.env.spec.name.clone();
        let mut touched = BTreeSet::new();
        let pending: Vec<JournalEntry> = self
            .env
            .store
            .journal_pending(Some(&account))
            .map_err(db)?
            .into_iter()
            .filter(|e| is_mail(&e.op))
            .collect();
        let mut progress = self.env.progress(crate::status::ServiceKind::Imap, "operations");
        let total = pending.len() as u64;
        let mut i = 0;
        while i < pending.len() {
            progress.update(i as u64, total);
            let entry = &pending[i];
            i += 1;
            if entry.attempts >= MAX_ATTEMPTS {
                // Set aside for the user.
                continue;
            }
            let op: MailOp = match serde_json::from_value(entry.op.clone()) {
                Ok(op) => op,
                Err(e) => {
                    // A damaged entry is kept and reported, never dropped (invariant 2).
                    let kind = entry.op.get("kind").and_then(|k| k.as_str()).unwrap_or("");
                    let error = format!("journal entry {} is damaged: {e}", entry.id);
                    self.env
                        .store
                        .journal_failed(&account, entry.id, &error)
                        .map_err(db)?;
                    self.env.store.journal_attempt(&account, entry.id).map_err(db)?;
                    self.env.emit(
                        "op.failed",
                        json!({"op": entry.id, "kind": kind, "error": error, "final": true}),
                    );
                    continue;
                }
            };
            let retry = crate::store::journal::tried_before(entry);
            if let Some(folder) = multiappend::joins(&op, self.caps, retry).map(str::to_owned) {
                let mut members = vec![(entry.clone(), op.clone())];
                let mut bytes = multiappend::size(&op);
                while let Some(next) = pending.get(i)
                    && members.len() < multiappend::MAX_MESSAGES
                    && next.attempts < MAX_ATTEMPTS
                    && let Ok(next_op) = serde_json::from_value::<MailOp>(next.op.clone())
                    && multiappend::joins(&next_op, self.caps, crate::store::journal::tried_before(next))
                        == Some(folder.as_str())
                    && bytes + multiappend::size(&next_op) <= multiappend::MAX_BYTES
                {
                    bytes += multiappend::size(&next_op);
                    members.push((next.clone(), next_op));
                    i += 1;
                }
                if members.len() > 1 {
                    self.replay_batch(&Group::Append(folder), members, &mut touched)
                        .await?;
                    continue;
                }
            }
            if let Some(key) = batch::key(&op, self.caps, retry) {
                let mut members = vec![(entry.clone(), op.clone())];
                let mut uids = batch::size(&op);
                while let Some(next) = pending.get(i)
                    && members.len() < batch::MAX_OPS
                    && next.attempts < MAX_ATTEMPTS
                    && let Ok(next_op) = serde_json::from_value::<MailOp>(next.op.clone())
                    && batch::key(&next_op, self.caps, crate::store::journal::tried_before(next)).as_ref()
                        == Some(&key)
                    && uids + batch::size(&next_op) <= batch::MAX_UIDS
                {
                    uids += batch::size(&next_op);
                    members.push((next.clone(), next_op));
                    i += 1;
                }
                if members.len() > 1 {
                    self.replay_batch(&Group::Uids(key), members, &mut touched)
                        .await?;
                    continue;
                }
            }
            let Some(entry) = self.env.store.journal_attempt(&account, entry.id).map_err(db)? else {
                continue;
            };
            let outcome = match &op {
                MailOp::Send { .. } => self.send(&entry, &op, retry).await,
                MailOp::FolderCopy { path, to, done } => self.copy_tree(&entry, path, to, done).await,
                _ => ops::execute(&mut self.session, &op, self.caps, retry).await,
            };
            self.settle(&entry, &op, outcome, &mut touched)?;
        }
        progress.update(total, total);
        Ok(touched)
    }

    /// One batch: every attempt counted durably before the command goes (invariant 6), one
    /// command, then each entry settled on its own. A crash in between leaves every entry of the
    /// batch in the journal, tried: the replay after it finds the messages already flagged,
    /// moved, gone or appended (by Message-ID, one by one), and each operation ends done or
    /// moot, never twice.
    async fn replay_batch(
        &mut self,
        group: &Group,
        members: Vec<(JournalEntry, MailOp)>,
        touched: &mut BTreeSet<String>,
    ) -> Result<(), ServiceError> {
        let account = self.env.spec.name.clone();
        let mut counted = Vec::with_capacity(members.len());
        for (entry, op) in members {
            if let Some(entry) = self.env.store.journal_attempt(&account, entry.id).map_err(db)? {
                counted.push((entry, op));
            }
        }
        let ops: Vec<&MailOp> = counted.iter().map(|(_, op)| op).collect();
        let outcomes = match group {
            Group::Uids(key) => batch::execute(&mut self.session, key, &ops, self.caps).await,
            Group::Append(folder) => multiappend::execute(&mut self.session, folder, &ops)
                .await
                .map(|()| ops.iter().map(|_| Applied::Done).collect()),
        };
        match outcomes {
            Ok(outcomes) => {
                for ((entry, op), applied) in counted.iter().zip(outcomes) {
                    self.settle(entry, op, Ok(applied), touched)?;
                }
                Ok(())
            }
            Err(e @ ServiceError::Transient { .. }) => {
                for (entry, _) in &counted {
                    self.env
                        .store
                        .journal_transient(&account, entry.id, &e.to_string())
                        .map_err(db)?;
                }
                Err(e)
            }
            Err(e) => {
                // Refused as a whole: each operation again on its own, so that every refusal
                // names its operation (and the others still land).
                tracing::info!(account, ops = counted.len(), "batch refused ({e}); one by one");
                let mut rest = counted.iter();
                while let Some((entry, op)) = rest.next() {
                    let outcome = ops::execute(&mut self.session, op, self.caps, true).await;
                    if let Err(e) = self.settle(entry, op, outcome, touched) {
                        // Not sent: their attempts are given back.
                        for (entry, _) in rest {
                            self.env
                                .store
                                .journal_transient(&account, entry.id, &e.to_string())
                                .map_err(db)?;
                        }
                        return Err(e);
                    }
                }
                Ok(())
            }
        }
    }

    /// Records how one operation ended: done or moot → out of the journal with `op.done`;
    /// parked or refused → kept with `op.failed`; transient → the attempt is given back and the
    /// error returned (replay stops; the child reconnects and resumes).
    fn settle(
        &mut self,
        entry: &JournalEntry,
        op: &MailOp,
        outcome: Result<Applied, ServiceError>,
        touched: &mut BTreeSet<String>,
    ) -> Result<(), ServiceError> {
        let account = self.env.spec.name.clone();
        match outcome {
            Ok(Applied::Parked(reason)) => {
                tracing::warn!(account, op = entry.id, kind = op.kind(), "set aside: {reason}");
                self.env
                    .store
                    .journal_park(&account, entry.id, &reason)
                    .map_err(db)?;
                self.env.emit(
                    "op.failed",
                    json!({"op": entry.id, "kind": op.kind(), "error": reason, "attempts": entry.attempts,
                           "final": true, "parked": true}),
                );
            }
            Ok(applied) => {
                self.env.store.journal_done(&account, entry.id).map_err(db)?;
                let mut event = json!({"op": entry.id, "kind": op.kind()});
                if let Applied::Moot(reason) = applied {
                    event["moot"] = json!(true);
                    event["reason"] = json!(reason);
                }
                self.env.emit("op.done", event);
                touched.extend(op.folders());
            }
            Err(e @ ServiceError::Transient { .. }) => {
                // The server was away or too slow, which says nothing about the operation:
                // the attempt is given back so that outages never park it (only crashes
                // in the middle of a request and refusals count toward the cap).
                self.env
                    .store
                    .journal_transient(&account, entry.id, &e.to_string())
                    .map_err(db)?;
                return Err(e);
            }
            Err(e) => {
                let error = e.to_string();
                tracing::warn!(
                    account,
                    op = entry.id,
                    kind = op.kind(),
                    attempts = entry.attempts,
                    "refused: {error}"
                );
                self.env
                    .store
                    .journal_failed(&account, entry.id, &error)
                    .map_err(db)?;
                self.env.emit(
                    "op.failed",
                    json!({"op": entry.id, "kind": op.kind(), "error": error, "attempts": entry.attempts,
                           "final": entry.attempts >= MAX_ATTEMPTS}),
                );
                touched.extend(op.folders());
            }
        }
        Ok(())
    }

    /// Submits a journaled message once, then files a copy in Sent (RFC 6154 `\Sent`).
    ///
    /// Never twice: once the server accepted it, the entry is marked `submitted` durably; a retry
    /// whose earlier outcome is unknown first looks for the Message-ID in Sent (issue 5).
    async fn send(
        &mut self,
        entry: &JournalEntry,
        op: &MailOp,
        retry: bool,
    ) -> Result<Applied, ServiceError> {
        let MailOp::Send {
            raw,
            message_id,
            submitted,
        } = op
        else {
            return Err(ServiceError::Protocol("not a send".into()));
        };
        let account = self.env.spec.name.clone();
        let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, raw)
            .map_err(|e| ServiceError::Protocol(format!("journaled message is not base64: {e}")))?;
        let sent = self.sent_folder()?;
        let id = message_id.as_deref().unwrap_or_default();
        let mut already_submitted = *submitted;
        if !already_submitted && retry && ops::present(&mut self.session, &sent, id).await? {
            already_submitted = true;
        }
        if !already_submitted && entry.op.get(TRANSMITTING) == Some(&json!(true)) {
            // An earlier attempt transmitted the message and never learned the server's answer
            // (a timeout after the final dot, or the agent died there). Sending again could
            // deliver it twice; set it aside for the user (`ops.retry` sends it anyway).
            return Ok(Applied::Parked(
                "an earlier attempt transmitted this message but the server's answer never came; \
                 it may have been delivered. Check with a recipient, then `ops.retry` to send it again"
                    .into(),
            ));
        }
        if !already_submitted {
            let smtp = self.env.spec.smtp.clone().ok_or_else(|| {
                ServiceError::Unsupported("no SMTP server is configured for this account".into())
            })?;
            let password = self.env.password().await?;
            let budget = crate::smtp::Budget {
                connect: self.env.settings.connect_timeout,
                command: self.env.settings.command_timeout,
            };
            // Durable before the first byte of the message goes out (see smtp.rs's diagram).
            let store = self.env.store.clone();
            let mut mark = entry.op.clone();
            mark[TRANSMITTING] = json!(true);
            let mut transmitting = || store.journal_update(&account, entry.id, mark.clone()).map_err(db);
            let submitted = crate::smtp::submit(
                &smtp,
                crate::smtp::Trust {
                    ca: self.env.spec.tls_ca.as_deref(),
                    pins: &self.env.spec.tls_pins,
                },
                &self.env.spec.username,
                &password,
                &bytes,
                budget,
                &mut transmitting,
            )
            .await;
            match submitted {
                Ok(()) => {}
                Err(crate::smtp::SubmitError::NotSent(e)) => {
                    // Nothing went out: the mark (if set) no longer holds.
                    self.env
                        .store
                        .journal_update(&account, entry.id, entry.op.clone())
                        .map_err(db)?;
                    return Err(e);
                }
                Err(crate::smtp::SubmitError::Unknown(why)) => return Ok(Applied::Parked(why)),
            }
            let marked = MailOp::Send {
                raw: raw.clone(),
                message_id: message_id.clone(),
                submitted: true,
            };
            let value = serde_json::to_value(&marked).map_err(|e| ServiceError::Protocol(e.to_string()))?;
            self.env
                .store
                .journal_update(&account, entry.id, value)
                .map_err(db)?;
        }
        // File the copy unless an earlier attempt (or the server itself) already did.
        if !ops::present(&mut self.session, &sent, id).await? {
            self.session
                .append(&sent, Some("(\\Seen)"), None, &bytes)
                .await
                .map_err(crate::imap::connect::classify_error)?;
        }
        self.sync_path(&sent).await?;
        Ok(Applied::Done)
    }

    /// Copies a folder tree: CREATE each folder under `to`, then COPY its messages, folder by
    /// folder, recording each finished folder durably (a crash resumes after it) and emitting
    /// `mail.folder.copy.progress`. A folder interrupted mid-copy is completed by Message-ID, so
    /// nothing is copied twice. (X-COPYFOLDER is not used: no server here offers it to test.)
    async fn copy_tree(
        &mut self,
        entry: &JournalEntry,
        path: &str,
        to: &str,
        done: &[String],
    ) -> Result<Applied, ServiceError> {
        use crate::imap::connect::classify_error;
        use futures::TryStreamExt;
        let account = self.env.spec.name.clone();
        let delimiter = self
            .env
            .store
            .folder(&account, path)
            .map_err(db)?
            .and_then(|f| f.delimiter)
            .unwrap_or_else(|| "/".into());
        let mut tree = Vec::new();
        for pattern in [path.to_owned(), format!("{path}{delimiter}*")] {
            let names: Vec<_> = self
                .session
                .list(Some(""), Some(&pattern))
                .await
                .map_err(classify_error)?
                .try_collect()
                .await
                .map_err(classify_error)?;
            tree.extend(names.iter().map(|n| n.name().to_owned()));
        }
        if tree.is_empty() {
            return Ok(Applied::Moot(format!("{path} no longer exists")));
        }
        // Parents before children.
        tree.sort_by_key(|f| (f.matches(delimiter.as_str()).count(), f.clone()));
        tree.dedup();
        let mut done = done.to_vec();
        let total = tree.len();
        for (i, source) in tree.iter().enumerate() {
            if done.contains(source) {
                continue;
            }
            let target = format!("{to}{}", &source[path.len()..]);
            match self.session.create(&target).await {
                Ok(()) => {}
                Err(async_imap::error::Error::No(text))
                    if text.contains("ALREADYEXISTS") || text.contains("exists") => {}
                Err(e) => return Err(classify_error(e)),
            }
            let already: std::collections::HashSet<String> = self
                .message_ids(&target)
                .await?
                .into_iter()
                .filter_map(|(_, id)| id)
                .collect();
            let wanted: Vec<u32> = self
                .message_ids(source)
                .await?
                .into_iter()
                .filter(|(_, id)| id.as_ref().is_none_or(|id| !already.contains(id)))
                .map(|(uid, _)| uid)
                .collect();
            if !wanted.is_empty() {
                self.session.select(source).await.map_err(classify_error)?;
                self.session
                    .uid_copy(crate::imap::sync::uid_set(&wanted), &target)
                    .await
                    .map_err(classify_error)?;
            }
            done.push(source.clone());
            let progress = MailOp::FolderCopy {
                path: path.to_owned(),
                to: to.to_owned(),
                done: done.clone(),
            };
            let value = serde_json::to_value(&progress).map_err(|e| ServiceError::Protocol(e.to_string()))?;
            self.env
                .store
                .journal_update(&account, entry.id, value)
                .map_err(db)?;
            self.env.emit(
                "mail.folder.copy.progress",
                json!({"op": entry.id, "folder": source, "to": target, "done": i + 1, "total": total, "copied": wanted.len()}),
            );
        }
        self.discover().await?;
        for source in &tree {
            self.sync_path(&format!("{to}{}", &source[path.len()..])).await?;
        }
        Ok(Applied::Done)
    }

    /// UID → Message-ID of every message in `folder` (empty when it does not exist).
    async fn message_ids(&mut self, folder: &str) -> Result<Vec<(u32, Option<String>)>, ServiceError> {
        use crate::imap::connect::classify_error;
        use futures::TryStreamExt;
        match self.session.examine(folder).await {
            Ok(mailbox) if mailbox.exists == 0 => return Ok(Vec::new()),
            Ok(_) => {}
            Err(async_imap::error::Error::No(_)) => return Ok(Vec::new()),
            Err(e) => return Err(classify_error(e)),
        }
        let fetches: Vec<_> = self
            .session
            .uid_fetch("1:*", "(UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
            .await
            .map_err(classify_error)?
            .try_collect()
            .await
            .map_err(classify_error)?;
        Ok(fetches
            .iter()
            .filter_map(|f| {
                Some((
                    f.uid?,
                    f.header()
                        .and_then(|h| crate::imap::headers::summarize(h).message_id),
                ))
            })
            .collect())
    }

    /// The special-use Sent folder (RFC 6154), else one named "Sent".
    fn sent_folder(&self) -> Result<String, ServiceError> {
        let folders = self.env.store.folders(&self.env.spec.name).map_err(db)?;
        Ok(folders
            .iter()
            .find(|f| f.special_use.as_deref() == Some("\\Sent"))
            .or_else(|| folders.iter().find(|f| f.path.eq_ignore_ascii_case("Sent")))
            .map(|f| f.path.clone())
            .unwrap_or_else(|| "Sent".into()))
    }

    /// Push, then pull what the pushed operations touched, so the mirror shows the server's truth
    /// (new UIDs of appended, copied and moved messages, renamed folders).
    pub(super) async fn replay_then_sync(&mut self) -> Result<(), ServiceError> {
        let touched = self.replay().await?;
        if touched.is_empty() {
            return Ok(());
        }
        self.discover().await?;
        for folder in touched {
            self.sync_path(&folder).await?;
        }
        Ok(())
    }
}
