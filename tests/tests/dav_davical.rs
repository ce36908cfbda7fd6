//! DAViCal end to end, driven through `opconnect call`: calendar delegation (calendar-proxy,
//! granted by bob with a PROPPATCH as his client would), the delegated calendars in
//! `calendar.list` and the mirror, the refusal of a write to a read-only delegated calendar
//! before it is journaled, a write through a write-proxy grant, free/busy through DAViCal's
//! scheduling outbox, and a shared read-only address book configured as the global address
//! list (`gal`), searched on the server and never downloaded, and a contact group written to
//! DAViCal that reads back as a group (the report's Groups cell), and a first sync that takes its
//! bodies in one streaming query (issue 22).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use opconnect_tests::DavServer;
use opconnect_tests::config::render_config;
use opconnect_tests::{AccountSpec, Agent, AgentSettings, Davical};
use serde_json::{Value, json};

fn event(uid: &str, start: &str, end: &str, extra: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//opconnect//test//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n\
         DTSTAMP:20261123T000000Z\r\nDTSTART:{start}\r\nDTEND:{end}\r\nSUMMARY:{uid}\r\n{extra}END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
}

/// alice's agent with CalDAV and CardDAV on DAViCal.
fn alice_on(davical: &Davical) -> Result<Agent> {
    let mut account = AccountSpec::for_user("alice");
    account.caldav = Some(davical.dav_url());
    account.carddav = Some(davical.dav_url());
    let agent = Agent::start(&render_config(&AgentSettings::default(), &[account]))?;
    agent.wait_for_state("alice", "online", Duration::from_secs(20))?;
    Ok(agent)
}

/// The calendar `href` of `calendar.list`, once it is there.
fn listed(agent: &Agent, href: &str) -> Result<Value> {
    let list = agent.call_until(
        "calendar.list",
        json!({"account": "alice"}),
        Duration::from_secs(20),
        |v| v.as_array().is_some_and(|a| a.iter().any(|c| c["href"] == href)),
    )?;
    list.as_array()
        .and_then(|a| a.iter().find(|c| c["href"] == href))
        .cloned()
        .context("listed")
}

