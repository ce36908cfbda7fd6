//! Out-of-office against Dovecot (ManageSieve, RFC 5804; Sieve vacation, RFC 5230): `ooo.set`
//! turns it on, a message delivered through LMTP gets the vacation reply, and the Sieve rule the
//! user had before keeps filing mail, with out-of-office on and after it is off again. A period
//! (`start`/`end`) limits the replies; STARTTLS is used when offered. An account without a sieve
//! server gets code 2, a wrong password code 3, a server that is down code 4.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use base64::Engine;
use opconnect_tests::config::render_config;
use opconnect_tests::{AccountSpec, Agent, AgentSettings, Dovecot, DovecotOptions};
use serde_json::json;

/// alice's own rule, written by "another client" before opconnect ever ran.
const USER_RULE: &str = "require [\"fileinto\"];\r\n# alice's filter\r\nif header :contains \"List-Id\" \"dev.lists\" {\r\n  fileinto \"Lists\";\r\n}\r\n";

fn agent_on(dovecot: &Dovecot) -> Result<Agent> {
    let spec = AccountSpec::for_user("alice")
        .imap_from(dovecot)
        .sieve_from(dovecot);
    let agent = Agent::start(&render_config(&AgentSettings::default(), &[spec]))?;
    agent.wait_for_state("alice", "online", Duration::from_secs(20))?;
    Ok(agent)
}

fn message(from: &str, subject: &str, extra: &str) -> Vec<u8> {
    format!(
        "From: <{from}>\r\nTo: <alice@localhost>\r\nSubject: {subject}\r\nMessage-ID: <{subject}.{from}>\r\n{extra}\r\nhello\r\n"
    )
    .into_bytes()
}

