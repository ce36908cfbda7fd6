//! A private Postfix submission server for the tests (root only, which this machine and CI are),
//! configured as `shared/NOTES/servers.md` describes: SASL AUTH required, checked by Dovecot's auth
//! service over an `inet_listener`; every recipient of the domain `localhost` is delivered into
//! Dovecot over LMTP. Deliveries are counted from Postfix's own log.
//!
//! ```text
//!   TempDir/ etc/main.cf etc/master.cf  queue/  data/  maillog  master.out
//! ```
//!
//! The master runs in the foreground (`master -c etc -d`: no setsid, so it stays the leader of the
//! process group the harness gives it, and SIGKILL of that group takes every Postfix process down).
//! Nothing is shared with a system Postfix: own config, queue and data directories, one listener
//! on 127.0.0.1, no port 25.
//!
//! ```rust,ignore
//! let auth_port = ports::free_port()?;
//! let dovecot = Dovecot::start_with(postfix::dovecot_options(auth_port))?;
//! let postfix = Postfix::start(&dovecot, auth_port)?;        // or Postfix::with_dovecot()
//! ```

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use tempfile::TempDir;

use crate::process::{self, Spawned};
use crate::{Dovecot, DovecotOptions, ports};

/// Start-up limit. Postfix is ready in about 0.3–0.8 s; a loaded CI machine gets slack.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Where Debian keeps the Postfix daemons (`postconf -d daemon_directory`).
const DAEMON_DIRECTORY: &str = "/usr/lib/postfix/sbin";

/// Options for a Dovecot that also serves its auth protocol on 127.0.0.1:`auth_port`, for
/// Postfix's `smtpd_sasl_type = dovecot`.
pub fn dovecot_options(auth_port: u16) -> DovecotOptions {
    DovecotOptions {
        extra_config: auth_listener_config(auth_port),
        ..Default::default()
    }
}

/// The `service auth` block that [`dovecot_options`] appends to `dovecot.conf`.
pub fn auth_listener_config(auth_port: u16) -> String {
    format!(
        "service auth {{\n  inet_listener auth-postfix {{\n    address = 127.0.0.1\n    port = {auth_port}\n  }}\n}}\n"
    )
}

/// One line of the maillog about one recipient: `QUEUEID: to=<RCPT>, ..., status=STATUS (...)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub queue_id: String,
    pub to: String,
    /// `sent`, `bounced`, `deferred`, …
    pub status: String,
}

/// A running private Postfix; its process group is killed on drop.
pub struct Postfix {
    dir: TempDir,
    port: u16,
    lmtp_port: u16,
    auth_port: u16,
    child: Option<Spawned>,
    started_in: Duration,
    /// An implicit-TLS listener (RFC 8314 §3) and the directory with its `server.pem`/`server.key`.
    /// The implicit-TLS listener's port, the STARTTLS listener's port, and the certificate dir.
    smtps: Option<(u16, u16, PathBuf)>,
}

impl Postfix {
    /// A Dovecot with an auth listener and a Postfix in front of it.
    pub fn with_dovecot() -> Result<(Dovecot, Postfix)> {
        let auth_port = ports::free_port()?;
        let dovecot = Dovecot::start_with(dovecot_options(auth_port))?;
        let postfix = Postfix::start(&dovecot, auth_port)?;
        Ok((dovecot, postfix))
    }

    /// Starts on a free port, authenticating against Dovecot's auth service on `auth_port` (see
    /// [`dovecot_options`]) and delivering into `dovecot` over LMTP. Retries with a new port if the
    /// chosen one was taken meanwhile.
    pub fn start(dovecot: &Dovecot, auth_port: u16) -> Result<Postfix> {
        Self::start_tls(dovecot, auth_port, None)
    }

