//! Compressed answers (issue 22) through Apache's mod_deflate in front of Radicale: the first
//! sync's streamed REPORT comes gzip-compressed and is read whole, while GETs and writes ask for
//! `identity`, so the ETags the agent holds are Radicale's own and an If-Match write succeeds;
//! a change made on the server is still found.
//!
//! ```text
//!   agent ──PROPFIND/REPORT, Accept-Encoding: gzip──► apache2 (mod_deflate) ──► Radicale
//!         ──PUT If-Match, Accept-Encoding: identity──►   (a gzip GET's ETag gets "-gzip")
//! ```

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use opconnect_tests::apache::DeflateFront;
use opconnect_tests::config::render_config;
use opconnect_tests::http::HttpRequest;
use opconnect_tests::{AccountSpec, Agent, AgentSettings, DavServer, password_of};
use serde_json::{Value, json};

/// Enough events that the calendar's answer is tens of kilobytes, well worth compressing.
const EVENTS: usize = 150;

fn event(uid: &str, summary: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//opconnect//test//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n\
         DTSTAMP:20261123T000000Z\r\nDTSTART:20261201T090000Z\r\nDURATION:PT1H\r\nSUMMARY:{summary}\r\n\
         DESCRIPTION:Quarterly planning with the whole team; bring the figures of the last quarter\r\n\
         LOCATION:Meeting room 4\\, second floor\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
}

fn items(agent: &Agent, calendar: &str) -> Result<Vec<Value>> {
    Ok(agent
        .call(
            "calendar.items",
            json!({"account": "alice", "calendar": calendar}),
        )?
        .as_array()
        .cloned()
        .unwrap_or_default())
}

/// `(method, path, encoding, bytes, etag)` of each line of the front's access log.
fn log_lines(front: &DeflateFront) -> Vec<(String, String, String, u64, String)> {
    front
        .access_log()
        .lines()
        .filter_map(|l| {
            let mut request = l.split('"').nth(1)?.split(' ');
            let (method, path) = (request.next()?.to_owned(), request.next()?.to_owned());
            let field = |name: &str| {
                l.split(' ')
                    .find_map(|w| w.strip_prefix(name))
                    .unwrap_or("")
                    .to_owned()
            };
            let bytes = field("bytes=").parse().unwrap_or(0);
            Some((method, path, field("enc="), bytes, field("etag=")))
        })
        .collect()
}

