//! Proxies that want a login (issue 21): an account's `proxy = "http://USER:PASSWORD@…"` or
//! `"socks5://USER:PASSWORD@…"` carries IMAP, ManageSieve, CalDAV/CardDAV and SMTP through
//! tinyproxy with `BasicAuth` (CONNECT and absolute-form requests with `Proxy-Authorization:
//! Basic`, RFC 9110 §11.7.1) and microsocks with `-u -P` (RFC 1929). A wrong password ends in a
//! clear error naming the proxy and its user, in the status, the log and the report's advice;
//! the password is never in a log file (at trace), an answer or the report.
//!
//! ```text
//!   opconnect run ──Proxy-Authorization / RFC 1929──▶ tinyproxy / microsocks ──▶ Dovecot · Radicale · Postfix
//! ```

use std::time::Duration;

use anyhow::{Result, ensure};
use base64::Engine as _;
use opconnect_tests::agent::{Launch, service_state};
use opconnect_tests::config::render_config;
use opconnect_tests::postfix::dovecot_options;
use opconnect_tests::proxies::{LocalProxy, mail_calendar_and_ooo_answer};
use opconnect_tests::radicale::RadicaleOptions;
use opconnect_tests::{AccountSpec, Agent, AgentSettings, DavServer, Dovecot, Postfix, Radicale, ports, tls};
use serde_json::json;

const USER: &str = "proxyuser";
const SECRET: &str = "Pr0xy-s3cret-42";

/// The proxy password and the forms it travels in (HTTP Basic, RFC 7617; RFC 1929 in clear).
fn secret_forms() -> Vec<String> {
    vec![
        SECRET.to_owned(),
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{SECRET}")),
    ]
}

struct Servers {
    dovecot: Dovecot,
    postfix: Postfix,
    radicale: Radicale,
    cal: String,
}

fn servers() -> Result<Servers> {
    let auth_port = ports::free_port()?;
    let dovecot = Dovecot::start_with(dovecot_options(auth_port))?;
    let postfix = Postfix::start(&dovecot, auth_port)?;
    let radicale = Radicale::start()?;
    let cal = radicale.create_calendar("alice", "work", "Work")?;
    radicale.put_event(
        "alice",
        &cal,
        "e1",
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:e1\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20270101T100000Z\r\nSUMMARY:E1\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
    )?;
    Ok(Servers {
        dovecot,
        postfix,
        radicale,
        cal,
    })
}

/// The agent at trace, with every server of alice behind `proxy_url`.
fn agent(s: &Servers, proxy_url: &str) -> Result<Agent> {
    let mut spec = AccountSpec::for_user("alice")
        .imap_from(&s.dovecot)
        .sieve_from(&s.dovecot)
        .dav_from(&s.radicale);
    spec.smtp = Some(s.postfix.url());
    let mut config = render_config(&AgentSettings::default(), &[spec]);
    config.push_str(&format!("proxy = \"{proxy_url}\"\n"));
    let launch = Launch {
        wrapper: vec!["env".into(), "OPCONNECT_LOG=trace".into()],
        ..Launch::default()
    };
    Agent::start_with(&config, launch)
}

/// Files under the agent's dir (but config.toml, which holds the proxy URL by design) and the
/// texts given that hold a form of the proxy password.
fn leaks(agent: &Agent, outputs: &[(&str, String)]) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![agent.dir().to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n != "config.toml") {
                let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap_or_default()).into_owned();
                for form in secret_forms() {
                    if text.contains(&form) {
                        found.push(format!("{} holds {form:?}", path.display()));
                    }
                }
            }
        }
    }
    for (name, text) in outputs {
        for form in secret_forms() {
            if text.contains(&form) {
                found.push(format!("{name} holds {form:?}"));
            }
        }
    }
    found
}

/// Mail, calendars, out-of-office and a sent message all go through the proxy's login.
fn everything_works_through(proxy: &LocalProxy) -> Result<()> {
    let s = servers()?;
    let agent = agent(&s, &proxy.url_with_login(USER, SECRET))?;
    let ooo = mail_calendar_and_ooo_answer(&agent, &s.cal, Duration::from_secs(40))?;
    let raw = "From: Alice <alice@localhost>\r\nTo: bob@localhost\r\nSubject: via a proxy login\r\n\
               Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <proxy-login@localhost>\r\n\r\nHello\r\n";
    let sent = agent.call(
        "mail.send",
        json!({"account": "alice", "raw": base64::engine::general_purpose::STANDARD.encode(raw), "wait": true}),
    )?;
    ensure!(sent["message_id"] == "<proxy-login@localhost>", "{sent}");
    s.postfix
        .wait_for_outcome("bob@localhost", Duration::from_secs(20))?;
    let log = proxy.log();
    for port in [
        s.dovecot.imap_port(),
        s.dovecot.sieve_port(),
        s.radicale.port(),
        s.postfix.port(),
    ] {
        ensure!(
            log.contains(&format!("127.0.0.1:{port}")) || log.contains(&format!("127.0.0.1 port {port}")),
            "the proxy's log lacks port {port}:\n{log}"
        );
    }
    let status = agent.cli_ok(&["status", "--json"])?;
    let report = agent.cli_ok(&["report", "alice", "--format", "json"])?;
    let found = leaks(
        &agent,
        &[
            ("status", status),
            ("report", report),
            ("ooo.get", ooo.to_string()),
        ],
    );
    ensure!(found.is_empty(), "the proxy password leaked: {found:#?}");
    Ok(())
}

