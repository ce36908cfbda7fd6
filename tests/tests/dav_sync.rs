//! End-to-end tests of CalDAV/CardDAV discovery and sync (issue 4) against a private Radicale,
//! driving the agent through `opconnect call` and `opconnect sync` only.
//!
//! ```text
//!   Radicale ◀── opconnect run (DAV pollers) ◀── opconnect call calendar.* / contacts.*
//!      └─ radicale.log: every request the agent sent (counted by its User-Agent)
//! ```

use std::fs;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use opconnect_tests::DavServer;
use opconnect_tests::config::render_config;
use opconnect_tests::{AccountSpec, Agent, AgentSettings, Radicale};
use serde_json::{Value, json};

/// An agent for alice with CalDAV and CardDAV on `radicale`, polling every `poll`.
fn dav_agent(radicale: &Radicale, poll: &str) -> Result<Agent> {
    let settings = AgentSettings {
        dav_poll_interval: poll.into(),
        ..AgentSettings::default()
    };
    let config = render_config(&settings, &[AccountSpec::for_user("alice").dav_from(radicale)]);
    let agent = Agent::start(&config)?;
    agent.wait_for_state("alice", "online", Duration::from_secs(20))?;
    Ok(agent)
}

fn items(agent: &Agent, calendar: &str) -> Result<Vec<Value>> {
    let v = agent.call(
        "calendar.items",
        json!({"account": "alice", "calendar": calendar}),
    )?;
    Ok(v.as_array().cloned().unwrap_or_default())
}

fn event(uid: &str, summary: &str, start: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//opconnect tests//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n\
         DTSTAMP:20260101T000000Z\r\nDTSTART:{start}\r\nDURATION:PT1H\r\nSUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
}

/// The requests the agent sent to Radicale, as `METHOD path` (Radicale logs each with the
/// User-Agent), from log line `from` on.
fn agent_requests(radicale: &Radicale, from: usize) -> Vec<String> {
    radicale
        .log()
        .lines()
        .skip(from)
        .filter(|l| l.contains(" request for '") && l.contains("using 'opconnect/"))
        .filter_map(|l| {
            let start = l
                .find("] [INFO] ")
                .map(|i| i + 9)
                .or_else(|| l.find("] ").map(|i| i + 2))?;
            let rest = &l[start..];
            let method = rest.split_whitespace().next()?;
            let path = rest.split('\'').nth(1)?;
            Some(format!("{method} {path}"))
        })
        .collect()
}

fn log_mark(radicale: &Radicale) -> usize {
    radicale.log().lines().count()
}

/// Writes `n` events straight into Radicale's storage (faster than n PUTs; Radicale reads its
/// folder on each request).
fn seed_events(radicale: &Radicale, calendar_slug: &str, n: usize) -> Result<()> {
    let dir = radicale
        .dir()
        .join("collections/collection-root/alice")
        .join(calendar_slug);
    ensure!(dir.is_dir(), "{} does not exist", dir.display());
    for i in 0..n {
        let body = event(
            &format!("ev{i:04}"),
            &format!("Event {i}"),
            &format!("2026{:02}{:02}T100000Z", 1 + i % 12, 1 + i % 28),
        );
        fs::write(dir.join(format!("ev{i:04}.ics")), body)?;
    }
    Ok(())
}

#[test]
fn initial_sync_of_1000_events_matches_the_server() -> Result<()> {
    let radicale = Radicale::start()?;
    let cal = radicale.create_calendar("alice", "work", "Work")?;
    seed_events(&radicale, "work", 1000)?;
    let began = Instant::now();
    let agent = dav_agent(&radicale, "5m")?;
    let got = agent.call_until(
        "calendar.items",
        json!({"account": "alice", "calendar": cal}),
        Duration::from_secs(120),
        |v| v.as_array().is_some_and(|a| a.len() == 1000),
    )?;
    let took = began.elapsed();
    println!("initial sync of 1000 events: {took:?} (agent start included)");
    let members = radicale.members("alice", &cal)?;
    let mut server: Vec<String> = members;
    server.sort();
    let mut mirror: Vec<String> = got
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["href"].as_str().unwrap().to_owned())
        .collect();
    mirror.sort();
    assert_eq!(mirror, server);
    for item in got.as_array().unwrap() {
        let uid = item["uid"].as_str().context("uid")?;
        let n: usize = uid.trim_start_matches("ev").parse()?;
        assert_eq!(item["summary"], format!("Event {n}"));
        assert_eq!(item["component"], "VEVENT");
        assert!(item["etag"].as_str().is_some_and(|e| !e.is_empty()));
    }
    // Invariant 3: the bytes the server serves (Radicale re-serializes what it stored), verbatim.
    for item in got.as_array().unwrap().iter().step_by(50) {
        let served = radicale.get("alice", item["href"].as_str().unwrap())?;
        assert_eq!(item["ics"].as_str().unwrap(), served.text());
    }
    // An empty mirror: the home listing, then one query carrying every event (issue 22); no
    // sync-collection before `synced` (the next round takes the token), no multiget, no GET.
    let requests = agent_requests(&radicale, 0);
    let reports = requests.iter().filter(|r| r.starts_with("REPORT")).count();
    let log = agent.log();
    let trouble: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .collect();
    assert_eq!(reports, 1, "{requests:?}\n{}", trouble.join("\n"));
    assert!(!requests.iter().any(|r| r.starts_with("GET")), "{requests:?}");
    Ok(())
}

