//! End-to-end tests of the item model's change feed and paged reads (issue 16) against a private
//! Radicale: `items.changes` pages and cursors, `calendar.items`/`contacts.items` paging and the
//! frame limit, one form of hrefs, task lists, and the 20,000-item collections of the issue.
//!
//! ```text
//!   Radicale storage (seeded as files, caches warmed by Radicale's own code, kept in the
//!   bench cache) ◀── opconnect run ◀── RawIpc items.changes {cursor, limit} page by page
//! ```

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use opconnect_tests::config::render_config;
use opconnect_tests::ipc::error_code;
use opconnect_tests::{AccountSpec, Agent, AgentSettings, DavServer, Radicale};
use serde_json::{Value, json};

const FRAME: usize = 16 << 20;

fn dav_agent(radicale: &Radicale) -> Result<Agent> {
    let settings = AgentSettings {
        dav_poll_interval: "5m".into(),
        ..AgentSettings::default()
    };
    let config = render_config(&settings, &[AccountSpec::for_user("alice").dav_from(radicale)]);
    let agent = Agent::start(&config)?;
    agent.wait_for_state("alice", "online", Duration::from_secs(20))?;
    Ok(agent)
}

fn event(uid: &str, summary: &str, start: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//opconnect tests//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n\
         DTSTAMP:20260101T000000Z\r\nDTSTART:{start}\r\nDURATION:PT1H\r\nSUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
}

fn todo(uid: &str, summary: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//opconnect tests//EN\r\nBEGIN:VTODO\r\nUID:{uid}\r\n\
         DTSTAMP:20260101T000000Z\r\nSUMMARY:{summary}\r\nEND:VTODO\r\nEND:VCALENDAR\r\n"
    )
}

