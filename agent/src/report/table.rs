//! The report as a terminal table, laid out like the original product's platform matrix (one row
//! per platform, one column per feature), then one line per feature with its evidence, then the
//! servers. Colour (ANSI SGR) only when asked, which the caller does on a TTY only.

use std::fmt::Write as _;

use opconnect_actors::probe::facts::{DavFacts, ImapFacts, Outcome, SieveFacts};
use opconnect_actors::probe::{Feature, Status};

use super::Report;

/// Short column heads for the matrix row (the original's labels, abbreviated to fit 100 columns).
const SHORT: [(&str, &str); 14] = [
    ("mail", "Mail"),
    ("calendar", "Cal"),
    ("contacts", "Cont"),
    ("notes", "Notes"),
    ("tasks", "Tasks"),
    ("groups", "Groups"),
    ("freebusy", "F/B"),
    ("sharing", "Share"),
    ("gal", "GAL"),
    ("public_folders", "Public"),
    ("out_of_office", "OOO"),
    ("copy_folder", "Copy"),
    ("notifications", "Notify"),
    ("meetings", "Meet"),
];

/// ECMA-48 SGR colours for a status.
fn sgr(status: Status) -> &'static str {
    match status {
        Status::Yes => "\x1b[32m",
        Status::Partial => "\x1b[33m",
        Status::No => "\x1b[31m",
        Status::Unknown => "\x1b[35m",
        Status::NotApplicable => "\x1b[2m",
    }
}

/// `text` padded to `width`, coloured by `status` when `colour`.
fn cell(text: &str, width: usize, status: Status, colour: bool) -> String {
    let padded = format!("{text:<width$}");
    if colour {
        format!("{}{padded}\x1b[0m", sgr(status))
    } else {
        padded
    }
}

pub fn render(r: &Report, colour: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "opconnect status report: account {} <{}>, generated {}, {} ms\n",
        r.account,
        r.email,
        r.generated,
        r.elapsed.as_millis()
    );
    if let Some(p) = &r.provider {
        let _ = writeln!(out, "Provider: {}", p["name"].as_str().unwrap_or("?"));
        if let Some(action) = p["action"].as_str() {
            let _ = writeln!(out, "To do: {action}");
        }
        out.push('\n');
    }
    if let Some(action) = r.proxy.as_ref().and_then(|p| p["action"].as_str()) {
        let _ = writeln!(out, "To do: {action}\n");
    }
    // The matrix row, as on the original product's page.
    let first = r.account.len().max("Platform".len()) + 2;
    let _ = write!(out, "{:<first$}", "Platform");
    for (_, head) in SHORT {
        let _ = write!(out, "{:<w$}", head, w = width(head));
    }
    trim_line(&mut out);
    out.push('\n');
    let _ = write!(out, "{:<first$}", r.account);
    for (key, head) in SHORT {
        let status = r
            .features
            .iter()
            .find(|f| f.key == key)
            .map_or(Status::Unknown, |f| f.status);
        out.push_str(&cell(status.as_str(), width(head), status, colour));
    }
    trim_line(&mut out);
    out.push_str("\n\nyes: delivered by opconnect with this server · partial: in part (see detail) · no: not available · unknown: the probe failed\n\n");
    // One line per feature.
    let label_w = r.features.iter().map(|f| f.label.len()).max().unwrap_or(8) + 2;
    let via_w = r
        .features
        .iter()
        .map(|f| f.via.chars().count())
        .max()
        .unwrap_or(8)
        + 2;
    let _ = writeln!(
        out,
        "{:<label_w$}{:<9}{:<via_w$}Detail",
        "Feature", "Status", "Via"
    );
    for f in &r.features {
        feature_line(&mut out, f, label_w, via_w, colour);
    }
    out.push_str("\nServers\n");
    imap(&mut out, &r.probes.imap);
    dav(&mut out, "CalDAV", &r.probes.caldav);
    dav(&mut out, "CardDAV", &r.probes.carddav);
    sieve(&mut out, &r.probes.sieve);
    let untrusted = r.sync.as_ref().and_then(|s| s["untrusted_tokens"].as_array());
    for c in untrusted.into_iter().flatten() {
        let _ = writeln!(
            out,
            "  Sync     {}: synced by listings since {} ({})",
            c["collection"].as_str().unwrap_or("?"),
            c["since"].as_str().unwrap_or("?"),
            c["detail"].as_str().unwrap_or("")
        );
    }
    out
}