#[test]
fn changes_show_after_sync_and_only_changed_items_are_fetched() -> Result<()> {
    let radicale = Radicale::start()?;
    let cal = radicale.create_calendar("alice", "work", "Work")?;
    seed_events(&radicale, "work", 30)?;
    let agent = dav_agent(&radicale, "5m")?;
    agent.call_until(
        "calendar.items",
        json!({"account": "alice", "calendar": cal}),
        Duration::from_secs(30),
        |v| v.as_array().is_some_and(|a| a.len() == 30),
    )?;
    let mut watch = agent.watch(&["calendar.changed"])?;
    thread::sleep(Duration::from_millis(300));
    let mark = log_mark(&radicale);
    radicale.put_event(
        "alice",
        &cal,
        "ev0003",
        &event("ev0003", "Moved", "20260301T150000Z"),
    )?;
    radicale.delete("alice", &format!("{cal}ev0007.ics"))?;
    radicale.put_event("alice", &cal, "new1", &event("new1", "Fresh", "20260302T090000Z"))?;
    let mark_server = log_mark(&radicale);
    agent.cli_ok(&["sync", "alice"])?;
    let got = agent.call_until(
        "calendar.items",
        json!({"account": "alice", "calendar": cal}),
        Duration::from_secs(20),
        |v| {
            let a = v.as_array().unwrap();
            a.len() == 30 && a.iter().any(|i| i["summary"] == "Moved") && a.iter().any(|i| i["uid"] == "new1")
        },
    )?;
    assert!(!got.as_array().unwrap().iter().any(|i| i["uid"] == "ev0007"));
    let ev = watch.wait_topic("calendar.changed", Duration::from_secs(10))?;
    let ev = ev.get("params").cloned().unwrap_or(ev);
    assert_eq!(
        (
            ev["added"].as_u64(),
            ev["changed"].as_u64(),
            ev["removed"].as_u64()
        ),
        (Some(1), Some(1), Some(1)),
        "{ev}"
    );
    // The agent asked: the home listing, one sync-collection, one multiget (for 2 hrefs).
    let reqs: Vec<String> = agent_requests(&radicale, mark_server.max(mark))
        .into_iter()
        .filter(|r| r.ends_with("/work/"))
        .collect();
    assert_eq!(
        reqs.iter().filter(|r| r.starts_with("REPORT")).count(),
        2,
        "{reqs:?}"
    );
    let log = agent.log();
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains("collection synced") && l.contains("/alice/work/"))
        .context("no sync line in the agent log")?;
    assert!(
        line.contains("fetched=2"),
        "only the two changed items are fetched: {line}"
    );
    Ok(())
}

