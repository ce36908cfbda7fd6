//! Benchmark 8e (issue 22): Cyrus, DAViCal and Xandikos behind the line of benchmark 8, as
//! Radicale is there: the first sync and a no-change poll of one calendar by opconnect and by
//! vdirsyncer, beside the floor (one calendar-query carrying every event, by curl through the
//! same line), in the same run.
//!
//! ```text
//!   server (plain HTTP) ◀── Apache mod_ssl (TLS front, its access log counts requests)
//!                             ◀── link proxy (delay + rate) ◀── opconnect | vdirsyncer | curl
//! ```
//! None of the three serves TLS itself in the harness (Cyrus could, with a certificate set up
//! for its httpd; one front for all keeps them alike), so Apache terminates TLS on loopback.

use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use serde_json::json;

use opconnect_tests::apache::TlsFront;
use opconnect_tests::config::render_config;
use opconnect_tests::xandikos::Xandikos;
use opconnect_tests::{AccountSpec, Cyrus, Davical};

use crate::driver::{Driver, topic};
use crate::link::{CALENDAR_QUERY, curl_report};
use crate::proxy::{CountingProxy, Framing, Link};
use crate::replay::load_average;
use crate::results::Results;
use crate::tools::Vdirsyncer;
use crate::{Config, MB, production_settings, seed};

pub const SECTION: &str = "8e. Cyrus, DAViCal, Xandikos over a realistic link";

/// Requests after a tool's last answer would still be logged within this quiet time.
const QUIET: Duration = Duration::from_millis(400);

fn events(cfg: &Config) -> usize {
    if cfg.quick { 300 } else { 1_000 }
}

pub fn run(cfg: &Config, results: &mut Results) -> Result<()> {
    let n = events(cfg);
    let link = Link::new(cfg.link_rtt_ms, cfg.link_mbit);
    let events: Vec<(String, String)> = (0..n).map(seed::event).collect();
    results.fact(
        "link_servers",
        json!({"line": link.describe(), "tls": "Apache mod_ssl front", "events": n}),
    );

    let cyrus = Cyrus::start()?;
    let calendar = cyrus.create_calendar("alice", "bench", "Bench")?;
    crate::floors::put_all(&cyrus, &calendar, &events)?;
    let s = Server {
        name: "Cyrus",
        port: cyrus.http_port(),
        root: path_of(&cyrus.dav_url()),
        calendar,
    };
    measure(&s, n, link, cfg, results)?;
    drop(cyrus);

    let davical = Davical::start()?;
    let calendar = davical.default_calendar("alice");
    crate::floors::put_all(&davical, &calendar, &events)?;
    let s = Server {
        name: "DAViCal",
        port: davical.http_port(),
        root: path_of(&davical.dav_url()),
        calendar,
    };
    measure(&s, n, link, cfg, results)?;
    drop(davical);

    let xandikos = Xandikos::start()?;
    let calendar = xandikos.calendar();
    let files: Vec<(String, String)> = events
        .iter()
        .map(|(uid, ics)| (format!("{uid}.ics"), ics.clone()))
        .collect();
    xandikos.seed(&calendar, &files)?;
    let s = Server {
        name: "Xandikos",
        port: xandikos.port(),
        root: path_of(&xandikos.url()),
        calendar,
    };
    measure(&s, n, link, cfg, results)
}

/// The path of a URL (`http://127.0.0.1:8/caldav.php/` → `/caldav.php/`).
fn path_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.find('/').map_or("/".to_owned(), |i| rest[i..].to_owned())
}

/// One server under test: its plain HTTP port, the DAV root's path, the seeded calendar.
struct Server {
    name: &'static str,
    port: u16,
    root: String,
    calendar: String,
}

