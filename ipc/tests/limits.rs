//! What one local process can cost the agent: a half-sent frame is closed after a while, the
//! number of connections is capped, and the CLI's client gives up on an agent that does not
//! answer, with a clear message.

mod common;

use std::time::{Duration, Instant};

use common::{Harness, assert_closed, next_answer, send_raw, within};
use opconnect_ipc::server::MAX_CONNECTIONS;
use opconnect_ipc::{ClientError, frame};
use serde_json::json;
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn a_half_sent_frame_is_closed_after_the_idle_timeout() {
    let h = Harness::start().await;
    let (mut rd, mut wr) = h.raw().await;
    // A header announcing 1 MiB, then a few bytes, then nothing.
    wr.write_all(&(1u32 << 20).to_be_bytes()).await.unwrap();
    wr.write_all(b"{\"jsonrpc\"").await.unwrap();
    let began = Instant::now();
    match tokio::time::timeout(Duration::from_secs(30), rd.next()).await {
        Ok(Ok(None) | Err(_)) => {}
        other => panic!("expected the connection closed, got {other:?}"),
    }
    let took = began.elapsed();
    assert!(
        (Duration::from_secs(8)..Duration::from_secs(20)).contains(&took),
        "closed after {took:?}"
    );
    // Others are served meanwhile and after.
    let mut c = h.client().await;
    assert_eq!(c.call("echo", json!({"ok": 1})).await.unwrap(), json!({"ok": 1}));
    h.stop().await;
}

#[tokio::test]
async fn a_frame_sent_slowly_but_completely_is_answered() {
    let h = Harness::start().await;
    let (mut rd, mut wr) = h.raw().await;
    let body =
        serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": 7, "method": "echo", "params": {}})).unwrap();
    let framed = frame::encode(&body).unwrap();
    for part in framed.chunks(8) {
        wr.write_all(part).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(next_answer(&mut rd).await.id, json!(7));
    h.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_limit_are_closed_at_once() {
    let h = Harness::start().await;
    let mut open = Vec::new();
    for n in 0..MAX_CONNECTIONS {
        let (mut rd, mut wr) = h.raw().await;
        send_raw(
            &mut wr,
            json!({"jsonrpc": "2.0", "id": n, "method": "echo", "params": {}}),
        )
        .await;
        assert_eq!(next_answer(&mut rd).await.id, json!(n));
        open.push((rd, wr));
    }
    let (mut rd, _wr) = h.raw().await;
    assert_closed(&mut rd).await;
    // One leaves; a newcomer is served again.
    drop(open.pop());
    let began = Instant::now();
    loop {
        let (mut rd, mut wr) = h.raw().await;
        send_raw(
            &mut wr,
            json!({"jsonrpc": "2.0", "id": "again", "method": "echo", "params": {}}),
        )
        .await;
        if let Ok(Ok(Some(_))) = tokio::time::timeout(Duration::from_secs(2), rd.next()).await {
            break;
        }
        assert!(began.elapsed() < Duration::from_secs(10), "never served again");
    }
    drop(open);
    h.stop().await;
}

#[tokio::test]
async fn the_client_gives_up_with_a_clear_message() {
    let h = Harness::start().await;
    let mut c = h.client().await;
    c.set_timeout(Some(Duration::from_millis(300)));
    let err = within(c.call("sleep", json!({"ms": 5000}))).await.unwrap_err();
    assert!(matches!(err, ClientError::TimedOut { .. }), "{err:?}");
    assert!(err.to_string().contains("did not answer `sleep` within"), "{err}");
    h.stop().await;
}
