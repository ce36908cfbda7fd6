//! The tools users would pick instead, run as they ship in Debian: vdirsyncer (CalDAV/CardDAV to
//! a local vdir) and mbsync from isync (IMAP to a local Maildir), each with a config written for
//! the bench, plus the CPU time and versions of every program involved.
//!
//! ```text
//!   TempDir/ config (vdirsyncer) | mbsyncrc   status/  local/ (what the tool downloaded)
//!   vdirsyncer -c config discover ; vdirsyncer -c config sync      mbsync -c mbsyncrc -a
//! ```

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tempfile::TempDir;

use opconnect_tests::password_of;

/// What one run of an external tool cost on the client side.
#[derive(Debug, Clone, Copy, Default)]
pub struct ToolRun {
    pub wall: Duration,
    /// User + system CPU time of the tool and its children.
    pub cpu: Duration,
    /// Peak resident set of the tool (its largest child process), in KiB.
    pub max_rss_kb: u64,
}

/// Waits for child `pid` with wait4(2): its exit code (or -signal) and its own resource usage.
#[allow(unsafe_code)]
fn wait_with_usage(pid: u32) -> Result<(i32, Duration, u64)> {
    let mut status = 0i32;
    // SAFETY: rusage is plain old data (all zeroes is a valid value); wait4 writes only into the
    // status and rusage it is given, for a child of this process.
    let (rc, usage) = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        let rc = libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage);
        (rc, usage)
    };
    if rc < 0 {
        bail!("wait4({pid}): {}", std::io::Error::last_os_error());
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -libc::WTERMSIG(status)
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    // ru_maxrss is in KiB on Linux.
    Ok((
        code,
        tv(usage.ru_utime) + tv(usage.ru_stime),
        usage.ru_maxrss as u64,
    ))
}

/// Runs `cmd` to completion (it must succeed), feeding `stdin`; measures its wall time, CPU time
/// and peak RSS.
fn run_measured(mut cmd: Command, stdin: &[u8], what: &str, log: &Path) -> Result<ToolRun> {
    let out = fs::File::create(log)?;
    cmd.stdin(Stdio::piped()).stdout(out.try_clone()?).stderr(out);
    let began = Instant::now();
    let mut child = cmd.spawn().with_context(|| format!("starting {what}"))?;
    if let Some(mut input) = child.stdin.take() {
        let _ = input.write_all(stdin);
    }
    let (code, cpu, max_rss_kb) = wait_with_usage(child.id())?;
    let wall = began.elapsed();
    if code != 0 {
        bail!(
            "{what} failed (exit {code}); its output:\n{}",
            opconnect_tests::process::log_tail(log, 30)
        );
    }
    Ok(ToolRun {
        wall,
        cpu,
        max_rss_kb,
    })
}

/// A vdirsyncer set-up: one pair for calendars, one for address books, both from `url`.
pub struct Vdirsyncer {
    dir: TempDir,
}

impl Vdirsyncer {
    /// Writes the config for `user` at `url` (the DAV server's root, usually behind a proxy).
    pub fn new(url: &str, user: &str) -> Result<Vdirsyncer> {
        Vdirsyncer::verified(url, user, None)
    }

    /// [`Vdirsyncer::new`] trusting the CA in the PEM file `ca` (`verify = …`) for an https `url`.
    pub fn verified(url: &str, user: &str, ca: Option<&Path>) -> Result<Vdirsyncer> {
        Vdirsyncer::pairs(url, user, ca, &["caldav", "carddav"])
    }

    /// [`Vdirsyncer::verified`] with only the pairs of `kinds` (`caldav`, `carddav`).
    pub fn pairs(url: &str, user: &str, ca: Option<&Path>, kinds: &[&str]) -> Result<Vdirsyncer> {
        let verify = ca
            .map(|ca| format!("verify = \"{}\"\n", ca.display()))
            .unwrap_or_default();
        let dir = opconnect_tests::process::short_tempdir("vds")?;
        let d = dir.path().display();
        let password = password_of(user);
        let mut config = format!("[general]\nstatus_path = \"{d}/status/\"\n");
        for (kind, ext) in [("caldav", ".ics"), ("carddav", ".vcf")] {
            if !kinds.contains(&kind) {
                continue;
            }
            config.push_str(&format!(
                "\n[pair {kind}]\na = \"{kind}_remote\"\nb = \"{kind}_local\"\n\
                 collections = [\"from a\"]\nconflict_resolution = \"a wins\"\n\
                 \n[storage {kind}_remote]\ntype = \"{kind}\"\nurl = \"{url}\"\n\
                 username = \"{user}\"\npassword = \"{password}\"\n{verify}\
                 \n[storage {kind}_local]\ntype = \"filesystem\"\npath = \"{d}/local/{kind}/\"\n\
                 fileext = \"{ext}\"\n"
            ));
        }
        fs::write(dir.path().join("config"), config)?;
        Ok(Vdirsyncer { dir })
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("vdirsyncer");
        cmd.arg("-c").arg(self.dir.path().join("config")).args(args);
        // Its own files only: no user config, no cache elsewhere.
        cmd.env("HOME", self.dir.path());
        cmd
    }

