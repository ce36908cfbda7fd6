//! A private Cyrus IMAP 3.6 per test: IMAP plus CalDAV (RFC 4791), CardDAV (RFC 6352), scheduling
//! (RFC 6638) and free/busy over HTTP, configured as `shared/NOTES/servers.md` describes. Users come
//! from [`crate::USERS`] in a private sasldb; each logs in over IMAP once so that Cyrus creates
//! their mailbox and with it their DAV homes (`Default` calendar and address book).
//!
//! ```text
//!   TempDir/ imapd.conf cyrus.conf master.log
//!            conf/ (configdirectory: sasldb2, db/, socket/, proc/, lock/, master.pid)
//!            spool/ (partition-default)  tmp/
//!   http://127.0.0.1:HTTP/dav/calendars/user/<user>/Default/      the default calendar (VEVENT, VTODO, …)
//!   http://127.0.0.1:HTTP/dav/addressbooks/user/<user>/Default/   the default address book
//! ```
//!
//! The Debian package `cyrus-imapd` conflicts with `dovecot-imapd`, so `scripts/test` installs
//! `cyrus-common` (master, ctl_cyrusdb), `cyrus-caldav` (httpd) and `sasl2-bin`, and unpacks only the
//! binaries of `cyrus-imapd` (imapd, idled) into [`DEFAULT_IMAPD_DIR`] (or `$OPCONNECT_CYRUS_DIR`).
//!
//! ```text
//!   test ──spawn (pgid = sh, PDEATHSIG = TERM)──▶ sh (watchdog) ──▶ master ──▶ imapd, httpd, idled
//!     └── Drop: SIGKILL to -pgid        test dies: sh gets SIGTERM ──▶ kill -KILL 0 (the group)
//! ```
//!
//! As root (CI) Cyrus runs as the `cyrus` user, and the harness starts the group as that user
//! directly; as a normal user everything runs as that user (`cyrus_user` names them). Master's
//! workers do not exit when master dies, hence the watchdog.
//! Cyrus logs only to syslog: when it does not come up, master's own output is all the error shows.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tempfile::TempDir;

use crate::dav::{DavHttp, DavServer};
use crate::http::{HttpRequest, HttpResponse};
use crate::imap::ImapProbe;
use crate::process::{self, Spawned};
use crate::{USERS, password_of, ports};

/// Start-up limit. On 2 cores master greets in about 0.1 s, and the first logins of alice and bob
/// take another 0.3–0.6 s; a loaded CI machine gets slack.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Where `scripts/test` unpacks the binaries of the `cyrus-imapd` package (`dpkg-deb -x`).
pub const DEFAULT_IMAPD_DIR: &str = "/opt/opconnect-test/cyrus";

/// Binaries of `cyrus-common` and `cyrus-caldav` (Debian's `service_path`).
const CYRUS_LIBEXEC: &str = "/usr/lib/cyrus/bin";

/// The account Cyrus's processes run as (created by `cyrus-common`).
const CYRUS_USER: &str = "cyrus";

/// The ports of one instance; they stay the same across [`Cyrus::start_again`].
#[derive(Debug, Clone, Copy)]
struct Ports {
    imap: u16,
    http: u16,
}

/// The programs an instance runs.
#[derive(Debug, Clone)]
struct Programs {
    master: PathBuf,
    imapd: PathBuf,
    idled: PathBuf,
    httpd: PathBuf,
    ctl_cyrusdb: PathBuf,
}

