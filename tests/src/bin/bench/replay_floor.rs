//! The floor of benchmark 5: the same batch of writes carried out by a plain script, with no
//! agent and no journal, through the same counting proxies on fresh servers seeded the same way.
//!
//! ```text
//!   Dovecot ◀─ proxy (IMAP) ─┐  one IMAP session: LOGIN, SELECT INBOX, then per operation
//!                            │  UID STORE | UID MOVE | UID STORE \Deleted + UID EXPUNGE | APPEND
//!   Radicale ◀─ proxy (HTTP) ─┴  one HTTP request per write: PUT If-None-Match: * / If-Match,
//!                               DELETE If-Match (one connection per request, as tests/src/http.rs)
//! ```
//! Sequential, one operation at a time, mail first: what a user's script would do. The etags the
//! script needs are read before the clock starts, straight from the server (not counted).

use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use opconnect_tests::http::HttpRequest;
use opconnect_tests::{DavServer, Dovecot, ImapProbe, Radicale, password_of};

use crate::proxy::{CountingProxy, Framing};
use crate::replay::Kind;
use crate::seed;

/// What the script did: wall time and requests through the proxies.
pub struct Floor {
    pub seconds: f64,
    pub requests: u64,
}

/// An item's href, etag and body, read before the clock starts.
struct Item {
    href: String,
    etag: String,
    body: String,
}

fn items(radicale: &Radicale, collection: &str) -> Result<Vec<Item>> {
    let mut out = Vec::new();
    for href in radicale.members("alice", collection)? {
        let r = radicale.get("alice", &href)?;
        ensure!(r.status == 200, "GET {href}: {}", r.status);
        out.push(Item {
            etag: r.header("ETag").context("an ETag")?.to_owned(),
            body: r.text(),
            href,
        });
    }
    Ok(out)
}

/// Runs the script for `counts` (the same mix as the agent's run) on fresh servers.
pub fn run(counts: &[(Kind, usize)]) -> Result<Floor> {
    let wanted = |k: Kind| counts.iter().find(|(c, _)| *c == k).map_or(0, |(_, c)| *c);
    let dovecot = Dovecot::start()?;
    let radicale = Radicale::start()?;
    let inbox = wanted(Kind::Flag) + wanted(Kind::Move) + wanted(Kind::DeleteMail) + 50;
    let events = wanted(Kind::UpdateEvent) + wanted(Kind::DeleteEvent) + 50;
    let contacts = wanted(Kind::UpdateContact) + wanted(Kind::DeleteContact) + 50;
    seed::seed_mail(&dovecot, "alice", &["INBOX".to_string()], inbox)?;
    let (calendar, book, _) = seed::seed_dav(&radicale, "alice", events, contacts)?;
    let mut direct = ImapProbe::connect(dovecot.imap_port())?;
    direct.login("alice", password_of("alice"))?;
    direct.select("INBOX")?;
    let uids = direct.uid_search("ALL")?;
    for folder in ["Archive", "Sent"] {
        let _ = direct.create(folder);
    }
    let event_items = items(&radicale, &calendar)?;
    let contact_items = items(&radicale, &book)?;
    let imap = CountingProxy::start(dovecot.imap_port(), Framing::Imap)?;
    let dav = CountingProxy::start(radicale.port(), Framing::Http)?;
    let password = password_of("alice");

    let t0 = Instant::now();
    let mut session = ImapProbe::connect(imap.port())?;
    session.login("alice", password)?;
    session.select("INBOX")?;
    let mut uid = uids.iter();
    let mut event = event_items.iter();
    let mut contact = contact_items.iter();
    let http = |req: HttpRequest<'_>, ok: &[u16]| -> Result<()> {
        let r = req.auth("alice", password).send(dav.port())?;
        if !ok.contains(&r.status) {
            bail!("{} answered {}", "the floor's request", r.status);
        }
        Ok(())
    };
    const ICS: &str = "text/calendar; charset=utf-8";
    const VCF: &str = "text/vcard; charset=utf-8";
    for (kind, count) in counts {
        for k in 0..*count {
            match kind {
                Kind::Flag => {
                    let u = uid.next().context("uids")?;
                    session.uid_store(&u.to_string(), "+FLAGS.SILENT (\\Flagged $Bench)")?;
                }
                Kind::Move => {
                    let u = uid.next().context("uids")?;
                    session.command(&format!("UID MOVE {u} Archive"))?;
                }
                Kind::DeleteMail => {
                    let u = uid.next().context("uids")?;
                    session.uid_store(&u.to_string(), "+FLAGS.SILENT (\\Deleted)")?;
                    session.command(&format!("UID EXPUNGE {u}"))?;
                }
                Kind::Append => {
                    let raw = format!(
                        "From: alice@localhost\r\nTo: bob@localhost\r\nSubject: offline {k}\r\n\
                         Message-ID: <floor-{k}-{}@localhost>\r\n\r\nwritten offline\r\n",
                        std::process::id()
                    );
                    session.append("Sent", &["\\Seen"], raw.as_bytes())?;
                }
                Kind::CreateEvent => {
                    let (uid, ics) = seed::event(900_000 + k);
                    let href = format!("{calendar}{uid}.ics");
                    let req = HttpRequest::new("PUT", &href)
                        .header("Content-Type", ICS)
                        .header("If-None-Match", "*")
                        .body(ics.as_bytes());
                    http(req, &[201, 204])?;
                }
                Kind::UpdateEvent | Kind::UpdateContact => {
                    let (item, ty) = if *kind == Kind::UpdateEvent {
                        (event.next().context("events")?, ICS)
                    } else {
                        (contact.next().context("contacts")?, VCF)
                    };
                    let body = item.body.replacen("SUMMARY:", "SUMMARY:moved ", 1).replacen(
                        "NOTE:",
                        "NOTE:updated ",
                        1,
                    );
                    let req = HttpRequest::new("PUT", &item.href)
                        .header("Content-Type", ty)
                        .header("If-Match", &item.etag)
                        .body(body.as_bytes());
                    http(req, &[200, 201, 204])?;
                }
                Kind::DeleteEvent | Kind::DeleteContact => {
                    let item = if *kind == Kind::DeleteEvent {
                        event.next().context("events")?
                    } else {
                        contact.next().context("contacts")?
                    };
                    let req = HttpRequest::new("DELETE", &item.href).header("If-Match", &item.etag);
                    http(req, &[200, 204])?;
                }
                Kind::CreateContact => {
                    let (uid, vcf) = seed::contact(900_000 + k);
                    let href = format!("{book}{uid}.vcf");
                    let req = HttpRequest::new("PUT", &href)
                        .header("Content-Type", VCF)
                        .header("If-None-Match", "*")
                        .body(vcf.as_bytes());
                    http(req, &[201, 204])?;
                }
            }
        }
    }
    session.logout()?;
    let seconds = t0.elapsed().as_secs_f64();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let requests = imap.take().requests + dav.take().requests;
    Ok(Floor { seconds, requests })
}
