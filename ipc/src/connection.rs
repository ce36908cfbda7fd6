//! One client connection: frames in, requests run concurrently, answers and events out.
//!
//! ```text
//!  socket ─▶ FrameReader ─▶ read loop ──spawn (≤ MAX_IN_FLIGHT)──▶ Service::call ─┐
//!                              │ subscribe {topics?}                              │
//!                              ▼                                                  ▼
//!                       event forwarder ─────────────▶ mpsc (OUT_QUEUE frames) ─▶ writer ─▶ socket
//! ```
//!
//! Memory stays bounded when the client reads slowly: producers wait on the bounded queue,
//! the read loop stops reading once `MAX_IN_FLIGHT` calls are pending, the event forwarder lets
//! the broadcast channel lag (skips what it missed and tells the client with a `lagged` event,
//! `{"topic":"lagged","missed":N}`), and a write that makes no progress for `WRITE_STALL`
//! closes the connection. A frame begun but not finished within `FRAME_IDLE` closes it too: a
//! half-sent frame holds no connection open for long.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Semaphore, broadcast, mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};

use crate::frame::{self, FrameError, FrameReader, MAX_FRAME};
use crate::rpc::{self, Event, Request, Response, RpcError};
use crate::server::Service;

/// The event a subscriber gets when it missed events: `{"topic":"lagged","missed":N}`.
pub const LAGGED_TOPIC: &str = "lagged";
/// Frames waiting for the writer. Small: each may be up to 16 MiB.
const OUT_QUEUE: usize = 32;
/// Calls running at once for one connection; beyond that the read loop waits, so a client
/// that floods requests is slowed down by its own socket buffer, not by our memory.
const MAX_IN_FLIGHT: usize = 64;
/// A client that takes none of our bytes for this long is gone or stuck: close it.
const WRITE_STALL: Duration = Duration::from_secs(60);
/// A frame must be complete this long after its first byte arrived (16 MiB over a local socket
/// takes milliseconds; a client that stops part-way is stuck or hostile).
const FRAME_IDLE: Duration = Duration::from_secs(10);
/// How long a closing connection may still flush answers already queued.
const CLOSE_FLUSH: Duration = Duration::from_secs(2);

/// Serves one connection until the client leaves, sends something fatal, or `stop` fires.
pub(crate) async fn handle<S>(stream: S, service: Arc<dyn Service>, mut stop: watch::Receiver<bool>)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (rd, wr) = tokio::io::split(stream);
    let (tx, rx) = mpsc::channel::<Vec<u8>>(OUT_QUEUE);
    let mut writer = tokio::spawn(write_loop(wr, rx));
    let mut conn = Conn {
        service,
        tx,
        in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        calls: JoinSet::new(),
        events: None,
    };
    let mut reader = FrameReader::new(rd).with_idle_limit(FRAME_IDLE);
    let ending = loop {
        tokio::select! {
            biased;
            () = stopped(&mut stop) => break Ending::Stop,
            _ = &mut writer => break Ending::WriterGone,
            Some(done) = conn.calls.join_next(), if !conn.calls.is_empty() => {
                if let Err(e) = done && !e.is_cancelled() {
                    tracing::error!(error = %e, "IPC call task failed");
                }
            }
            frame = reader.next() => match conn.on_frame(frame).await {
                Flow::Continue => {}
                Flow::Close(ending) => break ending,
            },
        }
    };
    tracing::debug!(?ending, "IPC connection closing");
    if let Some(events) = conn.events.take() {
        events.abort();
    }
    if ending == Ending::Eof {
        // The client has said all it will say; it may still be reading the answers.
        let drain = async { while conn.calls.join_next().await.is_some() {} };
        tokio::select! {
            _ = drain => {}
            () = stopped(&mut stop) => {}
        }
    }
    conn.calls.shutdown().await;
    drop(conn);
    if ending != Ending::WriterGone && tokio::time::timeout(CLOSE_FLUSH, &mut writer).await.is_err() {
        writer.abort();
    }
}

