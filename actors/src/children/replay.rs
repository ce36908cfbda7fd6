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
            match ops::execute(&mut self.session, &op, self.caps, entry.attempts > 1).await {
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
