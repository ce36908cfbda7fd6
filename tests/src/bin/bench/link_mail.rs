//! Benchmark 8, mail half: the first IMAP sync and new-mail latency over the line of
//! [`crate::link`], against IMAPS on Dovecot.
//!
//! ```text
//!   plaintext twin (no TLS, loopback, framed): opconnect, mbsync MaxSize 1k, mbsync ─▶ commands
//!   IMAPS on loopback: opconnect, mbsync MaxSize 1k once, untimed ─▶ a warm Dovecot cache
//!   over the line (IMAPS):             the same three, timed, bytes and connections counted
//!   new mail: appender (loopback) ─ APPEND ─▶ Dovecot ─ EXISTS over the line ─▶ agent ─▶ mail.new
//!             floor: a raw IDLE connection through the same line (plaintext: TLS adds no round trip
//!             once connected)
//! ```

use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use serde_json::json;

use opconnect_tests::config::render_config;
use opconnect_tests::{AccountSpec, Dovecot, DovecotOptions, ImapProbe, password_of};

use crate::driver::{Driver, topic};
use crate::latency::{IdleWatcher, message};
use crate::link::Sizes;
use crate::proxy::{CountingProxy, Framing, Link};
use crate::results::{Results, percentile};
use crate::seed::{self, Rng};
use crate::tools::Mbsync;
use crate::{Config, MB, production_settings};

pub const IMAP: &str = "8b. IMAP over a realistic link";
pub const LATENCY: &str = "8c. new mail over a realistic link";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Who {
    Opconnect,
    MbsyncHeaders,
    MbsyncFull,
}

impl Who {
    fn label(self) -> &'static str {
        match self {
            Who::Opconnect => "opconnect",
            Who::MbsyncHeaders => "mbsync MaxSize 1k",
            Who::MbsyncFull => "mbsync (whole messages)",
        }
    }
}

fn start_dovecot() -> Result<Dovecot> {
    Dovecot::start_with(DovecotOptions {
        tls: true,
        ..DovecotOptions::default()
    })
}

pub fn imap(cfg: &Config, sizes: Sizes, link: Link, results: &mut Results) -> Result<()> {
    let dovecot = start_dovecot()?;
    let folders = seed::mail_folders();
    let (messages, bytes) = seed::seed_mail(&dovecot, "alice", &folders, sizes.per_folder)?;
    eprintln!(
        "==> link IMAP: {messages} messages ({:.1} MB) in {} folders, IMAPS",
        bytes as f64 / MB,
        folders.len()
    );
    let all = [Who::Opconnect, Who::MbsyncHeaders, Who::MbsyncFull];
    {
        // The commands each tool sends, counted in plaintext on a twin without TLS (a Dovecot
        // with TLS offers STARTTLS, which the agent takes).
        let twin = Dovecot::start()?;
        seed::seed_mail(&twin, "alice", &folders, sizes.per_folder)?;
        let plain = CountingProxy::start(twin.imap_port(), Framing::Imap)?;
        for who in all {
            sync(who, &twin, plain.port(), false, messages)?;
            let c = plain.take();
            results.record(IMAP, &format!("{} commands", who.label()), "", c.requests as f64);
            results.fact(
                &format!("link_imap_commands {}", who.label()),
                json!(c.methods_line()),
            );
        }
    }
    // One IMAPS pass on loopback, not timed: Dovecot's cache as in daily use (see benchmark 3).
    for who in [Who::Opconnect, Who::MbsyncHeaders] {
        sync(who, &dovecot, dovecot.imaps_port(), true, messages)?;
    }
    let line = CountingProxy::start_with(dovecot.imaps_port(), Framing::Opaque, link)?;
    for run in 0..cfg.runs {
        let mut times = [0.0f64; 3];
        for k in 0..all.len() {
            let i = (k + run) % all.len();
            let who = all[i];
            line.take();
            let wall = sync(who, &dovecot, line.port(), true, messages)?;
            thread::sleep(Duration::from_millis(300));
            let c = line.take();
            let label = who.label();
            results.record(IMAP, &format!("{label} wall time"), "s", wall);
            results.record(IMAP, &format!("{label} MB down"), "MB", c.bytes_down as f64 / MB);
            results.record(IMAP, &format!("{label} connections"), "", c.connections as f64);
            times[i] = wall;
        }
        let [agent, headers, full] = times;
        results.record(IMAP, "opconnect ÷ mbsync MaxSize 1k", "×", agent / headers);
        results.record(IMAP, "opconnect ÷ mbsync (whole messages)", "×", agent / full);
        eprintln!(
            "==> link IMAP run {}/{}: opconnect {agent:.2} s, mbsync MaxSize 1k {headers:.2} s, mbsync {full:.2} s",
            run + 1,
            cfg.runs
        );
    }
    Ok(())
}