/// A deterministic "JPEG" of `n` bytes, base64 and folded as vCard 3 writes it.
fn photo_line(i: usize, n: usize) -> String {
    use base64::Engine;
    let mut x = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let bytes: Vec<u8> = (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
    let content = format!("PHOTO;ENCODING=b;TYPE=JPEG:{b64}");
    let mut out = String::new();
    let mut rest = content.as_str();
    let mut first = true;
    while !rest.is_empty() {
        let take = rest.len().min(if first { 75 } else { 74 });
        if !first {
            out.push(' ');
        }
        out.push_str(&rest[..take]);
        out.push_str("\r\n");
        rest = &rest[take..];
        first = false;
    }
    out
}

fn contact(i: usize) -> (String, String) {
    let uid = format!("c{i:05}");
    let vcf = format!(
        "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:Person {i}\r\nN:{i};Person;;;\r\n\
         EMAIL;TYPE=INTERNET:p{i}@example.org\r\n{}END:VCARD\r\n",
        photo_line(i, 1200)
    );
    (uid, vcf)
}

/// Radicale's storage of `user`'s collection `slug`, created over HTTP first.
fn collection_dir(radicale: &Radicale, user: &str, slug: &str) -> std::path::PathBuf {
    radicale
        .dir()
        .join("collections/collection-root")
        .join(user)
        .join(slug)
}

/// Radicale parses each item with vobject into `.Radicale.cache/item` the first time it is
/// listed (about 8 ms an item here: minutes for 20,000) and keeps a sync history. This writes
/// those cache entries directly, with Radicale's own hash, etag and cache layout
/// (storage/multifilesystem/cache.py: the pickled `(hash, uid, etag, text, name, tag, start, end)`
/// with the file's own text and the widest time range, which Radicale's prefilter always lets
/// through), then lets Radicale's storage code build the sync history from them without fsync.
/// Radicale then serves the files' bytes as they are.
const WARM_PY: &str = r#"
import os, pickle, sys
from hashlib import sha256
from radicale import config, storage
from radicale.item import get_etag
from radicale.item import filter as radicale_filter
configuration = config.load([(sys.argv[1], False)])
configuration.update({"storage": {"_filesystem_fsync": "False"}}, "tests", privileged=True)
st = storage.load(configuration)
path, folder, tag = sys.argv[2], sys.argv[3], sys.argv[4]
cache = os.path.join(folder, ".Radicale.cache", "item")
os.makedirs(cache, exist_ok=True)
name = "VCARD" if tag == "VCARD" else "VCALENDAR"
tag = "" if tag == "VCARD" else tag
for href in os.listdir(folder):
    if href.startswith("."):
        continue
    with open(os.path.join(folder, href), "rb") as f:
        raw = f.read()
    digest = sha256()
    digest.update(storage.CACHE_VERSION)
    digest.update(raw)
    text = raw.decode()
    uid = next(l[4:] for l in text.split("\r\n") if l.startswith("UID:"))
    entry = (digest.hexdigest(), uid, get_etag(text), text, name, tag,
             radicale_filter.TIMESTAMP_MIN, radicale_filter.TIMESTAMP_MAX)
    with open(os.path.join(cache, href), "wb") as f:
        pickle.dump(entry, f)
with st.acquire_lock("w"):
    (collection,) = st.discover(path, depth="0")
    collection.sync()
"#;

fn warm(radicale: &Radicale, collection: &str, folder: &Path, tag: &str) -> Result<()> {
    let folder = folder.to_str().context("the folder's path is not UTF-8")?;
    radicale.run_python(WARM_PY, &[collection, folder, tag])
}

/// Fills collection `slug` of alice with `n` items written as files, and warms Radicale's caches.
/// 60,000 small files (items, item cache, sync history) cost minutes on a busy disk, to write and
/// again to remove: the collection's directory lives on tmpfs (/dev/shm, when there is one),
/// linked from Radicale's storage, and goes away with the returned guard.
fn seed(
    radicale: &Radicale,
    slug: &str,
    n: usize,
    item: impl Fn(usize) -> (String, String),
    ext: &str,
) -> Result<Option<tempfile::TempDir>> {
    let dir = collection_dir(radicale, "alice", slug);
    ensure!(dir.join(".Radicale.props").is_file(), "no {}", dir.display());
    let shm = Path::new("/dev/shm");
    let (guard, target) = if shm.is_dir() {
        let guard = tempfile::Builder::new().prefix("opc-items").tempdir_in(shm)?;
        let target = guard.path().join(slug);
        fs::create_dir(&target)?;
        fs::copy(dir.join(".Radicale.props"), target.join(".Radicale.props"))?;
        fs::remove_dir_all(&dir)?;
        std::os::unix::fs::symlink(&target, &dir)?;
        (Some(guard), target)
    } else {
        (None, dir)
    };
    for i in 0..n {
        let (uid, body) = item(i);
        fs::write(target.join(format!("{uid}.{ext}")), body)?;
    }
    let tag = if ext == "vcf" { "VCARD" } else { "VEVENT" };
    warm(radicale, &format!("/alice/{slug}/"), &target, tag)?;
    Ok(guard)
}

/// One `items.changes` page over a raw connection, with the size of the whole answer.
fn page(
    agent: &Agent,
    collection: &str,
    cursor: Option<&str>,
    limit: Option<usize>,
) -> Result<(Value, usize)> {
    let mut params = json!({"account": "alice", "collection": collection});
    if let Some(c) = cursor {
        params["cursor"] = c.into();
    }
    if let Some(l) = limit {
        params["limit"] = l.into();
    }
    let mut ipc = agent.ipc()?;
    let answer = ipc.request("items.changes", params)?;
    let size = answer.to_string().len();
    let result = answer
        .get("result")
        .cloned()
        .with_context(|| format!("items.changes failed: {answer}"))?;
    Ok((result, size))
}

/// What [`read_all`] gathered: items, removed hrefs, the final cursor, pages, largest answer.
type FeedRead = (Vec<Value>, Vec<String>, String, usize, usize);

/// Every page from `cursor` on: (items, removed hrefs, final cursor, pages, largest answer).
fn read_all(agent: &Agent, collection: &str, cursor: Option<&str>, limit: Option<usize>) -> Result<FeedRead> {
    let (mut items, mut removed, mut pages, mut largest) = (Vec::new(), Vec::new(), 0, 0);
    let mut cursor = cursor.map(str::to_owned);
    loop {
        let (p, size) = page(agent, collection, cursor.as_deref(), limit)?;
        pages += 1;
        largest = largest.max(size);
        items.extend(p["items"].as_array().cloned().unwrap_or_default());
        removed.extend(
            p["removed"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|h| h.as_str().map(str::to_owned)),
        );
        cursor = Some(p["cursor"].as_str().context("cursor")?.to_owned());
        if p["more"] != true {
            break;
        }
        ensure!(pages < 10_000, "the feed never ends");
    }
    Ok((items, removed, cursor.unwrap_or_default(), pages, largest))
}

/// `opconnect sync`, then the `synced` event of `service` (the mirror has caught up).
fn sync_and_wait(agent: &Agent, service: &str) -> Result<()> {
    let mut ipc = agent.ipc()?;
    ipc.subscribe(&["synced"])?;
    agent.cli_ok(&["sync", "alice"])?;
    wait_event(&mut ipc, 60, |e| is_synced(e, service)).map(|_| ())
}

/// Whether an event (its flat `params`) says `service` caught up.
fn is_synced(e: &Value, service: &str) -> bool {
    e["topic"] == "synced" && e["service"] == service
}

/// The next event for which `pred` holds, within `secs`.
fn wait_event(ipc: &mut opconnect_tests::RawIpc, secs: u64, pred: impl Fn(&Value) -> bool) -> Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if let Some(e) = ipc.next_event(Duration::from_secs(1))?
            && pred(&e)
        {
            return Ok(e);
        }
    }
    anyhow::bail!("the event did not come within {secs} s")
}

