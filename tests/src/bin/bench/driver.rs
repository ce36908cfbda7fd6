//! The agent under measurement: the harness's [`Agent`] plus an event tap that timestamps every
//! event the moment it arrives, a control connection, and readings from `/proc/PID`.
//!
//! ```text
//!   Instant::now() ─▶ Agent::start(config) ─▶ RawIpc subscribe ──▶ tap thread: (Instant, event)
//!                                            RawIpc control   ──▶ sync / pause / writes / status
//!   /proc/PID/stat (utime + stime)   /proc/PID/status (VmRSS, VmHWM, RssAnon, RssFile)
//! ```

use std::collections::HashSet;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use opconnect_tests::agent::Launch;
use opconnect_tests::{Agent, RawIpc};

/// A running agent with its event tap.
pub struct Driver {
    pub agent: Agent,
    /// When the agent process was asked to start.
    pub started: Instant,
    control: RawIpc,
    events: Receiver<(Instant, Value)>,
    /// Events read while waiting for something else, oldest first.
    pub seen: Vec<(Instant, Value)>,
}

impl Driver {
    /// Starts the agent with `config` and subscribes to every event at once. The first sync
    /// starts with the agent; if a sync round had already finished before the subscription
    /// (`last_sync` set), the measurement would be wrong, and this fails instead.
    pub fn start(config: &str) -> Result<Driver> {
        Driver::start_with(config, Launch::default())
    }

    /// [`Driver::start`] with launch options (another `opconnect` binary, …).
    pub fn start_with(config: &str, launch: Launch) -> Result<Driver> {
        let mut d = Driver::launch_with(config, launch)?;
        let status = d.call("status", json!({}))?;
        let early = status["accounts"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|a| a.get("last_sync").is_some_and(|s| !s.is_null()));
        if early {
            bail!("a sync finished before the bench could subscribe: the data set is too small to time");
        }
        Ok(d)
    }

    /// Starts the agent and subscribes, without the check of [`Driver::start`]: for callers
    /// that do not time the first sync.
    pub fn launch(config: &str) -> Result<Driver> {
        Driver::launch_with(config, Launch::default())
    }

    fn launch_with(config: &str, launch: Launch) -> Result<Driver> {
        let started = Instant::now();
        let agent = Agent::start_with(config, launch)?;
        let mut tap = agent.ipc()?;
        tap.subscribe(&[])?;
        let mut control = agent.ipc()?;
        control.set_timeout(Duration::from_secs(120))?;
        Ok(Driver {
            agent,
            started,
            control,
            events: spawn_tap(tap),
            seen: Vec::new(),
        })
    }

    /// One IPC request on the control connection; its result.
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value> {
        self.control.call(method, params)
    }

    /// The next event within `timeout`, whichever it is.
    fn next(&mut self, timeout: Duration) -> Result<Option<(Instant, Value)>> {
        match self.events.recv_timeout(timeout) {
            Ok(e) => Ok(Some(e)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => bail!(
                "the agent closed the event connection; log tail:\n{}",
                tail(&self.agent.log())
            ),
        }
    }

    /// Waits for an event satisfying `pred`; returns when it arrived and the event.
    pub fn wait_event(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<(Instant, Value)> {
        let deadline = Instant::now() + timeout;
        if let Some(i) = self.seen.iter().position(|(_, e)| pred(e)) {
            return Ok(self.seen.remove(i));
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left)? {
                Some((at, e)) if pred(&e) => return Ok((at, e)),
                Some(other) => self.seen.push(other),
                None => bail!(
                    "no matching event within {timeout:?}; agent log tail:\n{}",
                    tail(&self.agent.log())
                ),
            }
        }
    }

    /// Waits until each `(account, service)` has reported `synced`; returns when the last did.
    pub fn wait_synced(&mut self, services: &[(&str, &str)], timeout: Duration) -> Result<Instant> {
        let mut missing: HashSet<(String, String)> = services
            .iter()
            .map(|(a, s)| (a.to_string(), s.to_string()))
            .collect();
        let mut last = Instant::now();
        while !missing.is_empty() {
            let (at, e) = self
                .wait_event(timeout, |e| topic(e) == "synced")
                .with_context(|| format!("waiting for synced from {missing:?}"))?;
            let key = (str_of(&e, "account"), str_of(&e, "service"));
            if missing.remove(&key) {
                last = at;
            }
        }
        Ok(last)
    }

    /// Forgets events seen so far (before a new measurement).
    pub fn drain(&mut self) {
        while let Ok(e) = self.events.try_recv() {
            self.seen.push(e);
        }
        self.seen.clear();
    }

    pub fn pid(&self) -> u32 {
        self.agent.pid()
    }

    /// User + system CPU seconds the agent has used so far.
    pub fn cpu_seconds(&self) -> Result<f64> {
        cpu_seconds(self.pid())
    }

    /// (VmRSS, VmHWM) in KiB.
    pub fn memory_kb(&self) -> Result<(u64, u64)> {
        Ok((self.status_kb("VmRSS")?, self.status_kb("VmHWM")?))
    }

    /// One `NAME: N kB` field of /proc/PID/status (proc(5)), e.g. `RssAnon`, `RssFile`.
    pub fn status_kb(&self, name: &str) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .with_context(|| format!("{name} in /proc/PID/status"))
    }
}

