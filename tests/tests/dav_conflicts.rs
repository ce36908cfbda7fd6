//! Calendar writes through the journal against Radicale: a put and a delete reach the server with
//! their preconditions, and an event changed both on the server and locally while the agent was
//! away becomes a conflict that keeps both versions and resolves each of the three ways.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use opconnect_tests::DavServer;
use opconnect_tests::config::render_config;
use opconnect_tests::{AccountSpec, Agent, AgentSettings, Radicale};
use serde_json::{Value, json};

fn event(uid: &str, summary: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//opconnect//test//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n\
         DTSTAMP:20261123T000000Z\r\nDTSTART:20261201T090000Z\r\nDURATION:PT1H\r\nSUMMARY:{summary}\r\n\
         END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
}

fn agent_on(radicale: &Radicale) -> Result<Agent> {
    let spec = AccountSpec::for_user("alice").dav_from(radicale);
    let agent = Agent::start(&render_config(&AgentSettings::default(), &[spec]))?;
    agent.wait_for_state("alice", "online", Duration::from_secs(10))?;
    Ok(agent)
}

fn items(agent: &Agent, calendar: &str) -> Result<Vec<Value>> {
    Ok(agent
        .call(
            "calendar.items",
            json!({"account": "alice", "calendar": calendar}),
        )?
        .as_array()
        .cloned()
        .unwrap_or_default())
}

fn summary_on_server(radicale: &Radicale, href: &str) -> Result<Option<String>> {
    let r = radicale.get("alice", href)?;
    if r.status == 404 {
        return Ok(None);
    }
    let body = String::from_utf8_lossy(&r.body).into_owned();
    Ok(body
        .lines()
        .find_map(|l| l.strip_prefix("SUMMARY:"))
        .map(|s| s.trim().to_owned()))
}

#[test]
fn puts_and_deletes_reach_the_server() -> Result<()> {
    let radicale = Radicale::start()?;
    let cal = radicale.create_calendar("alice", "work", "Work")?;
    let agent = agent_on(&radicale)?;
    agent.wait_for(Duration::from_secs(10), |_| items(&agent, &cal).is_ok())?;
    let ics = event("new-1", "Created by opconnect");
    let answer = agent.call(
        "calendar.put",
        json!({"account": "alice", "calendar": cal, "ics": ics, "wait": true}),
    )?;
    let href = answer["href"].as_str().context("href")?.to_owned();
    // Radicale re-serializes what it stores, so compare content there, bytes in the mirror.
    ensure!(summary_on_server(&radicale, &href)?.as_deref() == Some("Created by opconnect"));
    let mirrored = items(&agent, &cal)?;
    ensure!(
        mirrored.iter().any(|i| i["href"] == href && i["ics"] == ics),
        "{mirrored:?}"
    );
    // An update based on the mirror's etag.
    agent.call("calendar.put", json!({"account": "alice", "calendar": cal, "href": href, "ics": event("new-1", "Renamed"), "wait": true}))?;
    ensure!(summary_on_server(&radicale, &href)?.as_deref() == Some("Renamed"));
    agent.call(
        "calendar.delete",
        json!({"account": "alice", "href": href, "wait": true}),
    )?;
    ensure!(
        summary_on_server(&radicale, &href)?.is_none(),
        "deleted on the server"
    );
    // A body that is not iCalendar is refused before it is journaled.
    let bad = agent.cli(&[
        "call",
        "calendar.put",
        &json!({"account": "alice", "calendar": cal, "ics": "hello"}).to_string(),
    ]);
    assert_eq!(bad.status.code(), Some(1));
    assert_eq!(agent.status_json()?["accounts"][0]["pending_ops"], 0);
    Ok(())
}

