//! End-to-end tests of the change marker each collection is polled by and of the first sync in
//! one query (issue 22, README "Change markers"), against a private Radicale and Cyrus.
//!
//! ```text
//!   Radicale / Cyrus ◀── opconnect run (DAV pollers, rounds started by `sync --wait` only)
//!      └─ their request logs: what each round asked (method and path)
//! ```
//! First sync: the home listing and one query, no sync-collection before `synced`; the next
//! round lists from an empty token and catches what changed after the query. On Radicale a
//! no-change poll asks only the stamp (getlastmodified, a PROPFIND of the home); a change in
//! the same second as the previous poll is still found.

use std::fs;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};
use opconnect_tests::DavServer;
use opconnect_tests::config::render_config;
use opconnect_tests::{AccountSpec, Agent, AgentSettings, Cyrus, Radicale};
use serde_json::{Value, json};

fn event(uid: &str, summary: &str, start: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//opconnect tests//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n\
         DTSTAMP:20260101T000000Z\r\nDTSTART:{start}\r\nDURATION:PT1H\r\nSUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
}

/// An agent whose rounds start only on `sync` (and once at start); no token checks.
fn agent_for(account: AccountSpec) -> Result<Agent> {
    let settings = AgentSettings {
        dav_poll_interval: "1h".into(),
        ..AgentSettings::default()
    };
    let mut config = render_config(&settings, &[account]);
    config.push_str("\n[account.sync]\nverify_every = 0\n");
    let agent = Agent::start(&config)?;
    agent.wait_for_state("alice", "online", Duration::from_secs(30))?;
    Ok(agent)
}

/// Items show before their round ends (they are written in batches): waits for the round's
/// last step, so that a `sync` asked next starts a round of its own.
fn first_round_done(agent: &Agent, collection: &str) -> Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while marker_of(agent, collection).is_none() {
        ensure!(std::time::Instant::now() < deadline, "{collection} never synced");
        thread::sleep(Duration::from_millis(50));
    }
    thread::sleep(Duration::from_millis(300));
    Ok(())
}

fn sync_wait(agent: &Agent) -> Result<()> {
    agent.cli_ok(&["sync", "alice", "--wait"])?;
    Ok(())
}

fn items(agent: &Agent, cal: &str) -> Result<Vec<Value>> {
    let v = agent.call("calendar.items", json!({"account": "alice", "calendar": cal}))?;
    Ok(v.as_array().cloned().unwrap_or_default())
}

fn hrefs(items: &[Value]) -> Vec<String> {
    let mut h: Vec<String> = items
        .iter()
        .filter_map(|i| i["href"].as_str().map(str::to_owned))
        .collect();
    h.sort();
    h
}

/// Radicale's requests from the agent, as `METHOD path`, from log line `from` on.
fn radicale_requests(radicale: &Radicale, from: usize) -> Vec<String> {
    radicale
        .log()
        .lines()
        .skip(from)
        .filter(|l| l.contains(" request for '") && l.contains("using 'opconnect/"))
        .filter_map(|l| {
            let rest = &l[l.find("] [INFO] ").map(|i| i + 9)?..];
            let method = rest.split_whitespace().next()?;
            let path = rest.split('\'').nth(1)?;
            Some(format!("{method} {path}"))
        })
        .collect()
}

fn log_mark(radicale: &Radicale) -> usize {
    radicale.log().lines().count()
}

/// The marker the agent's log last named for `collection`.
fn marker_of(agent: &Agent, collection: &str) -> Option<String> {
    agent
        .log()
        .lines()
        .rev()
        .find(|l| l.contains("collection synced") && l.contains(collection))
        .and_then(|l| l.split("marker=").nth(1))
        .and_then(|m| m.split_whitespace().next())
        .map(str::to_owned)
}

fn seed(radicale: &Radicale, slug: &str, n: usize) -> Result<()> {
    let dir = radicale
        .dir()
        .join("collections/collection-root/alice")
        .join(slug);
    for i in 0..n {
        let body = event(&format!("ev{i:04}"), &format!("Event {i}"), "20260301T100000Z");
        fs::write(dir.join(format!("ev{i:04}.ics")), body)?;
    }
    Ok(())
}

