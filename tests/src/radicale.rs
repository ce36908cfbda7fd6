//! A private Radicale 3 (CalDAV RFC 4791, CardDAV RFC 6352) per test: htpasswd users from
//! [`crate::USERS`] with plain passwords, `owner_only` rights, storage in a TempDir, plus WebDAV
//! helpers to provision calendars, address books and items as a user would.
//!
//! ```text
//!   TempDir/ config users radicale.log collections/collection-root/<user>/<collection>/<item>
//!   http://127.0.0.1:PORT/<user>/            principal (created on the user's first request)
//!   http://127.0.0.1:PORT/<user>/<slug>/     a calendar or address book
//! ```

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use tempfile::TempDir;

use crate::dav::{DavHttp, DavServer};
use crate::http::{HttpRequest, HttpResponse};
use crate::process::{self, Spawned};
use crate::{USERS, ports};

/// Start-up limit. Radicale is ready in about 0.25 s; a loaded CI machine gets slack.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// How to start a [`Radicale`].
#[derive(Debug, Clone, Default)]
pub struct RadicaleOptions {
    /// Appended verbatim to the config file (later sections override earlier keys).
    pub extra_config: String,
    /// Serve HTTPS with a self-signed certificate (`openssl req -x509`, CA:TRUE) in
    /// `DIR/tls/server.pem` (see [`crate::tls::make_self_signed`]); the harness's own plain-HTTP
    /// helpers do not work then.
    pub tls: bool,
    /// Take the user from the `X-Remote-User` header (`http_x_remote_user`) instead of checking
    /// passwords: for a front that authenticates (see [`crate::apache`]).
    pub remote_user: bool,
}

/// A running private Radicale. Dropping it kills its process group.
pub struct Radicale {
    dir: TempDir,
    options: RadicaleOptions,
    port: u16,
    child: Option<Spawned>,
    started_in: Duration,
}

impl Radicale {
    pub fn start() -> Result<Radicale> {
        Self::start_with(RadicaleOptions::default())
    }

    /// Starts with options; retries with a new port if the chosen one was taken meanwhile.
    pub fn start_with(options: RadicaleOptions) -> Result<Radicale> {
        process::find_program("radicale")?;
        let mut last_error = None;
        for _ in 0..3 {
            let dir = process::short_tempdir("rd")?;
            let mut radicale = Radicale {
                dir,
                options: options.clone(),
                port: ports::free_port()?,
                child: None,
                started_in: Duration::ZERO,
            };
            radicale.write_files()?;
            match radicale.spawn() {
                Ok(()) => return Ok(radicale),
                Err(e) if radicale.log().contains("already in use") => last_error = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_error.expect("three attempts")).context("Radicale: ports kept being taken")
    }

    fn write_files(&self) -> Result<()> {
        let d = self.dir.path();
        let mut users = String::new();
        for (user, pw) in USERS {
            users.push_str(&format!("{user}:{pw}\n"));
        }
        fs::write(d.join("users"), users)?;
        fs::create_dir(d.join("collections"))?;
        let tls = match self.options.tls {
            true => {
                crate::tls::make_self_signed(&d.join("tls"))?;
                format!(
                    "ssl = True\ncertificate = {d}/tls/server.pem\nkey = {d}/tls/server.key\n",
                    d = d.display()
                )
            }
            false => String::new(),
        };
        let auth = match self.options.remote_user {
            true => "type = http_x_remote_user",
            false => "type = htpasswd",
        };
        let config = format!(
            "# Private test instance written by opconnect-tests (see shared/NOTES/servers.md).\n\
             [server]\nhosts = 127.0.0.1:{port}\n{tls}\n\
             [auth]\n{auth}\nhtpasswd_filename = {d}/users\n\
             htpasswd_encryption = plain\n# No penalty for a wrong password: tests provoke them.\ndelay = 0\n\n\
             [rights]\ntype = owner_only\n\n\
             [storage]\nfilesystem_folder = {d}/collections\n\n\
             [web]\ntype = none\n\n\
             [logging]\nlevel = info\nmask_passwords = True\n\n{extra}\n",
            port = self.port,
            d = d.display(),
            extra = self.options.extra_config,
        );
        fs::write(self.config_path(), config)?;
        Ok(())
    }

    fn spawn(&mut self) -> Result<()> {
        let began = Instant::now();
        let mut cmd = Command::new(process::find_program("radicale")?);
        cmd.arg("-C").arg(self.config_path());
        let mut child = Spawned::spawn("radicale", cmd, &self.log_path())?;
        let port = self.port;
        let tls = self.options.tls;
        child.wait_ready(START_TIMEOUT, || {
            ports::port_accepts(port) && (tls || HttpRequest::new("OPTIONS", "/").send(port).is_ok())
        })?;
        self.started_in = began.elapsed();
        self.child = Some(child);
        Ok(())
    }

    /// Kills the server; data and port are kept for [`Radicale::start_again`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill();
        }
    }

    /// Starts the server again on the same port with the same data.
    pub fn start_again(&mut self) -> Result<()> {
        self.stop();
        self.spawn()
            .context("Radicale start_again (was the port taken meanwhile?)")
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// How long the last start took until an HTTP answer arrived.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Spawned::pid)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT/`: the server root, where DAV discovery starts (RFC 6764 §6).
    pub fn url(&self) -> String {
        match self.options.tls {
            true => format!("https://localhost:{}/", self.port),
            false => format!("http://127.0.0.1:{}/", self.port),
        }
    }

    /// The URL of a path on this server, e.g. `url_of("/alice/calendar/")`.
    pub fn url_of(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("radicale.log")
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Sends any request to this server.
    pub fn send(&self, request: &HttpRequest<'_>) -> Result<HttpResponse> {
        self.http().send(request)
    }

    /// PROPFIND `path` as `user`/`password` with the given Depth (RFC 4918 §9.1).
    pub fn propfind(&self, user: &str, password: &str, path: &str, depth: u8) -> Result<HttpResponse> {
        self.http().propfind(user, password, path, depth)
    }

    /// Creates calendar `/<user>/<slug>/` for VEVENT (MKCALENDAR, RFC 4791 §5.3.1); returns its path.
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
        self.http()
            .mkcalendar(user, format!("/{user}/{slug}/"), display_name, components)
    }

    /// Creates address book `/<user>/<slug>/` (extended MKCOL, RFC 5689); returns its path.
    pub fn create_addressbook(&self, user: &str, slug: &str, display_name: &str) -> Result<String> {
        self.http()
            .mkaddressbook(user, format!("/{user}/{slug}/"), display_name)
    }
}

