//! Sending mail: `mail.send` submits over SMTP with AUTH (a private Postfix, SASL through Dovecot,
//! delivering into Dovecot over LMTP) and files one copy in Sent; a message sent while the servers
//! are down is delivered exactly once after they return, even across a `kill -9` of the agent; a
//! message the server will not take is kept, not lost.

use std::fs;
use std::time::Duration;

use anyhow::{Result, ensure};
use base64::Engine as _;
use opconnect_tests::config::render_config;
use opconnect_tests::{AccountSpec, Agent, AgentSettings, Dovecot, Postfix};
use serde_json::json;

/// Postfix delivers after its `250`; this bounds the wait for the LMTP outcome.
const DELIVERY: Duration = Duration::from_secs(20);

fn message(id: &str, to: &str) -> String {
    let raw = format!(
        "From: Alice <alice@localhost>\r\nTo: {to}\r\nBcc: carol@localhost\r\nSubject: sent {id}\r\n\
         Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{id}@localhost>\r\n\r\nHello from {id}\r\n"
    );
    base64::engine::general_purpose::STANDARD.encode(raw)
}

fn agent_with_smtp(dovecot: &Dovecot, postfix: &Postfix) -> Result<Agent> {
    let mut spec = AccountSpec::for_user("alice").imap_from(dovecot);
    spec.smtp = Some(postfix.url());
    let agent = Agent::start(&render_config(&AgentSettings::default(), &[spec]))?;
    agent.wait_for(Duration::from_secs(20), |s| {
        s["accounts"][0]["state"] == "online" && s["accounts"][0]["last_sync"].is_string()
    })?;
    Ok(agent)
}

/// Every message file in `user`'s INBOX, as stored by Dovecot.
fn inbox_files(dovecot: &Dovecot, user: &str) -> Result<Vec<String>> {
    let maildir = dovecot.dir().join("mail").join(user).join("Maildir");
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        for entry in fs::read_dir(maildir.join(sub))?.flatten() {
            out.push(fs::read_to_string(entry.path())?);
        }
    }
    Ok(out)
}

/// Exactly one message from alice went through Postfix; bob got it once, and carol (only in Bcc)
/// was in the same envelope. Carol has no mailbox in Dovecot: LMTP refuses her, which the maillog
/// records as her outcome (the test counts envelopes, not mailboxes, for her).
fn delivered_once(postfix: &Postfix) -> Result<()> {
    let bob = postfix.wait_for_outcome("bob@localhost", DELIVERY)?;
    let carol = postfix.wait_for_outcome("carol@localhost", DELIVERY)?;
    let accepted = postfix.accepted_from("alice@localhost");
    ensure!(
        accepted.len() == 1,
        "one message from alice: {accepted:?}\n{}",
        postfix.log()
    );
    ensure!(bob.queue_id == accepted[0] && bob.status == "sent", "{bob:?}");
    ensure!(
        carol.queue_id == accepted[0],
        "Bcc is in the envelope of the same message: {carol:?}"
    );
    ensure!(
        postfix.delivered_to("bob@localhost") == 1,
        "bob got it once\n{}",
        postfix.log()
    );
    Ok(())
}

#[test]
fn a_sent_message_is_delivered_once_with_one_copy_in_sent() -> Result<()> {
    let (dovecot, postfix) = Postfix::with_dovecot()?;
    let agent = agent_with_smtp(&dovecot, &postfix)?;
    let answer = agent.call(
        "mail.send",
        json!({"account": "alice", "raw": message("online", "Bob <bob@localhost>"), "wait": true}),
    )?;
    ensure!(answer["message_id"] == "<online@localhost>", "{answer}");
    delivered_once(&postfix)?;
    let bob_inbox = inbox_files(&dovecot, "bob")?;
    ensure!(bob_inbox.len() == 1, "{bob_inbox:?}");
    ensure!(
        bob_inbox[0].contains("Message-ID: <online@localhost>") && !bob_inbox[0].contains("Bcc:"),
        "Bcc is not in the transmitted message: {}",
        bob_inbox[0]
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
    let (mut dovecot, mut postfix) = Postfix::with_dovecot()?;
    let mut agent = agent_with_smtp(&dovecot, &postfix)?;
    postfix.stop();
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
    postfix.start_again()?;
    agent.restart()?;
    agent.wait_for(Duration::from_secs(30), |s| s["accounts"][0]["pending_ops"] == 0)?;
    delivered_once(&postfix)?;
    let mut probe = dovecot.probe("alice")?;
    probe.select("Sent")?;
    ensure!(
        probe.uid_search("HEADER Message-ID <offline@localhost>")?.len() == 1,
        "one copy in Sent"
    );
    // A sync afterwards sends nothing again.
    agent.cli_ok(&["sync"])?;
    std::thread::sleep(Duration::from_secs(1));
    delivered_once(&postfix)?;
    ensure!(inbox_files(&dovecot, "bob")?.len() == 1, "bob has it once");
    Ok(())
}
