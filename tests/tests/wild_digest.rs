//! Digest authentication (RFC 7616, issue 21): Apache's mod_auth_digest in front of Radicale
//! accepts Digest only. The agent answers the challenge, discovers, syncs and writes through it;
//! a wrong password is an authentication error, not a loop.
//!
//! ```text
//!   agent ──(Basic once, then Digest)──► apache2 127.0.0.1:P ── X-Remote-User ─► Radicale
//! ```

use std::time::Duration;

use anyhow::{Result, ensure};
use opconnect_tests::agent::service_state;
use opconnect_tests::apache::DigestFront;
use opconnect_tests::config::render_config;
use opconnect_tests::http::HttpRequest;
use opconnect_tests::{AccountSpec, Agent, AgentSettings};
use serde_json::{Value, json};

#[test]
fn a_server_that_demands_digest_is_synced_and_written_to() -> Result<()> {
    let front = DigestFront::start()?;
    // Provision as alice straight at Radicale (the header stands for Apache's login).
    let made = HttpRequest::new("MKCALENDAR", "/alice/work/")
        .header("X-Remote-User", "alice")
        .send(front.radicale.port())?;
    ensure!(made.status == 201, "MKCALENDAR: {}", made.status);

    let settings = AgentSettings {
        dav_poll_interval: "5m".into(),
        ..AgentSettings::default()
    };
    let mut alice = AccountSpec::for_user("alice");
    alice.caldav = Some(front.url());
    let mut wrong = AccountSpec::for_user("bob").password("not-bobs");
    wrong.caldav = Some(front.url());
    let agent = Agent::start(&render_config(&settings, &[alice, wrong]))?;
    agent.wait_for_state("alice", "online", Duration::from_secs(30))?;

    let fields = json!({"GlobalUid": "digest-1", "Subject": "Through Digest", "Start": "2026-12-02T09:00:00",
        "End": "2026-12-02T10:00:00", "StartTimeZone": "UTC", "EndTimeZone": "UTC"});
    let mut created = None;
    for _ in 0..100 {
        // The first sync brings the collection; until then the create names an unknown one.
        match agent.call(
            "items.create",
            json!({"account": "alice", "collection": "/alice/work/", "class": "appointment", "fields": fields, "wait": true}),
        ) {
            Ok(v) => {
                created = Some(v);
                break;
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
    ensure!(created.is_some(), "items.create never succeeded");
    let log = front.access_log();
    ensure!(
        log.contains("alice \"PUT /alice/work/digest-1.ics"),
        "the PUT went through Digest as alice:\n{log}"
    );
    ensure!(
        log.contains(" 401") && log.contains("alice \"PROPFIND"),
        "challenged, then answered:\n{log}"
    );

    // A wrong password: one challenge answered, then an authentication error (no retry loop).
    let status: Value = agent.wait_for(Duration::from_secs(30), |s| {
        service_state(s, "bob", "caldav") == Some("error")
    })?;
    let why = status["accounts"][1]["services"]["caldav"]["error"].to_string();
    ensure!(why.contains("401"), "{why}");
    let log = front.access_log();
    eprintln!("{log}");
    let bob_tries = log.matches("\"OPTIONS / ").count();
    ensure!(bob_tries < 20, "no retry storm: {bob_tries} OPTIONS");
    Ok(())
}
