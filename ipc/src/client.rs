//! The IPC client used by the command line (and by tests): one connection, one call at a time.
//!
//! ```text
//!  call(m, p) ─▶ frame {"id":n,…} ─▶ read frames until the answer with id n
//!                                     ├─ events that arrive meanwhile ─▶ queue ─▶ next_event()
//!                                     └─ answers to abandoned calls   ─▶ dropped
//! ```
//!
//! [`Client::next_event`] is cancel-safe (it may sit in `tokio::select!`); [`Client::call`] is
//! not: cancelling it mid-write leaves a partial frame, so drop the client after that.

use std::collections::VecDeque;
use std::io;
use std::path::Path;
use std::time::Duration;

use interprocess::local_socket::tokio::Stream;
use interprocess::local_socket::traits::tokio::Stream as _;
use interprocess::local_socket::{GenericFilePath, ToFsName};
use serde_json::{Value, json};

use crate::frame::{self, FrameError, FrameReader, MAX_FRAME};
use crate::rpc::{self, Event, Incoming, Request, RpcError};

/// Events kept while a call waits for its answer; beyond that the oldest are dropped, as a
/// lagging subscriber's would be on the server.
const MAX_QUEUED_EVENTS: usize = 4096;

/// What went wrong talking to the agent, shaped by what the caller does next.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens on the endpoint (no socket file, or a stale one): exit code 3.
    #[error("the opconnect agent is not running")]
    NotRunning,
    /// The agent closed the connection (it stopped, or refused what was sent).
    #[error("the agent closed the connection")]
    Closed,
    /// The agent answered with a JSON-RPC error.
    #[error(transparent)]
    Rpc(RpcError),
    /// A request too large for one frame; it was not sent.
    #[error("request of {len} bytes exceeds the frame limit of {max} bytes", max = MAX_FRAME)]
    TooLarge { len: usize },
    /// The agent sent something that is not JSON-RPC.
    #[error("IPC protocol error: {0}")]
    Protocol(String),
    #[error("IPC I/O error: {0}")]
    Io(#[from] io::Error),
    /// No answer in time: the agent is busy or stuck (its log says which).
    #[error(
        "the agent did not answer `{method}` within {}s; it may be busy or stuck (see its log)",
        after.as_secs()
    )]
    TimedOut { method: String, after: Duration },
}

/// How long [`Client::call`] waits for an answer unless [`Client::set_timeout`] says otherwise:
/// longer than any call takes (a report probes each server within its connect timeout, `wait:
/// true` gives up after 30 s), short enough that a stuck agent does not hang a script.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(120);
/// Connecting to a live local endpoint is immediate; a wedged accept loop is not.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection to the agent.
pub struct Client {
    reader: FrameReader<Stream>,
    next_id: u64,
    events: VecDeque<Event>,
    timeout: Option<Duration>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("next_id", &self.next_id)
            .field("queued_events", &self.events.len())
            .finish()
    }
}

