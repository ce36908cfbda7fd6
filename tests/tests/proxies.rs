//! End-to-end tests of proxies (issue 21): an account's `proxy` carries IMAP, ManageSieve and
//! CalDAV/CardDAV through a real HTTP proxy (tinyproxy, CONNECT tunnels and absolute-form
//! requests) and a real SOCKS5 proxy (microsocks); the proxies' logs show the connections. The
//! `*_PROXY` variables leave loopback servers direct. SMTP goes through both to a private Postfix.
//!
//! ```text
//!   opconnect run ──proxy──▶ tinyproxy / microsocks ──▶ Dovecot (IMAP, Sieve) · Radicale
//! ```

use std::time::Duration;

use anyhow::Result;
use base64::Engine as _;
use opconnect_tests::agent::Launch;
use opconnect_tests::config::render_config;
use opconnect_tests::proxies::{LocalProxy, mail_calendar_and_ooo_answer};
use opconnect_tests::{AccountSpec, Agent, AgentSettings, DavServer, Dovecot, Postfix, Radicale};
use serde_json::json;

fn config(dovecot: &Dovecot, radicale: &Radicale, proxy: Option<&str>) -> String {
    let account = AccountSpec::for_user("alice")
        .imap_from(dovecot)
        .sieve_from(dovecot)
        .dav_from(radicale);
    let mut text = render_config(&AgentSettings::default(), &[account]);
    if let Some(p) = proxy {
        text.push_str(&format!("proxy = \"{p}\"\n"));
    }
    text
}

/// Mail, calendars and out-of-office all answer through the agent.
fn everything_works(agent: &Agent, cal: &str) -> Result<()> {
    mail_calendar_and_ooo_answer(agent, cal, Duration::from_secs(30)).map(drop)
}

fn servers() -> Result<(Dovecot, Radicale, String)> {
    let dovecot = Dovecot::start()?;
    let radicale = Radicale::start()?;
    let cal = radicale.create_calendar("alice", "work", "Work")?;
    radicale.put_event(
        "alice",
        &cal,
        "e1",
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:e1\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20270101T100000Z\r\nSUMMARY:E1\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
    )?;
    Ok((dovecot, radicale, cal))
}

#[test]
fn an_http_proxy_carries_imap_sieve_and_dav() -> Result<()> {
    let (dovecot, radicale, cal) = servers()?;
    let proxy = LocalProxy::tinyproxy()?;
    let agent = Agent::start(&config(&dovecot, &radicale, Some(&proxy.url())))?;
    everything_works(&agent, &cal)?;
    let log = proxy.log();
    // IMAP and ManageSieve through CONNECT tunnels, DAV as absolute-form requests.
    for want in [
        format!("CONNECT 127.0.0.1:{}", dovecot.imap_port()),
        format!("CONNECT 127.0.0.1:{}", dovecot.sieve_port()),
        format!("PROPFIND http://127.0.0.1:{}/", radicale.port()),
    ] {
        assert!(log.contains(&want), "tinyproxy's log lacks {want:?}:\n{log}");
    }
    Ok(())
}

#[test]
fn a_socks5_proxy_carries_imap_sieve_and_dav() -> Result<()> {
    let (dovecot, radicale, cal) = servers()?;
    let proxy = LocalProxy::microsocks()?;
    let agent = Agent::start(&config(&dovecot, &radicale, Some(&proxy.url())))?;
    everything_works(&agent, &cal)?;
    let log = proxy.log();
    for port in [dovecot.imap_port(), dovecot.sieve_port(), radicale.port()] {
        assert!(
            log.contains(&format!("127.0.0.1:{port}")) || log.contains(&format!("127.0.0.1 port {port}")),
            "microsocks' log lacks port {port}:\n{log}"
        );
    }
    Ok(())
}

#[test]
fn proxy_variables_leave_loopback_direct() -> Result<()> {
    let (dovecot, radicale, cal) = servers()?;
    let proxy = LocalProxy::tinyproxy()?;
    let launch = Launch {
        wrapper: vec![
            "env".into(),
            format!("ALL_PROXY={}", proxy.url()),
            format!("HTTP_PROXY={}", proxy.url()),
            format!("HTTPS_PROXY={}", proxy.url()),
        ],
        ..Launch::default()
    };
    let agent = Agent::start_with(&config(&dovecot, &radicale, None), launch)?;
    everything_works(&agent, &cal)?;
    let log = proxy.log();
    assert!(
        !log.contains("CONNECT 127.0.0.1:") && !log.contains("PROPFIND http"),
        "nothing for loopback went through the proxy:\n{log}"
    );
    Ok(())
}

/// `mail.send` through `proxy`: the message reaches bob via the private Postfix.
fn sends_through(proxy: &LocalProxy) -> Result<()> {
    let (dovecot, postfix) = Postfix::with_dovecot()?;
    let mut spec = AccountSpec::for_user("alice").imap_from(&dovecot);
    spec.smtp = Some(postfix.url());
    let mut config = render_config(&AgentSettings::default(), &[spec]);
    config.push_str(&format!("proxy = \"{}\"\n", proxy.url()));
    let agent = Agent::start(&config)?;
    agent.wait_for_state("alice", "online", Duration::from_secs(30))?;
    let raw = "From: Alice <alice@localhost>\r\nTo: bob@localhost\r\nSubject: via proxy\r\n\
               Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <proxied@localhost>\r\n\r\nHello\r\n";
    let answer = agent.call(
        "mail.send",
        json!({"account": "alice", "raw": base64::engine::general_purpose::STANDARD.encode(raw), "wait": true}),
    )?;
    assert_eq!(answer["message_id"], "<proxied@localhost>", "{answer}");
    postfix.wait_for_outcome("bob@localhost", Duration::from_secs(20))?;
    let log = proxy.log();
    assert!(
        log.contains(&format!("127.0.0.1:{}", postfix.port()))
            || log.contains(&format!("127.0.0.1 port {}", postfix.port())),
        "the proxy's log lacks the SMTP connection:\n{log}"
    );
    Ok(())
}

#[test]
fn smtp_goes_through_an_http_proxy() -> Result<()> {
    sends_through(&LocalProxy::tinyproxy()?)
}

#[test]
fn smtp_goes_through_a_socks5_proxy() -> Result<()> {
    sends_through(&LocalProxy::microsocks()?)
}
