//! Private Dovecot + Radicale for manual runs and `scripts/demo`: starts both, writes an agent
//! config for alice to the path given as the first argument, prints `READY <path>`, and keeps the
//! servers until its standard input closes (then they are killed with their process groups).
//!
//! ```text
//!   cargo run -p opconnect-tests --example servers -- /tmp/opconnect-demo.toml [--tls]
//! ```

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, Result};
use opconnect_tests::config::render_config;
use opconnect_tests::{AccountSpec, AgentSettings, Dovecot, DovecotOptions, Radicale};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let config: PathBuf = args
        .next()
        .context("usage: servers CONFIG_PATH [--tls]")?
        .into();
    let tls = args.any(|a| a == "--tls");
    let dovecot = Dovecot::start_with(DovecotOptions {
        tls,
        ..Default::default()
    })?;
    let radicale = Radicale::start()?;
    let mut account = AccountSpec::for_user("alice")
        .dav_from(&radicale)
        .sieve_from(&dovecot);
    account = if tls {
        account.imaps_from(&dovecot)
    } else {
        account.imap_from(&dovecot)
    };
    std::fs::write(&config, render_config(&AgentSettings::default(), &[account]))?;
    eprintln!("dovecot {} (log {})", dovecot.imap_url(), dovecot.log_path().display());
    eprintln!("radicale {} (log {})", radicale.url(), radicale.log_path().display());
    println!("READY {}", config.display());
    // Hold the servers until whoever started us closes our stdin.
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    Ok(())
}
