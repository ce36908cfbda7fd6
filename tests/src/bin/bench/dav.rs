//! Benchmarks 1 and 2: the first CalDAV/CardDAV sync of a large calendar and address book, and a
//! sync when nothing changed, by opconnect and by vdirsyncer, through the same counting proxy in
//! front of the same Radicale, in the same run.
//!
//! ```text
//!   seed (files) ─▶ Radicale ◀── proxy ◀── opconnect (fresh data dir each run)
//!                                      ◀── vdirsyncer discover + sync (fresh dirs each run)
//!   opconnect: start ─▶ `synced` from caldav and carddav = done; then `sync`, until both
//!              services report `synced` again
//! ```
//! The server is only read, so one seeded Radicale serves every run; the order of the two tools
//! alternates between runs.

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use serde_json::json;

use opconnect_tests::config::render_config;
use opconnect_tests::{AccountSpec, Radicale};

use crate::driver::{Driver, topic};
use crate::proxy::{Counters, CountingProxy, Framing};
use crate::results::Results;
use crate::tools::{ToolRun, Vdirsyncer};
use crate::{Config, MB, production_settings, seed};

pub const INITIAL: &str = "1. initial DAV sync";
pub const NO_CHANGE: &str = "2. no-change DAV sync";

/// Requests after the last `synced` of a round would still be counted within this quiet time.
const QUIET: Duration = Duration::from_millis(300);

pub fn run(cfg: &Config, results: &mut Results) -> Result<()> {
    let radicale = Radicale::start()?;
    let began = Instant::now();
    let (calendar, book, bytes) = seed::seed_dav(&radicale, "alice", cfg.events, cfg.contacts)?;
    eprintln!(
        "==> DAV: seeded {} events and {} contacts ({:.1} MB) into Radicale and warmed its cache in {:.1?}",
        cfg.events,
        cfg.contacts,
        bytes as f64 / MB,
        began.elapsed()
    );
    results.fact(
        "dav_data",
        json!({"events": cfg.events, "contacts": cfg.contacts, "bytes": bytes, "calendar": calendar, "book": book}),
    );
    let proxy = CountingProxy::start(radicale.port(), Framing::Http)?;
    for run in 0..cfg.runs {
        let (agent, tool) = if run % 2 == 0 {
            let a = opconnect(cfg, &proxy, &radicale, results)?;
            (a, vdirsyncer(cfg, &proxy, results, run == 0)?)
        } else {
            let t = vdirsyncer(cfg, &proxy, results, run == 0)?;
            (opconnect(cfg, &proxy, &radicale, results)?, t)
        };
        let ratio = tool.as_secs_f64() / agent.as_secs_f64();
        results.record(INITIAL, "speed-up over vdirsyncer (wall time)", "×", ratio);
        eprintln!(
            "==> DAV run {}/{}: opconnect {agent:.2?}, vdirsyncer {tool:.2?} ({ratio:.1}×)",
            run + 1,
            cfg.runs
        );
    }
    results.target(
        "initial DAV sync ≥ 5× faster than vdirsyncer",
        INITIAL,
        "speed-up over vdirsyncer (wall time)",
        |m| m >= 5.0,
    );
    results.target(
        "no-change sync: 1 request per collection",
        NO_CHANGE,
        "opconnect requests per collection",
        |m| m <= 1.0,
    );
    Ok(())
}

fn record_traffic(results: &mut Results, section: &str, who: &str, c: &Counters) {
    results.record(section, &format!("{who} requests"), "", c.requests as f64);
    results.record(
        section,
        &format!("{who} MB transferred"),
        "MB",
        c.bytes() as f64 / MB,
    );
}

fn record_no_change(results: &mut Results, who: &str, time: Duration, c: &Counters) {
    let ms = time.as_secs_f64() * 1000.0;
    results.record(NO_CHANGE, &format!("{who} time"), "ms", ms);
    results.record(NO_CHANGE, &format!("{who} requests"), "", c.requests as f64);
    let per_collection = c.requests as f64 / 2.0;
    results.record(
        NO_CHANGE,
        &format!("{who} requests per collection"),
        "",
        per_collection,
    );
    results.record(
        NO_CHANGE,
        &format!("{who} KB transferred"),
        "KB",
        c.bytes() as f64 / 1024.0,
    );
    results.fact(&format!("dav_no_change_{who}_requests"), json!(c.methods_line()));
}

/// Radicale's own time for the requests it logged from line `mark` on (its "response status …
/// in N seconds" lines), in ms.
fn server_ms(radicale: &Radicale, mark: usize) -> f64 {
    radicale
        .log()
        .lines()
        .skip(mark)
        .filter_map(crate::link::answer_seconds)
        .sum::<f64>()
        * 1000.0
}

