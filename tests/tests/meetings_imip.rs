//! Meetings over mail (iMIP, RFC 6047) where the calendar server does not schedule: Dovecot,
//! Radicale (no scheduling) and a private Postfix. Alice invites Bob through opconnect while her
//! agent is killed with `kill -9` between the journal and the send; Bob gets exactly one mail with
//! a text/calendar REQUEST, his agent lists it, he declines; Alice's copy shows him declined; a
//! new title sends nothing, a new time one update; Alice deletes the meeting and Bob's copy is
//! cancelled.

use std::fs;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use opconnect_tests::config::render_config;
use opconnect_tests::{AccountSpec, Agent, AgentSettings, DavServer, Dovecot, Postfix, Radicale};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(40);

fn meeting(uid: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//opconnect//meetings test//EN\r\nBEGIN:VEVENT\r\n\
         UID:{uid}\r\nDTSTAMP:20261201T000000Z\r\nDTSTART:20261215T100000Z\r\nDTEND:20261215T110000Z\r\n\
         SUMMARY:Quarterly planning\r\nLOCATION:Room 4\r\nORGANIZER;CN=Alice:mailto:alice@localhost\r\n\
         ATTENDEE;CN=Alice;PARTSTAT=ACCEPTED:mailto:alice@localhost\r\n\
         ATTENDEE;CN=Bob;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:bob@localhost\r\n\
         END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
}

fn agent_for(user: &str, dovecot: &Dovecot, postfix: &Postfix, radicale: &Radicale) -> Result<Agent> {
    let mut spec = AccountSpec::for_user(user).imap_from(dovecot);
    spec.smtp = Some(postfix.url());
    spec.caldav = Some(radicale.url());
    let agent = Agent::start(&render_config(&AgentSettings::default(), &[spec]))?;
    agent.wait_for(WAIT, |s| {
        s["accounts"][0]["state"] == "online" && s["accounts"][0]["last_sync"].is_string()
    })?;
    Ok(agent)
}

/// The messages in `user`'s INBOX (as Dovecot stored them) that carry an iTIP `method`.
fn itip_mails(dovecot: &Dovecot, user: &str, method: &str) -> Result<Vec<String>> {
    let maildir = dovecot.dir().join("mail").join(user).join("Maildir");
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        let Ok(dir) = fs::read_dir(maildir.join(sub)) else {
            continue;
        };
        for entry in dir.flatten() {
            let text = fs::read_to_string(entry.path())?;
            if text.contains(&format!("text/calendar; method={method}")) {
                out.push(text);
            }
        }
    }
    Ok(out)
}

