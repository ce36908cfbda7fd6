//! End-to-end tests of account setup (issue 8): `opconnect account add | list | test | remove` and
//! the IPC `account.discover`, with discovery answered by a private dnsmasq on loopback whose SRV
//! and TXT records (RFC 6186, RFC 6764) point at the private Dovecot and Radicale.
//!
//! ```text
//!   dnsmasq 127.0.0.1:P  _imap._tcp.example.test   SRV 0 0 IMAP    localhost
//!                        _sieve._tcp.example.test  SRV 0 0 SIEVE   localhost
//!                        _caldav._tcp / _carddav._tcp SRV → Radicale, TXT path=/
//!   config: [agent] dns = "127.0.0.1:P"  ──►  opconnect account add work --email alice@example.test
//! ```

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use opconnect_tests::agent::{opconnect_bin, service_state};
use opconnect_tests::process::{self, Spawned};
use opconnect_tests::{AccountSpec, Agent, AgentSettings, Dovecot, DovecotOptions, Radicale, ports};
use serde_json::json;

const DOMAIN: &str = "example.test";
const EMAIL: &str = "alice@example.test";

/// A private dnsmasq answering for `example.test` only (`--local`), from the records given.
struct Dnsmasq {
    _dir: tempfile::TempDir,
    port: u16,
    _child: Spawned,
}

