//! The harness's raw IPC client against the real `opconnect_ipc` server with a stand-in service:
//! checks that `RawIpc` speaks INTERFACE §4 as the agent will, and the server's defences, before
//! and independently of the agent binary.
//!
//! ```text
//!   RawIpc (std, blocking) ──socket──▶ opconnect_ipc::serve ──▶ Stub service (status, emit)
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result};
use futures::future::BoxFuture;
use opconnect_ipc::{Event, RpcError, Service};
use opconnect_tests::ipc::{self as raw, RawIpc};
use opconnect_tests::process;
use serde_json::{Value, json};
use tokio::sync::{broadcast, oneshot};

struct Stub {
    events: broadcast::Sender<Event>,
}

impl Service for Stub {
    fn call(&self, method: String, params: Value) -> BoxFuture<'static, Result<Value, RpcError>> {
        let events = self.events.clone();
        Box::pin(async move {
            match method.as_str() {
                "status" => Ok(json!({"paused": false, "accounts": []})),
                "emit" => {
                    let _ = events.send(Event::new("state").with("n", params["n"].clone()));
                    Ok(json!({}))
                }
                other => Err(RpcError::method_not_found(other)),
            }
        })
    }

    fn events(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }
}

/// A server on a fresh socket, running on its own thread until dropped.
struct StubServer {
    _dir: tempfile::TempDir,
    socket: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl StubServer {
    fn start() -> Result<StubServer> {
        let dir = process::short_tempdir("ipc")?;
        let socket = dir.path().join("run").join("agent.sock");
        let (stop, stopped) = oneshot::channel::<()>();
        let server = opconnect_ipc::Server::bind(&socket).context("binding the stub server")?;
        let thread = thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let (events, _) = broadcast::channel(16);
            let service: Arc<dyn Service> = Arc::new(Stub { events });
            rt.block_on(async move {
                let _ = server
                    .run(service, async {
                        let _ = stopped.await;
                    })
                    .await;
            });
        });
        Ok(StubServer {
            _dir: dir,
            socket,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for StubServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn raw_client_calls_and_receives_events() -> Result<()> {
    let server = StubServer::start()?;
    let mut conn = RawIpc::connect(&server.socket)?;
    assert_eq!(conn.call("status", json!({}))?["paused"], json!(false));
    let answer = conn.request("no.such.method", json!({}))?;
    assert_eq!(raw::error_code(&answer), Some(-32601), "{answer}");

    conn.subscribe(&["state"])?;
    let mut other = RawIpc::connect(&server.socket)?;
    other.call("emit", json!({"n": 7}))?;
    let event = conn.next_event(Duration::from_secs(5))?.context("no event")?;
    assert_eq!(event["topic"], json!("state"));
    assert_eq!(event["n"], json!(7));
    assert!(conn.next_event(Duration::from_millis(100))?.is_none());
    Ok(())
}

#[test]
fn oversize_frame_is_refused_and_closed() -> Result<()> {
    let server = StubServer::start()?;
    let mut good = RawIpc::connect(&server.socket)?;
    let mut big = RawIpc::connect(&server.socket)?;
    big.send_raw(&(20u32 * 1024 * 1024).to_be_bytes())?;
    let _ = big.send_raw(&[b'x'; 4096]);
    let answer = big.read_frame()?.context("no error answer")?;
    assert_eq!(raw::error_code(&answer), Some(-32600), "{answer}");
    assert!(big.read_frame()?.is_none(), "connection left open");
    good.call("status", json!({}))?;
    Ok(())
}

#[test]
fn garbage_gets_errors_or_a_close() -> Result<()> {
    let server = StubServer::start()?;
    let mut junk = RawIpc::connect(&server.socket)?;
    junk.send_frame(b"this is not json")?;
    let answer = junk.read_frame()?.context("no answer to non-JSON")?;
    assert_eq!(raw::error_code(&answer), Some(-32700), "{answer}");

    let mut odd = RawIpc::connect(&server.socket)?;
    odd.send_json(&json!({"foo": 1}))?;
    let answer = odd.read_frame()?.context("no answer to a non-request")?;
    assert_eq!(raw::error_code(&answer), Some(-32600), "{answer}");

    let mut burst = RawIpc::connect(&server.socket)?;
    let garbage: Vec<u8> = (0u32..64 * 1024)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let _ = burst.send_raw(&garbage);
    let _ = burst.shutdown_write();
    burst.set_timeout(Duration::from_secs(5))?;
    let mut answers = 0;
    while let Some(answer) = burst.read_frame()? {
        assert!(answer.get("error").is_some(), "{answer}");
        answers += 1;
        assert!(answers < 100, "the server keeps answering garbage");
    }
    RawIpc::connect(&server.socket)?.call("status", json!({}))?;
    Ok(())
}

#[test]
fn library_client_and_raw_client_agree() -> Result<()> {
    let server = StubServer::start()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let status = rt.block_on(async {
        let mut client = opconnect_ipc::Client::connect(&server.socket).await?;
        client.call("status", json!({})).await
    })?;
    let raw_status = RawIpc::connect(&server.socket)?.call("status", json!({}))?;
    assert_eq!(status, raw_status);
    Ok(())
}
