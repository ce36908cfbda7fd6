//! Finding a user's calendars and address books (RFC 6764, RFC 4791 §6.2.1, RFC 6352 §7.1.1) and
//! reading a home's collections with one PROPFIND Depth 1, which is also the cheap per-poll check
//! (each collection's sync-token and ctag).
//!
//! ```text
//!   configured URL ──PROPFIND current-user-principal──► principal
//!        └─ none there: /.well-known/caldav|carddav (redirects followed) ─┘
//!   principal ──PROPFIND calendar-home-set | addressbook-home-set──► home(s)
//!   home ──PROPFIND Depth 1──► collections (name, color, components, privileges, ctag, token)
//! ```
//!
//! The principal and the homes are links from the server's answers: each passes
//! [`DavClient::named`] (the credential rule, and trust for a host the server names) before use.

use std::time::{Duration, Instant};

use url::Url;

use crate::dav::DavClient;
use crate::dav::client::{check_status, read_body};
use crate::dav::marker::{self, HomeListing};
use crate::dav::xml::{DavResponse, Multistatus, NS_CALDAV, NS_CARDDAV, NS_DAV};
use crate::error::ServiceError;

/// CalendarServer extensions: `getctag` (the pre-RFC 6578 change tag).
pub const NS_CALSERVER: &str = "http://calendarserver.org/ns/";
/// Apple iCal extensions: `calendar-color`.
pub const NS_APPLE_ICAL: &str = "http://apple.com/ns/ical/";

/// Which of the two DAV services a child syncs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DavService {
    CalDav,
    CardDav,
}

impl DavService {
    /// RFC 6764 §5: the well-known path of the service.
    pub fn well_known(self) -> &'static str {
        match self {
            DavService::CalDav => "/.well-known/caldav",
            DavService::CardDav => "/.well-known/carddav",
        }
    }

    fn home_set(self) -> (&'static str, &'static str) {
        match self {
            DavService::CalDav => (NS_CALDAV, "calendar-home-set"),
            DavService::CardDav => (NS_CARDDAV, "addressbook-home-set"),
        }
    }
}

/// One collection as a home listing describes it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CollectionInfo {
    /// The collection's path on the server (`/alice/calendar/`).
    pub href: String,
    pub name: Option<String>,
    pub color: Option<String>,
    pub components: Vec<String>,
    /// `calendar`, `tasks` or `addressbook`.
    pub kind: String,
    pub read_only: bool,
    pub directory: bool,
    pub owner: Option<String>,
    pub ctag: Option<String>,
    pub sync_token: Option<String>,
    /// The collection lists `DAV:sync-collection` in its `DAV:supported-report-set` (RFC 6578
    /// §3.1), even where the listing did not ask for its sync-token.
    pub reports_sync: bool,
    /// `DAV:getlastmodified` of the collection (its stamp, `marker`), as sent.
    pub stamp: Option<String>,
    /// Whether that stamp may vouch for later rounds ([`marker::settled`]).
    pub stamp_settled: bool,
}

const PROPFIND_HOME_SETS: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<d:propfind xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav" xmlns:cr="urn:ietf:params:xml:ns:carddav"><d:prop><c:calendar-home-set/><cr:addressbook-home-set/></d:prop></d:propfind>"#;

/// The properties of a home's members (RFC 4791 §5.2, RFC 6352 §6.2, RFC 3744 §5.4, RFC 6578 §4),
/// with both change markers: the CalendarServer ctag and the sync-token.
pub const PROPFIND_COLLECTIONS: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<d:propfind xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav" xmlns:cs="http://calendarserver.org/ns/" xmlns:ic="http://apple.com/ns/ical/"><d:prop><d:resourcetype/><d:displayname/><ic:calendar-color/><c:supported-calendar-component-set/><d:current-user-privilege-set/><cs:getctag/><d:sync-token/><d:owner/><d:getlastmodified/></d:prop></d:propfind>"#;

