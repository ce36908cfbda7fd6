//! Homes on another host, shaped like iCloud (issue 21): the configured server answers only
//! discovery and names the user's home on a second host (its partition, `pNN-caldav.icloud.com`);
//! every read and write after that (polls, multigets, PUT, DELETE, the free-busy REPORT) must go
//! to the second host, with the credentials, and nothing else to the first.
//!
//! ```text
//!   agent ──OPTIONS, PROPFIND / and /alice/──► front 127.0.0.2:F (scripted; 403 to all else)
//!            └ calendar-home-set http://127.0.0.1:R/alice/
//!   agent ──PROPFIND, REPORT, PUT, DELETE──► Radicale 127.0.0.1:R (the data host)
//! ```

mod hostile_common;

use std::time::Duration;

use anyhow::{Result, ensure};
use hostile_common::{FakeHttp, Reply, Seen, one_prop};
use opconnect_tests::config::render_config;
use opconnect_tests::{AccountSpec, Agent, AgentSettings, DavServer, Radicale};
use serde_json::{Value, json};

/// The discovery-only front: the principal is `/alice/` on itself, the homes are on `data`.
fn front(req: &Seen, data: &str) -> Reply {
    if req.method == "OPTIONS" {
        return Reply::options();
    }
    if req.authorization.is_none() {
        return Reply::unauthorized();
    }
    match (req.method.as_str(), req.path.as_str()) {
        ("PROPFIND", "/" | "/.well-known/caldav") if req.body.contains("current-user-principal") => {
            let prop = "<d:current-user-principal><d:href>/alice/</d:href></d:current-user-principal>";
            Reply::multistatus(&one_prop(&req.path, prop))
        }
        ("PROPFIND", "/alice/") => {
            let prop = format!(
                "<c:calendar-home-set><d:href>{data}alice/</d:href></c:calendar-home-set>\
                 <cr:addressbook-home-set><d:href>{data}alice/</d:href></cr:addressbook-home-set>\
                 <c:calendar-user-address-set><d:href>mailto:alice@localhost</d:href></c:calendar-user-address-set>"
            );
            Reply::multistatus(&format!(
                r#"<?xml version="1.0" encoding="utf-8"?>
<d:multistatus xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav" xmlns:cr="urn:ietf:params:xml:ns:carddav"><d:response><d:href>/alice/</d:href><d:propstat><d:prop>{prop}</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>"#
            ))
        }
        _ => Reply::status(403),
    }
}

fn event(uid: &str, summary: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Other Client//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n\
         DTSTAMP:20260101T000000Z\r\nDTSTART:20261201T090000Z\r\nDTEND:20261201T100000Z\r\n\
         SUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
}

#[test]
fn a_home_on_a_partition_host_gets_every_read_and_write() -> Result<()> {
    let radicale = Radicale::start()?;
    let cal = radicale.create_calendar("alice", "work", "Work")?;
    let (seeded, _) = radicale.put_event("alice", &cal, "seeded", &event("seeded", "Seeded"))?;
    let data = radicale.url();
    let front = FakeHttp::start("127.0.0.2", move |req, _| front(req, &data));

    let settings = AgentSettings {
        dav_poll_interval: "5m".into(),
        ..AgentSettings::default()
    };
    let mut account = AccountSpec::for_user("alice");
    account.caldav = Some(front.url());
    let agent = Agent::start(&render_config(&settings, &[account]))?;
    agent.wait_for_state("alice", "online", Duration::from_secs(20))?;

    // First sync: the seeded event arrives (listing and multiget at the data host).
    let item = agent.call_until(
        "items.get",
        json!({"account": "alice", "href": seeded}),
        Duration::from_secs(30),
        |v| v["fields"]["Subject"] == "Seeded",
    )?;

    // Create, patch, delete through opconnect: each lands on the data host.
    let fields = json!({"GlobalUid": "made-here", "Subject": "Made here", "Start": "2026-12-02T09:00:00",
        "End": "2026-12-02T10:00:00", "StartTimeZone": "UTC", "EndTimeZone": "UTC"});
    let made = agent.call(
        "items.create",
        json!({"account": "alice", "collection": cal, "class": "appointment", "fields": fields, "wait": true}),
    )?;
    let made_href = made["href"].as_str().unwrap_or_default().to_owned();
    ensure!(
        radicale.members("alice", &cal)?.contains(&made_href),
        "the create did not reach the data host: {made}"
    );
    agent.call(
        "items.patch",
        json!({"account": "alice", "href": seeded, "etag": item["etag"], "changes": {"Subject": "Renamed"}, "wait": true}),
    )?;
    let after = radicale.http().get("alice", &seeded)?.text();
    ensure!(after.contains("SUMMARY:Renamed"), "{after}");
    let made_item = agent.call("items.get", json!({"account": "alice", "href": made_href}))?;
    agent.call(
        "items.delete",
        json!({"account": "alice", "href": made_href, "etag": made_item["etag"], "wait": true}),
    )?;
    ensure!(!radicale.members("alice", &cal)?.contains(&made_href));

    // Free/busy of the user's own calendars: the free-busy-query REPORT goes to the data host
    // (Radicale 3.1 does not answer it, so "not supported" comes back from there).
    let raw = agent.ipc()?.request(
        "calendar.freebusy",
        json!({"account": "alice", "attendees": ["alice@localhost"], "start": "2026-12-01T00:00:00Z", "end": "2026-12-02T00:00:00Z"}),
    )?;
    ensure!(raw.get("error").is_some() || raw.get("result").is_some(), "{raw}");

    let seen = front.seen();
    let elsewhere: Vec<&Seen> = seen
        .iter()
        .filter(|r| !matches!(r.method.as_str(), "OPTIONS" | "PROPFIND"))
        .collect();
    ensure!(
        elsewhere.is_empty(),
        "writes or reports reached the front: {elsewhere:#?}"
    );
    let log = radicale.log();
    for what in ["PUT request for", "DELETE request for", "REPORT request for"] {
        ensure!(log.contains(what), "no {what} at the data host:\n{log}");
    }
    ensure!(
        log.matches("REPORT request for").count() >= 2,
        "multiget and free-busy-query both at the data host"
    );
    let status: Value = agent.status_json()?;
    ensure!(
        status["accounts"][0]["services"]["caldav"]["state"] == "online",
        "{status}"
    );
    Ok(())
}
