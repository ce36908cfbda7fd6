//! The fuzz targets' bodies: every parser that reads what a server, a local process or the user
//! hands the agent, with the properties each must keep. `fuzz/libfuzzer/fuzz_targets/NAME.rs`
//! hands them libFuzzer's inputs (nightly); `tests/brief.rs` runs each briefly on stable.
//!
//! A body returns normally for any input; a panic (a failed assertion among them) is a finding.

pub mod mutate;

use async_imap::imap_proto::Response;
use opconnect_actors::dav::discovery::{self, DavService};
use opconnect_actors::dav::{proxy, xml};
use opconnect_actors::formats::discovery::{
    Service, SrvRecord, email_domain, guesses, srv_candidates, srv_queries, txt_path,
};
use opconnect_actors::formats::item::{self, FieldSet, ItemClass};
use opconnect_actors::formats::{freebusy, ical, vcard};
use opconnect_actors::imap::capped::Guard;
use opconnect_actors::net::endpoint::{self, Protocol};
use opconnect_actors::sieve::response::parse_response;
use opconnect_ipc::frame::{self, Decoded};
use opconnect_ipc::{Event, Request};
use url::Url;

/// The configuration loader is the agent's (a binary crate), included from its source.
#[allow(dead_code, unused_imports)]
#[path = "../../agent/src/config.rs"]
mod config;

/// A target's body: returns for any input, panics on a finding.
pub type Target = fn(&[u8]);

/// Every target by name, as `cargo fuzz list` names them.
pub const TARGETS: &[(&str, Target)] = &[
    ("autoconfig", autoconfig_file),
    ("config", config_file),
    ("dav_multistatus", dav_multistatus),
    ("discovery", discovery_answers),
    ("ical_vcard", ical_vcard),
    ("imap_response", imap_response),
    ("ipc_frame", ipc_frame),
    ("item_read", item_read),
    ("item_write", item_write),
    ("sieve_response", sieve_response),
];

/// What a domain's web server hands discovery: a Thunderbird autoconfig file. The first line is
/// the email address, the rest the file; every candidate read from it passes or fails the
/// endpoint rules.
pub fn autoconfig_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (email, xml) = text.split_once('\n').unwrap_or(("alice@example.org", text));
    let Ok(found) = opconnect_actors::formats::autoconfig::parse(xml, email, "fuzz") else {
        return;
    };
    for c in found.candidates {
        let proto = match c.service {
            Service::Imap => Protocol::Imap,
            Service::Smtp => Protocol::Smtp,
            Service::Sieve => Protocol::Sieve,
            Service::CalDav | Service::CardDav => Protocol::Dav,
        };
        let _ = endpoint::parse(proto, &c.url);
    }
}

/// The configuration file. A refusal never repeats a password written into a URL.
pub fn config_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Err(e) = config::Config::parse(std::path::Path::new("config.toml"), text) else {
        return;
    };
    // A URL's password, when the text has one, is masked in the message (a password that also
    // appears elsewhere in the text is not a secret the message could keep).
    for word in text.split(|c: char| c.is_whitespace() || c == '"' || c == '\'') {
        if let Some((_, rest)) = word.split_once("://")
            && let Some((userinfo, _)) = rest.split_once('@')
            && let Some((_, password)) = userinfo.split_once(':')
            && password.len() >= 8
            && password.chars().all(|c| c.is_ascii_alphanumeric())
            && text.matches(password).count() == 1
        {
            assert!(!e.0.contains(password), "{}", e.0);
        }
    }
}

/// DAV `207 Multi-Status` bodies, read the way discovery, sync, delegation and free/busy read them.
pub fn dav_multistatus(data: &[u8]) {
    let _ = xml::names_precondition(data, "valid-sync-token");
    let _ = freebusy::parse_schedule_response(data);
    let Ok(ms) = xml::parse_multistatus(data) else {
        return;
    };
    let base = Url::parse("https://dav.example.org/home/alice/").unwrap();
    for service in [DavService::CalDav, DavService::CardDav] {
        let _ = discovery::collections(&ms, &base, service);
        let _ = discovery::home_sets(&ms, &base, service);
    }
    let _ = proxy::links(&ms, &base);
    let _ = proxy::card(&ms, &base);
}

/// What DNS and the user hand to discovery, one per line: an email address, TXT strings
/// (RFC 6764 §4) joined by `|`, then SRV answers (RFC 2782) as `priority weight port target`.
pub fn discovery_answers(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.lines();
    let email = lines.next().unwrap_or_default();
    let domain = email_domain(email).unwrap_or_else(|| "example.org".into());
    let txt: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split('|')
        .map(str::to_owned)
        .collect();
    let path = txt_path(&txt);
    let records: Vec<SrvRecord> = lines
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some(SrvRecord {
                priority: f.next()?.parse().ok()?,
                weight: f.next()?.parse().ok()?,
                port: f.next()?.parse().ok()?,
                target: f.next()?.to_owned(),
            })
        })
        .collect();
    let protocols = [Protocol::Imap, Protocol::Smtp, Protocol::Dav, Protocol::Sieve];
    for service in Service::ALL {
        let answers: Vec<_> = srv_queries(service)
            .map(|q| (q, records.clone(), path.clone()))
            .collect();
        let candidates = srv_candidates(&answers);
        let guessed = guesses(service, &domain, records.first().map(|r| r.target.as_str()));
        for c in candidates.iter().chain(guessed.iter()) {
            for proto in protocols {
                let _ = endpoint::parse(proto, &c.url);
            }
        }
    }
    for proto in protocols {
        let _ = endpoint::parse(proto, text);
    }
}

