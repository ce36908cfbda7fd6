//! DAV replay under faults (issue 19), Radicale behind the fault proxy: an acknowledgement lost
//! to a `kill -9` is not a conflict (and keep-both makes no duplicate); a server that answers
//! 5xx or drops the connection does not use up the attempt budget.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use opconnect_tests::DavServer;
use opconnect_tests::config::render_config;
use opconnect_tests::{AccountSpec, Agent, AgentSettings, Fault, FaultProxy, Radicale, Trigger};
use serde_json::{Value, json};

fn event(uid: &str, summary: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//opconnect//test//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n\
         DTSTAMP:20261123T000000Z\r\nDTSTART:20261201T090000Z\r\nDURATION:PT1H\r\nSUMMARY:{summary}\r\n\
         END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
}

fn agent_through(proxy: &FaultProxy) -> Result<Agent> {
    let mut spec = AccountSpec::for_user("alice");
    spec.caldav = Some(proxy.url("http", "/"));
    let settings = AgentSettings {
        conflict_policy: "keep-both".into(),
        ..AgentSettings::default()
    };
    let agent = Agent::start(&render_config(&settings, &[spec]))?;
    agent.wait_for_state("alice", "online", Duration::from_secs(15))?;
    Ok(agent)
}

fn pending(agent: &Agent) -> Result<Vec<Value>> {
    Ok(agent
        .call("ops", json!({"account": "alice"}))?
        .as_array()
        .cloned()
        .unwrap_or_default())
}

#[test]
fn a_put_whose_answer_was_lost_to_a_crash_is_not_a_conflict() -> Result<()> {
    let radicale = Radicale::start()?;
    let cal = radicale.create_calendar("alice", "work", "Work")?;
    let proxy = FaultProxy::start(radicale.port())?;
    let mut agent = agent_through(&proxy)?;
    agent.wait_for(Duration::from_secs(15), |_| {
        agent
            .call("calendar.items", json!({"account": "alice", "calendar": cal}))
            .is_ok()
    })?;
    // Radicale stores the PUT and answers 201; the answer is held back while the agent dies.
    proxy.inject(
        Trigger::Sends("PUT /".into()),
        Fault::Delay(Duration::from_secs(60)),
        1,
    );
    let answer = agent.call(
        "calendar.put",
        json!({"account": "alice", "calendar": cal, "ics": event("lost-ack", "Lost ack")}),
    )?;
    let href = answer["href"].as_str().context("href")?.to_owned();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while radicale.get("alice", &href)?.status != 200 {
        ensure!(
            std::time::Instant::now() < deadline,
            "the PUT never reached Radicale"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    agent.kill();
    proxy.heal();
    agent.restart()?;
    agent.wait_for(Duration::from_secs(20), |_| {
        pending(&agent).is_ok_and(|p| p.is_empty())
    })?;
    let conflicts = agent.call("conflicts.list", json!({}))?;
    ensure!(conflicts == json!([]), "no conflict: {conflicts}");
    let members = radicale.members("alice", &cal)?;
    ensure!(members.len() == 1, "no duplicate: {members:?}");
    Ok(())
}

#[test]
fn outages_do_not_use_up_the_attempts() -> Result<()> {
    let radicale = Radicale::start()?;
    let cal = radicale.create_calendar("alice", "work", "Work")?;
    let proxy = FaultProxy::start(radicale.port())?;
    let agent = agent_through(&proxy)?;
    agent.wait_for(Duration::from_secs(15), |_| {
        agent
            .call("calendar.items", json!({"account": "alice", "calendar": cal}))
            .is_ok()
    })?;
    // Eight PUTs in a row meet a dropped connection: more than the 5 attempts of the cap.
    proxy.inject(Trigger::Sends("PUT /".into()), Fault::Drop, 8);
    let answer = agent.call(
        "calendar.put",
        json!({"account": "alice", "calendar": cal, "ics": event("outage", "Outage")}),
    )?;
    let op = answer["op"].as_u64().context("op")?;
    let href = answer["href"].as_str().context("href")?.to_owned();
    for _ in 0..8 {
        agent.cli_ok(&["sync"])?;
        std::thread::sleep(Duration::from_millis(400));
    }
    proxy.wait_fired(8, Duration::from_secs(60))?;
    agent.wait_for(Duration::from_secs(30), |_| {
        pending(&agent).is_ok_and(|p| !p.iter().any(|e| e["op"] == op))
    })?;
    ensure!(radicale.get("alice", &href)?.status == 200, "it landed");
    Ok(())
}
