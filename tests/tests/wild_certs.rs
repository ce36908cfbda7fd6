//! Self-signed certificates (issue 21), made the common way (`openssl req -x509`, CA:TRUE), on a
//! Dovecot (IMAPS) and a Radicale (HTTPS): refused until the user trusts each one by its SHA-256
//! fingerprint, then used; a changed certificate is refused again, naming both fingerprints.
//!
//! ```text
//!   account add --imap imaps://localhost:P --caldav https://localhost:R/
//!     ├─ no pin ─────────────► exit 1: subject, issuer, validity, SHA-256 shown; nothing written
//!     ├─ --trust-fingerprint ─► tls_pins = { "localhost" = [imap's, dav's] }; account test ok
//!     └─ Dovecot gets a new certificate ─► account test: imap refused, old and new fingerprint
//! ```

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use opconnect_tests::agent::opconnect_bin;
use opconnect_tests::radicale::RadicaleOptions;
use opconnect_tests::{Agent, AgentSettings, Dovecot, DovecotOptions, Radicale, tls};

/// A name server on 127.0.0.1 answering every question REFUSED (RFC 1035 §4.1.1, RCODE 5) at
/// once: discovery finds nothing by DNS, and does not wait out a timeout per question the way a
/// closed port makes it (an unconnected UDP socket never hears the port-unreachable).
fn refusing_dns() -> Result<u16> {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
    let port = socket.local_addr()?.port();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, peer)) = socket.recv_from(&mut buf) {
            if n < 12 {
                continue;
            }
            let mut answer = buf[..n].to_vec();
            answer[2] = 0x80 | (buf[2] & 0x79); // QR, the question's opcode and RD
            answer[3] = 0x05; // REFUSED
            let _ = socket.send_to(&answer, peer);
        }
    });
    Ok(port)
}