fn wait_until(what: &str, mut done: impl FnMut() -> Result<bool>) -> Result<()> {
    let deadline = Instant::now() + WAIT;
    while !done()? {
        ensure!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
    Ok(())
}

fn pending(agent: &Agent, account: &str) -> Result<usize> {
    Ok(agent
        .call("ops", json!({"account": account}))?
        .as_array()
        .map_or(0, Vec::len))
}

#[test]
fn an_invitation_by_mail_reaches_bob_once_is_declined_and_cancelled() -> Result<()> {
    let (dovecot, postfix) = Postfix::with_dovecot()?;
    let radicale = Radicale::start()?;
    let cal = radicale.create_calendar("alice", "work", "Work")?;
    radicale.create_calendar("bob", "home", "Home")?;
    let mut alice = agent_for("alice", &dovecot, &postfix, &radicale)?;
    let bob = agent_for("bob", &dovecot, &postfix, &radicale)?;

    // Journaled while paused, then killed before anything was sent.
    alice.call("pause", json!({}))?;
    let answer = alice.call(
        "calendar.put",
        json!({"account": "alice", "calendar": cal, "ics": meeting("q4@localhost")}),
    )?;
    let href = answer["href"].as_str().context("href")?.to_owned();
    ensure!(
        pending(&alice, "alice")? == 2,
        "the write and its send are journaled"
    );
    alice.kill();
    ensure!(
        postfix.accepted_from("alice@localhost").is_empty(),
        "nothing sent before the kill"
    );
    alice.restart()?;
    alice.cli_ok(&["resume"])?;
    wait_until("the invitation to be delivered", || {
        Ok(postfix.delivered_to("bob@localhost") >= 1 && pending(&alice, "alice")? == 0)
    })?;
    // Time for a duplicate to show up, if one were coming.
    std::thread::sleep(Duration::from_secs(3));
    ensure!(
        postfix.delivered_to("bob@localhost") == 1,
        "one mail\n{}",
        postfix.log()
    );
    let requests = itip_mails(&dovecot, "bob", "REQUEST")?;
    ensure!(requests.len() == 1, "{} REQUEST mails", requests.len());
    ensure!(requests[0].contains("METHOD:REQUEST") && requests[0].contains("UID:q4@localhost"));

    // Bob's agent lists it and he declines.
    let list = bob.call_until("meetings.list", json!({"account": "bob"}), WAIT, |v| {
        v.as_array().is_some_and(|l| !l.is_empty())
    })?;
    let list = list.as_array().context("list")?;
    ensure!(list.len() == 1, "exactly one invitation: {list:?}");
    let invitation = &list[0];
    ensure!(
        invitation["method"] == "REQUEST" && invitation["source"] == "mail",
        "{invitation}"
    );
    ensure!(invitation["organizer"] == "alice@localhost" && invitation["partstat"] == "NEEDS-ACTION");
    ensure!(invitation["start"] == "2026-12-15T10:00:00Z", "{invitation}");
    let answered = bob.call(
        "meetings.respond",
        json!({"account": "bob", "id": invitation["id"], "response": "declined",
               "comment": "Out that week", "wait": true}),
    )?;
    let bob_href = answered["href"].as_str().context("href")?.to_owned();
    let after = bob.call("meetings.list", json!({"account": "bob"}))?;
    ensure!(after[0]["partstat"] == "DECLINED", "{after}");

    // The REPLY reaches Alice and her copy shows Bob declined (OlResponseStatus 4).
    wait_until("the reply to be delivered", || {
        Ok(postfix.delivered_to("alice@localhost") >= 1)
    })?;
    let shows_declined = |item: &Value| {
        item["fields"]["Recipients"].as_array().is_some_and(|r| {
            r.iter()
                .any(|r| r["Address"] == "bob@localhost" && r["MeetingResponseStatus"] == 4)
        })
    };
    let deadline = Instant::now() + WAIT;
    loop {
        // Applied by the agent on its own after the IMAP sync that brought the reply.
        let item = alice.call("items.get", json!({"account": "alice", "href": href}))?;
        if shows_declined(&item) && pending(&alice, "alice")? == 0 {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "alice's copy never showed bob declined: {item}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let stored = radicale.get("alice", &href)?;
    let stored = String::from_utf8_lossy(&stored.body).into_owned();
    ensure!(
        stored.contains("PARTSTAT=DECLINED:mailto:bob@localhost"),
        "{stored}"
    );
    ensure!(
        stored.contains("SUMMARY:Quarterly planning"),
        "the rest is kept: {stored}"
    );
    ensure!(
        postfix.delivered_to("bob@localhost") == 1,
        "a reply never re-invites"
    );

    // A new title alone tells nobody; a new time sends one update with a higher SEQUENCE.
    let retitled = stored.replace("SUMMARY:Quarterly planning", "SUMMARY:Q4 planning");
    alice.call(
        "calendar.put",
        json!({"account": "alice", "calendar": cal, "href": href, "ics": retitled, "wait": true}),
    )?;
    let moved = retitled.replace("DTSTART:20261215T100000Z", "DTSTART:20261215T093000Z");
    alice.call(
        "calendar.put",
        json!({"account": "alice", "calendar": cal, "href": href, "ics": moved, "wait": true}),
    )?;
    wait_until("the update to be delivered", || {
        Ok(postfix.delivered_to("bob@localhost") >= 2 && pending(&alice, "alice")? == 0)
    })?;
    std::thread::sleep(Duration::from_secs(2));
    ensure!(
        postfix.delivered_to("bob@localhost") == 2,
        "one update only\n{}",
        postfix.log()
    );
    let requests = itip_mails(&dovecot, "bob", "REQUEST")?;
    ensure!(
        requests
            .iter()
            .any(|r| r.contains("SEQUENCE:1") && r.contains("DTSTART:20261215T093000Z")),
        "the update carries SEQUENCE 1: {requests:?}"
    );
    // Bob's agent applies the update to his copy on its own.
    let deadline = Instant::now() + WAIT;
    loop {
        let copy = radicale.get("bob", &bob_href)?;
        let copy = String::from_utf8_lossy(&copy.body).into_owned();
        if copy.contains("DTSTART:20261215T093000Z") && copy.contains("SEQUENCE:1") {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "bob's copy did not take the update: {copy}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    // Alice deletes the meeting: Bob gets a CANCEL and his copy is cancelled.
    alice.call(
        "calendar.delete",
        json!({"account": "alice", "href": href, "wait": true}),
    )?;
    wait_until("the cancellation to be delivered", || {
        Ok(postfix.delivered_to("bob@localhost") >= 3)
    })?;
    ensure!(itip_mails(&dovecot, "bob", "CANCEL")?.len() == 1);
    let deadline = Instant::now() + WAIT;
    loop {
        let list = bob.call("meetings.list", json!({"account": "bob"}))?;
        let cancelled = list
            .as_array()
            .is_some_and(|l| l.iter().any(|i| i["method"] == "CANCEL"));
        let copy = radicale.get("bob", &bob_href)?;
        let copy = String::from_utf8_lossy(&copy.body).into_owned();
        if cancelled && copy.contains("STATUS:CANCELLED") {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "bob's copy was not cancelled: {list} {copy}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    std::thread::sleep(Duration::from_secs(2));
    ensure!(
        postfix.delivered_to("bob@localhost") == 3,
        "invitation, update, cancellation\n{}",
        postfix.log()
    );
    ensure!(postfix.delivered_to("alice@localhost") == 1, "one REPLY");
    Ok(())
}
