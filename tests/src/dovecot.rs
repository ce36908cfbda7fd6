//! A private Dovecot 2.3 (IMAP, IMAPS, ManageSieve, LMTP) per test, configured as
//! `shared/NOTES/servers.md` describes: users from [`crate::USERS`], three namespaces (personal,
//! `shared/%%n/`, `Public/`), the ACL plugin, auto-created special-use mailboxes.
//!
//! ```text
//!   TempDir/ dovecot.conf passwd dovecot.log sendmail.sh
//!            run/ (base_dir)  state/  mail/<user>/Maildir  public/  shared/  outbox/  tls/
//! ```
//!
//! As root (CI) the login processes run as `dovenull`, internal ones and mail as `dovecot`; as a
//! normal user everything runs as that user. Ready means the IMAP greeting arrived.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tempfile::TempDir;

use crate::imap::ImapProbe;
use crate::process::{self, Spawned};
use crate::{USERS, password_of, ports, tls};

/// Start-up limit. Dovecot is ready in 0.15–0.4 s on 2 cores; a loaded CI machine gets slack.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Post-login capabilities of Dovecot 2.3.19 minus IDLE, for the NOOP-polling path. With an
/// explicit list the ACL plugin no longer adds `ACL RIGHTS=texk`, so the list carries them.
const CAPABILITIES_WITHOUT_IDLE: &str = "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE SORT \
    SORT=DISPLAY THREAD=REFERENCES THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL \
    CATENATE UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC \
    ESEARCH ESORT SEARCHRES WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE SNIPPET=FUZZY \
    PREVIEW=FUZZY PREVIEW STATUS=SIZE SAVEDATE LITERAL+ NOTIFY SPECIAL-USE ACL RIGHTS=texk";

/// The special-use mailboxes every user has from the start (RFC 6154).
pub const SPECIAL_USE: &[(&str, &str)] = &[
    ("Drafts", "\\Drafts"),
    ("Sent", "\\Sent"),
    ("Trash", "\\Trash"),
    ("Junk", "\\Junk"),
    ("Archive", "\\Archive"),
];

/// How to start a [`Dovecot`].
#[derive(Debug, Clone, Default)]
pub struct DovecotOptions {
    /// Leave IDLE out of CAPABILITY so that clients fall back to NOOP polling.
    pub hide_idle: bool,
    /// Also listen for IMAPS with a certificate from a private CA (see [`Dovecot::ca_pem`]);
    /// STARTTLS is then offered on the plain port too.
    pub tls: bool,
    /// Appended verbatim to `dovecot.conf`, for tests that need one more setting.
    pub extra_config: String,
}

/// The ports of one instance; they stay the same across [`Dovecot::start_again`].
#[derive(Debug, Clone, Copy)]
struct Ports {
    imap: u16,
    imaps: u16,
    sieve: u16,
    lmtp: u16,
}

/// A running private Dovecot. Dropping it kills the whole process group.
pub struct Dovecot {
    dir: TempDir,
    options: DovecotOptions,
    ports: Ports,
    /// uid and gid that own the mail, public and shared folders.
    mail_owner: (u32, u32),
    child: Option<Spawned>,
    started_in: Duration,
}

impl Dovecot {
    /// A plain-IMAP instance with IDLE.
    pub fn start() -> Result<Dovecot> {
        Self::start_with(DovecotOptions::default())
    }

