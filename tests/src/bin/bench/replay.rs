//! Benchmark 5: replay of journaled writes made offline. The account is paused (no network), a
//! mix of mail, calendar and contact writes goes into the journal, then `resume` sends them; the
//! clock runs from `resume` until no operation is pending.
//!
//! ```text
//!   Dovecot ◀─ proxy (IMAP) ─┐
//!   Radicale ◀─ proxy (HTTP) ─┴─ opconnect ── pause ─ 1,000 writes (journal) ─ resume ═▶ pending 0
//!   baseline: pause + resume with an empty journal (reconnect + pull), counted the same way
//! ```
//! Requests per operation are given twice: everything sent after `resume`, and that minus the
//! baseline, i.e. what the operations themselves cost (including the pull that confirms them).
//! The floor (replay_floor.rs) is the same batch done by a plain sequential script through the
//! same proxies, in the same run; the ratios are opconnect's time and requests over the script's.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use base64::Engine;
use serde_json::{Value, json};

use opconnect_tests::config::render_config;
use opconnect_tests::{AccountSpec, Dovecot, Radicale};

use crate::driver::{Driver, topic};
use crate::proxy::{CountingProxy, Framing};
use crate::results::Results;
use crate::{Config, production_settings, seed};

pub const SECTION: &str = "5. replay of offline writes";

const SERVICES: [(&str, &str); 3] = [("alice", "imap"), ("alice", "caldav"), ("alice", "carddav")];

/// How a batch of `n` operations is made up, per thousand.
const MIX: [(Kind, usize); 10] = [
    (Kind::Flag, 250),
    (Kind::Move, 100),
    (Kind::DeleteMail, 100),
    (Kind::Append, 100),
    (Kind::CreateEvent, 150),
    (Kind::UpdateEvent, 50),
    (Kind::DeleteEvent, 50),
    (Kind::CreateContact, 100),
    (Kind::UpdateContact, 50),
    (Kind::DeleteContact, 50),
];

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Flag,
    Move,
    DeleteMail,
    Append,
    CreateEvent,
    UpdateEvent,
    DeleteEvent,
    CreateContact,
    UpdateContact,
    DeleteContact,
}

/// How many operations of each kind a batch of `n` has (the rest goes to flags).
pub(crate) fn counts(n: usize) -> Vec<(Kind, usize)> {
    let mut out: Vec<(Kind, usize)> = MIX.iter().map(|(k, per)| (*k, n * per / 1000)).collect();
    let made: usize = out.iter().map(|(_, c)| c).sum();
    out[0].1 += n - made;
    out
}

/// How many operations of `kind` the mix has.
pub(crate) fn count_of(mix: &[(Kind, usize)], kind: Kind) -> usize {
    mix.iter().find(|(k, _)| *k == kind).map_or(0, |(_, c)| *c)
}

/// The messages the mail half of `mix` writes to, taken from `messages` (oldest first) in the
/// order every writer of the bench takes them: `(flagged, moved, deleted)`.
pub(crate) fn mail_targets<T>(
    mut messages: impl Iterator<Item = T>,
    mix: &[(Kind, usize)],
) -> Result<(Vec<T>, Vec<T>, Vec<T>)> {
    let mut take = |kind: Kind| -> Result<Vec<T>> {
        let n = count_of(mix, kind);
        let v: Vec<T> = messages.by_ref().take(n).collect();
        ensure!(
            v.len() == n,
            "too few messages for the mix ({kind:?}: {} of {n})",
            v.len()
        );
        Ok(v)
    };
    Ok((take(Kind::Flag)?, take(Kind::Move)?, take(Kind::DeleteMail)?))
}

pub fn run(cfg: &Config, results: &mut Results) -> Result<()> {
    let mix: Vec<String> = counts(cfg.replay_ops)
        .iter()
        .map(|(k, c)| format!("{k:?} {c}"))
        .collect();
    results.fact("replay_mix", json!(mix.join(", ")));
    for run in 0..cfg.runs {
        let (ops_per_s, per_op) = once(cfg, results)?;
        eprintln!(
            "==> replay run {}/{}: {ops_per_s:.0} ops/s, {per_op:.2} requests per op",
            run + 1,
            cfg.runs
        );
    }
    Ok(())
}

