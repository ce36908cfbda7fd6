//! Benchmark 8: a realistic link (issue 22). The servers speak TLS behind a proxy that plays a
//! long, narrow line ([`Link`]: 50 ms round trip, 20 Mbit/s each way by default), and opconnect,
//! vdirsyncer and mbsync sync the same data through it in the same run; the floor is the server
//! answering one query per collection through the same line.
//!
//! ```text
//!   Radicale (TLS) ◀── link proxy (delay + rate, bytes) ◀── opconnect | vdirsyncer | curl (floor)
//!     └ its log: requests by method, seconds of server time
//!   Dovecot (IMAPS) ◀── link proxy ◀── opconnect | mbsync        (link_mail.rs)
//!   Dovecot (IMAP)  ◀── counting proxy, loopback ◀── the same tools once: commands counted
//! ```
//! Under TLS the proxy cannot frame requests: DAV requests are counted from Radicale's log, IMAP
//! commands from one plaintext pass of each tool. Sizes are smaller than the loopback benchmarks
//! so that a run stays within minutes.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use serde_json::json;

use opconnect_tests::agent::Launch;
use opconnect_tests::config::render_config;
use opconnect_tests::{AccountSpec, Radicale, RadicaleOptions, password_of, process, tls};

use crate::driver::{Driver, topic};
use crate::proxy::{Counters, CountingProxy, Framing, Link};
use crate::results::Results;
use crate::tools::Vdirsyncer;
use crate::{Config, MB, production_settings, seed};

pub const DAV: &str = "8a. DAV over a realistic link";

/// Requests after the last `synced` of a round would still be counted within this quiet time.
const QUIET: Duration = Duration::from_millis(400);

/// How much data the link section syncs.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub events: usize,
    pub contacts: usize,
    pub per_folder: usize,
    pub latency_messages: usize,
}

impl Sizes {
    fn of(cfg: &Config) -> Sizes {
        if cfg.quick {
            Sizes {
                events: 500,
                contacts: 250,
                per_folder: 50,
                latency_messages: 5,
            }
        } else {
            Sizes {
                events: 2_000,
                contacts: 1_000,
                per_folder: 200,
                latency_messages: 20,
            }
        }
    }
}

pub fn run(cfg: &Config, results: &mut Results) -> Result<()> {
    let link = Link::new(cfg.link_rtt_ms, cfg.link_mbit);
    let sizes = Sizes::of(cfg);
    results.fact(
        "link",
        json!({"line": link.describe(), "tls": true, "events": sizes.events, "contacts": sizes.contacts,
               "messages": sizes.per_folder * seed::mail_folders().len(), "latency_messages": sizes.latency_messages}),
    );
    eprintln!("==> link: {}", link.describe());
    dav(cfg, sizes, link, results)?;
    crate::link_mail::imap(cfg, sizes, link, results)?;
    crate::link_mail::latency(sizes, link, results)?;
    Ok(())
}

/// Radicale over TLS with a certificate from a private CA (the harness's `tls: true` makes a
/// self-signed one, which rustls refuses as an end entity): its `ca.pem` is what clients trust.
struct TlsRadicale {
    radicale: Radicale,
    certs: tempfile::TempDir,
}

impl TlsRadicale {
    fn start(events: usize, contacts: usize) -> Result<(TlsRadicale, u64)> {
        // Seeding writes the collections over plain HTTP once; later runs copy the cached files.
        {
            let plain = Radicale::start()?;
            seed::seed_dav(&plain, "alice", events, contacts)?;
        }
        let mut radicale = Radicale::start_with(RadicaleOptions {
            tls: true,
            ..RadicaleOptions::default()
        })?;
        let certs = process::short_tempdir("lnk")?;
        tls::make_server_cert(certs.path())?;
        for file in ["server.pem", "server.key"] {
            fs::copy(certs.path().join(file), radicale.dir().join("tls").join(file))?;
        }
        radicale.start_again()?;
        let (_, _, bytes) = seed::seed_dav(&radicale, "alice", events, contacts)?;
        Ok((TlsRadicale { radicale, certs }, bytes))
    }