#[test]
fn an_unchanged_collection_costs_one_request_per_poll() -> Result<()> {
    let radicale = Radicale::start()?;
    let cal = radicale.create_calendar("alice", "work", "Work")?;
    radicale.create_addressbook("alice", "contacts", "Contacts")?;
    seed_events(&radicale, "work", 5)?;
    // The periodic check of sync-tokens (README "Sync tokens that lie") costs one PROPFIND per
    // collection every `verify_every` polls by design; this test measures the poll itself.
    let settings = AgentSettings {
        dav_poll_interval: "1s".into(),
        ..AgentSettings::default()
    };
    let mut config = render_config(&settings, &[AccountSpec::for_user("alice").dav_from(&radicale)]);
    config.push_str("\n[account.sync]\nverify_every = 0\n");
    let agent = Agent::start(&config)?;
    agent.wait_for_state("alice", "online", Duration::from_secs(20))?;
    agent.call_until(
        "calendar.items",
        json!({"account": "alice", "calendar": cal}),
        Duration::from_secs(20),
        |v| v.as_array().is_some_and(|a| a.len() == 5),
    )?;
    // The rounds after the first take the token (a listing from an empty token) and let the
    // collection's stamp settle, two seconds past its own (README "Change markers").
    thread::sleep(Duration::from_millis(4500));
    let mark = log_mark(&radicale);
    thread::sleep(Duration::from_secs(5));
    let reqs = agent_requests(&radicale, mark);
    // Two pollers (CalDAV, CardDAV), about five polls each, one PROPFIND of the home per poll.
    ensure!(!reqs.is_empty(), "no polls seen");
    for r in &reqs {
        assert_eq!(
            r, "PROPFIND /alice/",
            "an idle poll is one PROPFIND of the home: {reqs:?}"
        );
    }
    assert!(reqs.len() <= 14, "{} requests in 5 s: {reqs:?}", reqs.len());
    println!(
        "idle: {} requests in 5 s for 2 services polling every 1 s",
        reqs.len()
    );
    Ok(())
}

#[test]
fn every_round_ends_with_a_synced_event() -> Result<()> {
    let radicale = Radicale::start()?;
    radicale.create_calendar("alice", "work", "Work")?;
    radicale.create_addressbook("alice", "contacts", "Contacts")?;
    let agent = dav_agent(&radicale, "1h")?;
    agent.wait_for(Duration::from_secs(20), |s| {
        s["accounts"][0]["last_sync"].is_string()
    })?;
    let mut events = agent.ipc()?;
    events.subscribe(&["synced"])?;
    agent.cli_ok(&["sync", "alice"])?;
    let mut services = Vec::new();
    while services.len() < 2 {
        let event = events
            .next_event(Duration::from_secs(10))?
            .with_context(|| format!("no synced event after sync; got {services:?}"))?;
        assert_eq!(event["topic"], "synced", "{event}");
        assert_eq!(event["account"], "alice", "{event}");
        let service = event["service"].as_str().unwrap_or_default().to_string();
        if !services.contains(&service) {
            services.push(service);
        }
    }
    services.sort();
    assert_eq!(services, ["caldav", "carddav"]);
    Ok(())
}

