//! The IMAP child: one sync connection that discovers folders and keeps the mirror current, plus
//! listeners on INBOX and the folders the client watches (IDLE, or NOOP every `noop_interval`).
//!
//! ```text
//!  login ─ LIST/LSUB/NAMESPACE ─ sync every folder ─┬─ changed(folder) ─► sync that folder, emit
//!                                                   ├─ command: watch / unwatch / fetch body
//!                                                   ├─ sync now: rediscover, sync all
//!                                                   └─ tick: poll folders over the listener budget
//! ```

use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::{Duration, Instant};

use async_imap::Session;
use futures::TryStreamExt;
use serde_json::json;
use tokio::sync::mpsc;

use crate::children::AccountEnv;
use crate::children::listeners::{Heard, ListenerLogin, Listeners};
use crate::error::ServiceError;
use crate::imap::connect::{ImapConnection, classify_error, connect_and_login};
use crate::imap::folders;
use crate::imap::ops::OpCaps;
use crate::imap::sync::{SyncOutcome, sync_folder};
use crate::imap::watch::WaitMode;
use crate::net::endpoint::Endpoint;
use crate::status::ServiceKind;
use crate::store::StoreError;
use crate::supervise::{ChildCommand, ChildContext, ChildFactory};

/// With every watched folder under a listener, the sync connection only needs a keep-alive:
/// well inside common NAT timeouts and RFC 3501 §5.4's 30-minute autologout.
const KEEPALIVE: Duration = Duration::from_secs(4 * 60);

pub fn factory(env: AccountEnv, endpoint: Endpoint) -> ChildFactory {
    Rc::new(move |cx| Box::pin(run(env.clone(), endpoint.clone(), cx)))
}

/// A store failure (a full disk) is no server's answer: it stops the service with the reason
/// (state `error`), never passes for a folder the server refused.
fn db(e: StoreError) -> ServiceError {
    ServiceError::Config(format!("the local {e} (is the disk full?)"))
}

pub(super) struct MailSync {
    pub(super) env: AccountEnv,
    pub(super) session: Session<ImapConnection>,
    condstore: bool,
    namespace: bool,
    acl: bool,
    pub(super) caps: OpCaps,
}

async fn run(env: AccountEnv, endpoint: Endpoint, cx: ChildContext) -> Result<(), ServiceError> {
    let tls = env.tls.clone()?;
    let password = env.password().await?;
    let timeout = env.settings.connect_timeout;
    let mut login = connect_and_login(&endpoint, tls.clone(), &env.spec.username, &password, timeout).await?;
    // From here every command is bounded by the server's silence (connect.rs's watchdog).
    login
        .session
        .get_mut()
        .set_stall_limit(env.settings.command_timeout);
    let mode = if login.has("IDLE") {
        WaitMode::Idle {
            renew: env.settings.idle_renew,
        }
    } else {
        WaitMode::Noop {
            every: env.settings.noop_interval,
        }
    };
    cx.online(json!({
        "capabilities": login.capabilities,
        "encrypted": login.encrypted,
        "notifications": match mode { WaitMode::Idle { .. } => "idle", WaitMode::Noop { .. } => "noop" },
    }));
    let mut sync = MailSync {
        condstore: login.has("CONDSTORE"),
        namespace: login.has("NAMESPACE"),
        acl: login.has("ACL"),
        caps: OpCaps {
            move_: login.has("MOVE"),
            uidplus: login.has("UIDPLUS"),
            multiappend: login.has("MULTIAPPEND") && login.has("LITERAL+"),
        },
        session: login.session,
        env: env.clone(),
    };
    // Push before pull (DESIGN.md, "How sync works"): what was done offline goes first.
    sync.replay().await?;
    sync.discover().await?;
    sync.sync_all().await?;
    env.synced(&cx);

    let (changed_tx, mut changed_rx) = mpsc::unbounded_channel();
    let listener_login = ListenerLogin {
        endpoint,
        tls,
        username: env.spec.username.clone(),
        password,
        timeout,
        mode,
        backoff_max: env.settings.backoff_max,
    };
    // One connection is the sync connection; the rest may listen.
    let budget = env.settings.imap_connections.saturating_sub(1).max(1);
    let mut listeners = Listeners::new(listener_login, changed_tx, budget);
    let mut polled = listeners.follow(&env.watched_folders());
    let mut tick = tokio::time::interval(env.settings.noop_interval);
    tick.reset();
    let mut last_noop = Instant::now();
    loop {
        tokio::select! {
            Some(heard) = changed_rx.recv() => match heard {
                Heard::Changed(folder) => {
                    sync.replay_then_sync().await?;
                    sync.sync_path(&folder).await?;
                    env.synced(&cx);
                }
                // Is the server gone, or only that connection? A failing NOOP ends this run and
                // the supervisor reports offline.
                Heard::Lost(_) => {
                    sync.session.noop().await.map_err(classify_error)?;
                    last_noop = Instant::now();
                }
            },
            command = cx.next_command() => {
                match command {
                    ChildCommand::Watch(folder) => {
                        env.watch(&folder, true);
                        polled = listeners.follow(&env.watched_folders());
                    }
                    ChildCommand::Unwatch(folder) => {
                        env.watch(&folder, false);
                        polled = listeners.follow(&env.watched_folders());
                    }
                    ChildCommand::Replay => {
                        sync.replay_then_sync().await?;
                        env.synced(&cx);
                    }
                    other @ (ChildCommand::FreeBusy { .. } | ChildCommand::GalSearch { .. }) => {
                        other.fail(ServiceError::Unsupported("free/busy is a CalDAV request".into()));
                    }
                    ChildCommand::AclGet { folder, reply } => {
                        let result = crate::imap::acl::get_acl(&mut sync.session, &folder).await;
                        let lost = matches!(result, Err(ServiceError::Transient { .. }));
                        let failure = result.as_ref().err().cloned();
                        let _ = reply.send(result);
                        if let (true, Some(e)) = (lost, failure) {
                            return Err(e);
                        }
                    }
                    ChildCommand::FetchBody { folder, uid, reply } => {
                        let result = sync.fetch_body(&folder, uid).await;
                        let transient = matches!(result, Err(ServiceError::Transient { .. }));
                        let failure = result.as_ref().err().cloned();
                        let _ = reply.send(result);
                        if let (true, Some(e)) = (transient, failure) {
                            return Err(e);
                        }
                    }
                }
            }
            _ = cx.woken() => {
                sync.replay().await?;
                sync.discover().await?;
                sync.sync_all().await?;
                env.synced(&cx);
            }
            _ = tick.tick() => {
                // Folders over the listener budget are polled; otherwise a NOOP keeps the
                // sync connection alive (servers log out idle sessions, RFC 3501 §5.4).
                if polled.is_empty() {
                    if last_noop.elapsed() >= KEEPALIVE {
                        sync.session.noop().await.map_err(classify_error)?;
                        last_noop = Instant::now();
                    }
                } else {
                    for folder in polled.clone() {
                        sync.poll(&folder).await?;
                    }
                }
                tracing::trace!(listening = ?listeners.listening(), ?polled, "tick");
            }
        }
    }
}

