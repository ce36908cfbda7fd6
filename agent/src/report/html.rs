//! The report as one self-contained, printable HTML page: inline CSS, no scripts, no external
//! assets, every server-supplied text escaped. It is meant to be attached to a support request,
//! so it holds what the probes found and nothing else (no password, no user name in URLs).

use std::fmt::Write as _;

use opconnect_actors::probe::Status;
use opconnect_actors::probe::facts::{DavFacts, ImapFacts, Outcome, SieveFacts};

use super::Report;

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.5em}\
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #bbb;padding:.3em .6em;text-align:left;vertical-align:top}\
th{background:#eee}.yes{background:#d8f0d8}.partial{background:#fbf0c8}.no{background:#f5d5d5}\
.unknown{background:#e6dcf0}.na{background:#eee}code{font-size:.9em}\
.matrix{width:100%;font-size:.8em}.matrix th,.matrix td{padding:.25em .35em}\
@media print{body{margin:0}th{background:#ddd!important}}";

/// HTML-escapes `s` for text and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn class(s: Status) -> &'static str {
    match s {
        Status::Yes => "yes",
        Status::Partial => "partial",
        Status::No => "no",
        Status::Unknown => "unknown",
        Status::NotApplicable => "na",
    }
}

pub fn render(reports: &[Report]) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>opconnect status report</title><style>{STYLE}</style></head><body>\n\
         <h1>opconnect status report</h1>\n"
    );
    // The platform matrix: one row per account, one column per feature.
    h.push_str("<table class=\"matrix\"><tr><th>Account</th>");
    if let Some(first) = reports.first() {
        for f in &first.features {
            let _ = write!(h, "<th>{}</th>", escape(f.label));
        }
    }
    h.push_str("</tr>\n");
    for r in reports {
        let _ = write!(h, "<tr><th>{}</th>", escape(&r.account));
        for f in &r.features {
            let _ = write!(h, "<td class=\"{}\">{}</td>", class(f.status), f.status.as_str());
        }
        h.push_str("</tr>\n");
    }
    h.push_str(
        "</table>\n<p>yes: delivered by opconnect with this server · partial: in part (see detail) · \
         no: not available · unknown: the probe failed</p>\n",
    );
    for r in reports {
        account(&mut h, r);
    }
    h.push_str("</body></html>\n");
    h
}

fn account(h: &mut String, r: &Report) {
    let _ = write!(
        h,
        "<h2>{} &lt;{}&gt;</h2>\n<p>Generated {} in {} ms.</p>\n\
         <table><tr><th>Feature</th><th>Status</th><th>Via</th><th>Detail</th></tr>\n",
        escape(&r.account),
        escape(&r.email),
        escape(&r.generated),
        r.elapsed.as_millis()
    );
    for f in &r.features {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td></tr>",
            escape(f.label),
            class(f.status),
            f.status.as_str(),
            escape(&f.via),
            escape(&f.detail)
        );
    }
    h.push_str("</table>\n<table><tr><th>Server</th><th>What the probe found</th></tr>\n");
    imap(h, &r.probes.imap);
    dav(h, "CalDAV", &r.probes.caldav);
    dav(h, "CardDAV", &r.probes.carddav);
    sieve(h, &r.probes.sieve);
    h.push_str("</table>\n");
}

/// A server row; `Some(facts)` when the probe worked (the caller writes the cell).
fn row<'a, T>(h: &mut String, name: &str, o: &'a Outcome<T>) -> Option<&'a T> {
    let _ = write!(h, "<tr><th>{name}</th><td>");
    match o {
        Outcome::NotConfigured => h.push_str("not configured</td></tr>\n"),
        Outcome::Failed { error } => {
            let _ = writeln!(
                h,
                "<span class=\"unknown\">failed</span>: {}</td></tr>",
                escape(error)
            );
        }
        Outcome::Ok { facts } => return Some(facts),
    }
    None
}

fn join(items: &[String]) -> String {
    if items.is_empty() {
        "-".into()
    } else {
        items
            .iter()
            .map(|s| format!("<code>{}</code>", escape(s)))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn imap(h: &mut String, o: &Outcome<ImapFacts>) {
    let Some(i) = row(h, "IMAP", o) else { return };
    let _ = writeln!(
        h,
        "{} ({})<br>capabilities: {}<br>namespaces: personal {} · other {} · shared {}<br>\
         folders: {} ({} shared with you, {} public); Notes: {}</td></tr>",
        escape(&i.url),
        if i.encrypted { "TLS" } else { "plaintext, loopback" },
        join(&i.capabilities),
        join(&i.personal_namespaces),
        join(&i.other_namespaces),
        join(&i.shared_namespaces),
        i.folders,
        i.other_folders.len(),
        i.shared_folders.len(),
        escape(i.notes_folder.as_deref().unwrap_or("not yet created"))
    );
}

fn dav(h: &mut String, name: &str, o: &Outcome<DavFacts>) {
    let Some(d) = row(h, name, o) else { return };
    let _ = write!(
        h,
        "{}<br>principal <code>{}</code> · homes {}<ul>",
        escape(&d.url),
        escape(&d.principal),
        join(&d.homes)
    );
    for c in &d.collections {
        let _ = write!(
            h,
            "<li>{} <code>{}</code> {} {}{}{}</li>",
            escape(&c.kind),
            escape(&c.href),
            escape(c.name.as_deref().unwrap_or("")),
            escape(&c.components.join(",")),
            if c.read_only { " read-only" } else { "" },
            if c.directory { " directory" } else { "" }
        );
    }
    let _ = writeln!(
        h,
        "</ul>schedule outbox: {} · calendar-proxy: {} · directory gateway: {} · sync-collection: {}</td></tr>",
        escape(d.schedule_outbox.as_deref().unwrap_or("none")),
        if d.proxy_supported { "yes" } else { "no" },
        escape(d.directory_gateway.as_deref().unwrap_or("none")),
        match d.sync_collection {
            Some(true) => "yes",
            Some(false) => "no",
            None => "?",
        }
    );
}

fn sieve(h: &mut String, o: &Outcome<SieveFacts>) {
    let Some(s) = row(h, "ManageSieve", o) else { return };
    let _ = writeln!(
        h,
        "{} ({}) {}<br>SIEVE extensions: {}</td></tr>",
        escape(&s.url),
        if s.encrypted { "TLS" } else { "plaintext, loopback" },
        escape(s.implementation.as_deref().unwrap_or("")),
        join(&s.extensions)
    );
}
