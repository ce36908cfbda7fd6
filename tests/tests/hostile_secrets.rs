//! Secrets never leave the agent (invariant 7): with `OPCONNECT_LOG=trace` and real logins to
//! Dovecot (IMAP, ManageSieve) and Radicale (DAV), no log file, answer or report holds the
//! password, in clear or in the encodings the protocols send it in; a password written into a
//! config URL is refused with a message that does not repeat it.
//!
//! ```text
//!   env OPCONNECT_LOG=trace opconnect run ──LOGIN/AUTHENTICATE/Basic──► Dovecot, Radicale
//!   grep every file under the test dir (but config.toml) and every CLI answer for the password
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Result, ensure};
use base64::Engine as _;
use opconnect_tests::agent::{Launch, opconnect_bin, service_state};
use opconnect_tests::config::render_config;
use opconnect_tests::{AccountSpec, Agent, AgentSettings, Dovecot, Radicale, password_of};

/// The password and the forms it travels in: SASL PLAIN (RFC 4616) and HTTP Basic (RFC 7617).
fn secret_forms(user: &str, password: &str) -> Vec<String> {
    let b64 = |s: String| base64::engine::general_purpose::STANDARD.encode(s);
    vec![
        password.to_owned(),
        b64(format!("\0{user}\0{password}")),
        b64(format!("{user}\0{user}\0{password}")),
        b64(format!("{user}:{password}")),
    ]
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Files and texts that contain one of `forms`, by name.
fn leaks(agent: &Agent, outputs: &[(&str, String)], forms: &[String]) -> Vec<String> {
    let mut files = Vec::new();
    files_under(agent.dir(), &mut files);
    let mut found = Vec::new();
    for file in files {
        // The config holds the password command (`printf … alice-pw`) by design.
        if file.file_name().is_some_and(|n| n == "config.toml") {
            continue;
        }
        let bytes = std::fs::read(&file).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        for form in forms {
            if text.contains(form.as_str()) {
                found.push(format!("{} holds {form:?}", file.display()));
            }
        }
    }
    for (name, text) in outputs {
        for form in forms {
            if text.contains(form.as_str()) {
                found.push(format!("{name} holds {form:?}"));
            }
        }
    }
    found
}

#[test]
fn no_password_in_a_trace_log_or_an_answer() -> Result<()> {
    let dovecot = Dovecot::start()?;
    let radicale = Radicale::start()?;
    let spec = AccountSpec::for_user("alice")
        .imap_from(&dovecot)
        .sieve_from(&dovecot)
        .dav_from(&radicale);
    let launch = Launch {
        wrapper: vec!["env".into(), "OPCONNECT_LOG=trace".into()],
        ..Launch::default()
    };
    let agent = Agent::start_with(&render_config(&AgentSettings::default(), &[spec]), launch)?;
    let status = agent.wait_for(Duration::from_secs(30), |s| {
        ["imap", "caldav", "carddav"]
            .iter()
            .all(|svc| service_state(s, "alice", svc) == Some("online"))
    })?;
    // ManageSieve and every service once more: the report probes each with a login.
    let ooo = agent.cli_ok(&["call", "ooo.get", r#"{"account":"alice"}"#])?;
    let report = agent.cli_ok(&["report", "alice", "--format", "json"])?;
    let status_json = agent.cli_ok(&["status", "--json"])?;
    let log = agent.log();
    ensure!(
        log.contains("TRACE"),
        "the agent logs at trace: {}",
        &log[..log.len().min(2000)]
    );
    ensure!(
        log.contains("LOGIN") || log.contains("AUTHENTICATE") || report.contains("imap"),
        "an IMAP login happened"
    );
    let outputs = [
        ("status", status.to_string()),
        ("status --json", status_json),
        ("ooo.get", ooo),
        ("report", report),
    ];
    let found = leaks(&agent, &outputs, &secret_forms("alice", password_of("alice")));
    ensure!(found.is_empty(), "the password leaked: {found:#?}");
    Ok(())
}

#[test]
fn a_password_in_a_config_url_is_refused_without_repeating_it() -> Result<()> {
    let secret = "Tr0ub4dor-in-url";
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("config.toml");
    let mut spec = AccountSpec::for_user("alice");
    spec.imap = Some(format!("imap://alice:{secret}@127.0.0.1:1143"));
    std::fs::write(&config, render_config(&AgentSettings::default(), &[spec]))?;
    let run = |args: &[&str]| {
        Command::new(opconnect_bin())
            .args(args)
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("--socket")
            .arg(dir.path().join("agent.sock"))
            .env("HOME", dir.path())
            .env("XDG_RUNTIME_DIR", dir.path())
            .output()
    };
    for args in [&["run", "--headless"][..], &["report", "alice"][..]] {
        let out = run(args)?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        ensure!(!out.status.success(), "{args:?} accepted the config: {stdout}");
        ensure!(
            stderr.contains("contains a password") && stderr.contains("key \"imap\""),
            "{args:?}: {stderr}"
        );
        ensure!(
            !stderr.contains(secret) && !stdout.contains(secret),
            "{args:?} repeated the password: {stderr}{stdout}"
        );
    }
    Ok(())
}
