//! Benchmarks 8d and 5b (issue 22): the replay of benchmark 5 where the 6-in-flight window and
//! the IMAP batches should count, beside the plain script in its serial and pipelined forms
//! (replay_script.rs), each pass on fresh servers, in the same run.
//!
//! ```text
//!   8d. over the line: Dovecot (IMAPS) ◀─ link proxy (delay + rate) ─┐ opconnect: pause ─ n writes
//!                      Radicale (TLS)  ◀─ link proxy (delay + rate) ─┤ ─ resume ═▶ pending 0
//!                                                                      ├ script, serial (window 1)
//!                                                                      ├ script, pipelined (6 + batches)
//!                                                                      ├ vdirsyncer: DAV half only
//!                                                                      └ mbsync: IMAP half only
//!        counted: DAV requests from Radicale's log, IMAP commands from Dovecot's rawlog (TLS hides
//!        both from the proxy); bytes and connections at the proxy
//!   5b. Cyrus on loopback (IMAP + CalDAV/CardDAV, one server that writes in parallel) ◀─ counting
//!        proxies ◀─ the same three passes
//! ```
//! No switch sets the agent's window (a user-facing option for a bench is not wanted), so the
//! script's two forms stand for window 1 and window 6.

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::json;

use opconnect_tests::config::render_config;
use opconnect_tests::{
    AccountSpec, Cyrus, DavServer, Dovecot, DovecotOptions, ImapProbe, Radicale, RadicaleOptions, password_of,
};

use crate::driver::Driver;
use crate::link::ServerSide;
use crate::proxy::{CountingProxy, Framing, Link};
use crate::rawlog::Rawlog;
use crate::replay::{Kind, count_of, counts, failures, journal, load_average, pending_ops};
use crate::replay_mbsync;
use crate::replay_script::{self, Form, Target, read_items};
use crate::replay_vdirsyncer;
use crate::results::Results;
use crate::{Config, production_settings, seed};

pub const LINE: &str = "8d. replay over a realistic link";
pub const CYRUS: &str = "5b. replay on Cyrus (loopback)";

const SERVICES: [(&str, &str); 3] = [("alice", "imap"), ("alice", "caldav"), ("alice", "carddav")];

/// Who does the writes in one pass.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Who {
    Opconnect,
    Script(Form),
    /// The DAV half only (replay_vdirsyncer.rs).
    Vdirsyncer,
    /// The IMAP half only (replay_mbsync.rs).
    Mbsync,
}

impl Who {
    fn label(self) -> &'static str {
        match self {
            Who::Opconnect => "opconnect",
            Who::Script(f) => f.label(),
            Who::Vdirsyncer => "vdirsyncer (DAV half only)",
            Who::Mbsync => "mbsync (IMAP half only)",
        }
    }
}

const ALL: [Who; 5] = [
    Who::Opconnect,
    Who::Script(Form::Serial),
    Who::Script(Form::Pipelined),
    Who::Vdirsyncer,
    Who::Mbsync,
];

/// A pass's time, and the time of its DAV half where it is known apart.
#[derive(Debug, Clone, Copy, Default)]
struct Took {
    seconds: f64,
    dav_seconds: f64,
}

/// Operations per pass: smaller than benchmark 5's 1,000, each serial one costing a round trip.
fn ops(cfg: &Config) -> usize {
    if cfg.quick { 60 } else { 300 }
}