    /// As [`Postfix::start`], plus an implicit-TLS (`smtps`) listener and a listener that requires
    /// STARTTLS (RFC 3207) before anything else, both presenting the certificate
    /// `server.pem` with key `server.key` from `tls_dir` (e.g. [`crate::tls::make_self_signed`]).
    pub fn start_tls(dovecot: &Dovecot, auth_port: u16, tls_dir: Option<&Path>) -> Result<Postfix> {
        if !process::is_root() {
            bail!("the private Postfix needs root (its daemons switch to the `postfix` user)");
        }
        process::lookup_user("postfix")
            .context("Postfix is not installed (scripts/test installs the `postfix` package)")?;
        let mut last_error = None;
        for _ in 0..3 {
            let mut postfix = Self::prepare(dovecot.lmtp_port(), auth_port)?;
            if let Some(dir) = tls_dir {
                postfix.smtps = Some((ports::free_port()?, ports::free_port()?, dir.to_owned()));
                postfix.write_config()?;
            }
            match postfix.spawn() {
                Ok(()) => return Ok(postfix),
                Err(e) if postfix.log().contains("Address already in use") => last_error = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_error.expect("three attempts")).context("Postfix: ports kept being taken")
    }

    fn prepare(lmtp_port: u16, auth_port: u16) -> Result<Postfix> {
        let dir = process::short_tempdir("pf")?;
        // The daemons run as `postfix` and must reach the queue through the temp dir.
        process::chmod(dir.path(), 0o755)?;
        for sub in ["etc", "queue", "data"] {
            fs::create_dir(dir.path().join(sub))?;
        }
        let (uid, gid) = process::lookup_user("postfix")?;
        process::chown_recursive(&dir.path().join("data"), uid, gid)?;
        let postfix = Postfix {
            dir,
            port: ports::free_port()?,
            lmtp_port,
            auth_port,
            child: None,
            started_in: Duration::ZERO,
            smtps: None,
        };
        postfix.write_config()?;
        postfix.create_queue(uid)?;
        Ok(postfix)
    }

    fn write_config(&self) -> Result<()> {
        let postfix = self;
        for (name, text) in [("main.cf", postfix.main_cf()), ("master.cf", postfix.master_cf())] {
            let path = postfix.etc().join(name);
            fs::write(&path, text)?;
            // Postfix does not read a configuration file younger than a second: it re-reads it
            // every 300 ms until it is older, which would add 2 s to each start.
            let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
            fs::File::options()
                .write(true)
                .open(&path)?
                .set_modified(an_hour_ago)
                .with_context(|| format!("backdating {}", path.display()))?;
        }
        Ok(())
    }

    /// The queue's subdirectories with the owners and modes `postfix check` gives them (it would
    /// create them too, but takes 2 s).
    fn create_queue(&self, uid: u32) -> Result<()> {
        let postdrop = group_id("postdrop")?;
        let queue = self.dir.path().join("queue");
        let dirs: [(&str, u32, u32, u32); 15] = [
            ("active", uid, 0, 0o700),
            ("bounce", uid, 0, 0o700),
            ("corrupt", uid, 0, 0o700),
            ("defer", uid, 0, 0o700),
            ("deferred", uid, 0, 0o700),
            ("flush", uid, 0, 0o700),
            ("hold", uid, 0, 0o700),
            ("incoming", uid, 0, 0o700),
            ("private", uid, 0, 0o700),
            ("saved", uid, 0, 0o700),
            ("trace", uid, 0, 0o700),
            ("maildrop", uid, postdrop, 0o730),
            ("public", uid, postdrop, 0o710),
            ("pid", 0, 0, 0o755),
            ("", 0, 0, 0o755),
        ];
        for (name, owner, group, mode) in dirs {
            let path = queue.join(name);
            if !name.is_empty() {
                fs::create_dir(&path)?;
            }
            std::os::unix::fs::chown(&path, Some(owner), Some(group))
                .with_context(|| format!("chown {}", path.display()))?;
            process::chmod(&path, mode)?;
        }
        Ok(())
    }

    fn main_cf(&self) -> String {
        let d = self.dir.path().display();
        format!(
            r#"# Private test instance written by opconnect-tests (see shared/NOTES/servers.md).
compatibility_level = 3.6
queue_directory = {d}/queue
data_directory = {d}/data
maillog_file = {d}/maillog
maillog_file_prefixes = {d}
myhostname = opconnect-test.localhost
mydomain = localhost
myorigin = localhost
# `localhost` is not local: it is a virtual domain delivered into Dovecot.
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.1/32
biff = no
virtual_mailbox_domains = localhost
virtual_transport = lmtp:inet:127.0.0.1:{lmtp}
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = inet:127.0.0.1:{auth}
smtpd_tls_security_level = none
smtp_tls_security_level = none
lmtp_tls_security_level = none
# AUTH is required for every message, also from loopback.
smtpd_client_restrictions = permit_sasl_authenticated, reject
smtpd_relay_restrictions = permit_sasl_authenticated, reject
smtpd_recipient_restrictions = permit_sasl_authenticated, reject
# Retry soon after Dovecot comes back, and do not throttle a daemon for long.
minimal_backoff_time = 1s
maximal_backoff_time = 2s
queue_run_delay = 1s
service_throttle_time = 1s
"#,
            lmtp = self.lmtp_port,
            auth = self.auth_port,
        )
    }

    fn master_cf(&self) -> String {
        format!(
            "# service type private unpriv chroot wakeup maxproc command\n\
             127.0.0.1:{port} inet n - n - - smtpd\n\
             pickup    unix  n - n 60 1 pickup\n\
             cleanup   unix  n - n - 0 cleanup\n\
             qmgr      unix  n - n 300 1 qmgr\n\
             rewrite   unix  - - n - - trivial-rewrite\n\
             bounce    unix  - - n - 0 bounce\n\
             defer     unix  - - n - 0 bounce\n\
             trace     unix  - - n - 0 bounce\n\
             verify    unix  - - n - 1 verify\n\
             flush     unix  n - n 1000? 0 flush\n\
             proxymap  unix  - - n - - proxymap\n\
             smtp      unix  - - n - - smtp\n\
             showq     unix  n - n - - showq\n\
             error     unix  - - n - - error\n\
             retry     unix  - - n - - error\n\
             discard   unix  - - n - - discard\n\
             lmtp      unix  - - n - - lmtp\n\
             anvil     unix  - - n - 1 anvil\n\
             scache    unix  - - n - 1 scache\n\
             postlog   unix-dgram n - n - 1 postlogd\n{smtps}",
            port = self.port,
            smtps = self.smtps_line(),
        )
    }

    /// The implicit-TLS listener's master.cf line, when there is one.
    fn smtps_line(&self) -> String {
        let Some((port, starttls, dir)) = &self.smtps else {
            return String::new();
        };
        let d = dir.display();
        format!(
            "127.0.0.1:{port} inet n - n - - smtpd -o smtpd_tls_wrappermode=yes \
             -o smtpd_tls_security_level=encrypt -o smtpd_tls_chain_files={d}/server.key,{d}/server.pem\n\
             127.0.0.1:{starttls} inet n - n - - smtpd \
             -o smtpd_tls_security_level=encrypt -o smtpd_tls_chain_files={d}/server.key,{d}/server.pem\n\
             tlsmgr    unix  - - n 1000? 1 tlsmgr\n"
        )
    }

    /// The implicit-TLS listener's port (started with [`Postfix::start_tls`]).
    pub fn smtps_port(&self) -> Option<u16> {
        self.smtps.as_ref().map(|(port, _, _)| *port)
    }

    /// The STARTTLS listener's port (started with [`Postfix::start_tls`]).
    pub fn starttls_port(&self) -> Option<u16> {
        self.smtps.as_ref().map(|(_, port, _)| *port)
    }

    fn spawn(&mut self) -> Result<()> {
        let began = Instant::now();
        let master = Path::new(DAEMON_DIRECTORY).join("master");
        let mut cmd = Command::new(&master);
        cmd.arg("-c").arg(self.etc()).arg("-d");
        let mut child = Spawned::spawn("postfix master", cmd, &self.dir.path().join("master.out"))?;
        let port = self.port;
        child
            .wait_ready(START_TIMEOUT, || greets(port))
            .map_err(|e| anyhow::anyhow!("{e:#}\nmaillog:\n{}", self.log()))?;
        self.started_in = began.elapsed();
        self.child = Some(child);
        Ok(())
    }

    fn etc(&self) -> PathBuf {
        self.dir.path().join("etc")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `smtp://127.0.0.1:PORT` (loopback without STARTTLS: plaintext AUTH is allowed there only).
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// How long the last start took until the SMTP greeting arrived.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// The instance's directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("maillog")
    }

    /// The whole maillog so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Every per-recipient outcome logged so far (`to=<…>, … status=…`), oldest first.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.log().lines().filter_map(parse_delivery).collect()
    }

