//! End-to-end tests of the agent's foundation against private Dovecot and Radicale, through the
//! INTERFACE contract only: `opconnect run --headless`, the CLI, and the IPC socket.
//!
//! ```text
//!   Dovecot + Radicale ◀── opconnect run ◀── opconnect status/pause/resume/sync/call
//!                                        ◀── RawIpc (framing abuse, peer checks)
//! ```

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use opconnect_tests::agent::{self, account, account_state, cli_without_agent, service_state};
use opconnect_tests::config::render_config;
use opconnect_tests::ipc::{self as raw, RawIpc};
use opconnect_tests::process;
use opconnect_tests::{AccountSpec, Agent, AgentSettings, Dovecot, Radicale, config_for};
use serde_json::{Value, json};

/// Both servers, or a clear failure: a test never skips for want of a server.
fn servers() -> Result<(Dovecot, Radicale)> {
    let dovecot = Dovecot::start().context("starting the private Dovecot")?;
    let radicale = Radicale::start().context("starting the private Radicale")?;
    Ok((dovecot, radicale))
}

/// A config with no account: enough for the IPC and CLI tests.
fn no_accounts() -> String {
    render_config(&AgentSettings::default(), &[])
}

/// An agent for alice that has reached `online`.
fn online_agent(dovecot: &Dovecot, radicale: &Radicale) -> Result<Agent> {
    let agent = Agent::start(&config_for(dovecot, radicale, "alice"))?;
    agent.wait_for_state("alice", "online", Duration::from_secs(10))?;
    Ok(agent)
}

/// Waits for `state`, running `opconnect sync` every few seconds to make the agent retry sooner.
fn wait_state_nudging(agent: &Agent, state: &str, timeout: Duration) -> Result<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let slice = Duration::from_secs(3).min(deadline.saturating_duration_since(Instant::now()));
        match agent.wait_for_state("alice", state, slice) {
            Ok(status) => return Ok(status),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => {
                let _ = agent.cli(&["sync"]);
            }
        }
    }
}

#[test]
fn reaches_online_against_dovecot_and_radicale() -> Result<()> {
    let (dovecot, radicale) = servers()?;
    let began = Instant::now();
    let agent = Agent::start(&config_for(&dovecot, &radicale, "alice"))?;
    let status = agent.wait_for_state("alice", "online", Duration::from_secs(10))?;
    eprintln!(
        "agent answered status in {:?}, online in {:?}",
        agent.started_in(),
        began.elapsed()
    );
    assert_eq!(status["paused"], json!(false), "{status}");
    let alice = account(&status, "alice").context("account alice")?;
    assert!(alice.get("error").is_none_or(Value::is_null), "{alice}");
    assert_eq!(alice["pending_ops"], json!(0), "{alice}");
    assert_eq!(alice["conflicts"], json!(0), "{alice}");
    for service in ["imap", "caldav", "carddav"] {
        assert_eq!(
            service_state(&status, "alice", service),
            Some("online"),
            "{service} not online: {alice}"
        );
    }
    // The agent keeps a connection to the IMAP server while online (IDLE on INBOX).
    ensure!(!agent.connections_to(dovecot.imap_port())?.is_empty());
    Ok(())
}