/// One run on fresh servers; returns (ops/s, requests per op).
fn once(cfg: &Config, results: &mut Results) -> Result<(f64, f64)> {
    let n = cfg.replay_ops;
    let wanted = |k: Kind| counts(n).iter().find(|(c, _)| *c == k).map_or(0, |(_, c)| *c);
    let dovecot = Dovecot::start()?;
    let radicale = Radicale::start()?;
    let inbox = wanted(Kind::Flag) + wanted(Kind::Move) + wanted(Kind::DeleteMail) + 50;
    let events = wanted(Kind::UpdateEvent) + wanted(Kind::DeleteEvent) + 50;
    let contacts = wanted(Kind::UpdateContact) + wanted(Kind::DeleteContact) + 50;
    seed::seed_mail(&dovecot, "alice", &["INBOX".to_string()], inbox)?;
    let (calendar, book, _) = seed::seed_dav(&radicale, "alice", events, contacts)?;
    let imap = CountingProxy::start(dovecot.imap_port(), Framing::Imap)?;
    let dav = CountingProxy::start(radicale.port(), Framing::Http)?;
    let mut account = AccountSpec::for_user("alice");
    account.imap = Some(imap.imap_url());
    account.caldav = Some(dav.http_url());
    account.carddav = Some(dav.http_url());
    // The first sync is not timed here: on a quiet machine it can end before the bench has
    // subscribed, so a `sync` asked after subscribing gives every service's `synced` to wait for.
    let mut d = Driver::launch(&render_config(&production_settings(), &[account]))?;
    d.call("sync", json!({"account": "alice"}))?;
    d.wait_synced(&SERVICES, Duration::from_secs(120))?;

    // Baseline: reconnect and pull with nothing to replay.
    d.call("pause", json!({"account": "alice"}))?;
    d.drain();
    let (_, _) = (imap.take(), dav.take());
    d.call("resume", json!({"account": "alice"}))?;
    d.wait_synced(&SERVICES, Duration::from_secs(120))?;
    std::thread::sleep(Duration::from_millis(300));
    let baseline = imap.take().requests + dav.take().requests;

    d.call("pause", json!({"account": "alice"}))?;
    let began = Instant::now();
    journal(&mut d, n, &calendar, &book, wanted)?;
    let journaled = began.elapsed();
    let pending = pending_ops(&mut d)?;
    ensure!(pending == n as u64, "{pending} operations pending, expected {n}");

    d.drain();
    let (_, _) = (imap.take(), dav.take());
    let t0 = Instant::now();
    d.call("resume", json!({"account": "alice"}))?;
    let deadline = t0 + Duration::from_secs(600);
    while pending_ops(&mut d)? > 0 {
        if Instant::now() > deadline {
            bail!("operations still pending after 10 minutes");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let replayed = t0.elapsed();
    d.wait_synced(&SERVICES, Duration::from_secs(120))?;
    std::thread::sleep(Duration::from_millis(300));
    let (i, h) = (imap.take(), dav.take());
    let total = i.requests + h.requests;
    let failed = failures(&mut d);
    ensure!(failed == 0, "{failed} operations failed during replay");

    let ops_per_s = n as f64 / replayed.as_secs_f64();
    let per_op = total as f64 / n as f64;
    results.record(SECTION, "operations replayed per second", "ops/s", ops_per_s);
    results.record(SECTION, "replay wall time", "s", replayed.as_secs_f64());
    results.record(SECTION, "requests per operation (all)", "", per_op);
    results.record(
        SECTION,
        "requests per operation (minus reconnect + pull baseline)",
        "",
        total.saturating_sub(baseline) as f64 / n as f64,
    );
    results.record(
        SECTION,
        "baseline requests (reconnect + pull)",
        "",
        baseline as f64,
    );
    results.record(
        SECTION,
        "writes journaled offline per second",
        "ops/s",
        n as f64 / journaled.as_secs_f64(),
    );
    results.fact("replay_imap_commands", json!(i.methods_line()));
    results.fact("replay_dav_requests", json!(h.methods_line()));
    drop(d);

    // The floor, on fresh servers, right after.
    let floor = crate::replay_floor::run(&counts(n))?;
    results.record(
        SECTION,
        "plain script: operations per second",
        "ops/s",
        n as f64 / floor.seconds,
    );
    results.record(
        SECTION,
        "plain script: requests per operation",
        "",
        floor.requests as f64 / n as f64,
    );
    results.record(
        SECTION,
        "replay time / plain script time",
        "×",
        replayed.as_secs_f64() / floor.seconds,
    );
    results.record(
        SECTION,
        "replay requests / plain script requests",
        "×",
        total as f64 / floor.requests as f64,
    );
    results.record(SECTION, "load average (1 min) at the end", "", load_average());
    Ok((ops_per_s, per_op))
}

/// The 1-minute load average, recorded beside the figures (the machine is shared).
pub(crate) fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}

pub(crate) fn pending_ops(d: &mut Driver) -> Result<u64> {
    let status = d.call("status", json!({}))?;
    status["accounts"][0]["pending_ops"]
        .as_u64()
        .context("status without pending_ops")
}

/// `op.failed` events seen so far.
pub(crate) fn failures(d: &mut Driver) -> usize {
    let mut n = 0;
    while let Ok((_, e)) = d.wait_event(Duration::from_millis(50), |e| topic(e) == "op.failed") {
        eprintln!("    op.failed: {e}");
        n += 1;
    }
    n
}

/// Makes the batch of writes while the account is paused.
pub(crate) fn journal(
    d: &mut Driver,
    n: usize,
    calendar: &str,
    book: &str,
    wanted: impl Fn(Kind) -> usize,
) -> Result<()> {
    let list = d.call(
        "mail.messages",
        json!({"account": "alice", "folder": "INBOX", "limit": 100_000}),
    )?;
    let uids: Vec<u64> = list["messages"]
        .as_array()
        .context("mail.messages")?
        .iter()
        .filter_map(|m| m["uid"].as_u64())
        .collect();
    let items =
        |d: &mut Driver, method: &str, key: &str, href: &str| -> Result<Vec<(String, String, String)>> {
            let list = d.call(method, json!({"account": "alice", key: href}))?;
            Ok(list
                .as_array()
                .context(method.to_string())?
                .iter()
                .map(|i| {
                    let s = |k: &str| i[k].as_str().unwrap_or_default().to_string();
                    (
                        s("href"),
                        s("etag"),
                        s(if key == "calendar" { "ics" } else { "vcf" }),
                    )
                })
                .collect())
        };
    let events = items(d, "calendar.items", "calendar", calendar)?;
    let contacts = items(d, "contacts.items", "book", book)?;
    let mut uid = uids.iter();
    let mut event = events.iter();
    let mut contact = contacts.iter();
    let mut made = 0;
    for (kind, count) in counts(n) {
        ensure!(count == wanted(kind));
        for k in 0..count {
            let p = match kind {
                Kind::Flag => (
                    "mail.flag",
                    json!({"folder": "INBOX", "uids": [take(&mut uid)?], "add": ["\\Flagged", "$Bench"]}),
                ),
                Kind::Move => (
                    "mail.move",
                    json!({"folder": "INBOX", "uids": [take(&mut uid)?], "to": "Archive"}),
                ),
                Kind::DeleteMail => (
                    "mail.delete",
                    json!({"folder": "INBOX", "uids": [take(&mut uid)?]}),
                ),
                Kind::Append => {
                    let raw = format!(
                        "From: alice@localhost\r\nTo: bob@localhost\r\nSubject: offline {k}\r\n\
                         Message-ID: <replay-{k}-{}@localhost>\r\n\r\nwritten offline\r\n",
                        std::process::id()
                    );
                    let raw = base64::engine::general_purpose::STANDARD.encode(raw);
                    (
                        "mail.append",
                        json!({"folder": "Sent", "raw": raw, "flags": ["\\Seen"]}),
                    )
                }
                Kind::CreateEvent => (
                    "calendar.put",
                    json!({"calendar": calendar, "ics": seed::event(900_000 + k).1}),
                ),
                Kind::UpdateEvent => {
                    let (href, etag, ics) = take(&mut event)?;
                    let ics = ics.replacen("SUMMARY:", "SUMMARY:moved ", 1);
                    (
                        "calendar.put",
                        json!({"calendar": calendar, "href": href, "etag": etag, "ics": ics}),
                    )
                }
                Kind::DeleteEvent => {
                    let (href, etag, _) = take(&mut event)?;
                    ("calendar.delete", json!({"href": href, "etag": etag}))
                }
                Kind::CreateContact => (
                    "contacts.put",
                    json!({"book": book, "vcf": seed::contact(900_000 + k).1}),
                ),
                Kind::UpdateContact => {
                    let (href, etag, vcf) = take(&mut contact)?;
                    let vcf = vcf.replacen("NOTE:", "NOTE:updated ", 1);
                    (
                        "contacts.put",
                        json!({"book": book, "href": href, "etag": etag, "vcf": vcf}),
                    )
                }
                Kind::DeleteContact => {
                    let (href, etag, _) = take(&mut contact)?;
                    ("contacts.delete", json!({"href": href, "etag": etag}))
                }
            };
            let (method, mut params): (&str, Value) = p;
            params["account"] = json!("alice");
            d.call(method, params)
                .with_context(|| format!("{method} (operation {made})"))?;
            made += 1;
        }
    }
    ensure!(made == n);
    Ok(())
}

/// The next seeded item for an operation.
fn take<'a, T: Clone + 'a>(it: &mut impl Iterator<Item = &'a T>) -> Result<T> {
    it.next()
        .cloned()
        .context("seeded too few items for the operations")
}
