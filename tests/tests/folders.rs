//! Moving and copying folder trees against Dovecot (which has no X-COPYFOLDER): a three-level
//! tree with messages is moved with RENAME, and copied by the connector folder by folder, across a
//! `kill -9` in the middle, with every message exactly once in the copy.

use std::time::Duration;

use anyhow::{Result, ensure};
use opconnect_tests::config::render_config;
use opconnect_tests::{AccountSpec, Agent, AgentSettings, Dovecot};
use serde_json::json;

const TREE: [&str; 3] = ["Proj", "Proj/Alpha", "Proj/Alpha/Deep"];

fn seed_tree(dovecot: &Dovecot, per_folder: usize) -> Result<()> {
    for (f, folder) in TREE.iter().enumerate() {
        dovecot.seed_maildir(
            "alice",
            folder,
            (0..per_folder).map(|i| {
                let raw = format!(
                    "From: a@localhost\r\nSubject: {folder} {i}\r\nMessage-ID: <t{f}-{i}@localhost>\r\n\r\nx\r\n"
                );
                (raw.into_bytes(), "")
            }),
        )?;
    }
    Ok(())
}

fn synced_agent(dovecot: &Dovecot) -> Result<Agent> {
    let spec = AccountSpec::for_user("alice").imap_from(dovecot);
    let agent = Agent::start(&render_config(&AgentSettings::default(), &[spec]))?;
    agent.wait_for(Duration::from_secs(30), |s| {
        s["accounts"][0]["state"] == "online" && s["accounts"][0]["last_sync"].is_string()
    })?;
    Ok(agent)
}

fn count(dovecot: &Dovecot, folder: &str) -> Result<usize> {
    let mut probe = dovecot.probe("alice")?;
    probe.select(folder)?;
    Ok(probe.uid_search("ALL")?.len())
}

#[test]
fn a_three_level_tree_moves_with_its_messages() -> Result<()> {
    let dovecot = Dovecot::start()?;
    seed_tree(&dovecot, 5)?;
    let agent = synced_agent(&dovecot)?;
    agent.call(
        "mail.folder.rename",
        json!({"account": "alice", "path": "Proj", "to": "Archive/Proj", "wait": true}),
    )?;
    for folder in TREE {
        ensure!(
            count(&dovecot, &format!("Archive/{folder}"))? == 5,
            "{folder} moved with its messages"
        );
    }
    let deep = agent.call(
        "mail.messages",
        json!({"account": "alice", "folder": "Archive/Proj/Alpha/Deep"}),
    )?;
    ensure!(
        deep["messages"].as_array().map(Vec::len) == Some(5),
        "the mirror follows: {deep}"
    );
    Ok(())
}

#[test]
fn a_tree_is_copied_without_x_copyfolder_across_a_crash() -> Result<()> {
    let dovecot = Dovecot::start()?;
    seed_tree(&dovecot, 400)?;
    let mut agent = synced_agent(&dovecot)?;
    let mut events = agent.watch(&["mail.folder.copy.progress"])?;
    agent.call(
        "mail.folder.copy",
        json!({"account": "alice", "path": "Proj", "to": "Copy"}),
    )?;
    let first = events.wait_topic("mail.folder.copy.progress", Duration::from_secs(20))?;
    agent.kill();
    eprintln!("killed after {first}");
    agent.restart()?;
    agent.wait_for(Duration::from_secs(60), |s| s["accounts"][0]["pending_ops"] == 0)?;
    for folder in TREE {
        let copy = format!("Copy{}", &folder["Proj".len()..]);
        ensure!(
            count(&dovecot, &copy)? == 400,
            "{copy} holds every message exactly once"
        );
        ensure!(count(&dovecot, folder)? == 400, "{folder} is untouched");
    }
    let folders = agent.call("mail.folders", json!({"account": "alice"}))?;
    ensure!(folders.to_string().contains("Copy/Alpha/Deep"), "{folders}");
    Ok(())
}
