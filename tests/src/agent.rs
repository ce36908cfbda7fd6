//! Drives the real `opconnect` binary exactly through the INTERFACE contract: `run --headless`
//! with an explicit config, data dir and socket, the CLI for everything else, and raw IPC.
//!
//! ```text
//!   TempDir/ config.toml  agent.log (stdout+stderr of `run`)  data/  home/
//!            run/agent.sock            (run/ is created by the agent: 0700, socket 0600)
//!   Agent::cli(["status","--json"]) ─▶ opconnect status --json --socket S --config F --data-dir D
//! ```
//!
//! The binary is `$OPCONNECT_BIN`, else `target/<profile>/opconnect` next to the test executable's
//! `deps/` directory: build it first (`cargo build -p opconnect`; `scripts/test` builds everything).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::ipc::RawIpc;
use crate::ports::{self, TcpConn};
use crate::process::{self, Spawned};

/// The agent must answer `status` this soon after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A CLI invocation that takes longer than this is a hang.
const CLI_TIMEOUT: Duration = Duration::from_secs(60);

/// The `opconnect` binary under test; panics with instructions when it is missing.
pub fn opconnect_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("OPCONNECT_BIN") {
        let bin = PathBuf::from(bin);
        assert!(bin.is_file(), "OPCONNECT_BIN={} does not exist", bin.display());
        return bin;
    }
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().expect("test executable has a directory");
    // Integration tests live in target/<profile>/deps/; the binary one level up.
    for candidate in [dir.join("../opconnect"), dir.join("opconnect")] {
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "the opconnect binary is missing (looked for {}/../opconnect and $OPCONNECT_BIN): \
         build it first with `cargo build -p opconnect` (scripts/test builds the whole workspace)",
        dir.display()
    );
}

/// Runs `opconnect ARGS` with no agent behind the socket: a fresh empty directory holds the
/// (absent) socket, config and data dir. For exit-code tests.
pub fn cli_without_agent(args: &[&str]) -> Output {
    let dir = process::short_tempdir("oc").expect("temp dir");
    let mut cmd = Command::new(opconnect_bin());
    cmd.args(args)
        .arg("--socket")
        .arg(dir.path().join("run/agent.sock"))
        .arg("--config")
        .arg(dir.path().join("config.toml"))
        .arg("--data-dir")
        .arg(dir.path().join("data"));
    isolate_env(&mut cmd, dir.path());
    process::run_with_timeout(cmd, CLI_TIMEOUT).expect("running opconnect")
}

/// A running `opconnect run --headless`. Dropping it kills the agent (SIGKILL of its group).
pub struct Agent {
    dir: tempfile::TempDir,
    bin: PathBuf,
    child: Option<Spawned>,
    started_in: Duration,
    launch: Launch,
}

/// How `opconnect run` is started: headless (the default), or on a desktop session.
#[derive(Debug, Clone, Default)]
pub struct Launch {
    /// `DISPLAY`, `DBUS_SESSION_BUS_ADDRESS`… of a private desktop (see `desktop::Desktop::env`):
    /// the agent then runs without `--headless`, with its tray.
    pub desktop: Option<Vec<(String, String)>>,
    /// A command the agent runs under (e.g. `unshare --mount sh -c '…; exec "$@"' sh`).
    pub wrapper: Vec<String>,
    /// Another `opconnect` binary than the build's (an installed package's `/usr/bin/opconnect`).
    pub bin: Option<PathBuf>,
}

impl Agent {
    /// Writes `config_toml`, starts the agent and waits until `opconnect status` answers.
    pub fn start(config_toml: &str) -> Result<Agent> {
        Agent::start_with(config_toml, Launch::default())
    }

