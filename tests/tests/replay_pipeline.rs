//! The pipelined replay (issue 22) against a private Dovecot and Radicale, each behind the bench's
//! counting proxy: offline writes over many items land with fewer commands than one round per
//! operation, writes to one item keep their journal order, one conflicting item among many gives
//! exactly one conflict while the rest land, and `kill -9` in the middle of a replay loses and
//! duplicates nothing.

#[allow(dead_code)]
#[path = "../src/bin/bench/proxy.rs"]
mod proxy;

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use base64::Engine as _;
use opconnect_tests::agent::event_topic;
use opconnect_tests::config::render_config;
use opconnect_tests::{AccountSpec, Agent, AgentSettings, DavServer, Dovecot, Radicale};
use serde_json::{Value, json};

use proxy::{CountingProxy, Framing};

fn message(i: usize) -> Vec<u8> {
    format!(
        "From: alice@localhost\r\nTo: bob@localhost\r\nSubject: m{i}\r\nMessage-ID: <m{i}@pipe>\r\n\
         Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\nbody {i}\r\n"
    )
    .into_bytes()
}

fn event(uid: &str, summary: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//opconnect//pipe//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n\
         DTSTAMP:20261123T000000Z\r\nDTSTART:20261201T090000Z\r\nDURATION:PT1H\r\nSUMMARY:{summary}\r\n\
         END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
}

fn pending(agent: &Agent) -> u64 {
    agent
        .status_json()
        .ok()
        .and_then(|s| s["accounts"][0]["pending_ops"].as_u64())
        .unwrap_or(u64::MAX)
}

fn summary_on(radicale: &Radicale, href: &str) -> Result<Option<String>> {
    let r = radicale.get("alice", href)?;
    if r.status == 404 {
        return Ok(None);
    }
    Ok(r.text()
        .lines()
        .find_map(|l| l.strip_prefix("SUMMARY:"))
        .map(str::to_owned))
}

/// An agent on `dovecot` (IMAP) and `radicale` (CalDAV), through counting proxies, synced.
fn agent_through(imap: &CountingProxy, dav: &CountingProxy) -> Result<Agent> {
    let mut spec = AccountSpec::for_user("alice");
    spec.imap = Some(imap.imap_url());
    spec.caldav = Some(dav.http_url());
    let agent = Agent::start(&render_config(&AgentSettings::default(), &[spec]))?;
    agent.wait_for(Duration::from_secs(30), |s| {
        s["accounts"][0]["state"] == "online" && s["accounts"][0]["last_sync"].is_string()
    })?;
    Ok(agent)
}

fn inbox_uids(agent: &Agent, n: usize) -> Result<Vec<u64>> {
    let answer = agent.call_until(
        "mail.messages",
        json!({"account": "alice", "folder": "INBOX"}),
        Duration::from_secs(30),
        |v| v["messages"].as_array().is_some_and(|m| m.len() == n),
    )?;
    let mut uids: Vec<u64> = answer["messages"]
        .as_array()
        .context("messages")?
        .iter()
        .filter_map(|m| m["uid"].as_u64())
        .collect();
    uids.sort_unstable();
    Ok(uids)
}

