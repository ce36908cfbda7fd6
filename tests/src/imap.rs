//! `ImapProbe`: a tiny blocking IMAP4rev1 client (RFC 3501) for tests to provision and inspect a
//! server independently of the agent: login, select, append, store flags, expunge, logout.
//!
//! It is line-oriented on purpose: responses come back as raw lines, and the test asserts on them.
//! IMAPS goes through `openssl s_client`, which also verifies the server's certificate against a
//! given CA, so the harness needs no TLS library of its own.
//!
//! ```text
//!   probe ──"a1 LOGIN …\r\n"──▶ socket / s_client stdin
//!   probe ◀── lines ── reader thread ◀── socket / s_client stdout
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

/// How long one response may take before the probe gives up.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// What SELECT reported about a mailbox (RFC 3501 §6.3.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selected {
    pub exists: u32,
    pub uidvalidity: u32,
    pub uidnext: u32,
}

/// A raw IMAP connection. See the module docs.
pub struct ImapProbe {
    writer: Box<dyn Write + Send>,
    lines: Receiver<String>,
    tag: u32,
    greeting: String,
    timeout: Duration,
    tls_helper: Option<Child>,
    /// Shut down on drop so the reader thread ends even if the server keeps the session.
    tcp: Option<TcpStream>,
}

impl ImapProbe {
    /// Connects over plain TCP to 127.0.0.1:`port` and waits for the `* OK` greeting.
    pub fn connect(port: u16) -> Result<ImapProbe> {
        Self::connect_timeout(port, DEFAULT_TIMEOUT)
    }

    /// Like [`ImapProbe::connect`] with a custom time limit for the greeting and each response.
    pub fn connect_timeout(port: u16, timeout: Duration) -> Result<ImapProbe> {
        let addr = (Ipv4Addr::LOCALHOST, port).into();
        let stream = TcpStream::connect_timeout(&addr, timeout)
            .with_context(|| format!("connecting to IMAP on 127.0.0.1:{port}"))?;
        let reader = stream.try_clone()?;
        let handle = stream.try_clone()?;
        let mut probe = Self::finish(Box::new(stream), reader, None, timeout)?;
        probe.tcp = Some(handle);
        Ok(probe)
    }

    /// Connects to IMAPS on 127.0.0.1:`port`, verifying the certificate (chain and the name
    /// `localhost`) against `ca_pem`. A certificate that does not verify is an error.
    pub fn connect_tls(port: u16, ca_pem: &Path) -> Result<ImapProbe> {
        let mut child = Command::new("openssl")
            .args(["s_client", "-quiet", "-nocommands", "-verify_return_error"])
            .args(["-verify_hostname", "localhost", "-servername", "localhost"])
            .arg("-connect")
            .arg(format!("127.0.0.1:{port}"))
            .arg("-CAfile")
            .arg(ca_pem)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("running openssl s_client (package openssl)")?;
        let writer = child.stdin.take().expect("piped stdin");
        let reader = child.stdout.take().expect("piped stdout");
        Self::finish(Box::new(writer), reader, Some(child), DEFAULT_TIMEOUT)
            .context("IMAPS greeting (certificate verification failed or server not answering)")
    }

    fn finish(
        writer: Box<dyn Write + Send>,
        reader: impl Read + Send + 'static,
        tls_helper: Option<Child>,
        timeout: Duration,
    ) -> Result<ImapProbe> {
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut reader = BufReader::new(reader);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let text = String::from_utf8_lossy(&line);
                        if tx.send(text.trim_end_matches(['\r', '\n']).to_string()).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let mut probe = ImapProbe {
            writer,
            lines: rx,
            tag: 0,
            greeting: String::new(),
            timeout,
            tls_helper,
            tcp: None,
        };
        let greeting = probe.read_line()?;
        if !greeting.starts_with("* OK") {
            bail!("unexpected IMAP greeting: {greeting}");
        }
        probe.greeting = greeting;
        Ok(probe)
    }

    /// The server's greeting line, e.g. `* OK [CAPABILITY …] Dovecot ready.`
    pub fn greeting(&self) -> &str {
        &self.greeting
    }

