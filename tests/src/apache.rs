//! A private Apache httpd (Debian's apache2) that demands HTTP Digest authentication (RFC 7616,
//! mod_auth_digest) and passes what it lets through to a Radicale behind it, which takes the
//! user from `X-Remote-User` (Radicale's `http_x_remote_user`): a CalDAV/CardDAV server that
//! accepts Digest only, as Apple's Calendar Server and others prefer.
//!
//! ```text
//!   client ──Digest──► apache2 127.0.0.1:P (htdigest users from crate::USERS)
//!                        └─ X-Remote-User: alice ─► Radicale 127.0.0.1:R (auth by that header)
//! ```
//!
//! [`DeflateFront`]: Apache compressing Radicale's answers itself (mod_deflate), as a reverse
//! proxy in front of a DAV server often does; it changes a compressed answer's ETag.
//!
//! ```text
//!   client ──► apache2 :P  SetOutputFilter DEFLATE (gzip when asked; ETag "x" → "x-gzip")
//!                └─► apache2 :Q  Accept-Encoding removed (else Radicale gzips by itself)
//!                      └─► Radicale :R (its own Basic authentication)
//! ```

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use tempfile::TempDir;

use crate::process::{self, Spawned};
use crate::radicale::{Radicale, RadicaleOptions};
use crate::{USERS, ports};

/// The realm of the Digest challenge (part of each user's hash, RFC 7616 §3.4.2).
pub const REALM: &str = "opconnect";

/// Debian's module directory.
const MODULES: &str = "/usr/lib/apache2/modules";

/// The `User`/`Group` lines: as root, Apache's workers drop to www-data (it refuses to run them
/// as root); otherwise none.
fn run_as() -> &'static str {
    if process::is_root() {
        "User www-data\nGroup www-data\n"
    } else {
        ""
    }
}

/// The start of every config here: a private instance in `d` listening on `ports`, with the event
/// MPM, run as [`run_as`].
fn head(d: &Path, ports: &[u16]) -> String {
    let d = d.display();
    let listen: String = ports.iter().map(|p| format!("Listen 127.0.0.1:{p}\n")).collect();
    format!(
        "# Private test instance written by opconnect-tests.\n\
         ServerRoot {d}\nServerName localhost\n{listen}PidFile {d}/httpd.pid\n\
         ErrorLog {d}/error.log\nLogLevel warn\n{run_as}\
         LoadModule mpm_event_module {MODULES}/mod_mpm_event.so\n",
        run_as = run_as(),
    )
}

/// Writes `DIR/httpd.conf`, runs Apache in the foreground on it, and waits until every one of
/// `listening` accepts; a failed start carries Apache's error log.
fn serve(bin: &Path, d: &Path, config: &str, listening: &[u16]) -> Result<Spawned> {
    fs::write(d.join("httpd.conf"), config)?;
    let mut cmd = Command::new(bin);
    cmd.arg("-f").arg(d.join("httpd.conf")).args(["-DFOREGROUND"]);
    let mut child = Spawned::spawn("apache2", cmd, &d.join("apache2.out"))?;
    child
        .wait_ready(Duration::from_secs(20), || {
            listening.iter().all(|&p| ports::port_accepts(p))
        })
        .with_context(|| {
            format!(
                "apache2: {}",
                fs::read_to_string(d.join("error.log")).unwrap_or_default()
            )
        })?;
    Ok(child)
}

/// Apache with Digest in front of its own Radicale. Dropping it stops both.
pub struct DigestFront {
    dir: TempDir,
    port: u16,
    _child: Spawned,
    pub radicale: Radicale,
}

impl DigestFront {
    pub fn start() -> Result<DigestFront> {
        let bin = process::find_program("apache2").context("apache2 (scripts/test installs it)")?;
        let radicale = Radicale::start_with(RadicaleOptions {
            remote_user: true,
            ..RadicaleOptions::default()
        })?;
        let dir = process::short_tempdir("ap")?;
        let d = dir.path();
        let mut users = String::new();
        for (user, password) in USERS {
            users.push_str(&format!(
                "{user}:{REALM}:{}\n",
                md5_hex(&format!("{user}:{REALM}:{password}"))?
            ));
        }
        fs::write(d.join("digest.users"), users)?;
        let port = ports::free_port()?;
        let config = format!(
            "{head}\
             LoadModule authn_core_module {MODULES}/mod_authn_core.so\n\
             LoadModule authn_file_module {MODULES}/mod_authn_file.so\n\
             LoadModule auth_digest_module {MODULES}/mod_auth_digest.so\n\
             LoadModule authz_core_module {MODULES}/mod_authz_core.so\n\
             LoadModule authz_user_module {MODULES}/mod_authz_user.so\n\
             LoadModule headers_module {MODULES}/mod_headers.so\n\
             LoadModule proxy_module {MODULES}/mod_proxy.so\n\
             LoadModule proxy_http_module {MODULES}/mod_proxy_http.so\n\
             LogFormat \"%h %u \\\"%r\\\" %>s\" short\nCustomLog {d}/access.log short\n\
             <Location />\n  AuthType Digest\n  AuthName \"{REALM}\"\n  AuthDigestProvider file\n\
               AuthUserFile {d}/digest.users\n  Require valid-user\n\
               RequestHeader set X-Remote-User expr=%{{REMOTE_USER}}\n\
               ProxyPass http://127.0.0.1:{radicale}/\n  ProxyPassReverse http://127.0.0.1:{radicale}/\n\
             </Location>\n",
            d = d.display(),
            head = head(d, &[port]),
            radicale = radicale.port(),
        );
        let child = serve(&bin, d, &config, &[port])?;
        Ok(DigestFront {
            dir,
            port,
            _child: child,
            radicale,
        })
    }

