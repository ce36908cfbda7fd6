//! Shared by the socket tests: a small `Service`, a server in a temporary directory, raw frames.
#![allow(dead_code)] // each test file uses its own part of this

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use opconnect_ipc::frame::{self, FrameReader};
use opconnect_ipc::rpc::Response;
use opconnect_ipc::{Client, Event, RpcError, ServeError, Server, Service};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio::sync::{broadcast, oneshot};
use tokio::task::JoinHandle;

/// A small service: echo, sleep, emit an event, fail, panic; everything else is unknown.
pub struct TestService {
    pub events: broadcast::Sender<Event>,
    pub notified: AtomicUsize,
}

impl TestService {
    pub fn new(event_capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            events: broadcast::channel(event_capacity).0,
            notified: AtomicUsize::new(0),
        })
    }
}

impl Service for TestService {
    fn call(&self, method: String, params: Value) -> BoxFuture<'static, Result<Value, RpcError>> {
        if method == "count" {
            self.notified.fetch_add(1, Ordering::SeqCst);
        }
        let events = self.events.clone();
        async move {
            match method.as_str() {
                "echo" | "count" => Ok(params),
                "sleep" => {
                    let ms = params["ms"]
                        .as_u64()
                        .ok_or_else(|| RpcError::invalid_params("ms"))?;
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    Ok(json!({ "slept": ms }))
                }
                "emit" => {
                    let topic = params["topic"]
                        .as_str()
                        .ok_or_else(|| RpcError::invalid_params("topic"))?;
                    let _ = events.send(Event::new(topic).with("n", params["n"].clone()));
                    Ok(json!({}))
                }
                "fail" => Err(RpcError::unknown_account("nobody")),
                "panic" => panic!("handler bug"),
                _ => Err(RpcError::method_not_found(&method)),
            }
        }
        .boxed()
    }

    fn events(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }
}

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
    pub service: Arc<TestService>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ServeError>>,
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(64).await
    }

    pub async fn start_with(event_capacity: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run").join("agent.sock");
        let service = TestService::new(event_capacity);
        let server = Server::bind(&path).unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(service.clone(), stopped.map(drop)));
        Self {
            dir,
            path,
            service,
            stop: Some(stop),
            task,
        }
    }

    pub async fn client(&self) -> Client {
        within(Client::connect(&self.path)).await.unwrap()
    }

    pub async fn raw(
        &self,
    ) -> (
        FrameReader<tokio::net::unix::OwnedReadHalf>,
        tokio::net::unix::OwnedWriteHalf,
    ) {
        let (rd, wr) = UnixStream::connect(&self.path).await.unwrap().into_split();
        (FrameReader::new(rd), wr)
    }

    /// Stops the server; the temporary directory lives on in what is returned.
    pub async fn stop(mut self) -> tempfile::TempDir {
        let _ = self.stop.take().unwrap().send(());
        within(self.task).await.unwrap().unwrap();
        self.dir
    }
}

pub async fn within<F: Future>(fut: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .expect("timed out")
}

pub async fn send_raw(wr: &mut tokio::net::unix::OwnedWriteHalf, value: Value) {
    wr.write_all(&frame::encode(&serde_json::to_vec(&value).unwrap()).unwrap())
        .await
        .unwrap();
}

pub async fn next_answer<R: tokio::io::AsyncRead + Unpin>(rd: &mut FrameReader<R>) -> Response {
    let payload = within(rd.next()).await.unwrap().expect("connection closed");
    serde_json::from_slice(&payload).unwrap()
}

/// The server closed the connection: EOF, or a reset because we had unread bytes queued.
pub async fn assert_closed<R: tokio::io::AsyncRead + Unpin>(rd: &mut FrameReader<R>) {
    match within(rd.next()).await {
        Ok(None) | Err(_) => {}
        Ok(Some(extra)) => panic!(
            "expected the connection closed, got {}",
            String::from_utf8_lossy(&extra)
        ),
    }
}

pub fn error_of(r: Response) -> RpcError {
    r.outcome.unwrap_err()
}