/// Resolves once the server asks connections to close (or is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not Send: drop it here, inside.
    let _ = stop.wait_for(|stopped| *stopped).await.map(drop);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// The client closed its side between frames.
    Eof,
    /// Oversize frame, bad bytes, a truncated frame or a read error.
    Fatal,
    /// The writer stopped: the client went away or stopped reading.
    WriterGone,
    /// The server is shutting down.
    Stop,
}

enum Flow {
    Continue,
    Close(Ending),
}

struct Conn {
    service: Arc<dyn Service>,
    tx: mpsc::Sender<Vec<u8>>,
    in_flight: Arc<Semaphore>,
    calls: JoinSet<()>,
    events: Option<JoinHandle<()>>,
}

impl Conn {
    async fn on_frame(&mut self, frame: Result<Option<Vec<u8>>, FrameError>) -> Flow {
        let payload = match frame {
            Ok(Some(payload)) => payload,
            Ok(None) => return Flow::Close(Ending::Eof),
            Err(e @ FrameError::TooLarge { .. }) => {
                // INTERFACE §4: refused with an error, and closed without reading the body.
                tracing::warn!(error = %e, "IPC client sent an oversize frame; closing");
                send(
                    &self.tx,
                    &Response::error(Value::Null, RpcError::invalid_request(e.to_string())),
                )
                .await;
                return Flow::Close(Ending::Fatal);
            }
            Err(FrameError::Io(e)) if e.kind() == std::io::ErrorKind::TimedOut => {
                tracing::warn!(error = %e, "IPC client stopped part-way through a frame; closing");
                return Flow::Close(Ending::Fatal);
            }
            Err(e) => {
                tracing::debug!(error = %e, "IPC read ended");
                return Flow::Close(Ending::Fatal);
            }
        };
        match rpc::decode_request(&payload) {
            Ok(request) => {
                self.dispatch(request).await;
                Flow::Continue
            }
            Err(rejection) => {
                tracing::debug!(
                    len = payload.len(),
                    fatal = rejection.fatal,
                    "IPC client sent an invalid request"
                );
                send(&self.tx, &rejection.response).await;
                if rejection.fatal {
                    Flow::Close(Ending::Fatal)
                } else {
                    Flow::Continue
                }
            }
        }
    }

    async fn dispatch(&mut self, request: Request) {
        let Request {
            id, method, params, ..
        } = request;
        // Method names are safe to log; params may hold mail, so only at trace level.
        tracing::debug!(%method, id = ?id, "IPC request");
        tracing::trace!(%method, params = %params, "IPC request params");
        if method == rpc::SUBSCRIBE_METHOD {
            return self.subscribe(id, &params).await;
        }
        let Ok(permit) = self.in_flight.clone().acquire_owned().await else {
            return;
        };
        let call = self.service.call(method.clone(), params);
        let tx = self.tx.clone();
        self.calls.spawn(async move {
            let _permit = permit;
            // A panicking handler answers -32603 instead of leaving the caller waiting forever.
            let outcome = match AssertUnwindSafe(call).catch_unwind().await {
                Ok(outcome) => outcome,
                Err(_) => {
                    tracing::error!(%method, "IPC handler panicked");
                    Err(RpcError::internal(format!("internal error while handling '{method}'")))
                }
            };
            match id {
                Some(id) => send(&tx, &Response { id, outcome }).await,
                None => {
                    if let Err(e) = outcome {
                        tracing::debug!(%method, error = %e, "IPC notification failed (not answered, JSON-RPC 2.0 §4.1)");
                    }
                }
            }
        });
    }

