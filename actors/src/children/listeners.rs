//! Folder listeners: one IMAP connection per watched folder, EXAMINEd and waiting in IDLE (or
//! NOOP every `noop_interval`), each reporting "this folder changed" to the sync loop.
//!
//! ```text
//!  Listeners ── spawn_local ─► listen(INBOX) ─┐
//!            ── spawn_local ─► listen(Work)  ─┼─► changed: folder path ─► sync loop
//!  (over budget: no listener; the sync loop polls the folder with STATUS)
//! ```
//! A listener that loses its connection says so (the sync loop then checks its own connection,
//! so a dead server turns the account offline at once) and reconnects on its own with backoff;
//! dropping `Listeners` (pause, restart) aborts them all.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::{AbortHandle, JoinSet};

use crate::account::Secret;
use crate::error::ServiceError;
use crate::imap::connect::{classify_error, connect_and_login};
use crate::imap::watch::{self, WaitMode, Wake};
use crate::net::endpoint::Endpoint;
use crate::supervise::Backoff;

/// What a listener tells the sync loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    /// The folder changed (or the listener just (re)connected and may have missed changes).
    Changed(String),
    /// The listener's connection failed.
    Lost(String),
}

/// What every listener of an account needs to log in.
#[derive(Clone)]
pub struct ListenerLogin {
    pub endpoint: Endpoint,
    pub tls: Arc<ClientConfig>,
    pub username: String,
    pub password: Secret,
    pub timeout: Duration,
    pub mode: WaitMode,
    pub backoff_max: Duration,
}

pub struct Listeners {
    login: ListenerLogin,
    changed: UnboundedSender<Heard>,
    budget: usize,
    tasks: JoinSet<()>,
    running: BTreeMap<String, AbortHandle>,
}

impl Listeners {
    /// `budget` is how many listener connections may be open at once.
    pub fn new(login: ListenerLogin, changed: UnboundedSender<Heard>, budget: usize) -> Self {
        Listeners {
            login,
            changed,
            budget,
            tasks: JoinSet::new(),
            running: BTreeMap::new(),
        }
    }

    /// Makes the listened set follow `wanted` (in priority order); returns the folders that did
    /// not fit in the budget and must be polled.
    pub fn follow(&mut self, wanted: &[String]) -> Vec<String> {
        let (listen, poll) = wanted.split_at(wanted.len().min(self.budget));
        let stale: Vec<String> = self
            .running
            .keys()
            .filter(|f| !listen.contains(f))
            .cloned()
            .collect();
        for folder in stale {
            if let Some(handle) = self.running.remove(&folder) {
                handle.abort();
            }
        }
        for folder in listen {
            if !self.running.contains_key(folder) {
                let handle = self.tasks.spawn_local(listen_forever(
                    folder.clone(),
                    self.login.clone(),
                    self.changed.clone(),
                ));
                self.running.insert(folder.clone(), handle);
            }
        }
        poll.to_vec()
    }

    pub fn listening(&self) -> Vec<String> {
        self.running.keys().cloned().collect()
    }
}

async fn listen_forever(folder: String, login: ListenerLogin, changed: UnboundedSender<Heard>) {
    let mut backoff = Backoff::new(Duration::from_secs(1), login.backoff_max);
    loop {
        match listen(&folder, &login, &changed, &mut backoff).await {
            Ok(()) => return,
            Err(e) => {
                let delay = backoff.next_delay();
                tracing::debug!(folder, ?delay, "listener down: {e}");
                if changed.send(Heard::Lost(folder.clone())).is_err() {
                    return;
                }
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// One connection's life: log in, EXAMINE (read-only, RFC 3501 §6.3.2), then wait for changes.
async fn listen(
    folder: &str,
    login: &ListenerLogin,
    changed: &UnboundedSender<Heard>,
    backoff: &mut Backoff,
) -> Result<(), ServiceError> {
    let mut session = connect_and_login(
        &login.endpoint,
        login.tls.clone(),
        &login.username,
        &login.password,
        login.timeout,
    )
    .await?
    .session;
    session.examine(folder).await.map_err(classify_error)?;
    backoff.reset();
    // Whatever happened while this listener was not connected is caught up now.
    if changed.send(Heard::Changed(folder.to_owned())).is_err() {
        return Ok(());
    }
    loop {
        let (back, wake) = watch::wait(session, login.mode, futures::future::pending()).await?;
        session = back;
        if wake == Wake::Changed && changed.send(Heard::Changed(folder.to_owned())).is_err() {
            return Ok(());
        }
    }
}