impl MailSync {
    /// LIST/LSUB/NAMESPACE into the mirror; emits `folders.changed` when the list changed.
    pub(super) async fn discover(&mut self) -> Result<(), ServiceError> {
        let (listed, _) = folders::discover(&mut self.session, self.namespace, self.acl).await?;
        let changes = self
            .env
            .store
            .replace_folders(&self.env.spec.name, &listed)
            .map_err(db)?;
        if !changes.is_empty() {
            self.env.emit(
                "folders.changed",
                json!({"added": changes.added, "removed": changes.removed, "updated": changes.updated}),
            );
        }
        Ok(())
    }

    async fn sync_all(&mut self) -> Result<(), ServiceError> {
        let folders = self.env.store.folders(&self.env.spec.name).map_err(db)?;
        let mut progress = self.env.progress(ServiceKind::Imap, "folders");
        progress.total(folders.len() as u64);
        for folder in folders {
            self.sync_if_moved(folder).await?;
            progress.advance(1);
        }
        Ok(())
    }

    pub(super) async fn sync_path(&mut self, path: &str) -> Result<(), ServiceError> {
        match self.env.store.folder(&self.env.spec.name, path).map_err(db)? {
            Some(folder) => self.sync_one(folder).await,
            None => self.discover().await,
        }
    }