impl Dnsmasq {
    fn start(records: &[String]) -> Result<Dnsmasq> {
        let bin = process::find_program("dnsmasq").context("dnsmasq (scripts/test installs dnsmasq-base)")?;
        let dir = process::short_tempdir("dns")?;
        let port = ports::free_port()?;
        let mut cmd = Command::new(bin);
        cmd.args([
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
            "--log-queries",
            "--log-facility=-",
            "--pid-file=",
        ])
        .arg(format!("--port={port}"))
        .arg(format!("--local=/{DOMAIN}/"))
        .args(records);
        if process::is_root() {
            // dnsmasq drops to `nobody` by default; it needs nothing from the file system.
            cmd.arg("--user=nobody");
        }
        let log = dir.path().join("dnsmasq.log");
        let mut child = Spawned::spawn("dnsmasq", cmd, &log)?;
        child.wait_ready(Duration::from_secs(10), || ports::port_accepts(port))?;
        Ok(Dnsmasq {
            _dir: dir,
            port,
            _child: child,
        })
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// Dovecot, Radicale and a dnsmasq that points at them.
struct World {
    dovecot: Dovecot,
    radicale: Radicale,
    dns: Dnsmasq,
}

fn world() -> Result<World> {
    let dovecot = Dovecot::start().context("starting the private Dovecot")?;
    let radicale = Radicale::start().context("starting the private Radicale")?;
    let srv = |name: &str, port: u16| format!("--srv-host={name}.{DOMAIN},localhost,{port},0,0");
    let dns = Dnsmasq::start(&[
        srv("_imap._tcp", dovecot.imap_port()),
        srv("_sieve._tcp", dovecot.sieve_port()),
        srv("_caldav._tcp", radicale.port()),
        srv("_carddav._tcp", radicale.port()),
        format!("--txt-record=_caldav._tcp.{DOMAIN},path=/"),
    ])
    .context("starting dnsmasq")?;
    Ok(World {
        dovecot,
        radicale,
        dns,
    })
}

/// A hand-written config with comments, `dns` pointing at dnsmasq, and no account yet.
fn user_config(dns: &Dnsmasq) -> String {
    let agent = AgentSettings::default().to_toml();
    format!(
        "# My settings, written by hand.\n{}dns = \"{}\"   # private resolver for tests\n\n# accounts follow\n",
        agent,
        dns.addr()
    )
}

/// `opconnect ARGS` with the agent's config, data dir and socket, `stdin` piped in. No session
/// bus is passed on: the OS credential store is absent, as on CI.
fn cli(agent: &Agent, args: &[&str], stdin: &str) -> Result<Output> {
    cli_in(agent.dir(), None, args, stdin)
}

/// The command for `opconnect ARGS` in the layout of [`Agent`] under `dir` (config.toml, data/,
/// run/agent.sock), on the session bus `bus` if given (and then only there).
fn command_in(dir: &Path, bus: Option<&str>, args: &[&str]) -> Command {
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
        .env_remove("OPCONNECT_CONFIG");
    if let Some(bus) = bus {
        cmd.env("DBUS_SESSION_BUS_ADDRESS", bus);
    }
    cmd
}

fn cli_in(dir: &Path, bus: Option<&str>, args: &[&str], stdin: &str) -> Result<Output> {
    let mut cmd = command_in(dir, bus, args);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().context("spawning opconnect")?;
    child.stdin.take().expect("piped").write_all(stdin.as_bytes())?;
    let out = child.wait_with_output()?;
    eprintln!(
        "$ opconnect {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(out)
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

const PASSWORD_COMMAND: &str = "printf '%s\\n' alice-pw";

#[test]
fn add_discovers_from_srv_and_the_agent_goes_online() -> Result<()> {
    let w = world()?;
    let mut agent = Agent::start(&user_config(&w.dns))?;
    let before = std::fs::read_to_string(agent.config_path())?;

    let began = Instant::now();
    let out = cli(
        &agent,
        &[
            "account",
            "add",
            "work",
            "--email",
            EMAIL,
            "--username",
            "alice",
            "--password-command",
            PASSWORD_COMMAND,
        ],
        "",
    )?;
    eprintln!("account add took {:?} (discovery and logins)", began.elapsed());
    ensure!(out.status.success(), "account add failed: {}", text(&out));
    let shown = text(&out);
    ensure!(shown.contains("[SRV _imap._tcp.example.test]"), "{shown}");
    ensure!(
        !shown.contains("alice-pw"),
        "the password must never be printed: {shown}"
    );

    let config = std::fs::read_to_string(agent.config_path())?;
    // Every line the user wrote is still there (the trailing comment now follows the account).
    for line in before.lines() {
        ensure!(config.contains(line), "{line:?} is gone:\n{config}");
    }
    let imap = format!("imap = \"imap://localhost:{}\"", w.dovecot.imap_port());
    let dav = format!("\"http://localhost:{}/\"", w.radicale.port());
    let sieve = format!("sieve = \"sieve://localhost:{}\"", w.dovecot.sieve_port());
    for needle in [
        &imap,
        &format!("caldav = {dav}"),
        &format!("carddav = {dav}"),
        &sieve,
    ] {
        ensure!(config.contains(needle.as_str()), "missing {needle}:\n{config}");
    }
    ensure!(config.contains("password_command"), "{config}");
    ensure!(
        !config.contains("smtp ="),
        "Dovecot offers no submission here:\n{config}"
    );

    let listed = cli(&agent, &["account", "list"], "")?;
    ensure!(
        listed.status.success() && text(&listed).contains("work"),
        "{}",
        text(&listed)
    );

    let tested = cli(&agent, &["account", "test", "work"], "")?;
    ensure!(tested.status.success(), "{}", text(&tested));
    for service in ["imap", "caldav", "carddav", "sieve"] {
        let line = text(&tested)
            .lines()
            .find(|l| l.starts_with(service))
            .map(str::to_owned)
            .unwrap_or_default();
        ensure!(
            line.contains(" ok ") && line.contains(" ms"),
            "{service}: {line:?}"
        );
    }

    agent.restart()?;
    let status = agent.wait_for_state("work", "online", Duration::from_secs(20))?;
    for service in ["imap", "caldav", "carddav"] {
        ensure!(
            service_state(&status, "work", service) == Some("online"),
            "{service}: {status}"
        );
    }
    Ok(())
}

#[test]
fn a_wrong_password_is_reported_per_service_and_nothing_is_written() -> Result<()> {
    let w = world()?;
    let agent = Agent::start(&user_config(&w.dns))?;
    let before = std::fs::read_to_string(agent.config_path())?;
    let out = cli(
        &agent,
        &[
            "account",
            "add",
            "work",
            "--email",
            EMAIL,
            "--username",
            "alice",
            "--password-command",
            "printf 'wrong-pw\\n'",
        ],
        "",
    )?;
    ensure!(out.status.code() == Some(1), "{}", text(&out));
    let shown = text(&out);
    ensure!(shown.contains("password was refused by"), "{shown}");
    for service in ["imap", "caldav", "carddav", "sieve"] {
        ensure!(
            shown
                .lines()
                .any(|l| l.contains(service) && l.contains("authentication failed")),
            "{service} not reported: {shown}"
        );
    }
    ensure!(std::fs::read_to_string(agent.config_path())? == before);

    // `account test` on a configured account with a wrong password: one failing line per service.
    let wrong = AccountSpec::for_user("alice")
        .named("wrong")
        .password("nope")
        .imap_from(&w.dovecot)
        .sieve_from(&w.dovecot)
        .dav_from(&w.radicale);
    agent.write_config(&format!("{before}\n{}", wrong.to_toml()))?;
    let tested = cli(&agent, &["account", "test", "wrong"], "")?;
    ensure!(tested.status.code() == Some(1), "{}", text(&tested));
    let failing = text(&tested)
        .lines()
        .filter(|l| l.contains("FAILED") && l.contains("authentication failed"))
        .count();
    ensure!(failing == 4, "{}", text(&tested));
    Ok(())
}

#[test]
fn without_a_credential_store_a_typed_password_is_refused_clearly() -> Result<()> {
    let dir = process::short_tempdir("oc")?;
    let config = dir.path().join("config.toml");
    let out = Command::new(opconnect_bin())
        .args(["account", "add", "work", "--email", EMAIL, "--password-stdin"])
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--socket")
        .arg(dir.path().join("agent.sock"))
        .env("HOME", dir.path())
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env("XDG_RUNTIME_DIR", dir.path())
        .stdin(Stdio::null())
        .output()?;
    let shown = text(&out);
    ensure!(out.status.code() == Some(1), "{shown}");
    ensure!(
        shown.contains("no OS credential store") && shown.contains("--password-command"),
        "{shown}"
    );
    ensure!(!config.exists(), "nothing may be written");
    Ok(())
}

#[test]
fn remove_takes_the_account_and_its_mirror_and_keeps_comments() -> Result<()> {
    let w = world()?;
    let mut agent = Agent::start(&user_config(&w.dns))?;
    let before = std::fs::read_to_string(agent.config_path())?;
    let add = [
        "account",
        "add",
        "work",
        "--email",
        EMAIL,
        "--username",
        "alice",
        "--password-command",
        PASSWORD_COMMAND,
    ];
    ensure!(cli(&agent, &add, "")?.status.success());
    w.dovecot
        .append("alice", "INBOX", b"Subject: mirrored\r\n\r\nbody\r\n")?;
    agent.restart()?;
    agent.wait_for(Duration::from_secs(20), |_| {
        agent
            .call("mail.messages", json!({"account": "work", "folder": "INBOX"}))
            .is_ok_and(|m| m["messages"].as_array().is_some_and(|a| !a.is_empty()))
    })?;

    let busy = cli(&agent, &["account", "remove", "work", "--yes"], "")?;
    ensure!(
        busy.status.code() == Some(1),
        "refused while the agent runs: {}",
        text(&busy)
    );
    ensure!(text(&busy).contains("stop it first"), "{}", text(&busy));

    agent.stop();
    let out = cli(&agent, &["account", "remove", "work", "--yes"], "")?;
    ensure!(out.status.success(), "{}", text(&out));
    ensure!(text(&out).contains("Deleted its local mirror"), "{}", text(&out));
    ensure!(
        std::fs::read_to_string(agent.config_path())? == before,
        "the file is back to what the user wrote"
    );
    let again = cli(&agent, &["account", "remove", "work", "--yes"], "")?;
    ensure!(again.status.code() == Some(1) && text(&again).contains("no account named"));

    // The mirror is gone: a new account of the same name starts from nothing.
    ensure!(cli(&agent, &add, "")?.status.success());
    let out = cli(&agent, &["account", "remove", "work"], "")?;
    ensure!(out.status.success(), "{}", text(&out));
    ensure!(
        !text(&out).contains("mirror"),
        "no mirror left to ask about: {}",
        text(&out)
    );
    Ok(())
}

#[test]
fn discover_over_ipc_needs_no_password() -> Result<()> {
    let w = world()?;
    let agent = Agent::start(&user_config(&w.dns))?;
    let began = Instant::now();
    let found = agent.call("account.discover", json!({"email": EMAIL}))?;
    eprintln!("account.discover took {:?}: {found:#}", began.elapsed());
    ensure!(
        found["imap"] == json!(format!("imap://localhost:{}", w.dovecot.imap_port())),
        "{found}"
    );
    ensure!(
        found["caldav"] == json!(format!("http://localhost:{}/", w.radicale.port())),
        "{found}"
    );
    ensure!(
        found["carddav"].is_string() && found["sieve"].is_string(),
        "{found}"
    );
    ensure!(found.get("smtp").is_none(), "{found}");
    let tried = found["tried"].as_array().context("tried")?;
    ensure!(
        tried
            .iter()
            .any(|t| t["source"] == "SRV _imap._tcp.example.test" && t["ok"] == true),
        "{found}"
    );
    let e = agent.call("account.discover", json!({"email": "not-an-address"}));
    ensure!(e.is_err(), "{e:?}");
    Ok(())
}

/// A private D-Bus session with GNOME Keyring's Secret Service, unlocked; killed on Drop.
struct SecretService {
    dir: tempfile::TempDir,
    bus: String,
    _session: Spawned,
}

impl SecretService {
    fn start() -> Result<SecretService> {
        let session = process::find_program("dbus-run-session").context("dbus-run-session (package dbus)")?;
        process::find_program("gnome-keyring-daemon")
            .context("gnome-keyring-daemon (package gnome-keyring)")?;
        let dir = process::short_tempdir("ss")?;
        std::fs::create_dir(dir.path().join("home"))?;
        let bus_file = dir.path().join("bus");
        // The keyring's own password must not be empty, or no login collection is created.
        let script = format!(
            "printf 'keyring-pw' | gnome-keyring-daemon --unlock --components=secrets >/dev/null \
             && printf '%s' \"$DBUS_SESSION_BUS_ADDRESS\" > '{}' && exec sleep 600",
            bus_file.display()
        );
        let mut cmd = Command::new(session);
        cmd.args(["--", "sh", "-c", &script])
            .env("HOME", dir.path().join("home"))
            .env("XDG_RUNTIME_DIR", dir.path());
        let mut child = Spawned::spawn("dbus-run-session", cmd, &dir.path().join("session.log"))?;
        child.wait_ready(Duration::from_secs(15), || {
            std::fs::read_to_string(&bus_file).is_ok_and(|b| !b.is_empty())
        })?;
        let bus = std::fs::read_to_string(&bus_file)?;
        Ok(SecretService {
            dir,
            bus,
            _session: child,
        })
    }
}

#[test]
fn a_typed_password_goes_to_the_secret_service_and_the_agent_uses_it() -> Result<()> {
    let w = world()?;
    let keyring = SecretService::start().context("starting GNOME Keyring on a private session bus")?;
    let dir = process::short_tempdir("oc")?;
    std::fs::create_dir(dir.path().join("home"))?;
    std::fs::write(dir.path().join("config.toml"), user_config(&w.dns))?;
    let bus = Some(keyring.bus.as_str());
    let add = [
        "account",
        "add",
        "work",
        "--email",
        EMAIL,
        "--username",
        "alice",
        "--password-stdin",
    ];
    let out = cli_in(dir.path(), bus, &add, "alice-pw\n")?;
    ensure!(out.status.success(), "{}", text(&out));
    ensure!(text(&out).contains("OS credential store"), "{}", text(&out));
    let config = std::fs::read_to_string(dir.path().join("config.toml"))?;
    ensure!(
        !config.contains("alice-pw") && !config.contains("password_command"),
        "{config}"
    );
    let keyrings = keyring.dir.path().join("home/.local/share/keyrings");
    ensure!(
        keyrings.is_dir(),
        "GNOME Keyring keeps its files in {}",
        keyrings.display()
    );

    let tested = cli_in(dir.path(), bus, &["account", "test", "work"], "")?;
    ensure!(
        tested.status.success(),
        "the stored password works: {}",
        text(&tested)
    );

    // The agent reads the password from the same store.
    let mut cmd = command_in(dir.path(), bus, &["run", "--headless"]);
    cmd.stdin(Stdio::null());
    let mut agent = Spawned::spawn("opconnect run", cmd, &dir.path().join("agent.log"))?;
    let online = || {
        cli_in(dir.path(), bus, &["status", "--json"], "")
            .ok()
            .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok())
            .is_some_and(|s| opconnect_tests::agent::account_state(&s, "work") == Some("online"))
    };
    agent.wait_ready(Duration::from_secs(30), online)?;
    agent.terminate(Duration::from_secs(10));

    let out = cli_in(dir.path(), bus, &["account", "remove", "work", "--yes"], "")?;
    ensure!(out.status.success(), "{}", text(&out));
    ensure!(text(&out).contains("Deleted its password"), "{}", text(&out));
    // Gone from the store: an account of that name now finds no password there.
    std::fs::write(
        dir.path().join("config.toml"),
        format!(
            "{}\n{}",
            user_config(&w.dns),
            AccountSpec {
                name: "work".into(),
                email: EMAIL.into(),
                username: Some("alice".into()),
                imap: Some(w.dovecot.imap_url()),
                ..AccountSpec::default()
            }
            .to_toml()
        ),
    )?;
    let tested = cli_in(dir.path(), bus, &["account", "test", "work"], "")?;
    ensure!(
        tested.status.code() == Some(1) && text(&tested).contains("has no password"),
        "{}",
        text(&tested)
    );
    Ok(())
}

#[test]
fn a_self_hosted_certificate_needs_tls_ca_and_then_works() -> Result<()> {
    let dovecot = Dovecot::start_with(DovecotOptions {
        tls: true,
        ..DovecotOptions::default()
    })?;
    let dns = Dnsmasq::start(&[format!(
        "--srv-host=_imaps._tcp.{DOMAIN},localhost,{},0,0",
        dovecot.imaps_port()
    )])?;
    let agent = Agent::start(&user_config(&dns))?;
    let before = std::fs::read_to_string(agent.config_path())?;
    let add = [
        "account",
        "add",
        "self",
        "--email",
        EMAIL,
        "--username",
        "alice",
        "--password-command",
        PASSWORD_COMMAND,
    ];
    // TLS is always verified: the private CA is not trusted until it is given.
    let out = cli(&agent, &add, "")?;
    ensure!(out.status.code() == Some(1), "{}", text(&out));
    ensure!(
        text(&out).contains("not trusted") && text(&out).contains("tls_ca"),
        "{}",
        text(&out)
    );
    ensure!(std::fs::read_to_string(agent.config_path())? == before);

    let ca = dovecot.ca_pem();
    let mut with_ca: Vec<&str> = add.to_vec();
    let ca_arg = ca.to_string_lossy().into_owned();
    with_ca.extend(["--tls-ca", &ca_arg]);
    let out = cli(&agent, &with_ca, "")?;
    ensure!(out.status.success(), "{}", text(&out));
    let config = std::fs::read_to_string(agent.config_path())?;
    let imaps = format!("imap = \"imaps://localhost:{}\"", dovecot.imaps_port());
    ensure!(config.contains(&imaps), "{config}");
    ensure!(config.contains("tls_ca = "), "{config}");
    let tested = cli(&agent, &["account", "test", "self"], "")?;
    ensure!(
        tested.status.success() && text(&tested).contains("logged in (TLS)"),
        "{}",
        text(&tested)
    );
    Ok(())
}