#[test]
fn the_feed_pages_follows_server_changes_and_resets_on_a_bad_cursor() -> Result<()> {
    let radicale = Radicale::start()?;
    let cal = radicale.create_calendar_for("alice", "work", "Work", &["VEVENT", "VTODO"])?;
    for i in 0..25 {
        radicale.put_event(
            "alice",
            &cal,
            &format!("ev{i:02}"),
            &event(&format!("ev{i:02}"), &format!("E{i}"), "20260301T100000Z"),
        )?;
    }
    radicale.put_event("alice", &cal, "todo1", &todo("todo1", "Buy milk"))?;
    let agent = dav_agent(&radicale)?;
    agent.call_until(
        "calendar.items",
        json!({"account": "alice", "calendar": cal}),
        Duration::from_secs(30),
        |v| v.as_array().is_some_and(|a| a.len() == 26),
    )?;
    // Pages of 7: 26 items in 4 pages, none repeated, every one with its class.
    let (items, removed, cursor, pages, _) = read_all(&agent, &cal, None, Some(7))?;
    assert_eq!((items.len(), removed.len(), pages), (26, 0, 4));
    let mut hrefs: Vec<&str> = items.iter().map(|i| i["href"].as_str().unwrap()).collect();
    hrefs.sort();
    hrefs.dedup();
    assert_eq!(hrefs.len(), 26);
    for i in &items {
        assert!(i["etag"].as_str().is_some_and(|e| !e.is_empty()), "{i}");
        assert!(i.get("fields").is_some() || i.get("error").is_some(), "{i}");
    }
    // The VTODO of a VEVENT+VTODO calendar is a task; the rest are appointments.
    let classes: Vec<&str> = items.iter().map(|i| i["class"].as_str().unwrap()).collect();
    assert_eq!(classes.iter().filter(|c| **c == "task").count(), 1);
    assert_eq!(classes.iter().filter(|c| **c == "appointment").count(), 25);
    // Nothing new: an empty page.
    let (p, _) = page(&agent, &cal, Some(&cursor), None)?;
    assert_eq!(
        (p["items"].as_array().unwrap().len(), p["more"].as_bool()),
        (0, Some(false))
    );
    // Two changes and a removal on the server: exactly three entries after the next poll.
    let mut ipc = agent.ipc()?;
    ipc.subscribe(&["calendar.changed", "synced"])?;
    radicale.put_event("alice", &cal, "ev03", &event("ev03", "Moved", "20260302T100000Z"))?;
    radicale.put_event("alice", &cal, "new1", &event("new1", "Fresh", "20260303T100000Z"))?;
    radicale.delete("alice", &format!("{cal}ev07.ics"))?;
    agent.cli_ok(&["sync", "alice"])?;
    let changed = wait_event(&mut ipc, 30, |e| e["topic"] == "calendar.changed")?;
    let data = &changed;
    assert_eq!(data["collection"], cal.as_str(), "{changed}");
    let event_cursor = data["cursor"]
        .as_str()
        .context("calendar.changed carries a cursor")?;
    let (items, removed, after, _, _) = read_all(&agent, &cal, Some(&cursor), None)?;
    let mut got: Vec<&str> = items.iter().map(|i| i["href"].as_str().unwrap()).collect();
    got.sort();
    assert_eq!(got, vec![format!("{cal}ev03.ics"), format!("{cal}new1.ics")]);
    assert_eq!(removed, vec![format!("{cal}ev07.ics")]);
    assert_eq!(after, event_cursor, "the event's cursor is the newest one");
    // calendar.items: unpaged, still the array of INTERFACE §4; paged, the same items in pages.
    let all = agent.call("calendar.items", json!({"account": "alice", "calendar": cal}))?;
    assert_eq!(all.as_array().map(Vec::len), Some(26));
    let (mut paged, mut cursor_items, mut pages) = (0, None::<String>, 0);
    loop {
        let mut params = json!({"account": "alice", "calendar": cal, "limit": 10});
        if let Some(c) = &cursor_items {
            params["cursor"] = c.clone().into();
        }
        let p = agent.call("calendar.items", params)?;
        paged += p["items"].as_array().context("items")?.len();
        pages += 1;
        if p["more"] != true {
            break;
        }
        cursor_items = p["cursor"].as_str().map(str::to_owned);
    }
    assert_eq!((paged, pages), (26, 3));
    // items.delete goes through the journal with If-Match; the feed then holds its tombstone.
    let href = format!("{cal}ev11.ics");
    let item = agent.call("items.get", json!({"account": "alice", "href": href}))?;
    agent.call(
        "items.delete",
        json!({"account": "alice", "href": href, "etag": item["etag"], "wait": true}),
    )?;
    assert!(!radicale.members("alice", &cal)?.contains(&href));
    let (_, removed, _, _, _) = read_all(&agent, &cal, Some(&after), None)?;
    assert_eq!(removed, vec![href.clone()]);
    // A cursor the agent never handed out starts over, and says so.
    let (p, _) = page(&agent, &cal, Some("garbage"), Some(1000))?;
    assert_eq!(p["reset"], true);
    assert_eq!(p["items"].as_array().unwrap().len(), 25);
    Ok(())
}

