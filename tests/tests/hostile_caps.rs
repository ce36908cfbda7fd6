//! Servers that send more than anyone should buffer: a DAV answer of 600 MiB and an IMAP line
//! that never ends. The request fails with a clear error, the agent's memory stays bounded
//! (VmHWM from /proc), and `status` keeps answering within a few seconds meanwhile.
//!
//! ```text
//!   fake DAV  127.0.0.1:P ── 207, 600 MiB close-delimited ──► agent (cap 64 MiB per body)
//!   fake IMAP 127.0.0.1:Q ── "* OK " + 600 MiB without LF ──► agent (cap 2 MiB per line)
//!   meanwhile: opconnect status --json, each answer timed
//! ```

mod hostile_common;

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Result, bail, ensure};
use hostile_common::{FakeHttp, FakeTcp, Reply, rss_mib};
use opconnect_tests::config::render_config;
use opconnect_tests::{AccountSpec, Agent, AgentSettings};
use serde_json::Value;

/// What the fakes send: far beyond every cap.
const HUGE: u64 = 600 * 1024 * 1024;
/// Generous: the caps are 64 MiB (DAV body) and 2 MiB (IMAP line); the agent idles near 30 MiB.
const RSS_BOUND_MIB: u64 = 400;
/// `status` must answer this fast while a connection misbehaves.
const STATUS_WITHIN: Duration = Duration::from_secs(3);

/// Polls `status` until `done` says so; every answer must come within [`STATUS_WITHIN`].
fn watch(agent: &Agent, timeout: Duration, done: impl Fn(&Value) -> bool) -> Result<(Value, Duration)> {
    let began = Instant::now();
    let mut slowest = Duration::ZERO;
    while began.elapsed() < timeout {
        let asked = Instant::now();
        let status = agent.status_json()?;
        let took = asked.elapsed();
        slowest = slowest.max(took);
        ensure!(took < STATUS_WITHIN, "status took {took:?}: {status}");
        if done(&status) {
            return Ok((status, slowest));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bail!("no verdict within {timeout:?}: {}", agent.status_json()?)
}

fn service_error(status: &Value, service: &str) -> String {
    status["accounts"][0]["services"][service]["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn a_600_mib_dav_answer_fails_that_request_and_memory_stays_bounded() -> Result<()> {
    let dav = FakeHttp::start("127.0.0.1", |req, _| match req.method.as_str() {
        "OPTIONS" => Reply::options(),
        _ if req.authorization.is_none() => Reply::unauthorized(),
        _ => Reply::Endless {
            status: 207,
            prefix: br#"<d:multistatus xmlns:d="DAV:"><d:response><d:href>"#.to_vec(),
            fill: b'a',
            len: HUGE,
        },
    });
    let mut spec = AccountSpec::for_user("alice");
    spec.caldav = Some(dav.url());
    let agent = Agent::start(&render_config(&AgentSettings::default(), &[spec]))?;
    let (status, slowest) = watch(&agent, Duration::from_secs(60), |s| {
        service_error(s, "caldav").contains("larger than")
    })?;
    let error = service_error(&status, "caldav");
    ensure!(error.contains("larger than 64 MiB"), "{status}");
    let (rss, peak) = rss_mib(agent.pid());
    eprintln!("DAV 600 MiB: VmRSS {rss} MiB, VmHWM {peak} MiB, slowest status {slowest:?}");
    ensure!(peak < RSS_BOUND_MIB, "peak RSS {peak} MiB");
    Ok(())
}

#[test]
fn an_endless_imap_line_fails_the_connection_and_status_stays_quick() -> Result<()> {
    let imap = FakeTcp::start(|mut stream| {
        let _ = stream.write_all(b"* OK ");
        let chunk = vec![b'a'; 1 << 20];
        for _ in 0..(HUGE >> 20) {
            if stream.write_all(&chunk).is_err() {
                return;
            }
        }
    });
    let mut spec = AccountSpec::for_user("alice");
    spec.imap = Some(format!("imap://127.0.0.1:{}", imap.port));
    let agent = Agent::start(&render_config(&AgentSettings::default(), &[spec]))?;
    let (status, slowest) = watch(&agent, Duration::from_secs(60), |s| {
        service_error(s, "imap").contains("longer than")
    })?;
    ensure!(
        service_error(&status, "imap").contains("line longer than 2 MiB"),
        "{status}"
    );
    // A few more rounds of reconnecting to the same server: still quick, still bounded.
    let (_, slower) = watch(&agent, Duration::from_secs(6), |_| false).or_else(|e| {
        if e.to_string().starts_with("no verdict") {
            Ok((Value::Null, Duration::ZERO))
        } else {
            Err(e)
        }
    })?;
    let (rss, peak) = rss_mib(agent.pid());
    eprintln!(
        "IMAP endless line: VmRSS {rss} MiB, VmHWM {peak} MiB, slowest status {:?}",
        slowest.max(slower)
    );
    ensure!(peak < RSS_BOUND_MIB, "peak RSS {peak} MiB");
    Ok(())
}
