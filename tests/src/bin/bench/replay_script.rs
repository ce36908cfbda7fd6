//! The plain script of benchmarks 8d and 5b in two forms, on any IMAP + DAV pair, plaintext or TLS:
//! the same writes as the agent's replay, with no agent and no journal.
//!
//! ```text
//!   serial:    IMAP(S), one command per write (UID STORE | UID MOVE | STORE \Deleted + UID
//!              EXPUNGE | APPEND), then `curl -K` one DAV write at a time on one kept-alive
//!              connection                                             ─▶ "window 1"
//!   pipelined: `curl -Z --parallel-max 6` (6 connections) running beside one IMAP session that
//!              batches per kind: one UID STORE, one UID MOVE, one STORE + UID EXPUNGE, one
//!              MULTIAPPEND (RFC 3502) with LITERAL+ (RFC 7888)       ─▶ what the agent does
//! ```
//! Every DAV write is conditional (`If-None-Match: *` to create, `If-Match` to change or
//! delete, RFC 7232 §3), as the agent's are; the etags are read before the clock starts.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use opconnect_tests::{ImapProbe, password_of};

use crate::replay::{Kind, mail_targets};
use crate::seed;

/// The script's two forms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Form {
    Serial,
    Pipelined,
}

impl Form {
    pub fn label(self) -> &'static str {
        match self {
            Form::Serial => "plain script, serial",
            Form::Pipelined => "plain script, pipelined (6 + batches)",
        }
    }
}

/// An item's href, etag and body, read before the clock starts.
#[derive(Debug, Clone)]
pub struct Item {
    pub href: String,
    pub etag: String,
    pub body: String,
}

/// Where the script writes and what it writes on.
pub struct Target {
    /// IMAP port to write through; IMAPS verified against `ca` when `ca` is set.
    pub imap_port: u16,
    /// `https://127.0.0.1:PORT` or `http://…` (no trailing slash), the DAV side.
    pub dav_base: String,
    pub ca: Option<PathBuf>,
    pub calendar: String,
    pub book: String,
    pub uids: Vec<u32>,
    pub events: Vec<Item>,
    pub contacts: Vec<Item>,
}

/// What one pass of the script did.
#[derive(Debug, Clone, Copy)]
pub struct ScriptRun {
    pub seconds: f64,
    /// From the start until the last DAV answer (the DAV half alone, for vdirsyncer's sake).
    pub dav_seconds: f64,
    pub imap_commands: u64,
    pub dav_requests: u64,
}

/// One DAV write as curl sends it.
#[derive(Debug, Clone, PartialEq)]
pub struct DavWrite {
    pub method: &'static str,
    pub href: String,
    /// `If-Match: "etag"` or `If-None-Match: *`.
    pub condition: String,
    pub content_type: Option<&'static str>,
    pub body: Option<PathBuf>,
}

const ICS: &str = "text/calendar; charset=utf-8";
const VCF: &str = "text/vcard; charset=utf-8";

