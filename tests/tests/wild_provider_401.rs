//! A provider that wants an app password, end to end (issue 21): an `@icloud.com` account whose
//! servers (a private Dovecot and Radicale) refuse its password with `NO [AUTHENTICATIONFAILED]`
//! and `401`, as iCloud does for the account's own password. `account add` stops, writes
//! nothing and says where to make an app-specific password; `opconnect report` names the
//! provider and puts the same advice under `provider.action` and the table's `To do:` line.
//! A private dnsmasq is the agent's DNS (`[agent] dns`) and knows no iCloud host, so the
//! presets discovery tries for the missing services fail at once, offline.
//!
//! ```text
//!   account add --email alice@icloud.com --imap imap://127.0.0.1:P --caldav http://127.0.0.1:R/
//!     Dovecot: NO, Radicale: 401 ──► "… iCloud needs an app-specific password: make one at …"
//! ```

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use opconnect_tests::config::render_config;
use opconnect_tests::process::{self, Spawned};
use opconnect_tests::{AccountSpec, Agent, AgentSettings, Dovecot, Radicale, ports};

/// dnsmasq on a free port that answers for no name at all (no upstream, no hosts file): every
/// provider host is unknown, at once.
fn silent_dns(dir: &std::path::Path) -> Result<(Spawned, u16)> {
    let port = ports::free_port()?;
    let mut cmd = Command::new(process::find_program("dnsmasq").context("dnsmasq")?);
    cmd.args([
        "--keep-in-foreground",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
    ])
    .args(["--bind-interfaces", "--listen-address=127.0.0.1", "--log-queries"])
    .args(["--log-facility=-", "--pid-file=", "--user=nobody"])
    .arg(format!("--port={port}"))
    .args(["--local=/icloud.com/", "--local=/me.com/", "--local=/mac.com/"]);
    let mut dns = Spawned::spawn("dnsmasq", cmd, &dir.join("dns.log"))?;
    dns.wait_ready(Duration::from_secs(10), || ports::port_accepts(port))?;
    Ok((dns, port))
}

#[test]
fn an_icloud_login_refused_says_to_make_an_app_password() -> Result<()> {
    let dovecot = Dovecot::start()?;
    let radicale = Radicale::start()?;
    let dir = process::short_tempdir("prov401")?;
    let (_dns, dns_port) = silent_dns(dir.path())?;
    let settings = format!(
        "{}dns = \"127.0.0.1:{dns_port}\"\n",
        AgentSettings::default().to_toml()
    );
    let agent = Agent::start(&settings)?;

    // account add: both servers refuse the password; nothing is written.
    let began = Instant::now();
    let out = agent.cli(&[
        "account",
        "add",
        "icloud",
        "--email",
        "alice@icloud.com",
        "--username",
        "alice",
        "--imap",
        &format!("imap://127.0.0.1:{}", dovecot.imap_port()),
        "--caldav",
        &format!("http://127.0.0.1:{}/", radicale.port()),
        "--password-command",
        "printf '%s\\n' not-an-app-password",
    ]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(!out.status.success(), "a refused password fails: {text}");
    ensure!(
        text.contains("the password was refused by") && text.contains("nothing was written"),
        "{text}"
    );
    ensure!(
        text.contains("iCloud needs an app-specific password") && text.contains("https://account.apple.com"),
        "account add says where to make an app password: {text}"
    );
    ensure!(text.contains("Provider: iCloud"), "{text}");
    ensure!(
        began.elapsed() < Duration::from_secs(40),
        "offline presets fail fast: {:?}",
        began.elapsed()
    );
    let written = std::fs::read_to_string(agent.config_path())?;
    ensure!(!written.contains("icloud"), "nothing was written:\n{written}");

    // The status report of such an account (written by hand): provider and what to do.
    let mut spec = AccountSpec::for_user("alice")
        .imap_from(&dovecot)
        .password("not-an-app-password");
    spec.name = "icloud".into();
    spec.email = "alice@icloud.com".into();
    spec.caldav = Some(format!("http://127.0.0.1:{}/", radicale.port()));
    agent.write_config(&render_config(&AgentSettings::default(), &[spec]))?;
    let report = agent.cli_ok(&["report", "icloud", "--format", "json"])?;
    let json: serde_json::Value = serde_json::from_str(&report)?;
    ensure!(json["provider"]["name"] == "iCloud", "{report}");
    let action = json["provider"]["action"].as_str().unwrap_or_default();
    ensure!(
        action.contains("app-specific password") && action.contains("https://account.apple.com"),
        "{report}"
    );
    let table = agent.cli_ok(&["report", "icloud"])?;
    ensure!(
        table.contains("Provider: iCloud") && table.contains("To do: iCloud needs an app-specific password"),
        "{table}"
    );
    Ok(())
}
