//! End-to-end tests of the status report (issue 9, INTERFACE §2 and §5): `opconnect report`
//! against real servers, without an agent running, asserting every cell; and the `report` IPC
//! method of a running agent.
//!
//! ```text
//!   Dovecot (IMAP, ManageSieve) ─┐
//!   Radicale (CalDAV, CardDAV) ──┼──◀ opconnect report alice --format json|table|html --config F
//!   Cyrus (IMAP, CalDAV, CardDAV)┤
//!   DAViCal (CalDAV, CardDAV) ───┘
//! ```

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use opconnect_tests::agent::opconnect_bin;
use opconnect_tests::config::render_config;
use opconnect_tests::process::{run_with_timeout, short_tempdir};
use opconnect_tests::{
    AccountSpec, Agent, AgentSettings, Cyrus, Davical, Dovecot, DovecotOptions, Radicale, USERS,
};
use serde_json::{Value, json};

/// Every feature key of INTERFACE §5, in order, then opconnect's `meetings` (issue 18).
const KEYS: [&str; 14] = [
    "mail",
    "calendar",
    "contacts",
    "notes",
    "tasks",
    "groups",
    "freebusy",
    "sharing",
    "gal",
    "public_folders",
    "out_of_office",
    "copy_folder",
    "notifications",
    "meetings",
];

/// Runs `opconnect report ARGS --config F --data-dir D` with no agent; returns (exit, stdout, stderr).
fn report(config: &str, args: &[&str]) -> Result<(i32, String, String)> {
    let dir = short_tempdir("rep")?;
    let file = dir.path().join("config.toml");
    std::fs::write(&file, config)?;
    let mut cmd = Command::new(opconnect_bin());
    cmd.arg("report")
        .args(args)
        .arg("--config")
        .arg(&file)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--socket")
        .arg(dir.path().join("agent.sock"))
        .env_remove("OPCONNECT_CONFIG")
        .env_remove("OPCONNECT_DATA_DIR")
        .env_remove("OPCONNECT_SOCKET");
    let out = run_with_timeout(cmd, Duration::from_secs(60))?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// The JSON report of `account`, checked against the documented shape.
fn json_report(config: &str, account: &str) -> Result<Value> {
    let started = Instant::now();
    let (code, out, err) = report(config, &[account, "--format", "json"])?;
    ensure!(code == 0, "report exited {code}: {err}\n{out}");
    let v: Value = serde_json::from_str(&out).with_context(|| format!("not JSON: {out}"))?;
    check_shape(&v, account)?;
    eprintln!("report of {account} in {:?}:\n{out}", started.elapsed());
    Ok(v)
}

/// INTERFACE §5: `{account, generated, features: {KEY: {status, via, detail}}, servers}`.
fn check_shape(v: &Value, account: &str) -> Result<()> {
    ensure!(v["account"] == account, "account: {}", v["account"]);
    ensure!(
        v["generated"].as_str().is_some_and(|g| g.ends_with('Z')),
        "generated: {}",
        v["generated"]
    );
    let features = v["features"].as_object().context("features is not an object")?;
    ensure!(features.len() == KEYS.len(), "{} features", features.len());
    for key in KEYS {
        let cell = &features[key];
        let status = cell["status"]
            .as_str()
            .with_context(|| format!("{key}: no status"))?;
        ensure!(
            ["yes", "no", "partial", "n/a", "unknown"].contains(&status),
            "{key}: {status}"
        );
        ensure!(
            cell["via"].is_string() && cell["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{key}: {cell}"
        );
    }
    ensure!(v["servers"].is_object(), "servers: {}", v["servers"]);
    Ok(())
}

/// Asserts every cell's status; `expected` lists all fourteen in KEYS order, space-separated:
/// mail calendar contacts notes tasks groups freebusy sharing gal public_folders out_of_office
/// copy_folder notifications meetings.
fn assert_cells(v: &Value, expected: &str) {
    let got: Vec<&str> = KEYS
        .iter()
        .map(|k| v["features"][k]["status"].as_str().unwrap_or("?"))
        .collect();
    let want: Vec<&str> = expected.split_whitespace().collect();
    assert_eq!(want.len(), KEYS.len(), "expected {expected}");
    assert_eq!(
        KEYS.iter().zip(&got).collect::<Vec<_>>(),
        KEYS.iter().zip(&want).collect::<Vec<_>>(),
        "cells differ; report: {v:#}"
    );
}

fn detail<'a>(v: &'a Value, key: &str) -> &'a str {
    v["features"][key]["detail"].as_str().unwrap_or("")
}

fn radicale_with_collections(user: &str) -> Result<Radicale> {
    let r = Radicale::start()?;
    r.create_calendar(user, "calendar", "Calendar")?;
    r.create_calendar_for(user, "tasks", "Tasks", &["VTODO"])?;
    r.create_addressbook(user, "contacts", "Contacts")?;
    Ok(r)
}

