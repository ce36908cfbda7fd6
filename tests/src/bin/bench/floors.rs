//! Benchmark 10 (issue 22): the first sync of one calendar on each DAV server of the harness,
//! beside the two requests that could carry the whole collection, each timed alone against the
//! same server, on the same events, in the same run.
//!
//! ```text
//!   for server in Radicale, Cyrus, DAViCal, Xandikos:
//!     seed n events ─▶ floor: calendar-query REPORT (RFC 4791 §7.8)           ┐ each twice,
//!                            sync-collection REPORT asking calendar-data        ┘ 2nd recorded
//!                     opconnect (caldav only): start ─▶ `online` ─▶ `synced`
//!                     (online ─▶ synced) ÷ the faster single request that carried everything
//! ```
//! A sync-collection that leaves the data out (Xandikos answers 404 for `calendar-data` there)
//! is recorded as carrying 0 events, and the query is then the only floor.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};

use opconnect_tests::config::render_config;
use opconnect_tests::http::HttpRequest;
use opconnect_tests::xandikos::Xandikos;
use opconnect_tests::{AccountSpec, Cyrus, DavServer, Davical, Radicale, password_of};

use crate::big::CALENDAR_QUERY;
use crate::driver::{Driver, topic};
use crate::results::Results;
use crate::{Config, production_settings, seed};

pub const SECTION: &str = "10. first sync on each server";

/// One server under test: its DAV URL, the calendar seeded, and the port to time requests on.
struct Target {
    name: &'static str,
    url: String,
    calendar: String,
    port: u16,
}

pub fn run(cfg: &Config, results: &mut Results) -> Result<()> {
    let n = cfg.floor_events;
    let events: Vec<(String, String)> = (0..n).map(seed::event).collect();

    let radicale = Radicale::start()?;
    let (calendar, _, _) = seed::seed_dav(&radicale, "alice", n, 0)?;
    measure(
        &Target {
            name: "Radicale",
            url: radicale.url(),
            calendar,
            port: radicale.port(),
        },
        n,
        results,
    )?;
    drop(radicale);

    let cyrus = Cyrus::start()?;
    let calendar = cyrus.create_calendar("alice", "bench", "Bench")?;
    put_all(&cyrus, &calendar, &events)?;
    measure(
        &Target {
            name: "Cyrus",
            url: cyrus.dav_url(),
            calendar,
            port: cyrus.http_port(),
        },
        n,
        results,
    )?;
    drop(cyrus);

    let davical = Davical::start()?;
    let calendar = davical.default_calendar("alice");
    put_all(&davical, &calendar, &events)?;
    measure(
        &Target {
            name: "DAViCal",
            url: davical.dav_url(),
            calendar,
            port: davical.http_port(),
        },
        n,
        results,
    )?;
    drop(davical);

    let xandikos = Xandikos::start()?;
    let calendar = xandikos.calendar();
    let files: Vec<(String, String)> = events
        .iter()
        .map(|(uid, ics)| (format!("{uid}.ics"), ics.clone()))
        .collect();
    xandikos.seed(&calendar, &files)?;
    measure(
        &Target {
            name: "Xandikos",
            url: xandikos.url(),
            calendar,
            port: xandikos.port(),
        },
        n,
        results,
    )?;
    Ok(())
}

/// Seeds by PUT, as a client would: these servers keep their own stores.
pub(crate) fn put_all(server: &impl DavServer, calendar: &str, events: &[(String, String)]) -> Result<()> {
    let began = Instant::now();
    for (uid, ics) in events {
        server
            .http()
            .put_event("alice", calendar, uid, ics)
            .with_context(|| format!("PUT {uid}"))?;
    }
    eprintln!("==> floors: {} PUTs in {:.1?}", events.len(), began.elapsed());
    Ok(())
}

fn measure(t: &Target, n: usize, results: &mut Results) -> Result<()> {
    let label = |what: &str| format!("{}, {n} events: {what}", t.name);
    let mut fastest = f64::INFINITY;
    for (name, body) in [
        ("calendar-query", CALENDAR_QUERY),
        ("sync-collection with data", SYNC_WITH_DATA),
    ] {
        let (mut took, mut carried) = (Duration::ZERO, 0);
        for _ in 0..2 {
            let began = Instant::now();
            let r = HttpRequest::new("REPORT", &t.calendar)
                .auth("alice", password_of("alice"))
                .header("Depth", "1")
                .header("Content-Type", "application/xml; charset=utf-8")
                .body(body.as_bytes())
                .send_within(t.port, Duration::from_secs(600))?;
            took = began.elapsed();
            ensure!(r.status == 207, "{}: {name}: HTTP {}", t.name, r.status);
            carried = r.text().matches("BEGIN:VEVENT").count();
        }
        results.record(SECTION, &label(&format!("{name} alone")), "s", took.as_secs_f64());
        results.record(
            SECTION,
            &label(&format!("{name}: events carried")),
            "",
            carried as f64,
        );
        if carried >= n {
            fastest = fastest.min(took.as_secs_f64());
        }
    }
    ensure!(
        fastest.is_finite(),
        "{}: no single request carried the {n} events",
        t.name
    );

    let mut account = AccountSpec::for_user("alice");
    account.caldav = Some(t.url.clone());
    let mut settings = production_settings();
    settings.dav_poll_interval = "1h".into();
    let mut d = Driver::launch(&render_config(&settings, &[account]))?;
    let done = d.wait_synced(&[("alice", "caldav")], Duration::from_secs(1800))?;
    let first = (done - d.started).as_secs_f64();
    results.record(SECTION, &label("opconnect first sync, from start"), "s", first);
    // From the account's `online` (logged in, the agent's own start-up behind it) to `synced`:
    // discovery of the homes, the listing and the data of the one calendar. A quick login can
    // come before the bench's subscription; the row is then left out, not guessed.
    let online = d
        .seen
        .iter()
        .find(|(_, e)| topic(e) == "state" && e["state"] == "online")
        .map(|(at, _)| *at);
    let synced = online.map(|at| (done - at).as_secs_f64());
    if let Some(synced) = synced {
        results.record(SECTION, &label("opconnect first sync, from online"), "s", synced);
        results.record(
            SECTION,
            &label("from online ÷ the faster single request"),
            "×",
            synced / fastest,
        );
    }
    results.record(
        SECTION,
        &label("from start ÷ the faster single request"),
        "×",
        first / fastest,
    );
    // The agent's own share: its CPU time from start to `synced` (start-up included).
    results.record(SECTION, &label("opconnect CPU to synced"), "s", d.cpu_seconds()?);
    let added: u64 = d
        .seen
        .iter()
        .map(|(_, e)| e)
        .filter(|e| topic(e) == "calendar.changed")
        .filter_map(|e| e["added"].as_u64())
        .sum();
    ensure!(
        added == n as u64,
        "{}: opconnect mirrored {added} events, expected {n}",
        t.name
    );
    let from_online = synced.map_or("online not seen".to_owned(), |t| format!("{t:.2} s from online"));
    eprintln!(
        "==> floors: {}: first sync {first:.2} s ({from_online}), faster single request {fastest:.2} s",
        t.name
    );
    Ok(())
}

/// An initial sync-collection asking for the data too (RFC 6578 §3.2, RFC 4791 §9.6).
pub(crate) const SYNC_WITH_DATA: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<D:sync-collection xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:sync-token/><D:sync-level>1</D:sync-level><D:prop><D:getetag/><C:calendar-data/></D:prop></D:sync-collection>"#;
