//! `bench`: opconnect against the tools users would pick instead (issue 12), on private servers
//! seeded for the purpose, run by `scripts/bench`; see BENCHMARKS.md for the method and results.
//!
//! ```text
//!   args ─▶ Config ─▶ 1+2 dav ─▶ 3 imap ─▶ 4 latency ─▶ 5 replay ─▶ 6 footprint ─▶ 7 feed
//!                     ─▶ 8 link ─▶ 9 big ─▶ 10 floors ─▶ linkreplay (8d, 5b) ─▶ linkservers (8e)
//!                       └────────────────── Results ──────────────────┘─▶ table (stdout) + JSON
//! ```
//!
//! ```text
//! bench [--runs N] [--quick] [--only dav,imap,latency,replay,footprint,feed,link,big,floors,
//!                          linkreplay,linkservers]
//!       [--out FILE] [--idle-seconds N] [--latency-messages N] [--replay-ops N]
//!       [--feed-sizes N,N,..] [--rtt-ms N] [--mbit N] [--big-scales F,F,..] [--floor-events N]
//! ```
//! The `opconnect` binary is `$OPCONNECT_BIN`, else the one next to this executable.

mod big;
mod big_accounts;
mod big_mail;
mod big_seed;
mod dav;
mod driver;
mod feed;
mod feed_first;
mod floors;
mod footprint;
mod imap;
mod latency;
mod link;
mod link_mail;
mod link_replay;
mod link_servers;
mod proxy;
mod rawlog;
mod replay;
mod replay_floor;
mod replay_mbsync;
mod replay_script;
mod replay_vdirsyncer;
mod results;
mod seed;
mod tools;

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::json;

use opconnect_tests::AgentSettings;

use crate::results::Results;
use crate::tools::{package_version, version_of};

/// Bytes in a megabyte as the tables show them (MiB).
pub const MB: f64 = 1024.0 * 1024.0;

const SECTIONS: [&str; 11] = [
    "dav",
    "imap",
    "latency",
    "replay",
    "footprint",
    "feed",
    "link",
    "big",
    "floors",
    "linkreplay",
    "linkservers",
];

/// What to run and how big.
#[derive(Debug, Clone)]
pub struct Config {
    pub runs: usize,
    pub quick: bool,
    pub only: Vec<String>,
    pub out: PathBuf,
    pub events: usize,
    pub contacts: usize,
    /// Messages in each of the ten folders of benchmark 3.
    pub per_folder: usize,
    pub latency_messages: usize,
    pub noop_interval_ms: u64,
    pub replay_ops: usize,
    pub idle_seconds: u64,
    /// Calendar sizes of benchmark 7 (reads as the calendar grows), smallest first.
    pub feed_sizes: Vec<usize>,
    /// Events per server in benchmark 10 (`floors`).
    pub floor_events: usize,
    /// Benchmark 8's line: round trip in ms and Mbit/s each way (0: uncapped).
    pub link_rtt_ms: u64,
    pub link_mbit: f64,
    /// Fractions of benchmark 9's full sizes (20,000 contacts, 100,000 messages, 20 accounts).
    pub big_scales: Vec<f64>,
}

impl Config {
    /// The issue's sizes with 3 runs; `--quick` shrinks everything to a smoke test of the method.
    fn from_args(args: &[String]) -> Result<Config> {
        let quick = args.iter().any(|a| a == "--quick");
        let mut c = if quick {
            Config {
                runs: 1,
                quick,
                only: Vec::new(),
                out: PathBuf::from("bench-results/quick.json"),
                events: 1_000,
                contacts: 500,
                per_folder: 200,
                latency_messages: 20,
                noop_interval_ms: 250,
                replay_ops: 100,
                idle_seconds: 10,
                feed_sizes: vec![500, 2_000],
                floor_events: 300,
                link_rtt_ms: 50,
                link_mbit: 20.0,
                big_scales: vec![0.01, 0.05],
            }
        } else {
            Config {
                runs: 3,
                quick,
                only: Vec::new(),
                out: PathBuf::from("bench-results/latest.json"),
                events: 10_000,
                contacts: 5_000,
                per_folder: 2_000,
                latency_messages: 100,
                noop_interval_ms: 250,
                replay_ops: 1_000,
                idle_seconds: 60,
                feed_sizes: vec![1_000, 5_000, 20_000, 50_000],
                floor_events: 2_000,
                link_rtt_ms: 50,
                link_mbit: 20.0,
                big_scales: vec![0.1, 1.0],
            }
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut value = || it.next().with_context(|| format!("{arg} needs a value"));
            match arg.as_str() {
                "--quick" => {}
                "--runs" => c.runs = value()?.parse().context("--runs")?,
                "--out" => c.out = PathBuf::from(value()?),
                "--only" => c.only = value()?.split(',').map(str::to_owned).collect(),
                "--idle-seconds" => c.idle_seconds = value()?.parse().context("--idle-seconds")?,
                "--latency-messages" => {
                    c.latency_messages = value()?.parse().context("--latency-messages")?
                }
                "--replay-ops" => c.replay_ops = value()?.parse().context("--replay-ops")?,
                "--feed-sizes" => {
                    c.feed_sizes = value()?
                        .split(',')
                        .map(|n| n.replace('_', "").parse())
                        .collect::<Result<_, _>>()
                        .context("--feed-sizes")?
                }
                "--floor-events" => {
                    c.floor_events = value()?.replace('_', "").parse().context("--floor-events")?
                }
                "--rtt-ms" => c.link_rtt_ms = value()?.parse().context("--rtt-ms")?,
                "--mbit" => c.link_mbit = value()?.parse().context("--mbit")?,
                "--big-scales" => {
                    c.big_scales = value()?
                        .split(',')
                        .map(str::parse)
                        .collect::<Result<_, _>>()
                        .context("--big-scales")?
                }
                "-h" | "--help" => {
                    println!("{}", usage());
                    std::process::exit(0);
                }
                other => bail!("unknown argument {other:?}\n{}", usage()),
            }
        }
        if let Some(bad) = c.only.iter().find(|s| !SECTIONS.contains(&s.as_str())) {
            bail!("--only: unknown section {bad:?} (known: {})", SECTIONS.join(", "));
        }
        if c.runs == 0 {
            bail!("--runs must be at least 1");
        }
        Ok(c)
    }

