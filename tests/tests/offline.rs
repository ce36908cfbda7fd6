//! The offline journal against a private Dovecot, driven through `opconnect call`: writes are
//! confirmed by the server with `wait: true`, writes made while the server is down survive a
//! `kill -9` of the agent and reach the server exactly once, and an operation on messages that
//! were expunged elsewhere ends as moot.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use base64::Engine as _;
use opconnect_tests::config::render_config;
use opconnect_tests::{AccountSpec, Agent, AgentSettings, Dovecot};
use serde_json::{Value, json};

fn message(id: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: Alice <alice@localhost>\r\nTo: bob@localhost\r\nSubject: {subject}\r\n\
         Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{id}@localhost>\r\n\r\nBody of {id}\r\n"
    )
    .into_bytes()
}

fn b64(raw: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(raw)
}

fn synced_agent(dovecot: &Dovecot) -> Result<Agent> {
    let spec = AccountSpec::for_user("alice").imap_from(dovecot);
    let agent = Agent::start(&render_config(&AgentSettings::default(), &[spec]))?;
    agent.wait_for(Duration::from_secs(20), |s| {
        s["accounts"][0]["state"] == "online" && s["accounts"][0]["last_sync"].is_string()
    })?;
    Ok(agent)
}

fn uids_of(agent: &Agent, folder: &str) -> Result<Vec<u64>> {
    let answer = agent.call("mail.messages", json!({"account": "alice", "folder": folder}))?;
    Ok(answer["messages"]
        .as_array()
        .context("messages")?
        .iter()
        .filter_map(|m| m["uid"].as_u64())
        .collect())
}

#[test]
fn writes_are_confirmed_by_the_server_with_wait() -> Result<()> {
    let dovecot = Dovecot::start()?;
    for i in 0..4 {
        dovecot.append("alice", "INBOX", &message(&format!("w{i}"), &format!("w{i}")))?;
    }
    let agent = synced_agent(&dovecot)?;
    let uids = uids_of(&agent, "INBOX")?;
    ensure!(uids.len() == 4, "{uids:?}");
    let call = |method: &str, params: Value| agent.call(method, params);

    let answer = call(
        "mail.flag",
        json!({"account": "alice", "folder": "INBOX", "uids": [uids[0]], "add": ["\\Flagged", "$Work"], "wait": true}),
    )?;
    ensure!(answer["op"].as_u64().is_some(), "{answer}");
    call(
        "mail.folder.create",
        json!({"account": "alice", "path": "Projects", "wait": true}),
    )?;
    call(
        "mail.copy",
        json!({"account": "alice", "folder": "INBOX", "uids": [uids[1]], "to": "Projects", "wait": true}),
    )?;
    call(
        "mail.move",
        json!({"account": "alice", "folder": "INBOX", "uids": [uids[2]], "to": "Trash", "wait": true}),
    )?;
    call(
        "mail.delete",
        json!({"account": "alice", "folder": "INBOX", "uids": [uids[3]], "wait": true}),
    )?;
    call(
        "mail.append",
        json!({"account": "alice", "folder": "Projects", "raw": b64(&message("new", "appended")), "flags": ["\\Seen"], "wait": true}),
    )?;
    call(
        "mail.folder.create",
        json!({"account": "alice", "path": "Projects/2026", "wait": true}),
    )?;
    call(
        "mail.folder.rename",
        json!({"account": "alice", "path": "Projects", "to": "Clients", "wait": true}),
    )?;

    let mut probe = dovecot.probe("alice")?;
    probe.select("INBOX")?;
    let flags = probe.uid_fetch_flags(&uids[0].to_string())?;
    ensure!(
        flags[0].contains("\\Flagged") && flags[0].contains("$Work"),
        "{flags:?}"
    );
    ensure!(
        probe.uid_search("ALL")?.len() == 2,
        "move and delete left INBOX with two messages"
    );
    probe.select("Trash")?;
    ensure!(
        probe.uid_search("HEADER Message-ID <w2@localhost>")?.len() == 1,
        "moved to Trash"
    );
    let folders = probe.list()?.join("\n");
    ensure!(
        folders.contains("Clients/2026") && !folders.contains("\"Projects"),
        "rename took the subfolder: {folders}"
    );
    probe.select("Clients")?;
    ensure!(
        probe.uid_search("ALL")?.len() == 2,
        "copy and append landed, and moved with the rename"
    );
    ensure!(
        probe.uid_search("SEEN HEADER Message-ID <new@localhost>")?.len() == 1,
        "appended with \\Seen"
    );

    // The mirror follows: the renamed folder holds both messages, nothing is pending.
    let clients = uids_of(&agent, "Clients")?;
    ensure!(clients.len() == 2, "{clients:?}");
    let status = agent.status_json()?;
    assert_eq!(status["accounts"][0]["pending_ops"], 0, "{status}");
    assert_eq!(agent.call("ops", json!({}))?, json!([]));

    // Refused before journaling: bad params, unknown folder.
    let bad = agent.cli(&[
        "call",
        "mail.flag",
        r#"{"account":"alice","folder":"INBOX","uids":[1],"add":["no good"]}"#,
    ]);
    assert_eq!(bad.status.code(), Some(1));
    let gone = agent.cli(&[
        "call",
        "mail.delete",
        r#"{"account":"alice","folder":"Nope","uids":[1]}"#,
    ]);
    assert!(String::from_utf8_lossy(&gone.stderr).contains("Nope"), "{gone:?}");
    Ok(())
}

