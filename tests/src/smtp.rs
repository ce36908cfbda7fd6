//! A private SMTP submission server for the tests: aiosmtpd (a real SMTP implementation, from
//! PyPI) requiring AUTH with the harness's users, delivering each accepted message into Dovecot
//! over LMTP and logging it, so a test can count deliveries.
//!
//! It stands in for Postfix (shared/NOTES/servers.md): it has no queue, which the tests do not need.

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tempfile::TempDir;

use crate::process::{self, Spawned};
use crate::{USERS, ports};

const START_TIMEOUT: Duration = Duration::from_secs(15);

const SCRIPT: &str = r#"
import asyncio, json, smtplib, sys
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

port, lmtp_port, log_path, users = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4])

class Relay:
    async def handle_DATA(self, server, session, envelope):
        rcpts = [r.split("@")[0] + "@localhost" for r in envelope.rcpt_tos]
        with smtplib.LMTP("127.0.0.1", lmtp_port) as lmtp:
            lmtp.sendmail(envelope.mail_from, rcpts, envelope.original_content)
        with open(log_path, "a") as log:
            log.write(json.dumps({"from": envelope.mail_from, "to": envelope.rcpt_tos,
                                  "data": envelope.original_content.decode("utf-8", "replace")}) + "\n")
        return "250 2.0.0 delivered"

def authenticate(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and users.get(auth_data.login.decode()) == auth_data.password.decode()
    return AuthResult(success=ok)

controller = Controller(Relay(), hostname="127.0.0.1", port=port, authenticator=authenticate,
                        auth_required=True, auth_require_tls=False)
controller.start()
asyncio.get_event_loop().run_forever()
"#;

/// A running submission server; killed on drop.
pub struct SmtpRelay {
    dir: TempDir,
    port: u16,
    lmtp_port: u16,
    child: Option<Spawned>,
}

impl SmtpRelay {
    /// Starts on a free port, delivering to `lmtp_port` (Dovecot's).
    pub fn start(lmtp_port: u16) -> Result<SmtpRelay> {
        let dir = process::short_tempdir("sm")?;
        fs::write(dir.path().join("relay.py"), SCRIPT)?;
        let mut relay = SmtpRelay {
            dir,
            port: ports::free_port()?,
            lmtp_port,
            child: None,
        };
        relay.spawn()?;
        Ok(relay)
    }

    fn spawn(&mut self) -> Result<()> {
        let users: serde_json::Map<String, serde_json::Value> = USERS
            .iter()
            .map(|(u, p)| (u.to_string(), serde_json::Value::from(*p)))
            .collect();
        let mut cmd = Command::new(process::find_program("python3")?);
        cmd.arg(self.dir.path().join("relay.py"))
            .arg(self.port.to_string())
            .arg(self.lmtp_port.to_string())
            .arg(self.log())
            .arg(serde_json::Value::Object(users).to_string());
        let mut child = Spawned::spawn("smtp relay (aiosmtpd)", cmd, &self.dir.path().join("relay.out"))
            .context("the SMTP relay needs python3 with aiosmtpd (scripts/test installs it)")?;
        let port = self.port;
        child.wait_ready(START_TIMEOUT, || greets(port))?;
        self.child = Some(child);
        Ok(())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `smtp://127.0.0.1:PORT` (loopback without STARTTLS: plaintext AUTH is allowed there only).
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("delivered.jsonl")
    }

    /// Every message accepted so far, as logged: `{from, to, data}`.
    pub fn delivered(&self) -> Result<Vec<serde_json::Value>> {
        let text = fs::read_to_string(self.log()).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).context("relay log line"))
            .collect()
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill();
        }
    }

    pub fn start_again(&mut self) -> Result<()> {
        self.stop();
        self.spawn()
    }
}

impl Drop for SmtpRelay {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Ready means the `220` greeting arrived.
fn greets(port: u16) -> bool {
    use std::io::Read;
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut buf = [0u8; 3];
    let began = Instant::now();
    stream.read_exact(&mut buf).is_ok() && &buf == b"220" && began.elapsed() < Duration::from_secs(1)
}
