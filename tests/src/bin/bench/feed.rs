//! Benchmark 7 (issue 16, issue 22): reads of a mirrored calendar as it grows — the change feed
//! after ten server-side changes (`items.changes` from the cursor held before them) and a paged
//! `calendar.items` — plus, at each size, `--runs` first syncs beside their floor: one REPORT
//! carrying every event, timed alone against the same server in the same run (`feed_first`).
//!
//! ```text
//!   for n in sizes:  seed n events (files) ─▶ Radicale ─┬─ floor: calendar-query REPORT alone
//!                                                       │         sync-collection + calendar-data
//!                    opconnect (caldav only) first sync ┘─▶ cursor C (last calendar.changed)
//!                    (floor + first sync) × runs; the last run's agent goes on
//!                    10 PUTs by another client ─▶ `sync` ─▶ no-change polls × 5 (Radicale's time
//!                                                          from its log) ─▶ items.changes × reps
//!                                                          calendar.items {limit: 200} × reps
//! ```
//! A read whose cost follows the changes, not the collection, gives the same milliseconds at
//! every size: the section reports each size's median and the largest size's over the smallest.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use serde_json::json;

use opconnect_tests::http::{HttpRequest, HttpResponse};
use opconnect_tests::{DavServer, Radicale, password_of};

use crate::driver::Driver;
use crate::link::answer_seconds;
use crate::results::Results;
use crate::{Config, MB, seed};

pub const SECTION: &str = "7. reads as the calendar grows";

/// Server-side changes made between the cursor and the read.
const CHANGES: usize = 10;
/// Timed repetitions of each read at each size.
const REPS: usize = 15;
/// Page size of the paged `calendar.items` read (the method's default).
const PAGE: u64 = 200;

pub fn run(cfg: &Config, results: &mut Results) -> Result<()> {
    let mut per_size: Vec<(usize, f64, f64)> = Vec::new();
    for &n in &cfg.feed_sizes {
        let (feed, page) = one_size(n, cfg.runs, results).with_context(|| format!("{n} events"))?;
        per_size.push((n, feed, page));
    }
    if let (Some(small), Some(large)) = (per_size.first(), per_size.last())
        && per_size.len() > 1
    {
        results.record(
            SECTION,
            &format!("items.changes: {} events ÷ {} events", large.0, small.0),
            "×",
            large.1 / small.1,
        );
        results.record(
            SECTION,
            &format!("calendar.items page: {} events ÷ {} events", large.0, small.0),
            "×",
            large.2 / small.2,
        );
        results.target(
            "change feed flat as the calendar grows (largest ÷ smallest < 2)",
            SECTION,
            &format!("items.changes: {} events ÷ {} events", large.0, small.0),
            |m| m < 2.0,
        );
        results.target(
            "paged read flat as the calendar grows (largest ÷ smallest < 2)",
            SECTION,
            &format!("calendar.items page: {} events ÷ {} events", large.0, small.0),
            |m| m < 2.0,
        );
    }
    Ok(())
}

/// One calendar of `n` events; returns the medians (ms) of the change-feed and page reads.
fn one_size(n: usize, runs: usize, results: &mut Results) -> Result<(f64, f64)> {
    let radicale = Radicale::start()?;
    let began = Instant::now();
    let (calendar, _, bytes) = seed::seed_dav(&radicale, "alice", n, 0)?;
    eprintln!(
        "==> reads: {n} events ({:.1} MB) seeded in {:.1?}",
        bytes as f64 / MB,
        began.elapsed()
    );
    let label = |what: &str| format!("{what}, {n} events");

    let first = crate::feed_first::first_syncs(&radicale, &calendar, n, runs, results)?;
    let (mut d, cursor) = (first.driver, first.cursor);
    let services = [("alice", "caldav")];

    // Ten changes by another client, spread over the calendar, then one poll.
    for k in 0..CHANGES {
        let (uid, ics) = seed::event(k * n / CHANGES);
        let ics = ics.replacen("SUMMARY:", "SUMMARY:changed ", 1);
        radicale
            .http()
            .put_event("alice", &calendar, &uid, &ics)
            .with_context(|| format!("changing {uid}"))?;
    }
    d.drain();
    d.seen.clear();
    d.call("sync", json!({"account": "alice"}))?;
    d.wait_synced(&services, Duration::from_secs(600))?;
    no_change_polls(&mut d, &radicale, &calendar, n, results)?;

    let mut feed = Vec::new();
    for _ in 0..REPS {
        let t = Instant::now();
        let a = d.call(
            "items.changes",
            json!({"account": "alice", "collection": calendar, "cursor": cursor, "limit": PAGE}),
        )?;
        feed.push(t.elapsed().as_secs_f64() * 1000.0);
        let items = a["items"].as_array().map_or(0, Vec::len);
        ensure!(
            items == CHANGES && a["more"] == false && a["reset"] != true,
            "items.changes gave {items} items (more {}, reset {}), expected {CHANGES}",
            a["more"],
            a["reset"]
        );
    }
    let mut page = Vec::new();
    let mut next_page = Vec::new();
    for _ in 0..REPS {
        let t = Instant::now();
        let a = d.call(
            "calendar.items",
            json!({"account": "alice", "calendar": calendar, "limit": PAGE}),
        )?;
        page.push(t.elapsed().as_secs_f64() * 1000.0);
        ensure!(a["more"] == true, "calendar.items: one page held everything");
        let t = Instant::now();
        let b = d.call(
            "calendar.items",
            json!({"account": "alice", "calendar": calendar, "limit": PAGE, "cursor": a["cursor"]}),
        )?;
        next_page.push(t.elapsed().as_secs_f64() * 1000.0);
        ensure!(
            b["items"].as_array().is_some_and(|i| !i.is_empty()),
            "second page empty"
        );
    }
    for (what, samples) in [
        ("items.changes after 10 changes", &feed),
        ("calendar.items, first page of 200", &page),
        ("calendar.items, next page (cursor)", &next_page),
    ] {
        for s in samples {
            results.record(SECTION, &label(what), "ms", *s);
        }
    }
    let (f, p) = (median(&feed), median(&page));
    eprintln!("==> reads: {n} events: items.changes {f:.2} ms, page {p:.2} ms");
    Ok((f, p))
}

