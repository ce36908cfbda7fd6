//! The crash test (issue 19): at least 1,000 mixed writes (IMAP flags, moves, appends, deletes;
//! DAV puts and deletes; sends) are journaled while sync is paused, then replayed while the agent
//! is killed with `kill -9` at 20 or more points and restarted each time. Afterwards the servers
//! are counted: nothing lost, nothing doubled. A send whose answer was lost in a kill is parked
//! for the user (never re-sent): it counts as kept, and must not have been delivered twice.
//!
//! `OPCONNECT_CRASH_SCALE=N` multiplies the writes (scripts/crashtest runs it larger).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use base64::Engine as _;
use opconnect_tests::DavServer;
use opconnect_tests::config::render_config;
use opconnect_tests::{AccountSpec, Agent, AgentSettings, Postfix, Radicale, RawIpc};
use serde_json::{Value, json};

/// Messages moved, deleted and flagged, per unit of scale.
const MOVED: usize = 100;
const DELETED: usize = 50;
const FLAGGED: usize = 50;
/// Keywords set on each flagged message, one write each.
const KEYWORDS: usize = 8;
const APPENDED: usize = 200;
const EVENTS: usize = 200;
const EVENTS_DELETED: usize = 30;
const SENT: usize = 20;
const KILLS: usize = 20;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn msg(id: &str, subject: &str, to: &str) -> Vec<u8> {
    format!(
        "From: alice@localhost\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\n\
         Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\nbody {subject}\r\n"
    )
    .into_bytes()
}

fn event(uid: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//opconnect//crash//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n\
         DTSTAMP:20261123T000000Z\r\nDTSTART:20261201T090000Z\r\nDURATION:PT1H\r\nSUMMARY:{uid}\r\n\
         END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
}

fn pending(agent: &Agent) -> Result<Vec<Value>> {
    Ok(agent
        .call("ops", json!({"account": "alice"}))?
        .as_array()
        .cloned()
        .unwrap_or_default())
}

