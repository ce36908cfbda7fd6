//! `"wait": true` tells the truth for calendar and contact writes (INTERFACE §4): right after the
//! answer of `calendar.put`, `calendar.delete`, `contacts.put` and `contacts.delete`, Radicale
//! itself (asked by the harness over HTTP, not through the agent) holds the result.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use opconnect_tests::DavServer;
use opconnect_tests::config::render_config;
use opconnect_tests::{AccountSpec, Agent, AgentSettings, Radicale};
use serde_json::{Value, json};

fn agent(radicale: &Radicale) -> Result<Agent> {
    let config = render_config(
        &AgentSettings::default(),
        &[AccountSpec::for_user("alice").dav_from(radicale)],
    );
    let agent = Agent::start(&config)?;
    agent.wait_for_state("alice", "online", Duration::from_secs(20))?;
    Ok(agent)
}

/// Calls `method` with `wait: true` for alice over the socket; the answer must be a success.
fn wait(agent: &Agent, method: &str, mut params: Value) -> Result<Value> {
    params["account"] = json!("alice");
    params["wait"] = json!(true);
    let mut ipc = agent.ipc()?;
    ipc.set_timeout(Duration::from_secs(60))?;
    ipc.call(method, params)
        .with_context(|| format!("{method} with wait: true\n{}", agent.log()))
}

/// Waits until the agent lists `collection` (its first discovery ran).
fn listed(agent: &Agent, method: &str, collection: &str) -> Result<()> {
    agent.call_until(
        method,
        json!({"account": "alice"}),
        Duration::from_secs(20),
        |v| {
            v.as_array()
                .is_some_and(|a| a.iter().any(|c| c["href"] == collection))
        },
    )?;
    Ok(())
}

#[test]
fn calendar_put_and_delete() -> Result<()> {
    let radicale = Radicale::start()?;
    let cal = radicale.create_calendar("alice", "work", "Work")?;
    let agent = agent(&radicale)?;
    listed(&agent, "calendar.list", &cal)?;
    let ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:waited-event\r\n\
               DTSTAMP:20260301T000000Z\r\nDTSTART:20260310T090000Z\r\nDTEND:20260310T100000Z\r\n\
               SUMMARY:Waited for\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    let put = wait(&agent, "calendar.put", json!({"calendar": cal, "ics": ics}))?;
    let href = put["href"].as_str().context("href")?.to_owned();
    let served = radicale.get("alice", &href)?;
    ensure!(
        served.status == 200 && served.text().contains("SUMMARY:Waited for"),
        "on the server right after the answer: {} {}",
        served.status,
        served.text()
    );
    wait(&agent, "calendar.delete", json!({"href": href}))?;
    let gone = radicale.get("alice", &href)?;
    ensure!(gone.status == 404, "deleted on the server: {}", gone.status);
    Ok(())
}

#[test]
fn contacts_put_and_delete() -> Result<()> {
    let radicale = Radicale::start()?;
    let book = radicale.create_addressbook("alice", "contacts", "Contacts")?;
    let agent = agent(&radicale)?;
    listed(&agent, "contacts.books", &book)?;
    let vcf = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:waited-contact\r\nFN:Wanda Wait\r\nN:Wait;Wanda;;;\r\n\
               EMAIL:wanda@example.org\r\nEND:VCARD\r\n";
    let put = wait(&agent, "contacts.put", json!({"book": book, "vcf": vcf}))?;
    let href = put["href"].as_str().context("href")?.to_owned();
    let served = radicale.get("alice", &href)?;
    ensure!(
        served.status == 200 && served.text().contains("Wanda Wait"),
        "on the server right after the answer: {} {}",
        served.status,
        served.text()
    );
    wait(&agent, "contacts.delete", json!({"href": href}))?;
    let gone = radicale.get("alice", &href)?;
    ensure!(gone.status == 404, "deleted on the server: {}", gone.status);
    Ok(())
}
