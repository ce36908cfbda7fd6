//! Private proxies from Debian for the proxy tests (issue 21): tinyproxy (HTTP, with CONNECT
//! tunnels) and microsocks (SOCKS5), each on a free port of 127.0.0.1 with its log in a TempDir;
//! each optionally demanding a login (tinyproxy `BasicAuth`, microsocks `-u -P`, RFC 1929).
//!
//! ```text
//!   agent ──CONNECT host:port / GET http://…──▶ tinyproxy ──▶ Dovecot, Radicale
//!   agent ──SOCKS5 CONNECT───────────────────▶ microsocks ─▶ Dovecot, Radicale
//! ```

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::Agent;
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
        Self::tinyproxy_with(None)
    }

    /// tinyproxy that answers 407 to any request without `Proxy-Authorization: Basic` for
    /// `user`/`password` (tinyproxy's `BasicAuth`).
    pub fn tinyproxy_with_login(user: &str, password: &str) -> Result<LocalProxy> {
        Self::tinyproxy_with(Some((user, password)))
    }

    fn tinyproxy_with(login: Option<(&str, &str)>) -> Result<LocalProxy> {
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
                "Port {port}\nListen 127.0.0.1\nTimeout 60\nLogFile \"{}\"\nLogLevel Connect\nMaxClients 50\nAllow 127.0.0.1\n{user}{auth}",
                log.display(),
                auth = login.map_or(String::new(), |(u, p)| format!("BasicAuth {u} {p}\n"))
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
        Self::microsocks_with(None)
    }

    /// microsocks that takes only username/password authentication (RFC 1929) for `user`.
    pub fn microsocks_with_login(user: &str, password: &str) -> Result<LocalProxy> {
        Self::microsocks_with(Some((user, password)))
    }

    fn microsocks_with(login: Option<(&str, &str)>) -> Result<LocalProxy> {
        let dir = TempDir::new()?;
        let port = free_port()?;
        let log = dir.path().join("microsocks.log");
        let mut cmd = Command::new("microsocks");
        cmd.args(["-i", "127.0.0.1", "-p", &port.to_string()]);
        if let Some((user, password)) = login {
            cmd.args(["-u", user, "-P", password]);
        }
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

    /// [`Self::url`] with `user:password@` (both URL-safe in the tests).
    pub fn url_with_login(&self, user: &str, password: &str) -> String {
        format!("{}://{user}:{password}@127.0.0.1:{}", self.scheme, self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The proxy's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// What every proxy test asks of alice's agent once its servers sit behind a proxy: online
/// within `online_within`, INBOX listed, the one event of `calendar` mirrored, out-of-office
/// read over ManageSieve (and off). Returns `ooo.get`'s answer.
pub fn mail_calendar_and_ooo_answer(agent: &Agent, calendar: &str, online_within: Duration) -> Result<Value> {
    agent.wait_for_state("alice", "online", online_within)?;
    agent.call_until(
        "mail.folders",
        json!({"account": "alice"}),
        Duration::from_secs(20),
        |v| {
            v.as_array()
                .is_some_and(|a| a.iter().any(|f| f["path"] == "INBOX"))
        },
    )?;
    agent.call_until(
        "calendar.items",
        json!({"account": "alice", "calendar": calendar}),
        Duration::from_secs(20),
        |v| v.as_array().is_some_and(|a| a.len() == 1),
    )?;
    let ooo = agent.call("ooo.get", json!({"account": "alice"}))?;
    ensure!(ooo["enabled"] == false, "{ooo}");
    Ok(ooo)
}