#[test]
fn radicale_first_sync_is_one_query_then_polls_ask_only_the_stamp() -> Result<()> {
    let radicale = Radicale::start()?;
    let cal = radicale.create_calendar("alice", "work", "Work")?;
    seed(&radicale, "work", 200)?;
    let agent = agent_for(AccountSpec::for_user("alice").dav_from(&radicale))?;
    agent.call_until(
        "calendar.items",
        json!({"account": "alice", "calendar": cal}),
        Duration::from_secs(60),
        |v| v.as_array().is_some_and(|a| a.len() == 200),
    )?;
    first_round_done(&agent, &cal)?;
    // Before `synced` (no other round runs: the interval is an hour): one REPORT, the query.
    let first = radicale_requests(&radicale, 0);
    let reports: Vec<&String> = first.iter().filter(|r| r.starts_with("REPORT")).collect();
    assert_eq!(reports, [&format!("REPORT {cal}")], "{first:?}");
    assert_eq!(marker_of(&agent, &cal).as_deref(), Some("unknown"));

    // A write and a delete right after the first sync: the next round lists from an empty
    // token and compares with the mirror.
    radicale.put_event(
        "alice",
        &cal,
        "ev0003",
        &event("ev0003", "Moved", "20260301T150000Z"),
    )?;
    radicale.delete("alice", &format!("{cal}ev0007.ics"))?;
    sync_wait(&agent)?;
    let got = items(&agent, &cal)?;
    assert_eq!(hrefs(&got), {
        let mut m = radicale.members("alice", &cal)?;
        m.sort();
        m
    });
    assert!(got.iter().any(|i| i["summary"] == "Moved"));
    assert_eq!(marker_of(&agent, &cal).as_deref(), Some("stamp"));
    let log = agent.log();
    assert!(
        log.lines()
            .any(|l| l.contains("change marker chosen") && l.contains("marker=stamp")),
        "{log}"
    );

    // Let the stamp settle (two seconds past its own), then no-change polls ask only the stamp.
    thread::sleep(Duration::from_millis(2_200));
    sync_wait(&agent)?;
    let mark = log_mark(&radicale);
    for _ in 0..3 {
        sync_wait(&agent)?;
    }
    let polls = radicale_requests(&radicale, mark);
    ensure!(!polls.is_empty(), "no polls seen");
    for r in &polls {
        assert_eq!(
            r, "PROPFIND /alice/",
            "a no-change poll asks only the home: {polls:?}"
        );
    }

    // A delete moves the stamp (the folder changes) and is found.
    radicale.delete("alice", &format!("{cal}ev0011.ics"))?;
    let mark = log_mark(&radicale);
    sync_wait(&agent)?;
    let got = items(&agent, &cal)?;
    assert_eq!(got.len(), 198);
    assert!(!got.iter().any(|i| i["uid"] == "ev0011"));
    let after = radicale_requests(&radicale, mark);
    assert!(after.iter().any(|r| r == &format!("REPORT {cal}")), "{after:?}");

    // The status report names the marker.
    let out = agent.cli_ok(&["report", "alice", "--format", "json"])?;
    let report: Value = serde_json::from_str(&out).context("report JSON")?;
    let markers = report["sync"]["markers"].as_array().context("sync.markers")?;
    assert!(
        markers
            .iter()
            .any(|m| m["collection"] == cal.as_str() && m["marker"] == "stamp"),
        "{markers:?}"
    );
    Ok(())
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
}

fn mtime_secs(path: &std::path::Path) -> Result<u64> {
    Ok(fs::metadata(path)?
        .modified()?
        .duration_since(UNIX_EPOCH)?
        .as_secs())
}