#[test]
fn a_thousand_writes_survive_twenty_kills_exactly_once() -> Result<()> {
    let scale: usize = std::env::var("OPCONNECT_CRASH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
        .max(1);
    let began = Instant::now();
    let (dovecot, postfix) = Postfix::with_dovecot()?;
    let radicale = Radicale::start()?;
    let cal = radicale.create_calendar("alice", "crash", "Crash")?;
    let (moved, deleted, flagged) = (MOVED * scale, DELETED * scale, FLAGGED * scale);
    let mut probe = dovecot.probe("alice")?;
    probe.create("Archive")?;
    for i in 0..moved + deleted + flagged {
        probe.append(
            "INBOX",
            &[],
            &msg(&format!("m{i}@crash"), &format!("m{i}"), "alice@localhost"),
        )?;
    }
    let mut spec = AccountSpec::for_user("alice").imap_from(&dovecot);
    spec.caldav = Some(radicale.url());
    spec.smtp = Some(postfix.url());
    let mut agent = Agent::start(&render_config(&AgentSettings::default(), &[spec]))?;
    agent.wait_for(Duration::from_secs(30), |s| {
        s["accounts"][0]["state"] == "online" && s["accounts"][0]["last_sync"].is_string()
    })?;
    // The whole INBOX is in the mirror (UIDs of a fresh Dovecot folder are 1…N).
    let total = moved + deleted + flagged;
    agent.call_until(
        "mail.messages",
        json!({"account": "alice", "folder": "INBOX", "after_uid": total - 1}),
        Duration::from_secs(30),
        |v| v["messages"].as_array().is_some_and(|m| m.len() == 1),
    )?;
    let mut ipc = RawIpc::connect(&agent.socket_path())?;
    ipc.set_timeout(Duration::from_secs(30))?;
    let mut uids: BTreeMap<String, u64> = BTreeMap::new();
    let mut after = 0;
    loop {
        let page = ipc.call(
            "mail.messages",
            json!({"account": "alice", "folder": "INBOX", "after_uid": after}),
        )?;
        let list = page["messages"].as_array().cloned().unwrap_or_default();
        if list.is_empty() {
            break;
        }
        for m in &list {
            after = after.max(m["uid"].as_u64().unwrap_or(0));
            uids.insert(
                m["subject"].as_str().unwrap_or("").to_owned(),
                m["uid"].as_u64().unwrap_or(0),
            );
        }
    }
    ensure!(
        uids.len() == moved + deleted + flagged,
        "mirror has {} messages",
        uids.len()
    );
    let uid = |i: usize| uids[&format!("m{i}")];

    // Everything is journaled first, with sync paused: replay then has all of it to do.
    ipc.call("pause", json!({}))?;
    let mut writes = 0;
    let mut hrefs = Vec::new();
    for i in 0..moved {
        ipc.call(
            "mail.move",
            json!({"account": "alice", "folder": "INBOX", "uids": [uid(i)], "to": "Archive"}),
        )?;
        writes += 1;
    }
    for i in moved..moved + deleted {
        ipc.call(
            "mail.delete",
            json!({"account": "alice", "folder": "INBOX", "uids": [uid(i)]}),
        )?;
        writes += 1;
    }
    for k in 0..KEYWORDS {
        for i in moved + deleted..moved + deleted + flagged {
            ipc.call(
                "mail.flag",
                json!({"account": "alice", "folder": "INBOX", "uids": [uid(i)], "add": [format!("$k{k}")]}),
            )?;
            writes += 1;
        }
    }
    for i in 0..APPENDED * scale {
        let raw = msg(&format!("a{i}@crash"), &format!("a{i}"), "alice@localhost");
        ipc.call(
            "mail.append",
            json!({"account": "alice", "folder": "Archive", "raw": b64(&raw)}),
        )?;
        writes += 1;
    }
    for i in 0..EVENTS * scale {
        let answer = ipc.call(
            "calendar.put",
            json!({"account": "alice", "calendar": cal, "ics": event(&format!("e{i}"))}),
        )?;
        hrefs.push(answer["href"].as_str().context("href")?.to_owned());
        writes += 1;
    }
    for href in hrefs.iter().take(EVENTS_DELETED * scale) {
        ipc.call("calendar.delete", json!({"account": "alice", "href": href}))?;
        writes += 1;
    }
    let mut sends = BTreeMap::new();
    for i in 0..SENT * scale {
        let raw = msg(&format!("s{i}@crash"), &format!("s{i}"), "bob@localhost");
        let answer = ipc.call("mail.send", json!({"account": "alice", "raw": b64(&raw)}))?;
        sends.insert(answer["op"].as_u64().context("op")?, format!("s{i}@crash"));
        writes += 1;
    }
    drop(ipc);
    ensure!(writes >= 1000 * scale, "{writes} writes");
    let journaled = began.elapsed();

    // Replay, killed again and again.
    let mut kills_while_pending = 0;
    let mut cycle = 0u64;
    loop {
        agent.cli_ok(&["resume"])?;
        // 40 … 240 ms into the replay, varied so that kills land at different steps.
        std::thread::sleep(Duration::from_millis(40 + (cycle * 53) % 200));
        let left = pending(&agent)?.len();
        agent.kill();
        if left == 0 {
            break;
        }
        kills_while_pending += 1;
        cycle += 1;
        agent.restart()?;
        if kills_while_pending >= KILLS * scale {
            break;
        }
    }
    if !agent.is_running() {
        agent.restart()?;
    }
    agent.cli_ok(&["resume"])?;
    let settled = agent.wait_for(Duration::from_secs(60), |_| {
        pending(&agent).is_ok_and(|p| p.iter().all(|e| e["parked"] == true))
    });
    let left = pending(&agent)?;
    settled.with_context(|| format!("still pending: {left:?}"))?;
    ensure!(
        kills_while_pending >= KILLS,
        "only {kills_while_pending} kills happened during the replay"
    );

    // Count on the servers.
    let mut probe = dovecot.probe("alice")?;
    let count = |probe: &mut opconnect_tests::ImapProbe, query: String| -> Result<usize> {
        Ok(probe.uid_search(&query)?.len())
    };
    probe.select("Archive")?;
    for i in 0..moved {
        let n = count(&mut probe, format!("HEADER Message-ID <m{i}@crash>"))?;
        ensure!(n == 1, "moved m{i}: {n} copies in Archive");
    }
    for i in 0..APPENDED * scale {
        let n = count(&mut probe, format!("HEADER Message-ID <a{i}@crash>"))?;
        ensure!(n == 1, "appended a{i}: {n} copies");
    }
    probe.select("INBOX")?;
    for i in 0..moved + deleted {
        let n = count(&mut probe, format!("HEADER Message-ID <m{i}@crash>"))?;
        ensure!(n == 0, "m{i} still in INBOX");
    }
    for i in moved + deleted..moved + deleted + flagged {
        let n = count(&mut probe, format!("HEADER Message-ID <m{i}@crash>"))?;
        ensure!(n == 1, "m{i}: {n} in INBOX");
        let all_keywords = (0..KEYWORDS)
            .map(|k| format!("KEYWORD $k{k}"))
            .collect::<Vec<_>>()
            .join(" ");
        let n = count(
            &mut probe,
            format!("{all_keywords} HEADER Message-ID <m{i}@crash>"),
        )?;
        ensure!(n == 1, "m{i} lacks some of its {KEYWORDS} keywords");
    }
    let members = radicale.members("alice", &cal)?;
    ensure!(
        members.len() == (EVENTS - EVENTS_DELETED) * scale,
        "{} events on the server, {} expected",
        members.len(),
        (EVENTS - EVENTS_DELETED) * scale
    );
    let conflicts = agent.call("conflicts.list", json!({}))?;
    ensure!(conflicts == json!([]), "no conflicts: {conflicts}");
    // Sends: delivered at most once each; each one either delivered or parked for the user.
    let parked: Vec<u64> = left.iter().filter_map(|e| e["op"].as_u64()).collect();
    std::thread::sleep(Duration::from_secs(2));
    let mut bob = dovecot.probe("bob")?;
    bob.select("INBOX")?;
    let mut delivered = 0;
    for (op, id) in &sends {
        let n = count(&mut bob, format!("HEADER Message-ID <{id}>"))?;
        ensure!(n <= 1, "{id} delivered {n} times");
        ensure!(n == 1 || parked.contains(op), "{id} neither delivered nor parked");
        delivered += n;
    }
    ensure!(
        parked.iter().all(|op| sends.contains_key(op)),
        "only sends may be parked: {left:?}"
    );
    eprintln!(
        "crash test: {writes} writes journaled in {journaled:?}, {kills_while_pending} kills during replay, \
         {delivered} of {} sends delivered ({} parked), {:?} in all",
        sends.len(),
        parked.len(),
        began.elapsed()
    );
    Ok(())
}