fn cli(dir: &Path, args: &[&str]) -> Result<Output> {
    let mut cmd = Command::new(opconnect_bin());
    cmd.args(args)
        .arg("--config")
        .arg(dir.join("config.toml"))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--socket")
        .arg(dir.join("run/agent.sock"))
        .env("HOME", dir.join("home"))
        .env("XDG_RUNTIME_DIR", dir)
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("OPCONNECT_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().context("spawning opconnect")?;
    child.stdin.take().expect("piped").write_all(b"")?;
    let out = child.wait_with_output()?;
    eprintln!("$ opconnect {}\n{}", args.join(" "), text(&out));
    Ok(out)
}

/// `opconnect ARGS` on a pseudo-terminal (util-linux `script`), `answers` typed in.
fn on_a_terminal(dir: &Path, args: &[&str], answers: &str) -> Result<String> {
    let mut line = vec![opconnect_bin().to_string_lossy().into_owned()];
    line.extend(args.iter().map(|a| a.to_string()));
    for flag in ["--config", "--data-dir", "--socket"] {
        line.push(flag.into());
        line.push(
            dir.join(match flag {
                "--config" => "config.toml",
                "--data-dir" => "data",
                _ => "run/agent.sock",
            })
            .to_string_lossy()
            .into_owned(),
        );
    }
    let quoted: Vec<String> = line
        .iter()
        .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
        .collect();
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &quoted.join(" "), "/dev/null"])
        .env("HOME", dir.join("home"))
        .env("XDG_RUNTIME_DIR", dir)
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("OPCONNECT_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().context("spawning script (util-linux)")?;
    let mut stdin = child.stdin.take().expect("piped");
    // The terminal keeps what is typed until a question reads it; stdin stays open meanwhile.
    let typed = answers.to_owned();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        let _ = stdin.write_all(typed.as_bytes());
        std::thread::sleep(Duration::from_secs(60));
    });
    let out = child.wait_with_output()?;
    let said = text(&out);
    eprintln!("$ (terminal) opconnect {}\n{said}", args.join(" "));
    Ok(said)
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_self_signed_certificate_works_only_once_pinned_and_not_after_it_changes() -> Result<()> {
    let mut dovecot = Dovecot::start_with(DovecotOptions {
        tls: true,
        ..DovecotOptions::default()
    })?;
    let imap_fp = tls::make_self_signed(&dovecot.dir().join("tls"))?;
    dovecot.start_again()?;
    let radicale = Radicale::start_with(RadicaleOptions {
        tls: true,
        ..RadicaleOptions::default()
    })?;
    let dav_fp = tls::fingerprint(&radicale.dir().join("tls/server.pem"))?;
    ensure!(imap_fp != dav_fp);

    // No DNS answers here (a name server that refuses every question, at once): only the given servers count.
    let config = format!(
        "{}dns = \"127.0.0.1:{}\"\n",
        AgentSettings::default().to_toml(),
        refusing_dns()?
    );
    let agent = Agent::start(&config)?;
    let dir = agent.dir().to_owned();
    let before = std::fs::read_to_string(agent.config_path())?;
    let imap = format!("imaps://localhost:{}", dovecot.imaps_port());
    let caldav = radicale.url();
    let add = [
        "account",
        "add",
        "self",
        "--email",
        "alice@example.test",
        "--username",
        "alice",
        "--password-command",
        "printf '%s\\n' alice-pw",
        "--imap",
        &imap,
        "--caldav",
        &caldav,
    ];

    // 1. Not trusted: shown (subject, issuer, validity, fingerprint), nothing written.
    let out = cli(&dir, &add)?;
    let shown = text(&out);
    ensure!(out.status.code() == Some(1), "{shown}");
    ensure!(
        shown.contains("CaUsedAsEndEntity"),
        "the common self-signed kind: {shown}"
    );
    for needle in [
        "subject   CN=localhost, O=opconnect self-signed test",
        "issuer    CN=localhost",
        "valid     ",
        &format!("SHA-256   {imap_fp}"),
        &format!("SHA-256   {dav_fp}"),
        "--trust-fingerprint",
    ] {
        ensure!(shown.contains(needle), "`{needle}` missing:\n{shown}");
    }
    ensure!(std::fs::read_to_string(agent.config_path())? == before);

    // On a terminal it asks: "n" trusts nothing, "y" trusts the certificate shown.
    let said = on_a_terminal(&dir, &add, "n\nn\n")?;
    ensure!(said.contains("[y/N]") && said.contains("not trusted"), "{said}");
    ensure!(std::fs::read_to_string(agent.config_path())? == before);
    let mut asked: Vec<&str> = add.to_vec();
    asked[2] = "asked";
    let said = on_a_terminal(&dir, &asked, "y\ny\n")?;
    ensure!(said.contains("Added account \"asked\""), "{said}");
    let written = std::fs::read_to_string(agent.config_path())?;
    ensure!(
        written.contains(&imap_fp) && written.contains(&dav_fp),
        "{written}"
    );

    // 2. Trusted by fingerprint (as a script does): pinned per host, and used.
    let mut pinned: Vec<&str> = add.to_vec();
    pinned.extend(["--trust-fingerprint", &imap_fp, "--trust-fingerprint", &dav_fp]);
    let out = cli(&dir, &pinned)?;
    ensure!(out.status.success(), "{}", text(&out));
    let written = std::fs::read_to_string(agent.config_path())?;
    ensure!(
        written.contains("tls_pins") && written.contains(&imap_fp) && written.contains(&dav_fp),
        "{written}"
    );
    let tested = cli(&dir, &["account", "test", "self"])?;
    ensure!(tested.status.success(), "{}", text(&tested));
    // The agent syncs through the pins too.
    let mut agent = agent;
    agent.restart()?;
    agent.wait_for_state("self", "online", Duration::from_secs(30))?;

    // 3. Dovecot's certificate changes: refused, with the pinned and the new fingerprint.
    let new_fp = tls::make_self_signed(&dovecot.dir().join("tls"))?;
    dovecot.start_again()?;
    let tested = cli(&dir, &["account", "test", "self"])?;
    let said = text(&tested);
    ensure!(tested.status.code() == Some(1), "{said}");
    ensure!(
        said.contains("changed") && said.contains(&imap_fp) && said.contains(&new_fp),
        "both fingerprints named: {said}"
    );
    ensure!(
        !said.contains("OtherError"),
        "rustls's wrapping is not shown: {said}"
    );
    // The status report says what to do: put the new fingerprint in tls_pins.
    let report = cli(&dir, &["report", "self", "--format", "json"])?;
    let report = text(&report);
    ensure!(
        report.contains(&new_fp) && report.contains("tls_pins"),
        "the report's evidence names the pin to set: {report}"
    );
    Ok(())
}
