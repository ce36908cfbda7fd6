//! Meetings on a server that schedules (issue 18, RFC 6638): a private Cyrus 3.6 with alice and
//! bob, one agent holding both accounts (CalDAV only: no SMTP anywhere, so nothing can go out as
//! mail), driven through `opconnect call` only.
//!
//! ```text
//!   alice: items.create {Organizer alice, Recipients [bob]} ──PUT──► Cyrus ──► bob's Inbox/ + Default/
//!   bob:   meetings.list ──► 1 REQUEST ──► meetings.respond accepted ──PUT (his PARTSTAT)──► Cyrus
//!   Cyrus: REPLY ──► alice's copy: ATTENDEE bob PARTSTAT=ACCEPTED ──► alice's items.get: status 3
//! ```

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use opconnect_tests::Cyrus;
use opconnect_tests::DavServer;
use opconnect_tests::meetings::{WAIT, agent_for_both, bobs_copy, fields_until, recipient};
use serde_json::{Value, json};

/// Everything Cyrus's telemetry logged of bob's HTTP requests, lower-cased.
fn bob_telemetry(cyrus: &Cyrus) -> Result<String> {
    let mut text = String::new();
    for entry in std::fs::read_dir(cyrus.dir().join("conf/log/bob"))? {
        let path = entry?.path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("http-"))
        {
            text.push_str(&String::from_utf8_lossy(&std::fs::read(&path)?).to_lowercase());
        }
    }
    Ok(text)
}

