//! A private Xandikos (CalDAV RFC 4791, CardDAV RFC 6352, items kept in Git) per test, the fourth
//! DAV server of the harness beside Radicale, Cyrus and DAViCal.
//!
//! ```text
//!   TempDir/ data/user/calendars/calendar/.git   the default calendar (`--defaults`)
//!            data/user/contacts/addressbook/.git the default address book
//!            xandikos.log                        aiohttp's access log: "METHOD PATH HTTP/1.1" STATUS
//!   http://127.0.0.1:PORT/user/                  the one principal
//! ```
//!
//! Xandikos has no accounts: it serves one principal to whoever asks, and expects a front that
//! authenticates. The harness's helpers still send the test user's credentials, which it ignores.
//! Seen in Xandikos 0.2.8: it re-serializes what it serves (its own property order, LF line
//! ends), and a sync-collection REPORT does not carry `calendar-data` (404 in the propstat).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tempfile::TempDir;

use crate::dav::{DavHttp, DavServer};
use crate::http::HttpRequest;
use crate::ports;
use crate::process::{self, Spawned};

/// Start-up limit: Xandikos is ready in about 1 s; a loaded machine gets slack.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The principal Xandikos serves.
pub const PRINCIPAL: &str = "/user/";

/// A running private Xandikos. Dropping it kills its process group.
pub struct Xandikos {
    dir: TempDir,
    port: u16,
    child: Option<Spawned>,
    started_in: Duration,
}

impl Xandikos {
    /// Starts with the default calendar and address book; retries on a port taken meanwhile.
    pub fn start() -> Result<Xandikos> {
        process::find_program("xandikos")?;
        let mut last_error = None;
        for _ in 0..3 {
            let mut xandikos = Xandikos {
                dir: process::short_tempdir("xk")?,
                port: ports::free_port()?,
                child: None,
                started_in: Duration::ZERO,
            };
            match xandikos.spawn() {
                Ok(()) => return Ok(xandikos),
                Err(e) if xandikos.log().contains("address already in use") => last_error = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_error.expect("three attempts")).context("Xandikos: ports kept being taken")
    }

    fn spawn(&mut self) -> Result<()> {
        let began = Instant::now();
        let mut cmd = Command::new(process::find_program("xandikos")?);
        cmd.arg("--directory")
            .arg(self.data_dir())
            .arg("--defaults")
            .args(["--listen-address", "127.0.0.1", "--port"])
            .arg(self.port.to_string());
        let mut child = Spawned::spawn("xandikos", cmd, &self.log_path())?;
        let port = self.port;
        child.wait_ready(START_TIMEOUT, || {
            ports::port_accepts(port) && HttpRequest::new("OPTIONS", PRINCIPAL).send(port).is_ok()
        })?;
        self.started_in = began.elapsed();
        self.child = Some(child);
        Ok(())
    }

    /// Kills the server; data and port are kept for [`Xandikos::start_again`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill();
        }
    }

    /// Starts the server again on the same port with the same data.
    pub fn start_again(&mut self) -> Result<()> {
        self.stop();
        self.spawn()
            .context("Xandikos start_again (was the port taken meanwhile?)")
    }

    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Spawned::pid)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT/`: discovery starts here (RFC 6764 §6; Xandikos's well-known
    /// URLs redirect to the root, whose current-user-principal is [`PRINCIPAL`]).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    pub fn url_of(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The calendar `--defaults` made.
    pub fn calendar(&self) -> String {
        format!("{PRINCIPAL}calendars/calendar/")
    }

    /// The address book `--defaults` made.
    pub fn addressbook(&self) -> String {
        format!("{PRINCIPAL}contacts/addressbook/")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("xandikos.log")
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Writes `(name, body)` items into `collection` (a path such as [`Xandikos::calendar`]) as
    /// one Git commit, the way Xandikos stores them: thousands in a second, where a PUT each
    /// takes about 30 ms. Xandikos serves what its repository's index holds.
    pub fn seed(&self, collection: &str, items: &[(String, String)]) -> Result<()> {
        let repo = self.data_dir().join(collection.trim_matches('/'));
        for (name, body) in items {
            fs::write(repo.join(name), body).with_context(|| format!("seeding {name}"))?;
        }
        let git = |args: &[&str]| -> Result<String> {
            let mut cmd = Command::new(process::find_program("git")?);
            cmd.arg("-C")
                .arg(&repo)
                .args(["-c", "user.name=seed", "-c", "user.email=seed@localhost"]);
            cmd.args(args);
            process::run_ok(cmd, Duration::from_secs(60))
        };
        git(&["add", "-A", "."])?;
        git(&["commit", "-q", "-m", "seed"])?;
        Ok(())
    }

    /// `METHOD PATH` of every request in the access log, in order.
    pub fn requests(&self) -> Vec<String> {
        requests_in(&self.log())
    }
}

/// `METHOD PATH` of each aiohttp access-log line (`... "METHOD PATH HTTP/1.1" STATUS SIZE ...`).
pub fn requests_in(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains("aiohttp.access"))
        .filter_map(|l| {
            let quoted = l.split('"').nth(1)?;
            let mut parts = quoted.split(' ');
            Some(format!("{} {}", parts.next()?, parts.next()?))
        })
        .collect()
}

impl DavServer for Xandikos {
    fn http(&self) -> DavHttp {
        DavHttp(self.port)
    }
}

impl Drop for Xandikos {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_access_log_gives_method_and_path() {
        let log = "INFO:root:Listening on 127.0.0.1:1\n\
            INFO:aiohttp.access:127.0.0.1 [03/Dec/2026:16:30:46 +0000] \"PROPFIND /user/calendars/ HTTP/1.1\" 207 3512 \"-\" \"curl/7.88.1\"\n\
            INFO:aiohttp.access:127.0.0.1 [03/Dec/2026:16:30:47 +0000] \"REPORT /user/calendars/calendar/ HTTP/1.1\" 207 10 \"-\" \"-\"\n";
        assert_eq!(
            requests_in(log),
            ["PROPFIND /user/calendars/", "REPORT /user/calendars/calendar/"]
        );
    }
}