/// The same listing with the sync-token only, for homes whose collections all have one. A
/// server may compute each marker by reading every item of a collection (Radicale does, about
/// 0.2 ms per item and marker), so a poll asks only for the one it compares.
pub const PROPFIND_COLLECTIONS_SYNC_TOKEN: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<d:propfind xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav" xmlns:ic="http://apple.com/ns/ical/"><d:prop><d:resourcetype/><d:displayname/><ic:calendar-color/><c:supported-calendar-component-set/><d:current-user-privilege-set/><d:sync-token/><d:owner/><d:getlastmodified/></d:prop></d:propfind>"#;

/// The same listing without sync-token and ctag, for a home whose collections are polled by their stamp
/// (`marker`): `getlastmodified` (RFC 4918 §15.7) is the stamp, `supported-report-set` (RFC 3253
/// §3.1.5) tells whether a collection's next round can use sync-collection.
pub const PROPFIND_STAMPS: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<d:propfind xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav" xmlns:ic="http://apple.com/ns/ical/"><d:prop><d:resourcetype/><d:displayname/><ic:calendar-color/><c:supported-calendar-component-set/><d:current-user-privilege-set/><d:owner/><d:supported-report-set/><d:getlastmodified/></d:prop></d:propfind>"#;

/// The same listing without any marker, for a home none of whose collections is mirrored yet
/// ([`HomeListing::Bare`]).
pub const PROPFIND_BARE: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<d:propfind xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav" xmlns:ic="http://apple.com/ns/ical/"><d:prop><d:resourcetype/><d:displayname/><ic:calendar-color/><c:supported-calendar-component-set/><d:current-user-privilege-set/><d:owner/><d:supported-report-set/></d:prop></d:propfind>"#;

/// The body of a home listing of `kind`.
pub fn listing_body(kind: HomeListing) -> &'static str {
    match kind {
        HomeListing::Bare => PROPFIND_BARE,
        HomeListing::Stamps => PROPFIND_STAMPS,
        HomeListing::SyncTokens => PROPFIND_COLLECTIONS_SYNC_TOKEN,
        HomeListing::All => PROPFIND_COLLECTIONS,
    }
}

/// A home's Depth 1 listing with what [`marker::settled`] needs to judge its stamps.
pub struct HomeAnswer {
    /// The URL that answered (after redirects).
    pub url: Url,
    pub ms: Multistatus,
    /// The answer's `Date` header (RFC 9110 §6.6.1), as sent.
    pub date: Option<String>,
    /// From sending the request to having its headers.
    pub elapsed: Duration,
}