    /// `subscribe {topics?}` → `{}`; then matching events flow on this connection. A second
    /// subscribe replaces the first one's topics.
    async fn subscribe(&mut self, id: Option<Value>, params: &Value) {
        let topics = match parse_topics(params) {
            Ok(topics) => topics,
            Err(e) => {
                if let Some(id) = id {
                    send(&self.tx, &Response::error(id, e)).await;
                }
                return;
            }
        };
        if let Some(old) = self.events.take() {
            old.abort();
        }
        // Take the receiver before answering: nothing emitted after the answer is missed, and
        // the forwarder starts after the answer is queued, so no event overtakes it.
        let rx = self.service.events();
        if let Some(id) = id {
            send(&self.tx, &Response::result(id, Value::Object(Default::default()))).await;
        }
        tracing::debug!(?topics, "IPC client subscribed");
        self.events = Some(tokio::spawn(forward_events(rx, topics, self.tx.clone())));
    }
}

/// `{}` or `{"topics": null}` or `{"topics": []}` → every topic; `{"topics": ["mail", …]}`.
fn parse_topics(params: &Value) -> Result<Vec<String>, RpcError> {
    let bad = || RpcError::invalid_params("subscribe takes {\"topics\": [string, …]} (optional)");
    let Value::Object(obj) = params else {
        return Err(bad());
    };
    match obj.get("topics") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|t| t.as_str().map(str::to_owned).ok_or_else(bad))
            .collect(),
        Some(_) => Err(bad()),
    }
}