#[test]
fn dovecot_and_radicale_every_cell() -> Result<()> {
    let dovecot = Dovecot::start()?;
    let radicale = radicale_with_collections("alice")?;
    let account = AccountSpec::for_user("alice")
        .imap_from(&dovecot)
        .sieve_from(&dovecot)
        .dav_from(&radicale);
    let config = render_config(&AgentSettings::default(), &[account]);
    let started = Instant::now();
    let v = json_report(&config, "alice")?;
    let took = started.elapsed();
    // Sharing is partial: Dovecot shares mail folders, Radicale has no calendar-proxy (issue 16).
    assert_cells(&v, "yes yes yes yes yes yes no partial no yes yes yes yes no");
    assert!(
        detail(&v, "sharing").contains("calendars cannot be shared"),
        "{}",
        detail(&v, "sharing")
    );
    assert_eq!(detail(&v, "notifications"), "IDLE capability");
    assert!(
        detail(&v, "out_of_office").contains("vacation"),
        "{}",
        detail(&v, "out_of_office")
    );
    assert_eq!(
        v["servers"]["caldav"]["facts"]["sync_collection"], true,
        "RFC 6578 on Radicale"
    );
    assert!(
        detail(&v, "freebusy").contains("no scheduling outbox"),
        "{}",
        detail(&v, "freebusy")
    );
    assert!(detail(&v, "sharing").contains("IMAP ACL"));
    assert!(
        v["servers"]["sieve"]["facts"]["extensions"]
            .as_array()
            .unwrap()
            .contains(&json!("vacation"))
    );
    assert!(
        v["servers"]["imap"]["facts"]["capabilities"]
            .as_array()
            .unwrap()
            .contains(&json!("IDLE"))
    );
    // Loopback: well under 3 s per account (issue 9), including the process start.
    assert!(took < Duration::from_secs(3), "report took {took:?}");

    // Table: plain text when piped; HTML: self-contained; neither shows the password.
    let (code, table, err) = report(&config, &["alice"])?;
    assert_eq!(code, 0, "{err}");
    eprintln!("{table}");
    assert!(!table.contains('\x1b'), "ANSI escapes in piped output:\n{table}");
    assert!(table.contains("Platform") && table.contains("Notes"), "{table}");
    let dir = short_tempdir("reph")?;
    let page = dir.path().join("report.html");
    let (code, out, err) = report(&config, &["alice", "--format", "html", "--output", path(&page)])?;
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    let html = std::fs::read_to_string(&page)?;
    assert!(html.starts_with("<!DOCTYPE html>") && !html.contains("<script"));
    for text in [&table, &html, &v.to_string()] {
        for (_, password) in USERS {
            assert!(!text.contains(password), "the password appears in the report");
        }
    }
    screenshot(&page, dir.path())?;
    Ok(())
}

