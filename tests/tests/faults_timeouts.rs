//! Liveness under hung servers (issue 19): a fault proxy between the agent and real Dovecot and
//! Postfix makes a server stop answering in the middle of a command; the account must leave
//! "online" with a reason within the command timeout, calls must be answered, the service must
//! come back when the server does, and a message whose acknowledgement was lost is not sent twice.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use base64::Engine as _;
use opconnect_tests::config::render_config;
use opconnect_tests::{AccountSpec, Agent, AgentSettings, Dovecot, Fault, FaultProxy, Postfix, Trigger};
use serde_json::{Value, json};

/// The `[agent] command_timeout` these tests run with (production: 60 s).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(3);

/// `render_config` plus a short command timeout.
fn config(accounts: &[AccountSpec]) -> String {
    render_config(&AgentSettings::default(), accounts).replacen(
        "[agent]\n",
        &format!("[agent]\ncommand_timeout = \"{}s\"\n", COMMAND_TIMEOUT.as_secs()),
        1,
    )
}

fn alice_state(status: &Value) -> (&str, String) {
    let account = &status["accounts"][0];
    (
        account["state"].as_str().unwrap_or(""),
        account["services"]["imap"]["error"]
            .as_str()
            .unwrap_or("")
            .to_owned(),
    )
}

#[test]
fn a_server_that_stops_answering_lsub_is_noticed_and_left_behind() -> Result<()> {
    let dovecot = Dovecot::start()?;
    let proxy = FaultProxy::start(dovecot.imap_port())?;
    // The first session hangs in LSUB, right after login (the account says "online" by then).
    proxy.inject(Trigger::Sends(" LSUB ".into()), Fault::Stall, 1);
    let mut spec = AccountSpec::for_user("alice");
    spec.imap = Some(proxy.url("imap", ""));
    let agent = Agent::start(&config(&[spec]))?;
    proxy.wait_fired(1, Duration::from_secs(20))?;
    let hung_at = Instant::now();
    let status = agent.wait_for(COMMAND_TIMEOUT + Duration::from_secs(5), |s| {
        let (state, error) = alice_state(s);
        state != "online" && error.contains("stopped answering")
    })?;
    let noticed = hung_at.elapsed();
    ensure!(
        noticed < COMMAND_TIMEOUT + Duration::from_secs(3),
        "noticed after {noticed:?}: {status}"
    );
    // The next session (the rule is spent) finishes the first sync.
    agent.wait_for(Duration::from_secs(20), |s| {
        s["accounts"][0]["state"] == "online" && s["accounts"][0]["last_sync"].is_string()
    })?;
    Ok(())
}

#[test]
fn a_fetch_meeting_a_hung_server_is_answered_and_sync_answers_too() -> Result<()> {
    let dovecot = Dovecot::start()?;
    let mut probe = dovecot.probe("alice")?;
    probe.append(
        "INBOX",
        &[],
        b"From: bob@localhost\r\nTo: alice@localhost\r\nSubject: hi\r\nMessage-ID: <hung@x>\r\n\r\nhello\r\n",
    )?;
    let proxy = FaultProxy::start(dovecot.imap_port())?;
    let mut spec = AccountSpec::for_user("alice");
    spec.imap = Some(proxy.url("imap", ""));
    let agent = Agent::start(&config(&[spec]))?;
    agent.wait_for(Duration::from_secs(20), |s| {
        s["accounts"][0]["state"] == "online" && s["accounts"][0]["last_sync"].is_string()
    })?;
    let list = agent.call("mail.messages", json!({"account": "alice", "folder": "INBOX"}))?;
    let uid = list["messages"][0]["uid"].as_u64().context("a message")?;
    // The body fetch reaches the server; its answer never comes back.
    proxy.inject(Trigger::Sends("BODY.PEEK[]".into()), Fault::Stall, 1);
    let asked = Instant::now();
    let fetch = agent.cli(&[
        "call",
        "mail.fetch",
        &json!({"account": "alice", "folder": "INBOX", "uid": uid}).to_string(),
    ]);
    let answered = asked.elapsed();
    ensure!(!fetch.status.success(), "{fetch:?}");
    ensure!(
        answered < COMMAND_TIMEOUT + Duration::from_secs(4),
        "answered after {answered:?}: {fetch:?}"
    );
    ensure!(
        String::from_utf8_lossy(&fetch.stderr).contains("stopped answering"),
        "{fetch:?}"
    );
    // `opconnect sync` is answered at once, whatever the service is doing.
    let began = Instant::now();
    agent.cli_ok(&["sync"])?;
    ensure!(
        began.elapsed() < Duration::from_secs(3),
        "sync took {:?}",
        began.elapsed()
    );
    // Back online on a fresh session; the same fetch now works.
    agent.wait_for(Duration::from_secs(20), |s| s["accounts"][0]["state"] == "online")?;
    let fetched = agent.call_until(
        "mail.fetch",
        json!({"account": "alice", "folder": "INBOX", "uid": uid}),
        Duration::from_secs(20),
        |v| v["raw"].is_string(),
    )?;
    let raw = base64::engine::general_purpose::STANDARD.decode(fetched["raw"].as_str().context("raw")?)?;
    ensure!(String::from_utf8_lossy(&raw).contains("hello"));
    Ok(())
}