impl Programs {
    fn find() -> Result<Programs> {
        let unpacked = std::env::var_os("OPCONNECT_CYRUS_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_IMAPD_DIR))
            .join(CYRUS_LIBEXEC.trim_start_matches('/'));
        // imapd and idled: from the unpacked package, else from an installed `cyrus-imapd`.
        let imap_bin = |name: &str| -> Result<PathBuf> {
            [unpacked.join(name), Path::new(CYRUS_LIBEXEC).join(name)]
                .into_iter()
                .find(|p| p.is_file())
                .with_context(|| {
                    format!(
                        "Cyrus `{name}` is missing from {} and {CYRUS_LIBEXEC} \
                         (scripts/test unpacks the cyrus-imapd package there)",
                        unpacked.display()
                    )
                })
        };
        let common_bin = |name: &str, package: &str| -> Result<PathBuf> {
            let p = Path::new(CYRUS_LIBEXEC).join(name);
            if p.is_file() {
                Ok(p)
            } else {
                bail!(
                    "Cyrus `{}` is missing: install {package} (scripts/test does)",
                    p.display()
                )
            }
        };
        Ok(Programs {
            master: process::find_program("cyrmaster").context("Cyrus master (package cyrus-common)")?,
            imapd: imap_bin("imapd")?,
            idled: imap_bin("idled")?,
            httpd: common_bin("httpd", "cyrus-caldav")?,
            ctl_cyrusdb: common_bin("ctl_cyrusdb", "cyrus-common")?,
        })
    }
}

/// A running private Cyrus. Dropping it kills the whole process group.
pub struct Cyrus {
    dir: TempDir,
    ports: Ports,
    programs: Programs,
    /// uid and gid Cyrus runs as; they own `conf/`, `spool/` and `tmp/`.
    owner: (u32, u32),
    /// Their name, Cyrus's `cyrus_user` and admin: `cyrus` as root, else the current user.
    user: String,
    child: Option<Spawned>,
    started_in: Duration,
}

impl Cyrus {
    /// Starts an instance with users alice and bob, each logged in once (their DAV homes exist).
    /// Retries with new ports if one was taken meanwhile.
    pub fn start() -> Result<Cyrus> {
        let programs = Programs::find()?;
        process::find_program("saslpasswd2").context("saslpasswd2 (package sasl2-bin)")?;
        let mut last_error = None;
        for _ in 0..3 {
            let mut cyrus = Self::prepare(programs.clone())?;
            match cyrus.spawn() {
                Ok(()) => {
                    cyrus.provision_users()?;
                    return Ok(cyrus);
                }
                Err(e)
                    if !ports::port_is_free(cyrus.ports.imap) || !ports::port_is_free(cyrus.ports.http) =>
                {
                    last_error = Some(e)
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_error.expect("three attempts")).context("Cyrus: ports kept being taken")
    }

    fn prepare(programs: Programs) -> Result<Cyrus> {
        let dir = process::short_tempdir("cy")?;
        let p = ports::free_ports(2)?;
        let root = process::is_root();
        let (owner, user) = if root {
            let owner =
                process::lookup_user(CYRUS_USER).context("Cyrus runs as `cyrus` (package cyrus-common)")?;
            (owner, CYRUS_USER.to_string())
        } else {
            // `cyrus_user` names whoever runs the tests: master then has no uid to change to.
            let me = process::current_user_name()?;
            ((process::current_uid(), process::current_gid()), me)
        };
        // Cyrus's processes run as `owner` and must reach their folders through the temp dir.
        process::chmod(dir.path(), 0o755)?;
        let cyrus = Cyrus {
            dir,
            ports: Ports {
                imap: p[0],
                http: p[1],
            },
            programs,
            owner,
            user,
            child: None,
            started_in: Duration::ZERO,
        };
        let d = cyrus.dir.path();
        for sub in [
            "conf/db",
            "conf/socket",
            "conf/proc",
            "conf/lock",
            "conf/sieve",
            "spool",
            "tmp",
        ] {
            fs::create_dir_all(d.join(sub))?;
        }
        for (user, _) in USERS {
            // Cyrus's telemetry: every session of a user with a directory here is written to it,
            // which is how tests count the requests the agent sends (see `Cyrus::requests`).
            fs::create_dir_all(cyrus.telemetry_dir(user))?;
        }
        fs::write(cyrus.config_path(), cyrus.render_imapd_conf())?;
        fs::write(d.join("cyrus.conf"), cyrus.render_cyrus_conf())?;
        for (user, pw) in USERS {
            cyrus.set_password(user, pw)?;
        }
        if root {
            for sub in ["conf", "spool", "tmp"] {
                process::chown_recursive(&d.join(sub), owner.0, owner.1)?;
            }
        }
        Ok(cyrus)
    }

    fn render_imapd_conf(&self) -> String {
        let d = self.dir.path().display();
        let user = &self.user;
        format!(
            "# Private test instance written by opconnect-tests (see shared/NOTES/servers.md).\n\
             configdirectory: {d}/conf\n\
             defaultpartition: default\n\
             partition-default: {d}/spool\n\
             sievedir: {d}/conf/sieve\n\
             temp_path: {d}/tmp\n\
             lmtpsocket: {d}/conf/socket/lmtp\n\
             idlesocket: {d}/conf/socket/idle\n\
             notifysocket: {d}/conf/socket/notify\n\
             servername: localhost\n\
             cyrus_user: {user}\n\
             admins: {user}\n\
             allowplaintext: yes\n\
             sasl_pwcheck_method: auxprop\n\
             sasl_auxprop_plugin: sasldb\n\
             sasl_sasldb_path: {d}/conf/sasldb2\n\
             sasl_mech_list: PLAIN LOGIN\n\
             # A user's first login creates their INBOX, and with it their DAV homes.\n\
             autocreate_quota: 0\n\
             autocreate_post: 1\n\
             unixhierarchysep: yes\n\
             altnamespace: yes\n\
             httpmodules: caldav carddav freebusy\n\
             caldav_allowscheduling: on\n\
             calendar_user_address_set: localhost\n"
        )
    }

    /// `master` does not pass `-C` on, so every command names the config itself.
    fn render_cyrus_conf(&self) -> String {
        let conf = self.config_path();
        let conf = conf.display();
        let p = &self.programs;
        format!(
            "# Private test instance written by opconnect-tests.\n\
             START {{\n  recover cmd=\"{ctl} -C {conf} -r\"\n}}\n\
             SERVICES {{\n\
             \x20 imap cmd=\"{imapd} -C {conf}\" listen=\"127.0.0.1:{imap}\" prefork=0\n\
             \x20 http cmd=\"{httpd} -C {conf}\" listen=\"127.0.0.1:{http}\" prefork=0\n\
             }}\n\
             EVENTS {{\n  checkpoint cmd=\"{ctl} -C {conf} -c\" period=30\n}}\n\
             DAEMON {{\n  idled cmd=\"{idled} -C {conf}\"\n}}\n",
            ctl = p.ctl_cyrusdb.display(),
            imapd = p.imapd.display(),
            httpd = p.httpd.display(),
            idled = p.idled.display(),
            imap = self.ports.imap,
            http = self.ports.http,
        )
    }

    /// Sets `user`'s password in the private sasldb (`saslpasswd2 -p -c`).
    fn set_password(&self, user: &str, password: &str) -> Result<()> {
        let sasldb = self.dir.path().join("conf/sasldb2");
        let mut cmd = Command::new(process::find_program("saslpasswd2")?);
        cmd.arg("-p")
            .arg("-f")
            .arg(&sasldb)
            .args(["-u", "localhost", "-c", user]);
        // saslpasswd2 -p reads the password from stdin; run_ok gives it /dev/null, so pipe it here.
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().context("running saslpasswd2")?;
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().expect("piped stdin");
            stdin.write_all(password.as_bytes())?;
        }
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "saslpasswd2 for {user} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    fn spawn(&mut self) -> Result<()> {
        let began = Instant::now();
        let d = self.dir.path();
        let log = self.log_path();
        // master's workers (imapd, httpd, idled) outlive a killed master, so master runs under a
        // shell that leads the process group: when the test process dies the shell gets SIGTERM
        // (its parent-death signal) and kills the whole group.
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(WATCHDOG)
            .arg("cyrus-watchdog")
            .arg(&self.programs.master)
            .arg("-C")
            .arg(self.config_path())
            .arg("-M")
            .arg(d.join("cyrus.conf"))
            .arg("-p")
            .arg(d.join("conf/master.pid"))
            .current_dir(d);
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("opening {}", log.display()))?;
        cmd.stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .process_group(0);
        if process::is_root() {
            // As `cyrus` from the start: uid/gid are set before the pre_exec hook, so the
            // parent-death signal stays armed (a set-uid inside master would clear it).
            cmd.uid(self.owner.0).gid(self.owner.1);
        }
        term_with_parent(&mut cmd);
        let child = cmd.spawn().context("cannot start Cyrus's master under /bin/sh")?;
        let mut child = Spawned::adopt("cyrus master", child);
        let (imap, http) = (self.ports.imap, self.ports.http);
        child
            .wait_ready(START_TIMEOUT, || {
                // Cyrus's greeting, not another test's server on a port taken meanwhile.
                ImapProbe::connect_timeout(imap, Duration::from_millis(500))
                    .is_ok_and(|probe| probe.greeting().contains("Cyrus"))
                    && HttpRequest::new("OPTIONS", "/").send(http).is_ok()
            })
            .with_context(|| {
                format!(
                    "Cyrus did not come up; master's output ({}):\n{}\n\
                     (Cyrus logs only to syslog; without /dev/log its errors are invisible: try strace)",
                    log.display(),
                    process::log_tail(&log, 40)
                )
            })?;
        self.started_in = began.elapsed();
        self.child = Some(child);
        Ok(())
    }