    /// `http://127.0.0.1:P/`: the Digest-protected server root.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// Apache's access log: `HOST USER "METHOD PATH HTTP/1.1" STATUS` per request.
    pub fn access_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// Apache with mod_deflate in front of its own Radicale. Dropping it stops both.
pub struct DeflateFront {
    dir: TempDir,
    port: u16,
    _child: Spawned,
    pub radicale: Radicale,
}

impl DeflateFront {
    pub fn start() -> Result<DeflateFront> {
        let bin = process::find_program("apache2").context("apache2 (scripts/test installs it)")?;
        let radicale = Radicale::start()?;
        let dir = process::short_tempdir("apz")?;
        let d = dir.path();
        let (port, inner) = (ports::free_port()?, ports::free_port()?);
        let config = format!(
            "{head}\
             LoadModule authz_core_module {MODULES}/mod_authz_core.so\n\
             LoadModule headers_module {MODULES}/mod_headers.so\n\
             LoadModule filter_module {MODULES}/mod_filter.so\n\
             LoadModule deflate_module {MODULES}/mod_deflate.so\n\
             LoadModule proxy_module {MODULES}/mod_proxy.so\n\
             LoadModule proxy_http_module {MODULES}/mod_proxy_http.so\n\
             LogFormat \"\\\"%r\\\" %>s enc=%{{Content-Encoding}}o bytes=%B etag=%{{ETag}}o\" deflate\n\
             <VirtualHost 127.0.0.1:{port}>\n  CustomLog {d}/access.log deflate\n\
               SetOutputFilter DEFLATE\n\
               ProxyPass / http://127.0.0.1:{inner}/\n  ProxyPassReverse / http://127.0.0.1:{inner}/\n\
             </VirtualHost>\n\
             <VirtualHost 127.0.0.1:{inner}>\n  RequestHeader unset Accept-Encoding\n\
               ProxyPass / http://127.0.0.1:{radicale}/\n  ProxyPassReverse / http://127.0.0.1:{radicale}/\n\
             </VirtualHost>\n",
            d = d.display(),
            head = head(d, &[port, inner]),
            radicale = radicale.port(),
        );
        let child = serve(&bin, d, &config, &[port, inner])?;
        Ok(DeflateFront {
            dir,
            port,
            _child: child,
            radicale,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:P/`: Radicale's root through the compressing front.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// Apache's access log: `"METHOD PATH HTTP/1.1" STATUS enc=gzip|- bytes=N etag=…` per request
    /// (N: body bytes as sent, compressed or not).
    pub fn access_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }
}

/// Apache terminating TLS (mod_ssl, a certificate from a private CA made by [`crate::tls`]) in
/// front of a plain HTTP server on loopback: HTTPS for a server of the harness that serves none
/// itself (Cyrus's httpd here, DAViCal, Xandikos). Dropping it stops Apache, not the server.
///
/// ```text
///   client ──TLS──► apache2 :P (ProxyPreserveHost, keep-alive) ──► 127.0.0.1:T (plain HTTP)
/// ```
pub struct TlsFront {
    dir: TempDir,
    port: u16,
    _child: Spawned,
}

impl TlsFront {
    pub fn start(target: u16) -> Result<TlsFront> {
        let bin = process::find_program("apache2").context("apache2 (scripts/test installs it)")?;
        let dir = process::short_tempdir("aps")?;
        let d = dir.path();
        crate::tls::make_server_cert(d)?;
        let port = ports::free_port()?;
        let config = format!(
            "{head}\
             LoadModule authz_core_module {MODULES}/mod_authz_core.so\n\
             LoadModule headers_module {MODULES}/mod_headers.so\n\
             LoadModule socache_shmcb_module {MODULES}/mod_socache_shmcb.so\n\
             LoadModule ssl_module {MODULES}/mod_ssl.so\n\
             LoadModule proxy_module {MODULES}/mod_proxy.so\n\
             LoadModule proxy_http_module {MODULES}/mod_proxy_http.so\n\
             LogFormat \"\\\"%r\\\" %>s\" front\n\
             <VirtualHost 127.0.0.1:{port}>\n  CustomLog {d}/access.log front\n\
               SSLEngine on\n  SSLCertificateFile {d}/server.pem\n  SSLCertificateKeyFile {d}/server.key\n\
               ProxyPreserveHost On\n  RequestHeader set X-Forwarded-Proto https\n\
               ProxyPass / http://127.0.0.1:{target}/\n  ProxyPassReverse / http://127.0.0.1:{target}/\n\
             </VirtualHost>\n",
            d = d.display(),
            head = head(d, &[port]),
        );
        let child = serve(&bin, d, &config, &[port])?;
        Ok(TlsFront {
            dir,
            port,
            _child: child,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The private CA's certificate, to trust (`tls_ca`, curl `--cacert`).
    pub fn ca_pem(&self) -> std::path::PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Apache's access log: `"METHOD PATH HTTP/1.1" STATUS` per request.
    pub fn access_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }
}

fn md5_hex(text: &str) -> Result<String> {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "printf '%s' \"$1\" | md5sum", "md5", text]);
    let out = process::run_ok(cmd, Duration::from_secs(10))?;
    Ok(out.split_whitespace().next().unwrap_or_default().to_owned())
}
