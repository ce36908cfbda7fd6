//! Mail over IMAP against a private Dovecot, driven through `opconnect call` and `opconnect watch`:
//! folders with their namespaces, the message mirror, IDLE and NOOP notifications, flags and
//! expunges from elsewhere, UIDVALIDITY resets, bodies on demand, bad messages, IMAPS trust.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use opconnect_tests::config::render_config;
use opconnect_tests::{AccountSpec, Agent, AgentSettings, Dovecot, DovecotOptions};
use serde_json::{Value, json};

fn message(i: usize, subject: &str) -> Vec<u8> {
    format!(
        "From: Bob <bob@localhost>\r\nTo: alice@localhost\r\nSubject: {subject}\r\n\
         Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <m{i}@localhost>\r\n\r\nBody {i}\r\n"
    )
    .into_bytes()
}

fn agent_for(dovecot: &Dovecot, settings: AgentSettings) -> Result<Agent> {
    let spec = AccountSpec::for_user("alice").imap_from(dovecot);
    let agent = Agent::start(&render_config(&settings, &[spec]))?;
    // `online` means logged in; `last_sync` appears once folders are discovered and synced.
    agent.wait_for(Duration::from_secs(20), |s| {
        s["accounts"][0]["state"] == "online" && s["accounts"][0]["last_sync"].is_string()
    })?;
    Ok(agent)
}

