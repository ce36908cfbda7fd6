//! Hostile DAV servers, scripted on 127.0.0.1 and 127.0.0.2: where the agent sends the account's
//! credentials (one rule for every URL: encrypted or loopback by address, and only to the
//! configured host or hosts it names in discovery), and what a body larger than memory does.
//!
//! ```text
//!   agent ──PROPFIND──► fake A 127.0.0.1:P ── principal http://[::ffff:127.0.0.1]:P/ ─► refused
//!                                          ── 307 http://127.0.0.2:Q/ ─► fake B, no Authorization
//!                                          ── principal http://127.0.0.2:Q/alice/ ─► B, with it
//! ```

mod hostile_common;

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use hostile_common::{EMPTY_MULTISTATUS, FakeHttp, Reply, Seen, one_prop};
use opconnect_tests::agent::service_state;
use opconnect_tests::config::render_config;
use opconnect_tests::{AccountSpec, Agent, AgentSettings};
use serde_json::Value;

fn caldav_agent(url: &str) -> Result<Agent> {
    let mut spec = AccountSpec::for_user("alice");
    spec.caldav = Some(url.to_owned());
    Agent::start(&render_config(&AgentSettings::default(), &[spec]))
}

fn caldav_error(status: &Value) -> String {
    status["accounts"][0]["services"]["caldav"]["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A small CalDAV server: principal at `principal`, home `/alice/home/` (no collections).
fn dav_answer(req: &Seen, principal: &str) -> Reply {
    if req.method == "OPTIONS" {
        return Reply::options();
    }
    if req.authorization.is_none() {
        return Reply::unauthorized();
    }
    if req.body.contains("current-user-principal") {
        let prop =
            format!("<d:current-user-principal><d:href>{principal}</d:href></d:current-user-principal>");
        return Reply::multistatus(&one_prop(&req.path, &prop));
    }
    if req.body.contains("calendar-home-set") {
        let prop = "<c:calendar-home-set><d:href>/alice/home/</d:href></c:calendar-home-set>";
        return Reply::multistatus(&one_prop(&req.path, prop));
    }
    Reply::multistatus(EMPTY_MULTISTATUS)
}

fn settled(s: &Value) -> bool {
    matches!(service_state(s, "alice", "caldav"), Some("error" | "online"))
}

#[test]
fn a_principal_link_to_an_ipv4_mapped_address_receives_no_credentials() -> Result<()> {
    let dav = FakeHttp::start("127.0.0.1", |req, port| {
        dav_answer(req, &format!("http://[::ffff:127.0.0.1]:{port}/alice/"))
    });
    let agent = caldav_agent(&dav.url())?;
    let status = agent.wait_for(Duration::from_secs(20), settled)?;
    let seen = dav.seen();
    // The mapped address reaches this same listener: a request there would be seen.
    let leaked: Vec<&Seen> = seen
        .iter()
        .filter(|r| r.host.contains("ffff") && r.authorization.is_some())
        .collect();
    ensure!(
        leaked.is_empty(),
        "credentials sent to the IPv4-mapped link: {leaked:#?}"
    );
    ensure!(
        seen.iter()
            .any(|r| r.host.starts_with("127.0.0.1:") && r.authorization.is_some()),
        "the configured host gets the credentials: {seen:#?}"
    );
    let error = caldav_error(&status);
    ensure!(
        service_state(&status, "alice", "caldav") == Some("error")
            && error.contains("not a loopback address"),
        "{status}"
    );
    ensure!(!error.contains("alice-pw") && !agent.log().contains("alice-pw"));
    Ok(())
}

#[test]
fn a_redirect_to_another_host_is_followed_without_credentials() -> Result<()> {
    // B would answer like a server if it got a login.
    let other = FakeHttp::start("127.0.0.2", |req, port| {
        dav_answer(req, &format!("http://127.0.0.2:{port}/alice/"))
    });
    let target = other.url();
    let dav = FakeHttp::start("127.0.0.1", move |req, _| match req.method.as_str() {
        "OPTIONS" => Reply::options(),
        _ => Reply::redirect(307, &target),
    });
    let agent = caldav_agent(&dav.url())?;
    let status = agent.wait_for(Duration::from_secs(20), settled)?;
    let at_other = other.seen();
    ensure!(!at_other.is_empty(), "the redirect was followed: {status}");
    ensure!(
        at_other.iter().all(|r| r.authorization.is_none()),
        "credentials went to the host reached by a redirect: {at_other:#?}"
    );
    let error = caldav_error(&status);
    ensure!(
        service_state(&status, "alice", "caldav") == Some("error") && error.contains("another host"),
        "{status}"
    );
    Ok(())
}

/// iCloud's shape: the configured server names another host for the account's principal; that
/// host gets the credentials (it was named in a discovery answer, not reached by a redirect).
#[test]
fn a_host_the_configured_server_names_gets_the_credentials() -> Result<()> {
    let other = FakeHttp::start("127.0.0.2", |req, port| {
        dav_answer(req, &format!("http://127.0.0.2:{port}/alice/"))
    });
    let principal = format!("{}alice/", other.url());
    let dav = FakeHttp::start("127.0.0.1", move |req, _| dav_answer(req, &principal));
    let agent = caldav_agent(&dav.url())?;
    let began = Instant::now();
    let status = agent.wait_for(Duration::from_secs(20), settled)?;
    ensure!(
        service_state(&status, "alice", "caldav") == Some("online"),
        "{status} after {:?}",
        began.elapsed()
    );
    let at_other = other.seen();
    ensure!(
        at_other
            .iter()
            .any(|r| r.path.starts_with("/alice/home/") && r.authorization.is_some()),
        "{at_other:#?}"
    );
    Ok(())
}
