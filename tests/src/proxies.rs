//! Private proxies from Debian for the proxy tests (issue 21): tinyproxy (HTTP, with CONNECT
//! tunnels) and microsocks (SOCKS5), each on a free port of 127.0.0.1 with its log in a TempDir.
//!
//! ```text
//!   agent ──CONNECT host:port / GET http://…──▶ tinyproxy ──▶ Dovecot, Radicale
//!   agent ──SOCKS5 CONNECT───────────────────▶ microsocks ─▶ Dovecot, Radicale
//! ```

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use tempfile::TempDir;

use crate::ports::{free_port, port_accepts};
use crate::process::Spawned;

pub struct LocalProxy {
    _dir: TempDir,
    log: PathBuf,
    port: u16,
    scheme: &'static str,
    _process: Spawned,
}

impl LocalProxy {
    /// tinyproxy in the foreground; every port may be tunnelled (no ConnectPort lines).
    pub fn tinyproxy() -> Result<LocalProxy> {
        let dir = TempDir::new()?;
        let port = free_port()?;
        let log = dir.path().join("tinyproxy.log");
        let conf = dir.path().join("tinyproxy.conf");
        let user = if crate::process::is_root() {
            "User nobody\nGroup nogroup\n"
        } else {
            ""
        };
        fs::write(
            &conf,
            format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 60\nLogFile \"{}\"\nLogLevel Connect\nMaxClients 50\nAllow 127.0.0.1\n{user}",
                log.display()
            ),
        )?;
        fs::write(&log, "")?;
        if crate::process::is_root() {
            // tinyproxy writes its log after dropping to `nobody`.
            let _ = Command::new("chmod").args(["777"]).arg(dir.path()).status();
            let _ = Command::new("chmod").args(["666"]).arg(&log).status();
        }
        let mut cmd = Command::new("tinyproxy");
        cmd.arg("-d").arg("-c").arg(&conf);
        let mut process = Spawned::spawn("tinyproxy", cmd, &dir.path().join("stdout.log"))
            .context("tinyproxy (Debian package tinyproxy)")?;
        process.wait_ready(Duration::from_secs(10), || port_accepts(port))?;
        Ok(LocalProxy {
            _dir: dir,
            log,
            port,
            scheme: "http",
            _process: process,
        })
    }

    /// microsocks, which logs each client and the host it was connected to.
    pub fn microsocks() -> Result<LocalProxy> {
        let dir = TempDir::new()?;
        let port = free_port()?;
        let log = dir.path().join("microsocks.log");
        let mut cmd = Command::new("microsocks");
        cmd.args(["-i", "127.0.0.1", "-p", &port.to_string()]);
        let mut process =
            Spawned::spawn("microsocks", cmd, &log).context("microsocks (Debian package microsocks)")?;
        process.wait_ready(Duration::from_secs(10), || port_accepts(port))?;
        Ok(LocalProxy {
            _dir: dir,
            log,
            port,
            scheme: "socks5",
            _process: process,
        })
    }

    /// `http://127.0.0.1:PORT` or `socks5://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The proxy's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}
