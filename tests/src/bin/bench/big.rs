//! Benchmark 9 (issue 22, "accounts ten times bigger"): 20,000 contacts with photos in one
//! address book, 100,000 messages in one IMAP folder, 20 accounts — each at a fraction of its
//! size and at full size, so that "flat as the data grows" can be judged as largest ÷ smallest.
//! (50,000 events in one calendar is benchmark 7.)
//!
//! ```text
//!   for part in contacts, mail, accounts:  for scale in --big-scales (default 0.1, 1):
//!     seed (files, cached) ─▶ server ◀── counting proxy ◀── floor: the one request a plain
//!                                                    │           client needs, timed alone
//!                                                    └── opconnect: first sync ─▶ VmHWM, RSS,
//!         RssAnon ─▶ idle window (utime+stime, requests) ─▶ paged read ─▶ 10 changes ─▶ feed read
//! ```
//! `OPCONNECT_BENCH_BIG_PARTS=contacts` (or `messages`, `accounts`, comma-separated) runs only
//! those parts. Every figure is recorded with the 1-minute load average at the time it was taken: the
//! machine is shared, so times are pessimistic and their ratios matter more than their values.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};

use opconnect_tests::config::render_config;
use opconnect_tests::http::HttpRequest;
use opconnect_tests::{AccountSpec, DavServer, Radicale};

use crate::big_seed::{self, Kind};
use crate::driver::{Driver, topic};
use crate::proxy::{CountingProxy, Framing};
use crate::results::{Results, summarize};
use crate::{Config, production_settings};

pub const SECTION: &str = "9. accounts ten times bigger";

/// The issue's full sizes; `--big-scales` gives the fractions measured.
pub const CONTACTS: usize = 20_000;
pub const MESSAGES: usize = 100_000;
pub const ACCOUNTS: usize = 20;

/// Server-side changes before the change-feed read.
pub const CHANGES: usize = 10;
/// Timed repetitions of each read.
pub const REPS: usize = 9;
/// After the first sync, the agent may finish up (listeners entering IDLE) before the window.
const SETTLE: Duration = Duration::from_secs(2);

/// What one part measured at one size (NaN where a figure does not apply).
#[derive(Debug, Clone, Copy)]
pub struct Figures {
    pub size: usize,
    pub first_sync_s: f64,
    pub floor_s: f64,
    pub hwm_mb: f64,
    pub rss_mb: f64,
    pub anon_mb: f64,
    pub idle_cpu_ms: f64,
    pub idle_requests: f64,
    pub page_ms: f64,
    pub feed_ms: f64,
    /// Contacts only: VmHWM and RssAnon after the round after the first sync (the listing from
    /// an empty token, compared with the mirror).
    pub second_hwm_mb: f64,
    pub second_anon_mb: f64,
}

pub fn run(cfg: &Config, results: &mut Results) -> Result<()> {
    type Part = fn(usize, &Config, &mut Results) -> Result<Figures>;
    let parts: [(&str, usize, Part); 3] = [
        ("contacts with photos", CONTACTS, contacts),
        ("messages in one folder", MESSAGES, crate::big_mail::one_size),
        ("accounts", ACCOUNTS, crate::big_accounts::one_size),
    ];
    // `OPCONNECT_BENCH_BIG_PARTS=contacts,mail` runs only those parts (profiling one of them).
    let only = std::env::var("OPCONNECT_BENCH_BIG_PARTS").unwrap_or_default();
    for (what, full, part) in parts {
        if !only.is_empty() && !only.split(',').any(|p| what.starts_with(p.trim())) {
            continue;
        }
        let mut sizes: Vec<usize> = cfg
            .big_scales
            .iter()
            .map(|s| ((full as f64 * s).round() as usize).max(2))
            .collect();
        sizes.dedup();
        let mut figures = Vec::new();
        for n in sizes {
            let t = Instant::now();
            let f = part(n, cfg, results).with_context(|| format!("{n} {what}"))?;
            eprintln!(
                "==> big: {n} {what}: first sync {:.2} s (floor {:.2} s), RssAnon {:.1} MB, \
                 idle {:.0} ms CPU / {} requests, page {:.2} ms, feed {:.2} ms ({:.0?} in all)",
                f.first_sync_s,
                f.floor_s,
                f.anon_mb,
                f.idle_cpu_ms,
                f.idle_requests,
                f.page_ms,
                f.feed_ms,
                t.elapsed()
            );
            figures.push(f);
        }
        ratios(what, &figures, results);
    }
    results.note(
        "Benchmark 9 runs once per size whatever --runs says; each read is the median of its \
         repetitions. Load averages are recorded beside the figures (the machine is shared).",
    );
    Ok(())
}

