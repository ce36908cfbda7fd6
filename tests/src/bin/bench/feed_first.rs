//! Benchmark 7's first sync beside its floor (issue 22), `--runs` times at each size: each run
//! times the floor (one REPORT carrying every event, alone against the same server) and then
//! a fresh agent's first sync, so each ratio compares two figures taken a few seconds apart.
//!
//! ```text
//!   run r:  floor: calendar-query REPORT (plain, then asking gzip as the agent does) ×2 each
//!           fresh agent (empty mirror) ─▶ `synced` ─┬─ whole first sync (agent start → synced)
//!                                                   └─ the collection's pull (its log: query
//!                                                      sent → last batch committed)
//! ```
//! Two figures, because the goal is about the collection: the whole first sync also holds the
//! agent's start (process, mirror, login, discovery), a fixed cost that dominates small sizes.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use serde_json::Value;

use opconnect_tests::config::render_config;
use opconnect_tests::http::HttpRequest;
use opconnect_tests::{AccountSpec, Radicale};

use crate::big::CALENDAR_QUERY;
use crate::driver::{Driver, topic};
use crate::feed::SECTION;
use crate::floors::SYNC_WITH_DATA;
use crate::link::answer_seconds;
use crate::production_settings;
use crate::results::Results;

/// What the last run left: its agent (still running, with a full mirror) and the feed cursor
/// of its last `calendar.changed`.
pub struct Synced {
    pub driver: Driver,
    pub cursor: String,
}

/// `runs` first syncs of `calendar` (`n` events) on `radicale`, each after its floor.
pub fn first_syncs(
    radicale: &Radicale,
    calendar: &str,
    n: usize,
    runs: usize,
    results: &mut Results,
) -> Result<Synced> {
    let label = |what: &str| format!("{what}, {n} events");
    let mut last = None;
    for run in 0..runs.max(1) {
        let floors = floors(radicale, calendar, n, run == 0, results)?;
        // The previous run's agent is stopped first: two agents would share the cores.
        drop(last.take());
        let synced = first_sync(radicale, calendar, n, results)
            .with_context(|| format!("first sync, run {}", run + 1))?;
        let (whole, pull) = synced.1;
        for (name, time) in [("first sync", whole), ("the collection's pull", pull)] {
            for (floor_name, floor) in [
                ("calendar-query alone", floors.0),
                ("the query asking gzip alone", floors.1),
            ] {
                results.record(
                    SECTION,
                    &label(&format!("{name} ÷ {floor_name}")),
                    "×",
                    time / floor,
                );
            }
        }
        last = Some(synced.0);
    }
    last.context("no run")
}

/// The floor, each request asked twice (the second is recorded, so both see the server as warm
/// as the agent will): `(plain, asking gzip)` in seconds. The agent asks for gzip (README
/// "Compressed answers"), which Radicale then compresses whole before sending: the same query
/// asking for it is timed too (its bytes not inflated). `with_sync`: the sync-collection asking
/// for the data too, for comparison (the first run only).
fn floors(
    radicale: &Radicale,
    calendar: &str,
    n: usize,
    with_sync: bool,
    results: &mut Results,
) -> Result<(f64, f64)> {
    let mut asked = vec![
        ("calendar-query REPORT", CALENDAR_QUERY, "identity"),
        (
            "calendar-query REPORT asking gzip (as the agent)",
            CALENDAR_QUERY,
            "gzip, deflate",
        ),
    ];
    if with_sync {
        asked.push((
            "sync-collection REPORT with calendar-data",
            SYNC_WITH_DATA,
            "identity",
        ));
    }
    let mut times = Vec::new();
    for (name, body, encoding) in asked {
        let request = HttpRequest::new("REPORT", calendar)
            .header("Accept-Encoding", encoding)
            .body(body.as_bytes());
        let (took, r) = crate::feed::twice(radicale, request)?;
        ensure!(r.status == 207, "{name}: HTTP {}", r.status);
        if encoding == "identity" {
            let got = r.text().matches("BEGIN:VEVENT").count();
            ensure!(got >= n, "{name} carried {got} events, expected {n}");
        } else {
            ensure!(
                r.header("Content-Encoding") == Some("gzip"),
                "{name}: not compressed"
            );
        }
        let seconds = took.as_secs_f64();
        results.record(SECTION, &format!("floor: {name}, {n} events"), "s", seconds);
        times.push(seconds);
    }
    Ok((times[0], times[1]))
}

