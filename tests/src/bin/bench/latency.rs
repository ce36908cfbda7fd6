//! Benchmark 4: new-mail latency, from the moment another client starts an APPEND to INBOX to
//! the moment an IPC subscriber of the agent receives `mail.new`, with IDLE and with NOOP.
//!
//! ```text
//!   server alone: appender ── APPEND ──▶ server ── EXISTS ──▶ raw IDLE watcher
//!   with opconnect: appender ── APPEND ──▶ server ── EXISTS ──▶ listener ─▶ sync ─▶ mail.new ─▶ tap
//!                     t0                                                                 t1
//! ```
//! The server alone (a raw IDLE connection, no agent) shows how soon the server itself reports a
//! message; opconnect's share is its median minus that one. They are measured apart because on
//! Dovecot a watcher beside the agent is biased: Dovecot waits a fixed 500 ms after the first
//! change it notices before telling an IDLE client (NOTIFY_DELAY_MSECS in mailbox-watch.c), and
//! the agent's own sync traffic starts that timer early for the watcher. Cyrus's idled answers in
//! milliseconds, so Cyrus is measured as well. The appender waits a random time before each
//! message, so that a NOOP poll's phase is uniform.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;

use opconnect_tests::config::render_config;
use opconnect_tests::imap::quote;
use opconnect_tests::{AccountSpec, Cyrus, Dovecot, DovecotOptions, ImapProbe, password_of};

use crate::driver::{Driver, topic};
use crate::results::{Results, percentile};
use crate::seed::Rng;
use crate::{Config, production_settings};

pub const SECTION: &str = "4. new-mail latency";

/// The longest a single message may take before the run is declared broken.
const PATIENCE: Duration = Duration::from_secs(15);

pub fn run(cfg: &Config, results: &mut Results) -> Result<()> {
    let noop = format!("{}ms", cfg.noop_interval_ms);
    results.fact("latency_noop_interval", json!(noop));
    for run in 0..cfg.runs {
        let dovecot = Dovecot::start()?;
        // The server alone is timed in the first run only: its spread is a millisecond.
        let alone = run == 0;
        measure(cfg, results, "IDLE, Dovecot", dovecot.imap_port(), None, alone)?;
        drop(dovecot);
        let hidden = Dovecot::start_with(DovecotOptions {
            hide_idle: true,
            ..DovecotOptions::default()
        })?;
        let label = format!("NOOP every {noop}, Dovecot");
        measure(
            cfg,
            results,
            &label,
            hidden.imap_port(),
            Some(cfg.noop_interval_ms),
            false,
        )?;
        drop(hidden);
        match Cyrus::start() {
            Ok(cyrus) => measure(cfg, results, "IDLE, Cyrus", cyrus.imap_port(), None, alone)?,
            Err(e) => results.note(format!(
                "Cyrus could not be started, so its IDLE latency is missing: {e:#}"
            )),
        }
        eprintln!("==> latency run {}/{} done", run + 1, cfg.runs);
    }
    results.target(
        "IDLE latency p50 < 100 ms on loopback (Cyrus)",
        SECTION,
        "IDLE, Cyrus: p50",
        |m| m < 100.0,
    );
    results.target(
        "IDLE latency p50 < 100 ms on loopback (Dovecot)",
        SECTION,
        "IDLE, Dovecot: p50",
        |m| m < 100.0,
    );
    results.target(
        "opconnect's own share of IDLE latency (p50 minus the server alone) < 100 ms (Dovecot)",
        SECTION,
        "IDLE, Dovecot: opconnect's share p50",
        |m| m < 100.0,
    );
    results.note(
        "Dovecot 2.3 holds every IDLE notification for a fixed 500 ms after the mailbox changes \
         (NOTIFY_DELAY_MSECS in src/lib-storage/mailbox-watch.c), so no client gets below that; \
         the `server alone` rows show the server's own notification time, seen by a raw IDLE \
         connection with no agent on the server.",
    );
    Ok(())
}

/// The server alone reports messages this many times per measurement (its spread is small).
const SERVER_ALONE_MESSAGES: usize = 20;