    /// How many times `rcpt` got a message (`status=sent`).
    pub fn delivered_to(&self, rcpt: &str) -> usize {
        self.deliveries()
            .iter()
            .filter(|d| d.to == rcpt && d.status == "sent")
            .count()
    }

    /// The distinct queue ids of messages accepted with envelope sender `sender`, oldest first.
    /// Each message submitted to this server has exactly one.
    pub fn accepted_from(&self, sender: &str) -> Vec<String> {
        let needle = format!(": from=<{sender}>,");
        let mut ids: Vec<String> = Vec::new();
        for line in self.log().lines() {
            if !line.contains("postfix/qmgr[") {
                continue;
            }
            if let Some((prefix, _)) = line.split_once(&needle) {
                let id = prefix.rsplit(' ').next().unwrap_or_default().to_string();
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        ids
    }

    /// Waits until `rcpt` has an outcome logged with any status (`sent`, `bounced`, …), so that
    /// the asynchronous delivery after the SMTP `250` is finished.
    pub fn wait_for_outcome(&self, rcpt: &str, timeout: Duration) -> Result<Delivery> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(d) = self
                .deliveries()
                .into_iter()
                .find(|d| d.to == rcpt && d.status != "deferred")
            {
                return Ok(d);
            }
            if Instant::now() >= deadline {
                bail!(
                    "no final outcome for {rcpt} after {timeout:?}; maillog:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(process::POLL);
        }
    }

    /// Kills every Postfix process (SIGKILL of the group); queue, data and port are kept for
    /// [`Postfix::start_again`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill();
        }
    }