/// Drops the padding at the end of the line being written.
fn trim_line(out: &mut String) {
    let kept = out.trim_end_matches(' ').len();
    out.truncate(kept);
}

fn width(head: &str) -> usize {
    head.len().max("partial".len()) + 1
}

fn feature_line(out: &mut String, f: &Feature, label_w: usize, via_w: usize, colour: bool) {
    let _ = writeln!(
        out,
        "{:<label_w$}{}{:<via_w$}{}",
        f.label,
        cell(f.status.as_str(), 9, f.status, colour),
        f.via,
        f.detail
    );
}

/// The common head of a server block; `Some(facts)` when the probe worked.
fn head<'a, T>(out: &mut String, name: &str, outcome: &'a Outcome<T>) -> Option<&'a T> {
    match outcome {
        Outcome::NotConfigured => {
            let _ = writeln!(out, "  {name:<8} not configured");
            None
        }
        Outcome::Failed { error } => {
            let _ = writeln!(out, "  {name:<8} FAILED: {error}");
            None
        }
        Outcome::Ok { facts } => Some(facts),
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "-".into()
    } else {
        items
            .iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn imap(out: &mut String, o: &Outcome<ImapFacts>) {
    let Some(i) = head(out, "IMAP", o) else { return };
    let _ = writeln!(out, "  IMAP     {} ({})", i.url, tls(i.encrypted));
    let _ = writeln!(out, "           capabilities: {}", i.capabilities.join(" "));
    let _ = writeln!(
        out,
        "           namespaces: personal {} · other {} · shared {}",
        list(&i.personal_namespaces),
        list(&i.other_namespaces),
        list(&i.shared_namespaces)
    );
    let _ = writeln!(
        out,
        "           folders: {} ({} shared with you, {} public); Notes: {}",
        i.folders,
        i.other_folders.len(),
        i.shared_folders.len(),
        i.notes_folder.as_deref().unwrap_or("not yet created")
    );
}

fn dav(out: &mut String, name: &str, o: &Outcome<DavFacts>) {
    let Some(d) = head(out, name, o) else { return };
    let _ = writeln!(out, "  {name:<8} {}", d.url);
    let _ = writeln!(
        out,
        "           principal {} · homes {}",
        d.principal,
        d.homes.join(", ")
    );
    for c in &d.collections {
        let mut notes = Vec::new();
        if !c.components.is_empty() {
            notes.push(c.components.join(","));
        }
        if c.read_only {
            notes.push("read-only".into());
        }
        if c.directory {
            notes.push("directory".into());
        }
        let _ = writeln!(
            out,
            "           {} {} [{}] {}",
            c.kind,
            c.href,
            notes.join(", "),
            c.name.as_deref().unwrap_or("")
        );
    }
    let yes_no = |b: Option<bool>| match b {
        Some(true) => "yes",
        Some(false) => "no",
        None => "?",
    };
    let _ = writeln!(
        out,
        "           schedule outbox: {} · calendar-proxy: {} · directory gateway: {} · sync-collection: {}",
        d.schedule_outbox.as_deref().unwrap_or("none"),
        if d.proxy_supported { "yes" } else { "no" },
        d.directory_gateway.as_deref().unwrap_or("none"),
        yes_no(d.sync_collection)
    );
}

fn sieve(out: &mut String, o: &Outcome<SieveFacts>) {
    let Some(s) = head(out, "Sieve", o) else { return };
    let _ = writeln!(
        out,
        "  Sieve    {} ({}) {}",
        s.url,
        tls(s.encrypted),
        s.implementation.as_deref().unwrap_or("")
    );
    let _ = writeln!(out, "           SIEVE extensions: {}", s.extensions.join(" "));
}

fn tls(encrypted: bool) -> &'static str {
    if encrypted { "TLS" } else { "plaintext, loopback" }
}
