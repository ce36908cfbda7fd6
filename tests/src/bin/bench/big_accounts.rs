//! Benchmark 9, many accounts: 20 × scale accounts in one agent, each its own Dovecot user
//! (300 messages in three folders, INBOX in IDLE) with a Radicale calendar (100 events) and
//! address book (50 contacts), all through one IMAP and one HTTP counting proxy.
//!
//! ```text
//!   users big01… (passwd files) ─▶ Dovecot + Radicale ◀── proxies ◀─┬─ floor: per account, the
//!                                                                   │  REPORTs and UID FETCHes
//!                                                                   └─ opconnect: N accounts
//!   then: idle window ─▶ calendar.items of big01 ─▶ 10 changes there ─▶ items.changes
//! ```
//! The floor is what a plain client needs to read every account once, one request after the
//! other: per account a calendar-query, an addressbook-query and one `UID FETCH 1:*` per folder.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use serde_json::json;

use opconnect_tests::config::render_config;
use opconnect_tests::http::HttpRequest;
use opconnect_tests::{AccountSpec, Dovecot, Radicale};

use crate::big::{
    CALENDAR_QUERY, CHANGES, Figures, SECTION, after_first_sync, feed_reads, paged_reads, poll_after_changes,
    record_samples, record_with_load, report_floor, thousands,
};
use crate::big_mail::fetch_floor;
use crate::big_seed::{self, Kind};
use crate::driver::Driver;
use crate::proxy::{CountingProxy, Framing};
use crate::results::{Results, summarize};
use crate::{Config, production_settings, seed};

const MESSAGES_PER_FOLDER: usize = 100;
const EVENTS: usize = 100;
const CONTACTS: usize = 50;