#[test]
fn an_http_proxy_login_carries_imap_sieve_dav_and_smtp() -> Result<()> {
    let proxy = LocalProxy::tinyproxy_with_login(USER, SECRET)?;
    everything_works_through(&proxy)?;
    let log = proxy.log();
    ensure!(
        log.contains("CONNECT 127.0.0.1:") && log.contains("PROPFIND http://127.0.0.1:"),
        "IMAP went through CONNECT, DAV as absolute-form requests:\n{log}"
    );
    Ok(())
}

#[test]
fn a_socks5_proxy_login_carries_imap_sieve_dav_and_smtp() -> Result<()> {
    everything_works_through(&LocalProxy::microsocks_with_login(USER, SECRET)?)
}

/// A wrong password: every service stops at the proxy with an error naming it and its user;
/// the report says what to do; nothing holds the password.
fn a_wrong_password_is_named(proxy: &LocalProxy, s: &Servers) -> Result<()> {
    let agent = agent(s, &proxy.url_with_login(USER, "wrong-Pa55"))?;
    let status = agent.wait_for(Duration::from_secs(30), |st| {
        ["imap", "caldav"]
            .iter()
            .all(|svc| service_state(st, "alice", svc) == Some("error"))
    })?;
    let named = format!("proxy {}", proxy.url());
    let error = |svc: &str| {
        status["accounts"][0]["services"][svc]["error"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    ensure!(
        error("imap").contains(&named)
            && error("imap").contains("refused the login")
            && error("imap").contains(USER),
        "IMAP's error names the proxy, its user and the refused login: {status}"
    );
    // reqwest's SOCKS5 refusal says so; a wrong login to tinyproxy's absolute-form requests
    // comes back as a 401 like a server's (tinyproxy sends 401, not 407), so it reads as a
    // refused password.
    if proxy.url().starts_with("socks5") {
        ensure!(error("caldav").contains("login"), "CalDAV: {status}");
    }
    let report = agent.cli_ok(&["report", "alice", "--format", "json"])?;
    let parsed: serde_json::Value = serde_json::from_str(&report)?;
    let action = parsed["proxy"]["action"].as_str().unwrap_or_default();
    ensure!(
        action.contains(&proxy.url()) && action.contains("refused the login") && action.contains(USER),
        "the report says which proxy refused which login: {report}"
    );
    let table = agent.cli_ok(&["report", "alice"])?;
    ensure!(table.contains("To do: the proxy"), "{table}");
    ensure!(
        agent.log().contains("refused the login"),
        "the log says so:\n{}",
        agent.log()
    );
    let found = leaks(
        &agent,
        &[
            ("status", status.to_string()),
            ("report", report),
            ("table", table),
        ],
    );
    // The wrong password is a secret too.
    ensure!(
        found.is_empty() && !agent.log().contains("wrong-Pa55"),
        "a proxy password leaked: {found:#?}"
    );
    Ok(())
}

#[test]
fn a_wrong_proxy_password_is_named_without_the_password() -> Result<()> {
    let s = servers()?;
    a_wrong_password_is_named(&LocalProxy::tinyproxy_with_login(USER, SECRET)?, &s)?;
    a_wrong_password_is_named(&LocalProxy::microsocks_with_login(USER, SECRET)?, &s)
}

/// `https://` DAV goes through reqwest's own CONNECT tunnel, which must carry the login too; TLS
/// runs inside it, end to end with Radicale, whose self-signed certificate is pinned.
#[test]
fn https_dav_goes_through_the_proxy_login_in_a_connect_tunnel() -> Result<()> {
    let radicale = Radicale::start_with(RadicaleOptions {
        tls: true,
        ..RadicaleOptions::default()
    })?;
    let fp = tls::fingerprint(&radicale.dir().join("tls/server.pem"))?;
    let proxy = LocalProxy::tinyproxy_with_login(USER, SECRET)?;
    let spec = AccountSpec::for_user("alice").dav_from(&radicale);
    let mut config = render_config(&AgentSettings::default(), &[spec]);
    config.push_str(&format!(
        "proxy = \"{}\"\ntls_pins = {{ \"localhost\" = \"{fp}\" }}\n",
        proxy.url_with_login(USER, SECRET)
    ));
    let launch = Launch {
        wrapper: vec!["env".into(), "OPCONNECT_LOG=trace".into()],
        ..Launch::default()
    };
    let agent = Agent::start_with(&config, launch)?;
    let status = agent.wait_for(Duration::from_secs(40), |st| {
        ["caldav", "carddav"]
            .iter()
            .all(|svc| service_state(st, "alice", svc) == Some("online"))
    })?;
    let log = proxy.log();
    ensure!(
        log.contains(&format!("CONNECT localhost:{}", radicale.port())),
        "DAV went through a CONNECT tunnel with the login:\n{log}"
    );
    let found = leaks(&agent, &[("status", status.to_string())]);
    ensure!(found.is_empty(), "the proxy password leaked: {found:#?}");
    Ok(())
}