impl DavServer for Radicale {
    fn http(&self) -> DavHttp {
        DavHttp(self.port)
    }
}

impl Drop for Radicale {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Builds Radicale's caches for collections seeded as files, with Radicale's own storage code
/// and without its per-file fsync (an option only Python can set; about eight times faster):
/// each item parsed once (.Radicale.cache/item), its sync history written and a sync-token
/// computed. What a server in daily use has, and what Radicale otherwise builds, fsyncing every
/// file, for the first client that lists a collection. argv: CONFIG PATH…
const WARM_PY: &str = r#"
import sys
from radicale import config, storage
configuration = config.load([(sys.argv[1], False)])
configuration.update({"storage": {"_filesystem_fsync": "False"}}, "opconnect-tests", privileged=True)
st = storage.load(configuration)
for path in sys.argv[2:]:
    with st.acquire_lock("w"):
        (collection,) = st.discover(path, depth="0")
        for _ in collection.get_all():
            pass
        collection.sync()
"#;

impl Radicale {
    /// Warms the caches of `collections` (paths such as `/alice/calendar/`); see `WARM_PY`.
    pub fn warm(&self, collections: &[&str]) -> Result<()> {
        self.run_python(WARM_PY, collections)
    }

    /// Runs `script` with Radicale's own Python (its launcher's `#!` line), the config file as
    /// `sys.argv[1]` and `args` after it; fails with the script's stderr.
    pub fn run_python(&self, script: &str, args: &[&str]) -> Result<()> {
        let program = process::find_program("radicale")?;
        let python = fs::read_to_string(&program)?
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("#!"))
            .map(str::trim)
            .filter(|p| p.contains("python"))
            .unwrap_or("/usr/bin/python3")
            .to_owned();
        let out = Command::new(&python)
            .arg("-c")
            .arg(script)
            .arg(self.config_path())
            .args(args)
            .output()
            .with_context(|| format!("running {python} with Radicale's storage code"))?;
        ensure!(
            out.status.success(),
            "Radicale's storage code failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    }
}

/// Kept here for callers that know it as `radicale::hrefs`.
pub use crate::dav::hrefs;