/// Largest ÷ smallest of each figure of one part.
fn ratios(what: &str, figures: &[Figures], results: &mut Results) {
    let (Some(small), Some(large)) = (figures.first(), figures.last()) else {
        return;
    };
    if figures.len() < 2 {
        return;
    }
    let growth = large.size as f64 / small.size as f64;
    let name = |figure: &str| {
        format!(
            "{what}: {figure}, {} ÷ {}",
            thousands(large.size),
            thousands(small.size)
        )
    };
    results.record(SECTION, &name("size"), "×", growth);
    let pairs = [
        ("first sync", large.first_sync_s / small.first_sync_s),
        ("floor", large.floor_s / small.floor_s),
        (
            "first sync ÷ floor",
            (large.first_sync_s / large.floor_s) / (small.first_sync_s / small.floor_s),
        ),
        ("peak RSS (VmHWM)", large.hwm_mb / small.hwm_mb),
        ("RSS after first sync", large.rss_mb / small.rss_mb),
        ("RssAnon after first sync", large.anon_mb / small.anon_mb),
        (
            "peak RSS after the second round",
            large.second_hwm_mb / small.second_hwm_mb,
        ),
        (
            "RssAnon after the second round",
            large.second_anon_mb / small.second_anon_mb,
        ),
        ("paged read", large.page_ms / small.page_ms),
        ("change-feed read", large.feed_ms / small.feed_ms),
    ];
    for (figure, ratio) in pairs {
        if ratio.is_finite() {
            results.record(SECTION, &name(figure), "×", ratio);
        }
    }
}

/// 20,000 × `scale` contacts with photos in one Radicale address book, CardDAV only.
fn contacts(n: usize, cfg: &Config, results: &mut Results) -> Result<Figures> {
    let radicale = Radicale::start()?;
    let book = "/alice/photos/".to_string();
    let began = Instant::now();
    let cached = big_seed::radicale_cached(
        &radicale,
        &format!("alice-photos-{n}"),
        std::slice::from_ref(&book),
        || {
            big_seed::write_collection(
                &radicale,
                "alice",
                "photos",
                Kind::Book,
                (0..n).map(big_seed::contact_with_photo),
            )
            .map(|_| ())
        },
    )?;
    let bytes: usize = (0..n).map(|i| big_seed::contact_with_photo(i).1.len()).sum();
    eprintln!(
        "==> big: {n} contacts with photos ({:.0} MB) {} in {:.1?}",
        bytes as f64 / crate::MB,
        if cached { "copied from the cache" } else { "seeded" },
        began.elapsed()
    );
    let label = |what: &str| format!("contacts {}: {what}", thousands(n));
    let proxy = CountingProxy::start(radicale.port(), Framing::Http)?;
    let floor = report_floor(
        proxy.port(),
        "alice",
        "alice-pw",
        &book,
        ADDRESSBOOK_QUERY,
        "BEGIN:VCARD",
        n,
    )?;
    record_with_load(
        results,
        &label("floor: addressbook-query REPORT alone"),
        "s",
        floor,
    );

    let mut account = AccountSpec::for_user("alice");
    account.carddav = Some(proxy.http_url());
    let mut d = Driver::launch(&render_config(&production_settings(), &[account]))?;
    let services = [("alice", "carddav")];
    let done = d.wait_synced(&services, Duration::from_secs(3600))?;
    let first = (done - d.started).as_secs_f64();
    record_with_load(results, &label("opconnect first sync"), "s", first);
    results.record(
        SECTION,
        &label("first sync ÷ addressbook-query alone"),
        "×",
        first / floor,
    );
    let (added, cursor) = changed_events(&d, "contacts.changed", &book);
    ensure!(
        added == n as u64,
        "opconnect mirrored {added} cards, expected {n}"
    );
    let cursor = cursor.context("no cursor in contacts.changed")?;
    let mut f = after_first_sync(&mut d, &[&proxy], cfg, results, &label(""))?;
    f.size = n;
    f.first_sync_s = first;
    f.floor_s = floor;

    // The round after the first sync lists the book from an empty token and compares it with
    // the mirror (the first sync was the query alone): its time and memory.
    let cpu0 = d.cpu_seconds()?;
    let second = poll_after_changes(&mut d, "alice", &services)?;
    let cpu = (d.cpu_seconds()? - cpu0) * 1000.0;
    results.record(
        SECTION,
        &label("second round: the agent's CPU time (utime+stime)"),
        "ms",
        cpu,
    );
    record_with_load(
        results,
        &label("second round: the listing from an empty token (sync → synced)"),
        "s",
        second,
    );
    let (_, hwm) = d.memory_kb()?;
    let anon = d.status_kb("RssAnon")?;
    f.second_hwm_mb = hwm as f64 / 1024.0;
    f.second_anon_mb = anon as f64 / 1024.0;
    results.record(
        SECTION,
        &label("peak RSS after the second round (VmHWM)"),
        "MB",
        f.second_hwm_mb,
    );
    results.record(
        SECTION,
        &label("RssAnon after the second round"),
        "MB",
        f.second_anon_mb,
    );

    // Paged reads: the first page and the one after it.
    let page = json!({"account": "alice", "book": book, "limit": 200});
    let (first_page, next_page) = paged_reads(&mut d, "contacts.items", page)?;
    record_samples(results, &label("contacts.items, first page of 200"), &first_page);
    record_samples(results, &label("contacts.items, next page (cursor)"), &next_page);
    f.page_ms = summarize(&first_page).median;

    // Ten changes by another client, spread over the book, then one poll.
    for k in 0..CHANGES {
        let (uid, vcf) = big_seed::contact_with_photo(k * n / CHANGES);
        let vcf = vcf.replacen("\r\nFN:", "\r\nFN:changed ", 1);
        radicale
            .http()
            .put_contact("alice", &book, &uid, &vcf)
            .with_context(|| format!("changing {uid}"))?;
    }
    let poll = poll_after_changes(&mut d, "alice", &services)?;
    record_with_load(
        results,
        &label("sync after 10 changes (sync → synced)"),
        "s",
        poll,
    );
    let feed = feed_reads(&mut d, "alice", &book, &cursor)?;
    record_samples(results, &label("items.changes after 10 changes"), &feed);
    f.feed_ms = summarize(&feed).median;
    Ok(f)
}