    /// An instance with the given options. Retries with new ports if one was taken meanwhile.
    pub fn start_with(options: DovecotOptions) -> Result<Dovecot> {
        let mut last_error = None;
        for _ in 0..3 {
            let mut dovecot = Self::prepare(options.clone())?;
            match dovecot.spawn() {
                Ok(()) => return Ok(dovecot),
                Err(e) if dovecot.log().contains("Address already in use") => last_error = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_error.expect("three attempts")).context("Dovecot: ports kept being taken")
    }

    fn prepare(options: DovecotOptions) -> Result<Dovecot> {
        process::find_program("dovecot")?;
        let dir = process::short_tempdir("dc")?;
        let p = ports::free_ports(4)?;
        let ports = Ports {
            imap: p[0],
            imaps: p[1],
            sieve: p[2],
            lmtp: p[3],
        };
        let root = process::is_root();
        let mail_owner = if root {
            process::lookup_user("dovecot").context("Dovecot runs its mail processes as `dovecot`")?
        } else {
            (process::current_uid(), process::current_gid())
        };
        // Mail processes run as `mail_owner` and must reach their folders through the temp dir.
        process::chmod(dir.path(), 0o755)?;
        for sub in ["mail", "public", "shared", "outbox", "state"] {
            fs::create_dir(dir.path().join(sub))?;
        }
        let mut passwd = String::new();
        for (user, pw) in USERS {
            passwd.push_str(&format!("{user}:{{PLAIN}}{pw}::::::\n"));
        }
        fs::write(dir.path().join("passwd"), passwd)?;
        let sendmail = dir.path().join("sendmail.sh");
        let outbox = dir.path().join("outbox");
        fs::write(
            &sendmail,
            format!(
                "#!/bin/sh\n# Stand-in for sendmail: keeps each message (e.g. vacation replies).\n\
                 cat > '{}'/\"$(date +%s%N).$$.eml\"\n",
                outbox.display()
            ),
        )?;
        process::chmod(&sendmail, 0o755)?;
        if options.tls {
            tls::make_server_cert(&dir.path().join("tls"))?;
        }
        let dovecot = Dovecot {
            dir,
            options,
            ports,
            mail_owner,
            child: None,
            started_in: Duration::ZERO,
        };
        fs::write(dovecot.config_path(), dovecot.render_config(root)?)?;
        for sub in ["mail", "public", "shared", "outbox"] {
            process::chown_recursive(&dovecot.dir.path().join(sub), mail_owner.0, mail_owner.1)?;
        }
        Ok(dovecot)
    }

    fn render_config(&self, root: bool) -> Result<String> {
        let d = self.dir.path().display();
        let (login_user, internal_user, internal_group) = if root {
            (
                "dovenull".to_string(),
                "dovecot".to_string(),
                "dovecot".to_string(),
            )
        } else {
            let me = process::current_user_name()?;
            (me.clone(), me, process::current_group_name()?)
        };
        let (uid, gid) = self.mail_owner;
        let p = self.ports;
        let mut c = format!(
            r#"# Private test instance written by opconnect-tests (see shared/NOTES/servers.md).
instance_name = opconnect-test-{imap}
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
listen = 127.0.0.1
protocols = imap lmtp sieve
default_internal_user = {internal_user}
default_internal_group = {internal_group}
default_login_user = {login_user}
first_valid_uid = 0
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_username_format = %Ln
auth_verbose = yes
mail_location = maildir:~/Maildir
mail_plugins = acl
# The agent opens one connection per watched folder; tests add their own probes.
mail_max_userip_connections = 100
hostname = localhost
postmaster_address = postmaster@localhost
sendmail_path = {d}/sendmail.sh

passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%n {d}/passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%n {d}/passwd
  override_fields = uid={uid} gid={gid} home={d}/mail/%n
}}

service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps}
    ssl = yes
  }}
}}
service managesieve-login {{
  chroot =
  inet_listener sieve {{
    address = 127.0.0.1
    port = {sieve}
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp}
  }}
}}
service anvil {{
  chroot =
}}

