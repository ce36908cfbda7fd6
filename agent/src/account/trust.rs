//! Certificates `account add` could not verify: shown (subject, issuer, validity, SHA-256
//! fingerprint) and trusted only when the user says so, by answering the question or with
//! `--trust-fingerprint` for scripts. What was trusted goes to the config as `tls_pins`, per host.
//!
//! ```text
//!   discovery ─► Witness: certificates refused / let through by a --trust-fingerprint pin
//!     refused ─► shown ─► terminal: "Trust it? [y/N]" ─ y ─► pinned, discovery again
//!                      └► script: exit 1 naming --trust-fingerprint FP (nothing written)
//! ```

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use opconnect_actors::net::certinfo;
use opconnect_actors::net::tls::{Fingerprint, Presented, Witness};

/// Prints what a person checks before trusting `p`.
pub fn show(p: &Presented) {
    println!("The certificate of {} is not trusted:", p.host);
    match certinfo::read(&p.der) {
        Some(info) => {
            println!("  subject   {}", info.subject);
            println!("  issuer    {}", info.issuer);
            println!("  valid     {} to {}", info.not_before, info.not_after);
        }
        None => println!("  (its subject and issuer could not be read)"),
    }
    println!("  SHA-256   {}", p.fingerprint);
    if let Some(why) = &p.refused {
        println!("  refused   {why}");
    }
}

/// The distinct refused certificates of a discovery, first seen first.
pub fn refused(witness: &Witness) -> Vec<Presented> {
    let mut out: Vec<Presented> = Vec::new();
    for p in witness.seen() {
        if p.refused.is_some()
            && !out
                .iter()
                .any(|o| o.fingerprint == p.fingerprint && o.host == p.host)
        {
            out.push(p);
        }
    }
    out
}

/// Asks on the terminal whether to trust `p`; anything but yes is no.
pub fn ask(p: &Presented) -> bool {
    print!(
        "Trust this certificate for {} (check the fingerprint with the server's administrator)? [y/N] ",
        p.host
    );
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// The pins to write: per host, the fingerprints a pin let through during discovery.
pub fn used(witness: &Witness) -> BTreeMap<String, Vec<Fingerprint>> {
    let mut out: BTreeMap<String, Vec<Fingerprint>> = BTreeMap::new();
    for p in witness.seen().into_iter().filter(|p| p.refused.is_none()) {
        let list = out.entry(p.host).or_default();
        if !list.contains(&p.fingerprint) {
            list.push(p.fingerprint);
        }
    }
    out
}