    fn ca(&self) -> std::path::PathBuf {
        self.certs.path().join("ca.pem")
    }
}

/// What Radicale's log says about the requests since `mark` (a length of the log).
#[derive(Debug, Default)]
pub(crate) struct ServerSide {
    pub requests: u64,
    pub methods: BTreeMap<String, u64>,
    /// Seconds Radicale spent on them, as it logs each answer.
    seconds: f64,
}

/// The seconds of one of Radicale's "response status" log lines:
/// `[…] [INFO] REPORT response status for '…' with depth '1' in 0.245 seconds: 207 …`.
pub(crate) fn answer_seconds(line: &str) -> Option<f64> {
    if !line.contains(" response status for ") {
        return None;
    }
    let (head, _) = line.rsplit_once(" seconds:")?;
    head.rsplit(' ').next()?.parse().ok()
}

impl ServerSide {
    pub fn since(radicale: &Radicale, mark: usize) -> ServerSide {
        ServerSide::parse(radicale.log().get(mark..).unwrap_or(""))
    }

    fn parse(log: &str) -> ServerSide {
        let mut s = ServerSide::default();
        for line in log.lines() {
            // `[…] [pid/thread] [INFO] REPORT request for '/alice/calendar/' … received from …`
            // `[…] [pid/thread] [INFO] REPORT response status for '…' … in 0.245 seconds: 207 …`
            let Some((_, rest)) = line.split_once("[INFO] ") else {
                continue;
            };
            let method = rest.split(' ').next().unwrap_or("").to_owned();
            if rest.contains(" request for ") {
                s.requests += 1;
                *s.methods.entry(method).or_default() += 1;
            } else if let Some(secs) = answer_seconds(rest) {
                s.seconds += secs;
            }
        }
        s
    }

