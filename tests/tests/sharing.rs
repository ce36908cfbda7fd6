//! Sharing with IMAP ACL (RFC 4314) and public folders, against Dovecot with the acl plugin:
//! alice shares a folder with bob through her agent, bob's agent lists and syncs it with his
//! rights and refuses his write before journaling it; a public folder is listed and synced.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use opconnect_tests::config::render_config;
use opconnect_tests::{AccountSpec, Agent, AgentSettings, Dovecot};
use serde_json::{Value, json};

fn message(id: &str) -> Vec<u8> {
    format!("From: alice@localhost\r\nTo: team@localhost\r\nSubject: {id}\r\nMessage-ID: <{id}@localhost>\r\n\r\n{id}\r\n")
        .into_bytes()
}

fn agent_for(dovecot: &Dovecot, user: &str) -> Result<Agent> {
    let spec = AccountSpec::for_user(user).imap_from(dovecot);
    let agent = Agent::start(&render_config(&AgentSettings::default(), &[spec]))?;
    agent.wait_for(Duration::from_secs(20), |s| {
        s["accounts"][0]["state"] == "online" && s["accounts"][0]["last_sync"].is_string()
    })?;
    Ok(agent)
}

fn folder(agent: &Agent, user: &str, path: &str) -> Result<Option<Value>> {
    let folders = agent.call("mail.folders", json!({"account": user}))?;
    Ok(folders
        .as_array()
        .context("folders")?
        .iter()
        .find(|f| f["path"] == path)
        .cloned())
}

#[test]
fn alice_shares_a_folder_read_only_with_bob() -> Result<()> {
    let dovecot = Dovecot::start()?;
    let mut probe = dovecot.probe("alice")?;
    probe.create("Team")?;
    probe.append("Team", &[], &message("shared-1"))?;
    let alice = agent_for(&dovecot, "alice")?;
    alice.call(
        "mail.acl.set",
        json!({"account": "alice", "folder": "Team", "identifier": "bob", "rights": "lr", "wait": true}),
    )?;
    let acl = alice.call("mail.acl.get", json!({"account": "alice", "folder": "Team"}))?;
    ensure!(
        acl.as_array()
            .unwrap()
            .iter()
            .any(|e| e["identifier"] == "bob" && e["rights"] == "lr"),
        "{acl}"
    );

    let bob = agent_for(&dovecot, "bob")?;
    let shared = folder(&bob, "bob", "shared/alice/Team")?.context("bob sees alice's Team")?;
    assert_eq!(shared["namespace"], "other", "{shared}");
    assert_eq!(shared["rights"], "lr", "{shared}");
    let messages = bob.call(
        "mail.messages",
        json!({"account": "bob", "folder": "shared/alice/Team"}),
    )?;
    let list = messages["messages"].as_array().context("messages")?;
    ensure!(
        list.len() == 1 && list[0]["subject"] == "shared-1",
        "synced like his own: {messages}"
    );
    let uid = list[0]["uid"].as_u64().unwrap();

    // Read-only: the write is refused before it reaches the journal.
    let refused = bob.cli(&[
        "call",
        "mail.flag",
        &json!({"account": "bob", "folder": "shared/alice/Team", "uids": [uid], "add": ["\\Flagged"]})
            .to_string(),
    ]);
    assert_eq!(refused.status.code(), Some(1));
    let why = String::from_utf8_lossy(&refused.stderr);
    ensure!(why.contains("rights") && why.contains("lr"), "{why}");
    assert_eq!(bob.status_json()?["accounts"][0]["pending_ops"], 0);

    // Taking the share away (DELETEACL). Dovecot keeps listing it to sessions that were open
    // before, so bob's agent sees the change from its next session on.
    alice.call(
        "mail.acl.set",
        json!({"account": "alice", "folder": "Team", "identifier": "bob", "rights": "", "wait": true}),
    )?;
    let acl = alice.call("mail.acl.get", json!({"account": "alice", "folder": "Team"}))?;
    ensure!(
        !acl.as_array().unwrap().iter().any(|e| e["identifier"] == "bob"),
        "{acl}"
    );
    let mut bob = bob;
    bob.restart()?;
    bob.wait_for(Duration::from_secs(20), |s| {
        s["accounts"][0]["last_sync"].is_string()
    })?;
    bob.wait_for(Duration::from_secs(10), |_| {
        folder(&bob, "bob", "shared/alice/Team")
            .map(|f| f.is_none())
            .unwrap_or(false)
    })?;
    Ok(())
}

#[test]
fn a_public_folder_is_listed_and_synced() -> Result<()> {
    let dovecot = Dovecot::start()?;
    dovecot.create_public_folder("Announcements")?;
    dovecot.append("alice", "Public/Announcements", &message("public-1"))?;
    let alice = agent_for(&dovecot, "alice")?;
    let public = folder(&alice, "alice", "Public/Announcements")?.context("public folder listed")?;
    assert_eq!(public["namespace"], "shared", "{public}");
    let messages = alice.call(
        "mail.messages",
        json!({"account": "alice", "folder": "Public/Announcements"}),
    )?;
    ensure!(messages["messages"][0]["subject"] == "public-1", "{messages}");
    Ok(())
}