#[test]
fn tasks_and_calendars_are_listed_with_their_properties() -> Result<()> {
    let radicale = Radicale::start()?;
    let work = radicale.create_calendar("alice", "work", "Work")?;
    let todo = radicale.create_calendar_for("alice", "chores", "Chores", &["VTODO"])?;
    let task = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VTODO\r\nUID:task1\r\nDTSTAMP:20260101T000000Z\r\n\
                DUE;TZID=Europe/Berlin:20260410T170000\r\nSUMMARY:File taxes\r\nEND:VTODO\r\nEND:VCALENDAR\r\n";
    radicale.put_event("alice", &todo, "task1", task)?;
    let agent = dav_agent(&radicale, "5m")?;
    let list = agent.call_until(
        "calendar.list",
        json!({"account": "alice"}),
        Duration::from_secs(20),
        |v| v.as_array().is_some_and(|a| a.len() == 2),
    )?;
    let find = |href: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|c| c["href"] == href)
            .cloned()
            .unwrap()
    };
    let w = find(&work);
    assert_eq!(
        (w["kind"].as_str(), w["name"].as_str(), w["read_only"].as_bool()),
        (Some("calendar"), Some("Work"), Some(false))
    );
    assert_eq!(w["components"], json!(["VEVENT"]));
    let t = find(&todo);
    assert_eq!(t["kind"], "tasks");
    let got = agent.call_until(
        "calendar.items",
        json!({"account": "alice", "calendar": todo}),
        Duration::from_secs(20),
        |v| v.as_array().is_some_and(|a| a.len() == 1),
    )?;
    let item = &got[0];
    assert_eq!(item["component"], "VTODO");
    assert_eq!(item["due"], "2026-04-10T17:00:00+02:00");
    assert_eq!(item["due_tz"], "Europe/Berlin");
    // Errors of the contract.
    let out = agent.cli(&["call", "calendar.list", r#"{"account":"nobody"}"#]);
    assert_eq!(out.status.code(), Some(1));
    let out = agent.cli(&[
        "call",
        "calendar.items",
        r#"{"account":"alice","calendar":"/alice/nope/"}"#,
    ]);
    assert_eq!(out.status.code(), Some(1));
    Ok(())
}

#[test]
fn vcard_3_and_4_and_groups() -> Result<()> {
    let radicale = Radicale::start()?;
    let book = radicale.create_addressbook("alice", "contacts", "Contacts")?;
    radicale.put_contact(
        "alice",
        &book,
        "ada",
        "BEGIN:VCARD\r\nVERSION:4.0\r\nUID:ada\r\nFN:Ada Lovelace\r\nEMAIL:ada@example.org\r\nEND:VCARD\r\n",
    )?;
    radicale.put_contact(
        "alice",
        &book,
        "grace",
        "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:grace\r\nN:Hopper;Grace;;;\r\nFN:Grace Hopper\r\nEMAIL;TYPE=INTERNET:grace@example.org\r\nEMAIL;TYPE=INTERNET:gh@navy.example\r\nEND:VCARD\r\n",
    )?;
    radicale.put_contact(
        "alice",
        &book,
        "team",
        "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:team\r\nFN:Team\r\nN:Team;;;;\r\nX-ADDRESSBOOKSERVER-KIND:group\r\nX-ADDRESSBOOKSERVER-MEMBER:urn:uuid:ada\r\nX-ADDRESSBOOKSERVER-MEMBER:urn:uuid:grace\r\nEND:VCARD\r\n",
    )?;
    let agent = dav_agent(&radicale, "5m")?;
    let books = agent.call_until(
        "contacts.books",
        json!({"account": "alice"}),
        Duration::from_secs(20),
        |v| v.as_array().is_some_and(|a| a.len() == 1),
    )?;
    assert_eq!(
        books[0],
        json!({"href": book, "name": "Contacts", "read_only": false, "directory": false})
    );
    let got = agent.call_until(
        "contacts.items",
        json!({"account": "alice", "book": book}),
        Duration::from_secs(20),
        |v| v.as_array().is_some_and(|a| a.len() == 3),
    )?;
    let by = |uid: &str| {
        got.as_array()
            .unwrap()
            .iter()
            .find(|c| c["uid"] == uid)
            .cloned()
            .unwrap()
    };
    let ada = by("ada");
    assert_eq!(
        (ada["name"].as_str(), ada["kind"].as_str()),
        (Some("Ada Lovelace"), Some("individual"))
    );
    assert_eq!(ada["emails"], json!(["ada@example.org"]));
    assert!(ada["vcf"].as_str().unwrap().contains("VERSION:4.0"));
    let grace = by("grace");
    assert_eq!(grace["emails"], json!(["grace@example.org", "gh@navy.example"]));
    assert!(grace["vcf"].as_str().unwrap().contains("VERSION:3.0"));
    let team = by("team");
    assert_eq!(team["kind"], "group");
    assert_eq!(team["members"], json!(["urn:uuid:ada", "urn:uuid:grace"]));
    Ok(())
}

#[test]
fn a_broken_item_is_recorded_and_the_others_sync() -> Result<()> {
    let radicale = Radicale::start()?;
    let cal = radicale.create_calendar("alice", "work", "Work")?;
    for i in 0..5 {
        radicale.put_event(
            "alice",
            &cal,
            &format!("ok{i}"),
            &event(&format!("ok{i}"), "Fine", "20260105T100000Z"),
        )?;
        if i == 2 {
            // Radicale accepts it; RFC 5545 §3.8.2.2 does not: DTEND before DTSTART.
            let broken = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:broken\r\nDTSTAMP:20260101T000000Z\r\n\
                          DTSTART:20260101T100000Z\r\nDTEND:20250101T100000Z\r\nSUMMARY:Backwards\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
            radicale.put_event("alice", &cal, "broken", broken)?;
        }
    }
    let agent = dav_agent(&radicale, "5m")?;
    let got = agent.call_until(
        "calendar.items",
        json!({"account": "alice", "calendar": cal}),
        Duration::from_secs(20),
        |v| v.as_array().is_some_and(|a| a.len() == 6),
    )?;
    let a = got.as_array().unwrap();
    let broken = a
        .iter()
        .find(|i| i["href"].as_str().unwrap().ends_with("broken.ics"))
        .unwrap();
    assert!(
        broken["error"].as_str().unwrap().contains("before DTSTART"),
        "{broken}"
    );
    assert!(broken["ics"].as_str().unwrap().contains("SUMMARY:Backwards"));
    assert_eq!(
        a.iter()
            .filter(|i| i["summary"] == "Fine" && i.get("error").is_none())
            .count(),
        5
    );
    Ok(())
}

#[test]
fn a_recurring_event_in_berlin_yields_the_right_instances() -> Result<()> {
    let radicale = Radicale::start()?;
    let cal = radicale.create_calendar("alice", "work", "Work")?;
    let ics = include_str!("../../actors/tests/fixtures/ical/berlin-weekly.ics");
    radicale.put_event("alice", &cal, "standup", ics)?;
    let agent = dav_agent(&radicale, "5m")?;
    agent.call_until(
        "calendar.items",
        json!({"account": "alice", "calendar": cal}),
        Duration::from_secs(20),
        |v| v.as_array().is_some_and(|a| a.len() == 1),
    )?;
    let all = items(&agent, &cal)?;
    assert_eq!(all[0]["recurring"], true);
    assert_eq!(all[0]["start_tz"], "Europe/Berlin");
    let got = agent.call(
        "calendar.items",
        json!({"account": "alice", "calendar": cal, "start": "2026-03-08T00:00:00Z", "end": "2026-04-01T00:00:00Z"}),
    )?;
    let starts: Vec<&str> = got
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["start"].as_str().unwrap())
        .collect();
    assert_eq!(
        starts,
        vec![
            // 03-09 is excluded (EXDATE); 03-16 moved to 11:30 by an override with a higher SEQUENCE.
            "2026-03-16T11:30:00+01:00",
            "2026-03-23T09:00:00+01:00",
            "2026-03-30T09:00:00+02:00",
        ]
    );
    assert_eq!(got[0]["summary"], "Standup (moved)");
    assert_eq!(got[0]["overridden"], true);
    assert_eq!(got[2]["end"], "2026-03-30T09:15:00+02:00");
    Ok(())
}