/// Resident kB of the mapped files of `pid`, by what they are: the agent's binary, the LMDB
/// mirror (`data.mdb`), and everything else (shared libraries, locale files), from
/// `/proc/PID/smaps` (proc(5)).
pub fn mapped_kb(pid: u32) -> Result<(u64, u64, u64)> {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps"))?;
    Ok(mapped_by_file(&smaps))
}

fn mapped_by_file(smaps: &str) -> (u64, u64, u64) {
    let (mut binary, mut mirror, mut other) = (0, 0, 0);
    let mut path = "";
    for line in smaps.lines() {
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or("");
        // A mapping's header: `start-end perms offset dev inode [path]`.
        if first.contains('-') && !first.ends_with(':') {
            path = words.nth(4).unwrap_or("");
        } else if first == "Rss:" && path.starts_with('/') {
            let kb: u64 = words.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            if path.ends_with("/data.mdb") {
                mirror += kb;
            } else if path.rsplit('/').next() == Some("opconnect") {
                binary += kb;
            } else {
                other += kb;
            }
        }
    }
    (binary, mirror, other)
}

/// utime + stime of `pid` in seconds (proc(5): fields 14 and 15, in clock ticks).
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may contain spaces: fields are counted after its closing parenthesis.
    let after = stat.rsplit_once(')').context("malformed /proc/PID/stat")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    Ok(ticks as f64 / clock_ticks() as f64)
}

#[allow(unsafe_code)]
fn clock_ticks() -> i64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t } else { 100 }
}

/// Reads frames from a subscribed connection on a thread; each is stamped when it arrived.
fn spawn_tap(mut ipc: RawIpc) -> Receiver<(Instant, Value)> {
    let (tx, rx) = mpsc::channel();
    let _ = ipc.set_timeout(Duration::from_secs(24 * 3600));
    thread::spawn(move || {
        while let Ok(Some(frame)) = ipc.read_frame() {
            let at = Instant::now();
            if let Some(params) = frame.get("params")
                && frame.get("method").and_then(Value::as_str) == Some("event")
                && tx.send((at, params.clone())).is_err()
            {
                break;
            }
        }
    });
    rx
}

/// An event's topic.
pub fn topic(e: &Value) -> &str {
    e.get("topic").and_then(Value::as_str).unwrap_or("")
}

fn str_of(e: &Value, key: &str) -> String {
    e.get(key).and_then(Value::as_str).unwrap_or("").to_string()
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_memory_is_split_by_file() {
        let smaps = "\
55d0-55e0 r-xp 00000000 08:01 123 /usr/bin/opconnect
Size:                 64 kB
Rss:                  40 kB
7f00-7f10 rw-s 00000000 08:01 456 /tmp/x/.local/share/opconnect/data.mdb
Rss:                 100 kB
7f20-7f30 r-xp 00000000 08:01 789 /usr/lib/x86_64-linux-gnu/libc.so.6
Rss:                   8 kB
7f40-7f50 rw-p 00000000 00:00 0
Rss:                 500 kB
7ffc-7ffd rw-p 00000000 00:00 0 [stack]
Rss:                  12 kB
";
        assert_eq!(mapped_by_file(smaps), (40, 100, 8));
    }
}
