//! The IPC server: bind the endpoint, accept connections, serve each in its own task.
//!
//! ```text
//!  Server::bind(path) ──▶ Server::run(service, shutdown)
//!   │ dir 0700, socket 0600,      │ accept ─▶ peer uid check ─▶ spawn connection::handle
//!   │                             │   (≤ MAX_CONNECTIONS; failures back off, logged once)
//!   │ refuses a live agent,       │ shutdown resolves ─▶ stop accepting, remove the socket,
//!   │ replaces a stale socket     │ tell connections to close, wait ≤ SHUTDOWN_GRACE
//! ```
//!
//! The server knows nothing about accounts or actors: it hands every request except
//! `subscribe` to a [`Service`] and forwards the service's events to subscribed connections.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::Value;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::connection;
use crate::endpoint::Bound;
use crate::rpc::{Event, RpcError};

/// After a failed accept (out of file descriptors, say), wait before trying again; the wait
/// doubles up to `ACCEPT_BACKOFF_MAX` while failures go on, and a burst is logged once.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Connections served at once: far more than the add-in, a tray and a few CLI calls need. One
/// more is accepted and closed at once (the client sees the agent hang up, not a hang).
pub const MAX_CONNECTIONS: usize = 128;
/// How long open connections get to close once shutdown starts; the rest are aborted.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// What the agent implements to answer requests.
pub trait Service: Send + Sync + 'static {
    /// Answer one request. `subscribe` is handled by the server itself, never passed here.
    /// An unknown method should answer [`RpcError::method_not_found`].
    fn call(&self, method: String, params: Value) -> BoxFuture<'static, Result<Value, RpcError>>;
    /// A fresh receiver of every event the agent emits.
    fn events(&self) -> broadcast::Receiver<Event>;
}

/// Why the server could not start or keep serving. The endpoint errors name the path.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A live agent (or another program) already listens there, or holds the lock beside it.
    #[error("another opconnect agent is already running on {}", path.display())]
    AlreadyRunning { path: PathBuf },
    /// The socket's directory belongs to someone else: using it would let them in.
    #[error(
        "socket directory {} is owned by uid {owner}, not by this user (uid {uid}); refusing to use it",
        path.display()
    )]
    ForeignDirectory { path: PathBuf, owner: u32, uid: u32 },
    /// Something other than a socket sits at the socket path; it is not ours to delete.
    #[error("{} exists and is not a socket; refusing to replace it", path.display())]
    NotASocket { path: PathBuf },
    /// Unix socket paths are limited by `sockaddr_un` (about 104–108 bytes).
    #[error("socket path {} is {len} bytes long; this system allows at most {max}", path.display())]
    PathTooLong { path: PathBuf, len: usize, max: usize },
    #[error("cannot prepare socket directory {}: {source}", path.display())]
    Directory { path: PathBuf, source: io::Error },
    #[error("cannot listen on {}: {source}", path.display())]
    Bind { path: PathBuf, source: io::Error },
}

/// A bound endpoint, not yet serving. Binding first lets the agent report "already running"
/// before it starts anything else. Dropping it releases the endpoint (and removes the socket).
#[derive(Debug)]
pub struct Server {
    bound: Bound,
}

impl Server {
    /// Creates the socket directory securely and binds the endpoint. Synchronous and needs no
    /// async runtime. Fails with [`ServeError::AlreadyRunning`] when a live agent answers on
    /// `path`; a stale socket file (nobody listening) is replaced.
    pub fn bind(path: &Path) -> Result<Server, ServeError> {
        Bound::bind(path).map(|bound| Server { bound })
    }

    /// The endpoint's path (a socket file, or a `\\.\pipe\…` name on Windows).
    pub fn path(&self) -> &Path {
        self.bound.path()
    }

    /// Accepts connections until `shutdown` resolves, then closes them and removes the socket.
    /// Must run inside a tokio runtime.
    pub async fn run(
        self,
        service: Arc<dyn Service>,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServeError> {
        let path = self.bound.path().to_path_buf();
        let listening = self.bound.listen()?;
        tracing::info!(path = %path.display(), "IPC server listening");
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut connections = JoinSet::new();
        let mut next_id: u64 = 0;
        let mut backoff = ACCEPT_BACKOFF;
        let mut failures: u64 = 0;
        let mut refused: u64 = 0;
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                Some(done) = connections.join_next(), if !connections.is_empty() => {
                    if let Err(e) = done && e.is_panic() {
                        tracing::error!(error = %e, "IPC connection task panicked");
                    }
                }
                accepted = listening.accept() => {
                if accepted.is_ok() && failures > 0 {
                    tracing::info!(failures, "accepting IPC connections works again");
                    (failures, backoff) = (0, ACCEPT_BACKOFF);
                }
                match accepted {
                    Ok(Some(stream)) if connections.len() >= MAX_CONNECTIONS => {
                        if refused == 0 {
                            tracing::warn!(limit = MAX_CONNECTIONS, "too many IPC connections; closing new ones");
                        }
                        refused += 1;
                        drop(stream);
                    }
                    Ok(Some(stream)) => {
                        if refused > 0 {
                            tracing::info!(refused, "IPC connections below the limit again");
                            refused = 0;
                        }
                        next_id += 1;
                        tracing::debug!(conn = next_id, "IPC client connected");
                        let span = tracing::info_span!("ipc_conn", conn = next_id);
                        let task = connection::handle(stream, service.clone(), stop_rx.clone());
                        connections.spawn(task.instrument(span));
                    }
                    Ok(None) => {}
                    Err(e) => {
                        if failures == 0 {
                            tracing::warn!(error = %e, "accepting an IPC connection failed; backing off");
                        } else {
                            tracing::debug!(error = %e, failures, "accepting an IPC connection failed");
                        }
                        failures += 1;
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                    }
                }},
            }
        }
        tracing::info!(connections = connections.len(), "IPC server stopping");
        // New clients now see "not running" at once; open ones are asked to close.
        drop(listening);
        let _ = stop_tx.send(true);
        let all_closed = async { while connections.join_next().await.is_some() {} };
        if tokio::time::timeout(SHUTDOWN_GRACE, all_closed).await.is_err() {
            tracing::warn!(
                left = connections.len(),
                "IPC connections did not close in time; aborting them"
            );
            connections.shutdown().await;
        }
        Ok(())
    }
}

/// Bind the endpoint (creating its directory securely), then accept until `shutdown` resolves.
pub async fn serve(
    path: &Path,
    service: Arc<dyn Service>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    Server::bind(path)?.run(service, shutdown).await
}
