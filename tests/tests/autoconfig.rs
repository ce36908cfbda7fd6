//! End-to-end test of Thunderbird autoconfig in `account add` (issue 21): a private dnsmasq
//! names every host of `autoconf.test` 127.66.x.y, where `openssl s_server -WWW` serves
//! `/.well-known/autoconfig/mail/config-v1.1.xml` over TLS from a CA of the test's own; the
//! file points at the private Dovecot and Radicale. No SRV records: only autoconfig can find them.
//!
//! ```text
//!   dnsmasq: *.autoconf.test → 127.66.x.y
//!   https://autoconfig.autoconf.test/mail/config-v1.1.xml?…  → 404 (s_server knows no query)
//!   https://autoconf.test/.well-known/autoconfig/mail/config-v1.1.xml → the file
//!   opconnect account add --email alice@autoconf.test --tls-ca ca.pem → imap, caldav from it
//! ```

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use opconnect_tests::process::{self, Spawned};
use opconnect_tests::{Agent, AgentSettings, Dovecot, Radicale, ports};

const DOMAIN: &str = "autoconf.test";

fn openssl(dir: &Path, args: &[&str]) -> Result<()> {
    let mut cmd = Command::new("openssl");
    cmd.current_dir(dir).args(args);
    process::run_ok(cmd, Duration::from_secs(30))
        .map(|_| ())
        .context("openssl")
}

/// A CA and a certificate for the domain and its autoconfig host.
fn certificates(dir: &Path) -> Result<()> {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=autoconf test CA",
    ]);
    ca.extend([
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ]);
    openssl(dir, &ca)?;
    let mut csr = vec!["req", "-new"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=autoconf.test",
    ]);
    openssl(dir, &csr)?;
    fs::write(
        dir.join("server.ext"),
        format!(
            "basicConstraints = critical,CA:FALSE\nextendedKeyUsage = serverAuth\n\
             subjectAltName = DNS:{DOMAIN},DNS:autoconfig.{DOMAIN}\n"
        ),
    )?;
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
    )
}

#[test]
fn account_add_finds_the_servers_through_autoconfig() -> Result<()> {
    ensure!(
        process::is_root(),
        "this test listens on port 443 (of 127.66.x.y): run it as root, as CI does"
    );
    let dovecot = Dovecot::start()?;
    let radicale = Radicale::start()?;
    let dir = process::short_tempdir("autoconf")?;
    certificates(dir.path())?;
    let web = dir.path().join("www");
    fs::create_dir_all(web.join(".well-known/autoconfig/mail"))?;
    fs::write(
        web.join(".well-known/autoconfig/mail/config-v1.1.xml"),
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="{DOMAIN}">
    <domain>{DOMAIN}</domain>
    <displayName>Autoconf Test Mail</displayName>
    <incomingServer type="imap">
      <hostname>localhost</hostname><port>{}</port><socketType>STARTTLS</socketType>
      <username>%EMAILLOCALPART%</username><authentication>password-cleartext</authentication>
    </incomingServer>
  </emailProvider>
  <calendar type="caldav"><serverURL>http://localhost:{}/</serverURL></calendar>
</clientConfig>
"#,
            dovecot.imap_port(),
            radicale.port()
        ),
    )?;
    // A loopback address of the test's own, so that port 443 is free whatever else runs.
    let ip = format!(
        "127.66.{}.{}",
        std::process::id() % 200 + 1,
        ports::free_port()? % 200 + 1
    );
    let mut server = Command::new("openssl");
    server
        .current_dir(&web)
        .args(["s_server", "-quiet", "-WWW", "-accept"])
        .arg(format!("{ip}:443"))
        .arg("-cert")
        .arg(dir.path().join("server.pem"))
        .arg("-key")
        .arg(dir.path().join("server.key"));
    let mut www = Spawned::spawn("openssl s_server", server, &dir.path().join("www.log"))?;
    www.wait_ready(Duration::from_secs(10), || {
        std::net::TcpStream::connect(format!("{ip}:443")).is_ok()
    })?;

    let dns_port = ports::free_port()?;
    let mut dnsmasq = Command::new(process::find_program("dnsmasq").context("dnsmasq")?);
    dnsmasq
        .args([
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
        ])
        .args([
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
            "--log-queries",
            "--log-facility=-",
            "--pid-file=",
        ])
        .arg(format!("--port={dns_port}"))
        .arg(format!("--local=/{DOMAIN}/"))
        .arg(format!("--address=/{DOMAIN}/{ip}"))
        .arg("--user=nobody");
    let mut dns = Spawned::spawn("dnsmasq", dnsmasq, &dir.path().join("dns.log"))?;
    dns.wait_ready(Duration::from_secs(10), || ports::port_accepts(dns_port))?;

    let config = format!(
        "{}dns = \"127.0.0.1:{dns_port}\"\n",
        AgentSettings::default().to_toml()
    );
    let agent = Agent::start(&config)?;
    let ca = dir.path().join("ca.pem");
    let out = agent.cli(&[
        "account",
        "add",
        "auto",
        "--email",
        &format!("alice@{DOMAIN}"),
        "--username",
        "alice",
        "--password-command",
        "printf '%s\\n' alice-pw",
        "--tls-ca",
        &ca.to_string_lossy(),
    ]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    ensure!(out.status.success(), "{text}");
    ensure!(text.contains("Provider: Autoconf Test Mail"), "{text}");
    ensure!(
        text.contains("source: autoconfig") || text.contains("autoconfig autoconf.test"),
        "{text}"
    );
    let written = fs::read_to_string(agent.config_path())?;
    ensure!(
        written.contains(&format!("imap = \"imap://localhost:{}\"", dovecot.imap_port())),
        "{written}"
    );
    ensure!(
        written.contains(&format!("caldav = \"http://localhost:{}/\"", radicale.port())),
        "{written}"
    );
    Ok(())
}