#[test]
fn offline_writes_land_in_fewer_commands_and_one_item_keeps_its_order() -> Result<()> {
    const FLAGS: usize = 20;
    const MOVES: usize = 10;
    const DELETES: usize = 10;
    const EVENTS: usize = 16;
    const APPENDS: usize = 8;
    let dovecot = Dovecot::start()?;
    let radicale = Radicale::start()?;
    let cal = radicale.create_calendar("alice", "pipe", "Pipe")?;
    let mut probe = dovecot.probe("alice")?;
    probe.create("Archive")?;
    for i in 0..FLAGS + MOVES + DELETES {
        probe.append("INBOX", &[], &message(i))?;
    }
    let imap = CountingProxy::start(dovecot.imap_port(), Framing::Imap)?;
    let dav = CountingProxy::start(radicale.port(), Framing::Http)?;
    let agent = agent_through(&imap, &dav)?;
    let uids = inbox_uids(&agent, FLAGS + MOVES + DELETES)?;

    agent.cli_ok(&["pause"])?;
    let mut ops = 0;
    for uid in &uids[..FLAGS] {
        agent.call(
            "mail.flag",
            json!({"account": "alice", "folder": "INBOX", "uids": [uid], "add": ["\\Flagged", "$Pipe"]}),
        )?;
        ops += 1;
    }
    for uid in &uids[FLAGS..FLAGS + MOVES] {
        agent.call(
            "mail.move",
            json!({"account": "alice", "folder": "INBOX", "uids": [uid], "to": "Archive"}),
        )?;
        ops += 1;
    }
    for uid in &uids[FLAGS + MOVES..] {
        agent.call(
            "mail.delete",
            json!({"account": "alice", "folder": "INBOX", "uids": [uid]}),
        )?;
        ops += 1;
    }
    for i in 0..APPENDS {
        let raw = base64::engine::general_purpose::STANDARD.encode(message(100 + i));
        agent.call(
            "mail.append",
            json!({"account": "alice", "folder": "Archive", "raw": raw, "flags": ["\\Seen"]}),
        )?;
        ops += 1;
    }
    let mail_ops = ops;
    let mut hrefs = Vec::new();
    for i in 0..EVENTS {
        let answer = agent.call(
            "calendar.put",
            json!({"account": "alice", "calendar": cal, "ics": event(&format!("e{i}"), &format!("e{i} v1"))}),
        )?;
        hrefs.push(answer["href"].as_str().context("href")?.to_owned());
        ops += 1;
    }
    // One item written three times: the versions must reach the server in this order.
    for v in 2..=3 {
        agent.call(
            "calendar.put",
            json!({"account": "alice", "calendar": cal, "href": hrefs[0], "ics": event("e0", &format!("e0 v{v}"))}),
        )?;
        ops += 1;
    }
    let dav_ops = ops - mail_ops;
    ensure!(pending(&agent) == ops as u64, "{} pending", pending(&agent));

    let mut events = agent.watch(&["op.done", "op.failed", "conflict"])?;
    let (_, _) = (imap.take(), dav.take());
    agent.cli_ok(&["resume"])?;
    agent.wait_for(Duration::from_secs(60), |_| pending(&agent) == 0)?;
    std::thread::sleep(Duration::from_millis(500));
    let (i, h) = (imap.take(), dav.take());
    eprintln!("IMAP: {}\nHTTP: {}", i.methods_line(), h.methods_line());
    // Every write is plainly done: no conflict, no failure, no lost acknowledgement.
    let mut done = 0;
    while let Some(e) = events.next(Duration::from_millis(300)) {
        let text = e.to_string();
        ensure!(
            event_topic(&e) == Some("op.done")
                && !text.contains("\"reason\"")
                && !text.contains("\"conflict\""),
            "{e}"
        );
        done += 1;
    }
    ensure!(done == ops, "{done} op.done for {ops} writes");

    // Mail: one SELECT + UID SEARCH + command per batch instead of per operation (3 or 4 each).
    let count = |c: &proxy::Counters, m: &str| c.methods.get(m).copied().unwrap_or(0);
    ensure!(count(&i, "UID STORE") <= 3, "{}", i.methods_line());
    ensure!(count(&i, "UID MOVE") == 1, "{}", i.methods_line());
    ensure!(count(&i, "UID EXPUNGE") == 1, "{}", i.methods_line());
    // The appends as one MULTIAPPEND (Dovecot offers it with LITERAL+).
    ensure!(count(&i, "APPEND") == 1, "{}", i.methods_line());
    ensure!(
        (i.requests as usize) < mail_ops,
        "{} IMAP commands for {mail_ops} operations: {}",
        i.requests,
        i.methods_line()
    );
    // DAV: exactly one PUT per write, nothing asked back (each PUT answered its ETag).
    ensure!(count(&h, "PUT") == dav_ops as u64, "{}", h.methods_line());
    ensure!(count(&h, "GET") == 0, "{}", h.methods_line());

    // The server's truth.
    let mut probe = dovecot.probe("alice")?;
    probe.select("INBOX")?;
    ensure!(
        probe.uid_search("ALL")?.len() == FLAGS,
        "INBOX keeps only the flagged"
    );
    ensure!(probe.uid_search("FLAGGED KEYWORD $Pipe")?.len() == FLAGS);
    probe.select("Archive")?;
    ensure!(
        probe.uid_search("ALL")?.len() == MOVES + APPENDS,
        "Archive has the moved and the appended"
    );
    for i in 0..APPENDS {
        let n = probe
            .uid_search(&format!("SEEN HEADER Message-ID <m{}@pipe>", 100 + i))?
            .len();
        ensure!(n == 1, "appended m{}: {n}", 100 + i);
    }
    let members = radicale.members("alice", &cal)?;
    ensure!(members.len() == EVENTS, "{members:?}");
    ensure!(summary_on(&radicale, &hrefs[0])?.as_deref() == Some("e0 v3"));
    for (i, href) in hrefs.iter().enumerate().skip(1) {
        ensure!(summary_on(&radicale, href)?.as_deref() == Some(format!("e{i} v1").as_str()));
    }
    Ok(())
}

