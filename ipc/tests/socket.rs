//! The server and client over a real Unix socket: calls, framing errors, events.
#![cfg(unix)]

mod common;

use std::sync::atomic::Ordering;

use common::{Harness, assert_closed, error_of, next_answer, send_raw, within};
use opconnect_ipc::frame;
use opconnect_ipc::rpc::Response;
use opconnect_ipc::{ClientError, Event, RpcError, code};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn call_and_answer() {
    let h = Harness::start().await;
    let mut c = h.client().await;
    assert_eq!(
        c.call("echo", json!({"a": [1, 2]})).await.unwrap(),
        json!({"a": [1, 2]})
    );
    assert_eq!(c.call("echo", json!({})).await.unwrap(), json!({}));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients() {
    let h = Harness::start().await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let mut c = h.client().await;
        tasks.push(tokio::spawn(async move {
            for j in 0..25 {
                let v = json!({ "client": i, "call": j });
                assert_eq!(c.call("echo", v.clone()).await.unwrap(), v);
            }
        }));
    }
    for t in tasks {
        within(t).await.unwrap();
    }
    h.stop().await;
}

#[tokio::test]
async fn requests_on_one_connection_are_answered_concurrently() {
    let h = Harness::start().await;
    let (mut rd, mut wr) = h.raw().await;
    send_raw(
        &mut wr,
        json!({"jsonrpc":"2.0","id":1,"method":"sleep","params":{"ms":300}}),
    )
    .await;
    send_raw(
        &mut wr,
        json!({"jsonrpc":"2.0","id":"two","method":"echo","params":{"x":2}}),
    )
    .await;
    let first = next_answer(&mut rd).await;
    assert_eq!(first, Response::result(json!("two"), json!({"x": 2})));
    let second = next_answer(&mut rd).await;
    assert_eq!(second, Response::result(json!(1), json!({"slept": 300})));
    h.stop().await;
}

#[tokio::test]
async fn oversize_frame_is_refused_and_closed_without_disturbing_others() {
    let h = Harness::start().await;
    let mut other = h.client().await;
    let (mut rd, mut wr) = h.raw().await;
    const LEN: usize = 20 * 1024 * 1024;
    let writer = tokio::spawn(async move {
        wr.write_all(&(LEN as u32).to_be_bytes()).await?;
        let chunk = vec![b' '; 1024 * 1024];
        for _ in 0..20 {
            wr.write_all(&chunk).await?;
        }
        wr.flush().await
    });
    let err = error_of(next_answer(&mut rd).await);
    assert_eq!(err.code, code::INVALID_REQUEST);
    assert!(
        err.message.contains("20971520") && err.message.contains("16777216"),
        "{}",
        err.message
    );
    assert_closed(&mut rd).await;
    // The server never read the 20 MiB body: our writes hit a closed socket.
    assert!(within(writer).await.unwrap().is_err());
    assert_eq!(other.call("echo", json!([1])).await.unwrap(), json!([1]));
    h.stop().await;
}

#[tokio::test]
async fn garbage_closes_only_that_connection() {
    let h = Harness::start().await;
    let mut other = h.client().await;
    // A client stuck half-way through a frame must not hold anyone up either.
    let (_stuck_rd, mut stuck_wr) = h.raw().await;
    stuck_wr.write_all(&[0, 0, 0, 100, b'{']).await.unwrap();

    let (mut rd, mut wr) = h.raw().await;
    let mut garbage = vec![0, 0, 0, 8, 0xff, 0xfe, 0xfd, b'{', b'{', b'{', b'{', b'{'];
    garbage.extend((0..4000u32).map(|i| (i * 7919 % 251) as u8));
    let _ = wr.write_all(&garbage).await;
    let err = error_of(next_answer(&mut rd).await);
    assert_eq!(err.code, code::PARSE_ERROR);
    assert!(err.message.contains("UTF-8"), "{}", err.message);
    assert_closed(&mut rd).await;

    let (mut rd, mut wr) = h.raw().await;
    wr.write_all(&frame::encode(b"hello, agent").unwrap())
        .await
        .unwrap();
    assert_eq!(error_of(next_answer(&mut rd).await).code, code::PARSE_ERROR);
    assert_closed(&mut rd).await;

    assert_eq!(
        other.call("echo", json!(["still here"])).await.unwrap(),
        json!(["still here"])
    );
    h.stop().await;
}

#[tokio::test]
async fn invalid_request_is_answered_and_the_connection_kept() {
    let h = Harness::start().await;
    let (mut rd, mut wr) = h.raw().await;
    send_raw(&mut wr, json!([1, 2, 3])).await;
    assert_eq!(
        next_answer(&mut rd).await,
        Response::error(
            Value::Null,
            RpcError::invalid_request("batch requests are not supported")
        )
    );
    send_raw(&mut wr, json!({"jsonrpc":"2.0","id":5,"method":7})).await;
    let answer = next_answer(&mut rd).await;
    assert_eq!(
        (answer.id.clone(), error_of(answer).code),
        (json!(5), code::INVALID_REQUEST)
    );
    send_raw(
        &mut wr,
        json!({"jsonrpc":"2.0","id":6,"method":"echo","params":{"ok":true}}),
    )
    .await;
    assert_eq!(
        next_answer(&mut rd).await,
        Response::result(json!(6), json!({"ok": true}))
    );
    h.stop().await;
}