/// iCalendar and vCard bodies as servers store them (the first byte picks the reader).
pub fn ical_vcard(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    match pick % 3 {
        0 => drop(ical::parse_event(body)),
        1 => drop(vcard::parse_contact(body)),
        _ => {
            if let Ok(text) = std::str::from_utf8(body) {
                let _ = freebusy::periods(text);
            }
        }
    }
}

/// IMAP server bytes: the line guard (whatever the split, it never panics and passes on every
/// byte, adding at most the space after a status line's response code) and the response parser
/// behind it, which must not panic on what the guard passes on.
pub fn imap_response(data: &[u8]) {
    let Some((&split, bytes)) = data.split_first() else {
        return;
    };
    let mut guard = Guard::default();
    let mut released = Vec::new();
    let step = usize::from(split).max(1);
    for chunk in bytes.chunks(step) {
        if guard.push(chunk).is_err() {
            return;
        }
        let n = guard.ready().len();
        released.extend_from_slice(guard.ready());
        guard.consume(n);
    }
    let no_spaces = |b: &[u8]| b.iter().copied().filter(|c| *c != b' ').collect::<Vec<u8>>();
    assert!(
        no_spaces(bytes).starts_with(&no_spaces(&released)),
        "the guard passes bytes on in order, adding spaces only"
    );
    let mut rest: &[u8] = &released;
    while let Ok((left, _)) = Response::parse(rest) {
        if left.len() >= rest.len() {
            break;
        }
        rest = left;
    }
}

/// What a local process writes to the agent's socket: frames (4-byte length + JSON) and the
/// JSON-RPC requests, responses and events inside them.
pub fn ipc_frame(data: &[u8]) {
    let mut rest = data;
    while let Ok(Decoded::Frame { len }) = frame::decode(rest) {
        let payload = &rest[4..4 + len];
        if let Ok(req) = serde_json::from_slice::<Request>(payload) {
            let _ = serde_json::to_vec(&req);
        }
        let _ = serde_json::from_slice::<opconnect_ipc::Response>(payload);
        let _ = serde_json::from_slice::<Event>(payload);
        rest = &rest[4 + len..];
    }
    let _ = serde_json::from_slice::<Request>(data);
}

const CLASSES: [ItemClass; 5] = [
    ItemClass::Appointment,
    ItemClass::Task,
    ItemClass::Contact,
    ItemClass::DistList,
    ItemClass::Note,
];

/// The item model reading server bytes, for the class the first byte picks. An empty patch
/// of an item that reads changes nothing but the modification stamps.
pub fn item_read(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let Ok(body) = std::str::from_utf8(body) else {
        return;
    };
    let class = CLASSES[pick as usize % CLASSES.len()];
    if item::read(class, body).is_ok()
        && let Ok(same) = item::patch(class, body, &FieldSet::new())
    {
        // Compared as unfolded content lines (RFC 5545 §3.1), without the stamps a write renews.
        let unstamped = |text: &str| {
            let unfolded = text.replace("\r\n ", "").replace("\r\n\t", "");
            unfolded
                .replace("\n ", "")
                .replace("\n\t", "")
                .lines()
                .filter(|l| {
                    !["DTSTAMP", "LAST-MODIFIED", "REV"]
                        .iter()
                        .any(|p| name_of(l) == *p)
                })
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            unstamped(&same),
            unstamped(body),
            "an empty patch changes nothing else"
        );
    }
}

/// A content line's property name, upper case, without a group (`item1.TEL` → `TEL`).
fn name_of(line: &str) -> String {
    let end = line.find([':', ';']).unwrap_or(line.len());
    let name = &line[..end];
    name.rsplit('.').next().unwrap_or(name).to_ascii_uppercase()
}

/// The item model writing: `[class][server bytes] NUL [field set as JSON]`. A patch or a create
/// the model accepts gives bytes that it reads again.
pub fn item_write(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Ok(rest) = std::str::from_utf8(rest) else {
        return;
    };
    let (body, fields) = rest.split_once('\0').unwrap_or((rest, "{}"));
    let Ok(fields) = serde_json::from_str::<FieldSet>(fields) else {
        return;
    };
    let class = CLASSES[pick as usize % CLASSES.len()];
    if let Ok(created) = item::create(class, "fuzz-uid", &fields) {
        let read = item::read(class, &created);
        assert!(read.is_ok(), "a created item reads again: {read:?}\n{created}");
    }
    if item::read(class, body).is_ok()
        && let Ok(patched) = item::patch(class, body, &fields)
    {
        let read = item::read(class, &patched);
        assert!(read.is_ok(), "a patched item reads again: {read:?}\n{patched}");
    }
}

/// ManageSieve answers (RFC 5804 §4), read repeatedly from the front as the client reads them.
pub fn sieve_response(data: &[u8]) {
    let mut rest = data;
    while let Ok(Some((_, used))) = parse_response(rest) {
        assert!(used > 0 && used <= rest.len(), "a response uses what it read");
        rest = &rest[used..];
    }
}