/// APPENDs to the server at `port`, each timed until `mail.new`; records p50 and p99.
/// `noop_ms`: the server hides IDLE and the agent polls with NOOP at this interval.
/// `alone`: first time the server alone (IDLE only) and record opconnect's share.
fn measure(
    cfg: &Config,
    results: &mut Results,
    label: &str,
    port: u16,
    noop_ms: Option<u64>,
    alone: bool,
) -> Result<()> {
    // A random pause before each APPEND: up to one poll interval, so that a NOOP's phase is
    // uniform; with IDLE a short one keeps messages apart.
    let max_gap_ms = noop_ms.unwrap_or(100);
    let mut rng = Rng::new(42);
    let mut appender = ImapProbe::connect(port)?;
    appender.login("alice", password_of("alice"))?;
    let mut server = Vec::new();
    if alone && noop_ms.is_none() {
        let watcher = IdleWatcher::start(port, "alice")?;
        for i in 0..SERVER_ALONE_MESSAGES.min(cfg.latency_messages) {
            thread::sleep(Duration::from_millis(rng.below(max_gap_ms)));
            let t0 = Instant::now();
            appender.append("INBOX", &[], &message(i, &mut rng))?;
            let seen = watcher
                .exists_after(t0)
                .with_context(|| format!("{label}: the server did not report message {i}"))?;
            server.push((seen - t0).as_secs_f64() * 1000.0);
        }
    }

    let mut account = AccountSpec::for_user("alice");
    account.imap = Some(format!("imap://127.0.0.1:{port}"));
    let mut settings = production_settings();
    if let Some(ms) = noop_ms {
        settings.noop_interval = format!("{ms}ms");
    }
    // The first sync is not timed here: `sync` makes sure a round ends after the subscription.
    let mut d = Driver::launch(&render_config(&settings, &[account]))?;
    d.call("sync", json!({}))?;
    d.wait_synced(&[("alice", "imap")], Duration::from_secs(60))?;
    // Let the agent's INBOX listener settle into IDLE (or its NOOP rhythm) first.
    thread::sleep(Duration::from_millis(500));
    d.drain();
    let mut agent = Vec::new();
    for i in 0..cfg.latency_messages {
        thread::sleep(Duration::from_millis(rng.below(max_gap_ms)));
        let t0 = Instant::now();
        appender.append("INBOX", &[], &message(1000 + i, &mut rng))?;
        let (at, _) = d
            .wait_event(PATIENCE, |e| topic(e) == "mail.new" && e["folder"] == "INBOX")
            .with_context(|| format!("{label}: message {i}"))?;
        agent.push((at - t0).as_secs_f64() * 1000.0);
    }
    let p50 = percentile(&agent, 50.0);
    results.record(SECTION, &format!("{label}: p50"), "ms", p50);
    results.record(SECTION, &format!("{label}: p99"), "ms", percentile(&agent, 99.0));
    if !server.is_empty() {
        let alone = percentile(&server, 50.0);
        results.record(SECTION, &format!("{label}: server alone p50"), "ms", alone);
        results.record(
            SECTION,
            &format!("{label}: opconnect's share p50"),
            "ms",
            p50 - alone,
        );
    }
    Ok(())
}

/// A small message for the latency runs.
pub(crate) fn message(i: usize, rng: &mut Rng) -> Vec<u8> {
    format!(
        "From: Bob <bob@localhost>\r\nTo: alice@localhost\r\nSubject: latency {i}\r\n\
         Message-ID: <latency-{i}-{}@localhost>\r\n\r\nping {i}\r\n",
        rng.next()
    )
    .into_bytes()
}

/// A raw IMAP connection in IDLE on INBOX that timestamps every `* N EXISTS` (RFC 2177).
pub(crate) struct IdleWatcher {
    seen: Receiver<Instant>,
}

impl IdleWatcher {
    pub(crate) fn start(port: u16, user: &str) -> Result<IdleWatcher> {
        let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut w = stream.try_clone()?;
        let mut r = BufReader::new(stream);
        let mut line = String::new();
        let mut expect = |r: &mut BufReader<TcpStream>, prefix: &str| -> Result<()> {
            loop {
                line.clear();
                if r.read_line(&mut line)? == 0 {
                    bail!("IMAP connection closed waiting for {prefix}");
                }
                if line.starts_with(prefix) {
                    return Ok(());
                }
            }
        };
        expect(&mut r, "* OK")?;
        write!(w, "w1 LOGIN {} {}\r\n", quote(user), quote(password_of(user)))?;
        expect(&mut r, "w1 OK")?;
        write!(w, "w2 SELECT INBOX\r\n")?;
        expect(&mut r, "w2 OK")?;
        write!(w, "w3 IDLE\r\n")?;
        expect(&mut r, "+")?;
        r.get_ref().set_read_timeout(None)?;
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut line = String::new();
            loop {
                line.clear();
                match r.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if line.starts_with("* ") && line.trim_end().ends_with(" EXISTS") => {
                        if tx.send(Instant::now()).is_err() {
                            break;
                        }
                    }
                    Ok(_) => {}
                }
            }
            // Keeps the writing half (and so the IDLE) open until the reader ends.
            drop(w);
        });
        Ok(IdleWatcher { seen: rx })
    }

    /// The first EXISTS seen after `t0`, waiting up to a few seconds for it.
    pub(crate) fn exists_after(&self, t0: Instant) -> Option<Instant> {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.seen.recv_timeout(left) {
                Ok(at) if at >= t0 => return Some(at),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    }
}
