//! End-to-end tests of CalDAV/CardDAV discovery and sync (issue 4) against a private Cyrus IMAP 3.6,
//! the second DAV server after Radicale (tests/tests/dav_sync.rs), driving the agent through
//! `opconnect call` and `opconnect sync` only.
//!
//! ```text
//!   Cyrus httpd ◀── opconnect run (DAV pollers: discovery from /, sync-collection, multiget)
//!   Cyrus imapd ◀──┘ (IMAP too, in one test)   ◀── opconnect call calendar.* / contacts.*
//! ```
//!
//! What Cyrus does differently from Radicale: `OPTIONS /` carries no DAV header (the classes are
//! announced on `/dav/…` only), homes under `/dav/calendars/user/NAME/`, a `Default` calendar
//! (VEVENT and VTODO) and address book per user, scheduling Inbox/Outbox collections in the calendar
//! home, CDATA display names, a 415 for an XML body without an XML Content-Type, and vCards
//! re-serialized on the way in (folded at 75 octets, vCard 4 served as 3.0 unless asked for 4).
//! Requests are counted from Cyrus's per-user telemetry log (`Cyrus::agent_requests`).

use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use opconnect_tests::DavServer;
use opconnect_tests::config::render_config;
use opconnect_tests::{AccountSpec, Agent, AgentSettings, Cyrus, USERS};
use serde_json::{Value, json};

/// An agent for alice with CalDAV and CardDAV (and IMAP when `imap`) on `cyrus`.
fn cyrus_agent(cyrus: &Cyrus, imap: bool) -> Result<Agent> {
    let settings = AgentSettings {
        dav_poll_interval: "5m".into(),
        ..AgentSettings::default()
    };
    let mut account = AccountSpec::for_user("alice");
    account.caldav = Some(cyrus.dav_url());
    account.carddav = Some(cyrus.dav_url());
    if imap {
        account.imap = Some(cyrus.imap_url());
    }
    let agent = Agent::start(&render_config(&settings, &[account]))?;
    agent.wait_for_state("alice", "online", Duration::from_secs(20))?;
    Ok(agent)
}

fn len_is(n: usize) -> impl Fn(&Value) -> bool {
    move |v| v.as_array().is_some_and(|a| a.len() == n)
}

