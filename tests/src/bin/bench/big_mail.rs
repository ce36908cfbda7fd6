//! Benchmark 9, mail: 100,000 × scale messages in one IMAP folder (Dovecot, INBOX in IDLE),
//! opconnect's first sync against its floor — one `UID FETCH 1:*` of what opconnect stores
//! (flags, size, date, six header fields), read whole by a plain client through the same proxy.
//!
//! ```text
//!   Maildir files + doveadm index (cached) ─▶ Dovecot ◀── proxy ◀─┬─ floor: SELECT, UID FETCH 1:*
//!                                                                 └─ opconnect (imap only)
//!   then: idle window ─▶ mail.messages pages (first, deepest) ─▶ `sync` with nothing new
//!         ─▶ 10 APPENDs ─▶ mail.new (IDLE) ─▶ mail.messages {after_uid} (the "change read")
//! ```
//! Mail has no `items.changes`: what is new since a point is `mail.messages {after_uid}`, and
//! the work the agent does for a change is the folder's sync after IDLE woke it.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use serde_json::json;

use opconnect_tests::config::render_config;
use opconnect_tests::{AccountSpec, Dovecot, ImapProbe};

use crate::big::{
    CHANGES, Figures, REPS, SECTION, after_first_sync, record_samples, record_with_load, thousands,
};
use crate::big_seed;
use crate::driver::{Driver, topic};
use crate::proxy::{CountingProxy, Framing};
use crate::results::{Results, summarize};
use crate::{Config, MB, production_settings};

/// What opconnect's first sync fetches of each message (actors/src/imap/sync.rs with CONDSTORE).
pub const FETCH_ITEMS: &str = "(UID FLAGS RFC822.SIZE INTERNALDATE MODSEQ \
     BODY.PEEK[HEADER.FIELDS (SUBJECT FROM TO CC DATE MESSAGE-ID)])";

pub fn one_size(n: usize, cfg: &Config, results: &mut Results) -> Result<Figures> {
    let dovecot = Dovecot::start()?;
    let began = Instant::now();
    let (count, bytes, cached) = big_seed::seed_big_inbox(&dovecot, "alice", n)?;
    eprintln!(
        "==> big: {count} messages ({:.0} MB) {} in {:.1?}",
        bytes as f64 / MB,
        if cached {
            "copied from the cache"
        } else {
            "seeded and indexed"
        },
        began.elapsed()
    );
    let label = |what: &str| format!("messages {}: {what}", thousands(n));
    let proxy = CountingProxy::start(dovecot.imap_port(), Framing::Imap)?;
    let floor = fetch_floor(proxy.port(), "alice", "alice-pw", &["INBOX"], n)?;
    record_with_load(results, &label("floor: UID FETCH 1:* alone"), "s", floor);

    let mut account = AccountSpec::for_user("alice");
    account.imap = Some(proxy.imap_url());
    let mut d = Driver::launch(&render_config(&production_settings(), &[account]))?;
    let services = [("alice", "imap")];
    let done = d.wait_synced(&services, Duration::from_secs(3600))?;
    let first = (done - d.started).as_secs_f64();
    record_with_load(results, &label("opconnect first sync"), "s", first);
    results.record(
        SECTION,
        &label("first sync ÷ UID FETCH alone"),
        "×",
        first / floor,
    );
    let folders = d.call("mail.folders", json!({"account": "alice"}))?;
    let total = folders
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["path"] == "INBOX")
        .and_then(|f| f["total"].as_u64());
    ensure!(total == Some(n as u64), "INBOX total {total:?}, expected {n}");
    let mut f = after_first_sync(&mut d, &[&proxy], cfg, results, &label(""))?;
    f.size = n;
    f.first_sync_s = first;
    f.floor_s = floor;

    // Pages: the first, and the deepest (the last 200 UIDs; Maildir seeding numbers them 1..n).
    let (mut top, mut deep) = (Vec::new(), Vec::new());
    let deepest = n.saturating_sub(200) as u64;
    for _ in 0..REPS {
        for (after, into) in [(0u64, &mut top), (deepest, &mut deep)] {
            let t = Instant::now();
            let page = d.call(
                "mail.messages",
                json!({"account": "alice", "folder": "INBOX", "after_uid": after, "limit": 200}),
            )?;
            into.push(t.elapsed().as_secs_f64() * 1000.0);
            let got = page["messages"].as_array().map_or(0, Vec::len);
            ensure!(got == 200.min(n), "mail.messages after {after}: {got} messages");
        }
    }
    record_samples(results, &label("mail.messages, first page of 200"), &top);
    record_samples(
        results,
        &label("mail.messages, last page of 200 (after_uid)"),
        &deep,
    );
    f.page_ms = summarize(&deep).median;

    // A sync with nothing new: what every poll or wake-up costs.
    // Also the agent's CPU time per round (utime+stime, 10 ms ticks): less at the load's mercy.
    let (mut idle_sync, mut idle_cpu) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let cpu0 = d.cpu_seconds()?;
        idle_sync.push(crate::big::poll_after_changes(&mut d, "alice", &services)? * 1000.0);
        idle_cpu.push((d.cpu_seconds()? - cpu0) * 1000.0);
    }
    record_samples(
        results,
        &label("sync with nothing new (sync → synced)"),
        &idle_sync,
    );
    record_samples(
        results,
        &label("sync with nothing new: the agent's CPU time"),
        &idle_cpu,
    );
    let floor_poll = no_change_floor(proxy.port(), n)?;
    record_samples(
        results,
        &label("floor: a no-change round by a plain client"),
        &floor_poll,
    );
    results.record(
        SECTION,
        &label("sync with nothing new: load average (1 min)"),
        "",
        crate::big::load_average(),
    );

    // Ten new messages by another client; IDLE wakes the agent, which syncs the folder.
    d.drain();
    let mut probe = ImapProbe::connect(dovecot.imap_port())?;
    probe.login("alice", "alice-pw")?;
    for k in 0..CHANGES {
        let (raw, _) = big_seed::small_message(n + k);
        probe.append("INBOX", &[], &raw)?;
    }
    let appended = Instant::now();
    let mut heard = 0u64;
    while heard < CHANGES as u64 {
        let (_, e) = d
            .wait_event(Duration::from_secs(300), |e| topic(e) == "mail.new")
            .context("waiting for mail.new after 10 APPENDs")?;
        heard += e["count"].as_u64().unwrap_or(0);
    }
    let woke = appended.elapsed().as_secs_f64() * 1000.0;
    let _ = probe.logout();
    record_with_load(
        results,
        &label("10 APPENDs → mail.new (IDLE, then the folder's sync)"),
        "ms",
        woke,
    );
    let mut feed = Vec::new();
    for _ in 0..REPS {
        let t = Instant::now();
        let page = d.call(
            "mail.messages",
            json!({"account": "alice", "folder": "INBOX", "after_uid": n, "limit": 200}),
        )?;
        feed.push(t.elapsed().as_secs_f64() * 1000.0);
        let got = page["messages"].as_array().map_or(0, Vec::len);
        ensure!(got == CHANGES, "mail.messages after the old UIDs: {got} messages");
    }
    record_samples(results, &label("mail.messages {after_uid} of the 10 new"), &feed);
    f.feed_ms = summarize(&feed).median;
    Ok(f)
}