#[test]
fn the_mass_deletion_guard_holds() -> Result<()> {
    let radicale = Radicale::start()?;
    let cal = radicale.create_calendar("alice", "work", "Work")?;
    seed_events(&radicale, "work", 12)?;
    let agent = dav_agent(&radicale, "5m")?;
    agent.call_until(
        "calendar.items",
        json!({"account": "alice", "calendar": cal}),
        Duration::from_secs(20),
        |v| v.as_array().is_some_and(|a| a.len() == 12),
    )?;
    let mut watch = agent.watch(&["dav.held"])?;
    thread::sleep(Duration::from_millis(300));
    for i in 0..10 {
        radicale.delete("alice", &format!("{cal}ev{i:04}.ics"))?;
    }
    agent.cli_ok(&["sync", "alice"])?;
    let held = watch.wait_topic("dav.held", Duration::from_secs(20))?;
    let held = held.get("params").cloned().unwrap_or(held);
    assert_eq!(held["removals"], 10, "{held}");
    assert_eq!(items(&agent, &cal)?.len(), 12, "the mirror keeps every item");
    let list = agent.call("calendar.list", json!({"account": "alice"}))?;
    assert_eq!(list[0]["held_removals"], 10);
    // A normal deletion afterwards still applies once the server has its items back.
    Ok(())
}

/// Issue 22 for CardDAV: an empty mirror of 150 cards takes them in one addressbook-query (an empty filter, RFC 6352 §10.5), byte for byte as Radicale serves them.
#[test]
fn a_first_sync_of_150_cards_takes_one_addressbook_query() -> Result<()> {
    let radicale = Radicale::start()?;
    let book = radicale.create_addressbook("alice", "people", "People")?;
    let dir = radicale.dir().join("collections/collection-root/alice/people");
    for i in 0..150 {
        let card = format!(
            "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:c{i:03}\r\nFN:Person {i}\r\nN:{i};Person;;;\r\n\
             EMAIL:p{i}@example.org\r\nEND:VCARD\r\n"
        );
        fs::write(dir.join(format!("c{i:03}.vcf")), card)?;
    }
    let from = log_mark(&radicale);
    let agent = dav_agent(&radicale, "5m")?;
    let got = agent.call_until(
        "contacts.items",
        json!({"account": "alice", "book": book}),
        Duration::from_secs(60),
        |v| v.as_array().is_some_and(|a| a.len() == 150),
    )?;
    for item in got.as_array().context("items")?.iter().step_by(30) {
        let href = item["href"].as_str().context("href")?;
        assert_eq!(
            item["vcf"].as_str(),
            Some(radicale.get("alice", href)?.text().as_str())
        );
    }
    let reports: Vec<String> = agent_requests(&radicale, from)
        .into_iter()
        .filter(|r| r.starts_with("REPORT") && r.ends_with(&book))
        .collect();
    assert_eq!(reports.len(), 1, "{reports:?}");
    Ok(())
}
