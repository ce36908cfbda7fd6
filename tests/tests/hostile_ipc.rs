//! A local process that tries to exhaust the running agent over its socket: 233 connections
//! that each send a header announcing 16 MiB and a few bytes, then nothing. `status` never hangs
//! (beyond the connection limit it is refused at once), the agent's memory stays bounded, the
//! half-sent connections are closed after the idle limit, and `status` answers again.
//!
//! ```text
//!   233 × UnixStream ── [len 16 MiB]{"jsonrpc" … silence ──► agent (idle limit 10 s, ≤ 128 conns)
//!   meanwhile: opconnect status --json (timed), VmHWM of the agent
//! ```

mod hostile_common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use hostile_common::rss_mib;
use opconnect_tests::Agent;
use opconnect_tests::AgentSettings;
use opconnect_tests::config::render_config;

#[test]
fn half_sent_frames_cost_little_and_are_closed() -> Result<()> {
    let agent = Agent::start(&render_config(&AgentSettings::default(), &[]))?;
    let (_, before) = rss_mib(agent.pid());
    let mut held = Vec::new();
    for _ in 0..233 {
        let Ok(mut s) = UnixStream::connect(agent.socket_path()) else {
            continue;
        };
        let _ = s.write_all(&(16u32 << 20).to_be_bytes());
        let _ = s.write_all(b"{\"jsonrpc\"");
        held.push(s);
    }
    let asked = Instant::now();
    let during = agent.cli(&["status", "--json"]);
    let took = asked.elapsed();
    ensure!(took < Duration::from_secs(3), "status took {took:?}");
    let said = String::from_utf8_lossy(&during.stderr);
    ensure!(
        during.status.success() || said.contains("closed the connection"),
        "{said}"
    );
    let (rss, peak) = rss_mib(agent.pid());
    eprintln!(
        "233 half-sent frames: VmRSS {rss} MiB, VmHWM {peak} MiB (before {before}), status in {took:?}"
    );
    ensure!(peak < before + 64, "peak RSS {peak} MiB, {before} MiB before");
    // Within the idle limit (10 s) and a margin, every one of them is closed by the agent.
    for s in &held {
        s.set_read_timeout(Some(Duration::from_secs(25)))?;
    }
    let began = Instant::now();
    let mut closed = 0;
    for s in &mut held {
        let mut byte = [0u8; 64];
        match s.read(&mut byte) {
            Ok(0) => closed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => closed += 1,
            _ => {}
        }
    }
    ensure!(closed == held.len(), "{closed} of {} closed", held.len());
    ensure!(began.elapsed() < Duration::from_secs(25), "{:?}", began.elapsed());
    let asked = Instant::now();
    agent.status_json()?;
    ensure!(asked.elapsed() < Duration::from_secs(3));
    Ok(())
}
