//! Child processes of the harness: each server runs in its own process group, logs to a file and is
//! killed with its whole group when the test ends.
//!
//! ```text
//!   test ──spawn──▶ server (pgid = its pid) ──fork──▶ workers (same group)
//!     │                                    ▲
//!     └── Drop: SIGKILL to -pgid ──────────┘   then wait until the group is gone
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// How often readiness and exit conditions are polled. Short: a server is usually ready in 0.1–0.5 s.
pub const POLL: Duration = Duration::from_millis(25);

/// A child running in its own process group, with stdout and stderr captured in `log`.
#[derive(Debug)]
pub struct Spawned {
    child: Child,
    name: String,
    log: PathBuf,
    reaped: bool,
}

impl Spawned {
    /// Spawns `cmd` as the leader of a new process group, appending its output to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Result<Spawned> {
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let err = out.try_clone()?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err).process_group(0);
        die_with_parent(&mut cmd);
        let child = cmd
            .spawn()
            .with_context(|| format!("{name}: cannot start {:?}", cmd.get_program()))?;
        Ok(Spawned {
            child,
            name: name.to_string(),
            log: log.to_path_buf(),
            reaped: false,
        })
    }

    /// Takes charge of a child that was spawned with `process_group(0)` elsewhere.
    pub fn adopt(name: &str, child: Child) -> Spawned {
        Spawned {
            child,
            name: name.to_string(),
            log: PathBuf::new(),
            reaped: false,
        }
    }

    /// The leader's pid, which is also the process group id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The file that receives the child's stdout and stderr.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// `Some(status)` once the leader has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        let status = self.child.try_wait().ok().flatten();
        if status.is_some() {
            // The leader is reaped: its pid may be reused, so the group is never signalled again.
            // Members it left behind notice the closed pipes and exit by themselves.
            self.reaped = true;
        }
        status
    }

    /// Polls `ready` until it returns true; fails early if the leader exits, or after `timeout`.
    /// The error carries the tail of the log so a failing test shows why the server did not come up.
    pub fn wait_ready(&mut self, timeout: Duration, mut ready: impl FnMut() -> bool) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if ready() {
                return Ok(());
            }
            if let Some(status) = self.try_wait() {
                bail!(
                    "{} exited during start-up ({status}); log {}:\n{}",
                    self.name,
                    self.log.display(),
                    log_tail(&self.log, 40)
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} not ready after {timeout:?}; log {}:\n{}",
                    self.name,
                    self.log.display(),
                    log_tail(&self.log, 40)
                );
            }
            thread::sleep(POLL);
        }
    }

    /// Sends `signal` to the whole group.
    pub fn signal_group(&self, signal: i32) {
        if !self.reaped {
            signal_group(self.pid(), signal);
        }
    }

    /// SIGKILL to the whole group, reap the leader, then wait (bounded) until no member is left,
    /// so that the listening ports are free for a restart on the same ports.
    pub fn kill(&mut self) {
        if self.reaped {
            return;
        }
        // The leader is at worst a zombie until `wait`, so the group id still names our group.
        signal_group(self.pid(), libc::SIGKILL);
        let _ = self.child.wait();
        self.reaped = true;
        wait_group_gone(self.pid(), Duration::from_secs(5));
    }

    /// SIGTERM to the group, wait up to `grace` for the leader, then SIGKILL what is left.
    pub fn terminate(&mut self, grace: Duration) -> Option<ExitStatus> {
        self.signal_group(libc::SIGTERM);
        let deadline = Instant::now() + grace;
        let status = loop {
            if let Some(status) = self.try_wait() {
                break Some(status);
            }
            if Instant::now() >= deadline {
                break None;
            }
            thread::sleep(POLL);
        };
        self.kill();
        status
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Makes the child get SIGKILL when the thread that spawned it ends (`PR_SET_PDEATHSIG`), so that
/// a test process killed by a timeout does not leave servers behind in their own process groups.
/// Dovecot's workers then exit by themselves once their master is gone.
///
/// The death signal follows the spawning *thread*: start servers on the test's own thread (or one
/// that outlives them), not on a short-lived helper thread.
#[allow(unsafe_code)]
pub fn die_with_parent(cmd: &mut Command) {
    let parent = std::process::id();
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe calls
    // (prctl, getppid) without allocating.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect.
            if libc::getppid() as u32 != parent {
                return Err(std::io::Error::other("parent exited during spawn"));
            }
            Ok(())
        });
    }
}

/// `kill(-pgid, signal)`. Errors (the group is already gone) are ignored.
#[allow(unsafe_code)]
pub fn signal_group(pgid: u32, signal: i32) {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return;
    };
    if pgid <= 1 {
        return; // never signal -1 (everything) or -0 (our own group)
    }
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    unsafe {
        libc::kill(-pgid, signal);
    }
}

