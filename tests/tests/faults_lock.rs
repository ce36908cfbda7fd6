//! One agent per data directory, whatever its socket (issue 19): a second `opconnect run` with
//! another `--socket` and the same `--data-dir` exits with code 1 and says why, before it opens
//! the store; once the first agent is gone (even by `kill -9`) the directory is free again.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Result, bail, ensure};
use opconnect_tests::agent::opconnect_bin;
use opconnect_tests::config::render_config;
use opconnect_tests::{AccountSpec, Agent, AgentSettings, Dovecot};

/// `opconnect run --headless` on `agent`'s config and data dir, with its own socket; returns its
/// exit code and stderr, or the still-running child after `wait`.
fn second_agent(
    agent: &Agent,
    socket: &std::path::Path,
    wait: Duration,
) -> Result<Result<(i32, String), std::process::Child>> {
    let home = agent.dir().join("home");
    let mut child = Command::new(opconnect_bin())
        .args(["run", "--headless", "--socket"])
        .arg(socket)
        .arg("--config")
        .arg(agent.config_path())
        .arg("--data-dir")
        .arg(agent.data_dir())
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_STATE_HOME", home.join(".local/state"))
        .env("XDG_RUNTIME_DIR", agent.dir())
        .env_remove("DISPLAY")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let deadline = Instant::now() + wait;
    loop {
        if let Some(status) = child.try_wait()? {
            let mut stderr = String::new();
            use std::io::Read as _;
            if let Some(mut e) = child.stderr.take() {
                e.read_to_string(&mut stderr)?;
            }
            return Ok(Ok((status.code().unwrap_or(-1), stderr)));
        }
        if Instant::now() >= deadline {
            return Ok(Err(child));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_second_agent_on_the_same_data_dir_exits_whatever_its_socket() -> Result<()> {
    let dovecot = Dovecot::start()?;
    let spec = AccountSpec::for_user("alice").imap_from(&dovecot);
    let mut agent = Agent::start(&render_config(&AgentSettings::default(), &[spec]))?;
    let other = agent.dir().join("other.sock");
    match second_agent(&agent, &other, Duration::from_secs(15))? {
        Ok((code, stderr)) => {
            ensure!(code == 1, "exit code {code}: {stderr}");
            ensure!(
                stderr.contains("already using the data directory")
                    && stderr.contains(&format!("pid {}", agent.pid())),
                "{stderr}"
            );
        }
        Err(mut running) => {
            let _ = running.kill();
            let _ = running.wait();
            bail!("a second agent ran on the same data directory");
        }
    }
    ensure!(!other.exists(), "the second agent left no socket behind");
    // The first agent is unharmed.
    agent.cli_ok(&["status"])?;
    // kill -9 releases the lock with the process: another agent may take the directory now.
    agent.kill();
    match second_agent(&agent, &other, Duration::from_secs(3))? {
        Ok((code, stderr)) => bail!("the directory stayed locked after kill -9: {code} {stderr}"),
        Err(mut running) => {
            let _ = running.kill();
            let _ = running.wait();
        }
    }
    Ok(())
}