/// The stamp has one-second resolution: a poll in the same second as a change keeps it only
/// once two seconds have passed, so a second change in that second is still found.
#[test]
fn a_change_in_the_same_second_as_the_poll_is_found() -> Result<()> {
    let radicale = Radicale::start()?;
    let cal = radicale.create_calendar("alice", "work", "Work")?;
    seed(&radicale, "work", 20)?;
    let dir = radicale.dir().join("collections/collection-root/alice/work");
    let agent = agent_for(AccountSpec::for_user("alice").dav_from(&radicale))?;
    agent.call_until(
        "calendar.items",
        json!({"account": "alice", "calendar": cal}),
        Duration::from_secs(60),
        |v| v.as_array().is_some_and(|a| a.len() == 20),
    )?;
    first_round_done(&agent, &cal)?;
    sync_wait(&agent)?;
    for attempt in 0..8 {
        thread::sleep(Duration::from_millis(2_200));
        sync_wait(&agent)?;
        // Start just after a second begins: the write, the poll and the second write all
        // within it.
        let now = now_secs();
        thread::sleep(Duration::from_secs_f64(1.02 - now.fract()));
        let (a, b) = (format!("a{attempt}"), format!("b{attempt}"));
        radicale.put_event("alice", &cal, &a, &event(&a, "First", "20260302T090000Z"))?;
        sync_wait(&agent)?;
        radicale.put_event("alice", &cal, &b, &event(&b, "Second", "20260302T100000Z"))?;
        let (ta, tb) = (
            mtime_secs(&dir.join(format!("{a}.ics")))?,
            mtime_secs(&dir.join(format!("{b}.ics")))?,
        );
        let folder = mtime_secs(&dir)?;
        let mirrored = items(&agent, &cal)?;
        ensure!(mirrored.iter().any(|i| i["uid"] == a.as_str()), "{a} not synced");
        if ta != tb || folder != ta || mirrored.iter().any(|i| i["uid"] == b.as_str()) {
            println!("attempt {attempt}: the second write fell in another second; again");
            sync_wait(&agent)?;
            continue;
        }
        // The stamp is the same as at the poll after the first write; only the freshness rule
        // makes the next rounds look.
        thread::sleep(Duration::from_millis(2_200));
        sync_wait(&agent)?;
        let got = items(&agent, &cal)?;
        assert!(
            got.iter().any(|i| i["uid"] == b.as_str()),
            "the write in the same second as the poll was missed"
        );
        println!("found on attempt {attempt}");
        return Ok(());
    }
    bail!("never managed two writes and a poll within one second")
}

#[test]
fn cyrus_first_sync_is_one_query_and_the_next_round_catches_changes() -> Result<()> {
    let cyrus = Cyrus::start()?;
    let cal = cyrus.create_calendar("alice", "work", "Work")?;
    for i in 0..60 {
        let uid = format!("ev{i:04}");
        cyrus.put_event(
            "alice",
            &cal,
            &uid,
            &event(&uid, &format!("Event {i}"), "20260301T100000Z"),
        )?;
    }
    let mut account = AccountSpec::for_user("alice");
    account.caldav = Some(cyrus.dav_url());
    let agent = agent_for(account)?;
    agent.call_until(
        "calendar.items",
        json!({"account": "alice", "calendar": cal}),
        Duration::from_secs(60),
        |v| v.as_array().is_some_and(|a| a.len() == 60),
    )?;
    first_round_done(&agent, "/work/")?;
    let on_work = |reqs: &[String], method: &str| {
        reqs.iter()
            .filter(|r| r.starts_with(method) && r.ends_with("/work/"))
            .count()
    };
    let first = cyrus.agent_requests("alice")?;
    assert_eq!(on_work(&first, "REPORT"), 1, "the query alone: {first:?}");
    assert_eq!(marker_of(&agent, "/work/").as_deref(), Some("unknown"));

    cyrus.put_event(
        "alice",
        &cal,
        "ev0003",
        &event("ev0003", "Moved", "20260301T150000Z"),
    )?;
    cyrus.delete("alice", &format!("{cal}ev0007.ics"))?;
    sync_wait(&agent)?;
    let got = items(&agent, &cal)?;
    let mut server = cyrus.members("alice", &cal)?;
    server.sort();
    assert_eq!(hrefs(&got), server);
    assert!(got.iter().any(|i| i["summary"] == "Moved"));
    assert_eq!(marker_of(&agent, "/work/").as_deref(), Some("sync-token"));
    let log = agent.log();
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains("collection synced") && l.contains("/work/"))
        .context("no sync line")?;
    assert!(line.contains("fetched=1"), "only the changed event: {line}");

    // Cyrus stores its token: a no-change poll finds the calendar unchanged by the token of the
    // home listing and does not touch it (no round of the collection, so no "collection synced"
    // line). Cyrus's request log is written per connection process, late and out of order, so
    // the agent's own log is the witness here.
    let rounds = |agent: &Agent| {
        agent
            .log()
            .lines()
            .filter(|l| l.contains("collection synced") && l.contains("/work/"))
            .count()
    };
    let before = rounds(&agent);
    sync_wait(&agent)?;
    sync_wait(&agent)?;
    assert_eq!(rounds(&agent), before, "{}", agent.log());
    // And a change is still seen through the token.
    cyrus.delete("alice", &format!("{cal}ev0011.ics"))?;
    sync_wait(&agent)?;
    assert_eq!(items(&agent, &cal)?.len(), 58);
    Ok(())
}