pub fn run(cfg: &Config, results: &mut Results) -> Result<()> {
    let n = ops(cfg);
    let link = Link::new(cfg.link_rtt_ms, cfg.link_mbit);
    let mix = counts(n);
    results.fact(
        "link_replay",
        json!({"line": link.describe(), "tls": true, "operations": n,
               "mix": mix.iter().map(|(k, c)| format!("{k:?} {c}")).collect::<Vec<_>>().join(", ")}),
    );
    for (section, on_line) in [(LINE, true), (CYRUS, false)] {
        for run in 0..cfg.runs {
            let mut took = [Took::default(); 5];
            for k in 0..ALL.len() {
                let i = (k + run) % ALL.len();
                let stage = if on_line {
                    line_stage(&mix, link)?
                } else {
                    cyrus_stage(&mix)?
                };
                let done = pass(&stage, ALL[i], &mix, section, results);
                took[i] = match done {
                    // A peer failing is a result to report, not a reason to stop the section.
                    Err(e) if matches!(ALL[i], Who::Vdirsyncer | Who::Mbsync) => {
                        let peer = ALL[i].label();
                        eprintln!("    {section}: {peer}: {e:#}");
                        results.fact(&format!("{section} {peer} failed"), json!(format!("{e:#}")));
                        Took {
                            seconds: f64::NAN,
                            dav_seconds: f64::NAN,
                        }
                    }
                    other => other.with_context(|| format!("{section}: {}", ALL[i].label()))?,
                };
            }
            let [ours, serial, pipelined, vdir, mbsync] = took.map(|t| t.seconds);
            let (serial_dav, pipelined_dav) = (took[1].dav_seconds, took[2].dav_seconds);
            // The serial script writes IMAP first, then DAV: its IMAP half is the rest.
            results.record(
                section,
                "mbsync ÷ serial script's IMAP half",
                "×",
                mbsync / (serial - serial_dav),
            );
            results.record(
                section,
                "vdirsyncer ÷ serial script's DAV half",
                "×",
                vdir / serial_dav,
            );
            results.record(
                section,
                "vdirsyncer ÷ pipelined script's DAV half",
                "×",
                vdir / pipelined_dav,
            );
            results.record(section, "opconnect time ÷ serial script's", "×", ours / serial);
            results.record(
                section,
                "opconnect time ÷ pipelined script's",
                "×",
                ours / pipelined,
            );
            results.record(
                section,
                "serial script ÷ pipelined script",
                "×",
                serial / pipelined,
            );
            results.record(section, "load average (1 min) at the end", "", load_average());
            eprintln!(
                "==> {section} run {}/{}: opconnect {:.0} ops/s, script serial {:.0}, pipelined {:.0}; vdirsyncer {vdir:.1} s, mbsync {mbsync:.1} s (load {:.1})",
                run + 1,
                cfg.runs,
                n as f64 / ours,
                n as f64 / serial,
                n as f64 / pipelined,
                load_average()
            );
        }
    }
    Ok(())
}

/// Messages, events and contacts to seed for the mix (what it consumes, and 50 more).
fn seeded(mix: &[(Kind, usize)]) -> (usize, usize, usize) {
    let w = |k: Kind| mix.iter().find(|(c, _)| *c == k).map_or(0, |(_, c)| *c);
    (
        w(Kind::Flag) + w(Kind::Move) + w(Kind::DeleteMail) + 50,
        w(Kind::UpdateEvent) + w(Kind::DeleteEvent) + 50,
        w(Kind::UpdateContact) + w(Kind::DeleteContact) + 50,
    )
}

/// The servers of one pass, the proxies in front of them, and what each writer needs.
struct Stage {
    servers: Servers,
    imap: CountingProxy,
    dav: CountingProxy,
    account: AccountSpec,
    script: Target,
}

enum Servers {
    Line {
        _dovecot: Dovecot,
        radicale: Radicale,
        rawlog: Rawlog,
    },
    Cyrus {
        _cyrus: Cyrus,
    },
}

/// What went to the servers since [`Stage::mark`].
#[derive(Debug, Default)]
struct Sent {
    imap: u64,
    dav: u64,
    /// PUT and DELETE among `dav`.
    dav_writes: u64,
    connections: u64,
    bytes: u64,
    methods: String,
}

impl Stage {
    /// Where counting starts (Radicale's log length; 0 elsewhere).
    fn mark(&self) -> usize {
        self.imap.take();
        self.dav.take();
        match &self.servers {
            Servers::Line { radicale, rawlog, .. } => {
                rawlog.take();
                radicale.log().len()
            }
            Servers::Cyrus { .. } => 0,
        }
    }

    fn sent_since(&self, mark: usize) -> Sent {
        std::thread::sleep(Duration::from_millis(400));
        let (i, h) = (self.imap.take(), self.dav.take());
        let mut sent = Sent {
            connections: i.connections + h.connections,
            bytes: i.bytes() + h.bytes(),
            ..Sent::default()
        };
        match &self.servers {
            Servers::Line { radicale, rawlog, .. } => {
                let s = ServerSide::since(radicale, mark);
                let imap = rawlog.take();
                sent.imap = imap.values().sum();
                sent.dav = s.requests;
                sent.dav_writes = writes(&s.methods);
                sent.methods = format!("IMAP: {}; DAV: {}", line(&imap), s.methods_line());
            }
            Servers::Cyrus { .. } => {
                sent.imap = i.requests;
                sent.dav = h.requests;
                sent.dav_writes = writes(&h.methods);
                sent.methods = format!("IMAP: {}; DAV: {}", i.methods_line(), h.methods_line());
            }
        }
        sent
    }
}