/// True while a live (not zombie) process of group `pgid` exists. Zombies do not count: they
/// hold no ports, and on some machines PID 1 reaps orphans only after a second or more.
pub fn group_alive(pgid: u32) -> bool {
    group_members(pgid).iter().any(|&(_, state)| state != 'Z')
}

/// The members of process group `pgid` with their state letter (`R`, `S`, `Z`, …), from `/proc`.
pub fn group_members(pgid: u32) -> Vec<(u32, char)> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut members = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid pgrp …; comm may contain spaces and parentheses.
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let fields: Vec<&str> = after.split_whitespace().collect();
        if fields.len() > 2 && fields[2].parse() == Ok(pgid) {
            members.push((pid, fields[0].chars().next().unwrap_or('?')));
        }
    }
    members
}

fn wait_group_gone(pgid: u32, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while group_alive(pgid) && Instant::now() < deadline {
        // Members that are not our children are reaped by init; keep nudging the live ones.
        signal_group(pgid, libc::SIGKILL);
        thread::sleep(Duration::from_millis(5));
    }
}

/// The effective uid of this test process (the owner of `/proc/self`).
pub fn current_uid() -> u32 {
    fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(u32::MAX)
}

/// The effective gid of this test process.
pub fn current_gid() -> u32 {
    fs::metadata("/proc/self").map(|m| m.gid()).unwrap_or(u32::MAX)
}

/// True when the tests run as root, as they do in CI.
pub fn is_root() -> bool {
    current_uid() == 0
}

/// The login name of the current uid (`id -un`).
pub fn current_user_name() -> Result<String> {
    id_name("-un")
}

/// The name of the current gid (`id -gn`): `nogroup` for `nobody` on Debian.
pub fn current_group_name() -> Result<String> {
    id_name("-gn")
}

fn id_name(flag: &str) -> Result<String> {
    let out = Command::new("id").arg(flag).output().context("running id")?;
    if !out.status.success() {
        bail!("id {flag} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Looks up a local user's uid and gid in the passwd database (`getent passwd NAME`).
pub fn lookup_user(name: &str) -> Result<(u32, u32)> {
    let out = Command::new("getent")
        .args(["passwd", name])
        .output()
        .context("running getent")?;
    let line = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<&str> = line.trim().split(':').collect();
    if !out.status.success() || fields.len() < 4 {
        bail!("no local user {name:?} (getent passwd {name})");
    }
    Ok((fields[2].parse()?, fields[3].parse()?))
}

/// Finds `program` on PATH or in the sbin directories that a non-login shell may lack.
pub fn find_program(program: &str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let extra = ["/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/bin", "/bin"];
    std::env::split_paths(&path)
        .chain(extra.iter().map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
        .with_context(|| format!("`{program}` is not installed (scripts/test installs the server packages)"))
}

/// Runs a command to completion with a time limit; the group is killed if it overruns.
pub fn run_with_timeout(mut cmd: Command, timeout: Duration) -> Result<Output> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    die_with_parent(&mut cmd);
    let what = format!("{:?}", cmd.get_program());
    let mut child = cmd.spawn().with_context(|| format!("cannot run {what}"))?;
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            signal_group(child.id(), libc::SIGKILL);
            let _ = child.wait();
            bail!("{what} did not finish within {timeout:?}");
        }
        thread::sleep(Duration::from_millis(10));
    };
    Ok(Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    })
}

/// Runs a command that must succeed, returning its stdout.
pub fn run_ok(cmd: Command, timeout: Duration) -> Result<String> {
    let what = format!("{cmd:?}");
    let out = run_with_timeout(cmd, timeout)?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The last `lines` lines of a log file (at most the last 64 KiB are read).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(mut file) = File::open(path) else {
        return format!("(no log at {})", path.display());
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let mut text = Vec::new();
    let _ = file.read_to_end(&mut text);
    let text = String::from_utf8_lossy(&text);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Creates a short-named temporary directory under /tmp. Unix socket paths are limited to 108
/// bytes, so the harness keeps its paths short whatever `TMPDIR` says.
///
/// With `OPCONNECT_TEST_KEEP=1` the directories (configs, data, server and agent logs) are left
/// behind for a post-mortem, and their paths are printed.
pub fn short_tempdir(prefix: &str) -> Result<tempfile::TempDir> {
    let mut dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/tmp")
        .context("creating a temporary directory in /tmp")?;
    if std::env::var_os("OPCONNECT_TEST_KEEP").is_some_and(|v| v != "0") {
        dir.disable_cleanup(true);
        eprintln!("keeping {}", dir.path().display());
    }
    Ok(dir)
}

/// Sets the permission bits of `path`.
pub fn chmod(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {mode:o} {}", path.display()))
}

/// Changes the owner of `path` and everything below it (`chown -R`).
pub fn chown_recursive(path: &Path, uid: u32, gid: u32) -> Result<()> {
    let mut cmd = Command::new("chown");
    cmd.arg("-R").arg(format!("{uid}:{gid}")).arg(path);
    run_ok(cmd, Duration::from_secs(30)).map(|_| ())
}