/// Renders the HTML page in headless Chromium and keeps the screenshot as a test artifact in
/// `target/test-artifacts/report.png` (issue 9's acceptance). Chromium comes from scripts/test.
fn screenshot(page: &Path, scratch: &Path) -> Result<()> {
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts");
    std::fs::create_dir_all(&artifacts)?;
    let png = artifacts.join("report.png");
    let _ = std::fs::remove_file(&png);
    let out = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
        ])
        .args([
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", scratch.join("chromium").display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1200,1600")
        .arg(format!("file://{}", page.display()))
        .output()
        .context("headless Chromium (installed by scripts/test) must render the report")?;
    let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
    // A blank 1200×1600 PNG compresses to a few KB; a rendered table is far larger.
    ensure!(
        size > 20_000,
        "Chromium rendered no page ({size} bytes): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("report screenshot: {} ({size} bytes)", png.display());
    Ok(())
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

#[test]
fn hidden_idle_and_no_sieve() -> Result<()> {
    let dovecot = Dovecot::start_with(DovecotOptions {
        hide_idle: true,
        ..DovecotOptions::default()
    })?;
    let account = AccountSpec::for_user("bob").imap_from(&dovecot);
    let settings = AgentSettings {
        noop_interval: "20s".into(),
        ..AgentSettings::default()
    };
    let v = json_report(&render_config(&settings, &[account]), "bob")?;
    assert_cells(&v, "yes no no yes no no no yes no yes no yes yes no");
    assert!(
        detail(&v, "notifications").contains("NOOP every 20s"),
        "{}",
        detail(&v, "notifications")
    );
    assert_eq!(detail(&v, "out_of_office"), "no ManageSieve server configured");
    assert_eq!(detail(&v, "calendar"), "no CalDAV server configured");
    Ok(())
}

#[test]
fn servers_that_are_down_give_reasons_not_a_failure() -> Result<()> {
    let mut dovecot = Dovecot::start()?;
    let mut radicale = Radicale::start()?;
    let account = AccountSpec::for_user("alice")
        .imap_from(&dovecot)
        .sieve_from(&dovecot)
        .dav_from(&radicale);
    let config = render_config(&AgentSettings::default(), &[account]);
    dovecot.stop();
    radicale.stop();
    let v = json_report(&config, "alice")?;
    for key in KEYS {
        assert_eq!(v["features"][key]["status"], "unknown", "{key}: {v:#}");
    }
    assert!(
        detail(&v, "mail").contains("IMAP probe failed"),
        "{}",
        detail(&v, "mail")
    );
    assert_eq!(v["servers"]["caldav"]["state"], "failed");
    Ok(())
}

#[test]
fn the_report_ipc_method_of_a_running_agent() -> Result<()> {
    let dovecot = Dovecot::start()?;
    let radicale = radicale_with_collections("alice")?;
    let account = AccountSpec::for_user("alice")
        .imap_from(&dovecot)
        .sieve_from(&dovecot)
        .dav_from(&radicale);
    let agent = Agent::start(&render_config(&AgentSettings::default(), &[account]))?;
    let v = agent.call("report", json!({"account": "alice"}))?;
    check_shape(&v, "alice")?;
    assert_eq!(v["features"]["mail"]["status"], "yes", "{v:#}");
    assert_eq!(v["features"]["calendar"]["status"], "yes", "{v:#}");
    let e = agent.call("report", json!({"account": "nobody"})).unwrap_err();
    assert!(format!("{e:#}").contains("nobody"), "{e:#}");
    Ok(())
}

#[test]
fn cyrus_cells_that_differ() -> Result<()> {
    let cyrus = Cyrus::start()?;
    let mut account = AccountSpec::for_user("alice");
    account.imap = Some(cyrus.imap_url());
    account.caldav = Some(cyrus.dav_url());
    account.carddav = Some(cyrus.dav_url());
    let v = json_report(&render_config(&AgentSettings::default(), &[account]), "alice")?;
    // Cyrus shares calendars by DAV ACL, not calendar-proxy, which is what opconnect uses.
    assert_cells(&v, "yes yes yes yes yes yes yes partial no yes no yes yes yes");
    assert!(
        detail(&v, "public_folders").contains("Shared Folders/"),
        "{}",
        detail(&v, "public_folders")
    );
    assert!(
        detail(&v, "sharing").contains("Other Users/"),
        "{}",
        detail(&v, "sharing")
    );
    // Cyrus has a scheduling outbox (RFC 6638), which calendar.freebusy uses; Radicale has none.
    let fb = detail(&v, "freebusy");
    assert_eq!(fb, "schedule-outbox-URL /dav/calendars/user/alice/Outbox/");
    assert!(v["servers"]["caldav"]["facts"]["schedule_outbox"].is_string());
    assert_eq!(detail(&v, "out_of_office"), "no ManageSieve server configured");
    Ok(())
}

/// Issue 9's DAViCal row: Dovecot for mail and ManageSieve, DAViCal for calendars (with its
/// scheduling outbox and calendar-proxy) and contacts; every cell asserted.
#[test]
fn dovecot_and_davical_every_cell() -> Result<()> {
    let dovecot = Dovecot::start()?;
    let davical = Davical::start()?;
    davical.grant_proxy("bob", &["alice"], false)?;
    let mut account = AccountSpec::for_user("alice")
        .imap_from(&dovecot)
        .sieve_from(&dovecot);
    account.caldav = Some(davical.dav_url());
    account.carddav = Some(davical.dav_url());
    let started = Instant::now();
    let v = json_report(
        &render_config(&AgentSettings::default(), &[account.clone()]),
        "alice",
    )?;
    let took = started.elapsed();
    assert_cells(&v, "yes yes yes yes yes yes yes yes no yes yes yes yes yes");
    // DAViCal's home calendar takes VEVENT and VTODO; its outbox answers free/busy.
    assert_eq!(
        detail(&v, "tasks"),
        "VTODO collection /caldav.php/alice/calendar/"
    );
    assert_eq!(
        detail(&v, "freebusy"),
        "schedule-outbox-URL /caldav.php/alice/.out/"
    );
    assert_eq!(
        detail(&v, "sharing"),
        "IMAP ACL (RFC 4314), other-users namespace shared/, CalDAV calendar-proxy (read for 1, write for 0)"
    );
    assert_eq!(
        v["servers"]["caldav"]["facts"]["proxy_read_for"],
        json!(["/caldav.php/bob/"])
    );
    assert_eq!(detail(&v, "gal"), "no directory collection published");
    assert!(took < Duration::from_secs(3), "report took {took:?}");

    // With a shared book configured as `gal`, the report counts it as the directory.
    let book = davical.create_addressbook("bob", "directory", "Directory")?;
    davical.grant_read("bob", &book, "alice")?;
    account.gal = Some(davical.url_of(&book));
    let v = json_report(&render_config(&AgentSettings::default(), &[account]), "alice")?;
    assert_cells(&v, "yes yes yes yes yes yes yes yes yes yes yes yes yes yes");
    assert_eq!(detail(&v, "gal"), format!("directory collection {book}"));
    Ok(())
}