/// A fresh agent's first sync of `calendar`, with its figures recorded; the agent and
/// `(whole first sync, the collection's pull)` in seconds.
fn first_sync(
    radicale: &Radicale,
    calendar: &str,
    n: usize,
    results: &mut Results,
) -> Result<(Synced, (f64, f64))> {
    let label = |what: &str| format!("{what}, {n} events");
    let mut account = AccountSpec::for_user("alice");
    account.caldav = Some(radicale.url());
    let mut settings = production_settings();
    settings.dav_poll_interval = "1h".into();
    let mark = radicale.log().lines().count();
    let mut d = Driver::launch(&render_config(&settings, &[account]))?;
    let services = [("alice", "caldav")];
    let done = d.wait_synced(&services, Duration::from_secs(1800))?;
    let whole = (done - d.started).as_secs_f64();
    results.record(SECTION, &label("opconnect first sync"), "s", whole);
    // The agent's own share (user + system CPU from its start to `synced`, read just after it):
    // Radicale builds its answer whole before sending it, so this work comes after its time.
    results.record(
        SECTION,
        &label("opconnect CPU to first sync"),
        "s",
        d.cpu_seconds()?,
    );
    let pull = pull_seconds(&d.agent.log(), calendar)?;
    results.record(
        SECTION,
        &label("  the collection's pull (query sent → last commit)"),
        "s",
        pull,
    );
    // Radicale's own time for the agent's query, from its log: what the first sync waits on.
    let log = radicale.log();
    let served: Vec<&str> = log
        .lines()
        .skip(mark)
        .filter(|l| l.contains(" request for '") || l.contains(" response status for '"))
        .collect();
    if std::env::var_os("BENCH_FEED_TRACE").is_some() {
        for l in &served {
            eprintln!("    {}", l.chars().take(200).collect::<String>());
        }
        for l in d.agent.log().lines().filter(|l| l.contains("first pull")) {
            eprintln!("    agent: {l}");
        }
    }
    let query = served
        .iter()
        .filter(|l| l.contains("REPORT response status for '"))
        .filter_map(|l| answer_seconds(l))
        .fold(0.0, f64::max);
    results.record(
        SECTION,
        &label("  Radicale's time for the agent's query"),
        "s",
        query,
    );
    results.record(
        SECTION,
        &label("load average (1 min) at the first sync"),
        "",
        crate::big::load_average(),
    );
    let changed: Vec<&Value> = d
        .seen
        .iter()
        .map(|(_, e)| e)
        .filter(|e| topic(e) == "calendar.changed" && e["calendar"] == calendar)
        .collect();
    let added: u64 = changed.iter().filter_map(|e| e["added"].as_u64()).sum();
    ensure!(
        added == n as u64,
        "opconnect mirrored {added} events, expected {n}"
    );
    let cursor = changed
        .last()
        .and_then(|e| e["cursor"].as_str())
        .context("no cursor in calendar.changed")?
        .to_string();
    let (rss, anon) = (d.status_kb("VmRSS")?, d.status_kb("RssAnon")?);
    let (_, hwm) = d.memory_kb()?;
    results.record(
        SECTION,
        &label("peak RSS during first sync (VmHWM)"),
        "MB",
        hwm as f64 / 1024.0,
    );
    results.record(SECTION, &label("RSS after first sync"), "MB", rss as f64 / 1024.0);
    results.record(SECTION, &label("  of which RssAnon"), "MB", anon as f64 / 1024.0);
    let synced = Synced { driver: d, cursor };
    Ok((synced, (whole, pull)))
}

/// The `total_s` of the agent's "first pull" line for `calendar` (children/dav.rs).
fn pull_seconds(log: &str, calendar: &str) -> Result<f64> {
    log.lines()
        .filter(|l| l.contains("first pull: the collection's query sent") && l.contains(calendar))
        .find_map(|l| {
            let rest = &l[l.find("total_s=")? + "total_s=".len()..];
            rest.split(|c: char| c.is_whitespace() || c == ',')
                .next()?
                .parse::<f64>()
                .ok()
        })
        .with_context(|| format!("the agent logged no streamed first pull of {calendar}"))
}
