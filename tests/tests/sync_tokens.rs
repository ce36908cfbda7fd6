//! End-to-end test of sync tokens that lie (issue 21): a scripted front before a real Radicale
//! leaves members out of sync-collection answers, as Zimbra does; every `verify_every` polls the
//! agent compares the token's view with an etag listing, notices, and syncs that collection by
//! listings from then on, saying so in its log, in an event and in the report.
//!
//! ```text
//!   Radicale ◀── LyingDav (cuts "lost-*" from sync-collection) ◀── opconnect run
//! ```

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use opconnect_tests::config::render_config;
use opconnect_tests::lyingdav::LyingDav;
use opconnect_tests::{AccountSpec, Agent, AgentSettings, DavServer, Radicale};
use serde_json::{Value, json};

fn event(uid: &str, summary: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//opconnect tests//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n\
         DTSTAMP:20260101T000000Z\r\nDTSTART:20270105T100000Z\r\nDURATION:PT1H\r\nSUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
}

fn summaries(items: &Value) -> Vec<String> {
    let mut out: Vec<String> = items
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| i["summary"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

#[test]
fn a_token_that_misses_changes_is_caught_and_listings_take_over() -> Result<()> {
    let radicale = Radicale::start()?;
    let work = radicale.create_calendar("alice", "work", "Work")?;
    radicale.put_event("alice", &work, "a", &event("a", "A"))?;
    let front = LyingDav::start(radicale.port(), "lost-")?;
    let settings = AgentSettings {
        dav_poll_interval: "1s".into(),
        ..AgentSettings::default()
    };
    let mut account = AccountSpec::for_user("alice");
    account.caldav = Some(front.url());
    let mut config = render_config(&settings, &[account]);
    config.push_str("\n[account.sync]\nverify_every = 6\n");
    let agent = Agent::start(&config)?;
    agent.wait_for_state("alice", "online", Duration::from_secs(20))?;
    let items = |v: &Value| summaries(v);
    agent.call_until(
        "calendar.items",
        json!({"account": "alice", "calendar": work}),
        Duration::from_secs(20),
        |v| items(v) == ["A"],
    )?;
    // The first sync is one query; the round after it takes the token (a listing from an empty
    // token, which the front leaves whole). Only then can a delta lie.
    agent
        .wait_for_log("change marker chosen", Duration::from_secs(20))
        .context("the token was never taken")?;
    let mut events = agent.watch(&["dav.token_untrusted"])?;

    // A change the token reports, and one it leaves out.
    radicale.put_event("alice", &work, "b", &event("b", "B"))?;
    radicale.put_event("alice", &work, "lost-1", &event("lost-1", "Lost 1"))?;
    let began = Instant::now();
    while front.dropped() == 0 {
        ensure!(
            began.elapsed() < Duration::from_secs(20),
            "the front never hid a member"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let seen = agent.call_until(
        "calendar.items",
        json!({"account": "alice", "calendar": work}),
        Duration::from_secs(20),
        |v| items(v).contains(&"B".to_string()),
    )?;
    assert!(
        !items(&seen).contains(&"Lost 1".to_string()),
        "the token hid lost-1, so the poll right after cannot have it: {seen}"
    );

    // Within verify_every polls the etag listing shows it.
    let caught = events.wait_topic("dav.token_untrusted", Duration::from_secs(30))?;
    println!("caught after {:?}: {caught}", began.elapsed());
    let caught = caught.get("params").cloned().unwrap_or(caught);
    assert_eq!(caught["collection"], work, "{caught}");
    let got = agent.call_until(
        "calendar.items",
        json!({"account": "alice", "calendar": work}),
        Duration::from_secs(10),
        |v| items(v).contains(&"Lost 1".to_string()),
    )?;
    assert_eq!(items(&got), ["A", "B", "Lost 1"]);
    let log = agent.log();
    assert!(
        log.contains("left out changes an etag listing shows"),
        "the log says so"
    );

    // From now on the collection is synced by listings: a hidden change still arrives soon.
    let hidden_before = front.dropped();
    radicale.put_event("alice", &work, "lost-2", &event("lost-2", "Lost 2"))?;
    agent.call_until(
        "calendar.items",
        json!({"account": "alice", "calendar": work}),
        Duration::from_secs(5),
        |v| items(v).contains(&"Lost 2".to_string()),
    )?;
    assert_eq!(
        front.dropped(),
        hidden_before,
        "no sync-collection asked any more"
    );

    // The status report says so.
    let report = agent.call("report", json!({"account": "alice"}))?;
    let untrusted = report["sync"]["untrusted_tokens"]
        .as_array()
        .context("report sync")?;
    assert_eq!(untrusted.len(), 1, "{report}");
    assert_eq!(untrusted[0]["collection"], work);
    Ok(())
}

#[test]
fn a_truthful_token_stays_trusted() -> Result<()> {
    let radicale = Radicale::start()?;
    let work = radicale.create_calendar("alice", "work", "Work")?;
    let settings = AgentSettings {
        dav_poll_interval: "1s".into(),
        ..AgentSettings::default()
    };
    let mut config = render_config(&settings, &[AccountSpec::for_user("alice").dav_from(&radicale)]);
    config.push_str("\n[account.sync]\nverify_every = 2\n");
    let agent = Agent::start(&config)?;
    agent.wait_for_state("alice", "online", Duration::from_secs(20))?;
    for i in 0..4 {
        radicale.put_event(
            "alice",
            &work,
            &format!("e{i}"),
            &event(&format!("e{i}"), &format!("E{i}")),
        )?;
        agent.call_until(
            "calendar.items",
            json!({"account": "alice", "calendar": work}),
            Duration::from_secs(10),
            |v| v.as_array().is_some_and(|a| a.len() == i + 1),
        )?;
        std::thread::sleep(Duration::from_millis(1500));
    }
    assert!(!agent.log().contains("left out changes"), "no false alarm");
    let report = agent.call("report", json!({"account": "alice"}))?;
    assert_eq!(report["sync"]["untrusted_tokens"], json!([]), "{report}");
    Ok(())
}