/// Waits until `mail.messages` of `folder` satisfies `pred`.
fn wait_messages(
    agent: &Agent,
    folder: &str,
    timeout: Duration,
    pred: impl Fn(&[Value]) -> bool,
) -> Result<Vec<Value>> {
    let deadline = Instant::now() + timeout;
    loop {
        let answer = agent.call("mail.messages", json!({"account": "alice", "folder": folder}));
        if let Ok(answer) = &answer {
            let list = answer["messages"].as_array().cloned().unwrap_or_default();
            if pred(&list) {
                return Ok(list);
            }
            if Instant::now() > deadline {
                anyhow::bail!("mail.messages of {folder} never matched: {} messages", list.len());
            }
        } else if Instant::now() > deadline {
            return answer.map(|_| Vec::new());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn folders_are_listed_with_namespaces_and_special_use() -> Result<()> {
    let dovecot = Dovecot::start()?;
    dovecot.set_acl("bob", "INBOX", "user=alice", &["lookup", "read"])?;
    dovecot.create_public_folder("Team")?;
    let agent = agent_for(&dovecot, AgentSettings::default())?;
    let folders = agent.call("mail.folders", json!({"account": "alice"}))?;
    let find = |path: &str| {
        folders
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == path)
            .cloned()
    };
    let inbox = find("INBOX").context("INBOX listed")?;
    assert_eq!(inbox["namespace"], "personal");
    assert_eq!(inbox["delimiter"], "/");
    assert_eq!(find("Sent").context("Sent")?["special_use"], "\\Sent");
    assert_eq!(find("Trash").context("Trash")?["special_use"], "\\Trash");
    assert_eq!(
        find("shared/bob").context("bob's shared INBOX")?["namespace"],
        "other",
        "{folders}"
    );
    assert_eq!(
        find("Public/Team").context("public folder")?["namespace"],
        "shared",
        "{folders}"
    );
    let e = agent.cli(&["call", "mail.folders", r#"{"account":"nobody"}"#]);
    assert_eq!(e.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&e.stderr).contains("nobody"));
    Ok(())
}

#[test]
fn initial_sync_of_5000_messages_matches_the_server() -> Result<()> {
    let dovecot = Dovecot::start()?;
    let seeded = dovecot.seed_maildir(
        "alice",
        "Big",
        (0..5000).map(|i| (message(i, &format!("big {i}")), if i % 3 == 0 { "S" } else { "" })),
    )?;
    assert_eq!(seeded, 5000);
    let mut probe = dovecot.probe("alice")?;
    let server_uids = {
        probe.select("Big")?;
        let mut uids = probe.uid_search("ALL")?;
        uids.sort_unstable();
        uids
    };
    let began = Instant::now();
    let agent = agent_for(&dovecot, AgentSettings::default())?;
    let list = wait_messages(&agent, "Big", Duration::from_secs(60), |l| l.len() == 5000)?;
    eprintln!("5000 messages mirrored {:?} after start", began.elapsed());
    let uids: Vec<u64> = list.iter().map(|m| m["uid"].as_u64().unwrap()).collect();
    assert_eq!(uids, server_uids.iter().map(|u| *u as u64).collect::<Vec<_>>());
    assert_eq!(list[7]["subject"], "big 7");
    assert_eq!(list[7]["message_id"], "<m7@localhost>");
    assert_eq!(list[7]["from"], "Bob <bob@localhost>");
    assert_eq!(list[0]["flags"], json!(["\\Seen"]));
    let folders = agent.call("mail.folders", json!({"account": "alice"}))?;
    let big = folders
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "Big")
        .unwrap();
    assert_eq!(
        (big["total"].as_u64(), big["unseen"].as_u64()),
        (Some(5000), Some(3333))
    );
    // Paging.
    let page = agent.call(
        "mail.messages",
        json!({"account": "alice", "folder": "Big", "after_uid": 100, "limit": 10}),
    )?;
    assert_eq!(page["messages"].as_array().unwrap().len(), 10);
    assert_eq!(page["messages"][0]["uid"], 101);
    Ok(())
}

#[test]
fn new_mail_with_idle_arrives_within_two_seconds() -> Result<()> {
    let dovecot = Dovecot::start()?;
    let agent = agent_for(
        &dovecot,
        AgentSettings {
            noop_interval: "30s".into(),
            ..AgentSettings::default()
        },
    )?;
    let status = agent.status_json()?;
    assert_eq!(
        status["accounts"][0]["services"]["imap"]["detail"]["notifications"], "idle",
        "{status}"
    );
    let mut events = agent.watch(&["mail.new"])?;
    std::thread::sleep(Duration::from_millis(300));
    let sent = Instant::now();
    dovecot.append("alice", "INBOX", &message(1, "hello via IDLE"))?;
    let event = events.wait_topic("mail.new", Duration::from_secs(2))?;
    eprintln!("mail.new after {:?}: {event}", sent.elapsed());
    assert_eq!(event["folder"], "INBOX");
    assert_eq!(event["account"], "alice");
    assert_eq!(event["count"], 1);
    let list = wait_messages(&agent, "INBOX", Duration::from_secs(1), |l| l.len() == 1)?;
    assert_eq!(list[0]["subject"], "hello via IDLE");
    Ok(())
}

#[test]
fn new_mail_without_idle_arrives_within_the_noop_interval() -> Result<()> {
    let dovecot = Dovecot::start_with(DovecotOptions {
        hide_idle: true,
        ..Default::default()
    })?;
    let agent = agent_for(
        &dovecot,
        AgentSettings {
            noop_interval: "3s".into(),
            ..AgentSettings::default()
        },
    )?;
    let status = agent.status_json()?;
    assert_eq!(
        status["accounts"][0]["services"]["imap"]["detail"]["notifications"], "noop",
        "{status}"
    );
    let mut events = agent.watch(&["mail.new"])?;
    std::thread::sleep(Duration::from_millis(300));
    let sent = Instant::now();
    dovecot.append("alice", "INBOX", &message(2, "hello via NOOP"))?;
    let event = events.wait_topic("mail.new", Duration::from_secs(3 + 2))?;
    eprintln!("mail.new after {:?} (NOOP every 3 s)", sent.elapsed());
    assert_eq!(event["folder"], "INBOX");
    Ok(())
}

#[test]
fn flags_and_expunges_from_elsewhere_reach_the_mirror() -> Result<()> {
    let dovecot = Dovecot::start()?;
    for i in 0..3 {
        dovecot.append("alice", "INBOX", &message(i, &format!("m{i}")))?;
    }
    let agent = agent_for(&dovecot, AgentSettings::default())?;
    let list = wait_messages(&agent, "INBOX", Duration::from_secs(5), |l| l.len() == 3)?;
    let first = list[0]["uid"].as_u64().unwrap();
    let mut events = agent.watch(&["mail.changed"])?;
    std::thread::sleep(Duration::from_millis(300));
    let mut probe = dovecot.probe("alice")?;
    probe.select("INBOX")?;
    probe.uid_store(&first.to_string(), "+FLAGS (\\Flagged $Important)")?;
    let event = events.wait_topic("mail.changed", Duration::from_secs(3))?;
    assert_eq!(event["changed"], 1, "{event}");
    let list = wait_messages(&agent, "INBOX", Duration::from_secs(2), |l| {
        l[0]["flags"]
            .as_array()
            .is_some_and(|f| f.contains(&json!("\\Flagged")) && f.contains(&json!("$Important")))
    })?;
    assert_eq!(list.len(), 3);

    probe.uid_store(&first.to_string(), "+FLAGS (\\Deleted)")?;
    probe.expunge()?;
    let event = events.wait_for(Duration::from_secs(3), |e| e["expunged"] == 1)?;
    eprintln!("expunge seen: {event}");
    let list = wait_messages(&agent, "INBOX", Duration::from_secs(2), |l| l.len() == 2)?;
    ensure!(list.iter().all(|m| m["uid"].as_u64() != Some(first)));
    Ok(())
}

#[test]
fn a_uidvalidity_change_rebuilds_the_folder() -> Result<()> {
    let dovecot = Dovecot::start()?;
    let mut probe = dovecot.probe("alice")?;
    probe.create("Work")?;
    for i in 0..4 {
        probe.append("Work", &[], &message(i, &format!("w{i}")))?;
    }
    let agent = agent_for(&dovecot, AgentSettings::default())?;
    // `online` comes before the first sync ends: wait for the mirror.
    wait_messages(&agent, "Work", Duration::from_secs(5), |l| l.len() == 4)?;
    let before = agent.call("mail.messages", json!({"account": "alice", "folder": "Work"}))?;
    // Recreate the folder: same name, new UIDVALIDITY, different messages.
    probe.command("DELETE Work")?;
    probe.create("Work")?;
    probe.append("Work", &[], &message(9, "after reset"))?;
    let mut events = agent.watch(&["mail.changed"])?;
    agent.cli_ok(&["sync"])?;
    let event = events.wait_for(Duration::from_secs(5), |e| e["reset"] == true)?;
    assert_eq!(event["folder"], "Work");
    let after = agent.call("mail.messages", json!({"account": "alice", "folder": "Work"}))?;
    assert_ne!(after["uidvalidity"], before["uidvalidity"], "{after}");
    let list = after["messages"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{after}");
    assert_eq!(list[0]["subject"], "after reset");
    Ok(())
}

#[test]
fn bodies_are_fetched_on_demand_and_bad_messages_do_not_stop_the_sync() -> Result<()> {
    let dovecot = Dovecot::start()?;
    let good = message(1, "plain");
    let broken = b"Subject: =?x-unknown?Q?=ZZ?= \xff\xfe\r\nFrom: <<<@@@>>>\r\nDate: yesterday-ish\r\n\r\nno headers to speak of\r\n".to_vec();
    let mut big = message(3, "huge").to_vec();
    big.extend(std::iter::repeat_n(b'x', 30 << 20));
    big.extend_from_slice(b"\r\n");
    dovecot.append("alice", "INBOX", &broken)?;
    dovecot.append("alice", "INBOX", &big)?;
    dovecot.append("alice", "INBOX", &good)?;
    let agent = agent_for(&dovecot, AgentSettings::default())?;
    let list = wait_messages(&agent, "INBOX", Duration::from_secs(10), |l| l.len() == 3)?;
    assert_eq!(list[2]["subject"], "plain");
    assert!(list[1]["size"].as_u64().unwrap() > 30 << 20);
    let uid = list[2]["uid"].as_u64().unwrap();
    let fetched = agent.call(
        "mail.fetch",
        json!({"account": "alice", "folder": "INBOX", "uid": uid}),
    )?;
    let raw = base64_decode(fetched["raw"].as_str().context("raw")?);
    assert_eq!(raw, good, "the body comes back byte for byte");
    // A message too large for one IPC frame is refused whole with a hint, and read in parts.
    let big_uid = list[1]["uid"].as_u64().unwrap();
    let whole = agent.cli(&[
        "call",
        "mail.fetch",
        &json!({"account": "alice", "folder": "INBOX", "uid": big_uid}).to_string(),
    ]);
    assert_eq!(whole.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&whole.stderr).contains("offset"),
        "{whole:?}"
    );
    let mut assembled = Vec::new();
    while assembled.len() < big.len() {
        let part = agent.call(
            "mail.fetch",
            json!({"account": "alice", "folder": "INBOX", "uid": big_uid, "offset": assembled.len(), "length": 8 << 20}),
        )?;
        assert_eq!(part["size"].as_u64(), Some(big.len() as u64));
        assembled.extend(base64_decode(part["raw"].as_str().unwrap()));
    }
    assert!(assembled == big, "the parts add up to the message");
    let missing = agent.cli(&[
        "call",
        "mail.fetch",
        r#"{"account":"alice","folder":"INBOX","uid":999}"#,
    ]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("999"),
        "{missing:?}"
    );
    Ok(())
}

#[test]
fn watched_folders_beyond_the_budget_are_polled() -> Result<()> {
    let dovecot = Dovecot::start()?;
    let mut probe = dovecot.probe("alice")?;
    probe.create("Work")?;
    probe.create("Lists")?;
    // Two connections: one syncs, one listens on INBOX; watched folders are polled every 2 s.
    let settings = AgentSettings {
        imap_connections: Some(2),
        noop_interval: "2s".into(),
        ..AgentSettings::default()
    };
    let agent = agent_for(&dovecot, settings)?;
    agent.call("mail.watch", json!({"account": "alice", "folder": "Work"}))?;
    let mut events = agent.watch(&["mail.new"])?;
    std::thread::sleep(Duration::from_millis(300));
    dovecot.append("alice", "Work", &message(5, "into Work"))?;
    let event = events.wait_for(Duration::from_secs(2 + 2), |e| e["folder"] == "Work")?;
    assert_eq!(event["count"], 1);
    let conns = agent.connections_to(dovecot.imap_port())?;
    assert!(conns.len() <= 2, "connection budget exceeded: {conns:?}");
    Ok(())
}

#[test]
fn a_watched_folder_gets_its_own_listener() -> Result<()> {
    let dovecot = Dovecot::start()?;
    dovecot.probe("alice")?.create("Work")?;
    let agent = agent_for(
        &dovecot,
        AgentSettings {
            noop_interval: "60s".into(),
            ..AgentSettings::default()
        },
    )?;
    // Online comes before the listeners connect: wait for sync + INBOX listener.
    wait_connections(&agent, &dovecot, 2)?;
    agent.call("mail.watch", json!({"account": "alice", "folder": "Work"}))?;
    let mut events = agent.watch(&["mail.new"])?;
    wait_connections(&agent, &dovecot, 3)?;
    dovecot.append("alice", "Work", &message(6, "watched"))?;
    let event = events.wait_for(Duration::from_secs(2), |e| e["folder"] == "Work")?;
    assert_eq!(event["count"], 1);
    agent.call("mail.unwatch", json!({"account": "alice", "folder": "Work"}))?;
    wait_connections(&agent, &dovecot, 2)?;
    Ok(())
}

#[test]
fn imaps_needs_the_private_ca() -> Result<()> {
    let dovecot = Dovecot::start_with(DovecotOptions {
        tls: true,
        ..Default::default()
    })?;
    let trusted = AccountSpec::for_user("alice").imaps_from(&dovecot);
    assert!(trusted.tls_ca.is_some(), "imaps_from sets the test CA");
    let agent = Agent::start(&render_config(
        &AgentSettings::default(),
        std::slice::from_ref(&trusted),
    ))?;
    let status = agent.wait_for_state("alice", "online", Duration::from_secs(10))?;
    assert_eq!(
        status["accounts"][0]["services"]["imap"]["detail"]["encrypted"],
        true
    );
    drop(agent);

    let untrusted = AccountSpec {
        tls_ca: None,
        ..trusted
    };
    let agent = Agent::start(&render_config(&AgentSettings::default(), &[untrusted]))?;
    let status = agent.wait_for_state("alice", "error", Duration::from_secs(10))?;
    let error = status["accounts"][0]["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        error.contains("tls_ca") && error.contains("certificate"),
        "{error}"
    );
    Ok(())
}

/// Waits until the agent holds exactly `n` connections to Dovecot's IMAP port.
fn wait_connections(agent: &Agent, dovecot: &Dovecot, n: usize) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let conns = agent.connections_to(dovecot.imap_port())?;
        if conns.len() == n {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "expected {n} IMAP connections, have {conns:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("valid base64")
}