    /// `discover` (answering yes to creating the local collections), then `sync`: what a user
    /// runs for a first sync. The two runs' costs are added.
    pub fn first_sync(&self) -> Result<ToolRun> {
        let log = self.dir.path().join("discover.log");
        let discover = run_measured(
            self.command(&["discover"]),
            &b"y\n".repeat(20),
            "vdirsyncer discover",
            &log,
        )?;
        let sync = self.sync()?;
        Ok(ToolRun {
            wall: discover.wall + sync.wall,
            cpu: discover.cpu + sync.cpu,
            max_rss_kb: discover.max_rss_kb.max(sync.max_rss_kb),
        })
    }

    /// `vdirsyncer sync` of every pair.
    pub fn sync(&self) -> Result<ToolRun> {
        let log = self.dir.path().join("sync.log");
        run_measured(self.command(&["sync"]), b"", "vdirsyncer sync", &log)
    }

    /// Where the tool keeps its local copy of the collections of `kind`, one folder each.
    pub fn local_dir(&self, kind: &str) -> PathBuf {
        self.dir.path().join("local").join(kind)
    }

    /// Items the tool has stored locally for `kind` (`caldav`, `carddav`).
    pub fn local_items(&self, kind: &str) -> usize {
        let ext = if kind == "caldav" { "ics" } else { "vcf" };
        count_files(&self.dir.path().join("local").join(kind), &|p| {
            p.extension().is_some_and(|e| e == ext)
        })
    }
}

/// An mbsync set-up pulling every folder of `user` into a local Maildir.
pub struct Mbsync {
    dir: TempDir,
}

impl Mbsync {
    /// `max_size`: mbsync's `MaxSize` (`None`: whole messages; `Some("1k")`: a larger message is
    /// stored as a placeholder holding its header, unless it is flagged).
    pub fn new(port: u16, user: &str, max_size: Option<&str>) -> Result<Mbsync> {
        Mbsync::with_tls(port, user, max_size, None)
    }

    /// [`Mbsync::new`] over IMAPS to `localhost:port`, trusting the CA in the PEM file `ca`
    /// (`CertificateFile`), when `ca` is given.
    pub fn with_tls(port: u16, user: &str, max_size: Option<&str>, ca: Option<&Path>) -> Result<Mbsync> {
        let (host, tls) = match ca {
            Some(ca) => (
                "localhost",
                format!("SSLType IMAPS\nCertificateFile {}\n", ca.display()),
            ),
            None => ("127.0.0.1", "SSLType None\n".to_owned()),
        };
        let dir = opconnect_tests::process::short_tempdir("mbs")?;
        let d = dir.path().display();
        fs::create_dir_all(dir.path().join("mail"))?;
        let max = max_size.map(|m| format!("MaxSize {m}\n")).unwrap_or_default();
        let config = format!(
            "IMAPAccount bench\nHost {host}\nPort {port}\nUser {user}\nPass {pw}\n\
             {tls}AuthMechs LOGIN\n\n\
             IMAPStore remote\nAccount bench\n\n\
             MaildirStore local\nPath {d}/mail/\nInbox {d}/mail/INBOX\nSubFolders Verbatim\n\n\
             Channel bench\nFar :remote:\nNear :local:\nPatterns *\nCreate Near\nSync Pull\n\
             Expunge None\nSyncState *\n{max}",
            pw = password_of(user),
        );
        fs::write(dir.path().join("mbsyncrc"), config)?;
        Ok(Mbsync { dir })
    }

    /// `mbsync -a`.
    pub fn sync(&self) -> Result<ToolRun> {
        let mut cmd = Command::new("mbsync");
        cmd.arg("-c").arg(self.dir.path().join("mbsyncrc")).arg("-a");
        cmd.env("HOME", self.dir.path());
        run_measured(cmd, b"", "mbsync", &self.dir.path().join("mbsync.log"))
    }

    /// The Maildir root: one folder per mailbox (`INBOX`, `Archive`, …).
    pub fn mail_dir(&self) -> PathBuf {
        self.dir.path().join("mail")
    }

    /// From now on `sync` sends local changes to the server (new messages, flags, deletions,
    /// then EXPUNGE there) instead of pulling: a user's `mbsync -a` after working offline.
    pub fn push_from_now(&self) -> Result<()> {
        let path = self.dir.path().join("mbsyncrc");
        let config = fs::read_to_string(&path)?;
        let pushed = config.replace("Sync Pull\nExpunge None\n", "Sync Push\nExpunge Far\n");
        anyhow::ensure!(pushed != config, "mbsyncrc: no `Sync Pull` to turn into a push");
        fs::write(path, pushed)?;
        Ok(())
    }

    /// Messages mbsync has stored locally (files in every cur/ and new/).
    pub fn local_messages(&self) -> usize {
        count_files(&self.dir.path().join("mail"), &|p| {
            p.parent()
                .and_then(Path::file_name)
                .is_some_and(|d| d == "cur" || d == "new")
        })
    }
}

/// Files under `dir` (recursively) whose path satisfies `wanted`.
fn count_files(dir: &Path, wanted: &dyn Fn(&Path) -> bool) -> usize {
    let mut n = 0;
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else if wanted(&path) {
                n += 1;
            }
        }
    }
    n
}

/// The first line a program prints about its version, or `not found`.
pub fn version_of(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output();
    match out {
        Ok(o) => {
            let text = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
            text.lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim()
                .to_string()
        }
        Err(_) => "not found".into(),
    }
}

/// The installed Debian version of `package`.
pub fn package_version(package: &str) -> String {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Version}", package])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "not installed".into())
}
