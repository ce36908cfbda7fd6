//! End-to-end tests of item-model patch writes (issue 16) against Radicale, Cyrus and DAViCal:
//! an event another client wrote (two VALARMs, an X- property, an ATTACH) gets a new Subject
//! through `items.patch`, and the server's copy keeps every other line byte for byte; a recurring
//! series with a moved and a deleted occurrence round-trips items.get → items.patch → server.
//!
//! ```text
//!   harness raw PUT ──► server ──poll──► mirror ──items.get──► fields
//!   items.patch {Subject} ──journal, If-Match──► server ──GET──► compare with the bytes before
//! ```

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use opconnect_tests::config::render_config;
use opconnect_tests::{AccountSpec, Agent, AgentSettings, Cyrus, DavServer, Davical, Radicale};
use serde_json::{Value, json};

/// Properties a Subject patch may rewrite (RFC 5545 §3.8.7: DTSTAMP, LAST-MODIFIED, SEQUENCE).
const REWRITTEN: &[&str] = &["SUMMARY", "DTSTAMP", "LAST-MODIFIED", "SEQUENCE"];

fn other_clients_event(uid: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Other Client//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n\
         DTSTAMP:20260101T000000Z\r\nDTSTART:20260310T090000Z\r\nDTEND:20260310T100000Z\r\n\
         SUMMARY:Original\r\nLOCATION:Room 1\r\nX-OTHER-CLIENT-PROP;X-P=1:keep me\r\n\
         ATTACH;FMTTYPE=text/plain:https://example.org/agenda.txt\r\n\
         BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:first\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\n\
         BEGIN:VALARM\r\nACTION:AUDIO\r\nTRIGGER:-PT5M\r\nX-ALARM-PROP:yes\r\nEND:VALARM\r\n\
         END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
}

/// A weekly series of six, the second occurrence moved (and renamed), the third deleted.
fn series(uid: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Other Client//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n\
         DTSTAMP:20260101T000000Z\r\nDTSTART:20260302T090000Z\r\nDTEND:20260302T100000Z\r\n\
         RRULE:FREQ=WEEKLY;COUNT=6;BYDAY=MO\r\nEXDATE:20260316T090000Z\r\nSUMMARY:Weekly\r\nEND:VEVENT\r\n\
         BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nRECURRENCE-ID:20260309T090000Z\r\n\
         DTSTART:20260310T140000Z\r\nDTEND:20260310T150000Z\r\nSUMMARY:Moved one\r\nEND:VEVENT\r\n\
         END:VCALENDAR\r\n"
    )
}

/// The text without the content lines (folds included) named in `names`.
fn without(text: &str, names: &[&str]) -> String {
    let mut out = String::new();
    let mut dropping = false;
    for line in text.split_inclusive('\n') {
        if line.starts_with([' ', '\t']) {
            if !dropping {
                out.push_str(line);
            }
            continue;
        }
        let name = line
            .split([';', ':'])
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_uppercase();
        dropping = names.contains(&name.as_str());
        if !dropping {
            out.push_str(line);
        }
    }
    out
}

fn agent_on(caldav: String) -> Result<Agent> {
    let settings = AgentSettings {
        dav_poll_interval: "5m".into(),
        ..AgentSettings::default()
    };
    let mut account = AccountSpec::for_user("alice");
    account.caldav = Some(caldav);
    let agent = Agent::start(&render_config(&settings, &[account]))?;
    agent.wait_for_state("alice", "online", Duration::from_secs(20))?;
    Ok(agent)
}

/// `items.get` once the mirror has the item, until `pred` holds on it.
fn get_until(agent: &Agent, href: &str, pred: impl Fn(&Value) -> bool) -> Result<Value> {
    agent.call_until(
        "items.get",
        json!({"account": "alice", "href": href}),
        Duration::from_secs(30),
        pred,
    )
}

fn fields(item: &Value) -> Result<&Value> {
    item.get("fields")
        .with_context(|| format!("no field set: {item}"))
}