#[test]
fn a_uid_with_an_at_sign_is_listed_once_after_the_next_poll() -> Result<()> {
    let radicale = Radicale::start()?;
    let cal = radicale.create_calendar("alice", "work", "Work")?;
    let agent = dav_agent(&radicale)?;
    agent.call_until(
        "calendar.list",
        json!({"account": "alice"}),
        Duration::from_secs(20),
        |v| {
            v.as_array()
                .is_some_and(|a| a.iter().any(|c| c["href"] == cal.as_str()))
        },
    )?;
    let uid = "meeting-42@example.org";
    let put = agent.call(
        "calendar.put",
        json!({"account": "alice", "calendar": cal, "ics": event(uid, "At", "20260301T100000Z"), "wait": true}),
    )?;
    let href = put["href"].as_str().context("href")?.to_owned();
    assert_eq!(href, format!("{cal}{uid}.ics"));
    // Radicale lists it as meeting-42%40example.org.ics.
    let members = radicale.members("alice", &cal)?;
    assert!(members.iter().any(|m| m.contains("%40")), "{members:?}");
    sync_and_wait(&agent, "caldav")?;
    let items = agent.call("calendar.items", json!({"account": "alice", "calendar": cal}))?;
    let items = items.as_array().unwrap();
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["href"], href.as_str());
    let (feed, _, _, _, _) = read_all(&agent, &cal, None, None)?;
    assert_eq!(feed.len(), 1);
    // The href the server spells with %40 finds the same item.
    let got = agent.call(
        "items.get",
        json!({"account": "alice", "href": format!("{cal}meeting-42%40example.org.ics")}),
    )?;
    assert_eq!(got["href"], href.as_str());
    assert!(got["etag"].as_str().is_some_and(|e| !e.is_empty()));
    Ok(())
}