namespace inbox {{
  type = private
  separator = /
  prefix =
  inbox = yes
"#,
            imap = p.imap,
            imaps = if self.options.tls { p.imaps } else { 0 },
            sieve = p.sieve,
            lmtp = p.lmtp,
        );
        for (name, flag) in SPECIAL_USE {
            c.push_str(&format!(
                "  mailbox {name} {{\n    auto = subscribe\n    special_use = {flag}\n  }}\n"
            ));
        }
        c.push_str(&format!(
            r#"}}
namespace shared {{
  type = shared
  separator = /
  prefix = shared/%%n/
  location = maildir:%%h/Maildir:INDEXPVT=~/Maildir/shared/%%n
  list = children
  subscriptions = no
}}
namespace public {{
  type = public
  separator = /
  prefix = Public/
  location = maildir:{d}/public:INDEXPVT=~/Maildir/public
  list = children
  subscriptions = no
}}

protocol imap {{
  mail_plugins = $mail_plugins imap_acl
}}
protocol lmtp {{
  mail_plugins = $mail_plugins sieve
}}
plugin {{
  acl = vfile
  acl_shared_dict = file:{d}/shared/shared-mailboxes.db
  sieve = file:~/sieve;active=~/.dovecot.sieve
}}
"#
        ));
        if self.options.tls {
            c.push_str(&format!(
                "ssl = yes\nssl_cert = <{d}/tls/server.pem\nssl_key = <{d}/tls/server.key\n"
            ));
        } else {
            c.push_str("ssl = no\n");
        }
        if self.options.hide_idle {
            c.push_str(&format!(
                "protocol imap {{\n  imap_capability = {CAPABILITIES_WITHOUT_IDLE}\n}}\n"
            ));
        }
        c.push_str(&self.options.extra_config);
        c.push('\n');
        Ok(c)
    }

    fn spawn(&mut self) -> Result<()> {
        let began = Instant::now();
        let mut cmd = Command::new(process::find_program("dovecot")?);
        cmd.arg("-F").arg("-c").arg(self.config_path());
        let mut child = Spawned::spawn("dovecot", cmd, &self.log_path())?;
        let port = self.ports.imap;
        child.wait_ready(START_TIMEOUT, || {
            ImapProbe::connect_timeout(port, Duration::from_millis(500)).is_ok()
        })?;
        self.started_in = began.elapsed();
        self.child = Some(child);
        Ok(())
    }

    /// Kills the server (SIGKILL of its group); data and ports are kept for [`Dovecot::start_again`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill();
        }
    }

    /// Starts the server again on the same ports with the same data.
    pub fn start_again(&mut self) -> Result<()> {
        self.stop();
        self.spawn()
            .context("Dovecot start_again (was a port taken meanwhile?)")
    }

    /// True while the server runs (between start and stop).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// How long the last start took until the IMAP greeting arrived.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// The master's pid (its process group id).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Spawned::pid)
    }

    pub fn imap_port(&self) -> u16 {
        self.ports.imap
    }

    /// IMAPS port. Panics unless started with `tls: true`.
    pub fn imaps_port(&self) -> u16 {
        assert!(self.options.tls, "Dovecot was started without `tls: true`");
        self.ports.imaps
    }

    pub fn sieve_port(&self) -> u16 {
        self.ports.sieve
    }

    pub fn lmtp_port(&self) -> u16 {
        self.ports.lmtp
    }

    /// `imap://127.0.0.1:PORT` (plain; STARTTLS offered only with `tls: true`).
    pub fn imap_url(&self) -> String {
        format!("imap://127.0.0.1:{}", self.ports.imap)
    }

    /// `imaps://127.0.0.1:PORT`. Panics unless started with `tls: true`.
    pub fn imaps_url(&self) -> String {
        format!("imaps://127.0.0.1:{}", self.imaps_port())
    }

    /// `sieve://127.0.0.1:PORT` (ManageSieve, RFC 5804).
    pub fn sieve_url(&self) -> String {
        format!("sieve://127.0.0.1:{}", self.ports.sieve)
    }

    /// PEM of the private CA that signed the server certificate (for `tls_ca`).
    /// Panics unless started with `tls: true`.
    pub fn ca_pem(&self) -> PathBuf {
        assert!(self.options.tls, "Dovecot was started without `tls: true`");
        self.dir.path().join("tls").join("ca.pem")
    }

    /// The instance's directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("dovecot.conf")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("dovecot.log")
    }

    /// The whole Dovecot log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Runs `doveadm -c dovecot.conf ARGS…` and returns its stdout; fails if it fails.
    /// Example: `doveadm(&["mailbox", "create", "-u", "alice", "Projects"])`.
    pub fn doveadm(&self, args: &[&str]) -> Result<String> {
        let mut cmd = Command::new(process::find_program("doveadm")?);
        cmd.arg("-c").arg(self.config_path()).args(args);
        process::run_ok(cmd, Duration::from_secs(30))
    }

    /// A probe logged in as `user` (one of [`crate::USERS`]).
    pub fn probe(&self, user: &str) -> Result<ImapProbe> {
        let mut probe = ImapProbe::connect(self.ports.imap)?;
        probe.login(user, password_of(user))?;
        Ok(probe)
    }

    /// APPENDs `raw` to `mailbox` of `user` over IMAP; returns the new UID.
    pub fn append(&self, user: &str, mailbox: &str, raw: &[u8]) -> Result<u32> {
        let mut probe = self.probe(user)?;
        let uid = probe.append(mailbox, &[], raw)?;
        probe.logout()?;
        uid.context("no APPENDUID in the answer")
    }

    /// Grants `rights` (doveadm names, e.g. `["lookup", "read"]`) on `owner`'s `mailbox`
    /// to `identifier` (`user=bob`, `anyone`, …).
    pub fn set_acl(&self, owner: &str, mailbox: &str, identifier: &str, rights: &[&str]) -> Result<()> {
        let mut args = vec!["acl", "set", "-u", owner, mailbox, identifier];
        args.extend_from_slice(rights);
        self.doveadm(&args).map(|_| ())
    }

    /// Creates `Public/NAME` (NAME may contain `/`) that everyone may list, read and write.
    pub fn create_public_folder(&self, name: &str) -> Result<()> {
        let mut path = self.dir.path().join("public");
        // Maildir++ layout: hierarchy levels are joined with dots.
        path.push(format!(".{}", name.replace('/', ".")));
        for sub in ["cur", "new", "tmp"] {
            fs::create_dir_all(path.join(sub))?;
        }
        fs::write(path.join("dovecot-acl"), "anyone lrwstipekxa\n")?;
        let (uid, gid) = self.mail_owner;
        process::chown_recursive(&self.dir.path().join("public"), uid, gid)
    }

    /// Writes messages straight into `user`'s Maildir folder (created if needed): thousands of
    /// messages in well under a second, where APPEND takes one round trip each. Dovecot indexes
    /// them on the next SELECT. Each message comes with its flags as Maildir letters ("S" = \Seen).
    pub fn seed_maildir<'a>(
        &self,
        user: &str,
        folder: &str,
        messages: impl IntoIterator<Item = (Vec<u8>, &'a str)>,
    ) -> Result<usize> {
        let mut dir = self.dir.path().join("mail").join(user).join("Maildir");
        if !folder.eq_ignore_ascii_case("INBOX") {
            // Maildir++: subfolders are dot-prefixed directories joined with dots.
            dir.push(format!(".{}", folder.replace('/', ".")));
        }
        for sub in ["cur", "new", "tmp"] {
            fs::create_dir_all(dir.join(sub))?;
        }
        let mut n = 0;
        for (i, (raw, flags)) in messages.into_iter().enumerate() {
            let name = format!(
                "{}.M{i}P{}.seed,S={}:2,{flags}",
                1_700_000_000 + i,
                std::process::id(),
                raw.len()
            );
            fs::write(dir.join("cur").join(name), raw)?;
            n += 1;
        }
        let (uid, gid) = self.mail_owner;
        process::chown_recursive(&self.dir.path().join("mail").join(user), uid, gid)?;
        Ok(n)
    }

    /// Delivers `raw` to `rcpt` (e.g. `alice@localhost`) over LMTP (RFC 2033), which also runs
    /// the user's active Sieve script.
    pub fn deliver(&self, from: &str, rcpt: &str, raw: &[u8]) -> Result<()> {
        let stream =
            TcpStream::connect((Ipv4Addr::LOCALHOST, self.ports.lmtp)).context("connecting to LMTP")?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut w = stream;
        expect_reply(&mut reader, "220")?;
        for (line, code) in [
            ("LHLO localhost".to_string(), "250"),
            (format!("MAIL FROM:<{from}>"), "250"),
            (format!("RCPT TO:<{rcpt}>"), "250"),
            ("DATA".to_string(), "354"),
        ] {
            w.write_all(format!("{line}\r\n").as_bytes())?;
            expect_reply(&mut reader, code).with_context(|| format!("LMTP {line}"))?;
        }
        let text = String::from_utf8_lossy(raw).replace("\r\n", "\n");
        for line in text.lines() {
            let stuffed = if line.starts_with('.') { "." } else { "" };
            w.write_all(format!("{stuffed}{line}\r\n").as_bytes())?;
        }
        w.write_all(b".\r\n")?;
        expect_reply(&mut reader, "250").context("LMTP delivery")?;
        w.write_all(b"QUIT\r\n")?;
        Ok(())
    }

    /// Messages the server sent out (vacation replies, redirects), oldest first.
    pub fn sent_mail(&self) -> Result<Vec<String>> {
        let mut files: Vec<PathBuf> = fs::read_dir(self.dir.path().join("outbox"))?
            .flatten()
            .map(|e| e.path())
            .collect();
        files.sort();
        files
            .iter()
            .map(|f| fs::read_to_string(f).context("reading outbox"))
            .collect()
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads one SMTP/LMTP reply (possibly multi-line) and checks its code.
fn expect_reply(reader: &mut impl BufRead, code: &str) -> Result<()> {
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            bail!("connection closed, expected {code}");
        }
        if !line.starts_with(code) {
            bail!("expected {code}, got {}", line.trim_end());
        }
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(());
        }
    }
}