    /// Syncs one folder; a folder the server refuses (deleted meanwhile, no rights) is logged and
    /// skipped so it never blocks the others (invariant 4).
    async fn sync_one(&mut self, folder: crate::store::records::FolderRecord) -> Result<(), ServiceError> {
        let first_sync = folder.uidvalidity.is_none();
        let account = self.env.spec.name.clone();
        let mut progress = self
            .env
            .progress(ServiceKind::Imap, "messages")
            .named("folder", &folder.path);
        let synced = sync_folder(
            &mut self.session,
            &self.env.store,
            &account,
            &folder,
            self.condstore,
            &mut |done, total| progress.update(done, total),
        )
        .await;
        progress.finish();
        match synced {
            Ok((_, outcome)) => {
                if folder.path.eq_ignore_ascii_case("Notes") {
                    // Notes are read whole (`notes.list`), and the folder is small: keep bodies.
                    self.prefetch_bodies(&folder.path).await?;
                }
                self.announce(&folder.path, &outcome, first_sync);
                Ok(())
            }
            Err(ServiceError::Protocol(e)) => {
                tracing::warn!(account, folder = folder.path, "folder not synced: {e}");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn announce(&self, folder: &str, outcome: &SyncOutcome, first_sync: bool) {
        if outcome.new > 0 && !first_sync {
            self.env
                .emit("mail.new", json!({"folder": folder, "count": outcome.new}));
        }
        if outcome.changed > 0 || outcome.expunged > 0 || outcome.reset {
            self.env.emit(
                "mail.changed",
                json!({"folder": folder, "changed": outcome.changed, "expunged": outcome.expunged, "reset": outcome.reset}),
            );
        }
    }

    /// STATUS (RFC 3501 §6.3.10) of a folder without a listener; syncs it when it moved.
    async fn poll(&mut self, path: &str) -> Result<(), ServiceError> {
        let Some(known) = self.env.store.folder(&self.env.spec.name, path).map_err(db)? else {
            return Ok(());
        };
        self.sync_if_moved(known).await
    }

    /// Syncs a folder synced before only when its STATUS says it moved (issue 22): a SELECT makes
    /// the server open the folder (Dovecot: 93 ms for 100,000 messages, the whole of a no-change
    /// `sync`), STATUS reads its counters. Without CONDSTORE a flag change shows in no STATUS
    /// item, so such folders, and folders never synced, are always synced.
    async fn sync_if_moved(
        &mut self,
        known: crate::store::records::FolderRecord,
    ) -> Result<(), ServiceError> {
        if !self.condstore || known.uidvalidity.is_none() {
            return self.sync_one(known).await;
        }
        let path = known.path.clone();
        let items = "(MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ)";
        let status = match self.session.status(&path, items).await.map_err(classify_error) {
            Ok(status) => status,
            // A folder the server refuses (deleted meanwhile): the sync says so, as before.
            Err(ServiceError::Protocol(_)) => return self.sync_one(known).await,
            Err(e) => return Err(e),
        };
        // RFC 7162 §3.1.2.1: any flag change moves HIGHESTMODSEQ; new mail UIDNEXT, expunges
        // MESSAGES.
        let moved = status.uid_validity != known.uidvalidity
            || status.uid_next != known.uidnext
            || status.exists != known.total
            || status.highest_modseq != known.highestmodseq;
        if moved {
            self.sync_one(known).await?;
        }
        Ok(())
    }

    /// Fetches every body of `folder` that is not cached yet.
    async fn prefetch_bodies(&mut self, folder: &str) -> Result<(), ServiceError> {
        let account = self.env.spec.name.clone();
        let uids: Vec<u32> = self
            .env
            .store
            .message_flags(&account, folder)
            .map_err(db)?
            .into_keys()
            .collect();
        for uid in uids {
            if self.env.store.body(&account, folder, uid).map_err(db)?.is_none() {
                match self.fetch_body(folder, uid).await {
                    Ok(_) | Err(ServiceError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// `UID FETCH uid BODY.PEEK[]` (RFC 3501 §6.4.5; PEEK leaves \Seen alone), cached up to the cap.
    async fn fetch_body(&mut self, folder: &str, uid: u32) -> Result<Vec<u8>, ServiceError> {
        let account = self.env.spec.name.clone();
        if let Some(raw) = self.env.store.body(&account, folder, uid).map_err(db)? {
            return Ok(raw);
        }
        self.session
            .examine(folder)
            .await
            .map_err(|e| match classify_error(e) {
                ServiceError::Protocol(why) => ServiceError::NotFound(format!("folder {folder}: {why}")),
                other => other,
            })?;
        let fetches: Vec<_> = self
            .session
            .uid_fetch(uid.to_string(), "(UID BODY.PEEK[])")
            .await
            .map_err(classify_error)?
            .try_collect()
            .await
            .map_err(classify_error)?;
        let raw = fetches
            .iter()
            .find(|f| f.uid == Some(uid))
            .and_then(|f| f.body())
            .map(<[u8]>::to_vec)
            .ok_or_else(|| ServiceError::NotFound(format!("no message with UID {uid} in {folder}")))?;
        if raw.len() <= self.env.settings.body_cache_max {
            self.env.store.put_body(&account, folder, uid, &raw).map_err(db)?;
        }
        Ok(raw)
    }
}

impl AccountEnv {
    /// INBOX first (always watched), then the client's folders in the order they were added.
    fn watched_folders(&self) -> Vec<String> {
        let watched = self.watched.lock().expect("watched set lock");
        std::iter::once("INBOX".to_owned())
            .chain(
                watched
                    .iter()
                    .filter(|f| !f.eq_ignore_ascii_case("INBOX"))
                    .cloned(),
            )
            .collect()
    }

    fn watch(&self, folder: &str, on: bool) {
        let mut watched = self.watched.lock().expect("watched set lock");
        if on {
            watched.insert(folder.to_owned());
        } else {
            watched.remove(folder);
        }
    }
}

/// Keeps the set type in one place for `AccountEnv`.
pub type WatchedFolders = std::sync::Arc<std::sync::Mutex<BTreeSet<String>>>;
