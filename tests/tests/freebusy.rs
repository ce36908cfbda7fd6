//! Free/busy (`calendar.freebusy`): through Cyrus's scheduling outbox (RFC 6638), a clear "not
//! supported" (code 2) from Radicale, which has neither an outbox nor free-busy-query, and
//! "unreachable" (code 4) when the server is down.

use std::time::Duration;

use anyhow::{Result, ensure};
use opconnect_tests::DavServer;
use opconnect_tests::config::render_config;
use opconnect_tests::{AccountSpec, Agent, AgentSettings, Cyrus, Radicale};
use serde_json::{Value, json};

fn event(uid: &str, start: &str, end: &str, extra: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//opconnect//test//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n\
         DTSTAMP:20261123T000000Z\r\nDTSTART:{start}\r\nDTEND:{end}\r\nSUMMARY:{uid}\r\n{extra}END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
}

fn agent_with_caldav(url: String) -> Result<Agent> {
    let mut account = AccountSpec::for_user("alice");
    account.caldav = Some(url);
    let agent = Agent::start(&render_config(&AgentSettings::default(), &[account]))?;
    agent.wait_for_state("alice", "online", Duration::from_secs(20))?;
    Ok(agent)
}

fn ask(agent: &Agent, who: &str) -> std::process::Output {
    let params = json!({"account": "alice", "attendees": [who], "start": "2026-12-01T00:00:00Z", "end": "2026-12-02T00:00:00Z"});
    agent.cli(&["call", "calendar.freebusy", &params.to_string()])
}

#[test]
fn free_busy_through_the_scheduling_outbox() -> Result<()> {
    let cyrus = Cyrus::start()?;
    let cal = cyrus.default_calendar("bob");
    cyrus.put_event(
        "bob",
        &cal,
        "standup",
        &event("standup", "20261201T090000Z", "20261201T100000Z", ""),
    )?;
    cyrus.put_event(
        "bob",
        &cal,
        "maybe",
        &event(
            "maybe",
            "20261201T140000Z",
            "20261201T150000Z",
            "STATUS:TENTATIVE\r\n",
        ),
    )?;
    cyrus.put_event(
        "bob",
        &cal,
        "elsewhen",
        &event("elsewhen", "20261205T090000Z", "20261205T100000Z", ""),
    )?;
    let agent = agent_with_caldav(cyrus.dav_url())?;
    let out = ask(&agent, "bob@localhost");
    ensure!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let answer: Value = serde_json::from_slice(&out.stdout)?;
    let bob = answer["mailto:bob@localhost"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    ensure!(bob.len() == 2, "two periods on that day: {answer}");
    assert_eq!(
        bob[0],
        json!({"start": "2026-12-01T09:00:00+00:00", "end": "2026-12-01T10:00:00+00:00", "type": "busy"})
    );
    assert_eq!(bob[1]["type"], "busy-tentative", "{answer}");

    // A server that is down: code 4.
    let mut cyrus = cyrus;
    cyrus.stop();
    agent
        .wait_for_state("alice", "offline", Duration::from_secs(30))
        .ok();
    let raw = agent.ipc()?.request(
        "calendar.freebusy",
        json!({"account": "alice", "attendees": ["bob@localhost"], "start": "2026-12-01T00:00:00Z", "end": "2026-12-02T00:00:00Z"}),
    )?;
    assert_eq!(raw["error"]["code"], 4, "unreachable: {raw}");
    Ok(())
}

#[test]
fn a_server_without_scheduling_says_not_supported() -> Result<()> {
    let radicale = Radicale::start()?;
    radicale.create_calendar("alice", "work", "Work")?;
    let agent = agent_with_caldav(radicale.url())?;
    let out = ask(&agent, "bob@localhost");
    assert_eq!(out.status.code(), Some(1));
    let why = String::from_utf8_lossy(&out.stderr);
    ensure!(why.contains("scheduling outbox"), "{why}");
    let raw = agent.ipc()?.request("calendar.freebusy", json!({"account": "alice", "attendees": ["bob@localhost"], "start": "2026-12-01T00:00:00Z", "end": "2026-12-02T00:00:00Z"}));
    let raw = raw?;
    assert_eq!(raw["error"]["code"], 2, "{raw}");
    Ok(())
}