fn writes(methods: &std::collections::BTreeMap<String, u64>) -> u64 {
    ["PUT", "DELETE"].iter().filter_map(|m| methods.get(*m)).sum()
}

fn line(m: &HashMap<String, u64>) -> String {
    let mut v: Vec<_> = m.iter().map(|(k, n)| format!("{k} {n}")).collect();
    v.sort();
    v.join(", ")
}

/// Dovecot (IMAPS) and Radicale (TLS, with Dovecot's certificate so one CA serves the account)
/// behind two link proxies.
fn line_stage(mix: &[(Kind, usize)], link: Link) -> Result<Stage> {
    let (inbox, events, contacts) = seeded(mix);
    let rawlog = Rawlog::new()?;
    let dovecot = Dovecot::start_with(DovecotOptions {
        tls: true,
        extra_config: format!("rawlog_dir = {}\n", rawlog.dir.path().display()),
        ..DovecotOptions::default()
    })?;
    seed::seed_mail(&dovecot, "alice", &["INBOX".to_string()], inbox)?;
    {
        // Seeding writes over plain HTTP once; later runs copy the cached files.
        let plain = Radicale::start()?;
        seed::seed_dav(&plain, "alice", events, contacts)?;
    }
    let mut radicale = Radicale::start_with(RadicaleOptions {
        tls: true,
        ..RadicaleOptions::default()
    })?;
    let ca = dovecot.ca_pem();
    let certs = ca.parent().context("Dovecot's tls directory")?;
    for file in ["server.pem", "server.key"] {
        fs::copy(certs.join(file), radicale.dir().join("tls").join(file))?;
    }
    radicale.start_again()?;
    let (calendar, book, _) = seed::seed_dav(&radicale, "alice", events, contacts)?;
    let direct = format!("https://127.0.0.1:{}", radicale.port());
    let root = radicale.dir().join("collections/collection-root");
    let event_items = read_items(&direct, Some(&ca), &files_in(&root, &calendar)?)?;
    let contact_items = read_items(&direct, Some(&ca), &files_in(&root, &book)?)?;
    let uids = {
        let mut p = ImapProbe::connect(dovecot.imap_port())?;
        p.login("alice", password_of("alice"))?;
        p.select("INBOX")?;
        p.uid_search("ALL")?
    };
    let imap = CountingProxy::start_with(dovecot.imaps_port(), Framing::Opaque, link)?;
    let dav = CountingProxy::start_with(radicale.port(), Framing::Opaque, link)?;
    let mut account = AccountSpec::for_user("alice");
    account.imap = Some(format!("imaps://127.0.0.1:{}", imap.port()));
    account.caldav = Some(dav.https_url());
    account.carddav = Some(dav.https_url());
    account.tls_ca = Some(ca.clone());
    let script = Target {
        imap_port: imap.port(),
        dav_base: format!("https://127.0.0.1:{}", dav.port()),
        ca: Some(ca),
        calendar,
        book,
        uids,
        events: event_items,
        contacts: contact_items,
    };
    Ok(Stage {
        servers: Servers::Line {
            _dovecot: dovecot,
            radicale,
            rawlog,
        },
        imap,
        dav,
        account,
        script,
    })
}

/// The hrefs of a Radicale collection, from its storage folder (`collection`: `/alice/calendar/`).
fn files_in(root: &Path, collection: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for e in fs::read_dir(root.join(collection.trim_matches('/')))? {
        let name = e?.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') {
            out.push(format!("{collection}{name}"));
        }
    }
    out.sort();
    Ok(out)
}

/// Cyrus (IMAP, CalDAV, CardDAV) on loopback behind counting proxies.
fn cyrus_stage(mix: &[(Kind, usize)]) -> Result<Stage> {
    let (inbox, events, contacts) = seeded(mix);
    let cyrus = Cyrus::start()?;
    let mut p = cyrus.probe("alice")?;
    for folder in ["Archive", "Sent"] {
        let _ = p.create(folder);
    }
    for i in 0..inbox {
        p.append("INBOX", &[], &seed::message("INBOX", i).0)?;
    }
    p.select("INBOX")?;
    let uids = p.uid_search("ALL")?;
    let (calendar, book) = (
        cyrus.default_calendar("alice"),
        cyrus.default_addressbook("alice"),
    );
    for i in 0..events {
        let (uid, ics) = seed::event(i);
        cyrus.put_event("alice", &calendar, &uid, &ics)?;
    }
    for i in 0..contacts {
        let (uid, vcf) = seed::contact(i);
        cyrus.put_contact("alice", &book, &uid, &vcf)?;
    }
    let direct = format!("http://127.0.0.1:{}", cyrus.http_port());
    let event_items = read_items(&direct, None, &cyrus.members("alice", &calendar)?)?;
    let contact_items = read_items(&direct, None, &cyrus.members("alice", &book)?)?;
    let imap = CountingProxy::start(cyrus.imap_port(), Framing::Imap)?;
    let dav = CountingProxy::start(cyrus.http_port(), Framing::Http)?;
    let mut account = AccountSpec::for_user("alice");
    account.imap = Some(imap.imap_url());
    account.caldav = Some(dav.http_url());
    account.carddav = Some(dav.http_url());
    let script = Target {
        imap_port: imap.port(),
        dav_base: format!("http://127.0.0.1:{}", dav.port()),
        ca: None,
        calendar,
        book,
        uids,
        events: event_items,
        contacts: contact_items,
    };
    Ok(Stage {
        servers: Servers::Cyrus { _cyrus: cyrus },
        imap,
        dav,
        account,
        script,
    })
}

