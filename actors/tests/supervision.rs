//! The account supervisor restarts children that fail or panic, pauses them at once, and restarts
//! a waiting child when asked to sync now (invariants 9 and 10). No servers: children are scripted.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::{Actor, Context, Handler};
use opconnect_actors::ServiceError;
use opconnect_actors::status::{AccountStatus, ServiceKind, State};
use opconnect_actors::supervise::ChildFactory;
use opconnect_actors::supervisor::{AccountChanged, AccountSupervisor, Pause, Resume, SyncNow};

/// Stands in for the hub: remembers every status the supervisor published.
struct Collector(Arc<Mutex<Vec<AccountStatus>>>);

impl Actor for Collector {
    type Context = Context<Self>;
}

impl Handler<AccountChanged> for Collector {
    type Result = ();
    fn handle(&mut self, msg: AccountChanged, _: &mut Context<Self>) {
        self.0.lock().unwrap().push(msg.0);
    }
}

fn collector() -> (actix::Recipient<AccountChanged>, Arc<Mutex<Vec<AccountStatus>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    (Collector(seen.clone()).start().recipient(), seen)
}

async fn wait_until(
    seen: &Arc<Mutex<Vec<AccountStatus>>>,
    what: &str,
    pred: impl Fn(&AccountStatus) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        if seen.lock().unwrap().iter().any(&pred) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}: {:?}",
            seen.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A child that goes online and then stays until cancelled.
async fn stay_online(cx: opconnect_actors::supervise::ChildContext) -> Result<(), ServiceError> {
    cx.online(serde_json::json!({}));
    futures::future::pending::<()>().await;
    Ok(())
}

#[actix::test]
async fn a_panicking_child_is_restarted() {
    let runs = Rc::new(Cell::new(0u32));
    let counter = runs.clone();
    let factory: ChildFactory = Rc::new(move |cx| {
        counter.set(counter.get() + 1);
        let first = counter.get() == 1;
        Box::pin(async move {
            if first {
                panic!("boom in the listener");
            }
            stay_online(cx).await
        })
    });
    let (hub, seen) = collector();
    let _sup = AccountSupervisor::new(
        "t",
        vec![(ServiceKind::Imap, factory)],
        hub,
        Duration::from_secs(2),
        false,
    )
    .start();
    wait_until(&seen, "the panic reported", |s| {
        s.state == State::Error
            && s.error
                .as_deref()
                .is_some_and(|e| e.contains("boom in the listener"))
    })
    .await;
    wait_until(&seen, "online after restart", |s| s.state == State::Online).await;
    assert_eq!(runs.get(), 2, "exactly one restart");
}

#[actix::test]
async fn a_transient_failure_goes_offline_then_retries() {
    let runs = Rc::new(Cell::new(0u32));
    let counter = runs.clone();
    let factory: ChildFactory = Rc::new(move |cx| {
        counter.set(counter.get() + 1);
        let n = counter.get();
        Box::pin(async move {
            if n < 3 {
                return Err(ServiceError::transient("connection refused"));
            }
            stay_online(cx).await
        })
    });
    let (hub, seen) = collector();
    let _sup = AccountSupervisor::new(
        "t",
        vec![(ServiceKind::Imap, factory)],
        hub,
        Duration::from_secs(2),
        false,
    )
    .start();
    wait_until(&seen, "offline", |s| {
        s.state == State::Offline && s.error.as_deref() == Some("imap: connection refused")
    })
    .await;
    let took = wait_until(&seen, "online after two retries", |s| s.state == State::Online).await;
    // Two backoff delays: the first in [0.5 s, 1 s], the second in [1 s, 2 s].
    assert!(took >= Duration::from_millis(1400), "retried too fast: {took:?}");
    assert_eq!(runs.get(), 3);
}

#[actix::test]
async fn pause_closes_connections_within_a_second_and_resume_reconnects() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let factory: ChildFactory = Rc::new(move |cx| {
        Box::pin(async move {
            let _conn = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| ServiceError::transient(e.to_string()))?;
            stay_online(cx).await
        })
    });
    let (hub, seen) = collector();
    let sup = AccountSupervisor::new(
        "t",
        vec![(ServiceKind::Imap, factory)],
        hub,
        Duration::from_secs(2),
        false,
    )
    .start();
    let (mut server_side, _) = listener.accept().await.unwrap();
    wait_until(&seen, "online", |s| s.state == State::Online).await;

    sup.do_send(Pause);
    let paused_at = Instant::now();
    let mut byte = [0u8; 1];
    let n = tokio::time::timeout(
        Duration::from_secs(1),
        tokio::io::AsyncReadExt::read(&mut server_side, &mut byte),
    )
    .await
    .expect("the connection must close within 1 s of pause")
    .unwrap();
    assert_eq!(n, 0, "EOF expected");
    assert!(paused_at.elapsed() < Duration::from_secs(1));
    wait_until(&seen, "paused", |s| s.state == State::Paused).await;

    seen.lock().unwrap().clear();
    sup.do_send(Resume);
    let _again = tokio::time::timeout(Duration::from_secs(2), listener.accept())
        .await
        .expect("reconnect after resume")
        .unwrap();
    wait_until(&seen, "online after resume", |s| s.state == State::Online).await;
}

#[actix::test]
async fn sync_now_restarts_a_waiting_child_at_once() {
    let runs = Rc::new(Cell::new(0u32));
    let counter = runs.clone();
    let factory: ChildFactory = Rc::new(move |cx| {
        counter.set(counter.get() + 1);
        let n = counter.get();
        Box::pin(async move {
            if n == 1 {
                // An auth failure waits at least a minute before the next try.
                return Err(ServiceError::Auth("NO [AUTHENTICATIONFAILED]".into()));
            }
            stay_online(cx).await
        })
    });
    let (hub, seen) = collector();
    let sup = AccountSupervisor::new(
        "t",
        vec![(ServiceKind::Imap, factory)],
        hub,
        Duration::from_secs(2),
        false,
    )
    .start();
    wait_until(&seen, "error", |s| s.state == State::Error).await;
    sup.do_send(SyncNow);
    let took = wait_until(&seen, "online", |s| s.state == State::Online).await;
    assert!(
        took < Duration::from_secs(2),
        "sync now must not wait for the backoff: {took:?}"
    );
    assert_eq!(runs.get(), 2);
}