#[test]
fn compressed_listings_keep_etags_and_conditional_writes_right() -> Result<()> {
    let front = DeflateFront::start()?;
    let radicale = &front.radicale;
    let cal = radicale.create_calendar("alice", "work", "Work")?;
    let mut seeded = 0;
    for i in 0..EVENTS {
        let ics = event(&format!("ev-{i}"), &format!("Planning {i}"));
        seeded += ics.len();
        radicale.put_event("alice", &cal, &format!("ev-{i}"), &ics)?;
    }

    // The trap this design avoids: a GET asking for gzip gets an ETag Apache altered, and a write
    // conditional on it fails although nothing changed.
    let (user, password) = ("alice", password_of("alice"));
    let href = format!("{cal}ev-0.ics");
    let gzip_get = HttpRequest::new("GET", &href)
        .auth(user, password)
        .header("Accept-Encoding", "gzip")
        .send(front.port())?;
    let altered = gzip_get.header("ETag").unwrap_or_default().to_owned();
    ensure!(
        gzip_get.header("Content-Encoding") == Some("gzip") && altered.ends_with("-gzip\""),
        "mod_deflate compresses a GET and alters its ETag: {altered} {:?}",
        gzip_get.header("Content-Encoding")
    );
    let stale = HttpRequest::new("PUT", &href)
        .auth(user, password)
        .header("If-Match", &altered)
        .header("Content-Type", "text/calendar; charset=utf-8")
        .body(event("ev-0", "Planning 0").as_bytes())
        .send(front.port())?;
    ensure!(
        stale.status == 412,
        "If-Match with the altered ETag: {}",
        stale.status
    );

    let mut spec = AccountSpec::for_user("alice");
    spec.caldav = Some(front.url());
    let settings = AgentSettings {
        dav_poll_interval: "1h".into(),
        ..AgentSettings::default()
    };
    let agent = Agent::start(&render_config(&settings, &[spec]))?;
    agent.wait_for(Duration::from_secs(60), |_| {
        items(&agent, &cal).is_ok_and(|i| i.len() == EVENTS)
    })?;

    // The first sync's data came compressed, in fewer bytes than the events themselves.
    let lines = log_lines(&front);
    let reports: Vec<_> = lines
        .iter()
        .filter(|(m, p, ..)| m == "REPORT" && *p == cal)
        .collect();
    ensure!(!reports.is_empty(), "no REPORT on {cal}:\n{}", front.access_log());
    ensure!(
        reports.iter().all(|(_, _, enc, ..)| enc == "gzip"),
        "every REPORT answer compressed:\n{}",
        front.access_log()
    );
    let compressed: u64 = reports.iter().map(|(_, _, _, b, _)| b).sum();
    ensure!(
        compressed * 3 < seeded as u64,
        "{compressed} compressed bytes for {seeded} bytes of events:\n{}",
        front.access_log()
    );
    ensure!(
        lines
            .iter()
            .filter(|(m, ..)| m == "PROPFIND")
            .all(|(_, _, enc, ..)| enc == "gzip" || enc == "-"),
        "{}",
        front.access_log()
    );
    eprintln!("first sync: {compressed} bytes of REPORT answers for {seeded} bytes of events");

    // Edits through the agent: If-Match with the etag from the compressed listing, then with
    // the one the first write's answer gave, both succeed.
    let before = front.access_log().lines().count();
    let href = format!("{cal}ev-7.ics");
    for summary in ["Moved once", "Moved by opconnect"] {
        agent.call(
            "calendar.put",
            json!({"account": "alice", "calendar": cal, "href": href, "ics": event("ev-7", summary), "wait": true}),
        )?;
    }
    let got = radicale.get("alice", &href)?;
    ensure!(
        got.text().contains("SUMMARY:Moved by opconnect"),
        "the edit reached Radicale: {}",
        got.text()
    );
    let after = log_lines(&front).split_off(before);
    ensure!(
        after.iter().any(|(m, p, _, _, _)| m == "PUT" && *p == href),
        "{after:?}"
    );
    ensure!(
        after
            .iter()
            .all(|(m, _, enc, ..)| !matches!(m.as_str(), "GET" | "PUT") || enc == "-"),
        "GETs and writes travel uncompressed: {after:?}"
    );
    ensure!(
        agent
            .call("conflicts.list", json!({}))?
            .as_array()
            .is_some_and(Vec::is_empty),
        "no conflict"
    );
    ensure!(
        !front
            .access_log()
            .lines()
            .skip(before)
            .any(|l| l.contains("\" 412 ")),
        "no 412:\n{}",
        front.access_log()
    );

    // A change on the server is found by the next (compressed) sync.
    radicale.put_event("alice", &cal, "ev-9", &event("ev-9", "Changed on the server"))?;
    agent.call("sync", json!({"account": "alice"}))?;
    agent.wait_for(Duration::from_secs(30), |_| {
        items(&agent, &cal).is_ok_and(|list| {
            list.iter()
                .any(|i| i["summary"].as_str() == Some("Changed on the server"))
        })
    })?;
    let list = items(&agent, &cal)?;
    let moved = list
        .iter()
        .find(|i| i["href"].as_str() == Some(href.as_str()))
        .context("ev-7 in the mirror")?;
    ensure!(
        moved["summary"] == "Moved by opconnect" && list.len() == EVENTS,
        "{moved}"
    );

    // A real conflict: the agent reads the server's version by GET (uncompressed, so with
    // Radicale's own ETag), and keeping the local version writes over it with that ETag.
    let href = format!("{cal}ev-3.ics");
    agent.cli_ok(&["pause"])?;
    agent.call(
        "calendar.put",
        json!({"account": "alice", "calendar": cal, "href": href, "ics": event("ev-3", "mine")}),
    )?;
    radicale.put_event("alice", &cal, "ev-3", &event("ev-3", "theirs"))?;
    let mut conflicts = agent.watch(&["conflict"])?;
    let before = front.access_log().lines().count();
    agent.cli_ok(&["resume"])?;
    conflicts.wait_topic("conflict", Duration::from_secs(30))?;
    let list = agent.call("conflicts.list", json!({}))?;
    let id = list[0]["id"].as_u64().context("a conflict")?;
    agent.cli_ok(&["conflicts", "resolve", &id.to_string(), "--keep", "local"])?;
    agent.wait_for(Duration::from_secs(30), |s| {
        s["accounts"][0]["pending_ops"] == 0 && s["accounts"][0]["conflicts"] == 0
    })?;
    let got = radicale.get("alice", &href)?;
    ensure!(
        got.text().contains("SUMMARY:mine"),
        "keep local reached Radicale through the front:\n{}\n{}",
        got.text(),
        front.access_log()
    );
    let after = log_lines(&front).split_off(before);
    ensure!(
        after
            .iter()
            .any(|(m, p, enc, ..)| m == "GET" && *p == href && enc == "-"),
        "the server's version was read uncompressed: {after:?}"
    );
    Ok(())
}
