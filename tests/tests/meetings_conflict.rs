//! Keep-both never re-invites (issue 18): on a server that schedules (Cyrus 3.6), a 412 on a
//! meeting with `conflict_policy = "keep-both"` keeps the user's version as a private copy under
//! a new UID, without ORGANIZER and ATTENDEE, so the attendee's inbox and calendar get nothing new.
//!
//! ```text
//!   alice (paused): items.patch Subject "mine"       server: Subject "theirs" (bob told once)
//!   resume ─► PUT If-Match old ─► 412 ─► conflict ─► copy PUT (new UID, no attendees)
//!   bob's Inbox/ and Default/ on the server: exactly as before the resume
//! ```

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use opconnect_tests::DavServer;
use opconnect_tests::config::render_config;
use opconnect_tests::{AccountSpec, Agent, AgentSettings, Cyrus};
use serde_json::json;

#[test]
fn a_kept_copy_of_a_meeting_is_sent_to_nobody() -> Result<()> {
    let cyrus = Cyrus::start()?;
    let settings = AgentSettings {
        dav_poll_interval: "5m".into(),
        conflict_policy: "keep-both".into(),
        ..AgentSettings::default()
    };
    let mut alice = AccountSpec::for_user("alice");
    alice.caldav = Some(cyrus.dav_url());
    let agent = Agent::start(&render_config(&settings, &[alice]))?;
    agent.wait_for_state("alice", "online", Duration::from_secs(20))?;
    let cal = cyrus.default_calendar("alice");
    agent.call_until(
        "calendar.list",
        json!({"account": "alice"}),
        Duration::from_secs(20),
        |v| {
            v.as_array()
                .is_some_and(|a| a.iter().any(|c| c["href"] == cal.as_str()))
        },
    )?;
    let created = agent.call(
        "items.create",
        json!({"account": "alice", "collection": cal, "class": "appointment", "wait": true,
               "fields": {"GlobalUid": "meeting-2", "Subject": "Review",
                          "Start": "2026-12-11T14:00:00", "StartTimeZone": "UTC",
                          "End": "2026-12-11T15:00:00", "EndTimeZone": "UTC",
                          "Organizer": "alice@localhost",
                          "Recipients": [{"Address": "bob@localhost", "Type": 1,
                                          "MeetingResponseStatus": 5, "Rsvp": true}]}}),
    )?;
    let href = created["href"].as_str().context("href")?.to_owned();
    let bob_inbox = format!("{}Inbox/", cyrus.calendar_home("bob"));
    let bob_cal = cyrus.default_calendar("bob");
    ensure!(
        cyrus.members("bob", &bob_inbox)?.len() == 1,
        "bob was invited once"
    );
    // Cyrus changed the object while scheduling (SCHEDULE-STATUS) and so answered without an ETag
    // (RFC 4791 §5.3.4): the next sync brings it.
    let deadline = Instant::now() + Duration::from_secs(20);
    let item = loop {
        agent.call("sync", json!({"account": "alice"}))?;
        let item = agent.call("items.get", json!({"account": "alice", "href": href}))?;
        if item["etag"].is_string() {
            break item;
        }
        ensure!(Instant::now() < deadline, "no etag for {href}: {item}");
        std::thread::sleep(Duration::from_millis(200));
    };

    // Away: alice edits her copy; the same meeting changes on the server meanwhile.
    agent.cli_ok(&["pause", "alice"])?;
    agent.call(
        "items.patch",
        json!({"account": "alice", "href": href, "etag": item["etag"], "changes": {"Subject": "Review (mine)"}}),
    )?;
    let theirs = cyrus
        .get("alice", &href)?
        .text()
        .replace("SUMMARY:Review", "SUMMARY:Review (theirs)");
    cyrus.put("alice", &href, "text/calendar; charset=utf-8", theirs.as_bytes())?;
    // Whatever the server told bob about that change, it is the baseline now.
    let (inbox_before, cal_before) = (cyrus.members("bob", &bob_inbox)?, cyrus.members("bob", &bob_cal)?);

    let mut events = agent.watch(&["conflict"])?;
    agent.cli_ok(&["resume", "alice"])?;
    events.wait_topic("conflict", Duration::from_secs(20))?;
    // The copy is written on the next replay: alice's calendar holds both.
    let deadline = Instant::now() + Duration::from_secs(20);
    let copy = loop {
        agent.call("sync", json!({"account": "alice"}))?;
        let members = cyrus.members("alice", &cal)?;
        if let Some(c) = members.iter().find(|m| m.contains("opconnect-copy-")) {
            break c.clone();
        }
        ensure!(Instant::now() < deadline, "no copy in {members:?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    // Nothing new for bob: the same inbox messages and calendar objects as before.
    ensure!(
        cyrus.members("bob", &bob_inbox)? == inbox_before,
        "bob's inbox changed"
    );
    ensure!(
        cyrus.members("bob", &bob_cal)? == cal_before,
        "bob's calendar changed"
    );
    let body = cyrus.get("alice", &copy)?.text();
    ensure!(body.contains("Review (mine)"), "{body}");
    ensure!(
        !body.contains("ATTENDEE") && !body.contains("ORGANIZER"),
        "{body}"
    );
    ensure!(
        cyrus.get("alice", &href)?.text().contains("Review (theirs)"),
        "the server's version stays in place"
    );
    Ok(())
}