async fn forward_events(mut rx: broadcast::Receiver<Event>, topics: Vec<String>, tx: mpsc::Sender<Vec<u8>>) {
    loop {
        match rx.recv().await {
            Ok(event) if event.matches(&topics) => match encode(&event.to_notification()) {
                Some(bytes) => {
                    if tx.send(bytes).await.is_err() {
                        return;
                    }
                }
                None => {
                    tracing::warn!(topic = %event.topic, "event too large for one frame; dropped")
                }
            },
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(skipped)) => {
                tracing::warn!(skipped, "IPC subscriber is reading slowly; skipped events");
                // Whatever its topics: the subscriber must know its picture is incomplete.
                let lagged = Event::new(LAGGED_TOPIC).with("missed", skipped);
                if let Some(bytes) = encode(&lagged.to_notification())
                    && tx.send(bytes).await.is_err()
                {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

async fn write_loop<W: AsyncWrite>(wr: W, mut rx: mpsc::Receiver<Vec<u8>>) {
    let mut wr = std::pin::pin!(wr);
    while let Some(bytes) = rx.recv().await {
        let write = async {
            wr.write_all(&bytes).await?;
            wr.flush().await
        };
        match tokio::time::timeout(WRITE_STALL, write).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "IPC write failed; closing");
                return;
            }
            Err(_) => {
                tracing::warn!(
                    stalled_secs = WRITE_STALL.as_secs(),
                    "IPC client stopped reading; closing"
                );
                return;
            }
        }
    }
    let _ = wr.shutdown().await;
}

/// Queues one response. An answer too big for a frame becomes a -32603 error with the same id.
async fn send(tx: &mpsc::Sender<Vec<u8>>, response: &Response) {
    let bytes = match serde_json::to_value(response).ok().and_then(|v| encode(&v)) {
        Some(bytes) => bytes,
        None => {
            tracing::warn!("IPC answer exceeds the frame limit; sending an error instead");
            let err = RpcError::internal(format!("the answer exceeds the frame limit of {MAX_FRAME} bytes"));
            match serde_json::to_value(Response::error(response.id.clone(), err))
                .ok()
                .and_then(|v| encode(&v))
            {
                Some(bytes) => bytes,
                None => return,
            }
        }
    };
    // Fails only when the writer is gone, and then the connection is closing anyway.
    let _ = tx.send(bytes).await;
}

/// JSON → framed bytes; `None` when it does not fit in a frame.
fn encode(value: &Value) -> Option<Vec<u8>> {
    let json = serde_json::to_vec(value).ok()?;
    frame::encode(&json).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn topics_parameter() {
        assert_eq!(parse_topics(&json!({})).unwrap(), Vec::<String>::new());
        assert_eq!(
            parse_topics(&json!({"topics": null})).unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(
            parse_topics(&json!({"topics": ["mail", "state"]})).unwrap(),
            vec!["mail", "state"]
        );
        assert_eq!(
            parse_topics(&json!({"topics": [1]})).unwrap_err().code,
            rpc::code::INVALID_PARAMS
        );
        assert_eq!(
            parse_topics(&json!({"topics": "mail"})).unwrap_err().code,
            rpc::code::INVALID_PARAMS
        );
        assert_eq!(
            parse_topics(&json!(["mail"])).unwrap_err().code,
            rpc::code::INVALID_PARAMS
        );
    }

    struct Events(broadcast::Sender<Event>);

    impl Service for Events {
        fn call(
            &self,
            method: String,
            _: Value,
        ) -> futures::future::BoxFuture<'static, Result<Value, RpcError>> {
            async move { Err(RpcError::method_not_found(&method)) }.boxed()
        }
        fn events(&self) -> broadcast::Receiver<Event> {
            self.0.subscribe()
        }
    }

    #[tokio::test]
    async fn a_client_that_does_not_read_costs_bounded_memory() {
        const CAPACITY: usize = 16;
        let events = broadcast::channel(CAPACITY).0;
        let (client, server) = tokio::io::duplex(4096);
        let (_stop_tx, stop_rx) = watch::channel(false);
        let conn = tokio::spawn(handle(server, Arc::new(Events(events.clone())), stop_rx));
        let (rd, mut wr) = tokio::io::split(client);
        let mut rd = FrameReader::new(rd);
        let subscribe = serde_json::to_vec(&json!({"jsonrpc":"2.0","id":1,"method":"subscribe"})).unwrap();
        frame::write_frame(&mut wr, &subscribe).await.unwrap();
        assert!(rd.next().await.unwrap().is_some());

        // 2000 events of 1 KiB while the client reads nothing; the agent side never blocks.
        let filler = "x".repeat(1024);
        for n in 0..2000 {
            events
                .send(Event::new("state").with("n", n).with("filler", filler.clone()))
                .unwrap();
            tokio::task::yield_now().await;
        }
        // What is buffered for this client is at most the queue, the broadcast ring, the frame
        // in the writer's hands and the pipe; everything else was skipped.
        let mut received = Vec::new();
        let mut lagged = 0;
        while let Ok(Ok(Some(payload))) = tokio::time::timeout(Duration::from_millis(200), rd.next()).await {
            let value: Value = serde_json::from_slice(&payload).unwrap();
            if value["params"]["topic"] == LAGGED_TOPIC {
                lagged += value["params"]["missed"].as_u64().unwrap();
                continue;
            }
            received.push(value["params"]["n"].as_u64().unwrap());
        }
        assert!(
            received.len() <= OUT_QUEUE + CAPACITY + 16,
            "{} events were buffered",
            received.len()
        );
        assert_eq!(received.last(), Some(&1999), "the newest events arrive");
        assert!(lagged > 0, "the subscriber was told it missed events");
        assert!(!conn.is_finished(), "lagging must not close the connection");
    }

    #[tokio::test]
    async fn oversize_answer_becomes_an_error() {
        let (tx, mut rx) = mpsc::channel(1);
        let huge = Value::String("x".repeat(MAX_FRAME));
        send(&tx, &Response::result(json!(9), huge)).await;
        let bytes = rx.recv().await.unwrap();
        let answer: Response = serde_json::from_slice(&bytes[frame::HEADER_LEN..]).unwrap();
        assert_eq!(answer.id, json!(9));
        assert_eq!(answer.outcome.unwrap_err().code, rpc::code::INTERNAL_ERROR);
    }
}