    pub fn methods_line(&self) -> String {
        self.methods
            .iter()
            .map(|(m, n)| format!("{m} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn record(results: &mut Results, step: &str, who: &str, wall: Duration, c: &Counters, s: &ServerSide) {
    let section = DAV;
    results.record(
        section,
        &format!("{step}: {who} wall time"),
        "s",
        wall.as_secs_f64(),
    );
    results.record(section, &format!("{step}: {who} requests"), "", s.requests as f64);
    results.record(
        section,
        &format!("{step}: {who} connections"),
        "",
        c.connections as f64,
    );
    results.record(
        section,
        &format!("{step}: {who} MB down"),
        "MB",
        c.bytes_down as f64 / MB,
    );
    results.record(
        section,
        &format!("{step}: {who} KB up"),
        "KB",
        c.bytes_up as f64 / 1024.0,
    );
    results.record(section, &format!("{step}: {who} server time"), "s", s.seconds);
    results.fact(
        &format!("link_dav {step} {who} requests"),
        json!(s.methods_line()),
    );
}

fn dav(cfg: &Config, sizes: Sizes, link: Link, results: &mut Results) -> Result<()> {
    let began = Instant::now();
    let (server, bytes) = TlsRadicale::start(sizes.events, sizes.contacts)?;
    eprintln!(
        "==> link DAV: {} events and {} contacts ({:.1} MB) in Radicale over TLS, ready in {:.1?}",
        sizes.events,
        sizes.contacts,
        bytes as f64 / MB,
        began.elapsed()
    );
    let proxy = CountingProxy::start_with(server.radicale.port(), Framing::Opaque, link)?;
    for run in 0..cfg.runs {
        let floor = floor(&server, &proxy, results, sizes)?;
        let ours = |results: &mut Results| opconnect(&server, &proxy, results, sizes, "opconnect", None);
        let (agent, tool) = if run % 2 == 0 {
            let a = ours(results)?;
            (a, vdirsyncer(&server, &proxy, results, sizes, run == 0)?)
        } else {
            let t = vdirsyncer(&server, &proxy, results, sizes, run == 0)?;
            (ours(results)?, t)
        };
        if let Some(bin) = std::env::var_os(BASELINE) {
            let who = "opconnect, no compression";
            let plain = opconnect(&server, &proxy, results, sizes, who, Some(bin.into()))?;
            results.record(
                DAV,
                "first sync: opconnect without ÷ with compression",
                "×",
                plain.as_secs_f64() / agent.as_secs_f64(),
            );
        }
        let (a, t, f) = (agent.as_secs_f64(), tool.as_secs_f64(), floor.as_secs_f64());
        results.record(DAV, "first sync: speed-up over vdirsyncer", "×", t / a);
        results.record(DAV, "first sync: opconnect ÷ floor (compressed)", "×", a / f);
        results.record(DAV, "first sync: vdirsyncer ÷ floor (compressed)", "×", t / f);
        eprintln!(
            "==> link DAV run {}/{}: opconnect {agent:.2?}, vdirsyncer {tool:.2?}, floor {floor:.2?}",
            run + 1,
            cfg.runs
        );
    }
    Ok(())
}

/// The floor: one calendar-query and one addressbook-query carrying every item, sent at once
/// by curl through the line, with and without compression; returns the compressed one's time.
fn floor(
    server: &TlsRadicale,
    proxy: &CountingProxy,
    results: &mut Results,
    sizes: Sizes,
) -> Result<Duration> {
    let mut compressed_time = Duration::ZERO;
    for compressed in [true, false] {
        proxy.take();
        let mark = server.radicale.log().len();
        let t0 = Instant::now();
        let children =
            [("calendar", CALENDAR_QUERY), ("contacts", ADDRESSBOOK_QUERY)].map(|(collection, body)| {
                let url = format!("{}alice/{collection}/", proxy.https_url());
                curl_report(&url, body, &server.ca(), compressed)
            });
        let mut downloaded = 0u64;
        for child in children {
            let out = child?.wait_with_output()?;
            ensure!(
                out.status.success(),
                "curl: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            downloaded += String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse::<u64>()
                .unwrap_or(0);
        }
        let wall = t0.elapsed();
        // Both bodies decoded hold every item: a sanity check that the floor carried the data.
        ensure!(
            downloaded > (sizes.events + sizes.contacts) as u64 * 100,
            "the floor queries brought only {downloaded} bytes"
        );
        thread::sleep(QUIET);
        let c = proxy.take();
        let s = ServerSide::since(&server.radicale, mark);
        let who = if compressed {
            compressed_time = wall;
            "floor (2 queries, gzip)"
        } else {
            "floor (2 queries, plain)"
        };
        record(results, "first sync", who, wall, &c, &s);
    }
    Ok(compressed_time)
}

pub(crate) const CALENDAR_QUERY: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:prop><d:getetag/><c:calendar-data/></d:prop><c:filter><c:comp-filter name="VCALENDAR"/></c:filter></c:calendar-query>"#;
const ADDRESSBOOK_QUERY: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<c:addressbook-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:carddav"><d:prop><d:getetag/><c:address-data/></d:prop><c:filter/></c:addressbook-query>"#;

/// `curl` sending one REPORT; prints the decoded size of the answer.
pub(crate) fn curl_report(url: &str, body: &str, ca: &Path, compressed: bool) -> Result<std::process::Child> {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-o", "/dev/null", "-w", "%{size_download}", "--cacert"])
        .arg(ca)
        .args(["-u", &format!("alice:{}", password_of("alice"))])
        .args([
            "-X",
            "REPORT",
            "-H",
            "Depth: 1",
            "-H",
            "Content-Type: application/xml",
        ])
        .args(["--data-binary", body, "--max-time", "600"]);
    if compressed {
        cmd.arg("--compressed");
    }
    cmd.arg(url).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.spawn().context("starting curl (package curl)")
}

/// An `opconnect` build that does not ask for compression (e.g. the one before it did), to
/// measure what compression gains on the line: `$OPCONNECT_BENCH_BASELINE`.
const BASELINE: &str = "OPCONNECT_BENCH_BASELINE";

/// opconnect's first sync, then a no-change sync; returns the first sync's wall time. `bin`:
/// another build than the one under test, recorded as `who`.
fn opconnect(
    server: &TlsRadicale,
    proxy: &CountingProxy,
    results: &mut Results,
    sizes: Sizes,
    who: &str,
    bin: Option<PathBuf>,
) -> Result<Duration> {
    proxy.take();
    let mark = server.radicale.log().len();
    let mut account = AccountSpec::for_user("alice");
    account.caldav = Some(proxy.https_url());
    account.carddav = Some(proxy.https_url());
    account.tls_ca = Some(server.ca());
    let mut settings = production_settings();
    settings.dav_poll_interval = "1h".into();
    let launch = Launch {
        bin,
        ..Launch::default()
    };
    let mut d = Driver::start_with(&render_config(&settings, &[account]), launch)?;
    let services = [("alice", "caldav"), ("alice", "carddav")];
    let done = d.wait_synced(&services, Duration::from_secs(1800))?;
    let wall = done - d.started;
    thread::sleep(QUIET);
    let added: u64 = d
        .seen
        .iter()
        .filter(|(_, e)| matches!(topic(e), "calendar.changed" | "contacts.changed"))
        .filter_map(|(_, e)| e["added"].as_u64())
        .sum();
    ensure!(
        added == (sizes.events + sizes.contacts) as u64,
        "opconnect mirrored {added} items over the link, expected {}",
        sizes.events + sizes.contacts
    );
    let c = proxy.take();
    record(
        results,
        "first sync",
        who,
        wall,
        &c,
        &ServerSide::since(&server.radicale, mark),
    );

    d.drain();
    let mark = server.radicale.log().len();
    let t0 = Instant::now();
    d.call("sync", json!({"account": "alice"}))?;
    let done = d.wait_synced(&services, Duration::from_secs(300))?;
    thread::sleep(QUIET);
    let c = proxy.take();
    record(
        results,
        "no-change poll",
        who,
        done - t0,
        &c,
        &ServerSide::since(&server.radicale, mark),
    );
    Ok(wall)
}

/// vdirsyncer's first sync (discover + sync), then, in the first run, a no-change sync.
fn vdirsyncer(
    server: &TlsRadicale,
    proxy: &CountingProxy,
    results: &mut Results,
    sizes: Sizes,
    no_change: bool,
) -> Result<Duration> {
    let v = Vdirsyncer::verified(&proxy.https_url(), "alice", Some(&server.ca()))?;
    proxy.take();
    let mark = server.radicale.log().len();
    let first = v.first_sync()?;
    thread::sleep(QUIET);
    let c = proxy.take();
    let (events, contacts) = (v.local_items("caldav"), v.local_items("carddav"));
    ensure!(
        (events, contacts) == (sizes.events, sizes.contacts),
        "vdirsyncer stored {events} events and {contacts} contacts over the link"
    );
    record(
        results,
        "first sync",
        "vdirsyncer",
        first.wall,
        &c,
        &ServerSide::since(&server.radicale, mark),
    );
    if no_change {
        let mark = server.radicale.log().len();
        let again = v.sync()?;
        thread::sleep(QUIET);
        let c = proxy.take();
        record(
            results,
            "no-change poll",
            "vdirsyncer",
            again.wall,
            &c,
            &ServerSide::since(&server.radicale, mark),
        );
    }
    Ok(first.wall)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn radicale_log_lines_are_counted() {
        let log = "[2026-12-03 16:00:00 +0000] [123/Thread-1] [INFO] REPORT request for '/alice/calendar/' with depth '1' received from 127.0.0.1 using 'x'\n\
                   [2026-12-03 16:00:00 +0000] [123/Thread-1] [INFO] REPORT response status for '/alice/calendar/' with depth '1' in 0.250 seconds: 207 Multi-Status\n\
                   [2026-12-03 16:00:01 +0000] [123/Thread-2] [INFO] PROPFIND request for '/alice/' with depth '0' received from 127.0.0.1\n\
                   [2026-12-03 16:00:01 +0000] [123/Thread-2] [INFO] PROPFIND response status for '/alice/' with depth '0' in 0.005 seconds: 207 Multi-Status\n";
        let s = ServerSide::parse(log);
        assert_eq!(
            (s.requests, s.methods_line().as_str()),
            (2, "PROPFIND 1, REPORT 1")
        );
        assert!((s.seconds - 0.255).abs() < 1e-9, "{}", s.seconds);
    }
}