#[test]
fn alice_invites_bob_he_accepts_and_her_copy_shows_it() -> Result<()> {
    let began = Instant::now();
    let cyrus = Cyrus::start()?;
    let agent = agent_for_both(&cyrus)?;
    println!("Cyrus and the agent ready in {:?}", began.elapsed());

    // The report says who sends invitations here: the server.
    let report: Value = serde_json::from_str(&agent.cli_ok(&["report", "alice", "--format", "json"])?)?;
    let cell = &report["features"]["meetings"];
    ensure!(cell["status"] == "yes", "{cell}");
    ensure!(
        cell["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("server scheduling (RFC 6638)")),
        "{cell}"
    );

    // alice organizes a meeting with bob through the item model.
    let created = agent.call(
        "items.create",
        json!({"account": "alice", "collection": cyrus.default_calendar("alice"), "class": "appointment",
               "wait": true,
               "fields": {"GlobalUid": "meeting-1", "Subject": "Planning", "Location": "Room 1",
                          "Start": "2026-12-10T09:00:00", "StartTimeZone": "UTC",
                          "End": "2026-12-10T10:00:00", "EndTimeZone": "UTC",
                          "Organizer": "alice@localhost", "OrganizerName": "Alice",
                          "Recipients": [{"Address": "bob@localhost", "Name": "Bob", "Type": 1,
                                          "MeetingResponseStatus": 5, "Rsvp": true}]}}),
    )?;
    let alices = created["href"].as_str().context("href")?.to_owned();
    let sent = Instant::now();

    // bob's agent lists exactly one invitation, from the server (inbox and calendar copy merged).
    agent.call_until("meetings.list", json!({"account": "bob"}), WAIT, |v| {
        v.as_array().is_some_and(|a| !a.is_empty())
    })?;
    println!("invitation listed {:?} after alice's write", sent.elapsed());
    let bobs = bobs_copy(&agent, &cyrus, "meeting-1")?;
    let list = agent.call("meetings.list", json!({"account": "bob"}))?;
    let invitations = list.as_array().context("a list")?;
    ensure!(invitations.len() == 1, "{list}");
    let inv = &invitations[0];
    ensure!(inv["source"] == "server" && inv["method"] == "REQUEST", "{inv}");
    ensure!(inv["uid"] == "meeting-1" && inv["summary"] == "Planning", "{inv}");
    ensure!(inv["organizer"] == "alice@localhost", "{inv}");
    ensure!(inv["start"] == "2026-12-10T09:00:00Z", "{inv}");
    ensure!(inv["partstat"] == "NEEDS-ACTION", "{inv}");
    // alice, the organizer, has nothing to answer.
    let hers = agent.call("meetings.list", json!({"account": "alice"}))?;
    ensure!(hers.as_array().is_some_and(Vec::is_empty), "{hers}");
    // bob's copy is a received meeting.
    let bob_fields = agent.call("items.get", json!({"account": "bob", "href": bobs["href"]}))?;
    ensure!(bob_fields["fields"]["MeetingStatus"] == 3, "{bob_fields}");

    // bob accepts; the server carries the reply to alice's copy.
    let answered = agent.call(
        "meetings.respond",
        json!({"account": "bob", "id": inv["id"], "response": "accepted", "comment": "Will be there", "wait": true}),
    )?;
    ensure!(
        answered["href"] == bobs["href"],
        "answered bob's own copy: {answered}"
    );
    // The answer went with the Schedule-Tag Cyrus gave bob's copy (RFC 6638 §3.2.10): Cyrus's
    // telemetry log holds bob's requests with their headers.
    let telemetry = bob_telemetry(&cyrus)?;
    ensure!(
        telemetry.contains("if-schedule-tag-match:"),
        "bob's PUT carried no If-Schedule-Tag-Match:\n{telemetry}"
    );
    let replied = Instant::now();
    let fields = fields_until(&agent, "alice", &alices, |f| {
        recipient(f, "bob@localhost").is_some_and(|r| r["MeetingResponseStatus"] == 3)
    })?;
    println!(
        "alice saw bob's acceptance {:?} after his answer",
        replied.elapsed()
    );
    ensure!(fields["MeetingStatus"] == 1, "alice organizes it: {fields}");

    // Still one invitation for bob, now answered.
    let list = agent.call("meetings.list", json!({"account": "bob"}))?;
    ensure!(list.as_array().map(Vec::len) == Some(1), "{list}");
    ensure!(list[0]["partstat"] == "ACCEPTED", "{list}");

    // alice cancels: bob's listing shows the cancellation, once, and his copy does not stand.
    let deleted = agent.call(
        "items.delete",
        json!({"account": "alice", "href": alices, "wait": true}),
    )?;
    ensure!(deleted.get("conflict").is_none(), "{deleted}");
    let deadline = Instant::now() + WAIT;
    let list = loop {
        agent.call("sync", json!({"account": "bob"}))?;
        let list = agent.call("meetings.list", json!({"account": "bob"}))?;
        if list
            .as_array()
            .is_some_and(|a| a.len() == 1 && a[0]["method"] == "CANCEL")
        {
            break list;
        }
        ensure!(
            Instant::now() < deadline,
            "no CANCEL for bob: {list}; his inbox: {:?}; alice's calendar: {:?}",
            cyrus.members("bob", &format!("{}Inbox/", cyrus.calendar_home("bob")))?,
            cyrus.members("alice", &cyrus.default_calendar("alice"))?
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    ensure!(list[0]["uid"] == "meeting-1", "{list}");
    let href = bobs["href"].as_str().context("href")?;
    let deadline = Instant::now() + WAIT;
    loop {
        agent.call("sync", json!({"account": "bob"}))?;
        match agent.call("items.get", json!({"account": "bob", "href": href})) {
            Err(e) if e.to_string().contains("no item") => {
                println!("Cyrus removed bob's copy on the CANCEL");
                break;
            }
            Ok(item) if item["fields"]["MeetingStatus"] == 7 => {
                println!("Cyrus marked bob's copy cancelled");
                break;
            }
            other => ensure!(Instant::now() < deadline, "bob's copy still stands: {other:?}"),
        }
        std::thread::sleep(Duration::from_millis(300));
    }

    // Nothing went out as mail: no account has SMTP, no operation is left, none was a mail send.
    let status = agent.status_json()?;
    for a in status["accounts"].as_array().context("accounts")? {
        ensure!(a["services"].get("smtp").is_none_or(Value::is_null), "{a}");
        ensure!(a["pending_ops"] == 0, "{a}");
    }
    Ok(())
}