/// Both scenarios against one server, given how to PUT and GET there as alice.
fn patches_keep_the_rest(server: &dyn DavServer, agent: &Agent, calendar: &str) -> Result<()> {
    // 1. Another client's event: a new Subject, everything else byte for byte.
    let (href, _) = server.put_event("alice", calendar, "other-1", &other_clients_event("other-1"))?;
    agent.cli_ok(&["sync", "alice"])?;
    let item = get_until(agent, &href, |v| v["etag"].as_str().is_some())?;
    let f = fields(&item)?;
    assert_eq!(f["Subject"], "Original", "{item}");
    assert_eq!(f["Location"], "Room 1");
    assert_eq!(f["ReminderSet"], true);
    assert_eq!(f["ReminderMinutesBeforeStart"], 15);
    let before = server.http().get("alice", &href)?.text();
    agent.call(
        "items.patch",
        json!({"account": "alice", "href": href, "etag": item["etag"], "changes": {"Subject": "Renamed"}, "wait": true}),
    )?;
    let after = server.http().get("alice", &href)?.text();
    ensure!(
        after.contains("SUMMARY:Renamed"),
        "the server did not get the new Subject:\n{after}"
    );
    assert_eq!(without(&after, REWRITTEN), without(&before, REWRITTEN));
    assert_eq!(after.matches("BEGIN:VALARM").count(), 2);

    // 2. A series with a moved and a deleted occurrence.
    let (href, _) = server.put_event("alice", calendar, "series-1", &series("series-1"))?;
    agent.cli_ok(&["sync", "alice"])?;
    let item = get_until(agent, &href, |v| v["etag"].as_str().is_some())?;
    let f = fields(&item)?;
    assert_eq!(f["IsRecurring"], true, "{item}");
    assert_eq!(f["Recurrence"]["RecurrenceType"], 1);
    assert_eq!(f["Recurrence"]["Occurrences"], 6);
    let exceptions = f["Exceptions"].as_array().context("Exceptions")?;
    assert_eq!(exceptions.len(), 2, "{item}");
    assert_eq!(exceptions.iter().filter(|e| e["Deleted"] == true).count(), 1);
    let moved = exceptions
        .iter()
        .find(|e| e["Deleted"] == false)
        .context("moved")?;
    assert_eq!(moved["Subject"], "Moved one");
    let before = server.http().get("alice", &href)?.text();
    agent.call(
        "items.patch",
        json!({"account": "alice", "href": href, "etag": item["etag"], "changes": {"Subject": "Renamed series"}, "wait": true}),
    )?;
    let after = server.http().get("alice", &href)?.text();
    ensure!(after.contains("SUMMARY:Renamed series"), "{after}");
    ensure!(
        after.contains("SUMMARY:Moved one"),
        "the moved occurrence keeps its Subject: {after}"
    );
    assert_eq!(without(&after, REWRITTEN), without(&before, REWRITTEN));
    // And back through the next poll: the same series, renamed.
    agent.cli_ok(&["sync", "alice"])?;
    let item = get_until(agent, &href, |v| v["fields"]["Subject"] == "Renamed series")?;
    let f = fields(&item)?;
    assert_eq!(f["Exceptions"].as_array().map(Vec::len), Some(2));
    assert_eq!(f["Recurrence"]["Occurrences"], 6);
    Ok(())
}

#[test]
fn patches_keep_the_rest_on_radicale() -> Result<()> {
    let radicale = Radicale::start()?;
    let cal = radicale.create_calendar("alice", "work", "Work")?;
    let agent = agent_on(radicale.url())?;
    patches_keep_the_rest(&radicale, &agent, &cal)
}

#[test]
fn patches_keep_the_rest_on_cyrus() -> Result<()> {
    let cyrus = Cyrus::start()?;
    let cal = cyrus.default_calendar("alice");
    let agent = agent_on(cyrus.dav_url())?;
    patches_keep_the_rest(&cyrus, &agent, &cal)
}

#[test]
fn patches_keep_the_rest_on_davical() -> Result<()> {
    let davical = Davical::start()?;
    let cal = davical.default_calendar("alice");
    let agent = agent_on(davical.dav_url())?;
    patches_keep_the_rest(&davical, &agent, &cal)
}

#[test]
fn the_filter_drops_named_lines_and_their_folds() {
    let t = "A:1\r\nSUMMARY:x\r\n y\r\nB;P=1:2\r\n";
    assert_eq!(without(t, &["SUMMARY"]), "A:1\r\nB;P=1:2\r\n");
}
