//! Local and server state changing under the agent (issue 19): a disk that fills up during a sync
//! stops the service with the reason (never "online" with half a mirror) and the sync completes
//! once there is room; a folder whose UIDVALIDITY changes while writes are pending gets them on
//! the right messages, found by Message-ID.

use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use opconnect_tests::config::render_config;
use opconnect_tests::process::is_root;
use opconnect_tests::{AccountSpec, Agent, AgentSettings, Dovecot};
use serde_json::json;

fn synced_agent(dovecot: &Dovecot) -> Result<Agent> {
    let spec = AccountSpec::for_user("alice").imap_from(dovecot);
    let agent = Agent::start(&render_config(&AgentSettings::default(), &[spec]))?;
    agent.wait_for(Duration::from_secs(20), |s| {
        s["accounts"][0]["state"] == "online" && s["accounts"][0]["last_sync"].is_string()
    })?;
    Ok(agent)
}

fn run(cmd: &mut Command) -> Result<()> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    ensure!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Unmounts the tmpfs even when the test fails.
struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn message(id: &str, subject: &str) -> Vec<u8> {
    format!("From: bob@localhost\r\nTo: alice@localhost\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\n\r\nbody\r\n")
        .into_bytes()
}

#[test]
fn a_disk_that_fills_up_during_sync_stops_the_service_with_the_reason() -> Result<()> {
    if !is_root() {
        bail!("this test mounts a tmpfs and needs root (CI runs as root)");
    }
    let dovecot = Dovecot::start()?;
    let mut agent = synced_agent(&dovecot)?;
    agent.stop();
    // The data dir moves onto a 2 MiB tmpfs.
    let data = agent.data_dir();
    let old = data.with_extension("old");
    std::fs::rename(&data, &old)?;
    std::fs::create_dir(&data)?;
    run(Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs"])
        .arg(&data))?;
    let _unmount = Unmount(data.clone());
    run(Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", old.display()))
        .arg(&data))?;
    // 1,500 messages with long subjects: more mirror than 2 MiB can hold.
    let mut probe = dovecot.probe("alice")?;
    let long = "x".repeat(1500);
    for i in 0..1500 {
        probe.append(
            "INBOX",
            &[],
            &message(&format!("full{i}@x"), &format!("{i} {long}")),
        )?;
    }
    agent.restart()?;
    let status = agent.wait_for(Duration::from_secs(60), |s| {
        s["accounts"][0]["services"]["imap"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("local store"))
    })?;
    ensure!(status["accounts"][0]["state"] == "error", "{status}");
    eprintln!(
        "full disk: {}",
        status["accounts"][0]["services"]["imap"]["error"]
    );
    ensure!(agent.is_running(), "the agent survived");
    // Room again: `sync` retries at once and the mirror completes.
    run(Command::new("mount").args(["-o", "remount,size=256m"]).arg(&data))?;
    agent.cli_ok(&["sync"])?;
    agent.call_until(
        "mail.messages",
        json!({"account": "alice", "folder": "INBOX", "limit": 2000}),
        Duration::from_secs(60),
        |v| v["messages"].as_array().is_some_and(|m| m.len() == 1500),
    )?;
    agent.wait_for(Duration::from_secs(20), |s| s["accounts"][0]["state"] == "online")?;
    agent.stop();
    Ok(())
}

#[test]
fn writes_pending_across_a_uidvalidity_change_land_on_the_right_messages() -> Result<()> {
    let dovecot = Dovecot::start()?;
    let mut probe = dovecot.probe("alice")?;
    probe.create("Work")?;
    probe.append("Work", &[], &message("one@x", "one"))?;
    probe.append("Work", &[], &message("two@x", "two"))?;
    let before = probe.select("Work")?.uidvalidity;
    let agent = synced_agent(&dovecot)?;
    let list = agent.call_until(
        "mail.messages",
        json!({"account": "alice", "folder": "Work"}),
        Duration::from_secs(10),
        |v| v["messages"].as_array().is_some_and(|m| m.len() == 2),
    )?;
    let uid_of = |subject: &str| {
        list["messages"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["subject"] == subject))
            .and_then(|m| m["uid"].as_u64())
    };
    let one = uid_of("one").context("one")?;
    agent.cli_ok(&["pause"])?;
    agent.call(
        "mail.flag",
        json!({"account": "alice", "folder": "Work", "uids": [one], "add": ["\\Flagged"]}),
    )?;
    // Meanwhile the folder is recreated, its messages in the other order: new UIDVALIDITY, and
    // the old UID of "one" now names "two".
    probe.command("UNSELECT")?;
    probe.command("DELETE Work")?;
    std::thread::sleep(Duration::from_millis(1100));
    probe.create("Work")?;
    probe.append("Work", &[], &message("two@x", "two"))?;
    probe.append("Work", &[], &message("one@x", "one"))?;
    let after = probe.select("Work")?.uidvalidity;
    ensure!(before != after, "UIDVALIDITY changed ({before} → {after})");
    agent.cli_ok(&["resume"])?;
    agent.wait_for(Duration::from_secs(20), |_| {
        agent
            .call("ops", json!({"account": "alice"}))
            .is_ok_and(|o| o.as_array().is_some_and(|a| a.is_empty()))
    })?;
    probe.select("Work")?;
    ensure!(
        probe.uid_search("FLAGGED HEADER Message-ID <one@x>")?.len() == 1,
        "the flag is on \"one\""
    );
    ensure!(
        probe.uid_search("FLAGGED")?.len() == 1,
        "and only there (not on \"two\", which has its old UID)"
    );
    Ok(())
}