/// One pass by `who` on `stage`; records its figures and returns its time in s.
fn pass(
    stage: &Stage,
    who: Who,
    mix: &[(Kind, usize)],
    section: &str,
    results: &mut Results,
) -> Result<Took> {
    let mut n: usize = mix.iter().map(|(_, c)| c).sum();
    let mut dav_seconds = f64::NAN;
    let (seconds, sent) = match who {
        Who::Opconnect => opconnect(stage, n, section, results)?,
        Who::Vdirsyncer => {
            let url = stage.account.caldav.clone().context("the stage's DAV URL")?;
            let mut mark = 0;
            let script = &stage.script;
            let run = replay_vdirsyncer::run(
                &url,
                script.ca.as_deref(),
                &script.calendar,
                &script.book,
                mix,
                || mark = stage.mark(),
            )?;
            let sent = stage.sent_since(mark);
            ensure!(
                sent.dav_writes == run.writes as u64,
                "vdirsyncer made {} writes locally, the server saw {} ({})",
                run.writes,
                sent.dav_writes,
                sent.methods
            );
            n = run.writes;
            (run.seconds, sent)
        }
        Who::Mbsync => {
            let mut mark = 0;
            let script = &stage.script;
            let run = replay_mbsync::run(script.imap_port, script.ca.as_deref(), mix, || {
                mark = stage.mark()
            })?;
            let sent = stage.sent_since(mark);
            ensure!(
                sent.dav == 0 && sent.imap >= 1,
                "mbsync's push: {} IMAP commands, {} DAV requests ({})",
                sent.imap,
                sent.dav,
                sent.methods
            );
            check_mail_pushed(stage, mix)?;
            n = run.writes;
            (run.seconds, sent)
        }
        Who::Script(form) => {
            let mark = stage.mark();
            let run = replay_script::run(&stage.script, mix, form)?;
            let sent = stage.sent_since(mark);
            ensure!(
                sent.dav == run.dav_requests,
                "the script sent {} DAV writes, the server saw {}",
                run.dav_requests,
                sent.dav
            );
            // Dovecot's rawlog starts after LOGIN; the counting proxy sees it.
            ensure!(
                sent.imap <= run.imap_commands && sent.imap + 1 >= run.imap_commands,
                "the script sent {} IMAP commands, the count says {} ({})",
                run.imap_commands,
                sent.imap,
                sent.methods
            );
            dav_seconds = run.dav_seconds;
            (run.seconds, sent)
        }
    };
    let label = who.label();
    results.record(
        section,
        &format!("{label}: operations per second"),
        "ops/s",
        n as f64 / seconds,
    );
    results.record(section, &format!("{label}: wall time"), "s", seconds);
    results.record(
        section,
        &format!("{label}: requests per operation"),
        "",
        (sent.imap + sent.dav) as f64 / n as f64,
    );
    results.record(section, &format!("{label}: IMAP commands"), "", sent.imap as f64);
    results.record(section, &format!("{label}: DAV requests"), "", sent.dav as f64);
    results.record(
        section,
        &format!("{label}: connections"),
        "",
        sent.connections as f64,
    );
    results.record(
        section,
        &format!("{label}: KB on the wire"),
        "KB",
        sent.bytes as f64 / 1024.0,
    );
    results.fact(&format!("{section} {label} requests"), json!(sent.methods));
    Ok(Took { seconds, dav_seconds })
}

