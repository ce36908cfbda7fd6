//! Windows for duplicates on IMAP servers without UIDPLUS and MOVE (issue 19), on Dovecot with
//! both hidden from CAPABILITY: a delete does not expunge another client's `\Deleted` messages, a
//! move whose first try died between COPY and EXPUNGE does not copy twice, and an APPEND of a
//! message without Message-ID whose answer was lost is not stored twice.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use base64::Engine as _;
use opconnect_tests::config::render_config;
use opconnect_tests::{
    AccountSpec, Agent, AgentSettings, Dovecot, DovecotOptions, Fault, FaultProxy, Trigger,
};
use serde_json::{Value, json};

/// Dovecot's capabilities without UIDPLUS and MOVE (IDLE kept).
const WITHOUT_UIDPLUS_AND_MOVE: &str = "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT \
    SORT=DISPLAY THREAD=REFERENCES THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL \
    CATENATE UNSELECT CHILDREN NAMESPACE LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC \
    ESEARCH ESORT SEARCHRES WITHIN CONTEXT=SEARCH LIST-STATUS BINARY SNIPPET=FUZZY \
    PREVIEW=FUZZY PREVIEW STATUS=SIZE SAVEDATE LITERAL+ NOTIFY SPECIAL-USE ACL RIGHTS=texk";

fn dovecot() -> Result<Dovecot> {
    Dovecot::start_with(DovecotOptions {
        extra_config: format!("protocol imap {{\n  imap_capability = {WITHOUT_UIDPLUS_AND_MOVE}\n}}\n"),
        ..DovecotOptions::default()
    })
}

fn agent_on(imap_url: String) -> Result<Agent> {
    let mut spec = AccountSpec::for_user("alice");
    spec.imap = Some(imap_url);
    let config = render_config(&AgentSettings::default(), &[spec]).replacen(
        "[agent]\n",
        "[agent]\ncommand_timeout = \"3s\"\n",
        1,
    );
    let agent = Agent::start(&config)?;
    let status = agent.wait_for(Duration::from_secs(20), |s| {
        s["accounts"][0]["state"] == "online" && s["accounts"][0]["last_sync"].is_string()
    })?;
    let caps = status["accounts"][0]["services"]["imap"]["detail"]["capabilities"].to_string();
    ensure!(!caps.contains("UIDPLUS") && !caps.contains("\"MOVE\""), "{caps}");
    Ok(agent)
}

fn message(id: Option<&str>, subject: &str) -> Vec<u8> {
    let id = id.map(|i| format!("Message-ID: <{i}>\r\n")).unwrap_or_default();
    format!(
        "From: bob@localhost\r\nTo: alice@localhost\r\nSubject: {subject}\r\n{id}\r\nbody of {subject}\r\n"
    )
    .into_bytes()
}

fn uid_of(agent: &Agent, folder: &str, subject: &str) -> Result<u64> {
    let list = agent.call_until(
        "mail.messages",
        json!({"account": "alice", "folder": folder}),
        Duration::from_secs(10),
        |v| {
            v["messages"]
                .as_array()
                .is_some_and(|m| m.iter().any(|m| m["subject"] == subject))
        },
    )?;
    list["messages"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["subject"] == subject))
        .and_then(|m| m["uid"].as_u64())
        .with_context(|| format!("{subject} in {list}"))
}

fn pending(agent: &Agent) -> Result<Vec<Value>> {
    Ok(agent
        .call("ops", json!({"account": "alice"}))?
        .as_array()
        .cloned()
        .unwrap_or_default())
}

#[test]
fn a_delete_without_uidplus_leaves_other_clients_deleted_messages() -> Result<()> {
    let dovecot = dovecot()?;
    let mut probe = dovecot.probe("alice")?;
    probe.append("INBOX", &[], &message(Some("mine@x"), "mine"))?;
    probe.append("INBOX", &["\\Deleted"], &message(Some("theirs@x"), "theirs"))?;
    let agent = agent_on(dovecot.imap_url())?;
    let uid = uid_of(&agent, "INBOX", "mine")?;
    agent.call(
        "mail.delete",
        json!({"account": "alice", "folder": "INBOX", "uids": [uid], "wait": true}),
    )?;
    probe.select("INBOX")?;
    ensure!(
        probe.uid_search("HEADER Message-ID <mine@x>")?.is_empty(),
        "ours is gone"
    );
    let theirs = probe.uid_search("DELETED HEADER Message-ID <theirs@x>")?;
    ensure!(
        theirs.len() == 1,
        "theirs is still there, still \\Deleted: {theirs:?}"
    );
    Ok(())
}

#[test]
fn a_move_without_move_retried_after_the_copy_copies_once() -> Result<()> {
    let dovecot = dovecot()?;
    let mut probe = dovecot.probe("alice")?;
    probe.create("Archive")?;
    probe.append("INBOX", &[], &message(Some("moved@x"), "moved"))?;
    let proxy = FaultProxy::start(dovecot.imap_port())?;
    let agent = agent_on(proxy.url("imap", ""))?;
    let uid = uid_of(&agent, "INBOX", "moved")?;
    // The first try dies after its COPY, when it marks the original \Deleted.
    proxy.inject(Trigger::Sends("+FLAGS.SILENT (\\Deleted)".into()), Fault::Drop, 1);
    agent.call(
        "mail.move",
        json!({"account": "alice", "folder": "INBOX", "uids": [uid], "to": "Archive"}),
    )?;
    proxy.wait_fired(1, Duration::from_secs(20))?;
    agent.wait_for(Duration::from_secs(30), |_| {
        pending(&agent).is_ok_and(|p| p.is_empty())
    })?;
    probe.select("Archive")?;
    let copies = probe.uid_search("HEADER Message-ID <moved@x>")?;
    ensure!(copies.len() == 1, "one copy in Archive: {copies:?}");
    probe.select("INBOX")?;
    ensure!(
        probe.uid_search("HEADER Message-ID <moved@x>")?.is_empty(),
        "gone from INBOX"
    );
    Ok(())
}

#[test]
fn an_append_without_message_id_whose_answer_was_lost_is_stored_once() -> Result<()> {
    let dovecot = dovecot()?;
    let proxy = FaultProxy::start(dovecot.imap_port())?;
    let agent = agent_on(proxy.url("imap", ""))?;
    // Dovecot stores the message; its OK never comes back (the agent times out and retries).
    proxy.inject(Trigger::Sends("body of no-id".into()), Fault::LoseAnswer, 1);
    let raw = base64::engine::general_purpose::STANDARD.encode(message(None, "no-id"));
    agent.call(
        "mail.append",
        json!({"account": "alice", "folder": "INBOX", "raw": raw}),
    )?;
    proxy.wait_fired(1, Duration::from_secs(20))?;
    agent.wait_for(Duration::from_secs(30), |_| {
        pending(&agent).is_ok_and(|p| p.is_empty())
    })?;
    let mut probe = dovecot.probe("alice")?;
    probe.select("INBOX")?;
    let stored = probe.uid_search("SUBJECT no-id")?;
    ensure!(stored.len() == 1, "stored once: {stored:?}");
    Ok(())
}