impl Client {
    /// Connects to the agent at `path` (a socket file, or a `\\.\pipe\…` name on Windows).
    pub async fn connect(path: &Path) -> Result<Client, ClientError> {
        #[cfg(unix)]
        crate::endpoint::check_socket_owner(path)?;
        let name = path.to_fs_name::<GenericFilePath>()?;
        let connected = tokio::time::timeout(CONNECT_TIMEOUT, Stream::connect(name))
            .await
            .map_err(|_| ClientError::TimedOut {
                method: "connect".into(),
                after: CONNECT_TIMEOUT,
            })?;
        match connected {
            Ok(stream) => Ok(Client {
                reader: FrameReader::new(stream),
                next_id: 1,
                events: VecDeque::new(),
                timeout: Some(DEFAULT_CALL_TIMEOUT),
            }),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
                ) =>
            {
                Err(ClientError::NotRunning)
            }
            Err(e) => Err(ClientError::Io(e)),
        }
    }

    /// How long [`Client::call`] waits for an answer (`None`: as long as it takes).
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = timeout;
    }

    /// Calls `method` and waits for its answer, at most the timeout ([`DEFAULT_CALL_TIMEOUT`]
    /// unless set); an error answer is [`ClientError::Rpc`].
    pub async fn call(&mut self, method: &str, params: Value) -> Result<Value, ClientError> {
        match self.timeout {
            None => self.call_inner(method, params).await,
            Some(after) => tokio::time::timeout(after, self.call_inner(method, params))
                .await
                .map_err(|_| ClientError::TimedOut {
                    method: method.to_owned(),
                    after,
                })?,
        }
    }

    async fn call_inner(&mut self, method: &str, params: Value) -> Result<Value, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&Request::new(id, method, params)).await?;
        let id = Value::from(id);
        loop {
            match self.receive().await? {
                Incoming::Response(r) if r.id == id => return r.outcome.map_err(ClientError::Rpc),
                // §5: id null means the server could not read our request; it is the answer.
                Incoming::Response(r) if r.id.is_null() && r.outcome.is_err() => {
                    return Err(r.outcome.err().map_or(ClientError::Closed, ClientError::Rpc));
                }
                Incoming::Response(r) => {
                    tracing::debug!(id = %r.id, "dropped an answer to an abandoned call")
                }
                Incoming::Event(event) => self.queue(event),
                Incoming::Other(_) => {}
            }
        }
    }

    /// Sends a notification (JSON-RPC 2.0 §4.1): no answer comes back, not even an error.
    pub async fn notify(&mut self, method: &str, params: Value) -> Result<(), ClientError> {
        self.send(&Request::notification(method, params)).await
    }

    /// Subscribes this connection to `topics` (empty: every topic). `"mail"` also receives
    /// `"mail.new"`. A later call replaces the topics.
    pub async fn subscribe(&mut self, topics: &[String]) -> Result<(), ClientError> {
        self.call(rpc::SUBSCRIBE_METHOD, json!({ "topics": topics }))
            .await
            .map(drop)
    }

    /// The next event, after [`Client::subscribe`]; [`ClientError::Closed`] when the agent goes.
    pub async fn next_event(&mut self) -> Result<Event, ClientError> {
        loop {
            if let Some(event) = self.events.pop_front() {
                return Ok(event);
            }
            match self.receive().await? {
                Incoming::Event(event) => return Ok(event),
                Incoming::Response(r) => {
                    tracing::debug!(id = %r.id, "dropped an answer to an abandoned call")
                }
                Incoming::Other(_) => {}
            }
        }
    }

    fn queue(&mut self, event: Event) {
        if self.events.len() == MAX_QUEUED_EVENTS {
            self.events.pop_front();
            tracing::warn!("IPC client event queue full; dropped the oldest event");
        }
        self.events.push_back(event);
    }

    async fn send(&mut self, request: &Request) -> Result<(), ClientError> {
        let json = serde_json::to_vec(request).map_err(|e| ClientError::Protocol(e.to_string()))?;
        match frame::write_frame(self.reader.get_mut(), &json).await {
            Ok(()) => Ok(()),
            Err(FrameError::TooLarge { len }) => Err(ClientError::TooLarge { len }),
            Err(e) => Err(read_error(e)),
        }
    }

    async fn receive(&mut self) -> Result<Incoming, ClientError> {
        match self.reader.next().await {
            Ok(Some(payload)) => {
                let value: Value = serde_json::from_slice(&payload)
                    .map_err(|e| ClientError::Protocol(format!("the agent sent invalid JSON: {e}")))?;
                Ok(Incoming::from_value(value))
            }
            Ok(None) => Err(ClientError::Closed),
            Err(e) => Err(read_error(e)),
        }
    }
}

fn read_error(e: FrameError) -> ClientError {
    match e {
        FrameError::Truncated { .. } => ClientError::Closed,
        FrameError::Io(e)
            if matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe | io::ErrorKind::UnexpectedEof
            ) =>
        {
            ClientError::Closed
        }
        FrameError::Io(e) => ClientError::Io(e),
        e @ FrameError::TooLarge { .. } => ClientError::Protocol(e.to_string()),
    }
}