/// The front's access log since `mark`: (requests, `PROPFIND 2, REPORT 1`).
fn logged(front: &TlsFront, mark: usize) -> (u64, String) {
    let log = front.access_log();
    let mut methods = std::collections::BTreeMap::<String, u64>::new();
    for line in log.get(mark..).unwrap_or("").lines() {
        let method = line.trim_start_matches('"').split(' ').next().unwrap_or("?");
        *methods.entry(method.to_owned()).or_default() += 1;
    }
    let line = methods
        .iter()
        .map(|(m, n)| format!("{m} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    (methods.values().sum(), line)
}

/// What one step cost through the line.
struct Step<'a> {
    server: &'a str,
    step: &'a str,
    who: &'a str,
    wall: Duration,
}

fn record(results: &mut Results, s: Step<'_>, line: &CountingProxy, front: &TlsFront, mark: usize) {
    thread::sleep(QUIET);
    let c = line.take();
    let (requests, methods) = logged(front, mark);
    let label = |what: &str| format!("{}: {}: {} {what}", s.server, s.step, s.who);
    results.record(SECTION, &label("wall time"), "s", s.wall.as_secs_f64());
    results.record(SECTION, &label("requests"), "", requests as f64);
    results.record(SECTION, &label("connections"), "", c.connections as f64);
    results.record(SECTION, &label("MB down"), "MB", c.bytes_down as f64 / MB);
    results.fact(&format!("link_servers {}", label("requests")), json!(methods));
}

fn measure(s: &Server, n: usize, link: Link, cfg: &Config, results: &mut Results) -> Result<()> {
    let front = TlsFront::start(s.port).with_context(|| format!("the TLS front of {}", s.name))?;
    let line = CountingProxy::start_with(front.port(), Framing::Opaque, link)?;
    let base = format!("https://127.0.0.1:{}", line.port());
    let url = format!("{base}{}", s.root);
    for run in 0..cfg.runs {
        // The floor: one calendar-query with every event, gzip asked (as the agent asks).
        line.take();
        let mark = front.access_log().len();
        let t0 = Instant::now();
        let target = format!("{base}{}", s.calendar);
        let out = curl_report(&target, CALENDAR_QUERY, &front.ca_pem(), true)?.wait_with_output()?;
        let floor = t0.elapsed();
        ensure!(
            out.status.success(),
            "curl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let size: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0);
        ensure!(
            size > n as u64 * 100,
            "{}: the floor query brought {size} bytes",
            s.name
        );
        let step = |step, who, wall| Step {
            server: s.name,
            step,
            who,
            wall,
        };
        record(
            results,
            step("first sync", "floor (calendar-query, gzip)", floor),
            &line,
            &front,
            mark,
        );

        let ours = opconnect(s, &url, &front, &line, n, results)?;
        let theirs = match vdirsyncer(s, &url, &front, &line, n, run == 0, results) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("    vdirsyncer on {}: {e:#}", s.name);
                results.fact(
                    &format!("link_servers {} vdirsyncer failed", s.name),
                    json!(format!("{e:#}")),
                );
                None
            }
        };
        let (a, f) = (ours.as_secs_f64(), floor.as_secs_f64());
        results.record(
            SECTION,
            &format!("{}: first sync: opconnect ÷ floor", s.name),
            "×",
            a / f,
        );
        if let Some(t) = theirs {
            let t = t.as_secs_f64();
            results.record(
                SECTION,
                &format!("{}: first sync: vdirsyncer ÷ opconnect", s.name),
                "×",
                t / a,
            );
            results.record(
                SECTION,
                &format!("{}: first sync: vdirsyncer ÷ floor", s.name),
                "×",
                t / f,
            );
        }
        results.record(
            SECTION,
            &format!("{}: load average (1 min)", s.name),
            "",
            load_average(),
        );
        eprintln!(
            "==> {} over the line, run {}/{}: opconnect {ours:.2?}, vdirsyncer {}, floor {floor:.2?} (load {:.1})",
            s.name,
            run + 1,
            cfg.runs,
            theirs.map_or("failed".into(), |t| format!("{t:.2?}")),
            load_average()
        );
    }
    Ok(())
}

/// opconnect's first sync (start → `synced`), then a no-change poll; returns the first's time.
fn opconnect(
    s: &Server,
    url: &str,
    front: &TlsFront,
    line: &CountingProxy,
    n: usize,
    results: &mut Results,
) -> Result<Duration> {
    line.take();
    let mark = front.access_log().len();
    let mut account = AccountSpec::for_user("alice");
    account.caldav = Some(url.to_owned());
    account.tls_ca = Some(front.ca_pem());
    let mut settings = production_settings();
    settings.dav_poll_interval = "1h".into();
    let mut d = Driver::start(&render_config(&settings, &[account]))?;
    let services = [("alice", "caldav")];
    let done = d.wait_synced(&services, Duration::from_secs(1800))?;
    let wall = done - d.started;
    let added: u64 = d
        .seen
        .iter()
        .filter(|(_, e)| topic(e) == "calendar.changed")
        .filter_map(|(_, e)| e["added"].as_u64())
        .sum();
    ensure!(
        added == n as u64,
        "{}: opconnect mirrored {added} events over the line, expected {n}",
        s.name
    );
    let step = |step, wall| Step {
        server: s.name,
        step,
        who: "opconnect",
        wall,
    };
    record(results, step("first sync", wall), line, front, mark);

    // The round after a first sync takes the collection's change marker (README "Change
    // markers"); the one after it is the steady no-change poll.
    for what in ["poll after the first sync", "no-change poll"] {
        d.drain();
        let mark = front.access_log().len();
        let t0 = Instant::now();
        d.call("sync", json!({"account": "alice"}))?;
        let done = d.wait_synced(&services, Duration::from_secs(300))?;
        record(results, step(what, done - t0), line, front, mark);
    }
    Ok(wall)
}

/// vdirsyncer's first sync (discover + sync, calendars only), then, in the first run, a
/// no-change sync.
fn vdirsyncer(
    s: &Server,
    url: &str,
    front: &TlsFront,
    line: &CountingProxy,
    n: usize,
    no_change: bool,
    results: &mut Results,
) -> Result<Duration> {
    let v = Vdirsyncer::pairs(url, "alice", Some(&front.ca_pem()), &["caldav"])?;
    line.take();
    let mark = front.access_log().len();
    let first = v.first_sync()?;
    let stored = v.local_items("caldav");
    ensure!(stored == n, "vdirsyncer stored {stored} of {n} events");
    let step = |step, wall| Step {
        server: s.name,
        step,
        who: "vdirsyncer",
        wall,
    };
    record(results, step("first sync", first.wall), line, front, mark);
    if no_change {
        let mark = front.access_log().len();
        let again = v.sync()?;
        record(results, step("no-change poll", again.wall), line, front, mark);
    }
    Ok(first.wall)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_gives_its_path() {
        assert_eq!(path_of("http://127.0.0.1:8/caldav.php/"), "/caldav.php/");
        assert_eq!(path_of("http://127.0.0.1:8/"), "/");
        assert_eq!(path_of("http://127.0.0.1:8"), "/");
    }
}