/// One first sync by opconnect, then the no-change syncs; returns the first sync's wall time.
fn opconnect(
    cfg: &Config,
    proxy: &CountingProxy,
    radicale: &Radicale,
    results: &mut Results,
) -> Result<Duration> {
    proxy.take();
    let mut account = AccountSpec::for_user("alice");
    account.caldav = Some(proxy.http_url());
    account.carddav = Some(proxy.http_url());
    let mut settings = production_settings();
    // Only the bench's own `sync` calls may start a round while it counts.
    settings.dav_poll_interval = "1h".into();
    let mut d = Driver::start(&render_config(&settings, &[account]))?;
    let services = [("alice", "caldav"), ("alice", "carddav")];
    let done = d.wait_synced(&services, Duration::from_secs(1800))?;
    let wall = done - d.started;
    std::thread::sleep(QUIET);
    let traffic = proxy.take();
    let added: u64 = d
        .seen
        .iter()
        .filter(|(_, e)| matches!(topic(e), "calendar.changed" | "contacts.changed"))
        .filter_map(|(_, e)| e["added"].as_u64())
        .sum();
    ensure!(
        added == (cfg.events + cfg.contacts) as u64,
        "opconnect mirrored {added} items, expected {}",
        cfg.events + cfg.contacts
    );
    let (_, hwm) = d.memory_kb()?;
    results.record(INITIAL, "opconnect wall time", "s", wall.as_secs_f64());
    record_traffic(results, INITIAL, "opconnect", &traffic);
    results.record(INITIAL, "opconnect CPU time", "s", d.cpu_seconds()?);
    results.record(INITIAL, "opconnect peak RSS (VmHWM)", "MB", hwm as f64 / 1024.0);
    results.fact("dav_initial_opconnect_requests", json!(traffic.methods_line()));

    {
        // The round after the first sync takes each collection's marker (a listing from an
        // empty token, Radicale's O(n)); a stamp is kept once two seconds past its own. Both are
        // one-time costs, recorded apart; then the no-change poll.
        d.drain();
        let t0 = Instant::now();
        d.call("sync", json!({"account": "alice"}))?;
        let done = d.wait_synced(&services, Duration::from_secs(600))?;
        results.record(
            NO_CHANGE,
            "opconnect second round (takes the markers)",
            "ms",
            (done - t0).as_secs_f64() * 1000.0,
        );
        std::thread::sleep(Duration::from_millis(2_200));
        d.drain();
        d.call("sync", json!({"account": "alice"}))?;
        d.wait_synced(&services, Duration::from_secs(600))?;
        std::thread::sleep(QUIET);
        d.drain();
        proxy.take();
        let mark = radicale.log().lines().count();
        let t0 = Instant::now();
        d.call("sync", json!({"account": "alice"}))?;
        let done = d.wait_synced(&services, Duration::from_secs(120))?;
        std::thread::sleep(QUIET);
        let c = proxy.take();
        record_no_change(results, "opconnect", done - t0, &c);
        results.record(
            NO_CHANGE,
            "opconnect: Radicale's time for the poll",
            "ms",
            server_ms(radicale, mark),
        );
        // The poll before stamps asked the home for every collection's sync-token.
        let old = crate::feed::time_listing(radicale, "/alice/", crate::feed::LISTING_TOKEN)?;
        results.record(
            NO_CHANGE,
            "the poll before stamps: sync-token listing alone",
            "ms",
            old.as_secs_f64() * 1000.0,
        );
    }
    Ok(wall)
}

/// One first sync by vdirsyncer (discover + sync), then, if `no_change`, a sync with nothing new
/// (its requests and bytes are the same every run, and it takes about a minute at full size, so
/// it is measured in the first run only); returns the first sync's wall time.
fn vdirsyncer(
    cfg: &Config,
    proxy: &CountingProxy,
    results: &mut Results,
    no_change: bool,
) -> Result<Duration> {
    let v = Vdirsyncer::new(&proxy.http_url(), "alice")?;
    proxy.take();
    let first: ToolRun = v.first_sync()?;
    std::thread::sleep(QUIET);
    let traffic = proxy.take();
    let (events, contacts) = (v.local_items("caldav"), v.local_items("carddav"));
    ensure!(
        (events, contacts) == (cfg.events, cfg.contacts),
        "vdirsyncer stored {events} events and {contacts} contacts, expected {} and {}",
        cfg.events,
        cfg.contacts
    );
    results.record(INITIAL, "vdirsyncer wall time", "s", first.wall.as_secs_f64());
    record_traffic(results, INITIAL, "vdirsyncer", &traffic);
    results.record(INITIAL, "vdirsyncer CPU time", "s", first.cpu.as_secs_f64());
    results.record(
        INITIAL,
        "vdirsyncer peak RSS",
        "MB",
        first.max_rss_kb as f64 / 1024.0,
    );
    results.fact("dav_initial_vdirsyncer_requests", json!(traffic.methods_line()));

    if no_change {
        let again = v.sync()?;
        std::thread::sleep(QUIET);
        let c = proxy.take();
        record_no_change(results, "vdirsyncer", again.wall, &c);
    }
    Ok(first.wall)
}