/// Waits up to `limit` for the outbox to hold `n` replies.
fn replies(dovecot: &Dovecot, n: usize, limit: Duration) -> Result<Vec<String>> {
    let start = Instant::now();
    loop {
        let sent = dovecot.sent_mail().unwrap_or_default();
        if sent.len() >= n || start.elapsed() > limit {
            return Ok(sent);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn in_lists(dovecot: &Dovecot) -> Result<usize> {
    let out = dovecot.doveadm(&["search", "-u", "alice", "mailbox", "Lists", "ALL"])?;
    Ok(out.lines().filter(|l| !l.trim().is_empty()).count())
}

#[test]
fn vacation_replies_and_the_users_rule_keeps_working() -> Result<()> {
    let dovecot = Dovecot::start()?;
    dovecot.doveadm(&["mailbox", "create", "-u", "alice", "Lists"])?;
    let mut other = RawSieve::login(&dovecot, "alice", "alice-pw")?;
    other.put_active("mine", USER_RULE)?;
    let agent = agent_on(&dovecot)?;

    let before = agent.call("ooo.get", json!({"account": "alice"}))?;
    ensure!(before["enabled"] == json!(false), "{before}");

    let set = json!({"account": "alice", "enabled": true, "subject": "Away until Monday",
                     "body": "I am out of the office.\nBack on Monday."});
    ensure!(agent.call("ooo.set", set)? == json!({}));
    let got = agent.call("ooo.get", json!({"account": "alice"}))?;
    ensure!(
        got == json!({"enabled": true, "subject": "Away until Monday",
                      "body": "I am out of the office.\nBack on Monday."}),
        "{got}"
    );

    dovecot.deliver(
        "bob@localhost",
        "alice@localhost",
        &message("bob@localhost", "lunch", ""),
    )?;
    let sent = replies(&dovecot, 1, Duration::from_secs(10))?;
    ensure!(sent.len() == 1, "no vacation reply: {sent:?}\n{}", dovecot.log());
    ensure!(sent[0].contains("Subject: Away until Monday"), "{}", sent[0]);
    ensure!(
        sent[0].contains("bob@localhost") && sent[0].contains("Back on Monday."),
        "{}",
        sent[0]
    );

    // The user's rule still files list mail (a list message gets no vacation reply, RFC 5230 §4.6).
    let list_mail = "List-Id: <dev.lists.example>\r\n";
    dovecot.deliver(
        "list@example",
        "alice@localhost",
        &message("list@example", "release", list_mail),
    )?;
    ensure!(
        in_lists(&dovecot)? == 1,
        "the user's rule did not file the message"
    );

    // Their script is still there, unchanged.
    let mut other = RawSieve::login(&dovecot, "alice", "alice-pw")?;
    ensure!(other.get("mine")? == USER_RULE);
    let listed = other.list()?;
    ensure!(
        listed.iter().any(|l| l.contains("\"opconnect\" ACTIVE")),
        "{listed:?}"
    );

    ensure!(agent.call("ooo.set", json!({"account": "alice", "enabled": false}))? == json!({}));
    let got = agent.call("ooo.get", json!({"account": "alice"}))?;
    ensure!(
        got["enabled"] == json!(false) && got["subject"] == "Away until Monday",
        "{got}"
    );
    let listed = other.list()?;
    ensure!(listed.iter().any(|l| l.contains("\"mine\" ACTIVE")), "{listed:?}");

    dovecot.deliver(
        "carol@localhost",
        "alice@localhost",
        &message("carol@localhost", "hi", ""),
    )?;
    dovecot.deliver(
        "list@example",
        "alice@localhost",
        &message("list@example", "rc2", list_mail),
    )?;
    std::thread::sleep(Duration::from_millis(500));
    let sent = dovecot.sent_mail()?;
    ensure!(sent.len() == 1, "a reply after disabling: {sent:?}");
    ensure!(
        in_lists(&dovecot)? == 2,
        "the user's rule stopped working after disabling"
    );
    Ok(())
}

#[test]
fn the_period_limits_replies() -> Result<()> {
    let dovecot = Dovecot::start()?;
    let agent = agent_on(&dovecot)?;
    let day = |offset: i64| {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
            + offset * 86_400;
        let days = secs.div_euclid(86_400);
        civil_date(days)
    };
    let set = json!({"account": "alice", "enabled": true, "subject": "Away", "body": "Away.",
                     "start": day(-1), "end": day(1)});
    agent.call("ooo.set", set)?;
    let got = agent.call("ooo.get", json!({"account": "alice"}))?;
    ensure!(got["start"] == json!(format!("{}T00:00:00Z", day(-1))), "{got}");
    dovecot.deliver(
        "bob@localhost",
        "alice@localhost",
        &message("bob@localhost", "now", ""),
    )?;
    ensure!(
        replies(&dovecot, 1, Duration::from_secs(10))?.len() == 1,
        "no reply within the period"
    );

    let later = json!({"account": "alice", "enabled": true, "start": day(2), "end": day(3)});
    agent.call("ooo.set", later)?;
    let got = agent.call("ooo.get", json!({"account": "alice"}))?;
    ensure!(got["enabled"] == json!(true) && got["subject"] == "Away", "{got}");
    dovecot.deliver(
        "carol@localhost",
        "alice@localhost",
        &message("carol@localhost", "early", ""),
    )?;
    std::thread::sleep(Duration::from_millis(500));
    ensure!(
        dovecot.sent_mail()?.len() == 1,
        "a reply before the period started"
    );
    Ok(())
}

#[test]
fn starttls_with_the_private_ca() -> Result<()> {
    let dovecot = Dovecot::start_with(DovecotOptions {
        tls: true,
        ..DovecotOptions::default()
    })?;
    let spec = AccountSpec::for_user("alice")
        .imaps_from(&dovecot)
        .sieve_from(&dovecot);
    let agent = Agent::start(&render_config(&AgentSettings::default(), &[spec]))?;
    agent.wait_for_state("alice", "online", Duration::from_secs(20))?;
    let set = json!({"account": "alice", "enabled": true, "subject": "Away", "body": "Away."});
    agent.call("ooo.set", set)?;
    dovecot.deliver(
        "bob@localhost",
        "alice@localhost",
        &message("bob@localhost", "tls", ""),
    )?;
    ensure!(
        replies(&dovecot, 1, Duration::from_secs(10))?.len() == 1,
        "no reply"
    );
    let log = dovecot.log();
    ensure!(
        log.lines().any(|l| l.contains("managesieve-login")
            && l.contains("Login: user=<alice>")
            && l.contains(", TLS")),
        "the ManageSieve login was not over TLS:\n{log}"
    );
    Ok(())
}

#[test]
fn an_account_without_sieve_is_not_supported() -> Result<()> {
    let dovecot = Dovecot::start()?;
    let spec = AccountSpec::for_user("alice").imap_from(&dovecot);
    let agent = Agent::start(&render_config(&AgentSettings::default(), &[spec]))?;
    agent.wait_for_state("alice", "online", Duration::from_secs(20))?;
    for (method, params) in [
        ("ooo.get", json!({"account": "alice"})),
        (
            "ooo.set",
            json!({"account": "alice", "enabled": true, "subject": "x", "body": "y"}),
        ),
    ] {
        expect_code(&agent, method, params, 2)?;
    }
    Ok(())
}

#[test]
fn a_wrong_password_and_a_server_that_is_down_get_their_codes() -> Result<()> {
    let dovecot = Dovecot::start()?;
    let wrong = AccountSpec::for_user("alice")
        .password("wrong")
        .sieve_from(&dovecot);
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut down = AccountSpec::for_user("bob");
    down.sieve = Some(format!("sieve://127.0.0.1:{closed}"));
    let agent = Agent::start(&render_config(&AgentSettings::default(), &[wrong, down]))?;
    expect_code(&agent, "ooo.get", json!({"account": "alice"}), 3)?;
    expect_code(&agent, "ooo.set", json!({"account": "bob", "enabled": false}), 4)?;
    Ok(())
}

/// Calls through the library client, which keeps the error code the CLI does not print.
fn expect_code(agent: &Agent, method: &str, params: serde_json::Value, code: i64) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut client = rt.block_on(agent.client())?;
    match rt.block_on(client.call(method, params)) {
        Err(opconnect_ipc::ClientError::Rpc(e)) => ensure!(e.code == code, "{method}: {e:?}"),
        other => bail!("{method}: expected code {code}, got {other:?}"),
    }
    Ok(())
}

/// Days since 1970-01-01 → `YYYY-MM-DD` (H. Hinnant's civil_from_days).
fn civil_date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Another ManageSieve client (the user's webmail), plaintext on loopback.
struct RawSieve {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl RawSieve {
    fn login(dovecot: &Dovecot, user: &str, password: &str) -> Result<RawSieve> {
        let stream = TcpStream::connect(("127.0.0.1", dovecot.sieve_port()))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut s = RawSieve {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        };
        s.until_ok()?;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
        s.command(&format!("AUTHENTICATE \"PLAIN\" \"{token}\""))?;
        Ok(s)
    }

    fn put_active(&mut self, name: &str, script: &str) -> Result<()> {
        self.command(&format!("PUTSCRIPT \"{name}\" {{{}+}}\r\n{script}", script.len()))?;
        self.command(&format!("SETACTIVE \"{name}\""))?;
        Ok(())
    }

    fn list(&mut self) -> Result<Vec<String>> {
        self.command("LISTSCRIPTS")
    }

    fn get(&mut self, name: &str) -> Result<String> {
        self.writer
            .write_all(format!("GETSCRIPT \"{name}\"\r\n").as_bytes())?;
        let mut head = String::new();
        self.reader.read_line(&mut head)?;
        let n: usize = head
            .trim()
            .trim_start_matches('{')
            .trim_end_matches('}')
            .parse()
            .with_context(|| format!("GETSCRIPT: {head}"))?;
        let mut body = vec![0; n];
        self.reader.read_exact(&mut body)?;
        self.until_ok()?;
        Ok(String::from_utf8(body)?)
    }

    fn command(&mut self, line: &str) -> Result<Vec<String>> {
        self.writer.write_all(format!("{line}\r\n").as_bytes())?;
        self.until_ok()
            .with_context(|| line.lines().next().unwrap_or("").to_owned())
    }

    fn until_ok(&mut self) -> Result<Vec<String>> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line)? == 0 {
                bail!("connection closed after {lines:?}");
            }
            if line.starts_with("OK") {
                return Ok(lines);
            }
            if line.starts_with("NO") || line.starts_with("BYE") {
                bail!("server: {line}");
            }
            lines.push(line.trim_end().to_owned());
        }
    }
}
