//! Private Dovecot + Radicale for manual runs and `scripts/demo`: starts both, writes an agent
//! config for alice to the path given as the first argument, prints `READY <path>`, and keeps the
//! servers until its standard input closes (then they are killed with their process groups).
//!
//! ```text
//!   cargo run -p opconnect-tests --example servers -- /tmp/opconnect-demo.toml [--tls]
//! ```

use std::path::PathBuf;

use anyhow::{Context, Result};
use opconnect_tests::DavServer;
use opconnect_tests::config::render_config;
use opconnect_tests::{AccountSpec, AgentSettings, Dovecot, DovecotOptions, Radicale};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let config: PathBuf = args.next().context("usage: servers CONFIG_PATH [--tls]")?.into();
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
    seed(&dovecot, &radicale)?;
    std::fs::write(&config, render_config(&AgentSettings::default(), &[account]))?;
    eprintln!(
        "dovecot {} (log {})",
        dovecot.imap_url(),
        dovecot.log_path().display()
    );
    eprintln!(
        "radicale {} (log {})",
        radicale.url(),
        radicale.log_path().display()
    );
    println!("READY {} {}", config.display(), dovecot.imap_port());
    // Hold the servers until whoever started us closes our stdin. Meanwhile a line
    // `deliver SUBJECT` appends a message to alice's INBOX, as another mail client would.
    for line in std::io::stdin().lines() {
        let line = line?;
        if let Some(subject) = line.strip_prefix("deliver ") {
            let raw = format!(
                "From: Bob <bob@localhost>\r\nTo: Alice <alice@localhost>\r\nSubject: {subject}\r\n\
                 Message-ID: <live-{}@localhost>\r\n\r\nSent while the demo runs.\r\n",
                std::process::id()
            );
            let uid = dovecot.append("alice", "INBOX", raw.as_bytes())?;
            eprintln!("delivered \"{subject}\" as UID {uid}");
        }
    }
    Ok(())
}

/// Gives alice something to look at: a few messages in INBOX and a calendar with two events.
fn seed(dovecot: &Dovecot, radicale: &Radicale) -> Result<()> {
    let subjects = ["Welcome to opconnect", "Quarterly numbers", "Lunch on Friday?"];
    for (i, subject) in subjects.iter().enumerate() {
        let raw = format!(
            "From: Bob <bob@localhost>\r\nTo: Alice <alice@localhost>\r\nSubject: {subject}\r\n\
             Date: Mon, 23 Nov 2026 09:0{i}:00 +0000\r\nMessage-ID: <demo-{i}@localhost>\r\n\r\n\
             Demo message {i}.\r\n"
        );
        dovecot.append("alice", "INBOX", raw.as_bytes())?;
    }
    let calendar = radicale.create_calendar("alice", "work", "Work")?;
    for (uid, summary, start) in [
        ("standup", "Stand-up", "20261124T090000Z"),
        ("review", "Design review", "20261125T140000Z"),
    ] {
        let ics = format!(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//opconnect//demo//EN\r\nBEGIN:VEVENT\r\n\
             UID:{uid}\r\nDTSTAMP:20261123T000000Z\r\nDTSTART:{start}\r\nDURATION:PT30M\r\n\
             SUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
        );
        radicale.put_event("alice", &calendar, uid, &ics)?;
    }
    Ok(())
}