/// PROPFIND Depth 1 of `home` with `body`, keeping the answer's `Date`.
pub async fn list_home(client: &DavClient, home: &Url, body: &str) -> Result<HomeAnswer, ServiceError> {
    let method = reqwest::Method::from_bytes(b"PROPFIND").expect("valid method");
    let sent = Instant::now();
    let (url, resp) = client
        .request(method, home, &[("Depth", "1")], Some(body))
        .await?;
    let elapsed = sent.elapsed();
    check_status(&url, resp.status(), resp.headers())?;
    if resp.status() != reqwest::StatusCode::MULTI_STATUS {
        return Err(ServiceError::Protocol(format!(
            "{url}: PROPFIND answered {} instead of 207 Multi-Status",
            resp.status()
        )));
    }
    let date = resp
        .headers()
        .get(reqwest::header::DATE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = read_body(&url, resp).await?;
    let ms = crate::dav::xml::parse_multistatus(&bytes)
        .map_err(|e| ServiceError::Protocol(format!("{url}: {e}")))?;
    Ok(HomeAnswer {
        url,
        ms,
        date,
        elapsed,
    })
}

/// The collections of a home's listing, each stamp judged settled or not ([`marker::settled`]).
pub fn listed_collections(answer: &HomeAnswer, service: DavService) -> Vec<CollectionInfo> {
    let mut out = collections(&answer.ms, &answer.url, service);
    for info in &mut out {
        info.stamp_settled = info
            .stamp
            .as_deref()
            .is_some_and(|s| marker::settled(s, answer.date.as_deref(), answer.elapsed));
    }
    out
}

/// RFC 6764 §6 then RFC 4791 §6.2.1 / RFC 6352 §7.1.1: the principal and the service's homes.
/// A principal without a home set is its own home (what small servers do).
pub async fn discover(client: &DavClient, service: DavService) -> Result<(Url, Vec<Url>), ServiceError> {
    let start = client.base().clone();
    let principal = match client.current_user_principal(&start).await {
        Ok(p) => p,
        Err(e @ (ServiceError::Auth(_) | ServiceError::Transient { .. } | ServiceError::Tls(_))) => {
            return Err(e);
        }
        Err(first) => {
            let well_known = start
                .join(service.well_known())
                .map_err(|e| ServiceError::Config(format!("{start}: {e}")))?;
            client
                .current_user_principal(&well_known)
                .await
                .map_err(|e| ServiceError::Unsupported(format!("{first}; {}: {e}", service.well_known())))?
        }
    };
    let (answered, ms) = client.propfind(&principal, "0", PROPFIND_HOME_SETS).await?;
    let homes = home_sets(&ms, &answered, service)
        .into_iter()
        .map(|home| client.named(&answered, home))
        .collect::<Result<Vec<_>, _>>()?;
    for home in &homes {
        client.add_home(home);
    }
    Ok((principal, homes))
}

/// The account's `gal` address book as a directory collection (read-only, never synced). A URL
/// that is not an address book is left out with a warning; `gal.search` then says so.
pub async fn configured_directory(
    client: &DavClient,
    url: &Url,
) -> Result<Vec<CollectionInfo>, ServiceError> {
    let parent = url.join("..").unwrap_or_else(|_| url.clone());
    let listed = match client.propfind(url, "0", PROPFIND_COLLECTIONS).await {
        Ok((answered, ms)) => collections(&ms, &parent, DavService::CardDav)
            .into_iter()
            .filter(|c| crate::dav::proxy::same_path(&c.href, answered.path()))
            .collect::<Vec<_>>(),
        Err(e @ (ServiceError::Transient { .. } | ServiceError::Auth(_) | ServiceError::Tls(_))) => {
            return Err(e);
        }
        Err(e) => {
            tracing::warn!(gal = %url, error = %e, "the configured global address list is not readable");
            Vec::new()
        }
    };
    if listed.is_empty() {
        tracing::warn!(gal = %url, "the configured global address list is not an address book");
    }
    Ok(listed
        .into_iter()
        .map(|mut c| {
            (c.directory, c.read_only) = (true, true);
            c
        })
        .collect())
}

/// The home URLs a principal's answer names (resolved against it), or the principal itself.
pub fn home_sets(ms: &Multistatus, principal: &Url, service: DavService) -> Vec<Url> {
    let (ns, name) = service.home_set();
    let homes: Vec<Url> = ms
        .responses
        .iter()
        .filter_map(|r| r.prop(ns, name))
        .flat_map(|p| p.hrefs.iter())
        .filter_map(|h| principal.join(h).ok())
        .collect();
    if homes.is_empty() {
        vec![principal.clone()]
    } else {
        homes
    }
}

/// The collections of `service` in a home's Depth 1 listing; the home itself and other kinds
/// of members are left out.
pub fn collections(ms: &Multistatus, home: &Url, service: DavService) -> Vec<CollectionInfo> {
    ms.responses
        .iter()
        .filter_map(|r| collection(r, home, service))
        .filter(|c| home.path() != c.href)
        .collect()
}

fn collection(r: &DavResponse, home: &Url, service: DavService) -> Option<CollectionInfo> {
    let rt = r.prop(NS_DAV, "resourcetype")?;
    let is = |ns: &str, name: &str| rt.children.iter().any(|(n, l)| n == ns && l == name);
    let href = crate::dav::sync::normalize_href(home.join(&r.href).ok()?.path());
    let text = |ns: &str, name: &str| r.prop(ns, name).map(|p| p.text.clone()).filter(|t| !t.is_empty());
    let name = text(NS_DAV, "displayname");
    let kind = match service {
        DavService::CalDav if is(NS_CALDAV, "calendar") => {
            let components: Vec<String> = r
                .prop(NS_CALDAV, "supported-calendar-component-set")
                .map(|p| p.names.iter().map(|n| n.to_ascii_uppercase()).collect())
                .unwrap_or_default();
            calendar_kind(&components, name.as_deref().unwrap_or(&href))
        }
        DavService::CardDav if is(NS_CARDDAV, "addressbook") => "addressbook",
        _ => return None,
    };
    let components = r
        .prop(NS_CALDAV, "supported-calendar-component-set")
        .map(|p| p.names.iter().map(|n| n.to_ascii_uppercase()).collect())
        .unwrap_or_default();
    Some(CollectionInfo {
        href,
        name,
        color: text(NS_APPLE_ICAL, "calendar-color"),
        components,
        kind: kind.to_owned(),
        read_only: read_only(r),
        // Directory gateways (RFC 6352 §8.?, CalendarServer, Cyrus) mark their resourcetype.
        directory: rt.children.iter().any(|(_, l)| l == "directory"),
        owner: r.prop(NS_DAV, "owner").and_then(|p| p.hrefs.first().cloned()),
        ctag: text(NS_CALSERVER, "getctag"),
        sync_token: text(NS_DAV, "sync-token"),
        reports_sync: r.prop(NS_DAV, "supported-report-set").is_some_and(|p| {
            p.descendants
                .iter()
                .any(|(ns, l)| ns == NS_DAV && l == "sync-collection")
        }),
        stamp: text(NS_DAV, "getlastmodified"),
        stamp_settled: false,
    })
}

/// Task lists: a collection that may hold VTODO (it says so, or names no component set) and whose
/// name matches /Tasks/ (case-insensitive) is a task list whatever else it supports, as in the
/// original product; so is one that supports VTODO and not VEVENT. The VTODOs of a calendar
/// supporting both (Radicale's and Xandikos's default) still come out as tasks item by item.
pub fn calendar_kind(components: &[String], name: &str) -> &'static str {
    let has = |c: &str| components.iter().any(|x| x == c);
    let may_hold_tasks = components.is_empty() || has("VTODO");
    if may_hold_tasks && name.to_ascii_lowercase().contains("tasks") {
        "tasks"
    } else if components.is_empty() {
        "calendar"
    } else if has("VTODO") && !has("VEVENT") {
        "tasks"
    } else {
        "calendar"
    }
}