/// RFC 6352 §8.6 with an empty filter (§10.5): every card with its data, as the agent asks.
const ADDRESSBOOK_QUERY: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<C:addressbook-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav"><D:prop><D:getetag/><C:address-data/></D:prop><C:filter/></C:addressbook-query>"#;

/// RFC 4791 §7.8: every event of a calendar with its data.
pub const CALENDAR_QUERY: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><D:getetag/><C:calendar-data/></D:prop><C:filter><C:comp-filter name="VCALENDAR"/></C:filter></C:calendar-query>"#;

/// One REPORT `body` on `collection` through `port`, asked twice; the second is timed (so it
/// sees the server as warm as the agent will). Fails unless it carried `n` items (`marker`).
pub fn report_floor(
    port: u16,
    user: &str,
    password: &str,
    collection: &str,
    body: &str,
    marker: &str,
    n: usize,
) -> Result<f64> {
    let mut took = Duration::ZERO;
    for _ in 0..2 {
        let t = Instant::now();
        let r = HttpRequest::new("REPORT", collection)
            .auth(user, password)
            .header("Depth", "1")
            .header("Content-Type", "application/xml; charset=utf-8")
            .body(body.as_bytes())
            .send_within(port, Duration::from_secs(900))?;
        took = t.elapsed();
        ensure!(r.status == 207, "REPORT {collection}: HTTP {}", r.status);
        let got = r.text().matches(marker).count();
        ensure!(got >= n, "REPORT {collection} carried {got} items, expected {n}");
    }
    Ok(took.as_secs_f64())
}

/// Memory after the first sync, then an idle window: CPU used and requests sent.
pub fn after_first_sync(
    d: &mut Driver,
    proxies: &[&CountingProxy],
    cfg: &Config,
    results: &mut Results,
    label: &str,
) -> Result<Figures> {
    let (rss, hwm) = d.memory_kb()?;
    let anon = d.status_kb("RssAnon")?;
    let mb = |kb: u64| kb as f64 / 1024.0;
    results.record(
        SECTION,
        &format!("{label}peak RSS during first sync (VmHWM)"),
        "MB",
        mb(hwm),
    );
    results.record(SECTION, &format!("{label}RSS after first sync"), "MB", mb(rss));
    results.record(SECTION, &format!("{label}  of which RssAnon"), "MB", mb(anon));
    std::thread::sleep(SETTLE);
    for p in proxies {
        p.take();
    }
    let cpu0 = d.cpu_seconds()?;
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(cfg.idle_seconds));
    let cpu = (d.cpu_seconds()? - cpu0) * 1000.0;
    let elapsed = t0.elapsed().as_secs_f64();
    let requests: u64 = proxies.iter().map(|p| p.take().requests).sum();
    let window = cfg.idle_seconds;
    record_with_load(
        results,
        &format!("{label}CPU time over {window} s idle"),
        "ms",
        cpu,
    );
    results.record(
        SECTION,
        &format!("{label}idle CPU (share of one core)"),
        "%",
        cpu / 1000.0 / elapsed * 100.0,
    );
    results.record(
        SECTION,
        &format!("{label}requests over {window} s idle"),
        "",
        requests as f64,
    );
    Ok(Figures {
        size: 0,
        first_sync_s: f64::NAN,
        floor_s: f64::NAN,
        hwm_mb: mb(hwm),
        rss_mb: mb(rss),
        anon_mb: mb(anon),
        idle_cpu_ms: cpu,
        idle_requests: requests as f64,
        page_ms: f64::NAN,
        feed_ms: f64::NAN,
        second_hwm_mb: f64::NAN,
        second_anon_mb: f64::NAN,
    })
}