#[test]
fn one_conflict_among_many_writes_is_one_conflict_and_the_rest_land() -> Result<()> {
    const EVENTS: usize = 16;
    let dovecot = Dovecot::start()?;
    let radicale = Radicale::start()?;
    let cal = radicale.create_calendar("alice", "pipe", "Pipe")?;
    let mut hrefs = Vec::new();
    for i in 0..EVENTS {
        hrefs.push(
            radicale
                .put_event(
                    "alice",
                    &cal,
                    &format!("c{i}"),
                    &event(&format!("c{i}"), "original"),
                )?
                .0,
        );
    }
    let imap = CountingProxy::start(dovecot.imap_port(), Framing::Imap)?;
    let dav = CountingProxy::start(radicale.port(), Framing::Http)?;
    let agent = agent_through(&imap, &dav)?;
    agent.call_until(
        "calendar.items",
        json!({"account": "alice", "calendar": cal}),
        Duration::from_secs(30),
        |v| v.as_array().is_some_and(|a| a.len() == EVENTS),
    )?;

    agent.cli_ok(&["pause"])?;
    for (i, href) in hrefs.iter().enumerate() {
        agent.call(
            "calendar.put",
            json!({"account": "alice", "calendar": cal, "href": href, "ics": event(&format!("c{i}"), "mine")}),
        )?;
    }
    // Someone else edits one of them on the server meanwhile.
    radicale.put_event("alice", &cal, "c7", &event("c7", "theirs"))?;
    let mut events = agent.watch(&["conflict", "op.failed"])?;
    agent.cli_ok(&["resume"])?;
    agent.wait_for(Duration::from_secs(60), |_| pending(&agent) == 0)?;
    let first = events.wait_topic("conflict", Duration::from_secs(10))?;
    ensure!(first.to_string().contains(&hrefs[7]), "{first}");
    let mut more = Vec::new();
    while let Some(e) = events.next(Duration::from_millis(500)) {
        more.push(e);
    }
    ensure!(more.is_empty(), "only one conflict, no failure: {more:?}");
    let list = agent.call("conflicts.list", json!({}))?;
    ensure!(list.as_array().map(Vec::len) == Some(1), "{list}");
    for (i, href) in hrefs.iter().enumerate() {
        let want = if i == 7 { "theirs" } else { "mine" };
        ensure!(
            summary_on(&radicale, href)?.as_deref() == Some(want),
            "{href}: want {want}"
        );
    }
    Ok(())
}

#[test]
fn kill_9_in_the_middle_of_a_pipelined_replay_loses_and_doubles_nothing() -> Result<()> {
    const MESSAGES: usize = 60;
    const EVENTS: usize = 60;
    const APPENDS: usize = 30;
    let dovecot = Dovecot::start()?;
    let radicale = Radicale::start()?;
    let cal = radicale.create_calendar("alice", "pipe", "Pipe")?;
    let mut probe = dovecot.probe("alice")?;
    probe.create("Archive")?;
    for i in 0..MESSAGES {
        probe.append("INBOX", &[], &message(i))?;
    }
    let imap = CountingProxy::start(dovecot.imap_port(), Framing::Imap)?;
    let dav = CountingProxy::start(radicale.port(), Framing::Http)?;
    let mut agent = agent_through(&imap, &dav)?;
    let uids = inbox_uids(&agent, MESSAGES)?;

    agent.cli_ok(&["pause"])?;
    // Runs of five moves and five flag changes, so that batches are short and the kills fall
    // between and inside them.
    let moved = |k: usize| (k / 5).is_multiple_of(2);
    let keyword = |k: usize| format!("$k{}", (k / 10) % 3);
    for (k, uid) in uids.iter().enumerate() {
        let (method, params): (&str, Value) = if moved(k) {
            (
                "mail.move",
                json!({"account": "alice", "folder": "INBOX", "uids": [uid], "to": "Archive"}),
            )
        } else {
            (
                "mail.flag",
                json!({"account": "alice", "folder": "INBOX", "uids": [uid], "add": [keyword(k)]}),
            )
        };
        agent.call(method, params)?;
    }
    for i in 0..APPENDS {
        let raw = base64::engine::general_purpose::STANDARD.encode(message(1000 + i));
        agent.call(
            "mail.append",
            json!({"account": "alice", "folder": "Archive", "raw": raw}),
        )?;
    }
    for i in 0..EVENTS {
        agent.call(
            "calendar.put",
            json!({"account": "alice", "calendar": cal, "ics": event(&format!("k{i}"), "made offline")}),
        )?;
    }
    let mut kills = 0;
    for delay in [30u64, 90, 60, 150, 45] {
        if pending(&agent) == 0 {
            break;
        }
        agent.cli_ok(&["resume"])?;
        std::thread::sleep(Duration::from_millis(delay));
        agent.kill();
        kills += 1;
        agent.restart()?;
    }
    agent.cli_ok(&["resume"])?;
    // Every kill counts an attempt for each write in flight: one killed again and again can
    // reach the cap and be set aside for the user (kept, never dropped). Put those back once.
    let ops = |agent: &Agent| -> Vec<Value> {
        agent
            .call("ops", json!({"account": "alice"}))
            .ok()
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
    };
    agent.wait_for(Duration::from_secs(60), |_| {
        ops(&agent).iter().all(|e| e["parked"] == true)
    })?;
    for parked in ops(&agent) {
        eprintln!("set aside after the kills, retried: {parked}");
        agent.call("ops.retry", json!({"op": parked["op"]}))?;
    }
    agent
        .wait_for(Duration::from_secs(60), |_| pending(&agent) == 0)
        .with_context(|| format!("still pending: {:?}", ops(&agent)))?;
    ensure!(kills >= 2, "the replay ended before the kills ({kills})");

    let members = radicale.members("alice", &cal)?;
    ensure!(members.len() == EVENTS, "{} events for {EVENTS}", members.len());
    let mut probe = dovecot.probe("alice")?;
    probe.select("Archive")?;
    for i in (0..MESSAGES).filter(|k| moved(*k)) {
        let n = probe.uid_search(&format!("HEADER Message-ID <m{i}@pipe>"))?.len();
        ensure!(n == 1, "m{i}: {n} copies in Archive");
    }
    for i in 1000..1000 + APPENDS {
        let n = probe.uid_search(&format!("HEADER Message-ID <m{i}@pipe>"))?.len();
        ensure!(n == 1, "appended m{i}: {n} copies in Archive");
    }
    ensure!(probe.uid_search("ALL")?.len() == MESSAGES / 2 + APPENDS);
    probe.select("INBOX")?;
    ensure!(probe.uid_search("ALL")?.len() == MESSAGES / 2);
    for k in (0..MESSAGES).filter(|k| !moved(*k)) {
        let n = probe
            .uid_search(&format!("KEYWORD {} HEADER Message-ID <m{k}@pipe>", keyword(k)))?
            .len();
        ensure!(n == 1, "m{k} lost its keyword");
    }
    Ok(())
}