fn event(uid: &str, summary: &str, start: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//opconnect tests//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n\
         DTSTAMP:20260101T000000Z\r\nDTSTART:{start}\r\nDURATION:PT1H\r\nSUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn hrefs_of(items: &Value) -> Vec<String> {
    sorted(
        items
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|i| i["href"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
    )
}

#[test]
fn cyrus_starts_with_dav_homes_for_every_user() -> Result<()> {
    let began = Instant::now();
    let mut cyrus = Cyrus::start()?;
    println!(
        "Cyrus ready in {:?}; with users provisioned in {:?}",
        cyrus.started_in(),
        began.elapsed()
    );
    let mut probe = cyrus.probe("alice")?;
    assert!(probe.greeting().contains("Cyrus IMAP"), "{}", probe.greeting());
    let ns = probe.namespace()?;
    assert!(ns.contains("Other Users/"), "{ns}");
    probe.logout()?;
    for (user, _) in USERS {
        for home in [cyrus.default_calendar(user), cyrus.default_addressbook(user)] {
            let r = cyrus.propfind(user, &home, 0)?;
            ensure!(
                r.status == 207,
                "{user}: PROPFIND {home}: {} {}",
                r.status,
                r.text()
            );
        }
    }
    // Another user's calendar is not ours to read. Cyrus first redirects to where a calendar
    // shared with bob would appear in his home (`/dav/calendars/user/bob/alice.Default/`).
    let mut r = cyrus.propfind("bob", &cyrus.default_calendar("alice"), 1)?;
    if r.status == 301
        && let Some(location) = r.header("Location").map(str::to_owned)
    {
        r = cyrus.propfind("bob", &location, 1)?;
    }
    assert!(
        matches!(r.status, 403 | 404),
        "bob reading alice: {} {:?} {}",
        r.status,
        r.header("Location"),
        r.text()
    );
    // Data and ports survive a restart.
    let (href, _) = cyrus.put_event(
        "alice",
        &cyrus.default_calendar("alice"),
        "keep",
        &event("keep", "Kept", "20260105T100000Z"),
    )?;
    cyrus.stop();
    assert!(!cyrus.is_running());
    cyrus.start_again()?;
    println!("Cyrus restarted in {:?}", cyrus.started_in());
    let r = cyrus.get("alice", &href)?;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("SUMMARY:Kept"));
    Ok(())
}

#[test]
fn calendars_tasks_and_mail_of_a_cyrus_account() -> Result<()> {
    let cyrus = Cyrus::start()?;
    let work = cyrus.create_calendar("alice", "work", "Work")?;
    let chores = cyrus.create_calendar_for("alice", "chores", "Chores", &["VTODO"])?;
    let default = cyrus.default_calendar("alice");
    let task = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VTODO\r\nUID:task1\r\n\
                DTSTAMP:20260101T000000Z\r\nDUE;VALUE=DATE:20260410\r\nSUMMARY:File taxes\r\nEND:VTODO\r\n\
                END:VCALENDAR\r\n";
    cyrus.put_event("alice", &chores, "task1", task)?;
    let agent = cyrus_agent(&cyrus, true)?;
    let list = agent.call_until(
        "calendar.list",
        json!({"account": "alice"}),
        Duration::from_secs(20),
        len_is(3),
    )?;
    let find = |href: &str| -> Result<Value> {
        list.as_array()
            .unwrap()
            .iter()
            .find(|c| c["href"] == href)
            .cloned()
            .with_context(|| format!("{href} is not in calendar.list: {list}"))
    };
    // The scheduling Inbox and Outbox are not calendars (RFC 6638 §2.2, §2.1).
    let d = find(&default)?;
    assert_eq!(
        (d["kind"].as_str(), d["name"].as_str(), d["read_only"].as_bool()),
        (Some("calendar"), Some("personal"), Some(false)),
        "{d}"
    );
    let comps = d["components"].as_array().context("components")?;
    assert!(
        comps.contains(&json!("VEVENT")) && comps.contains(&json!("VTODO")),
        "{d}"
    );
    let w = find(&work)?;
    assert_eq!(
        (w["kind"].as_str(), w["name"].as_str(), w["read_only"].as_bool()),
        (Some("calendar"), Some("Work"), Some(false)),
        "{w}"
    );
    assert_eq!(w["components"], json!(["VEVENT"]));
    let t = find(&chores)?;
    assert_eq!(
        (t["kind"].as_str(), t["name"].as_str()),
        (Some("tasks"), Some("Chores")),
        "{t}"
    );
    let got = agent.call_until(
        "calendar.items",
        json!({"account": "alice", "calendar": chores}),
        Duration::from_secs(20),
        len_is(1),
    )?;
    assert_eq!(
        (got[0]["component"].as_str(), got[0]["summary"].as_str()),
        (Some("VTODO"), Some("File taxes")),
        "{got}"
    );
    // The same account's mail comes from Cyrus's IMAP.
    let folders = agent.call_until(
        "mail.folders",
        json!({"account": "alice"}),
        Duration::from_secs(20),
        |v| v.to_string().contains("INBOX"),
    )?;
    println!("Cyrus folders: {folders}");
    Ok(())
}

#[test]
fn initial_sync_of_200_events_then_a_change_and_a_delete() -> Result<()> {
    let cyrus = Cyrus::start()?;
    let cal = cyrus.create_calendar("alice", "work", "Work")?;
    let seeding = Instant::now();
    for i in 0..200 {
        let uid = format!("ev{i:04}");
        let start = format!("2026{:02}{:02}T100000Z", 1 + i % 12, 1 + i % 28);
        cyrus.put_event("alice", &cal, &uid, &event(&uid, &format!("Event {i}"), &start))?;
    }
    println!("200 PUTs to Cyrus: {:?}", seeding.elapsed());
    let began = Instant::now();
    let agent = cyrus_agent(&cyrus, false)?;
    let got = agent.call_until(
        "calendar.items",
        json!({"account": "alice", "calendar": cal}),
        Duration::from_secs(60),
        len_is(200),
    )?;
    println!(
        "initial sync of 200 events from Cyrus: {:?} (agent start included)",
        began.elapsed()
    );
    assert_eq!(hrefs_of(&got), sorted(cyrus.members("alice", &cal)?));
    for item in got.as_array().unwrap() {
        let uid = item["uid"].as_str().context("uid")?;
        let n: usize = uid.trim_start_matches("ev").parse()?;
        assert_eq!(item["summary"], format!("Event {n}"), "{item}");
        assert_eq!(item["component"], "VEVENT");
        assert!(item.get("error").is_none(), "{item}");
        assert!(item["etag"].as_str().is_some_and(|e| !e.is_empty()));
    }
    // Invariant 3: the mirror holds the bytes the server serves.
    for item in got.as_array().unwrap().iter().step_by(40) {
        let served = cyrus.get("alice", item["href"].as_str().unwrap())?;
        assert_eq!(item["ics"].as_str().unwrap(), served.text());
    }
    // An empty mirror: one query carrying every event (issue 22), not 200 GETs; the token is
    // taken by the next round.
    let initial = cyrus.agent_requests("alice")?;
    let on_work = |reqs: &[String], method: &str| {
        reqs.iter()
            .filter(|r| r.starts_with(method) && r.ends_with("/work/"))
            .count()
    };
    assert_eq!(on_work(&initial, "REPORT"), 1, "{initial:?}");
    assert_eq!(on_work(&initial, "GET"), 0, "{initial:?}");

    // A change and a delete on the server show up after `opconnect sync`.
    let mut watch = agent.watch(&["calendar.changed"])?;
    thread::sleep(Duration::from_millis(300));
    cyrus.put_event(
        "alice",
        &cal,
        "ev0003",
        &event("ev0003", "Moved", "20260301T150000Z"),
    )?;
    cyrus.delete("alice", &format!("{cal}ev0007.ics"))?;
    agent.cli_ok(&["sync", "alice"])?;
    let got = agent.call_until(
        "calendar.items",
        json!({"account": "alice", "calendar": cal}),
        Duration::from_secs(20),
        |v| {
            let a = v.as_array().unwrap();
            a.len() == 199 && a.iter().any(|i| i["summary"] == "Moved")
        },
    )?;
    assert!(!got.as_array().unwrap().iter().any(|i| i["uid"] == "ev0007"));
    assert_eq!(hrefs_of(&got), sorted(cyrus.members("alice", &cal)?));
    let ev = watch.wait_topic("calendar.changed", Duration::from_secs(10))?;
    let ev = ev.get("params").cloned().unwrap_or(ev);
    assert_eq!(
        (
            ev["added"].as_u64(),
            ev["changed"].as_u64(),
            ev["removed"].as_u64()
        ),
        (Some(0), Some(1), Some(1)),
        "{ev}"
    );
    let log = agent.log();
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains("collection synced") && l.contains("/alice/work/"))
        .context("no sync line in the agent log")?;
    assert!(
        line.contains("fetched=1"),
        "only the changed item is fetched: {line}"
    );
    // The round after `sync`: one sync-collection from an empty token (compared with the
    // mirror) and one multiget (for the one changed href).
    let after = cyrus.agent_requests("alice")?;
    let reports = on_work(&after, "REPORT") - on_work(&initial, "REPORT");
    assert_eq!(reports, 2, "{:?}", &after[initial.len().min(after.len())..]);
    Ok(())
}