    /// Logs each user in once over IMAP (autocreate makes their INBOX and DAV homes), then waits
    /// until their calendar home answers.
    fn provision_users(&self) -> Result<()> {
        for (user, _) in USERS {
            let probe = self
                .probe(user)
                .with_context(|| format!("first IMAP login of {user}"))?;
            probe.logout()?;
        }
        let deadline = Instant::now() + START_TIMEOUT;
        for (user, _) in USERS {
            loop {
                let home = self.calendar_home(user);
                let r = self.propfind(user, &home, 0)?;
                if r.status == 207 {
                    break;
                }
                if Instant::now() >= deadline {
                    bail!(
                        "Cyrus: {user}'s calendar home {home} answers {}: {}",
                        r.status,
                        r.text()
                    );
                }
                std::thread::sleep(process::POLL);
            }
        }
        Ok(())
    }

    /// Kills the server (SIGKILL of its group); data and ports are kept for [`Cyrus::start_again`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill();
        }
    }

    /// Starts the server again on the same ports with the same data.
    pub fn start_again(&mut self) -> Result<()> {
        self.stop();
        self.spawn()
            .context("Cyrus start_again (was a port taken meanwhile?)")
    }

    /// True while the server runs (between start and stop).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// How long the last start took until the IMAP greeting and an HTTP answer arrived.
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

    pub fn http_port(&self) -> u16 {
        self.ports.http
    }

    /// `imap://127.0.0.1:PORT` (plain; Cyrus offers no STARTTLS here).
    pub fn imap_url(&self) -> String {
        format!("imap://127.0.0.1:{}", self.ports.imap)
    }

    /// `http://127.0.0.1:PORT/`: the server root, where DAV discovery starts (RFC 6764 §6;
    /// Cyrus redirects `/.well-known/caldav` to `/dav/calendars`).
    pub fn dav_url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.ports.http)
    }

    /// The URL of a path on the HTTP port, e.g. `url_of("/dav/calendars/user/alice/")`.
    pub fn url_of(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.ports.http)
    }

    /// `/dav/calendars/user/<user>/`: the calendar home (RFC 4791 §6.2.1).
    pub fn calendar_home(&self, user: &str) -> String {
        format!("/dav/calendars/user/{user}/")
    }

    /// `/dav/addressbooks/user/<user>/`: the address book home (RFC 6352 §7.1.1).
    pub fn addressbook_home(&self, user: &str) -> String {
        format!("/dav/addressbooks/user/{user}/")
    }

    /// The calendar Cyrus creates for every user (VEVENT, VTODO, VJOURNAL, …; named "personal").
    pub fn default_calendar(&self, user: &str) -> String {
        format!("{}Default/", self.calendar_home(user))
    }

    /// The address book Cyrus creates for every user (named "personal").
    pub fn default_addressbook(&self, user: &str) -> String {
        format!("{}Default/", self.addressbook_home(user))
    }

    /// The instance's directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("imapd.conf")
    }

    /// master's stdout and stderr (Cyrus itself logs to syslog).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("master.log")
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn telemetry_dir(&self, user: &str) -> PathBuf {
        self.dir.path().join("conf/log").join(user)
    }

    /// Every HTTP request `user` made so far, from Cyrus's telemetry log (`configdirectory/log/USER`,
    /// one file per server process, passwords masked), in file order.
    pub fn requests(&self, user: &str) -> Result<Vec<HttpLogEntry>> {
        let mut files: Vec<PathBuf> = fs::read_dir(self.telemetry_dir(user))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("http-"))
            })
            .collect();
        files.sort();
        let mut entries = Vec::new();
        for file in files {
            let text = String::from_utf8_lossy(&fs::read(&file)?).into_owned();
            entries.extend(parse_telemetry(&text));
        }
        Ok(entries)
    }

    /// The requests the agent (User-Agent `opconnect/…`) sent as `user`, as `METHOD path`.
    pub fn agent_requests(&self, user: &str) -> Result<Vec<String>> {
        Ok(self
            .requests(user)?
            .into_iter()
            .filter(|r| r.user_agent.starts_with("opconnect/"))
            .map(|r| format!("{} {}", r.method, r.path))
            .collect())
    }

    /// A probe logged in as `user` (one of [`crate::USERS`]).
    pub fn probe(&self, user: &str) -> Result<ImapProbe> {
        let mut probe = ImapProbe::connect(self.ports.imap)?;
        probe.login(user, password_of(user))?;
        Ok(probe)
    }

    /// Sends any request to the HTTP port.
    pub fn send(&self, request: &HttpRequest<'_>) -> Result<HttpResponse> {
        self.http().send(request)
    }

    /// PROPFIND `path` as `user` with the given Depth (RFC 4918 §9.1).
    pub fn propfind(&self, user: &str, path: &str, depth: u8) -> Result<HttpResponse> {
        self.http().propfind(user, password_of(user), path, depth)
    }

    /// Creates calendar `<home>/<slug>/` for VEVENT (MKCALENDAR, RFC 4791 §5.3.1); returns its path.
    pub fn create_calendar(&self, user: &str, slug: &str, display_name: &str) -> Result<String> {
        self.create_calendar_for(user, slug, display_name, &["VEVENT"])
    }

    /// Creates a calendar collection supporting `components` (e.g. `["VTODO"]` for tasks).
    pub fn create_calendar_for(
        &self,
        user: &str,
        slug: &str,
        display_name: &str,
        components: &[&str],
    ) -> Result<String> {
        let path = format!("{}{slug}/", self.calendar_home(user));
        self.http().mkcalendar(user, path, display_name, components)
    }
}

