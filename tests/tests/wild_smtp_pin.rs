//! A self-signed certificate on the submission server (issue 21): a private Postfix with an
//! implicit-TLS listener (RFC 8314 §3) and a STARTTLS listener (RFC 3207) presenting a
//! certificate made by `openssl req -x509`. Without a pin `mail.send` is refused and nothing goes
//! out; pinned in `tls_pins`, the message is delivered once, over either, directly or through a
//! proxy (tinyproxy's CONNECT, microsocks). lettre's own TLS takes no pin, so the agent speaks TLS
//! (and STARTTLS) itself and lettre talks through it. Plaintext submission to a loopback server
//! without STARTTLS is in `tests/tests/proxies.rs` and the mail tests.

use std::time::Duration;

use anyhow::{Result, ensure};
use base64::Engine as _;
use opconnect_tests::config::render_config;
use opconnect_tests::postfix::dovecot_options;
use opconnect_tests::proxies::LocalProxy;
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
    let smtps = format!("smtps://127.0.0.1:{}", postfix.smtps_port().unwrap());
    agent_at(dovecot, &smtps, pin, None)
}

fn agent_at(dovecot: &Dovecot, smtp: &str, pin: Option<&str>, proxy: Option<&str>) -> Result<Agent> {
    let mut spec = AccountSpec::for_user("alice").imap_from(dovecot);
    spec.smtp = Some(smtp.to_owned());
    let mut config = render_config(&AgentSettings::default(), &[spec]);
    if let Some(fp) = pin {
        config.push_str(&format!("tls_pins = {{ \"127.0.0.1\" = \"{fp}\" }}\n"));
    }
    if let Some(p) = proxy {
        config.push_str(&format!("proxy = \"{p}\"\n"));
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

fn self_signed_postfix() -> Result<(Dovecot, Postfix, String)> {
    let auth_port = ports::free_port()?;
    let dovecot = Dovecot::start_with(dovecot_options(auth_port))?;
    let tls_dir = dovecot.dir().join("smtp-tls");
    let fp = tls::make_self_signed(&tls_dir)?;
    let postfix = Postfix::start_tls(&dovecot, auth_port, Some(&tls_dir))?;
    Ok((dovecot, postfix, fp))
}

#[test]
fn starttls_to_a_pinned_self_signed_server_delivers_and_unpinned_sends_nothing() -> Result<()> {
    let (dovecot, postfix, fp) = self_signed_postfix()?;
    let url = format!("smtp://127.0.0.1:{}", postfix.starttls_port().unwrap());

    // Not pinned: the agent's STARTTLS refuses the certificate, naming it; nothing submitted.
    let unpinned = agent_at(&dovecot, &url, None, None)?;
    let refused = unpinned.call(
        "mail.send",
        json!({"account": "alice", "raw": message("starttls-unpinned"), "wait": true}),
    );
    let error = format!("{refused:?}");
    ensure!(
        refused.is_err() && error.contains(&fp) && error.contains("tls_pins"),
        "an unpinned self-signed STARTTLS server is refused at once, naming its fingerprint: {error}"
    );
    ensure!(
        postfix.accepted_from("alice@localhost").is_empty(),
        "{}",
        postfix.log()
    );
    drop(unpinned);

    // Pinned: the agent's own STARTTLS, then lettre over the TLS stream.
    let pinned = agent_at(&dovecot, &url, Some(&fp), None)?;
    let sent = pinned.call(
        "mail.send",
        json!({"account": "alice", "raw": message("starttls-pinned"), "wait": true}),
    );
    ensure!(sent.is_ok(), "{sent:?}\n{}", postfix.log());
    let bob = postfix.wait_for_outcome("bob@localhost", Duration::from_secs(20))?;
    ensure!(bob.status == "sent", "{bob:?}\n{}", postfix.log());
    ensure!(postfix.delivered_to("bob@localhost") == 1, "{}", postfix.log());
    ensure!(
        postfix.log().contains("STARTTLS") || postfix.log().contains("TLS connection established"),
        "Postfix saw TLS:\n{}",
        postfix.log()
    );
    Ok(())
}

#[test]
fn smtps_and_pinned_starttls_go_through_proxies() -> Result<()> {
    let (dovecot, postfix, fp) = self_signed_postfix()?;
    let smtps_port = postfix.smtps_port().unwrap();
    let starttls_port = postfix.starttls_port().unwrap();
    let cases = [
        (
            LocalProxy::tinyproxy()?,
            format!("smtps://127.0.0.1:{smtps_port}"),
            smtps_port,
            "via-http-smtps",
        ),
        (
            LocalProxy::microsocks()?,
            format!("smtps://127.0.0.1:{smtps_port}"),
            smtps_port,
            "via-socks-smtps",
        ),
        (
            LocalProxy::tinyproxy()?,
            format!("smtp://127.0.0.1:{starttls_port}"),
            starttls_port,
            "via-http-starttls",
        ),
    ];
    for (n, (proxy, url, port, id)) in cases.iter().enumerate() {
        let agent = agent_at(&dovecot, url, Some(&fp), Some(&proxy.url()))?;
        let sent = agent.call(
            "mail.send",
            json!({"account": "alice", "raw": message(id), "wait": true}),
        );
        ensure!(sent.is_ok(), "{id}: {sent:?}\n{}", postfix.log());
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while postfix.delivered_to("bob@localhost") < n + 1 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
        ensure!(
            postfix.delivered_to("bob@localhost") == n + 1,
            "{id}: delivered once\n{}",
            postfix.log()
        );
        let log = proxy.log();
        ensure!(
            log.contains(&format!("127.0.0.1:{port}")) || log.contains(&format!("127.0.0.1 port {port}")),
            "{id}: the proxy carried the submission:\n{log}"
        );
    }
    Ok(())
}