    /// Starts again on the same port with the same queue.
    pub fn start_again(&mut self) -> Result<()> {
        self.stop();
        self.spawn()
            .context("Postfix start_again (was the port taken meanwhile?)")
    }

    /// True while the server runs (between start and stop).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The id of a local group, e.g. `postdrop` (the postfix package creates it).
fn group_id(name: &str) -> Result<u32> {
    let out = Command::new("getent")
        .args(["group", name])
        .output()
        .context("running getent")?;
    let line = String::from_utf8_lossy(&out.stdout);
    match line.trim().split(':').nth(2) {
        Some(gid) if out.status.success() => Ok(gid.parse()?),
        _ => bail!("no local group {name:?} (getent group {name}); is postfix installed?"),
    }
}

/// `… postfix/lmtp[12]: 4Abc: to=<bob@localhost>, relay=…, status=sent (250 …)`.
fn parse_delivery(line: &str) -> Option<Delivery> {
    let (prefix, rest) = line.split_once(": to=<")?;
    let queue_id = prefix.rsplit(' ').next()?.to_string();
    let (to, rest) = rest.split_once('>')?;
    let status = rest.split_once("status=")?.1;
    let status = status.split([' ', ',']).next()?.to_string();
    Some(Delivery {
        queue_id,
        to: to.to_string(),
        status,
    })
}

/// Ready means the `220` greeting arrived (smtpd greets only once it reached Dovecot's auth).
fn greets(port: u16) -> bool {
    use std::io::Read;
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut buf = [0u8; 3];
    stream.read_exact(&mut buf).is_ok() && &buf == b"220"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_delivery_line() {
        let line = "Nov 23 23:15:30 opconnect-test postfix/lmtp[11446]: 4Cb2: to=<bob@localhost>, \
                    relay=127.0.0.1[127.0.0.1]:2400, delay=0.1, status=sent (250 2.0.0 Saved)";
        assert_eq!(
            parse_delivery(line),
            Some(Delivery {
                queue_id: "4Cb2".into(),
                to: "bob@localhost".into(),
                status: "sent".into()
            })
        );
        assert_eq!(parse_delivery("postfix/qmgr[1]: 4Cb2: removed"), None);
    }
}