    fn wants(&self, section: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|s| s == section)
    }
}

fn usage() -> String {
    "usage: bench [--runs N] [--quick] [--only dav,imap,latency,replay,footprint,feed,link,big,floors,\n\
     \x20            linkreplay,linkservers]\n\
     \x20            [--out FILE] [--idle-seconds N] [--latency-messages N] [--replay-ops N]\n\
     \x20            [--feed-sizes N,N,..] [--rtt-ms N] [--mbit N] [--big-scales F,F,..]\n\
     \x20            [--floor-events N]"
        .into()
}

/// The agent settings a user gets by default (INTERFACE §3), which every benchmark starts from.
pub fn production_settings() -> AgentSettings {
    AgentSettings {
        noop_interval: "20s".into(),
        idle_renew: "25m".into(),
        dav_poll_interval: "5m".into(),
        conflict_policy: "server-wins".into(),
        backoff_max: None,
        connect_timeout: None,
        imap_connections: None,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = run(&args) {
        eprintln!("bench failed: {e:#}");
        std::process::exit(1);
    }
}

fn run(args: &[String]) -> Result<()> {
    let cfg = Config::from_args(args)?;
    let began = Instant::now();
    let mut results = Results::default();
    describe(&cfg, &mut results);
    type Section = fn(&Config, &mut Results) -> Result<()>;
    let sections: [(&str, Section); 11] = [
        ("dav", dav::run),
        ("imap", imap::run),
        ("latency", latency::run),
        ("replay", replay::run),
        ("footprint", footprint::run),
        ("feed", feed::run),
        ("link", link::run),
        ("big", big::run),
        ("floors", floors::run),
        ("linkreplay", link_replay::run),
        ("linkservers", link_servers::run),
    ];
    for (name, section) in sections {
        if !cfg.wants(name) {
            continue;
        }
        let t = Instant::now();
        eprintln!("==> {name}");
        section(&cfg, &mut results).with_context(|| format!("benchmark section {name}"))?;
        results.fact(&format!("seconds_{name}"), json!(t.elapsed().as_secs()));
    }
    results.fact("seconds_total", json!(began.elapsed().as_secs()));
    print!("{}", header(&results));
    print!("{}", results.table());
    results.write_json(&cfg.out)?;
    println!("\nresults written to {}", cfg.out.display());
    Ok(())
}

/// Versions, machine and sizes, recorded with the results.
fn describe(cfg: &Config, results: &mut Results) {
    let opconnect = opconnect_tests::agent::opconnect_bin();
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let dirty = !git(&["status", "--porcelain", "--untracked-files=no"]).is_empty();
    let commit = git(&["rev-parse", "--short", "HEAD"]) + if dirty { "+changes" } else { "" };
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let date = version_of("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    results.fact("date", json!(date));
    results.fact("mode", json!(if cfg.quick { "quick" } else { "default" }));
    results.fact("runs", json!(cfg.runs));
    results.fact(
        "machine",
        json!({"cpu": cpu, "cores": cores, "kernel": version_of("uname", &["-r"])}),
    );
    results.fact(
        "versions",
        json!({
            "opconnect": format!("{} ({})", version_of(&opconnect.to_string_lossy(), &["--version"]), commit),
            "opconnect_binary": opconnect.display().to_string(),
            "radicale": package_version("radicale"),
            "dovecot": version_of("dovecot", &["--version"]),
            "cyrus": package_version("cyrus-common"),
            "vdirsyncer": version_of("vdirsyncer", &["--version"]),
            "isync": version_of("mbsync", &["--version"]),
        }),
    );
}

fn header(results: &Results) -> String {
    let mut out = String::from("\nopconnect benchmarks\n");
    for (key, value) in &results.facts {
        if matches!(key.as_str(), "date" | "mode" | "runs" | "machine" | "versions") {
            out.push_str(&format!("  {key}: {value}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn arguments() {
        let c = Config::from_args(&args("--quick --runs 2 --only dav,replay")).unwrap();
        assert!(c.quick && c.runs == 2 && c.wants("dav") && !c.wants("imap"));
        let d = Config::from_args(&[]).unwrap();
        assert_eq!(
            (d.runs, d.events, d.contacts, d.per_folder * 10),
            (3, 10_000, 5_000, 20_000)
        );
        let f = Config::from_args(&args("--only feed --feed-sizes 100,1_000")).unwrap();
        assert_eq!(f.feed_sizes, vec![100, 1_000]);
        let l = Config::from_args(&args("--only link --rtt-ms 80 --mbit 5")).unwrap();
        assert!(l.wants("link") && l.link_rtt_ms == 80 && l.link_mbit == 5.0);
        let b = Config::from_args(&args("--only big --big-scales 0.1,1")).unwrap();
        assert_eq!((b.big_scales, d.big_scales), (vec![0.1, 1.0], vec![0.1, 1.0]));
        assert!(Config::from_args(&args("--big-scales x")).is_err());
        assert!(Config::from_args(&args("--only nope")).is_err());
        assert!(Config::from_args(&args("--runs")).is_err());
        assert!(Config::from_args(&args("--runs 0")).is_err());
    }
}