#[tokio::test]
async fn notifications_get_no_answer() {
    let h = Harness::start().await;
    let (mut rd, mut wr) = h.raw().await;
    send_raw(&mut wr, json!({"jsonrpc":"2.0","method":"count","params":{}})).await;
    send_raw(&mut wr, json!({"jsonrpc":"2.0","method":"no.such.method"})).await;
    send_raw(
        &mut wr,
        json!({"jsonrpc":"2.0","id":null,"method":"echo","params":[1]}),
    )
    .await;
    // The first thing back is the answer to the request with `"id": null`.
    assert_eq!(
        next_answer(&mut rd).await,
        Response::result(Value::Null, json!([1]))
    );
    assert_eq!(h.service.notified.load(Ordering::SeqCst), 1);
    let mut c = h.client().await;
    c.notify("count", json!({})).await.unwrap();
    assert_eq!(c.call("echo", json!([1])).await.unwrap(), json!([1]));
    assert_eq!(h.service.notified.load(Ordering::SeqCst), 2);
    h.stop().await;
}

#[tokio::test]
async fn errors_pass_through_from_the_service() {
    let h = Harness::start().await;
    let mut c = h.client().await;
    match c.call("no.such.method", json!({})).await {
        Err(ClientError::Rpc(e)) => assert_eq!(
            (e.code, e.message.as_str()),
            (code::METHOD_NOT_FOUND, "unknown method 'no.such.method'")
        ),
        other => panic!("{other:?}"),
    }
    match c.call("fail", json!({})).await {
        Err(ClientError::Rpc(e)) => assert_eq!(e.code, code::UNKNOWN_ACCOUNT),
        other => panic!("{other:?}"),
    }
    match c.call("panic", json!({})).await {
        Err(ClientError::Rpc(e)) => assert_eq!(e.code, code::INTERNAL_ERROR),
        other => panic!("{other:?}"),
    }
    // JSON-RPC 2.0 §4.2: params are an object or an array.
    match c.call("echo", json!("scalar")).await {
        Err(ClientError::Rpc(e)) => assert_eq!(e.code, code::INVALID_REQUEST),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.call("echo", json!(["after"])).await.unwrap(), json!(["after"]));
    h.stop().await;
}

#[tokio::test]
async fn subscribe_filters_topics() {
    let h = Harness::start().await;
    let mut sub = h.client().await;
    sub.subscribe(&["mail".into(), "op.done".into()]).await.unwrap();
    let mut emitter = h.client().await;
    for (n, topic) in ["state", "mail.new", "mailbox", "op.failed", "mail", "op.done"]
        .iter()
        .enumerate()
    {
        emitter
            .call("emit", json!({"topic": topic, "n": n}))
            .await
            .unwrap();
    }
    let got: Vec<String> = [
        within(sub.next_event()).await,
        within(sub.next_event()).await,
        within(sub.next_event()).await,
    ]
    .into_iter()
    .map(|e| e.unwrap().topic)
    .collect();
    assert_eq!(got, ["mail.new", "mail", "op.done"]);

    // Subscribing again replaces the topics.
    sub.subscribe(&["state".into()]).await.unwrap();
    emitter
        .call("emit", json!({"topic": "mail.new", "n": 10}))
        .await
        .unwrap();
    emitter
        .call("emit", json!({"topic": "state", "n": 11}))
        .await
        .unwrap();
    let e = within(sub.next_event()).await.unwrap();
    assert_eq!((e.topic.as_str(), &e.data["n"]), ("state", &json!(11)));

    match sub.call("subscribe", json!({"topics": "mail"})).await {
        Err(ClientError::Rpc(e)) => assert_eq!(e.code, code::INVALID_PARAMS),
        other => panic!("{other:?}"),
    }
    h.stop().await;
}

#[tokio::test]
async fn events_interleave_with_answers() {
    let h = Harness::start().await;
    let mut c = h.client().await;
    c.subscribe(&[]).await.unwrap();
    // The event is pushed on this connection while the call's answer is on its way.
    c.call("emit", json!({"topic": "conflict", "n": 1}))
        .await
        .unwrap();
    assert_eq!(c.call("echo", json!([2])).await.unwrap(), json!([2]));
    let e = within(c.next_event()).await.unwrap();
    assert_eq!((e.topic.as_str(), &e.data["n"]), ("conflict", &json!(1)));
    h.stop().await;
}

#[tokio::test]
async fn a_lagging_subscriber_keeps_its_connection() {
    let h = Harness::start_with(4).await;
    let mut c = h.client().await;
    c.subscribe(&[]).await.unwrap();
    // Current-thread runtime: the forwarder cannot run during this loop, so it must lag.
    for n in 0..100 {
        h.service.events.send(Event::new("state").with("n", n)).unwrap();
    }
    // It is told what it missed, then gets what was kept.
    let told = within(c.next_event()).await.unwrap();
    assert_eq!(told.topic, opconnect_ipc::LAGGED_TOPIC, "{told:?}");
    assert_eq!(told.data["missed"], json!(96), "{told:?}");
    let first = within(c.next_event()).await.unwrap();
    assert!(first.data["n"].as_u64().unwrap() >= 96, "{first:?}");
    assert_eq!(c.call("echo", json!(["alive"])).await.unwrap(), json!(["alive"]));
    h.stop().await;
}