/// LOGIN, then for each folder SELECT and one `UID FETCH 1:* FETCH_ITEMS` read whole, through
/// `port`; the whole pass twice, the second timed. Fails unless `n` messages came in all.
pub fn fetch_floor(port: u16, user: &str, password: &str, folders: &[&str], n: usize) -> Result<f64> {
    let mut took = 0.0;
    for _ in 0..2 {
        let mut probe = ImapProbe::connect(port)?;
        probe.set_timeout(Duration::from_secs(600));
        probe.login(user, password)?;
        let t = Instant::now();
        let mut got = 0;
        for folder in folders {
            probe.command(&format!("SELECT \"{folder}\""))?;
            let lines = probe.command(&format!("UID FETCH 1:* {FETCH_ITEMS}"))?;
            got += lines
                .iter()
                .filter(|l| l.starts_with("* ") && l.contains(" FETCH ("))
                .count();
        }
        took = t.elapsed().as_secs_f64();
        let _ = probe.logout();
        ensure!(got == n, "UID FETCH 1:* gave {got} messages, expected {n}");
    }
    Ok(took)
}

/// What a no-change round of one folder costs the server, asked by a plain client: SELECT with
/// CONDSTORE (RFC 7162 §3.1.8), `UID SEARCH UID next:*`, `UID FETCH 1:next-1 (FLAGS)
/// (CHANGEDSINCE highestmodseq)` — the commands opconnect's round sends. Three passes, in ms.
fn no_change_floor(port: u16, n: usize) -> Result<Vec<f64>> {
    let mut probe = ImapProbe::connect(port)?;
    probe.set_timeout(Duration::from_secs(600));
    probe.login("alice", "alice-pw")?;
    let mut out = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let selected = probe.command("SELECT INBOX (CONDSTORE)")?;
        let modseq: u64 = selected
            .iter()
            .find_map(|l| l.split("[HIGHESTMODSEQ ").nth(1)?.split(']').next()?.parse().ok())
            .context("no HIGHESTMODSEQ in the SELECT answer")?;
        probe.command(&format!("UID SEARCH UID {}:*", n + 1))?;
        probe.command(&format!(
            "UID FETCH 1:{n} (UID FLAGS MODSEQ) (CHANGEDSINCE {modseq})"
        ))?;
        out.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let _ = probe.logout();
    Ok(out)
}