/// One first sync by `who` through `port` (IMAPS when `tls`); returns its wall time in s.
fn sync(who: Who, dovecot: &Dovecot, port: u16, tls: bool, messages: usize) -> Result<f64> {
    match who {
        Who::Opconnect => {
            let mut account = AccountSpec::for_user("alice");
            if tls {
                account.imap = Some(format!("imaps://127.0.0.1:{port}"));
                account.tls_ca = Some(dovecot.ca_pem());
            } else {
                account.imap = Some(format!("imap://127.0.0.1:{port}"));
            }
            let mut d = Driver::start(&render_config(&production_settings(), &[account]))?;
            let done = d.wait_synced(&[("alice", "imap")], Duration::from_secs(1800))?;
            let wall = (done - d.started).as_secs_f64();
            let mut mirrored = 0;
            for folder in seed::mail_folders() {
                let page = d.call(
                    "mail.messages",
                    json!({"account": "alice", "folder": folder, "limit": 5000}),
                )?;
                mirrored += page["messages"].as_array().map_or(0, Vec::len);
            }
            ensure!(
                mirrored == messages,
                "opconnect mirrored {mirrored} of {messages} messages"
            );
            Ok(wall)
        }
        Who::MbsyncHeaders | Who::MbsyncFull => {
            let max = (who == Who::MbsyncHeaders).then_some("1k");
            let ca = tls.then(|| dovecot.ca_pem());
            let m = Mbsync::with_tls(port, "alice", max, ca.as_deref())?;
            let run = m.sync()?;
            ensure!(
                m.local_messages() == messages,
                "{} stored {} of {messages} messages",
                who.label(),
                m.local_messages()
            );
            Ok(run.wall.as_secs_f64())
        }
    }
}

/// New-mail latency with IDLE: an APPEND on loopback until the agent, over the line, reports
/// `mail.new`; the floor is a raw IDLE connection through the same line.
pub fn latency(sizes: Sizes, link: Link, results: &mut Results) -> Result<()> {
    let dovecot = start_dovecot()?;
    let mut rng = Rng::new(7);
    let mut appender = ImapProbe::connect(dovecot.imap_port())?;
    appender.login("alice", password_of("alice"))?;

    let plain_line = CountingProxy::start_with(dovecot.imap_port(), Framing::Imap, link)?;
    let watcher = IdleWatcher::start(plain_line.port(), "alice")?;
    let mut floor = Vec::new();
    for i in 0..sizes.latency_messages {
        thread::sleep(Duration::from_millis(rng.below(200)));
        let t0 = Instant::now();
        appender.append("INBOX", &[], &message(i, &mut rng))?;
        let seen = watcher
            .exists_after(t0)
            .with_context(|| format!("the raw IDLE connection over the line missed message {i}"))?;
        floor.push((seen - t0).as_secs_f64() * 1000.0);
    }
    drop(watcher);

    let line = CountingProxy::start_with(dovecot.imaps_port(), Framing::Opaque, link)?;
    let mut account = AccountSpec::for_user("alice");
    account.imap = Some(format!("imaps://127.0.0.1:{}", line.port()));
    account.tls_ca = Some(dovecot.ca_pem());
    let mut d = Driver::launch(&render_config(&production_settings(), &[account]))?;
    d.call("sync", json!({}))?;
    d.wait_synced(&[("alice", "imap")], Duration::from_secs(120))?;
    thread::sleep(Duration::from_secs(1));
    d.drain();
    let mut agent = Vec::new();
    for i in 0..sizes.latency_messages {
        thread::sleep(Duration::from_millis(rng.below(200)));
        let t0 = Instant::now();
        appender.append("INBOX", &[], &message(1000 + i, &mut rng))?;
        let (at, _) = d
            .wait_event(Duration::from_secs(15), |e| {
                topic(e) == "mail.new" && e["folder"] == "INBOX"
            })
            .with_context(|| format!("mail.new over the line for message {i}"))?;
        agent.push((at - t0).as_secs_f64() * 1000.0);
    }
    let (p50, alone) = (percentile(&agent, 50.0), percentile(&floor, 50.0));
    results.record(LATENCY, "opconnect IDLE p50", "ms", p50);
    results.record(LATENCY, "opconnect IDLE p99", "ms", percentile(&agent, 99.0));
    results.record(LATENCY, "floor: raw IDLE connection p50", "ms", alone);
    results.record(LATENCY, "opconnect ÷ floor (p50)", "×", p50 / alone);
    results.record(LATENCY, "opconnect's share p50", "ms", p50 - alone);
    eprintln!("==> link latency: opconnect p50 {p50:.0} ms, raw IDLE {alone:.0} ms");
    Ok(())
}
