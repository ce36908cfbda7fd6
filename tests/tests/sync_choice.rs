//! End-to-end tests of `[account.sync]` (issue 21, "choosing what to sync") against a private
//! Radicale: which collections, a past-days window for events, read-only collections.
//!
//! ```text
//!   Radicale: Work (old, recent, future, two series) · Holidays · Private · Contacts
//!      ▲
//!   opconnect run  [account.sync] collections = Work, /alice/holidays/; read_only = Holidays;
//!                                 past_days = 30
//! ```

use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use opconnect_tests::config::render_config;
use opconnect_tests::{AccountSpec, Agent, AgentSettings, DavServer, Radicale};
use serde_json::{Value, json};

/// `date -u -d OFFSET` in iCalendar's UTC form (GNU date).
fn utc(offset: &str) -> Result<String> {
    let out = Command::new("date")
        .args(["-u", "-d", offset, "+%Y%m%dT%H%M%SZ"])
        .output()
        .context("date")?;
    ensure!(out.status.success(), "date -d {offset} failed");
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

fn event(uid: &str, start: &str, rule: Option<&str>) -> String {
    let rule = rule.map(|r| format!("RRULE:{r}\r\n")).unwrap_or_default();
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//opconnect tests//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n\
         DTSTAMP:20200101T000000Z\r\nDTSTART:{start}\r\nDURATION:PT1H\r\n{rule}SUMMARY:{uid}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
}

fn agent_with(radicale: &Radicale, sync: &str) -> Result<Agent> {
    let settings = AgentSettings {
        dav_poll_interval: "2s".into(),
        ..AgentSettings::default()
    };
    let mut config = render_config(&settings, &[AccountSpec::for_user("alice").dav_from(radicale)]);
    config.push_str("\n[account.sync]\n");
    config.push_str(sync);
    let agent = Agent::start(&config)?;
    agent.wait_for_state("alice", "online", Duration::from_secs(20))?;
    Ok(agent)
}

fn uids(items: &Value) -> Vec<String> {
    let mut out: Vec<String> = items
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| i["uid"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

#[test]
fn chosen_collections_a_window_of_the_past_and_read_only() -> Result<()> {
    let radicale = Radicale::start()?;
    let work = radicale.create_calendar("alice", "work", "Work")?;
    let holidays = radicale.create_calendar("alice", "holidays", "Holidays")?;
    radicale.create_calendar("alice", "private", "Private")?;
    let book = radicale.create_addressbook("alice", "contacts", "Contacts")?;
    radicale.put_contact(
        "alice",
        &book,
        "bob",
        "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:bob\r\nFN:Bob\r\nEMAIL:bob@example.org\r\nEND:VCARD\r\n",
    )?;
    radicale.put_event("alice", &work, "old", &event("old", "20200501T100000Z", None))?;
    radicale.put_event("alice", &work, "recent", &event("recent", &utc("-5 days")?, None))?;
    radicale.put_event(
        "alice",
        &work,
        "future",
        &event("future", &utc("+30 days")?, None),
    )?;
    // A weekly series from 2020 with no end reaches into the window; one that ended in 2020 does not.
    radicale.put_event(
        "alice",
        &work,
        "weekly",
        &event("weekly", "20200106T090000Z", Some("FREQ=WEEKLY")),
    )?;
    radicale.put_event(
        "alice",
        &work,
        "ended",
        &event("ended", "20200106T090000Z", Some("FREQ=WEEKLY;COUNT=3")),
    )?;
    radicale.put_event("alice", &holidays, "h1", &event("h1", &utc("+10 days")?, None))?;

    let agent = agent_with(
        &radicale,
        "collections = [\"Work\", \"/alice/holidays\"]\nread_only = [\"holidays\"]\npast_days = 30\n",
    )?;
    let calendars = agent.call_until(
        "calendar.list",
        json!({"account": "alice"}),
        Duration::from_secs(20),
        |v| v.as_array().is_some_and(|a| a.len() == 2),
    )?;
    let list = calendars.as_array().context("calendar.list")?;
    let by_href = |href: &str| list.iter().find(|c| c["href"] == href).cloned();
    let h = by_href(&holidays).context("Holidays listed")?;
    assert_eq!(h["read_only"], true, "{calendars}");
    assert_eq!(by_href(&work).context("Work listed")?["read_only"], false);
    assert!(
        by_href("/alice/private/").is_none(),
        "Private was not chosen: {calendars}"
    );

    let items = agent.call_until(
        "calendar.items",
        json!({"account": "alice", "calendar": work}),
        Duration::from_secs(20),
        |v| v.as_array().is_some_and(|a| a.len() >= 3),
    )?;
    assert_eq!(uids(&items), vec!["future", "recent", "weekly"], "{items}");
    let books = agent.call("contacts.books", json!({"account": "alice"}))?;
    assert_eq!(books, json!([]), "the address book was not chosen");

    // A write to the read-only collection is refused before it reaches the journal.
    let refused = agent.cli(&[
        "call",
        "calendar.put",
        &json!({"account": "alice", "calendar": holidays, "ics": event("mine", &utc("+3 days")?, None)})
            .to_string(),
    ]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && stderr.contains("read-only"),
        "{stderr}"
    );
    let ops = agent.call("ops", json!({"account": "alice"}))?;
    assert_eq!(ops.as_array().map(Vec::len), Some(0), "nothing journaled: {ops}");
    let item = agent.call(
        "calendar.items",
        json!({"account": "alice", "calendar": holidays}),
    )?;
    let href = item[0]["href"].as_str().context("h1")?;
    let refused = agent.cli(&[
        "call",
        "calendar.delete",
        &json!({"account": "alice", "href": href}).to_string(),
    ]);
    assert!(!refused.status.success());
    // Writes to Work go through as ever.
    let put = agent.call(
        "calendar.put",
        json!({"account": "alice", "calendar": work, "ics": event("mine", &utc("+3 days")?, None), "wait": true}),
    )?;
    ensure!(put["href"].is_string(), "{put}");
    ensure!(
        radicale.members("alice", &work)?.len() == 6,
        "the write reached the server"
    );

    // Events that end in the window later (a new one on the server) arrive on the next poll.
    radicale.put_event("alice", &work, "later", &event("later", &utc("-1 days")?, None))?;
    radicale.put_event("alice", &work, "older", &event("older", "20210101T100000Z", None))?;
    let items = agent.call_until(
        "calendar.items",
        json!({"account": "alice", "calendar": work}),
        Duration::from_secs(20),
        |v| uids(v).contains(&"later".to_string()),
    )?;
    assert_eq!(
        uids(&items),
        vec!["future", "later", "mine", "recent", "weekly"],
        "{items}"
    );
    Ok(())
}

#[test]
fn a_collection_dropped_from_the_choice_leaves_the_mirror() -> Result<()> {
    let radicale = Radicale::start()?;
    let work = radicale.create_calendar("alice", "work", "Work")?;
    radicale.create_calendar("alice", "private", "Private")?;
    radicale.put_event("alice", &work, "w", &event("w", &utc("+1 days")?, None))?;
    let mut agent = agent_with(&radicale, "")?;
    agent.call_until(
        "calendar.list",
        json!({"account": "alice"}),
        Duration::from_secs(20),
        |v| v.as_array().is_some_and(|a| a.len() == 2),
    )?;
    let config = std::fs::read_to_string(agent.config_path())?;
    agent.write_config(&format!("{config}collections = [\"private\"]\n"))?;
    agent.restart()?;
    agent.wait_for_state("alice", "online", Duration::from_secs(20))?;
    let list = agent.call_until(
        "calendar.list",
        json!({"account": "alice"}),
        Duration::from_secs(20),
        |v| v.as_array().is_some_and(|a| a.len() == 1),
    )?;
    assert_eq!(list[0]["href"], "/alice/private/", "{list}");
    let log = agent.log();
    assert!(log.contains("not chosen in [account.sync]"), "the log says why");
    Ok(())
}

#[test]
fn a_window_set_later_drops_old_events_without_the_guard_holding_them() -> Result<()> {
    let radicale = Radicale::start()?;
    let work = radicale.create_calendar("alice", "work", "Work")?;
    for i in 0..12 {
        let uid = format!("old{i}");
        radicale.put_event(
            "alice",
            &work,
            &uid,
            &event(&uid, &format!("2021{:02}01T100000Z", i + 1), None),
        )?;
    }
    radicale.put_event("alice", &work, "soon", &event("soon", &utc("+2 days")?, None))?;
    let mut agent = agent_with(&radicale, "")?;
    agent.call_until(
        "calendar.items",
        json!({"account": "alice", "calendar": work}),
        Duration::from_secs(20),
        |v| v.as_array().is_some_and(|a| a.len() == 13),
    )?;
    let config = std::fs::read_to_string(agent.config_path())?;
    agent.write_config(&format!("{config}past_days = 30\n"))?;
    agent.restart()?;
    agent.wait_for_state("alice", "online", Duration::from_secs(20))?;
    let items = agent.call_until(
        "calendar.items",
        json!({"account": "alice", "calendar": work}),
        Duration::from_secs(20),
        |v| v.as_array().is_some_and(|a| a.len() == 1),
    )?;
    assert_eq!(uids(&items), vec!["soon"]);
    let log = agent.log();
    assert!(
        log.contains("before the past_days window dropped"),
        "the log says why"
    );
    assert!(!log.contains("removals held"), "the guard did not hold them");
    ensure!(
        radicale.members("alice", &work)?.len() == 13,
        "nothing was deleted on the server"
    );
    Ok(())
}