/// The no-change poll at this size (issue 22): once the marker is known and the stamp settled,
/// each `sync` until `synced`, with Radicale's own time for the poll's requests (the durations
/// it logs) and their number; beside it, the home listing the poll sent before stamps (the
/// sync-token of every collection) and the stamp listing, each timed alone.
fn no_change_polls(
    d: &mut Driver,
    radicale: &Radicale,
    calendar: &str,
    n: usize,
    results: &mut Results,
) -> Result<()> {
    let label = |what: &str| format!("{what}, {n} events");
    let services = [("alice", "caldav")];
    let home = calendar
        .trim_end_matches('/')
        .rsplit_once('/')
        .map(|(h, _)| format!("{h}/"))
        .context("calendar href")?;
    for (name, body) in [
        (
            "home listing with sync-token alone (the poll before stamps)",
            LISTING_TOKEN,
        ),
        (
            "home listing with getlastmodified alone (the stamp poll)",
            LISTING_STAMP,
        ),
    ] {
        let took = time_listing(radicale, &home, body).context(name)?;
        results.record(SECTION, &label(name), "ms", took.as_secs_f64() * 1000.0);
    }
    // The round after the changes took the token; this one keeps a settled stamp (the last
    // change is more than two seconds old).
    std::thread::sleep(Duration::from_millis(2_200));
    d.drain();
    d.call("sync", json!({"account": "alice"}))?;
    d.wait_synced(&services, Duration::from_secs(600))?;
    for _ in 0..POLLS {
        let mark = radicale.log().lines().count();
        d.drain();
        let t = Instant::now();
        d.call("sync", json!({"account": "alice"}))?;
        d.wait_synced(&services, Duration::from_secs(600))?;
        let wall = t.elapsed();
        std::thread::sleep(Duration::from_millis(100));
        let log = radicale.log();
        let lines: Vec<&str> = log.lines().skip(mark).collect();
        let requests: Vec<String> = lines
            .iter()
            .filter(|l| l.contains(" request for '"))
            .filter_map(|l| {
                let rest = &l[l.find("] [INFO] ")? + 9..];
                Some(rest.split('\'').take(2).collect::<Vec<_>>().join("'") + "'")
            })
            .collect();
        let server: f64 = lines.iter().filter_map(|l| answer_seconds(l)).sum();
        ensure!(
            requests.iter().all(|r| r.starts_with("PROPFIND")),
            "a no-change poll sent more than listings: {requests:?}"
        );
        results.record(
            SECTION,
            &label("no-change poll (sync until synced)"),
            "ms",
            wall.as_secs_f64() * 1000.0,
        );
        results.record(SECTION, &label("  Radicale's time for it"), "ms", server * 1000.0);
        results.record(SECTION, &label("  its requests"), "", requests.len() as f64);
    }
    Ok(())
}

/// A home listing (PROPFIND Depth 1 with `body`) sent straight to Radicale, twice: the
/// second's time.
pub fn time_listing(radicale: &Radicale, home: &str, body: &str) -> Result<Duration> {
    let (took, r) = twice(radicale, HttpRequest::new("PROPFIND", home).body(body.as_bytes()))?;
    ensure!(r.status == 207, "PROPFIND {home}: HTTP {}", r.status);
    Ok(took)
}

/// `request` (Depth 1, XML, as alice) sent straight to Radicale twice, so that the second
/// sees the server as warm as the agent will: its time and its answer.
pub fn twice(radicale: &Radicale, request: HttpRequest) -> Result<(Duration, HttpResponse)> {
    let request = request
        .auth("alice", password_of("alice"))
        .header("Depth", "1")
        .header("Content-Type", "application/xml; charset=utf-8");
    request.send_within(radicale.port(), Duration::from_secs(300))?;
    let t = Instant::now();
    let answer = request.send_within(radicale.port(), Duration::from_secs(300))?;
    Ok((t.elapsed(), answer))
}

/// No-change polls timed at each size.
const POLLS: usize = 5;

/// The home listing with every collection's sync-token (RFC 6578 §4), as polls were before.
pub const LISTING_TOKEN: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:"><D:prop><D:resourcetype/><D:sync-token/></D:prop></D:propfind>"#;

/// The home listing with every collection's getlastmodified (RFC 4918 §15.7), the stamp.
const LISTING_STAMP: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:"><D:prop><D:resourcetype/><D:getlastmodified/></D:prop></D:propfind>"#;

fn median(samples: &[f64]) -> f64 {
    crate::results::summarize(samples).median
}