#[test]
fn wrong_password_gives_error_without_leaking_it() -> Result<()> {
    const SECRET: &str = "Wr0ng-Secret-9f3a7c";
    let (dovecot, radicale) = servers()?;
    let spec = AccountSpec::for_user("alice")
        .password(SECRET)
        .imap_from(&dovecot)
        .dav_from(&radicale);
    let agent = Agent::start(&render_config(&AgentSettings::default(), &[spec]))?;
    // Dovecot delays a failed login by 2 s.
    let status = agent.wait_for_state("alice", "error", Duration::from_secs(15))?;
    let alice = account(&status, "alice").context("account alice")?;
    let message = alice["error"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "state error without a message: {alice}");
    eprintln!("wrong password: {message}");
    // Every service reports the failed login, IMAP included (Dovecot answers after 2 s).
    let status = agent.wait_for(Duration::from_secs(15), |s| {
        ["imap", "caldav", "carddav"]
            .iter()
            .all(|svc| service_state(s, "alice", svc) == Some("error"))
    })?;
    assert!(
        !status.to_string().contains(SECRET),
        "status leaks the password: {status}"
    );

    let table = agent.cli_ok(&["status"])?;
    assert!(
        !table.contains(SECRET),
        "status table leaks the password: {table}"
    );
    thread::sleep(Duration::from_millis(300)); // let the log catch up
    let log = agent.log();
    assert!(
        !log.contains(SECRET),
        "the agent's log contains the password:\n{log}"
    );
    let data_hit = grep_dir(&agent.data_dir(), SECRET)?;
    assert!(data_hit.is_none(), "the password is stored in {data_hit:?}");
    Ok(())
}

#[test]
fn offline_when_servers_stop_and_online_again_without_restart() -> Result<()> {
    let (mut dovecot, mut radicale) = servers()?;
    let agent = online_agent(&dovecot, &radicale)?;
    let pid = agent.pid();

    dovecot.stop();
    radicale.stop();
    let status = wait_state_nudging(&agent, "offline", Duration::from_secs(30))?;
    eprintln!("offline: {status}");
    // IMAP notices at once (its IDLE connection drops); DAV at its next poll or `sync`.
    let began = Instant::now();
    loop {
        let status = agent.status_json()?;
        let states: Vec<_> = ["imap", "caldav", "carddav"]
            .iter()
            .map(|s| service_state(&status, "alice", s))
            .collect();
        if states.iter().all(|s| *s == Some("offline")) {
            break;
        }
        ensure!(
            began.elapsed() < Duration::from_secs(30),
            "services not all offline after 30 s: {states:?}"
        );
        let _ = agent.cli(&["sync"]);
        thread::sleep(Duration::from_millis(500));
    }

    dovecot.start_again()?;
    radicale.start_again()?;
    let status = wait_state_nudging(&agent, "online", Duration::from_secs(30))?;
    for service in ["imap", "caldav", "carddav"] {
        assert_eq!(
            service_state(&status, "alice", service),
            Some("online"),
            "{service}: {status}"
        );
    }
    assert_eq!(agent.pid(), pid);
    Ok(())
}

#[test]
fn pause_drops_connections_within_a_second_and_resume_restores() -> Result<()> {
    let (dovecot, radicale) = servers()?;
    let agent = online_agent(&dovecot, &radicale)?;
    let port = dovecot.imap_port();
    ensure!(
        !agent.connections_to(port)?.is_empty(),
        "online but no IMAP connection"
    );

    agent.cli_ok(&["pause"])?;
    let paused_at = Instant::now();
    let status = agent.status_json()?;
    assert_eq!(status["paused"], json!(true), "{status}");
    assert_eq!(account_state(&status, "alice"), Some("paused"), "{status}");

    // DESIGN invariant 9: pause stops network activity within a second.
    let conns = loop {
        let conns = agent.connections_to(port)?;
        if conns.is_empty() || paused_at.elapsed() > Duration::from_secs(1) {
            break conns;
        }
        thread::sleep(Duration::from_millis(20));
    };
    eprintln!(
        "IMAP connections after pause: {conns:?} at {:?}",
        paused_at.elapsed()
    );
    assert!(
        conns.is_empty(),
        "still connected to Dovecot {:?} after pause: {conns:?}",
        paused_at.elapsed()
    );
    // And stays quiet.
    thread::sleep(Duration::from_secs(2));
    assert!(agent.connections_to(port)?.is_empty(), "reconnected while paused");
    assert_eq!(account_state(&agent.status_json()?, "alice"), Some("paused"));

    agent.cli_ok(&["resume"])?;
    let status = agent.wait_for_state("alice", "online", Duration::from_secs(10))?;
    assert_eq!(status["paused"], json!(false), "{status}");
    Ok(())
}