#[test]
fn offline_writes_survive_kill_9_and_land_exactly_once() -> Result<()> {
    let mut dovecot = Dovecot::start()?;
    let seeded = dovecot.seed_maildir(
        "alice",
        "INBOX",
        (0..60).map(|i| (message(&format!("s{i}"), &format!("seed {i}")), "")),
    )?;
    ensure!(seeded == 60);
    let mut agent = synced_agent(&dovecot)?;
    let uids = uids_of(&agent, "INBOX")?;
    ensure!(uids.len() == 60, "{}", uids.len());

    dovecot.stop();
    agent.wait_for_state("alice", "offline", Duration::from_secs(15))?;
    // 200 mixed writes while the server is down.
    let mut ops = 0;
    for (i, uid) in uids.iter().take(40).enumerate() {
        agent.call(
            "mail.flag",
            json!({"account": "alice", "folder": "INBOX", "uids": [uid], "add": ["\\Seen"]}),
        )?;
        if i % 2 == 0 {
            agent.call(
                "mail.flag",
                json!({"account": "alice", "folder": "INBOX", "uids": [uid], "add": ["$Done"]}),
            )?;
            ops += 1;
        }
        ops += 1;
    }
    for uid in &uids[40..50] {
        agent.call(
            "mail.delete",
            json!({"account": "alice", "folder": "INBOX", "uids": [uid]}),
        )?;
        ops += 1;
    }
    agent.call(
        "mail.folder.create",
        json!({"account": "alice", "path": "Offline"}),
    )?;
    ops += 1;
    for uid in &uids[50..55] {
        agent.call(
            "mail.move",
            json!({"account": "alice", "folder": "INBOX", "uids": [uid], "to": "Offline"}),
        )?;
        ops += 1;
    }
    let mut i = 0;
    while ops < 200 {
        agent.call("mail.append", json!({"account": "alice", "folder": "Offline", "raw": b64(&message(&format!("off{i}"), "offline"))}))?;
        ops += 1;
        i += 1;
    }
    let appended = i;
    // Reads show the writes at once, offline.
    let mirror = agent.call("mail.messages", json!({"account": "alice", "folder": "INBOX"}))?;
    let list = mirror["messages"].as_array().context("messages")?;
    ensure!(
        list.len() == 45,
        "10 deleted and 5 moved away in the mirror: {}",
        list.len()
    );
    ensure!(list[0]["flags"].as_array().unwrap().contains(&json!("$Done")));
    let status = agent.status_json()?;
    assert_eq!(status["accounts"][0]["pending_ops"], 200, "{status}");
    assert_eq!(
        agent
            .call("ops", json!({"account": "alice"}))?
            .as_array()
            .map(Vec::len),
        Some(200)
    );

    agent.kill();
    dovecot.start_again()?;
    agent.restart()?;
    let began = Instant::now();
    agent.wait_for(Duration::from_secs(60), |s| s["accounts"][0]["pending_ops"] == 0)?;
    eprintln!("200 operations replayed in {:?}", began.elapsed());

    let mut probe = dovecot.probe("alice")?;
    probe.select("INBOX")?;
    ensure!(probe.uid_search("ALL")?.len() == 45);
    ensure!(probe.uid_search("SEEN")?.len() == 40);
    ensure!(probe.uid_search("KEYWORD $Done")?.len() == 20);
    probe.select("Offline")?;
    ensure!(
        probe.uid_search("ALL")?.len() == 5 + appended,
        "moves and appends landed once each"
    );
    for k in 0..appended {
        let found = probe.uid_search(&format!("HEADER Message-ID <off{k}@localhost>"))?;
        ensure!(found.len() == 1, "append off{k} is there {} times", found.len());
    }
    Ok(())
}

#[test]
fn an_operation_on_messages_expunged_elsewhere_is_moot() -> Result<()> {
    let mut dovecot = Dovecot::start()?;
    dovecot.append("alice", "INBOX", &message("gone", "soon gone"))?;
    let agent = synced_agent(&dovecot)?;
    let uid = uids_of(&agent, "INBOX")?[0];
    dovecot.stop();
    agent.wait_for_state("alice", "offline", Duration::from_secs(15))?;
    agent.call(
        "mail.flag",
        json!({"account": "alice", "folder": "INBOX", "uids": [uid], "add": ["\\Flagged"]}),
    )?;
    dovecot.start_again()?;
    // Another client expunges the message before the agent is back.
    let mut probe = dovecot.probe("alice")?;
    probe.select("INBOX")?;
    probe.uid_store(&uid.to_string(), "+FLAGS (\\Deleted)")?;
    probe.expunge()?;
    let mut events = agent.watch(&["op"])?;
    agent.cli_ok(&["sync"])?;
    let done = events.wait_topic("op.done", Duration::from_secs(15))?;
    assert_eq!(done["moot"], true, "{done}");
    agent.wait_for(Duration::from_secs(5), |s| s["accounts"][0]["pending_ops"] == 0)?;
    Ok(())
}