    /// [`Agent::start`], launched as `launch` says.
    pub fn start_with(config_toml: &str, launch: Launch) -> Result<Agent> {
        let bin = launch.bin.clone().unwrap_or_else(opconnect_bin);
        let dir = process::short_tempdir("oc")?;
        // Other users may traverse (not list) the root: the socket tests rely on the agent's own
        // 0700 run/ directory and its peer-uid check, not on this directory.
        process::chmod(dir.path(), 0o711)?;
        fs::create_dir(dir.path().join("home"))?;
        let mut agent = Agent {
            dir,
            bin,
            child: None,
            started_in: Duration::ZERO,
            launch,
        };
        fs::write(agent.config_path(), config_toml)?;
        agent.spawn()?;
        Ok(agent)
    }

    fn spawn(&mut self) -> Result<()> {
        let began = Instant::now();
        let mut cmd = match self.launch.wrapper.split_first() {
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg(&self.bin);
                cmd
            }
            None => Command::new(&self.bin),
        };
        cmd.arg("run");
        if self.launch.desktop.is_none() {
            cmd.arg("--headless");
        }
        self.global_flags(&mut cmd);
        isolate_env(&mut cmd, self.dir.path());
        for (key, value) in self.launch.desktop.iter().flatten() {
            cmd.env(key, value);
        }
        let mut child = Spawned::spawn("opconnect run", cmd, &self.log_path())?;
        let socket = self.socket_path();
        child.wait_ready(START_TIMEOUT, || {
            socket.exists() && self.cli(&["status", "--json"]).status.success()
        })?;
        self.started_in = began.elapsed();
        self.child = Some(child);
        Ok(())
    }

    /// SIGTERM and wait (up to 10 s, then SIGKILL); returns the exit status if it exited by itself.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        self.child
            .take()
            .and_then(|mut c| c.terminate(Duration::from_secs(10)))
    }

    /// SIGKILL: a crash, as far as the agent can tell.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill();
        }
    }

    /// Starts the agent again with the same config, data dir and socket (after a stop or kill).
    pub fn restart(&mut self) -> Result<()> {
        self.stop();
        self.spawn()
    }

    /// True while the agent process is alive.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => child.try_wait().is_none(),
            None => false,
        }
    }

    /// The agent's pid. Panics if it was stopped.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the agent is not running").pid()
    }

    /// How long the last start took until `status` answered.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn socket_path(&self) -> PathBuf {
        self.dir.path().join("run").join("agent.sock")
    }

    /// stdout and stderr of `opconnect run`.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("agent.log")
    }

    /// The agent's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The agent's log once it holds `needle`, waiting up to `timeout` (lines written by other
    /// threads, such as the tray's, may come after the event a test waited for).
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.log();
            if log.contains(needle) {
                return Ok(log);
            }
            if Instant::now() >= deadline {
                bail!("the agent's log has no {needle:?} after {timeout:?}:\n{log}");
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Replaces the config file (for tests of reloading or of `account add`).
    pub fn write_config(&self, config_toml: &str) -> Result<()> {
        fs::write(self.config_path(), config_toml).context("writing config.toml")
    }

    fn global_flags(&self, cmd: &mut Command) {
        cmd.arg("--socket")
            .arg(self.socket_path())
            .arg("--config")
            .arg(self.config_path())
            .arg("--data-dir")
            .arg(self.data_dir());
    }

    /// Runs `opconnect ARGS --socket S --config F --data-dir D`. Panics only if it cannot run.
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args);
        self.global_flags(&mut cmd);
        isolate_env(&mut cmd, self.dir.path());
        process::run_with_timeout(cmd, CLI_TIMEOUT).unwrap_or_else(|e| panic!("opconnect {args:?}: {e:#}"))
    }

    /// Like [`Agent::cli`] but the command must exit 0; returns its stdout.
    pub fn cli_ok(&self, args: &[&str]) -> Result<String> {
        let out = self.cli(args);
        if !out.status.success() {
            bail!(
                "opconnect {args:?} exited {}: {}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr),
                self.log_hint()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs `opconnect ARGS --socket S` as another user (`setpriv`; the caller must be root).
    /// Only the socket is passed: the other user cannot read our config or data. The binary is
    /// copied into the test's directory first, since the build tree may be private to its owner.
    pub fn cli_as(&self, uid: u32, gid: u32, args: &[&str]) -> Output {
        let copy = self.dir.path().join("opconnect-copy");
        if !copy.exists() {
            fs::copy(&self.bin, &copy).expect("copying the opconnect binary");
            process::chmod(&copy, 0o755).expect("chmod");
        }
        let mut cmd = Command::new("setpriv");
        cmd.arg(format!("--reuid={uid}"))
            .arg(format!("--regid={gid}"))
            .arg("--clear-groups")
            .arg("--")
            .arg(&copy)
            .args(args)
            .arg("--socket")
            .arg(self.socket_path());
        cmd.env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", "/tmp");
        process::run_with_timeout(cmd, CLI_TIMEOUT).expect("running setpriv (util-linux)")
    }

    /// `opconnect call METHOD PARAMS`: the printed JSON result, or an error with stderr.
    pub fn call(&self, method: &str, params: Value) -> Result<Value> {
        let params = params.to_string();
        let out = self.cli(&["call", method, &params]);
        if !out.status.success() {
            bail!(
                "opconnect call {method} exited {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        serde_json::from_slice(&out.stdout).with_context(|| {
            format!(
                "opconnect call {method} printed non-JSON: {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// Calls `method` until `pred` holds on its result, which it returns; on timeout the error
    /// carries the last answer and the tail of the agent's log.
    pub fn call_until(
        &self,
        method: &str,
        params: Value,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = self.call(method, params.clone());
            if let Ok(v) = &last
                && pred(v)
            {
                return Ok(v.clone());
            }
            if Instant::now() >= deadline {
                let log = self.log();
                let lines: Vec<&str> = log.lines().collect();
                let tail = lines[lines.len().saturating_sub(30)..].join("\n");
                bail!(
                    "{method} {params} did not reach the expected state in {timeout:?}; last: {last:?}\nagent log tail:\n{tail}"
                );
            }
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    /// `opconnect status --json`, parsed.
    pub fn status_json(&self) -> Result<Value> {
        let text = self.cli_ok(&["status", "--json"])?;
        serde_json::from_str(&text).with_context(|| format!("status --json printed: {text}"))
    }

    /// Polls `status --json` every 100 ms until `pred` holds; returns that status. On timeout
    /// the error shows the last status and the end of the agent's log.
    pub fn wait_for(&self, timeout: Duration, mut pred: impl FnMut(&Value) -> bool) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = match self.status_json() {
                Ok(status) if pred(&status) => return Ok(status),
                Ok(status) => status.to_string(),
                Err(e) => format!("(status failed: {e:#})"),
            };
            if Instant::now() >= deadline {
                bail!(
                    "condition not met within {timeout:?}; last status: {last}{}",
                    self.log_hint()
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until account `name` reports `state` (`online`, `offline`, `error`, `paused`, …).
    pub fn wait_for_state(&self, name: &str, state: &str, timeout: Duration) -> Result<Value> {
        self.wait_for(timeout, |s| account_state(s, name) == Some(state))
            .with_context(|| format!("waiting for account {name:?} to be {state}"))
    }

    /// Spawns `opconnect watch TOPICS…` and reads its JSON lines. The CLI subscribes
    /// asynchronously: for a guaranteed subscription use [`Agent::ipc`] + `RawIpc::subscribe`.
    pub fn watch(&self, topics: &[&str]) -> Result<EventStream> {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("watch").args(topics);
        self.global_flags(&mut cmd);
        isolate_env(&mut cmd, self.dir.path());
        let stderr = fs::File::create(self.dir.path().join("watch.log"))?;
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(stderr);
        EventStream::spawn(cmd)
    }

    /// A raw IPC connection to the agent's socket.
    pub fn ipc(&self) -> Result<RawIpc> {
        RawIpc::connect(&self.socket_path())
    }

    /// An `opconnect_ipc::Client` connected to the agent (the library the CLI itself uses).
    pub async fn client(&self) -> Result<opconnect_ipc::Client> {
        opconnect_ipc::Client::connect(&self.socket_path())
            .await
            .with_context(|| format!("connecting to {}", self.socket_path().display()))
    }

    /// The TCP connections the agent process holds to 127.0.0.1:`port` (not counting listeners).
    pub fn connections_to(&self, port: u16) -> Result<Vec<TcpConn>> {
        ports::connections_to(self.pid(), port)
    }

    fn log_hint(&self) -> String {
        format!(
            "\n--- agent log ({}), last lines:\n{}",
            self.log_path().display(),
            process::log_tail(&self.log_path(), 30)
        )
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The status entry of account `name` in a `status` result.
pub fn account<'a>(status: &'a Value, name: &str) -> Option<&'a Value> {
    status
        .get("accounts")?
        .as_array()?
        .iter()
        .find(|a| a.get("name").and_then(Value::as_str) == Some(name))
}

/// The `state` of account `name` in a `status` result.
pub fn account_state<'a>(status: &'a Value, name: &str) -> Option<&'a str> {
    account(status, name)?.get("state")?.as_str()
}

/// The `state` of one service (`imap`, `caldav`, …) of account `name`.
pub fn service_state<'a>(status: &'a Value, name: &str, service: &str) -> Option<&'a str> {
    account(status, name)?
        .get("services")?
        .get(service)?
        .get("state")?
        .as_str()
}

/// Keeps the agent away from the real user's files and desktop: HOME and the XDG directories
/// point into the test's TempDir, OPCONNECT_* settings of the caller do not leak in.
fn isolate_env(cmd: &mut Command, root: &Path) {
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("OPCONNECT_") {
            cmd.env_remove(key);
        }
    }
    let home = root.join("home");
    cmd.env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("XDG_STATE_HOME", home.join(".local/state"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env("XDG_RUNTIME_DIR", root)
        .env("RUST_BACKTRACE", "1")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY");
}

/// The JSON lines of a running `opconnect watch`. Dropping it kills the watcher.
pub struct EventStream {
    child: Spawned,
    lines: Receiver<String>,
    /// Events read by [`EventStream::wait_for`] that did not match, oldest first.
    pub skipped: Vec<Value>,
}

impl EventStream {
    fn spawn(mut cmd: Command) -> Result<EventStream> {
        use std::io::{BufRead, BufReader};
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
        process::die_with_parent(&mut cmd);
        let mut child = cmd.spawn().context("spawning opconnect watch")?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(EventStream {
            child: Spawned::adopt("opconnect watch", child),
            lines: rx,
            skipped: Vec::new(),
        })
    }

    /// The next event, or `None` if none arrives within `timeout` (or the watcher ended).
    pub fn next(&mut self, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match self.lines.recv_timeout(left) {
                Ok(line) if line.trim().is_empty() => continue,
                Ok(line) => {
                    return Some(serde_json::from_str(&line).unwrap_or(Value::String(line)));
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// Reads events until one satisfies `pred`; the others go to [`EventStream::skipped`].
    pub fn wait_for(&mut self, timeout: Duration, mut pred: impl FnMut(&Value) -> bool) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.next(left) {
                Some(event) if pred(&event) => return Ok(event),
                Some(event) => self.skipped.push(event),
                None => break,
            }
        }
        if let Some(status) = self.child.try_wait() {
            bail!(
                "opconnect watch exited ({status}); events seen: {:?}",
                self.skipped
            );
        }
        bail!(
            "no matching event within {timeout:?}; events seen: {:?}",
            self.skipped
        )
    }

    /// Waits for an event of `topic`.
    pub fn wait_topic(&mut self, topic: &str, timeout: Duration) -> Result<Value> {
        self.wait_for(timeout, |e| event_topic(e) == Some(topic))
    }
}

/// The topic of a printed event, whether `watch` prints the notification's `params` or the
/// whole notification.
pub fn event_topic(event: &Value) -> Option<&str> {
    event
        .get("topic")
        .or_else(|| event.get("params")?.get("topic"))
        .and_then(Value::as_str)
}
