//! Notes in the IMAP folder `Notes` against Dovecot: a note round-trips through create, edit and
//! delete (one message on the server at a time), and a note written by another client (Apple's
//! format) appears.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use opconnect_tests::config::render_config;
use opconnect_tests::{AccountSpec, Agent, AgentSettings, Dovecot};
use serde_json::{Value, json};

fn agent_on(dovecot: &Dovecot) -> Result<Agent> {
    let spec = AccountSpec::for_user("alice").imap_from(dovecot);
    let agent = Agent::start(&render_config(&AgentSettings::default(), &[spec]))?;
    agent.wait_for(Duration::from_secs(20), |s| {
        s["accounts"][0]["state"] == "online" && s["accounts"][0]["last_sync"].is_string()
    })?;
    Ok(agent)
}

fn settled(agent: &Agent) -> Result<()> {
    agent.wait_for(Duration::from_secs(15), |s| s["accounts"][0]["pending_ops"] == 0)?;
    Ok(())
}

fn list(agent: &Agent) -> Result<Vec<Value>> {
    Ok(agent
        .call("notes.list", json!({"account": "alice"}))?
        .as_array()
        .cloned()
        .unwrap_or_default())
}

/// The server confirms a write before the agent has pulled the result back: wait for the list.
fn list_when(agent: &Agent, pred: impl Fn(&[Value]) -> bool) -> Result<Vec<Value>> {
    settled(agent)?;
    agent.wait_for(Duration::from_secs(10), |_| {
        list(agent).map(|l| pred(&l)).unwrap_or(false)
    })?;
    list(agent)
}

#[test]
fn a_note_round_trips() -> Result<()> {
    let dovecot = Dovecot::start()?;
    let agent = agent_on(&dovecot)?;
    assert_eq!(
        list(&agent)?,
        Vec::<Value>::new(),
        "no Notes folder yet, no notes"
    );
    let created = agent.call(
        "notes.put",
        json!({"account": "alice", "subject": "Groceries", "body": "Milk\nBread"}),
    )?;
    let id = created["id"].as_str().context("id")?.to_owned();
    let notes = list_when(&agent, |l| l.len() == 1)?;
    ensure!(notes.len() == 1, "{notes:?}");
    assert_eq!(
        (notes[0]["id"].as_str(), notes[0]["subject"].as_str()),
        (Some(id.as_str()), Some("Groceries"))
    );
    assert_eq!(notes[0]["body"], "Milk\nBread");
    let mut probe = dovecot.probe("alice")?;
    probe.select("Notes")?;
    ensure!(
        probe
            .uid_search("HEADER X-Uniform-Type-Identifier com.apple.mail-note")?
            .len()
            == 1,
        "Apple's marker"
    );

    agent.call("notes.put", json!({"account": "alice", "id": id, "subject": "Groceries", "body": "<div>Milk, bread, <b>eggs</b></div>"}))?;
    let notes = list_when(&agent, |l| l.len() == 1 && l[0]["format"] == "html")?;
    ensure!(notes.len() == 1, "an edit replaces the note: {notes:?}");
    assert_eq!(notes[0]["format"], "html");
    assert!(notes[0]["body"].as_str().unwrap().contains("<b>eggs</b>"));
    probe.select("Notes")?;
    ensure!(
        probe.uid_search("ALL")?.len() == 1,
        "one message per note on the server"
    );

    agent.call("notes.delete", json!({"account": "alice", "id": id}))?;
    assert_eq!(list_when(&agent, |l| l.is_empty())?, Vec::<Value>::new());
    probe.select("Notes")?;
    ensure!(probe.uid_search("ALL")?.is_empty());
    let missing = agent.cli(&["call", "notes.delete", r#"{"account":"alice","id":"nope"}"#]);
    assert_eq!(missing.status.code(), Some(1));
    Ok(())
}

#[test]
fn a_note_from_another_client_appears() -> Result<()> {
    let dovecot = Dovecot::start()?;
    dovecot.probe("alice")?.create("Notes")?;
    let agent = agent_on(&dovecot)?;
    let apple = b"Subject: From the phone\r\nX-Uniform-Type-Identifier: com.apple.mail-note\r\n\
X-Universally-Unique-Identifier: 0E6B7D2A-1111-4222-8333-444455556666\r\nMIME-Version: 1.0\r\n\
Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\
Date: Tue, 24 Nov 2026 08:00:00 +0100\r\n\r\n<div>Call Bob =E2=80=93 tomorrow</div>\r\n";
    dovecot.append("alice", "Notes", apple)?;
    agent.cli_ok(&["sync"])?;
    let notes = list_when(&agent, |l| l.len() == 1)?;
    assert_eq!(notes[0]["id"], "0E6B7D2A-1111-4222-8333-444455556666");
    assert_eq!(notes[0]["subject"], "From the phone");
    assert!(
        notes[0]["body"].as_str().unwrap().contains("Call Bob – tomorrow"),
        "{notes:?}"
    );
    Ok(())
}
