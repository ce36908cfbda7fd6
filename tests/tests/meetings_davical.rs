//! Meetings on DAViCal 1.1, the second server that schedules (issue 18, RFC 6638): alice invites
//! bob, bob accepts, alice sees it; then alice cancels and bob's listing shows the CANCEL. One agent
//! holds both accounts, CalDAV only (no SMTP: nothing can go out as mail).
//!
//! ```text
//!   alice: items.create {Organizer alice, Recipients [bob]} ──PUT──► DAViCal ──► bob's .in/ + calendar/
//!   bob:   meetings.list ──► 1 REQUEST ──► meetings.respond accepted ──► alice's copy: bob status 3
//!   alice: items.delete ──► DAViCal ──► CANCEL in bob's .in/ ──► bob's meetings.list: CANCEL
//! ```

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use opconnect_tests::Davical;
use opconnect_tests::meetings::{WAIT, agent_for_both, bobs_copy, fields_until, recipient};
use serde_json::{Value, json};

#[test]
fn bob_accepts_on_davical_and_then_alice_cancels() -> Result<()> {
    let began = Instant::now();
    let davical = Davical::start()?;
    let agent = agent_for_both(&davical)?;
    println!("DAViCal and the agent ready in {:?}", began.elapsed());
    let report: Value = serde_json::from_str(&agent.cli_ok(&["report", "alice", "--format", "json"])?)?;
    ensure!(
        report["features"]["meetings"]["status"] == "yes",
        "{}",
        report["features"]["meetings"]
    );

    let created = agent.call(
        "items.create",
        json!({"account": "alice", "collection": davical.default_calendar("alice"), "class": "appointment",
               "wait": true,
               "fields": {"GlobalUid": "meeting-3", "Subject": "Retro",
                          "Start": "2026-12-12T09:00:00", "StartTimeZone": "UTC",
                          "End": "2026-12-12T10:00:00", "EndTimeZone": "UTC",
                          "Organizer": "alice@localhost",
                          "Recipients": [{"Address": "bob@localhost", "Type": 1,
                                          "MeetingResponseStatus": 5, "Rsvp": true}]}}),
    )?;
    let alices = created["href"].as_str().context("href")?.to_owned();
    let bobs = bobs_copy(&agent, &davical, "meeting-3")?;
    let list = agent.call_until("meetings.list", json!({"account": "bob"}), WAIT, |v| {
        v.as_array().is_some_and(|a| a.len() == 1)
    })?;
    let inv = &list[0];
    ensure!(inv["method"] == "REQUEST" && inv["uid"] == "meeting-3", "{inv}");
    ensure!(inv["partstat"] == "NEEDS-ACTION", "{inv}");

    agent.call(
        "meetings.respond",
        json!({"account": "bob", "id": inv["id"], "response": "accepted", "wait": true}),
    )?;
    fields_until(&agent, "alice", &alices, |f| {
        recipient(f, "bob@localhost").is_some_and(|r| r["MeetingResponseStatus"] == 3)
    })?;

    // alice cancels: the server tells bob; his listing shows the cancellation, once.
    agent.call("sync", json!({"account": "alice"}))?;
    agent.call(
        "items.delete",
        json!({"account": "alice", "href": alices, "wait": true}),
    )?;
    let list = agent.call_until("meetings.list", json!({"account": "bob"}), WAIT, |v| {
        v.as_array()
            .is_some_and(|a| a.len() == 1 && a[0]["method"] == "CANCEL")
    })?;
    ensure!(list[0]["uid"] == "meeting-3", "{list}");
    // DAViCal removes bob's copy on the CANCEL (a server that keeps it would have it marked
    // STATUS:CANCELLED, MeetingStatus 7): either way nothing is left that looks like it stands.
    let href = bobs["href"].as_str().context("href")?;
    let deadline = Instant::now() + WAIT;
    loop {
        agent.call("sync", json!({"account": "bob"}))?;
        match agent.call("items.get", json!({"account": "bob", "href": href})) {
            Err(e) if e.to_string().contains("no item") => {
                println!("DAViCal removed bob's copy on the CANCEL");
                break;
            }
            Ok(item) if item["fields"]["MeetingStatus"] == 7 => break,
            other => ensure!(Instant::now() < deadline, "bob's copy still stands: {other:?}"),
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    // The listing still shows the cancellation, once.
    let list = agent.call("meetings.list", json!({"account": "bob"}))?;
    ensure!(
        list.as_array().map(Vec::len) == Some(1) && list[0]["method"] == "CANCEL",
        "{list}"
    );
    Ok(())
}
