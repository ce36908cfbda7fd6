//! A self-signed certificate on the submission server (issue 21): a private Postfix with an
//! implicit-TLS listener (RFC 8314 §3) presenting a certificate made by `openssl req -x509`.
//! Without a pin `mail.send` is refused and nothing goes out; pinned in `tls_pins`, the message is
//! delivered once. lettre's own TLS takes no pin, so the agent speaks TLS itself and lettre talks
//! through it.

use std::time::Duration;

use anyhow::{Result, ensure};
use base64::Engine as _;
use opconnect_tests::config::render_config;
use opconnect_tests::postfix::dovecot_options;
use opconnect_tests::{AccountSpec, Agent, AgentSettings, Dovecot, Postfix, ports, tls};
use serde_json::json;

fn message(id: &str) -> String {
    let raw = format!(
        "From: Alice <alice@localhost>\r\nTo: Bob <bob@localhost>\r\nSubject: pinned {id}\r\n\
         Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{id}@localhost>\r\n\r\nHello\r\n"
    );
    base64::engine::general_purpose::STANDARD.encode(raw)
}

fn agent(dovecot: &Dovecot, postfix: &Postfix, pin: Option<&str>) -> Result<Agent> {
    let mut spec = AccountSpec::for_user("alice").imap_from(dovecot);
    spec.smtp = Some(format!("smtps://127.0.0.1:{}", postfix.smtps_port().unwrap()));
    let mut config = render_config(&AgentSettings::default(), &[spec]);
    if let Some(fp) = pin {
        config.push_str(&format!("tls_pins = {{ \"127.0.0.1\" = \"{fp}\" }}\n"));
    }
    let agent = Agent::start(&config)?;
    agent.wait_for(Duration::from_secs(20), |s| {
        s["accounts"][0]["state"] == "online" && s["accounts"][0]["last_sync"].is_string()
    })?;
    Ok(agent)
}

#[test]
fn a_pinned_self_signed_submission_server_delivers_and_an_unpinned_one_sends_nothing() -> Result<()> {
    let auth_port = ports::free_port()?;
    let dovecot = Dovecot::start_with(dovecot_options(auth_port))?;
    let tls_dir = dovecot.dir().join("smtp-tls");
    let fp = tls::make_self_signed(&tls_dir)?;
    let postfix = Postfix::start_tls(&dovecot, auth_port, Some(&tls_dir))?;

    // Not pinned: refused at the handshake, nothing submitted, the message stays in the journal.
    let unpinned = agent(&dovecot, &postfix, None)?;
    let refused = unpinned.call(
        "mail.send",
        json!({"account": "alice", "raw": message("unpinned"), "wait": true}),
    );
    let error = format!("{refused:?}");
    ensure!(
        refused.is_err() && error.contains(&fp) && error.contains("tls_pins"),
        "an unpinned self-signed server is refused at once, naming its fingerprint and tls_pins: {error}"
    );
    ensure!(
        postfix.accepted_from("alice@localhost").is_empty(),
        "nothing went out\n{}",
        postfix.log()
    );
    drop(unpinned);

    // Pinned by its SHA-256 fingerprint: delivered once.
    let pinned = agent(&dovecot, &postfix, Some(&fp))?;
    let sent = pinned.call(
        "mail.send",
        json!({"account": "alice", "raw": message("pinned"), "wait": true}),
    );
    ensure!(sent.is_ok(), "{sent:?}\n{}", postfix.log());
    let bob = postfix.wait_for_outcome("bob@localhost", Duration::from_secs(20))?;
    ensure!(bob.status == "sent", "{bob:?}\n{}", postfix.log());
    ensure!(postfix.delivered_to("bob@localhost") == 1, "{}", postfix.log());
    Ok(())
}