#[test]
fn a_create_repeated_with_its_global_uid_makes_one_item() -> Result<()> {
    let radicale = Radicale::start()?;
    let cal = radicale.create_calendar("alice", "work", "Work")?;
    let agent = dav_agent(&radicale)?;
    agent.call_until(
        "calendar.list",
        json!({"account": "alice"}),
        Duration::from_secs(20),
        |v| {
            v.as_array()
                .is_some_and(|a| a.iter().any(|c| c["href"] == cal.as_str()))
        },
    )?;
    let fields = json!({"GlobalUid": "outlook-0042", "Subject": "Once", "Start": "2026-03-02T09:00:00",
        "End": "2026-03-02T10:00:00", "StartTimeZone": "W. Europe Standard Time", "EndTimeZone": "W. Europe Standard Time"});
    let params = json!({"account": "alice", "collection": cal, "class": "appointment", "fields": fields, "wait": true});
    let first = agent.call("items.create", params.clone())?;
    assert_eq!(first["uid"], "outlook-0042");
    assert_eq!(first["href"], format!("{cal}outlook-0042.ics").as_str());
    // The add-in lost the answer and asks again: the same resource, nothing new written.
    let again = agent.call("items.create", params)?;
    assert_eq!(again["href"], first["href"]);
    assert_eq!(again["exists"], true);
    let members = radicale.members("alice", &cal)?;
    assert_eq!(members.len(), 1, "{members:?}");
    Ok(())
}

#[test]
fn a_tasks_named_calendar_is_a_task_list_whatever_else_it_supports() -> Result<()> {
    let radicale = Radicale::start()?;
    let tasks = radicale.create_calendar_for("alice", "t", "My Tasks", &["VEVENT", "VTODO"])?;
    let cal = radicale.create_calendar_for("alice", "c", "Home", &["VEVENT", "VTODO"])?;
    let agent = dav_agent(&radicale)?;
    let list = agent.call_until(
        "calendar.list",
        json!({"account": "alice"}),
        Duration::from_secs(20),
        |v| v.as_array().is_some_and(|a| a.len() >= 2),
    )?;
    let kind = |href: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|c| c["href"] == href)
            .map(|c| c["kind"].clone())
    };
    assert_eq!(kind(&tasks), Some(json!("tasks")));
    assert_eq!(kind(&cal), Some(json!("calendar")));
    Ok(())
}

#[test]
fn twenty_thousand_contacts_with_photos_are_read_page_by_page() -> Result<()> {
    let began = Instant::now();
    let radicale = Radicale::start()?;
    let book = radicale.create_addressbook("alice", "contacts", "Contacts")?;
    let _seeded = seed(&radicale, "contacts", 20_000, contact, "vcf")?;
    println!("seeded in {:?}", began.elapsed());
    let agent = dav_agent(&radicale)?;
    let mut ipc = agent.ipc()?;
    ipc.subscribe(&["synced"])?;
    wait_event(&mut ipc, 120, |e| is_synced(e, "carddav"))?;
    println!("synced in {:?}", began.elapsed());
    // Unpaged, the book would not fit in a frame: the agent says to page instead of failing.
    let answer = ipc.request("contacts.items", json!({"account": "alice", "book": book}))?;
    assert_eq!(
        error_code(&answer),
        Some(-32602),
        "{}",
        &answer.to_string()[..200.min(answer.to_string().len())]
    );
    assert_eq!(answer["error"]["data"]["page"], true);
    // Paged, with the default and the largest limit: every contact once, no answer near a frame.
    let (items, removed, _, pages, largest) = read_all(&agent, &book, None, Some(1000))?;
    println!(
        "items.changes: {pages} pages, largest answer {largest} bytes, at {:?}",
        began.elapsed()
    );
    assert_eq!((items.len(), removed.len()), (20_000, 0));
    assert!(largest < FRAME / 2, "largest answer {largest}");
    assert!(items.iter().all(|i| i["class"] == "contact"));
    let mut uids: Vec<&str> = items.iter().map(|i| i["href"].as_str().unwrap()).collect();
    uids.sort();
    uids.dedup();
    assert_eq!(uids.len(), 20_000);
    // contacts.items pages too, its own way (limit/cursor, INTERFACE shapes inside `items`).
    let mut cursor: Option<String> = None;
    let mut seen = 0;
    loop {
        let mut params = json!({"account": "alice", "book": book, "limit": 1000});
        if let Some(c) = &cursor {
            params["cursor"] = c.clone().into();
        }
        let answer = ipc.request("contacts.items", params)?;
        assert!(answer.to_string().len() < FRAME);
        let p = &answer["result"];
        let got = p["items"].as_array().context("items")?;
        ensure!(
            !got.is_empty() || p["more"] == false,
            "an empty page that says more"
        );
        seen += got.len();
        if p["more"] != true {
            break;
        }
        cursor = Some(p["cursor"].as_str().context("cursor")?.to_owned());
    }
    assert_eq!(seen, 20_000);
    // The photo comes on its own.
    let photo = ipc.call(
        "contacts.photo",
        json!({"account": "alice", "href": format!("{book}c00042.vcf")}),
    )?;
    assert_eq!(photo["mime"], "image/jpeg");
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD.decode(photo["data"].as_str().unwrap())?;
    assert_eq!(bytes.len(), 1200);
    println!("done in {:?}", began.elapsed());
    Ok(())
}

