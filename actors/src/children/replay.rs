//! Replay of journaled mail operations by the IMAP child, on its sync connection, oldest first.
//!
//! For each entry: count the attempt durably, then send (invariant 6). Done or moot → the entry
//! leaves the journal and `op.done` is emitted. A refused operation stays with its error and
//! `op.failed` tells the client; after `MAX_ATTEMPTS` it is set aside for the user, never
//! dropped. A lost connection stops replay; the child restarts and replay resumes.

use std::collections::BTreeSet;

use serde_json::json;

use crate::children::imap::MailSync;
use crate::error::ServiceError;
use crate::imap::ops::{self, Applied};
use crate::journal::{MAX_ATTEMPTS, MailOp};
use crate::store::StoreError;

fn db(e: StoreError) -> ServiceError {
    ServiceError::Protocol(format!("store: {e}"))
}

impl MailSync {
    /// Replays every pending mail operation; returns the folders they touched.
    pub(super) async fn replay(&mut self) -> Result<BTreeSet<String>, ServiceError> {
        let account = self.env.spec.name.clone();
        let mut touched = BTreeSet::new();
        for entry in self.env.store.journal_pending(Some(&account)).map_err(db)? {
            let kind = entry
                .op
                .get("kind")
                .and_then(|k| k.as_str())
                .unwrap_or("")
                .to_owned();
            if !kind.starts_with("mail.") || entry.attempts >= MAX_ATTEMPTS {
                // Another service's operation, or one set aside for the user.
                continue;
            }
            let op: MailOp = match serde_json::from_value(entry.op.clone()) {
                Ok(op) => op,
                Err(e) => {
                    // A damaged entry is kept and reported, never dropped (invariant 2).
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
            let Some(entry) = self.env.store.journal_attempt(&account, entry.id).map_err(db)? else {
                continue;
            };
            let outcome = match &op {
                MailOp::Send { .. } => self.send(&entry, &op).await,
                _ => ops::execute(&mut self.session, &op, self.caps, entry.attempts > 1).await,
            };
            match outcome {
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
                Err(e @ ServiceError::Transient { .. }) => return Err(e),
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
        }
        Ok(touched)
    }

    /// Submits a journaled message once, then files a copy in Sent (RFC 6154 `\Sent`).
    ///
    /// Never twice: once the server accepted it, the entry is marked `submitted` durably; a retry
    /// whose earlier outcome is unknown first looks for the Message-ID in Sent (issue 5).
    async fn send(
        &mut self,
        entry: &crate::store::records::JournalEntry,
        op: &MailOp,
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
        if !already_submitted && entry.attempts > 1 && ops::present(&mut self.session, &sent, id).await? {
            already_submitted = true;
        }
        if !already_submitted {
            let smtp = self.env.spec.smtp.clone().ok_or_else(|| {
                ServiceError::Unsupported("no SMTP server is configured for this account".into())
            })?;
            let password = self.env.password().await?;
            crate::smtp::submit(
                &smtp,
                self.env.spec.tls_ca.as_deref(),
                &self.env.spec.username,
                &password,
                &bytes,
                self.env.settings.connect_timeout,
            )
            .await?;
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