#[test]
fn a_refused_batch_reports_each_operation_and_the_next_batch_lands() -> Result<()> {
    let dovecot = Dovecot::start()?;
    let mut probe = dovecot.probe("alice")?;
    for i in 0..6 {
        probe.append("INBOX", &[], &message(i))?;
    }
    let imap = CountingProxy::start(dovecot.imap_port(), Framing::Imap)?;
    let mut spec = AccountSpec::for_user("alice");
    spec.imap = Some(imap.imap_url());
    let agent = Agent::start(&render_config(&AgentSettings::default(), &[spec]))?;
    agent.wait_for(Duration::from_secs(30), |s| {
        s["accounts"][0]["state"] == "online" && s["accounts"][0]["last_sync"].is_string()
    })?;
    let uids = inbox_uids(&agent, 6)?;
    agent.cli_ok(&["pause"])?;
    // Three moves into a folder that does not exist (the server answers NO [TRYCREATE]), then
    // three flag changes.
    let mut moves = Vec::new();
    for uid in &uids[..3] {
        let answer = agent.call(
            "mail.move",
            json!({"account": "alice", "folder": "INBOX", "uids": [uid], "to": "Nowhere"}),
        )?;
        moves.push(answer["op"].as_u64().context("op")?);
    }
    for uid in &uids[3..] {
        agent.call(
            "mail.flag",
            json!({"account": "alice", "folder": "INBOX", "uids": [uid], "add": ["\\Seen"]}),
        )?;
    }
    let mut events = agent.watch(&["op.done", "op.failed"])?;
    agent.cli_ok(&["resume"])?;
    let mut failed = std::collections::BTreeSet::new();
    let mut done = 0;
    while failed.len() < 3 || done < 3 {
        let e = events
            .next(Duration::from_secs(20))
            .with_context(|| format!("failed {failed:?}, done {done}"))?;
        let text = e.to_string();
        match event_topic(&e) {
            Some("op.failed") => {
                let op = moves
                    .iter()
                    .find(|id| text.contains(&format!("\"op\":{id}")))
                    .with_context(|| format!("a failure of something else: {e}"))?;
                ensure!(text.contains("Nowhere") || text.contains("TRYCREATE"), "{e}");
                failed.insert(*op);
            }
            _ => done += 1,
        }
    }
    let mut probe = dovecot.probe("alice")?;
    probe.select("INBOX")?;
    ensure!(probe.uid_search("ALL")?.len() == 6, "nothing moved");
    ensure!(probe.uid_search("SEEN")?.len() == 3, "the flags landed");
    Ok(())
}
