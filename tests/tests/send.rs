//! Sending mail: `mail.send` submits over SMTP with AUTH and files one copy in Sent; a message sent
//! while the servers are down is delivered exactly once after they return, even across a
//! `kill -9` of the agent; a message the server will not take is kept, not lost.

use std::time::Duration;

use anyhow::{Result, ensure};
use base64::Engine as _;
use opconnect_tests::config::render_config;
use opconnect_tests::{AccountSpec, Agent, AgentSettings, Dovecot, SmtpRelay};
use serde_json::json;

fn message(id: &str, to: &str) -> String {
    let raw = format!(
        "From: Alice <alice@localhost>\r\nTo: {to}\r\nBcc: carol@localhost\r\nSubject: sent {id}\r\n\
         Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{id}@localhost>\r\n\r\nHello from {id}\r\n"
    );
    base64::engine::general_purpose::STANDARD.encode(raw)
}

fn agent_with_smtp(dovecot: &Dovecot, relay: &SmtpRelay) -> Result<Agent> {
    let mut spec = AccountSpec::for_user("alice").imap_from(dovecot);
    spec.smtp = Some(relay.url());
    let agent = Agent::start(&render_config(&AgentSettings::default(), &[spec]))?;
    agent.wait_for(Duration::from_secs(20), |s| {
        s["accounts"][0]["state"] == "online" && s["accounts"][0]["last_sync"].is_string()
    })?;
    Ok(agent)
}

#[test]
fn a_sent_message_is_delivered_once_with_one_copy_in_sent() -> Result<()> {
    let dovecot = Dovecot::start()?;
    let relay = SmtpRelay::start(dovecot.lmtp_port())?;
    let agent = agent_with_smtp(&dovecot, &relay)?;
    let answer = agent.call(
        "mail.send",
        json!({"account": "alice", "raw": message("online", "Bob <bob@localhost>"), "wait": true}),
    )?;
    ensure!(answer["message_id"] == "<online@localhost>", "{answer}");
    let delivered = relay.delivered()?;
    ensure!(delivered.len() == 1, "{delivered:?}");
    let to = delivered[0]["to"].to_string();
    ensure!(
        to.contains("bob@localhost") && to.contains("carol@localhost"),
        "Bcc is in the envelope: {to}"
    );
    ensure!(
        !delivered[0]["data"].as_str().unwrap_or("").contains("Bcc:"),
        "but not in the transmitted message"
    );
    let mut probe = dovecot.probe("bob")?;
    probe.select("INBOX")?;
    ensure!(
        probe.uid_search("HEADER Message-ID <online@localhost>")?.len() == 1,
        "bob got it"
    );
    let mut probe = dovecot.probe("alice")?;
    probe.select("Sent")?;
    ensure!(
        probe
            .uid_search("SEEN HEADER Message-ID <online@localhost>")?
            .len()
            == 1,
        "one copy in Sent"
    );
    // Refused before journaling: no recipient.
    let raw =
        base64::engine::general_purpose::STANDARD.encode("From: alice@localhost\r\nSubject: x\r\n\r\nx\r\n");
    let bad = agent.cli(&[
        "call",
        "mail.send",
        &json!({"account": "alice", "raw": raw}).to_string(),
    ]);
    assert_eq!(bad.status.code(), Some(1));
    ensure!(
        String::from_utf8_lossy(&bad.stderr).contains("recipient"),
        "{bad:?}"
    );
    Ok(())
}

#[test]
fn a_message_sent_offline_is_delivered_once_after_reconnecting() -> Result<()> {
    let mut dovecot = Dovecot::start()?;
    let mut relay = SmtpRelay::start(dovecot.lmtp_port())?;
    let mut agent = agent_with_smtp(&dovecot, &relay)?;
    relay.stop();
    dovecot.stop();
    agent.wait_for_state("alice", "offline", Duration::from_secs(15))?;
    let answer = agent.call(
        "mail.send",
        json!({"account": "alice", "raw": message("offline", "bob@localhost")}),
    )?;
    ensure!(answer["op"].as_u64().is_some(), "{answer}");
    assert_eq!(agent.status_json()?["accounts"][0]["pending_ops"], 1);
    // A crash while offline loses nothing.
    agent.kill();
    dovecot.start_again()?;
    relay.start_again()?;
    agent.restart()?;
    agent.wait_for(Duration::from_secs(30), |s| s["accounts"][0]["pending_ops"] == 0)?;
    ensure!(relay.delivered()?.len() == 1, "delivered exactly once");
    let mut probe = dovecot.probe("alice")?;
    probe.select("Sent")?;
    ensure!(
        probe.uid_search("HEADER Message-ID <offline@localhost>")?.len() == 1,
        "one copy in Sent"
    );
    // A sync afterwards sends nothing again.
    agent.cli_ok(&["sync"])?;
    std::thread::sleep(Duration::from_secs(1));
    ensure!(relay.delivered()?.len() == 1, "still exactly once");
    Ok(())
}
