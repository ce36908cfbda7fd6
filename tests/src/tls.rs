//! Throw-away TLS material for private servers: a CA and a server certificate it signed, for
//! `localhost` and `127.0.0.1`, made with the `openssl` command.
//!
//! A separate CA (rather than one self-signed leaf) because rustls/webpki refuses a CA certificate
//! used as the server's own (`CaUsedAsEndEntity`): the agent gets `ca.pem` as its `tls_ca`.
//!
//! ```text
//!   DIR/ca.pem  DIR/ca.key        CA:TRUE, keyCertSign
//!   DIR/server.pem  DIR/server.key  CA:FALSE, serverAuth, SAN localhost + 127.0.0.1, signed by ca
//! ```

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::process;

/// Certificates outlive any test run but not by much.
const DAYS: &str = "30";

/// Writes `ca.pem`, `ca.key`, `server.pem` and `server.key` into `dir` (created if missing).
pub fn make_server_cert(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir)?;
    let openssl = || Command::new("openssl");
    let run = |mut cmd: Command| -> Result<()> {
        cmd.current_dir(dir);
        process::run_ok(cmd, Duration::from_secs(30))
            .map(|_| ())
            .context("openssl (package openssl) failed to make test certificates")
    };
    // P-256 keys: generated in milliseconds, accepted by rustls and Dovecot alike.
    let mut ca = openssl();
    ca.args([
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
    ])
    .args(["-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", DAYS])
    .args(["-subj", "/CN=opconnect test CA"])
    .args(["-addext", "basicConstraints=critical,CA:TRUE"])
    .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
    run(ca)?;
    let mut csr = openssl();
    csr.args([
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
    ])
    .args(["-nodes", "-keyout", "server.key", "-out", "server.csr"])
    .args(["-subj", "/CN=localhost"]);
    run(csr)?;
    fs::write(
        dir.join("server.ext"),
        "basicConstraints = critical,CA:FALSE\n\
         keyUsage = critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage = serverAuth\n\
         subjectAltName = DNS:localhost,IP:127.0.0.1\n",
    )?;
    let mut sign = openssl();
    sign.args([
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
    ])
    .args(["-CAcreateserial", "-out", "server.pem", "-days", DAYS])
    .args(["-extfile", "server.ext"]);
    run(sign)?;
    Ok(())
}

/// Writes `server.pem` and `server.key` into `dir` (created if missing): a self-signed
/// certificate for `localhost` and `127.0.0.1` made the common way, `openssl req -x509`, which
/// marks it CA:TRUE (webpki refuses it as `CaUsedAsEndEntity`, even given as `tls_ca`).
/// Returns its SHA-256 fingerprint as openssl prints it (`AB:CD:…`).
pub fn make_self_signed(dir: &Path) -> Result<String> {
    fs::create_dir_all(dir)?;
    let mut cmd = Command::new("openssl");
    cmd.current_dir(dir)
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args([
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.pem",
            "-days",
            DAYS,
        ])
        .args(["-subj", "/CN=localhost/O=opconnect self-signed test"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]);
    process::run_ok(cmd, Duration::from_secs(30)).context("openssl req -x509 (self-signed)")?;
    fingerprint(&dir.join("server.pem"))
}

/// The SHA-256 fingerprint of the PEM certificate at `pem`, `AB:CD:…`.
pub fn fingerprint(pem: &Path) -> Result<String> {
    let mut cmd = Command::new("openssl");
    cmd.args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(pem);
    let text = process::run_ok(cmd, Duration::from_secs(30)).context("openssl x509 -fingerprint")?;
    text.trim()
        .rsplit_once('=')
        .map(|(_, f)| f.to_owned())
        .with_context(|| format!("openssl printed no fingerprint: {text}"))
}
