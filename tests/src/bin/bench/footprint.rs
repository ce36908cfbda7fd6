//! Benchmark 6: what the agent costs while nothing happens. Three accounts (IMAP with IDLE,
//! CalDAV, CardDAV each) with some mail and items are synced. Then, with the production settings
//! (NOOP 20 s where needed, DAV polls every 5 min), /proc gives the agent's resident memory (split
//! into heap and mapped files, mostly the LMDB mirror) and the CPU time it uses over an idle
//! window, and the proxies count the requests it sends.
//!
//! ```text
//!   Dovecot ◀─ proxy ─┐                   synced ×9 ─ settle ─ RSS, utime+stime ─ idle window ─ again
//!   Radicale ◀─ proxy ─┴─ opconnect: alice, bob, alice-2
//! ```
//! The peak RSS of benchmark 1 (VmHWM after the first DAV sync) is recorded there.

use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::json;

use opconnect_tests::config::render_config;
use opconnect_tests::{AccountSpec, Dovecot, Radicale};

use crate::driver::Driver;
use crate::proxy::{CountingProxy, Framing};
use crate::results::Results;
use crate::{Config, production_settings, seed};

pub const SECTION: &str = "6. footprint (3 accounts, idle)";

/// After the last sync, the agent may finish up (listeners entering IDLE) before the window.
const SETTLE: Duration = Duration::from_secs(2);

pub fn run(cfg: &Config, results: &mut Results) -> Result<()> {
    let dovecot = Dovecot::start()?;
    let radicale = Radicale::start()?;
    let folders: Vec<String> = seed::mail_folders().into_iter().take(3).collect();
    let per_folder = (cfg.per_folder / 2).max(50);
    for user in ["alice", "bob"] {
        seed::seed_mail(&dovecot, user, &folders, per_folder)?;
        seed::seed_dav(&radicale, user, cfg.events / 20, cfg.contacts / 20)?;
    }
    results.fact(
        "footprint_data",
        json!({
            "accounts": ["alice", "bob", "alice-2 (alice's data again)"],
            "messages_per_account": per_folder * folders.len(),
            "events_per_account": cfg.events / 20,
            "contacts_per_account": cfg.contacts / 20,
            "idle_window_s": cfg.idle_seconds,
        }),
    );
    let imap = CountingProxy::start(dovecot.imap_port(), Framing::Imap)?;
    let dav = CountingProxy::start(radicale.port(), Framing::Http)?;
    let accounts: Vec<AccountSpec> = [("alice", "alice"), ("bob", "bob"), ("alice", "alice-2")]
        .into_iter()
        .map(|(user, name)| {
            let mut a = AccountSpec::for_user(user).named(name);
            a.imap = Some(imap.imap_url());
            a.caldav = Some(dav.http_url());
            a.carddav = Some(dav.http_url());
            a
        })
        .collect();
    let config = render_config(&production_settings(), &accounts);
    let services: Vec<(&str, &str)> = ["alice", "bob", "alice-2"]
        .into_iter()
        .flat_map(|a| [(a, "imap"), (a, "caldav"), (a, "carddav")])
        .collect();
    let window = Duration::from_secs(cfg.idle_seconds);
    for run in 0..cfg.runs {
        // A `sync` right away: its rounds end after the subscription, whatever the first did.
        let mut d = Driver::launch(&config)?;
        d.call("sync", json!({}))?;
        d.wait_synced(&services, Duration::from_secs(300))?;
        std::thread::sleep(SETTLE);
        let (_, _) = (imap.take(), dav.take());
        let cpu0 = d.cpu_seconds()?;
        let t0 = Instant::now();
        std::thread::sleep(window);
        let cpu = d.cpu_seconds()? - cpu0;
        let elapsed = t0.elapsed().as_secs_f64();
        let (rss, hwm) = d.memory_kb()?;
        let requests = imap.take().requests + dav.take().requests;
        results.record(SECTION, "idle RSS (VmRSS)", "MB", rss as f64 / 1024.0);
        // Mapped files are mostly the LMDB mirror's pages; the rest is heap and stacks.
        let anon = d.status_kb("RssAnon")? as f64 / 1024.0;
        let file = d.status_kb("RssFile")? as f64 / 1024.0;
        results.record(SECTION, "  of which heap and stacks (RssAnon)", "MB", anon);
        results.record(SECTION, "  of which mapped files (RssFile)", "MB", file);
        let (binary, mirror, other) = crate::driver::mapped_kb(d.pid())?;
        for (what, kb) in [
            ("the agent's binary", binary),
            ("the LMDB mirror", mirror),
            ("shared libraries and other files", other),
        ] {
            results.record(SECTION, &format!("    mapped: {what}"), "MB", kb as f64 / 1024.0);
        }
        results.record(
            SECTION,
            "peak RSS while syncing 3 accounts (VmHWM)",
            "MB",
            hwm as f64 / 1024.0,
        );
        results.record(
            SECTION,
            &format!("CPU time over {} s idle", cfg.idle_seconds),
            "ms",
            cpu * 1000.0,
        );
        results.record(
            SECTION,
            "idle CPU (share of one core)",
            "%",
            cpu / elapsed * 100.0,
        );
        results.record(
            SECTION,
            &format!("requests over {} s idle", cfg.idle_seconds),
            "",
            requests as f64,
        );
        eprintln!(
            "==> footprint run {}/{}: RSS {:.1} MB, {:.0} ms CPU in {} s",
            run + 1,
            cfg.runs,
            rss as f64 / 1024.0,
            cpu * 1000.0,
            cfg.idle_seconds
        );
    }
    results.target("idle RSS < 40 MB", SECTION, "idle RSS (VmRSS)", |m| m < 40.0);
    results.target(
        "idle CPU close to zero (< 0.1 % of a core)",
        SECTION,
        "idle CPU (share of one core)",
        |m| m < 0.1,
    );
    Ok(())
}