fn message(id: &str) -> String {
    let raw = format!(
        "From: Alice <alice@localhost>\r\nTo: Bob <bob@localhost>\r\nSubject: sent {id}\r\n\
         Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{id}@localhost>\r\n\r\nHello from {id}\r\n"
    );
    base64::engine::general_purpose::STANDARD.encode(raw)
}

#[test]
fn smtp_silent_after_the_message_freezes_nothing_and_sends_nothing_twice() -> Result<()> {
    let (dovecot, postfix) = Postfix::with_dovecot()?;
    let smtp = FaultProxy::start(postfix.port())?;
    // Postfix gets the whole message; its 250 never comes back.
    smtp.inject(Trigger::Sends("\r\n.\r\n".into()), Fault::LoseAnswer, 1);
    let mut spec = AccountSpec::for_user("alice").imap_from(&dovecot);
    spec.smtp = Some(smtp.url("smtp", ""));
    let mut agent = Agent::start(&config(&[spec]))?;
    agent.wait_for(Duration::from_secs(20), |s| {
        s["accounts"][0]["state"] == "online" && s["accounts"][0]["last_sync"].is_string()
    })?;
    let mut events = agent.watch(&["op.failed", "op.done"])?;
    let answer = agent.call(
        "mail.send",
        json!({"account": "alice", "raw": message("lost-ack")}),
    )?;
    let op = answer["op"].as_u64().context("op")?;
    smtp.wait_fired(1, Duration::from_secs(20))?;
    let failed = events.wait_for(COMMAND_TIMEOUT + Duration::from_secs(10), |e| {
        e["topic"] == "op.failed" && e["op"] == op
    })?;
    ensure!(failed["final"] == true, "{failed}");
    ensure!(
        failed["error"].as_str().is_some_and(|e| e.contains("may have")),
        "{failed}"
    );
    // The IMAP child was not frozen: it still serves calls.
    let listed = agent.call("mail.folders", json!({"account": "alice"}));
    ensure!(listed.is_ok(), "{listed:?}");
    // Postfix delivered it once; after a restart (and a sync) it is not sent again.
    postfix.wait_for_outcome("bob@localhost", Duration::from_secs(20))?;
    agent.restart()?;
    agent.wait_for(Duration::from_secs(20), |s| {
        s["accounts"][0]["state"] == "online" && s["accounts"][0]["last_sync"].is_string()
    })?;
    agent.cli_ok(&["sync"])?;
    std::thread::sleep(Duration::from_secs(3));
    ensure!(
        postfix.delivered_to("bob@localhost") == 1,
        "bob got it once\n{}",
        postfix.log()
    );
    // Parked with its reason, visible in `ops`.
    let ops = agent.call("ops", json!({"account": "alice"}))?;
    let parked = ops
        .as_array()
        .and_then(|a| a.iter().find(|e| e["op"] == op))
        .with_context(|| format!("op {op} in {ops}"))?;
    ensure!(
        parked["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("may have")),
        "{parked}"
    );
    ensure!(parked["parked"] == true, "{parked}");
    Ok(())
}

#[test]
fn a_password_command_that_never_returns_times_out_with_a_clear_error() -> Result<()> {
    let dovecot = Dovecot::start()?;
    let mut spec = AccountSpec::for_user("alice").imap_from(&dovecot);
    spec.password_command = Some("sleep 617; echo alice-pw".into());
    let launch = opconnect_tests::agent::Launch {
        wrapper: vec!["env".into(), "OPCONNECT_PASSWORD_TIMEOUT=2".into()],
        ..Default::default()
    };
    let agent = Agent::start_with(&config(&[spec]), launch)?;
    let status = agent.wait_for(Duration::from_secs(15), |s| {
        s["accounts"][0]["services"]["imap"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("did not finish within 2s"))
    })?;
    ensure!(status["accounts"][0]["state"] != "online", "{status}");
    // It was stopped, with its children: no `sleep 617` is left behind.
    let left = std::process::Command::new("pgrep")
        .args(["-fx", "sleep 617"])
        .output()?;
    ensure!(
        !left.status.success(),
        "still running: {}",
        String::from_utf8_lossy(&left.stdout)
    );
    Ok(())
}