#[test]
fn read_proxy_sees_bobs_calendar_read_only_and_cannot_write_it() -> Result<()> {
    let began = Instant::now();
    let davical = Davical::start()?;
    let bobs = davical.default_calendar("bob");
    davical.http().put_event(
        "bob",
        &bobs,
        "review",
        &event("review", "20261201T090000Z", "20261201T100000Z", ""),
    )?;
    davical.grant_proxy("bob", &["alice"], false)?;
    davical.grant_proxy("alice", &["bob"], true)?;

    let agent = alice_on(&davical)?;
    let theirs = listed(&agent, &bobs)?;
    assert_eq!(theirs["owner"], "/caldav.php/bob/", "{theirs}");
    assert_eq!(theirs["read_only"], true, "{theirs}");
    let mine = listed(&agent, &davical.default_calendar("alice"))?;
    assert_eq!(mine["read_only"], false, "{mine}");

    // bob's calendar syncs into the mirror like alice's own.
    let items = agent.call_until(
        "calendar.items",
        json!({"account": "alice", "calendar": bobs}),
        Duration::from_secs(20),
        |v| v.as_array().is_some_and(|a| a.len() == 1),
    )?;
    assert_eq!(items[0]["summary"], "review", "{items}");

    let d = agent.call("calendar.delegations", json!({"account": "alice"}))?;
    assert_eq!(
        d["read_for"],
        json!([{"principal": "/caldav.php/bob/", "name": "Bob", "email": "bob@localhost", "calendars": [bobs]}]),
        "{d}"
    );
    assert_eq!(d["write_for"], json!([]), "{d}");
    assert_eq!(
        d["delegates"],
        json!([{"principal": "/caldav.php/bob/", "name": "Bob", "email": "bob@localhost", "access": "write"}]),
        "{d}"
    );

    // A write to the read-only delegated calendar is refused before the journal (code 2).
    let ics = event("mine", "20261202T090000Z", "20261202T100000Z", "");
    let params = json!({"account": "alice", "calendar": bobs, "ics": ics});
    let out = agent.cli(&["call", "calendar.put", &params.to_string()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success(),
        "put accepted: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(stderr.contains("read-only"), "{stderr}");
    let raw = agent.ipc()?.request("calendar.put", params)?;
    assert_eq!(raw["error"]["code"], 2, "{raw}");
    let href = items[0]["href"].as_str().context("href")?;
    let raw = agent
        .ipc()?
        .request("calendar.delete", json!({"account": "alice", "href": href}))?;
    assert_eq!(raw["error"]["code"], 2, "{raw}");
    assert_eq!(
        agent.call("ops", json!({"account": "alice"}))?,
        json!([]),
        "nothing journaled"
    );
    assert_eq!(davical.http().members("bob", &bobs)?.len(), 1);
    println!("read proxy on DAViCal: {:?}", began.elapsed());
    Ok(())
}

#[test]
fn write_proxy_writes_into_bobs_calendar() -> Result<()> {
    let began = Instant::now();
    let davical = Davical::start()?;
    let bobs = davical.default_calendar("bob");
    davical.grant_proxy("bob", &["alice"], true)?;
    let agent = alice_on(&davical)?;
    let theirs = listed(&agent, &bobs)?;
    assert_eq!(
        (&theirs["owner"], &theirs["read_only"]),
        (&json!("/caldav.php/bob/"), &json!(false)),
        "{theirs}"
    );
    let d = agent.call("calendar.delegations", json!({"account": "alice"}))?;
    assert_eq!(d["read_for"], json!([]), "{d}");
    assert_eq!(d["write_for"][0]["principal"], "/caldav.php/bob/", "{d}");
    assert_eq!(d["delegates"], json!([]), "{d}");

    let ics = event("for-bob", "20261203T090000Z", "20261203T100000Z", "");
    let put = agent.call(
        "calendar.put",
        json!({"account": "alice", "calendar": bobs, "ics": ics, "wait": true}),
    )?;
    let href = put["href"].as_str().context("href")?;
    let got = davical.http().get("bob", href)?;
    assert_eq!(got.status, 200, "{}", got.text());
    assert!(got.text().contains("SUMMARY:for-bob"), "{}", got.text());
    println!("write proxy on DAViCal: {:?}", began.elapsed());
    Ok(())
}

#[test]
fn free_busy_through_davicals_outbox() -> Result<()> {
    let davical = Davical::start()?;
    let bobs = davical.default_calendar("bob");
    let http = davical.http();
    http.put_event(
        "bob",
        &bobs,
        "standup",
        &event("standup", "20261201T090000Z", "20261201T100000Z", ""),
    )?;
    http.put_event(
        "bob",
        &bobs,
        "maybe",
        &event(
            "maybe",
            "20261201T140000Z",
            "20261201T150000Z",
            "STATUS:TENTATIVE\r\n",
        ),
    )?;
    http.put_event(
        "bob",
        &bobs,
        "elsewhen",
        &event("elsewhen", "20261205T090000Z", "20261205T100000Z", ""),
    )?;
    let agent = alice_on(&davical)?;
    let params = json!({"account": "alice", "attendees": ["bob@localhost"],
        "start": "2026-12-01T00:00:00Z", "end": "2026-12-02T00:00:00Z"});
    let answer = agent.call("calendar.freebusy", params)?;
    let bob = answer["mailto:bob@localhost"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    ensure!(bob.len() == 2, "two periods on that day: {answer}");
    assert_eq!(
        bob[0],
        json!({"start": "2026-12-01T09:00:00+00:00", "end": "2026-12-01T10:00:00+00:00", "type": "busy"})
    );
    assert_eq!(bob[1]["type"], "busy-tentative", "{answer}");
    assert!(
        davical
            .requests_of("alice")
            .iter()
            .any(|r| r == "POST /caldav.php/alice/.out/"),
        "asked through the outbox: {:?}",
        davical.requests_of("alice")
    );
    Ok(())
}

#[test]
fn shared_book_as_global_address_list() -> Result<()> {
    let began = Instant::now();
    let davical = Davical::start()?;
    let dir = davical.create_addressbook("bob", "directory", "Company directory")?;
    let http = davical.http();
    for i in 0..30 {
        let (name, mail) = if i % 3 == 0 {
            (format!("Ann Smith{i}"), format!("ann{i}@example.org"))
        } else {
            (format!("Person {i}"), format!("p{i}@smithfield.example"))
        };
        let vcf =
            format!("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:d{i}\r\nFN:{name}\r\nEMAIL:{mail}\r\nEND:VCARD\r\n");
        http.put_contact("bob", &dir, &format!("d{i}"), &vcf)?;
    }
    davical.grant_read("bob", &dir, "alice")?;

    let mut account = AccountSpec::for_user("alice");
    account.caldav = Some(davical.dav_url());
    account.carddav = Some(davical.dav_url());
    account.gal = Some(davical.url_of(&dir));
    let agent = Agent::start(&render_config(&AgentSettings::default(), &[account]))?;
    agent.wait_for_state("alice", "online", Duration::from_secs(20))?;
    let books = agent.call_until(
        "contacts.books",
        json!({"account": "alice"}),
        Duration::from_secs(20),
        |v| {
            v.as_array()
                .is_some_and(|a| a.iter().any(|b| b["href"] == dir.as_str()))
        },
    )?;
    let gal = books
        .as_array()
        .and_then(|a| a.iter().find(|b| b["href"] == dir.as_str()))
        .context("gal")?;
    assert_eq!(
        (&gal["directory"], &gal["read_only"], &gal["name"]),
        (&json!(true), &json!(true), &json!("Company directory")),
        "{books}"
    );
    let own = books.as_array().and_then(|a| {
        a.iter()
            .find(|b| b["href"] == davical.default_addressbook("alice"))
    });
    assert_eq!(own.map(|b| &b["directory"]), Some(&json!(false)), "{books}");

    // By name: 10 Ann Smiths, limited to 4 by the server.
    let found = agent.call(
        "gal.search",
        json!({"account": "alice", "query": "ann smith", "limit": 4}),
    )?;
    let found = found.as_array().context("array")?;
    assert_eq!(found.len(), 4, "{found:?}");
    assert!(
        found
            .iter()
            .all(|e| e["name"].as_str().is_some_and(|n| n.starts_with("Ann Smith"))),
        "{found:?}"
    );
    // By email, and by a part that is in names and emails alike.
    let by_mail = agent.call(
        "gal.search",
        json!({"account": "alice", "query": "p7@smithfield"}),
    )?;
    assert_eq!(
        by_mail,
        json!([{"name": "Person 7", "emails": ["p7@smithfield.example"], "kind": "individual", "href": format!("{dir}d7.vcf")}])
    );
    let both = agent.call(
        "gal.search",
        json!({"account": "alice", "query": "SMITH", "limit": 100}),
    )?;
    assert_eq!(
        both.as_array().map(Vec::len),
        Some(30),
        "all 30 match by name or email"
    );

    // Never downloaded: nothing of it in the mirror, and the agent only described it once and
    // searched it three times.
    let items = agent.call("contacts.items", json!({"account": "alice", "book": dir}))?;
    assert_eq!(items, json!([]));
    let to_dir: Vec<String> = davical
        .requests_of("alice")
        .into_iter()
        .filter(|r| r.ends_with(&format!(" {dir}")) || r.contains(&format!(" {dir}d")))
        .collect();
    assert_eq!(
        to_dir,
        [
            format!("PROPFIND {dir}"),
            format!("REPORT {dir}"),
            format!("REPORT {dir}"),
            format!("REPORT {dir}")
        ],
    );
    println!("GAL on DAViCal: {:?}", began.elapsed());
    Ok(())
}

/// The report's Groups cell says `yes` for DAViCal: a group written through the agent is stored by
/// DAViCal and reads back as a group with its members, one of whom does not exist.
#[test]
fn a_contact_group_round_trips_through_davical() -> Result<()> {
    let davical = Davical::start()?;
    let book = davical.default_addressbook("alice");
    let agent = alice_on(&davical)?;
    agent.call_until(
        "contacts.books",
        json!({"account": "alice"}),
        Duration::from_secs(20),
        |v| v.as_array().is_some_and(|a| a.iter().any(|b| b["href"] == book)),
    )?;
    let bob = "BEGIN:VCARD\r\nVERSION:4.0\r\nUID:bob\r\nFN:Bob\r\nEMAIL:bob@localhost\r\nEND:VCARD\r\n";
    let team = "BEGIN:VCARD\r\nVERSION:4.0\r\nUID:team\r\nKIND:group\r\nFN:Team\r\n\
                MEMBER:urn:uuid:bob\r\nMEMBER:urn:uuid:nobody-yet\r\nEND:VCARD\r\n";
    for vcf in [bob, team] {
        agent.call(
            "contacts.put",
            json!({"account": "alice", "book": book, "vcf": vcf, "wait": true}),
        )?;
    }
    let stored: Vec<String> = davical
        .http()
        .members("alice", &book)?
        .iter()
        .map(|href| {
            String::from_utf8_lossy(
                &davical
                    .http()
                    .get("alice", href)
                    .map(|r| r.body)
                    .unwrap_or_default(),
            )
            .into_owned()
        })
        .collect();
    ensure!(
        stored
            .iter()
            .any(|v| v.contains("KIND:group") && v.contains("MEMBER:urn:uuid:nobody-yet")),
        "DAViCal keeps the group: {stored:?}"
    );
    let items = agent.call("contacts.items", json!({"account": "alice", "book": book}))?;
    let group = items
        .as_array()
        .and_then(|a| a.iter().find(|i| i["uid"] == "team"))
        .cloned()
        .context("the group is in the mirror")?;
    ensure!(group["kind"] == "group", "{group}");
    let members = group["members"].to_string();
    ensure!(
        members.contains("urn:uuid:bob") && members.contains("urn:uuid:nobody-yet"),
        "{group}"
    );
    Ok(())
}

/// A grant made while the agent runs shows after `opconnect sync`, without waiting for the
/// 10-minute re-read or a restart.
#[test]
fn a_new_grant_shows_after_sync_now() -> Result<()> {
    let davical = Davical::start()?;
    let agent = alice_on(&davical)?;
    let d = agent.call_until(
        "calendar.delegations",
        json!({"account": "alice"}),
        Duration::from_secs(20),
        |v| v.get("checked").is_some_and(|c| !c.is_null()),
    )?;
    ensure!(d["read_for"] == json!([]), "nothing granted yet: {d}");
    davical.grant_proxy("bob", &["alice"], false)?;
    agent.cli_ok(&["sync"])?;
    let d = agent.call_until(
        "calendar.delegations",
        json!({"account": "alice"}),
        Duration::from_secs(10),
        |v| v["read_for"].as_array().is_some_and(|a| a.len() == 1),
    )?;
    ensure!(d["read_for"][0]["principal"] == "/caldav.php/bob/", "{d}");
    listed(&agent, &davical.default_calendar("bob"))?;
    Ok(())
}

/// Issue 22: an empty mirror of 150 events takes their bodies in one streaming calendar-query
/// and nothing else (no listing, no multiget); the mirror holds the bytes DAViCal serves.
#[test]
fn a_first_sync_takes_the_bodies_in_one_query() -> Result<()> {
    let davical = Davical::start()?;
    let cal = davical.default_calendar("alice");
    for i in 0..150 {
        let uid = format!("ev{i:03}");
        let start = format!("202612{:02}T090000Z", 1 + i % 28);
        let end = format!("202612{:02}T100000Z", 1 + i % 28);
        davical
            .http()
            .put_event("alice", &cal, &uid, &event(&uid, &start, &end, ""))?;
    }
    let before = davical.requests_of("alice").len();
    let agent = alice_on(&davical)?;
    let got = agent.call_until(
        "calendar.items",
        json!({"account": "alice", "calendar": cal}),
        Duration::from_secs(60),
        |v| v.as_array().is_some_and(|a| a.len() == 150),
    )?;
    for item in got.as_array().context("items")?.iter().step_by(30) {
        let href = item["href"].as_str().context("href")?;
        let served = davical.http().get("alice", href)?;
        assert_eq!(item["ics"].as_str(), Some(served.text().as_str()), "{href}");
    }
    let reports: Vec<String> = davical.requests_of("alice")[before..]
        .iter()
        .filter(|r| r.starts_with("REPORT") && r.ends_with(&format!(" {cal}")))
        .cloned()
        .collect();
    // The query alone: the token is taken by the next round (README "Change markers").
    assert_eq!(reports.len(), 1, "{reports:?}");
    Ok(())
}