fn big_event(i: usize) -> (String, String) {
    let uid = format!("ev{i:05}");
    let body = event(
        &uid,
        &format!("Event {i}"),
        &format!("2026{:02}{:02}T{:02}0000Z", 1 + i % 12, 1 + i % 28, 8 + i % 10),
    );
    (uid, body)
}

#[test]
fn ten_server_changes_in_twenty_thousand_events_are_ten_feed_entries() -> Result<()> {
    let began = Instant::now();
    let radicale = Radicale::start()?;
    let cal = radicale.create_calendar("alice", "big", "Big")?;
    let _seeded = seed(&radicale, "big", 20_000, big_event, "ics")?;
    println!("seeded in {:?}", began.elapsed());
    let agent = dav_agent(&radicale)?;
    let mut ipc = agent.ipc()?;
    ipc.subscribe(&["synced"])?;
    wait_event(&mut ipc, 120, |e| is_synced(e, "caldav"))?;
    println!("synced in {:?}", began.elapsed());
    let (all, _, cursor, pages, largest) = read_all(&agent, &cal, None, Some(1000))?;
    assert_eq!(all.len(), 20_000);
    println!(
        "read the feed in {pages} pages (largest {largest} bytes) at {:?}",
        began.elapsed()
    );
    // Eight changed and two removed on the server.
    for i in 0..8 {
        let (uid, _) = big_event(i * 2_000 + 1);
        radicale.put_event("alice", &cal, &uid, &event(&uid, "Changed", "20261201T100000Z"))?;
    }
    for i in 0..2 {
        let (uid, _) = big_event(i * 2_000 + 7);
        radicale.delete("alice", &format!("{cal}{uid}.ics"))?;
    }
    sync_and_wait(&agent, "caldav")?;
    // Timed five times over the raw socket (the machine may be busy): the best and the worst.
    let mut times = Vec::new();
    let mut answer = Value::Null;
    for _ in 0..5 {
        let started = Instant::now();
        answer = ipc.call(
            "items.changes",
            json!({"account": "alice", "collection": cal, "cursor": cursor}),
        )?;
        times.push(started.elapsed());
    }
    times.sort();
    let took = times[0];
    println!(
        "items.changes with 10 changes in 20,000 events: best {took:?}, worst {:?}",
        times[4]
    );
    let items = answer["items"].as_array().context("items")?;
    let removed = answer["removed"].as_array().context("removed")?;
    assert_eq!((items.len(), removed.len()), (8, 2), "{answer}");
    assert_eq!(answer["more"], false);
    assert!(took < Duration::from_secs(1), "{took:?}");
    println!("done in {:?}", began.elapsed());
    Ok(())
}