impl DavServer for Cyrus {
    fn http(&self) -> DavHttp {
        DavHttp(self.ports.http)
    }
}

impl Drop for Cyrus {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs master (`"$@"`) and kills the whole process group when told to stop (SIGTERM, from the
/// parent-death signal) or when master exits by itself.
const WATCHDOG: &str = "trap 'kill -KILL 0' TERM HUP INT\n\"$@\" &\nwait $!\nkill -KILL 0\n";

/// `PR_SET_PDEATHSIG` = SIGTERM (not SIGKILL as [`process::die_with_parent`]), so that the
/// watchdog shell can kill its group when the thread that spawned it ends.
#[allow(unsafe_code)]
fn term_with_parent(cmd: &mut Command) {
    let parent = std::process::id();
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe calls
    // (prctl, getppid) without allocating.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() as u32 != parent {
                return Err(std::io::Error::other("parent exited during spawn"));
            }
            Ok(())
        });
    }
}

/// One request in Cyrus's telemetry log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpLogEntry {
    pub method: String,
    pub path: String,
    pub user_agent: String,
}

/// The requests of one telemetry file: each starts with `<UNIXTIME<METHOD PATH HTTP/1.1` and its
/// headers follow up to an empty line; answers start with `>UNIXTIME>`.
fn parse_telemetry(text: &str) -> Vec<HttpLogEntry> {
    let mut out: Vec<HttpLogEntry> = Vec::new();
    let mut in_headers = false;
    for line in text.split('\n').map(|l| l.trim_end_matches('\r')) {
        // A request line may follow a body without a line break: find its marker anywhere.
        let request = line.char_indices().filter(|&(_, c)| c == '<').find_map(|(i, _)| {
            let rest = &line[i + 1..];
            let (stamp, request) = rest.split_once('<')?;
            (!stamp.is_empty() && stamp.bytes().all(|b| b.is_ascii_digit())).then_some(request)
        });
        if let Some(request) = request {
            let mut words = request.split(' ');
            if let (Some(method), Some(path), Some(version)) = (words.next(), words.next(), words.next())
                && version.starts_with("HTTP/")
            {
                out.push(HttpLogEntry {
                    method: method.to_string(),
                    path: path.to_string(),
                    user_agent: String::new(),
                });
                in_headers = true;
                continue;
            }
        }
        if in_headers {
            if line.is_empty() {
                in_headers = false;
            } else if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("user-agent")
                && let Some(last) = out.last_mut()
            {
                last.user_agent = value.trim().to_string();
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_requests_from_telemetry() {
        let log = "---------- alice Mon Nov 23 22:32:17 2026\n\n\
                   <1795473137<OPTIONS / HTTP/1.1\r\nAuthorization: Basic ...   \r\n\
                   user-agent: opconnect/0.1.0\r\n\r\n>1795473137>HTTP/1.1 200 OK\r\nAllow: GET\r\n\r\n\
                   <1795473137<PROPFIND / HTTP/1.1\r\nuser-agent: curl\r\n\r\n\
                   <?xml version=\"1.0\"?>\n<d:propfind xmlns:d=\"DAV:\"/><1795473138<REPORT /dav/x/ HTTP/1.1\r\n\
                   User-Agent: opconnect/0.1.0\r\n\r\n";
        let got = parse_telemetry(log);
        let got: Vec<(&str, &str, &str)> = got
            .iter()
            .map(|e| (e.method.as_str(), e.path.as_str(), e.user_agent.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("OPTIONS", "/", "opconnect/0.1.0"),
                ("PROPFIND", "/", "curl"),
                ("REPORT", "/dav/x/", "opconnect/0.1.0")
            ]
        );
    }
}
