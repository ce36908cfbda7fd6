//! The journal under damage, through `opconnect call` (issue 5, scenario 4): a journal record
//! that no longer decodes is listed with its error while the rest still reaches the server, and a
//! full disk refuses the write with a clear error while every acknowledged write survives.
//! Both need root (mount, and editing the store of a stopped agent), as CI has.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use base64::Engine as _;
use opconnect_tests::config::render_config;
use opconnect_tests::process::is_root;
use opconnect_tests::{AccountSpec, Agent, AgentSettings, Dovecot};
use serde_json::json;

fn need_root() -> Result<()> {
    if !is_root() {
        bail!("this test mounts a tmpfs and needs root (CI runs as root)");
    }
    Ok(())
}

fn synced_agent(dovecot: &Dovecot) -> Result<Agent> {
    let spec = AccountSpec::for_user("alice").imap_from(dovecot);
    let agent = Agent::start(&render_config(&AgentSettings::default(), &[spec]))?;
    agent.wait_for(Duration::from_secs(20), |s| {
        s["accounts"][0]["state"] == "online" && s["accounts"][0]["last_sync"].is_string()
    })?;
    Ok(agent)
}

fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    ensure!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn message(id: &str, body_len: usize) -> String {
    let raw = format!(
        "From: alice@localhost\r\nTo: bob@localhost\r\nSubject: {id}\r\nMessage-ID: <{id}@localhost>\r\n\r\n{}\r\n",
        "x".repeat(body_len)
    );
    base64::engine::general_purpose::STANDARD.encode(raw)
}

#[test]
fn a_damaged_journal_record_is_listed_and_the_rest_still_lands() -> Result<()> {
    need_root()?;
    let mut dovecot = Dovecot::start()?;
    let mut agent = synced_agent(&dovecot)?;
    dovecot.stop();
    agent.wait_for_state("alice", "offline", Duration::from_secs(15))?;
    agent.call("mail.folder.create", json!({"account": "alice", "path": "Kept"}))?;
    agent.call(
        "mail.folder.create",
        json!({"account": "alice", "path": "Damaged"}),
    )?;
    agent.stop();

    // Rewrite the second entry's value with bytes that are not a journal record.
    let store = agent.data_dir().join("store");
    let dump = run(Command::new("mdb_dump").args(["-s", "journal"]).arg(&store))?;
    let mut lines: Vec<String> = dump.lines().map(str::to_owned).collect();
    let data = lines
        .iter()
        .position(|l| l == "HEADER=END")
        .context("mdb_dump header")?
        + 1;
    // Key/value lines alternate after the header: the second entry's value is at data + 3.
    ensure!(lines.len() > data + 3, "two journal entries expected: {dump}");
    lines[data + 3] = format!(" {}", "7b2264616d61676564".to_owned()); // `{"damaged`
    let edited = agent.data_dir().join("journal.dump");
    std::fs::write(&edited, lines.join("\n") + "\n")?;
    run(Command::new("mdb_load")
        .args(["-s", "journal", "-f"])
        .arg(&edited)
        .arg(&store))?;

    dovecot.start_again()?;
    agent.restart()?;
    agent.wait_for(Duration::from_secs(20), |s| s["accounts"][0]["state"] == "online")?;
    // The good entry lands, the damaged one stays listed with its error: nothing silently dropped.
    agent.wait_for(Duration::from_secs(20), |s| s["accounts"][0]["pending_ops"] == 1)?;
    let ops = agent.call("ops", json!({"account": "alice"}))?;
    let error = ops[0]["last_error"].as_str().unwrap_or_default();
    ensure!(error.contains("damaged journal record"), "{ops}");
    let mut probe = dovecot.probe("alice")?;
    ensure!(
        probe.list()?.iter().any(|l| l.ends_with(" Kept")),
        "the intact entry reached the server"
    );
    Ok(())
}

#[test]
fn a_full_disk_refuses_the_write_and_keeps_what_was_acknowledged() -> Result<()> {
    need_root()?;
    let mut dovecot = Dovecot::start()?;
    let mut agent = synced_agent(&dovecot)?;
    // The server stays down: the writes pile up in the journal until the disk is full.
    dovecot.stop();
    agent.stop();
    // Move the data dir onto a 3 MiB tmpfs: a disk that fills up.
    let data = agent.data_dir();
    let old = data.with_extension("old");
    std::fs::rename(&data, &old)?;
    std::fs::create_dir(&data)?;
    run(Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=3m,mode=0700", "tmpfs"])
        .arg(&data))?;
    let unmount = Unmount(data.clone());
    run(Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", old.display()))
        .arg(&data))?;
    agent.restart()?;

    let mut acknowledged = Vec::new();
    let mut ipc = agent.ipc()?;
    let refusal = loop {
        let params = json!({"account": "alice", "folder": "INBOX",
            "raw": message(&format!("big{}", acknowledged.len()), 256 << 10)});
        let answer = ipc.request("mail.append", params)?;
        match answer["result"]["op"].as_u64() {
            Some(op) => acknowledged.push(op),
            None => break answer["error"]["message"].as_str().unwrap_or_default().to_owned(),
        }
        ensure!(acknowledged.len() < 40, "3 MiB cannot hold 10 MiB of writes");
    };
    eprintln!("refused after {} writes: {refusal}", acknowledged.len());
    ensure!(
        refusal.contains("store") || refusal.contains("space") || refusal.contains("full"),
        "{refusal}"
    );
    ensure!(!acknowledged.is_empty());
    // Every acknowledged write is still journaled, in order, after a restart.
    agent.restart()?;
    let ops = agent.call("ops", json!({"account": "alice"}))?;
    let ids: Vec<u64> = ops
        .as_array()
        .context("ops")?
        .iter()
        .filter_map(|o| o["op"].as_u64())
        .collect();
    assert_eq!(ids, acknowledged);
    drop(agent);
    drop(unmount);
    Ok(())
}

/// Unmounts the tmpfs even when the test fails.
struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(Path::new(&self.0)).status();
    }
}
