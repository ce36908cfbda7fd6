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

use anyhow::{Context, Result, bail};
use tempfile::TempDir;

use crate::http::{HttpRequest, HttpResponse};
use crate::process::{self, Spawned};
use crate::{USERS, password_of, ports};

/// Start-up limit. Radicale is ready in about 0.25 s; a loaded CI machine gets slack.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// How to start a [`Radicale`].
#[derive(Debug, Clone, Default)]
pub struct RadicaleOptions {
    /// Appended verbatim to the config file (later sections override earlier keys).
    pub extra_config: String,
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
        let config = format!(
            "# Private test instance written by opconnect-tests (see shared/NOTES/servers.md).\n\
             [server]\nhosts = 127.0.0.1:{port}\n\n\
             [auth]\ntype = htpasswd\nhtpasswd_filename = {d}/users\n\
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
        child.wait_ready(START_TIMEOUT, || {
            ports::port_accepts(port) && HttpRequest::new("OPTIONS", "/").send(port).is_ok()
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
        format!("http://127.0.0.1:{}/", self.port)
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
        request.send(self.port)
    }

    /// PROPFIND `path` as `user`/`password` with the given Depth (RFC 4918 §9.1); asks for
    /// resourcetype, displayname and getetag.
    pub fn propfind(&self, user: &str, password: &str, path: &str, depth: u8) -> Result<HttpResponse> {
        let depth = depth.to_string();
        self.send(
            &HttpRequest::new("PROPFIND", path)
                .auth(user, password)
                .header("Depth", &depth)
                .header("Content-Type", "application/xml; charset=utf-8")
                .body(PROPFIND_BODY.as_bytes()),
        )
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
        let path = format!("/{user}/{slug}/");
        let comps: String = components
            .iter()
            .map(|c| format!("<C:comp name=\"{c}\"/>"))
            .collect();
        let body = format!(
            r#"<?xml version="1.0" encoding="utf-8"?>
<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:set><D:prop>
    <D:displayname>{}</D:displayname>
    <C:supported-calendar-component-set>{comps}</C:supported-calendar-component-set>
  </D:prop></D:set>
</C:mkcalendar>"#,
            xml_escape(display_name)
        );
        let r = self.as_user(user, "MKCALENDAR", &path, "application/xml", body.as_bytes())?;
        expect_status(&r, &[201], "MKCALENDAR", &path)?;
        Ok(path)
    }

    /// Creates address book `/<user>/<slug>/` (extended MKCOL, RFC 5689); returns its path.
    pub fn create_addressbook(&self, user: &str, slug: &str, display_name: &str) -> Result<String> {
        let path = format!("/{user}/{slug}/");
        let body = format!(
            r#"<?xml version="1.0" encoding="utf-8"?>
<D:mkcol xmlns:D="DAV:" xmlns:CR="urn:ietf:params:xml:ns:carddav">
  <D:set><D:prop>
    <D:resourcetype><D:collection/><CR:addressbook/></D:resourcetype>
    <D:displayname>{}</D:displayname>
  </D:prop></D:set>
</D:mkcol>"#,
            xml_escape(display_name)
        );
        let r = self.as_user(user, "MKCOL", &path, "application/xml", body.as_bytes())?;
        expect_status(&r, &[201], "MKCOL", &path)?;
        Ok(path)
    }

    /// PUTs an item at `href` as `user`; returns its ETag. Creates or overwrites unconditionally.
    pub fn put(&self, user: &str, href: &str, content_type: &str, body: &[u8]) -> Result<String> {
        let r = self.as_user(user, "PUT", href, content_type, body)?;
        expect_status(&r, &[201, 204], "PUT", href)?;
        Ok(r.header("ETag").unwrap_or_default().to_string())
    }

    /// PUTs an iCalendar object into `calendar` (a path ending in `/`) as `<uid>.ics`; returns
    /// `(href, etag)`.
    pub fn put_event(&self, user: &str, calendar: &str, uid: &str, ics: &str) -> Result<(String, String)> {
        let href = format!("{calendar}{uid}.ics");
        let etag = self.put(user, &href, "text/calendar; charset=utf-8", ics.as_bytes())?;
        Ok((href, etag))
    }

    /// PUTs a vCard into `book` (a path ending in `/`) as `<uid>.vcf`; returns `(href, etag)`.
    pub fn put_contact(&self, user: &str, book: &str, uid: &str, vcf: &str) -> Result<(String, String)> {
        let href = format!("{book}{uid}.vcf");
        let etag = self.put(user, &href, "text/vcard; charset=utf-8", vcf.as_bytes())?;
        Ok((href, etag))
    }

    /// GETs `href` as `user`.
    pub fn get(&self, user: &str, href: &str) -> Result<HttpResponse> {
        self.as_user(user, "GET", href, "text/plain", b"")
    }

    /// DELETEs `href` as `user`.
    pub fn delete(&self, user: &str, href: &str) -> Result<()> {
        let r = self.as_user(user, "DELETE", href, "text/plain", b"")?;
        expect_status(&r, &[200, 204], "DELETE", href)
    }

    /// The member hrefs of `collection` (PROPFIND Depth 1), without the collection itself.
    pub fn members(&self, user: &str, collection: &str) -> Result<Vec<String>> {
        let r = self.propfind(user, password_of(user), collection, 1)?;
        expect_status(&r, &[207], "PROPFIND", collection)?;
        Ok(hrefs(&r.text())
            .into_iter()
            .filter(|h| h.trim_end_matches('/') != collection.trim_end_matches('/'))
            .collect())
    }

    fn as_user(
        &self,
        user: &str,
        method: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<HttpResponse> {
        self.send(
            &HttpRequest::new(method, path)
                .auth(user, password_of(user))
                .header("Content-Type", content_type)
                .body(body),
        )
    }
}

impl Drop for Radicale {
    fn drop(&mut self) {
        self.stop();
    }
}

const PROPFIND_BODY: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:"><D:prop><D:resourcetype/><D:displayname/><D:getetag/></D:prop></D:propfind>"#;

/// Every `<…href>…</…href>` value in a multistatus body, in order (namespace prefix ignored).
pub fn hrefs(xml: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find("href>") {
        let after = &rest[start + 5..];
        let Some(end) = after.find("</") else { break };
        let value = after[..end].trim();
        if !value.is_empty() && !value.contains('<') {
            out.push(value.to_string());
        }
        rest = &after[end..];
    }
    out
}

fn expect_status(r: &HttpResponse, ok: &[u16], method: &str, path: &str) -> Result<()> {
    if !ok.contains(&r.status) {
        bail!("{method} {path} answered {}: {}", r.status, r.text());
    }
    Ok(())
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