    /// Sets the time limit for each response.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Reads one response line, failing after the time limit or when the server closed.
    pub fn read_line(&mut self) -> Result<String> {
        match self.lines.recv_timeout(self.timeout) {
            Ok(line) => Ok(line),
            Err(RecvTimeoutError::Timeout) => bail!("no IMAP response within {:?}", self.timeout),
            Err(RecvTimeoutError::Disconnected) => bail!("IMAP connection closed"),
        }
    }

    /// Sends a command and returns `(tagged status line, all lines before it)`, whatever the status.
    pub fn command_status(&mut self, command: &str) -> Result<(String, Vec<String>)> {
        let tag = self.next_tag();
        self.send(format!("{tag} {command}\r\n").as_bytes())?;
        self.collect(&tag)
    }

    /// Sends a command that must answer `OK`; returns the untagged lines.
    pub fn command(&mut self, command: &str) -> Result<Vec<String>> {
        let (status, lines) = self.command_status(command)?;
        if !is_ok(&status) {
            bail!("IMAP `{}` failed: {status}", redact(command));
        }
        Ok(lines)
    }

    /// LOGIN (RFC 3501 §6.2.3).
    pub fn login(&mut self, user: &str, password: &str) -> Result<()> {
        self.command(&format!("LOGIN {} {}", quote(user), quote(password)))
            .map(|_| ())
    }

    /// CAPABILITY, as upper-case atoms.
    pub fn capabilities(&mut self) -> Result<Vec<String>> {
        let lines = self.command("CAPABILITY")?;
        Ok(lines
            .iter()
            .filter_map(|l| l.strip_prefix("* CAPABILITY "))
            .flat_map(|l| l.split_whitespace().map(str::to_uppercase))
            .collect())
    }

    /// NAMESPACE (RFC 2342): the raw answer after `* NAMESPACE `.
    pub fn namespace(&mut self) -> Result<String> {
        let lines = self.command("NAMESPACE")?;
        lines
            .iter()
            .find_map(|l| l.strip_prefix("* NAMESPACE "))
            .map(str::to_string)
            .ok_or_else(|| anyhow!("no NAMESPACE line in {lines:?}"))
    }

    /// `LIST "" "*"`: the raw `* LIST` lines.
    pub fn list(&mut self) -> Result<Vec<String>> {
        let lines = self.command("LIST \"\" \"*\"")?;
        Ok(lines.into_iter().filter(|l| l.starts_with("* LIST")).collect())
    }

    /// CREATE a mailbox.
    pub fn create(&mut self, mailbox: &str) -> Result<()> {
        self.command(&format!("CREATE {}", quote(mailbox))).map(|_| ())
    }

    /// SELECT a mailbox (read-write).
    pub fn select(&mut self, mailbox: &str) -> Result<Selected> {
        let lines = self.command(&format!("SELECT {}", quote(mailbox)))?;
        let mut sel = Selected::default();
        for line in &lines {
            if let Some(n) = line.strip_prefix("* ").and_then(|l| l.strip_suffix(" EXISTS")) {
                sel.exists = n.parse().unwrap_or(0);
            }
            if let Some(v) = bracket_number(line, "UIDVALIDITY") {
                sel.uidvalidity = v;
            }
            if let Some(v) = bracket_number(line, "UIDNEXT") {
                sel.uidnext = v;
            }
        }
        Ok(sel)
    }

    /// APPEND a message (RFC 3501 §6.3.11) with a synchronizing literal; returns the new UID
    /// when the server answers APPENDUID (RFC 4315).
    pub fn append(&mut self, mailbox: &str, flags: &[&str], raw: &[u8]) -> Result<Option<u32>> {
        let tag = self.next_tag();
        let flags = if flags.is_empty() {
            String::new()
        } else {
            format!("({}) ", flags.join(" "))
        };
        let head = format!("{tag} APPEND {} {flags}{{{}}}\r\n", quote(mailbox), raw.len());
        self.send(head.as_bytes())?;
        let cont = self.read_line()?;
        if !cont.starts_with('+') {
            bail!("APPEND to {mailbox} refused: {cont}");
        }
        self.send(raw)?;
        self.send(b"\r\n")?;
        let (status, _) = self.collect(&tag)?;
        if !is_ok(&status) {
            bail!("APPEND to {mailbox} failed: {status}");
        }
        Ok(status
            .split("[APPENDUID ")
            .nth(1)
            .and_then(|s| s.split_whitespace().nth(1))
            .and_then(|s| s.trim_end_matches(']').parse().ok()))
    }