/// The server holds what the mail half of `mix` made: the moved and deleted messages gone from
/// INBOX, the moved ones in Archive, the appended ones in Sent, and `\Flagged` on the flagged.
fn check_mail_pushed(stage: &Stage, mix: &[(Kind, usize)]) -> Result<()> {
    let wanted = |kind: Kind| count_of(mix, kind);
    let t = &stage.script;
    let mut p = match &t.ca {
        Some(ca) => ImapProbe::connect_tls(t.imap_port, ca)?,
        None => ImapProbe::connect(t.imap_port)?,
    };
    p.login("alice", password_of("alice"))?;
    let gone = wanted(Kind::Move) + wanted(Kind::DeleteMail);
    p.select("INBOX")?;
    let inbox = p.uid_search("ALL")?.len();
    let flagged = p.uid_search("FLAGGED")?.len();
    p.select("Archive")?;
    let archive = p.uid_search("ALL")?.len();
    p.select("Sent")?;
    let sent = p.uid_search("ALL")?.len();
    ensure!(
        inbox == t.uids.len() - gone
            && flagged >= wanted(Kind::Flag)
            && archive >= wanted(Kind::Move)
            && sent >= wanted(Kind::Append),
        "after mbsync's push the server has INBOX {inbox} ({flagged} flagged), Archive {archive}, \
         Sent {sent}; expected INBOX {}, {} flagged, {} moved, {} appended",
        t.uids.len() - gone,
        wanted(Kind::Flag),
        wanted(Kind::Move),
        wanted(Kind::Append)
    );
    Ok(())
}

/// The agent's replay: first sync, a baseline (pause + resume with nothing journaled), then
/// pause, `n` writes journaled, resume ═▶ pending 0. Returns the replay's time and what it sent
/// (the reconnect and the pull that confirms the writes included, as in benchmark 5).
fn opconnect(stage: &Stage, n: usize, section: &str, results: &mut Results) -> Result<(f64, Sent)> {
    let mut d = Driver::launch(&render_config(
        &production_settings(),
        std::slice::from_ref(&stage.account),
    ))?;
    d.call("sync", json!({"account": "alice"}))?;
    d.wait_synced(&SERVICES, Duration::from_secs(300))?;

    d.call("pause", json!({"account": "alice"}))?;
    d.drain();
    let mark = stage.mark();
    let t0 = Instant::now();
    d.call("resume", json!({"account": "alice"}))?;
    d.wait_synced(&SERVICES, Duration::from_secs(300))?;
    let resumed = t0.elapsed();
    let baseline = stage.sent_since(mark);
    results.record(
        section,
        "opconnect: resume with nothing to replay",
        "s",
        resumed.as_secs_f64(),
    );
    results.record(
        section,
        "opconnect: requests of that resume (reconnect + pull)",
        "",
        (baseline.imap + baseline.dav) as f64,
    );

    d.call("pause", json!({"account": "alice"}))?;
    let (calendar, book) = (&stage.script.calendar, &stage.script.book);
    let wanted = |k: Kind| counts(n).iter().find(|(c, _)| *c == k).map_or(0, |(_, c)| *c);
    journal(&mut d, n, calendar, book, wanted)?;
    let pending = pending_ops(&mut d)?;
    ensure!(pending == n as u64, "{pending} operations pending, expected {n}");
    d.drain();
    let mark = stage.mark();
    let t0 = Instant::now();
    d.call("resume", json!({"account": "alice"}))?;
    let deadline = t0 + Duration::from_secs(600);
    while pending_ops(&mut d)? > 0 {
        if Instant::now() > deadline {
            bail!("operations still pending after 10 minutes");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let replayed = t0.elapsed().as_secs_f64();
    d.wait_synced(&SERVICES, Duration::from_secs(300))?;
    let sent = stage.sent_since(mark);
    let failed = failures(&mut d);
    ensure!(failed == 0, "{failed} operations failed during the replay");
    Ok((replayed, sent))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeding_covers_the_mix_with_room() {
        let (inbox, events, contacts) = seeded(&counts(300));
        assert_eq!(
            (inbox, events, contacts),
            (75 + 30 + 30 + 50, 15 + 15 + 50, 15 + 15 + 50)
        );
    }

    #[test]
    fn radicale_hrefs_come_from_its_folder() {
        let root = tempfile::tempdir().unwrap();
        let cal = root.path().join("alice/calendar");
        fs::create_dir_all(&cal).unwrap();
        for f in [".Radicale.props", "b.ics", "a@x.ics"] {
            fs::write(cal.join(f), "").unwrap();
        }
        assert_eq!(
            files_in(root.path(), "/alice/calendar/").unwrap(),
            vec!["/alice/calendar/a@x.ics", "/alice/calendar/b.ics"]
        );
    }
}