#[test]
fn the_default_address_book_and_a_vcard_round_trip() -> Result<()> {
    let cyrus = Cyrus::start()?;
    let book = cyrus.default_addressbook("alice");
    let vcf = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:grace\r\nN:Hopper;Grace;;;\r\nFN:Grace Hopper\r\n\
               EMAIL;TYPE=INTERNET:grace@example.org\r\nEMAIL;TYPE=INTERNET:gh@navy.example\r\n\
               NOTE:A long note that is folded by the client\\, as RFC 6350 allows: one\\, two\\, th\r\n ree.\r\n\
               END:VCARD\r\n";
    let (href, _) = cyrus.put_contact("alice", &book, "grace", vcf)?;
    let v4 =
        "BEGIN:VCARD\r\nVERSION:4.0\r\nUID:ada\r\nFN:Ada Lovelace\r\nEMAIL:ada@example.org\r\nEND:VCARD\r\n";
    cyrus.put_contact("alice", &book, "ada", v4)?;
    let v3 = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:sam\r\nN:Sample;Sam;;;\r\nFN:Sam Sample\r\n\
              EMAIL;TYPE=INTERNET;TYPE=WORK:sam@example.org\r\nTEL;TYPE=CELL:+49 30 1234567\r\nEND:VCARD\r\n";
    cyrus.put_contact("alice", &book, "sam", v3)?;
    let served = cyrus.get("alice", &href)?;
    assert_eq!(served.status, 200);
    let agent = cyrus_agent(&cyrus, false)?;
    let books = agent.call_until(
        "contacts.books",
        json!({"account": "alice"}),
        Duration::from_secs(20),
        |v| v.as_array().is_some_and(|a| !a.is_empty()),
    )?;
    let b = books
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["href"] == book)
        .with_context(|| format!("{book} is not in contacts.books: {books}"))?;
    assert_eq!(
        (b["read_only"].as_bool(), b["directory"].as_bool()),
        (Some(false), Some(false)),
        "{b}"
    );
    let got = agent.call_until(
        "contacts.items",
        json!({"account": "alice", "book": book}),
        Duration::from_secs(20),
        len_is(3),
    )?;
    let grace = got
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["uid"] == "grace")
        .context("grace")?;
    assert_eq!(grace["name"], "Grace Hopper");
    assert_eq!(grace["emails"], json!(["grace@example.org", "gh@navy.example"]));
    // Byte for byte (invariant 3): the mirror keeps what Cyrus serves. Cyrus re-folds long lines
    // at 75 octets (RFC 6350 §3.2), so a card folded elsewhere is served differently…
    assert_eq!(grace["vcf"].as_str().unwrap(), served.text());
    assert_ne!(served.text(), vcf, "Cyrus re-folded the NOTE line");
    let ada = got
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["uid"] == "ada")
        .context("ada")?;
    assert_eq!(ada["emails"], json!(["ada@example.org"]));
    assert_eq!(
        ada["vcf"].as_str().unwrap(),
        cyrus.get("alice", &format!("{book}ada.vcf"))?.text()
    );
    // A vCard 4 is served as vCard 3 unless the client asks for 4 (RFC 6352 §5.1.1 content
    // negotiation; Cyrus's default is 3.0), so the mirror holds that form.
    assert!(ada["vcf"].as_str().unwrap().contains("VERSION:3.0"));
    // Cyrus re-serializes every card; one already in its form comes back exactly as it was PUT.
    let sam = got
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["uid"] == "sam")
        .context("sam")?;
    assert_eq!(sam["vcf"].as_str().unwrap(), v3);
    assert_eq!(sam["kind"], "individual");
    Ok(())
}