/// RFC 3744 §5.4: read-only unless the user holds `write`, `write-content`, `bind` or `all`.
/// A server that does not say is assumed writable (a failed write is reported then).
fn read_only(r: &DavResponse) -> bool {
    match r.prop(NS_DAV, "current-user-privilege-set") {
        None => false,
        Some(p) => !p
            .descendants
            .iter()
            .any(|(ns, l)| ns == NS_DAV && matches!(l.as_str(), "write" | "write-content" | "bind" | "all")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dav::xml::parse_multistatus;

    const HOME: &str = include_str!("../../tests/fixtures/radicale/home-depth1.xml");

    #[test]
    fn reads_radicale_home() {
        let home = Url::parse("http://127.0.0.1:5232/alice/").unwrap();
        let ms = parse_multistatus(HOME.as_bytes()).unwrap();
        let cals = collections(&ms, &home, DavService::CalDav);
        let by = |h: &str| cals.iter().find(|c| c.href == h).unwrap();
        assert_eq!(cals.len(), 2, "{cals:#?}");
        let work = by("/alice/work/");
        assert_eq!(work.name.as_deref(), Some("Work"));
        assert_eq!(work.color.as_deref(), Some("#ff0000ff"));
        assert_eq!(work.components, vec!["VEVENT"]);
        assert_eq!(work.kind, "calendar");
        assert!(!work.read_only);
        assert!(
            work.sync_token
                .as_deref()
                .unwrap()
                .starts_with("http://radicale.org/ns/sync/")
        );
        assert!(work.ctag.is_some());
        assert_eq!(by("/alice/todo/").kind, "tasks");
        let books = collections(&ms, &home, DavService::CardDav);
        assert_eq!(books.len(), 1);
        assert_eq!(books[0].href, "/alice/contacts/");
        assert_eq!(books[0].kind, "addressbook");
        assert!(!books[0].directory);
    }

    /// Cyrus 3.6: CDATA display names, a `Default` calendar for VEVENT and VTODO, the scheduling
    /// Inbox and Outbox (RFC 6638 §2) in the same home, which are not calendars.
    #[test]
    fn reads_cyrus_homes() {
        let home = Url::parse("http://127.0.0.1:8080/dav/calendars/user/alice/").unwrap();
        let xml = include_str!("../../tests/fixtures/cyrus/calendar-home-depth1.xml");
        let ms = parse_multistatus(xml.as_bytes()).unwrap();
        let cals = collections(&ms, &home, DavService::CalDav);
        let hrefs: Vec<&str> = cals.iter().map(|c| c.href.as_str()).collect();
        assert_eq!(
            hrefs,
            [
                "/dav/calendars/user/alice/Default/",
                "/dav/calendars/user/alice/chores/",
                "/dav/calendars/user/alice/work/"
            ]
        );
        let default = &cals[0];
        assert_eq!(default.name.as_deref(), Some("personal"));
        assert_eq!(default.kind, "calendar");
        assert!(default.components.iter().any(|c| c == "VTODO"));
        assert!(!default.read_only);
        assert!(default.sync_token.as_deref().unwrap().starts_with("data:,"));
        assert_eq!(default.owner.as_deref(), Some("/dav/principals/user/alice/"));
        assert_eq!(
            (cals[1].name.as_deref(), cals[1].kind.as_str()),
            (Some("Chores"), "tasks")
        );
        let home = Url::parse("http://127.0.0.1:8080/dav/addressbooks/user/alice/").unwrap();
        let xml = include_str!("../../tests/fixtures/cyrus/addressbook-home-depth1.xml");
        let ms = parse_multistatus(xml.as_bytes()).unwrap();
        let books = collections(&ms, &home, DavService::CardDav);
        assert_eq!(books.len(), 1, "{books:#?}");
        assert_eq!(books[0].href, "/dav/addressbooks/user/alice/Default/");
        assert!(!books[0].read_only && !books[0].directory);
    }

    #[test]
    fn read_only_and_directory_from_a_recorded_answer() {
        let body = r#"<d:multistatus xmlns:d="DAV:" xmlns:cr="urn:ietf:params:xml:ns:carddav"><d:response><d:href>/dir/</d:href>
<d:propstat><d:prop><d:resourcetype><d:collection/><cr:addressbook/><cr:directory/></d:resourcetype>
<d:current-user-privilege-set><d:privilege><d:read/></d:privilege></d:current-user-privilege-set></d:prop>
<d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>"#;
        let ms = parse_multistatus(body.as_bytes()).unwrap();
        let home = Url::parse("https://dav.example.org/").unwrap();
        let books = collections(&ms, &home, DavService::CardDav);
        assert!(books[0].read_only && books[0].directory);
    }

    /// A first round asks no marker (each costs Radicale a pass over its items) but still
    /// whether sync-collection works; the later listings ask what their collections compare.
    #[test]
    fn a_first_round_asks_no_marker() {
        let markers = ["getlastmodified", "sync-token", "getctag"];
        let bare = listing_body(HomeListing::Bare);
        assert!(markers.iter().all(|m| !bare.contains(m)), "{bare}");
        assert!(bare.contains("supported-report-set"));
        assert!(listing_body(HomeListing::Stamps).contains("getlastmodified"));
        assert!(listing_body(HomeListing::All).contains("getctag"));
    }

    /// Radicale 3.1.8's answer to a listing without markers (PROPFIND_STAMPS less its stamp): no change markers, and the reports
    /// that tell whether the first sync can use sync-collection.
    #[test]
    fn a_listing_without_markers_still_says_whether_sync_collection_works() {
        let body = r#"<?xml version='1.0' encoding='utf-8'?>
<multistatus xmlns="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:ICAL="http://apple.com/ns/ical/"><response><href>/alice/calendar/</href><propstat><prop><resourcetype><C:calendar /><collection /></resourcetype><displayname>Bench calendar</displayname><C:supported-calendar-component-set><C:comp name="VEVENT" /></C:supported-calendar-component-set><current-user-privilege-set><privilege><read /></privilege><privilege><all /></privilege><privilege><write /></privilege><privilege><write-properties /></privilege><privilege><write-content /></privilege></current-user-privilege-set><owner><href>/alice/</href></owner><supported-report-set><supported-report><report><expand-property /></report></supported-report><supported-report><report><principal-search-property-set /></report></supported-report><supported-report><report><principal-property-search /></report></supported-report><supported-report><report><sync-collection /></report></supported-report><supported-report><report><C:calendar-multiget /></report></supported-report><supported-report><report><C:calendar-query /></report></supported-report></supported-report-set></prop><status>HTTP/1.1 200 OK</status></propstat><propstat><prop><ICAL:calendar-color /></prop><status>HTTP/1.1 404 Not Found</status></propstat></response></multistatus>"#;
        let ms = parse_multistatus(body.as_bytes()).unwrap();
        let home = Url::parse("http://127.0.0.1:5232/alice/").unwrap();
        let cals = collections(&ms, &home, DavService::CalDav);
        assert_eq!(cals.len(), 1, "{cals:#?}");
        assert!(cals[0].reports_sync);
        assert_eq!(
            (cals[0].ctag.as_deref(), cals[0].sync_token.as_deref()),
            (None, None)
        );
        // The recorded full listing has no supported-report-set: its tokens decide instead.
        let ms = parse_multistatus(HOME.as_bytes()).unwrap();
        assert!(
            collections(&ms, &home, DavService::CalDav)
                .iter()
                .all(|c| !c.reports_sync)
        );
    }

    #[test]
    fn tasks_rule() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(calendar_kind(&v(&["VTODO"]), "x"), "tasks");
        assert_eq!(calendar_kind(&v(&["VEVENT", "VTODO"]), "x"), "calendar");
        assert_eq!(calendar_kind(&[], "My Tasks"), "tasks");
        assert_eq!(calendar_kind(&[], "Home"), "calendar");
        // The original product's rule: a /Tasks/ name with VTODO wins whatever else is supported.
        assert_eq!(calendar_kind(&v(&["VEVENT", "VTODO"]), "Work TASKS"), "tasks");
        assert_eq!(
            calendar_kind(&v(&["VEVENT", "VTODO", "VJOURNAL"]), "/u/tasks/"),
            "tasks"
        );
        assert_eq!(calendar_kind(&v(&["VEVENT"]), "Tasks"), "calendar");
    }

    #[test]
    fn home_set_or_the_principal() {
        let principal = Url::parse("https://dav.example.org/principals/alice/").unwrap();
        let body = r#"<d:multistatus xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:response><d:href>/principals/alice/</d:href>
<d:propstat><d:prop><c:calendar-home-set><d:href>/calendars/alice/</d:href></c:calendar-home-set></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>"#;
        let ms = parse_multistatus(body.as_bytes()).unwrap();
        assert_eq!(
            home_sets(&ms, &principal, DavService::CalDav)[0].as_str(),
            "https://dav.example.org/calendars/alice/"
        );
        assert_eq!(home_sets(&ms, &principal, DavService::CardDav), vec![principal]);
    }
}