    /// `UID STORE uids change`, e.g. `uid_store("1:3", "+FLAGS.SILENT (\\Seen)")`.
    pub fn uid_store(&mut self, uids: &str, change: &str) -> Result<Vec<String>> {
        self.command(&format!("UID STORE {uids} {change}"))
    }

    /// `UID FETCH uids (UID FLAGS)`: the raw FETCH lines.
    pub fn uid_fetch_flags(&mut self, uids: &str) -> Result<Vec<String>> {
        let lines = self.command(&format!("UID FETCH {uids} (UID FLAGS)"))?;
        Ok(lines.into_iter().filter(|l| l.contains(" FETCH ")).collect())
    }

    /// `UID SEARCH criteria`: the matching UIDs.
    pub fn uid_search(&mut self, criteria: &str) -> Result<Vec<u32>> {
        let lines = self.command(&format!("UID SEARCH {criteria}"))?;
        Ok(lines
            .iter()
            .filter_map(|l| l.strip_prefix("* SEARCH"))
            .flat_map(|l| l.split_whitespace().filter_map(|n| n.parse().ok()))
            .collect())
    }

    /// EXPUNGE the selected mailbox.
    pub fn expunge(&mut self) -> Result<()> {
        self.command("EXPUNGE").map(|_| ())
    }

    /// Enters IDLE (RFC 2177), collects untagged lines for `wait`, then sends DONE.
    pub fn idle_for(&mut self, wait: Duration) -> Result<Vec<String>> {
        let tag = self.next_tag();
        self.send(format!("{tag} IDLE\r\n").as_bytes())?;
        let cont = self.read_line()?;
        if !cont.starts_with('+') {
            bail!("IDLE refused: {cont}");
        }
        let deadline = Instant::now() + wait;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => seen.push(line),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => bail!("IMAP connection closed in IDLE"),
            }
        }
        self.send(b"DONE\r\n")?;
        let (status, rest) = self.collect(&tag)?;
        seen.extend(rest);
        if !is_ok(&status) {
            bail!("IDLE ended with {status}");
        }
        Ok(seen)
    }

    /// LOGOUT and close.
    pub fn logout(mut self) -> Result<()> {
        self.command("LOGOUT").map(|_| ())
    }

    fn next_tag(&mut self) -> String {
        self.tag += 1;
        format!("p{}", self.tag)
    }

    fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.writer.write_all(bytes)?;
        self.writer.flush()?;
        Ok(())
    }

    fn collect(&mut self, tag: &str) -> Result<(String, Vec<String>)> {
        let prefix = format!("{tag} ");
        let mut lines = Vec::new();
        loop {
            let line = self.read_line()?;
            if line.starts_with(&prefix) {
                return Ok((line, lines));
            }
            lines.push(line);
        }
    }
}

impl Drop for ImapProbe {
    fn drop(&mut self) {
        if let Some(tcp) = self.tcp.take() {
            let _ = tcp.shutdown(std::net::Shutdown::Both);
        }
        if let Some(mut child) = self.tls_helper.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// An IMAP quoted string (RFC 3501 §4.3).
pub fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn is_ok(status: &str) -> bool {
    status.split_whitespace().nth(1) == Some("OK")
}

/// Keeps passwords out of error messages.
fn redact(command: &str) -> String {
    if command.to_uppercase().starts_with("LOGIN ") {
        "LOGIN …".to_string()
    } else {
        command.to_string()
    }
}

/// `[NAME 123]` inside a response line.
fn bracket_number(line: &str, name: &str) -> Option<u32> {
    let rest = line.split(&format!("[{name} ")).nth(1)?;
    rest.split(']').next()?.trim().parse().ok()
}