#[test]
fn a_recurring_event_in_berlin_yields_the_right_instances() -> Result<()> {
    let cyrus = Cyrus::start()?;
    let cal = cyrus.default_calendar("alice");
    let ics = include_str!("../../actors/tests/fixtures/ical/berlin-weekly.ics");
    cyrus.put_event("alice", &cal, "standup", ics)?;
    let agent = cyrus_agent(&cyrus, false)?;
    let all = agent.call_until(
        "calendar.items",
        json!({"account": "alice", "calendar": cal}),
        Duration::from_secs(20),
        len_is(1),
    )?;
    assert_eq!(all[0]["recurring"], true, "{all}");
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
    // As with Radicale (dav_sync.rs): 03-09 excluded, 03-16 moved by an override, DST on 03-29.
    assert_eq!(
        starts,
        vec![
            "2026-03-16T11:30:00+01:00",
            "2026-03-23T09:00:00+01:00",
            "2026-03-30T09:00:00+02:00",
        ]
    );
    assert_eq!(got[0]["overridden"], true);
    Ok(())
}

#[test]
fn the_mass_deletion_guard_holds_against_cyrus() -> Result<()> {
    let cyrus = Cyrus::start()?;
    let cal = cyrus.create_calendar("alice", "work", "Work")?;
    for i in 0..12 {
        let uid = format!("ev{i:04}");
        cyrus.put_event("alice", &cal, &uid, &event(&uid, "Keep me", "20260105T100000Z"))?;
    }
    let agent = cyrus_agent(&cyrus, false)?;
    agent.call_until(
        "calendar.items",
        json!({"account": "alice", "calendar": cal}),
        Duration::from_secs(20),
        len_is(12),
    )?;
    let mut watch = agent.watch(&["dav.held"])?;
    thread::sleep(Duration::from_millis(300));
    for i in 0..10 {
        cyrus.delete("alice", &format!("{cal}ev{i:04}.ics"))?;
    }
    agent.cli_ok(&["sync", "alice"])?;
    let held = watch.wait_topic("dav.held", Duration::from_secs(20))?;
    let held = held.get("params").cloned().unwrap_or(held);
    assert_eq!(held["removals"], 10, "{held}");
    let items = agent.call("calendar.items", json!({"account": "alice", "calendar": cal}))?;
    assert_eq!(
        items.as_array().map(Vec::len),
        Some(12),
        "the mirror keeps every item"
    );
    Ok(())
}