/// A string in curl's config file syntax: double-quoted, `\` and `"` escaped.
pub fn curl_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A `curl -K` file: one block per write, separated by `next` (each block repeats the options
/// that are per transfer: credentials, CA, output, the status line written out).
pub fn curl_config(base: &str, user: &str, password: &str, ca: Option<&Path>, writes: &[DavWrite]) -> String {
    let mut out = String::new();
    for (i, w) in writes.iter().enumerate() {
        if i > 0 {
            out.push_str("next\n");
        }
        let _ = writeln!(out, "url = {}", curl_quote(&format!("{base}{}", w.href)));
        let _ = writeln!(out, "request = {}", curl_quote(w.method));
        let _ = writeln!(out, "user = {}", curl_quote(&format!("{user}:{password}")));
        if let Some(ca) = ca {
            let _ = writeln!(out, "cacert = {}", curl_quote(&ca.to_string_lossy()));
        }
        let _ = writeln!(out, "header = {}", curl_quote(&w.condition));
        if let Some(ct) = w.content_type {
            let _ = writeln!(out, "header = {}", curl_quote(&format!("Content-Type: {ct}")));
        }
        if let Some(body) = &w.body {
            // No `Expect: 100-continue` (curl's default for bodies over 1 KB): a script waiting
            // for it would pay a round trip (a second if the server ignores it) the agent does not.
            out.push_str("header = \"Expect:\"\n");
            let _ = writeln!(
                out,
                "data-binary = {}",
                curl_quote(&format!("@{}", body.display()))
            );
        }
        out.push_str("output = \"/dev/null\"\nwrite-out = \"%{http_code}\\n\"\nmax-time = 120\n");
    }
    out
}

/// The status lines curl wrote out, checked: every write must answer 2xx.
pub fn check_statuses(out: &str, expected: usize) -> Result<()> {
    let codes: Vec<&str> = out.split_whitespace().collect();
    ensure!(
        codes.len() == expected,
        "curl reported {} answers for {expected} DAV writes",
        codes.len()
    );
    if let Some(bad) = codes.iter().find(|c| !c.starts_with('2')) {
        bail!("a DAV write of the plain script answered {bad}");
    }
    Ok(())
}

/// Reads `hrefs` (their etags and bodies) through one `curl` before the clock starts.
pub fn read_items(base: &str, ca: Option<&Path>, hrefs: &[String]) -> Result<Vec<Item>> {
    let dir = tempfile::tempdir()?;
    let (user, password) = ("alice", password_of("alice"));
    let mut cfg = String::new();
    for (i, href) in hrefs.iter().enumerate() {
        if i > 0 {
            cfg.push_str("next\n");
        }
        let _ = writeln!(cfg, "url = {}", curl_quote(&format!("{base}{href}")));
        let _ = writeln!(cfg, "user = {}", curl_quote(&format!("{user}:{password}")));
        if let Some(ca) = ca {
            let _ = writeln!(cfg, "cacert = {}", curl_quote(&ca.to_string_lossy()));
        }
        let file = dir.path().join(i.to_string());
        let _ = writeln!(cfg, "output = {}", curl_quote(&file.to_string_lossy()));
        cfg.push_str("write-out = \"%{http_code} %header{etag}\\n\"\n");
    }
    let out = curl(dir.path(), &cfg, &[])?;
    let lines: Vec<&str> = out.lines().collect();
    ensure!(
        lines.len() == hrefs.len(),
        "curl read {} of {} items",
        lines.len(),
        hrefs.len()
    );
    let mut items = Vec::new();
    for (i, (href, line)) in hrefs.iter().zip(lines).enumerate() {
        let (code, etag) = line.split_once(' ').unwrap_or((line, ""));
        ensure!(code == "200" && !etag.is_empty(), "GET {href}: {line}");
        items.push(Item {
            href: href.clone(),
            etag: etag.to_owned(),
            body: fs::read_to_string(dir.path().join(i.to_string()))?,
        });
    }
    Ok(items)
}

/// Runs `curl -sS -K cfg ARGS` and returns its standard output.
fn curl(dir: &Path, cfg: &str, args: &[&str]) -> Result<String> {
    let out = spawn_curl(dir, cfg, args)?.wait_with_output()?;
    ensure!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn spawn_curl(dir: &Path, cfg: &str, args: &[&str]) -> Result<std::process::Child> {
    let file = dir.join("curl.cfg");
    fs::write(&file, cfg)?;
    Command::new("curl")
        .arg("-sS")
        .args(args)
        .arg("-K")
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting curl (package curl)")
}

/// The DAV writes of `counts`, bodies written into `dir`, in the order the agent journals them.
fn dav_writes(t: &Target, counts: &[(Kind, usize)], dir: &Path) -> Result<Vec<DavWrite>> {
    let mut event = t.events.iter();
    let mut contact = t.contacts.iter();
    let mut out = Vec::new();
    let mut files = 0;
    let mut body = |text: &str| -> Result<PathBuf> {
        let p = dir.join(format!("body-{files}"));
        files += 1;
        fs::write(&p, text)?;
        Ok(p)
    };
    for (kind, count) in counts {
        for k in 0..*count {
            let w = match kind {
                Kind::CreateEvent | Kind::CreateContact => {
                    let (href, ty, text) = if *kind == Kind::CreateEvent {
                        let (uid, ics) = seed::event(900_000 + k);
                        (format!("{}{uid}.ics", t.calendar), ICS, ics)
                    } else {
                        let (uid, vcf) = seed::contact(900_000 + k);
                        (format!("{}{uid}.vcf", t.book), VCF, vcf)
                    };
                    DavWrite {
                        method: "PUT",
                        href,
                        condition: "If-None-Match: *".into(),
                        content_type: Some(ty),
                        body: Some(body(&text)?),
                    }
                }
                Kind::UpdateEvent | Kind::UpdateContact => {
                    let (item, ty) = if *kind == Kind::UpdateEvent {
                        (event.next().context("seeded too few events")?, ICS)
                    } else {
                        (contact.next().context("seeded too few contacts")?, VCF)
                    };
                    let text = item.body.replacen("SUMMARY:", "SUMMARY:moved ", 1).replacen(
                        "NOTE:",
                        "NOTE:updated ",
                        1,
                    );
                    DavWrite {
                        method: "PUT",
                        href: item.href.clone(),
                        condition: format!("If-Match: {}", item.etag),
                        content_type: Some(ty),
                        body: Some(body(&text)?),
                    }
                }
                Kind::DeleteEvent | Kind::DeleteContact => {
                    let item = if *kind == Kind::DeleteEvent {
                        event.next().context("seeded too few events")?
                    } else {
                        contact.next().context("seeded too few contacts")?
                    };
                    DavWrite {
                        method: "DELETE",
                        href: item.href.clone(),
                        condition: format!("If-Match: {}", item.etag),
                        content_type: None,
                        body: None,
                    }
                }
                _ => continue,
            };
            out.push(w);
        }
    }
    Ok(out)
}

/// A message appended by the script (its Message-ID differs from the agent's).
pub(crate) fn appended(k: usize) -> String {
    format!(
        "From: alice@localhost\r\nTo: bob@localhost\r\nSubject: offline {k}\r\n\
         Message-ID: <script-{k}-{}@localhost>\r\n\r\nwritten offline\r\n",
        std::process::id()
    )
}

/// `1,2,5` for a UID set.
pub fn uid_set(uids: &[u32]) -> String {
    uids.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

/// One MULTIAPPEND command (RFC 3502 §6.3.11) with non-synchronizing literals (RFC 7888 §3),
/// without its tag: `APPEND Sent (\Seen) {n+}\r\n<msg> (\Seen) {m+}\r\n<msg>`.
pub fn multiappend(mailbox: &str, messages: &[String]) -> String {
    let mut cmd = format!("APPEND {mailbox}");
    for m in messages {
        let _ = write!(cmd, " (\\Seen) {{{}+}}\r\n{m}", m.len());
    }
    cmd
}

/// The script on `t`: returns its time (connect to last answer) and what it sent.
pub fn run(t: &Target, counts: &[(Kind, usize)], form: Form) -> Result<ScriptRun> {
    let wanted = |k: Kind| counts.iter().find(|(c, _)| *c == k).map_or(0, |(_, c)| *c);
    let dir = tempfile::tempdir()?;
    let writes = dav_writes(t, counts, dir.path())?;
    let password = password_of("alice");
    let cfg = curl_config(&t.dav_base, "alice", password, t.ca.as_deref(), &writes);
    let parallel: &[&str] = match form {
        Form::Serial => &[],
        Form::Pipelined => &["-Z", "--parallel-max", "6", "--parallel-immediate"],
    };
    let (flags, moves, deletes) = mail_targets(t.uids.iter().copied(), counts).context("the seeded INBOX")?;
    let appends: Vec<String> = (0..wanted(Kind::Append)).map(appended).collect();

    let t0 = Instant::now();
    // The pipelined form writes DAV beside IMAP, as the agent's children do.
    let dav = match form {
        Form::Pipelined => {
            let child = spawn_curl(dir.path(), &cfg, parallel)?;
            Some(std::thread::spawn(move || {
                (child.wait_with_output(), Instant::now())
            }))
        }
        Form::Serial => None,
    };
    let mut session = match &t.ca {
        Some(ca) => ImapProbe::connect_tls(t.imap_port, ca)?,
        None => ImapProbe::connect(t.imap_port)?,
    };
    session.login("alice", password)?;
    session.select("INBOX")?;
    let mut commands = 2u64;
    match form {
        Form::Serial => {
            for u in &flags {
                session.uid_store(&u.to_string(), "+FLAGS.SILENT (\\Flagged $Bench)")?;
            }
            for u in &moves {
                session.command(&format!("UID MOVE {u} Archive"))?;
            }
            for u in &deletes {
                session.uid_store(&u.to_string(), "+FLAGS.SILENT (\\Deleted)")?;
                session.command(&format!("UID EXPUNGE {u}"))?;
            }
            for m in &appends {
                session.append("Sent", &["\\Seen"], m.as_bytes())?;
            }
            commands += (flags.len() + moves.len() + 2 * deletes.len() + appends.len()) as u64;
        }
        Form::Pipelined => {
            let mut one = |cmd: String| -> Result<()> {
                session.command(&cmd)?;
                commands += 1;
                Ok(())
            };
            if !flags.is_empty() {
                one(format!(
                    "UID STORE {} +FLAGS.SILENT (\\Flagged $Bench)",
                    uid_set(&flags)
                ))?;
            }
            if !moves.is_empty() {
                one(format!("UID MOVE {} Archive", uid_set(&moves)))?;
            }
            if !deletes.is_empty() {
                one(format!(
                    "UID STORE {} +FLAGS.SILENT (\\Deleted)",
                    uid_set(&deletes)
                ))?;
                one(format!("UID EXPUNGE {}", uid_set(&deletes)))?;
            }
            if !appends.is_empty() {
                one(multiappend("Sent", &appends))?;
            }
        }
    }
    session.logout()?;
    commands += 1;
    let (out, dav_seconds) = match dav {
        Some(waiter) => {
            let (out, done) = waiter.join().expect("the curl waiter");
            let out = out?;
            ensure!(
                out.status.success(),
                "curl: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let took = (done - t0).as_secs_f64();
            (String::from_utf8_lossy(&out.stdout).into_owned(), took)
        }
        None => {
            let t1 = Instant::now();
            (curl(dir.path(), &cfg, parallel)?, t1.elapsed().as_secs_f64())
        }
    };
    let seconds = t0.elapsed().as_secs_f64();
    check_statuses(&out, writes.len())?;
    Ok(ScriptRun {
        seconds,
        dav_seconds,
        imap_commands: commands,
        dav_requests: writes.len() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curl_config_quotes_etags_and_separates_writes() {
        let writes = [
            DavWrite {
                method: "PUT",
                href: "/alice/calendar/a@b.ics".into(),
                condition: "If-Match: \"abc\"".into(),
                content_type: Some(ICS),
                body: Some(PathBuf::from("/t/body-0")),
            },
            DavWrite {
                method: "DELETE",
                href: "/alice/calendar/c.ics".into(),
                condition: "If-Match: \"d\\e\"".into(),
                content_type: None,
                body: None,
            },
        ];
        let cfg = curl_config(
            "https://127.0.0.1:9",
            "alice",
            "pw",
            Some(Path::new("/ca.pem")),
            &writes,
        );
        assert_eq!(cfg.matches("\nnext\n").count(), 1);
        assert!(cfg.contains("url = \"https://127.0.0.1:9/alice/calendar/a@b.ics\"\n"));
        assert!(cfg.contains("header = \"If-Match: \\\"abc\\\"\"\n"));
        assert!(cfg.contains("header = \"If-Match: \\\"d\\\\e\\\"\"\n"));
        assert!(cfg.contains("data-binary = \"@/t/body-0\"\n"));
        assert_eq!(cfg.matches("cacert = \"/ca.pem\"").count(), 2);
        let delete = cfg.split("next\n").nth(1).unwrap();
        assert!(!delete.contains("data-binary") && !delete.contains("Content-Type"));
        assert_eq!(cfg.matches("header = \"Expect:\"\n").count(), 1);
    }

    #[test]
    fn statuses_must_all_be_2xx_and_complete() {
        assert!(check_statuses("201\n204\n", 2).is_ok());
        assert!(check_statuses("201\n412\n", 2).is_err());
        assert!(check_statuses("201\n", 2).is_err());
    }

    #[test]
    fn multiappend_uses_non_synchronizing_literals() {
        let cmd = multiappend("Sent", &["ab".into(), "xyz".into()]);
        assert_eq!(cmd, "APPEND Sent (\\Seen) {2+}\r\nab (\\Seen) {3+}\r\nxyz");
        assert_eq!(uid_set(&[1, 5, 7]), "1,5,7");
    }
}