pub fn one_size(n: usize, cfg: &Config, results: &mut Results) -> Result<Figures> {
    let dovecot = Dovecot::start()?;
    let radicale = Radicale::start()?;
    let users = big_seed::extra_users(n);
    big_seed::add_users(&dovecot, &radicale, &users)?;
    let began = Instant::now();
    let folders: Vec<String> = seed::mail_folders().into_iter().take(3).collect();
    // Files only: the floor's two passes index the folders before the agent starts (doveadm,
    // several runs per user, would take longer than the whole measurement).
    for (user, _) in &users {
        for folder in &folders {
            dovecot.seed_maildir(
                user,
                folder,
                (0..MESSAGES_PER_FOLDER).map(|i| seed::message(folder, i)),
            )?;
        }
    }
    let collections: Vec<String> = users
        .iter()
        .flat_map(|(u, _)| [format!("/{u}/calendar/"), format!("/{u}/contacts/")])
        .collect();
    big_seed::radicale_cached(&radicale, &format!("accounts-{n}"), &collections, || {
        for (user, _) in &users {
            big_seed::write_collection(
                &radicale,
                user,
                "calendar",
                Kind::Calendar,
                (0..EVENTS).map(seed::event),
            )?;
            big_seed::write_collection(
                &radicale,
                user,
                "contacts",
                Kind::Book,
                (0..CONTACTS).map(seed::contact),
            )?;
        }
        Ok(())
    })?;
    eprintln!("==> big: {n} accounts seeded in {:.1?}", began.elapsed());
    let label = |what: &str| format!("accounts {}: {what}", thousands(n));
    let imap = CountingProxy::start(dovecot.imap_port(), Framing::Imap)?;
    let dav = CountingProxy::start(radicale.port(), Framing::Http)?;

    let folder_refs: Vec<&str> = folders.iter().map(String::as_str).collect();
    let t = Instant::now();
    for (user, pw) in &users {
        let cal = format!("/{user}/calendar/");
        report_floor(dav.port(), user, pw, &cal, CALENDAR_QUERY, "BEGIN:VEVENT", EVENTS)?;
        let book = format!("/{user}/contacts/");
        report_floor(
            dav.port(),
            user,
            pw,
            &book,
            ADDRESSBOOK_QUERY,
            "BEGIN:VCARD",
            CONTACTS,
        )?;
        fetch_floor(
            imap.port(),
            user,
            pw,
            &folder_refs,
            MESSAGES_PER_FOLDER * folders.len(),
        )?;
    }
    // Each floor above ran twice (one warm-up): the pass of one plain client is half of it.
    let floor = t.elapsed().as_secs_f64() / 2.0;
    record_with_load(
        results,
        &label("floor: every account's REPORTs and UID FETCHes, one after the other"),
        "s",
        floor,
    );

    let accounts: Vec<AccountSpec> = users
        .iter()
        .map(|(user, pw)| {
            let mut a = AccountSpec {
                name: user.clone(),
                email: format!("{user}@localhost"),
                username: Some(user.clone()),
                ..AccountSpec::default()
            }
            .password(pw);
            a.imap = Some(imap.imap_url());
            a.caldav = Some(dav.http_url());
            a.carddav = Some(dav.http_url());
            a
        })
        .collect();
    let services: Vec<(&str, &str)> = users
        .iter()
        .flat_map(|(u, _)| {
            [
                (u.as_str(), "imap"),
                (u.as_str(), "caldav"),
                (u.as_str(), "carddav"),
            ]
        })
        .collect();
    let mut d = Driver::launch(&render_config(&production_settings(), &accounts))?;
    // A small account may finish its first round before the subscription is in place; `sync`
    // right away makes every service report again once its round is over (at worst one
    // no-change round late), instead of at its next poll five minutes on.
    d.call("sync", json!({}))?;
    let done = d
        .wait_synced(&services, Duration::from_secs(3600))
        .context("the first sync of every account")?;
    let first = (done - d.started).as_secs_f64();
    record_with_load(
        results,
        &label("opconnect first sync of every account"),
        "s",
        first,
    );
    results.record(
        SECTION,
        &label("first sync ÷ the plain client's pass"),
        "×",
        first / floor,
    );
    let (first_user, first_pw) = &users[0];
    let calendar = format!("/{first_user}/calendar/");
    // The cursor after the first sync, from the feed itself (its event may predate the tap).
    let all = d.call(
        "items.changes",
        json!({"account": first_user, "collection": calendar, "limit": 1000}),
    )?;
    let added = all["items"].as_array().map_or(0, Vec::len);
    ensure!(
        added == EVENTS && all["more"] == false,
        "{first_user}: {added} events mirrored, expected {EVENTS}"
    );
    let cursor = all["cursor"]
        .as_str()
        .context("no cursor in items.changes")?
        .to_string();
    let mut f = after_first_sync(&mut d, &[&imap, &dav], cfg, results, &label(""))?;
    results.record(SECTION, &label("RSS per account"), "MB", f.rss_mb / n as f64);
    f.size = n;
    f.first_sync_s = first;
    f.floor_s = floor;

    let page = json!({"account": first_user, "calendar": calendar, "limit": 200});
    let (first_page, _) = paged_reads(&mut d, "calendar.items", page)?;
    record_samples(
        results,
        &label("calendar.items of one account, page of 200"),
        &first_page,
    );
    f.page_ms = summarize(&first_page).median;

    for k in 0..CHANGES {
        let (uid, ics) = seed::event(k * EVENTS / CHANGES);
        let ics = ics.replacen("SUMMARY:", "SUMMARY:changed ", 1);
        let href = format!("{calendar}{uid}.ics");
        let r = HttpRequest::new("PUT", &href)
            .auth(first_user, first_pw)
            .header("Content-Type", "text/calendar; charset=utf-8")
            .body(ics.as_bytes())
            .send(radicale.port())
            .with_context(|| format!("changing {uid}"))?;
        ensure!(matches!(r.status, 201 | 204), "PUT {href}: HTTP {}", r.status);
    }
    let one: Vec<(&str, &str)> = services
        .iter()
        .filter(|(u, _)| u == first_user)
        .copied()
        .collect();
    let poll = poll_after_changes(&mut d, first_user, &one)?;
    record_with_load(results, &label("sync of one account after 10 changes"), "s", poll);
    let feed = feed_reads(&mut d, first_user, &calendar, &cursor)?;
    record_samples(results, &label("items.changes after 10 changes"), &feed);
    f.feed_ms = summarize(&feed).median;
    Ok(f)
}

const ADDRESSBOOK_QUERY: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<C:addressbook-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav"><D:prop><D:getetag/><C:address-data/></D:prop><C:filter/></C:addressbook-query>"#;
