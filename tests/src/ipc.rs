//! `RawIpc`: a blocking client for the agent's socket that speaks the wire format of INTERFACE §4
//! byte by byte — 4-byte big-endian length, UTF-8 JSON-RPC 2.0 — and can also break it on purpose
//! (oversized frames, garbage) to test the agent's defences.
//!
//! It is independent of `opconnect_ipc` on purpose: the tests check the contract, not a shared
//! implementation of it.

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// INTERFACE §4: frames over 16 MiB are refused.
pub const MAX_FRAME: usize = 16 * 1024 * 1024;

/// Default time limit for one answer.
const TIMEOUT: Duration = Duration::from_secs(10);

/// One raw connection to the agent.
pub struct RawIpc {
    stream: UnixStream,
    next_id: u64,
    /// Notifications (`"method": "event"`) read while waiting for an answer, oldest first.
    pub events: Vec<Value>,
}

impl RawIpc {
    /// Connects to the socket at `path`.
    pub fn connect(path: &Path) -> Result<RawIpc> {
        let stream = UnixStream::connect(path)
            .with_context(|| format!("connecting to the agent at {}", path.display()))?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        stream.set_write_timeout(Some(TIMEOUT))?;
        Ok(RawIpc {
            stream,
            next_id: 0,
            events: Vec::new(),
        })
    }

    /// Sets the time limit for reads and writes.
    pub fn set_timeout(&mut self, timeout: Duration) -> Result<()> {
        self.stream.set_read_timeout(Some(timeout))?;
        self.stream.set_write_timeout(Some(timeout))?;
        Ok(())
    }

    /// Writes bytes as they are, without framing.
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()?;
        Ok(())
    }

    /// Writes one frame: the length, then `payload`.
    pub fn send_frame(&mut self, payload: &[u8]) -> Result<()> {
        self.send_raw(&frame(payload))
    }

    /// Writes a JSON value as one frame.
    pub fn send_json(&mut self, value: &Value) -> Result<()> {
        self.send_frame(value.to_string().as_bytes())
    }

    /// Closes the writing half (the agent sees end of input).
    pub fn shutdown_write(&self) -> Result<()> {
        self.stream.shutdown(Shutdown::Write)?;
        Ok(())
    }

    /// Reads one frame. `Ok(None)` when the agent closed the connection (EOF or reset).
    pub fn read_frame(&mut self) -> Result<Option<Value>> {
        let mut len = [0u8; 4];
        match self.stream.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if is_closed(&e) => return Ok(None),
            Err(e) => return Err(e).context("reading a frame header"),
        }
        let len = u32::from_be_bytes(len) as usize;
        if len > MAX_FRAME {
            bail!("the agent sent a {len}-byte frame, over the 16 MiB limit");
        }
        let mut payload = vec![0u8; len];
        match self.stream.read_exact(&mut payload) {
            Ok(()) => {}
            Err(e) if is_closed(&e) => return Ok(None),
            Err(e) => return Err(e).context("reading a frame body"),
        }
        serde_json::from_slice(&payload)
            .map(Some)
            .with_context(|| format!("agent sent non-JSON: {}", String::from_utf8_lossy(&payload)))
    }

    /// Sends a request and returns the whole response object (`result` or `error`), keeping
    /// any events that arrive first in [`RawIpc::events`].
    pub fn request(&mut self, method: &str, params: Value) -> Result<Value> {
        self.next_id += 1;
        let id = self.next_id;
        self.send_json(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))?;
        loop {
            let Some(msg) = self.read_frame()? else {
                bail!("the agent closed the connection instead of answering {method}");
            };
            if msg.get("id") == Some(&json!(id)) {
                return Ok(msg);
            }
            // JSON-RPC 2.0 §5: id null answers a request the server could not read.
            if msg.get("id") == Some(&Value::Null) && msg.get("error").is_some() {
                return Ok(msg);
            }
            if msg.get("method") == Some(&json!("event")) {
                self.events.push(msg);
                continue;
            }
            bail!("unexpected message while waiting for {method}: {msg}");
        }
    }

    /// Sends a request; `Ok(result)` or an error carrying the JSON-RPC code and message.
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value> {
        let response = self.request(method, params)?;
        if let Some(error) = response.get("error") {
            bail!("{method} failed: {error}");
        }
        response
            .get("result")
            .cloned()
            .with_context(|| format!("{method}: response without result: {response}"))
    }

    /// `subscribe {topics}`; when it returns the subscription is in place, and
    /// [`RawIpc::next_event`] reads what follows.
    pub fn subscribe(&mut self, topics: &[&str]) -> Result<()> {
        let params = if topics.is_empty() {
            json!({})
        } else {
            json!({ "topics": topics })
        };
        self.call("subscribe", params).map(|_| ())
    }

    /// The next event notification's `params`, or `Ok(None)` if none arrives within `timeout`.
    pub fn next_event(&mut self, timeout: Duration) -> Result<Option<Value>> {
        if !self.events.is_empty() {
            return Ok(self.events.remove(0).get("params").cloned());
        }
        self.stream.set_read_timeout(Some(timeout))?;
        let result = self.read_frame();
        self.stream.set_read_timeout(Some(TIMEOUT))?;
        match result {
            Ok(Some(msg)) => Ok(msg.get("params").cloned()),
            Ok(None) => bail!("the agent closed the event connection"),
            Err(e) if is_timeout(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Length-prefixes `payload` (4 bytes, big-endian).
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 4);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// The JSON-RPC error code of a response object, if it is an error.
pub fn error_code(response: &Value) -> Option<i64> {
    response.get("error")?.get("code")?.as_i64()
}

fn is_closed(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset | ErrorKind::BrokenPipe
    )
}

fn is_timeout(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<std::io::Error>())
        .any(|io| matches!(io.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut))
}