/// The sum of `added` of the `topic` events of `collection`, and the last one's cursor.
pub fn changed_events(d: &Driver, topic_name: &str, collection: &str) -> (u64, Option<String>) {
    let changed: Vec<&Value> = d
        .seen
        .iter()
        .map(|(_, e)| e)
        .filter(|e| topic(e) == topic_name && e["collection"] == collection)
        .collect();
    let added = changed.iter().filter_map(|e| e["added"].as_u64()).sum();
    let cursor = changed
        .last()
        .and_then(|e| e["cursor"].as_str())
        .map(str::to_owned);
    (added, cursor)
}

/// `method` with `params` (a first page, `limit` set) [`REPS`] times, each followed by the page
/// after it when there is one; milliseconds of both.
pub fn paged_reads(d: &mut Driver, method: &str, params: Value) -> Result<(Vec<f64>, Vec<f64>)> {
    let (mut first, mut next) = (Vec::new(), Vec::new());
    for _ in 0..REPS {
        let t = Instant::now();
        let a = d.call(method, params.clone())?;
        first.push(ms(t));
        let items = a["items"].as_array().map_or(0, Vec::len);
        ensure!(items > 0, "{method}: an empty first page");
        if a["more"] == true {
            let mut again = params.clone();
            again["cursor"] = a["cursor"].clone();
            let t = Instant::now();
            let b = d.call(method, again)?;
            next.push(ms(t));
            ensure!(
                b["items"].as_array().is_some_and(|i| !i.is_empty()),
                "{method}: the second page is empty"
            );
        }
    }
    Ok((first, next))
}

/// `sync` of `account` after server-side changes, until every service of it said `synced`.
pub fn poll_after_changes(d: &mut Driver, account: &str, services: &[(&str, &str)]) -> Result<f64> {
    d.drain();
    let t = Instant::now();
    d.call("sync", json!({"account": account}))?;
    d.wait_synced(services, Duration::from_secs(900))?;
    Ok(t.elapsed().as_secs_f64())
}

/// `items.changes` from `cursor`, [`REPS`] times; each must hold exactly the [`CHANGES`] items.
pub fn feed_reads(d: &mut Driver, account: &str, collection: &str, cursor: &str) -> Result<Vec<f64>> {
    let mut out = Vec::new();
    for _ in 0..REPS {
        let t = Instant::now();
        let a = d.call(
            "items.changes",
            json!({"account": account, "collection": collection, "cursor": cursor, "limit": 200}),
        )?;
        out.push(ms(t));
        let items = a["items"].as_array().map_or(0, Vec::len);
        ensure!(
            items == CHANGES && a["more"] == false && a["reset"] != true,
            "items.changes gave {items} items (more {}, reset {}), expected {CHANGES}",
            a["more"],
            a["reset"]
        );
    }
    Ok(out)
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

pub fn record_samples(results: &mut Results, name: &str, samples: &[f64]) {
    for s in samples {
        results.record(SECTION, name, "ms", *s);
    }
}

/// Records `value` and, beside it, the 1-minute load average at this moment.
pub fn record_with_load(results: &mut Results, name: &str, unit: &str, value: f64) {
    results.record(SECTION, name, unit, value);
    results.record(
        SECTION,
        &format!("{name}: load average (1 min)"),
        "",
        load_average(),
    );
}

/// The 1-minute load average (proc(5), /proc/loadavg).
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// `20000` → `20,000`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_well() {
        assert_eq!(thousands(2), "2");
        assert_eq!(thousands(2_000), "2,000");
        assert_eq!(thousands(100_000), "100,000");
    }
}