#[test]
fn a_double_edit_is_a_conflict_that_resolves_three_ways() -> Result<()> {
    let radicale = Radicale::start()?;
    let cal = radicale.create_calendar("alice", "work", "Work")?;
    let mut hrefs = Vec::new();
    for uid in ["keep-server", "keep-local", "keep-both"] {
        hrefs.push(radicale.put_event("alice", &cal, uid, &event(uid, "original"))?.0);
    }
    let agent = agent_on(&radicale)?;
    agent.wait_for(Duration::from_secs(10), |_| {
        items(&agent, &cal).map(|i| i.len() == 3).unwrap_or(false)
    })?;

    // The agent is away (paused): the user edits locally, someone else edits on the server.
    agent.cli_ok(&["pause"])?;
    for (href, uid) in hrefs.iter().zip(["keep-server", "keep-local", "keep-both"]) {
        agent.call(
            "calendar.put",
            json!({"account": "alice", "calendar": cal, "href": href, "ics": event(uid, "mine")}),
        )?;
        radicale.put_event("alice", &cal, uid, &event(uid, "theirs"))?;
    }
    assert_eq!(agent.status_json()?["accounts"][0]["pending_ops"], 3);
    let mut events = agent.watch(&["conflict"])?;
    agent.cli_ok(&["resume"])?;
    for _ in 0..3 {
        events.wait_topic("conflict", Duration::from_secs(15))?;
    }
    // Both versions are kept; with the default policy the server's is in effect.
    let list = agent.call("conflicts.list", json!({}))?;
    let list = list.as_array().context("list")?.clone();
    ensure!(list.len() == 3, "{list:?}");
    for c in &list {
        ensure!(
            c["local"]["body"]
                .as_str()
                .is_some_and(|b| b.contains("SUMMARY:mine")),
            "{c}"
        );
        ensure!(
            c["server"]["body"]
                .as_str()
                .is_some_and(|b| b.contains("SUMMARY:theirs")),
            "{c}"
        );
    }
    let summaries: Vec<String> = items(&agent, &cal)?
        .iter()
        .filter_map(|i| i["summary"].as_str().map(str::to_owned))
        .collect();
    ensure!(
        summaries.iter().all(|s| s == "theirs"),
        "server wins by default: {summaries:?}"
    );
    let table = agent.cli_ok(&["conflicts"])?;
    ensure!(
        table.contains("yours: edited") && table.contains("mine"),
        "{table}"
    );

    let id_of = |href: &str| {
        list.iter()
            .find(|c| c["local"]["href"] == href)
            .and_then(|c| c["id"].as_u64())
            .unwrap()
    };
    agent.cli_ok(&[
        "conflicts",
        "resolve",
        &id_of(&hrefs[0]).to_string(),
        "--keep",
        "server",
    ])?;
    agent.cli_ok(&[
        "conflicts",
        "resolve",
        &id_of(&hrefs[1]).to_string(),
        "--keep",
        "local",
    ])?;
    agent.cli_ok(&[
        "conflicts",
        "resolve",
        &id_of(&hrefs[2]).to_string(),
        "--keep",
        "both",
    ])?;
    agent.wait_for(Duration::from_secs(15), |s| {
        s["accounts"][0]["pending_ops"] == 0 && s["accounts"][0]["conflicts"] == 0
    })?;

    ensure!(
        summary_on_server(&radicale, &hrefs[0])?.as_deref() == Some("theirs"),
        "keep server"
    );
    ensure!(
        summary_on_server(&radicale, &hrefs[1])?.as_deref() == Some("mine"),
        "keep local"
    );
    ensure!(
        summary_on_server(&radicale, &hrefs[2])?.as_deref() == Some("theirs"),
        "keep both: the server's stays"
    );
    let members = radicale.members("alice", &cal)?;
    ensure!(members.len() == 4, "keep both adds a copy: {members:?}");
    let mut copy_summary = None;
    for m in &members {
        if !hrefs.contains(m) {
            copy_summary = summary_on_server(&radicale, m)?;
        }
    }
    ensure!(
        copy_summary.as_deref() == Some("mine"),
        "the copy holds my version"
    );
    assert_eq!(agent.call("conflicts.list", json!({}))?, json!([]));
    Ok(())
}