#[test]
fn state_events_reach_subscribers_and_watch() -> Result<()> {
    let (dovecot, radicale) = servers()?;
    let agent = online_agent(&dovecot, &radicale)?;

    // Raw subscription: in place once `subscribe` has answered.
    let mut raw_sub = agent.ipc()?;
    raw_sub.subscribe(&["state"])?;
    // The library client the CLI uses, subscribed the same way.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut client = rt.block_on(agent.client())?;
    rt.block_on(client.subscribe(&["state".to_string()]))?;
    // `opconnect watch` subscribes asynchronously: toggle until it has seen a state event.
    let mut watch = agent.watch(&["state"])?;

    agent.cli_ok(&["pause"])?;
    let event = raw_sub
        .next_event(Duration::from_secs(5))?
        .context("no state event after pause")?;
    assert_eq!(event["topic"], json!("state"), "{event}");
    let event = rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(5), client.next_event()).await })
        .context("library client: no state event after pause")??;
    assert_eq!(event.topic, "state");

    let mut seen = watch.wait_topic("state", Duration::from_secs(2));
    for _ in 0..5 {
        if seen.is_ok() {
            break;
        }
        agent.cli_ok(&["resume"])?;
        agent.cli_ok(&["pause"])?;
        seen = watch.wait_topic("state", Duration::from_secs(2));
    }
    let event = seen.context("opconnect watch printed no state event")?;
    assert_eq!(agent::event_topic(&event), Some("state"), "{event}");
    agent.cli_ok(&["resume"])?;
    Ok(())
}

#[test]
fn ipc_abuse_is_refused_while_other_clients_are_served() -> Result<()> {
    let agent = Agent::start(&no_accounts())?;
    let mut good = agent.ipc()?;
    good.call("status", json!({}))?;

    // 1. A 20 MiB frame: refused with an error and/or the connection closed.
    let mut big = agent.ipc()?;
    let len = 20u32 * 1024 * 1024;
    let _ = big.send_raw(&len.to_be_bytes());
    let _ = big.send_raw(&vec![b'x'; 64 * 1024]); // may fail: the agent may close at once
    good.call("status", json!({}))?;
    expect_refused(&mut big, "20 MiB frame")?;

    // 2. A frame that is not JSON: parse error (-32700) or closed.
    let mut junk = agent.ipc()?;
    junk.send_frame(b"this is not json")?;
    match junk.read_frame()? {
        Some(answer) => assert_eq!(raw::error_code(&answer), Some(-32700), "{answer}"),
        None => eprintln!("agent closed the connection on non-JSON"),
    }

    // 3. A burst of garbage bytes, then end of input: must end in errors or a close.
    let mut burst = agent.ipc()?;
    let garbage: Vec<u8> = (0u32..64 * 1024)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let _ = burst.send_raw(&garbage);
    let _ = burst.shutdown_write();
    good.call("status", json!({}))?;
    expect_refused(&mut burst, "garbage burst")?;

    // 4. Valid JSON that is not a request, and an unknown method.
    let mut odd = agent.ipc()?;
    odd.send_json(&json!({"foo": 1}))?;
    let answer = odd.read_frame()?.context("no answer to an invalid request")?;
    assert_eq!(raw::error_code(&answer), Some(-32600), "{answer}");
    let answer = agent.ipc()?.request("no.such.method", json!({}))?;
    assert_eq!(raw::error_code(&answer), Some(-32601), "{answer}");

    // The well-behaved client and the CLI were served throughout.
    good.call("status", json!({}))?;
    agent.cli_ok(&["status"])?;
    let mut agent = agent;
    assert!(agent.is_running(), "the agent died:\n{}", agent.log());
    Ok(())
}