#[test]
fn the_account_goes_offline_and_back_with_cyrus() -> Result<()> {
    let mut cyrus = Cyrus::start()?;
    let cal = cyrus.default_calendar("alice");
    cyrus.put_event("alice", &cal, "one", &event("one", "One", "20260105T100000Z"))?;
    let agent = cyrus_agent(&cyrus, true)?;
    agent.call_until(
        "calendar.items",
        json!({"account": "alice", "calendar": cal}),
        Duration::from_secs(20),
        len_is(1),
    )?;
    cyrus.stop();
    agent.cli_ok(&["sync", "alice"])?;
    agent.wait_for_state("alice", "offline", Duration::from_secs(20))?;
    cyrus.start_again()?;
    cyrus.put_event("alice", &cal, "two", &event("two", "Two", "20260106T100000Z"))?;
    agent.cli_ok(&["sync", "alice"])?;
    agent.wait_for_state("alice", "online", Duration::from_secs(30))?;
    agent.call_until(
        "calendar.items",
        json!({"account": "alice", "calendar": cal}),
        Duration::from_secs(20),
        len_is(2),
    )?;
    Ok(())
}

#[test]
fn an_unchanged_account_costs_one_propfind_per_home_per_poll() -> Result<()> {
    let cyrus = Cyrus::start()?;
    let cal = cyrus.default_calendar("alice");
    cyrus.put_event("alice", &cal, "one", &event("one", "One", "20260105T100000Z"))?;
    let settings = AgentSettings {
        dav_poll_interval: "1s".into(),
        ..AgentSettings::default()
    };
    let mut account = AccountSpec::for_user("alice");
    account.caldav = Some(cyrus.dav_url());
    account.carddav = Some(cyrus.dav_url());
    let agent = Agent::start(&render_config(&settings, &[account]))?;
    agent.wait_for_state("alice", "online", Duration::from_secs(20))?;
    agent.call_until(
        "calendar.items",
        json!({"account": "alice", "calendar": cal}),
        Duration::from_secs(20),
        len_is(1),
    )?;
    // The second round takes the token (a listing from an empty token).
    thread::sleep(Duration::from_millis(3000));
    let before = count_by_request(&cyrus.agent_requests("alice")?);
    thread::sleep(Duration::from_secs(5));
    let after = count_by_request(&cyrus.agent_requests("alice")?);
    let mut new: Vec<(String, usize)> = after
        .iter()
        .map(|(r, n)| (r.clone(), n - before.get(r).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect();
    new.sort();
    ensure!(!new.is_empty(), "no polls seen");
    let homes = [cyrus.calendar_home("alice"), cyrus.addressbook_home("alice")];
    for (request, _) in &new {
        assert!(
            homes.iter().any(|h| *request == format!("PROPFIND {h}")),
            "an idle poll is one PROPFIND of each home: {new:?}"
        );
    }
    let total: usize = new.iter().map(|(_, n)| n).sum();
    assert!(total <= 14, "{total} requests in 5 s: {new:?}");
    println!("idle against Cyrus: {total} requests in 5 s for 2 services polling every 1 s");
    Ok(())
}

fn count_by_request(requests: &[String]) -> std::collections::HashMap<String, usize> {
    let mut counts = std::collections::HashMap::new();
    for r in requests {
        *counts.entry(r.clone()).or_insert(0) += 1;
    }
    counts
}
