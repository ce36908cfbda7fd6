//! Benchmark 3: the first IMAP sync of a large mailbox (headers and flags of every message in
//! ten folders) by opconnect, and by mbsync in two set-ups, through one counting proxy in front of
//! one seeded Dovecot, in the same run.
//!
//! ```text
//!   seed (Maildir files) + doveadm index ─▶ Dovecot ◀── proxy ◀── opconnect (summaries + flags)
//!                                                           ◀── mbsync, whole messages
//!                                                           ◀── mbsync MaxSize 1k: headers + flags
//! ```
//! mbsync downloads whole messages. With `MaxSize 1k` (isync 1.4) it keeps a placeholder of each
//! larger message instead: the message's whole header (one `UID FETCH … BODY.PEEK[HEADER]` per
//! message) plus a note; flagged messages still come whole. That is the closest mbsync gets to
//! what opconnect mirrors (six header fields, flags, size, date per message), so the target is
//! judged against it. Only `Sync Pull` is used, so no tool changes the server; one warm-up pass
//! of each tool (not recorded) of the tools that fetch headers brings Dovecot's cache to the state of a mailbox
//! in daily use.

use std::time::Duration;

use anyhow::{Result, ensure};
use serde_json::json;

use opconnect_tests::config::render_config;
use opconnect_tests::{AccountSpec, Dovecot};

use crate::driver::Driver;
use crate::proxy::{CountingProxy, Framing};
use crate::results::Results;
use crate::tools::Mbsync;
use crate::{Config, MB, production_settings, seed};

pub const SECTION: &str = "3. initial IMAP sync";

/// The three ways of syncing the mailbox.
#[derive(Debug, Clone, Copy)]
enum Who {
    Opconnect,
    MbsyncFull,
    MbsyncHeaders,
}

impl Who {
    fn label(self) -> &'static str {
        match self {
            Who::Opconnect => "opconnect",
            Who::MbsyncFull => "mbsync (whole messages)",
            Who::MbsyncHeaders => "mbsync MaxSize 1k (headers + flags)",
        }
    }
}

pub fn run(cfg: &Config, results: &mut Results) -> Result<()> {
    let dovecot = Dovecot::start()?;
    let folders = seed::mail_folders();
    let began = std::time::Instant::now();
    let (messages, bytes) = seed::seed_mail(&dovecot, "alice", &folders, cfg.per_folder)?;
    eprintln!(
        "==> IMAP: seeded {messages} messages ({:.0} MB) in {} folders and indexed them in {:.1?}",
        bytes as f64 / MB,
        folders.len(),
        began.elapsed()
    );
    results.fact(
        "imap_data",
        json!({"messages": messages, "folders": folders.len(), "bytes": bytes}),
    );
    let proxy = CountingProxy::start(dovecot.imap_port(), Framing::Imap)?;
    let all = [Who::Opconnect, Who::MbsyncFull, Who::MbsyncHeaders];
    // Dovecot caches the header fields clients ask for; mbsync's whole-message fetches leave
    // nothing there, so it needs no warm-up pass.
    eprintln!("==> IMAP: warm-up pass of the tools that fetch headers (not recorded)");
    for who in [Who::Opconnect, Who::MbsyncHeaders] {
        measure(who, messages, &proxy, None)?;
    }
    for run in 0..cfg.runs {
        let mut times = [0.0f64; 3];
        // Each run starts with another tool.
        for k in 0..all.len() {
            let i = (k + run) % all.len();
            times[i] = measure(all[i], messages, &proxy, Some(results))?;
        }
        let [agent, full, headers] = times;
        results.record(
            SECTION,
            "opconnect time ÷ mbsync (whole messages)",
            "×",
            agent / full,
        );
        results.record(
            SECTION,
            "opconnect time ÷ mbsync MaxSize 1k",
            "×",
            agent / headers,
        );
        eprintln!(
            "==> IMAP run {}/{}: opconnect {agent:.2} s, mbsync {full:.2} s, mbsync MaxSize 1k {headers:.2} s",
            run + 1,
            cfg.runs
        );
    }
    results.target(
        "initial IMAP sync no slower than mbsync doing the same work (MaxSize 1k: headers + flags)",
        SECTION,
        "opconnect time ÷ mbsync MaxSize 1k",
        |m| m <= 1.0,
    );
    results.target(
        "initial IMAP sync no slower than mbsync as usually set up (whole messages)",
        SECTION,
        "opconnect time ÷ mbsync (whole messages)",
        |m| m <= 1.0,
    );
    Ok(())
}

/// One first sync by `who`; records it unless this is the warm-up; returns its wall time in s.
fn measure(who: Who, messages: usize, proxy: &CountingProxy, results: Option<&mut Results>) -> Result<f64> {
    proxy.take();
    let (wall, cpu, rss_mb) = match who {
        Who::Opconnect => {
            let mut account = AccountSpec::for_user("alice");
            account.imap = Some(proxy.imap_url());
            let mut d = Driver::start(&render_config(&production_settings(), &[account]))?;
            let done = d.wait_synced(&[("alice", "imap")], Duration::from_secs(1800))?;
            let wall = (done - d.started).as_secs_f64();
            // The summaries in the mirror, counted (a folder's `total` is the server's EXISTS).
            let mut mirrored = 0u64;
            for folder in seed::mail_folders() {
                let page = d.call(
                    "mail.messages",
                    json!({"account": "alice", "folder": folder, "limit": 5000}),
                )?;
                mirrored += page["messages"].as_array().map_or(0, |m| m.len() as u64);
            }
            ensure!(
                mirrored == messages as u64,
                "opconnect mirrored {mirrored} of {messages} messages"
            );
            let (_, hwm) = d.memory_kb()?;
            (wall, d.cpu_seconds()?, hwm as f64 / 1024.0)
        }
        Who::MbsyncFull | Who::MbsyncHeaders => {
            let max = matches!(who, Who::MbsyncHeaders).then_some("1k");
            let m = Mbsync::new(proxy.port(), "alice", max)?;
            let run = m.sync()?;
            let stored = m.local_messages();
            ensure!(
                stored == messages,
                "{} stored {stored} messages, expected {messages}",
                who.label()
            );
            (
                run.wall.as_secs_f64(),
                run.cpu.as_secs_f64(),
                run.max_rss_kb as f64 / 1024.0,
            )
        }
    };
    std::thread::sleep(Duration::from_millis(200));
    let traffic = proxy.take();
    if let Some(results) = results {
        let who = who.label();
        results.record(SECTION, &format!("{who} wall time"), "s", wall);
        results.record(SECTION, &format!("{who} CPU time"), "s", cpu);
        results.record(SECTION, &format!("{who} peak RSS"), "MB", rss_mb);
        results.record(SECTION, &format!("{who} commands"), "", traffic.requests as f64);
        results.record(
            SECTION,
            &format!("{who} MB from server"),
            "MB",
            traffic.bytes_down as f64 / MB,
        );
        results.fact(&format!("imap_commands {who}"), json!(traffic.methods_line()));
    }
    Ok(wall)
}