/// Reads until the agent closes; error answers are fine, silence for 5 s is not.
fn expect_refused(conn: &mut RawIpc, what: &str) -> Result<()> {
    conn.set_timeout(Duration::from_secs(5))?;
    for _ in 0..100 {
        match conn.read_frame() {
            Ok(None) => return Ok(()),
            Ok(Some(answer)) if answer.get("error").is_some() => continue,
            Ok(Some(answer)) => bail!("{what}: unexpected answer {answer}"),
            Err(e) => bail!("{what}: the agent neither answered with an error nor closed: {e:#}"),
        }
    }
    bail!("{what}: the agent kept answering instead of closing")
}

#[test]
fn unknown_method_via_cli_exits_1_with_message() -> Result<()> {
    let agent = Agent::start(&no_accounts())?;
    let out = agent.cli(&["call", "no.such.method"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(!stderr.trim().is_empty(), "no message on stderr");
    assert!(
        out.stdout.is_empty(),
        "stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    Ok(())
}

#[test]
fn socket_is_private_and_other_uids_are_rejected() -> Result<()> {
    if !process::is_root() {
        bail!("this test needs root (it runs the CLI as `nobody`); CI runs as root");
    }
    let agent = Agent::start(&no_accounts())?;
    let socket = agent.socket_path();
    let dir = socket.parent().context("socket dir")?;
    let sock_meta = fs::metadata(&socket)?;
    let dir_meta = fs::metadata(dir)?;
    assert!(sock_meta.file_type().is_socket());
    assert_eq!(
        sock_meta.mode() & 0o777,
        0o600,
        "socket mode {:o}",
        sock_meta.mode()
    );
    assert_eq!(
        dir_meta.mode() & 0o777,
        0o700,
        "socket dir mode {:o}",
        dir_meta.mode()
    );
    assert_eq!(sock_meta.uid(), process::current_uid());
    assert_eq!(dir_meta.uid(), process::current_uid());

    let (uid, gid) = process::lookup_user("nobody")?;
    let out = agent.cli_as(uid, gid, &["status"]);
    eprintln!(
        "nobody, 0700 dir: {:?} {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    assert!(
        !out.status.success(),
        "nobody could use the agent: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Open the file permissions: now only the agent's peer-uid check stands in the way.
    process::chmod(dir, 0o777)?;
    process::chmod(&socket, 0o777)?;
    let out = agent.cli_as(uid, gid, &["status"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("nobody, 0777 socket: {:?} {}", out.status.code(), stderr.trim());
    assert!(
        !out.status.success(),
        "the agent served uid {uid}: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        !stderr.contains("os error 13") && !stderr.contains("ermission denied"),
        "nobody was stopped by file permissions, not by the agent: {stderr}"
    );
    // The owner is still served.
    agent.status_json()?;
    Ok(())
}

#[test]
fn cli_exit_codes_without_agent() {
    let out = cli_without_agent(&["status"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "status without an agent: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli_without_agent(&["no-such-subcommand"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli_without_agent(&["status", "--no-such-flag"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The binary is the one built from this workspace.
    assert!(agent::opconnect_bin().is_file());
}

/// The first file under `dir` whose bytes contain `needle` (read in chunks: store files may be
/// large and sparse).
fn grep_dir(dir: &std::path::Path, needle: &str) -> Result<Option<std::path::PathBuf>> {
    use std::io::Read;
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(None);
    };
    let needle = needle.as_bytes();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(hit) = grep_dir(&path, std::str::from_utf8(needle)?)? {
                return Ok(Some(hit));
            }
            continue;
        }
        let Ok(mut file) = fs::File::open(&path) else {
            continue;
        };
        let mut window = Vec::new();
        let mut chunk = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut chunk)?;
            if n == 0 {
                break;
            }
            window.extend_from_slice(&chunk[..n]);
            if window.windows(needle.len()).any(|w| w == needle) {
                return Ok(Some(path));
            }
            // Keep a tail so a match across two chunks is found.
            let keep = window.len().saturating_sub(needle.len());
            window.drain(..keep);
        }
    }
    Ok(None)
}
