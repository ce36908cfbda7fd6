//! Pulling one collection (DESIGN "How sync works"): what changed since the stored sync-token
//! (RFC 6578 sync-collection) or, without it, an etag listing (PROPFIND Depth 1); then the bodies
//! through calendar-multiget (RFC 4791 §7.9) / addressbook-multiget (RFC 6352 §8.7) in batches.
//! The plan — what to fetch, what to remove, whether the mass-deletion guard holds — is a pure
//! function of the stored etags and the listing (invariant 5).
//!
//! ```text
//!   token? ──REPORT sync-collection──► changed (href, etag) + removed hrefs ──┐
//!     │  507 for the collection: continue from the new token                  │
//!     └─ invalid token (403/409 valid-sync-token): start over with no token   ├─► plan ─► multiget
//!   no token support ──PROPFIND Depth 1 getetag──► full listing ──────────────┘
//! ```

use std::collections::{HashMap, HashSet};

use url::Url;

use crate::dav::DavClient;
use crate::dav::client::ReportAnswer;
use crate::dav::discovery::DavService;
use crate::dav::listing::{self, Collect, Mirror};
use crate::dav::xml::{Multistatus, NS_CALDAV, NS_CARDDAV, NS_DAV};
use crate::error::ServiceError;

/// Hrefs per multiget: large enough that 1,000 items take ten requests, small enough that one
/// answer stays a few megabytes.
pub const MULTIGET_BATCH: usize = 100;
/// Multigets in flight at once (DESIGN: "several requests in flight"), gentle on small servers.
pub const MULTIGET_IN_FLIGHT: usize = 4;
/// RFC 6578 §3.6: a truncated answer is continued from its token; this bounds a server that
/// never finishes.
const MAX_CONTINUATIONS: usize = 1_000;

/// Invariant 5: a collection of at least this many items …
pub const GUARD_MIN_ITEMS: usize = 10;
/// … that would lose more than this share of them in one round is held instead.
pub const GUARD_MAX_SHARE: f64 = 0.5;

/// What the server says changed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Listing {
    /// Members present now with their etag (if the server gave one).
    pub present: Vec<(String, Option<String>)>,
    /// Members reported gone (sync-collection 404s).
    pub removed: Vec<String>,
    /// True when `present` is the whole collection, so stored items not in it are gone too.
    pub complete: bool,
    /// The token to store once the round is applied.
    pub token: Option<String>,
    /// How many members the server named, whether kept in `present` or, when the listing was
    /// compared with the mirror as it was read (`dav::listing`), dropped as unchanged.
    pub members: usize,
}

/// What a round does to the mirror.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    /// Hrefs whose body must be fetched (new, or etag differs).
    pub fetch: Vec<String>,
    /// Hrefs to drop from the mirror (empty when held).
    pub remove: Vec<String>,
    /// Removals the guard refused to apply (invariant 5).
    pub held: Vec<String>,
}

/// Decides a round. `stored` is every mirrored `(href, etag)` of the collection; `unsent` the
/// hrefs with a write still in the journal. Those are in the mirror before they are on the
/// server, so a listing that lacks them removes nothing, and the guard does not count them
/// (else the add-in would delete such an item in Outlook and pull it back once sent).
pub fn plan(stored: &[(String, Option<String>)], listing: &Listing, unsent: &HashSet<String>) -> Plan {
    let known: HashMap<&str, Option<&str>> = stored.iter().map(|(h, e)| (h.as_str(), e.as_deref())).collect();
    let fetch = listing
        .present
        .iter()
        .filter(|(href, etag)| match (known.get(href.as_str()), etag) {
            (Some(Some(old)), Some(new)) => old != new,
            _ => true,
        })
        .map(|(h, _)| h.clone())
        .collect();
    let settled: Vec<&str> = stored
        .iter()
        .map(|(h, _)| h.as_str())
        .filter(|h| !unsent.contains(*h))
        .collect();
    let mut remove: Vec<String> = listing
        .removed
        .iter()
        .filter(|h| known.contains_key(h.as_str()) && !unsent.contains(*h))
        .cloned()
        .collect();
    if listing.complete {
        let present: HashSet<&str> = listing.present.iter().map(|(h, _)| h.as_str()).collect();
        remove.extend(
            settled
                .iter()
                .filter(|h| !present.contains(*h) && !listing.removed.iter().any(|r| r == *h))
                .map(|h| h.to_string()),
        );
    }
    if settled.len() >= GUARD_MIN_ITEMS && remove.len() as f64 > settled.len() as f64 * GUARD_MAX_SHARE {
        return Plan {
            fetch,
            remove: Vec::new(),
            held: remove,
        };
    }
    Plan {
        fetch,
        remove,
        held: Vec::new(),
    }
}

fn sync_collection_body(token: Option<&str>) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<d:sync-collection xmlns:d="DAV:"><d:sync-token>{}</d:sync-token><d:sync-level>1</d:sync-level><d:prop><d:getetag/></d:prop></d:sync-collection>"#,
        escape(token.unwrap_or(""))
    )
}

const PROPFIND_ETAGS: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<d:propfind xmlns:d="DAV:"><d:prop><d:resourcetype/><d:getetag/></d:prop></d:propfind>"#;

/// The multiget body for `hrefs` (RFC 4791 §7.9, RFC 6352 §8.7).
pub fn multiget_body(service: DavService, hrefs: &[String]) -> String {
    let (root, data, ns) = match service {
        DavService::CalDav => ("calendar-multiget", "calendar-data", NS_CALDAV),
        DavService::CardDav => ("addressbook-multiget", "address-data", NS_CARDDAV),
    };
    let mut body = format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<x:{root} xmlns:d="DAV:" xmlns:x="{ns}"><d:prop><d:getetag/><x:{data}/></d:prop>"#
    );
    for href in hrefs {
        body.push_str("<d:href>");
        body.push_str(&escape(href));
        body.push_str("</d:href>");
    }
    body.push_str(&format!("</x:{root}>"));
    body
}

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Reads a sync-collection answer (RFC 6578 §3.5): members with etags, removed members (404),
/// and whether it was truncated (a 507 response for the collection itself, §3.6).
pub fn read_sync_answer(ms: &Multistatus, collection: &Url) -> (Listing, bool) {
    let listing = Listing {
        token: ms.sync_token.clone(),
        ..Listing::default()
    };
    let mut collect = Collect::new(collection, listing, None);
    for r in &ms.responses {
        collect.take(r);
    }
    let truncated = collect.truncated;
    (collect.finish(), truncated)
}

pub fn is_collection(r: &crate::dav::xml::DavResponse) -> bool {
    r.prop(NS_DAV, "resourcetype")
        .is_some_and(|p| p.children.iter().any(|(ns, l)| ns == NS_DAV && l == "collection"))
}

/// An href resolved to its path in the one form the mirror keeps (servers may answer with full
/// URLs or percent-encode differently): see [`normalize_href`].
pub fn path_of(base: &Url, href: &str) -> Option<String> {
    base.join(href).ok().map(|u| normalize_href(u.path()))
}

/// The one form in which hrefs are stored and compared, by the poller, the API and the journal
/// (RFC 3986 §6.2.2): escapes of unreserved characters and of `@` (a `pchar`, §3.3) are decoded,
/// other escapes get upper-case hex, and what may not stand raw in a path (spaces, controls,
/// non-ASCII, a `%` that starts no escape) is escaped. Radicale lists `a@b.ics` as `a%40b.ics`;
/// both are `a@b.ics` here. Idempotent.
pub fn normalize_href(href: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = href.as_bytes();
    let mut out = String::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            let v = h << 4 | l;
            if v.is_ascii_alphanumeric() || b"-._~@".contains(&v) {
                out.push(v as char);
            } else {
                out.push_str(&format!("%{v:02X}"));
            }
            i += 3;
            continue;
        }
        if b <= b' ' || b >= 0x7f || b"%\"<>`{}".contains(&b) {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(b as char);
        }
        i += 1;
    }
    out
}

/// What changed since `token`: sync-collection when the collection offers a token, else a full
/// etag listing. An invalid token restarts from scratch (a complete listing). With `stored` (the
/// mirror's etags, which the plan will be made against), the answer is compared with them as it
/// is read and only what differs is kept (`dav::listing`).
pub async fn list_changes(
    client: &DavClient,
    collection: &Url,
    token: Option<&str>,
    server_has_tokens: bool,
    stored: Option<&[(String, Option<String>)]>,
) -> Result<Listing, ServiceError> {
    if server_has_tokens {
        let mut mirror = stored.map(Mirror::new);
        let mut token = token.map(str::to_owned);
        let fresh = |complete| Listing {
            complete,
            ..Listing::default()
        };
        let mut collect = Collect::new(collection, fresh(token.is_none()), mirror.as_mut());
        for _ in 0..MAX_CONTINUATIONS {
            let body = sync_collection_body(token.as_deref());
            collect.truncated = false;
            match listing::request(client, "REPORT", collection, "0", &body, &mut collect).await? {
                listing::Answer::Read(answered) => {
                    collect.listing.token = answered.or(collect.listing.token.take());
                    if !collect.truncated {
                        return Ok(collect.finish());
                    }
                    token = collect.listing.token.clone();
                }
                listing::Answer::InvalidSyncToken if token.is_some() => {
                    tracing::info!(%collection, "sync-token no longer valid: full resync (RFC 6578 §3.2)");
                    token = None;
                    collect.restart(fresh(true));
                }
                listing::Answer::InvalidSyncToken | listing::Answer::Unsupported(_) => break,
            }
        }
    }
    list_etags(client, collection, stored).await
}

/// The whole collection with its etags (PROPFIND Depth 1): the listing without tokens, and what
/// a token's delta is checked against (`verify`). With `stored`, only what differs from it is
/// kept, as in [`list_changes`].
pub async fn list_etags(
    client: &DavClient,
    collection: &Url,
    stored: Option<&[(String, Option<String>)]>,
) -> Result<Listing, ServiceError> {
    let mut mirror = stored.map(Mirror::new);
    let listing = Listing {
        complete: true,
        ..Listing::default()
    };
    let mut collect = Collect::new(collection, listing, mirror.as_mut());
    listing::request(client, "PROPFIND", collection, "1", PROPFIND_ETAGS, &mut collect).await?;
    Ok(collect.finish())
}

/// One fetched member: its body (`None` when the server no longer has it) and etag.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched {
    pub href: String,
    pub etag: Option<String>,
    pub body: Option<String>,
}

/// One multiget round trip for up to [`MULTIGET_BATCH`] hrefs.
pub async fn multiget(
    client: &DavClient,
    collection: &Url,
    service: DavService,
    hrefs: &[String],
) -> Result<Vec<Fetched>, ServiceError> {
    let body = multiget_body(service, hrefs);
    match client.report(collection, "1", &body).await? {
        ReportAnswer::Multistatus(ms) => Ok(read_multiget(&ms, collection, service)),
        other => Err(ServiceError::Protocol(format!(
            "{collection}: multiget refused ({other:?})"
        ))),
    }
}

/// Reads a multiget answer: each member's etag and data, kept as the server sent them.
pub fn read_multiget(ms: &Multistatus, collection: &Url, service: DavService) -> Vec<Fetched> {
    let (ns, data) = match service {
        DavService::CalDav => (NS_CALDAV, "calendar-data"),
        DavService::CardDav => (NS_CARDDAV, "address-data"),
    };
    ms.responses
        .iter()
        .filter_map(|r| {
            let href = path_of(collection, &r.href)?;
            Some(Fetched {
                href,
                etag: r.prop(NS_DAV, "getetag").map(|p| p.text.clone()),
                body: r.prop(ns, data).map(|p| p.raw.clone()),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dav::xml::parse_multistatus;

    fn s(v: &[(&str, Option<&str>)]) -> Vec<(String, Option<String>)> {
        v.iter()
            .map(|(h, e)| (h.to_string(), e.map(str::to_owned)))
            .collect()
    }

    #[test]
    fn plan_fetches_only_what_changed() {
        let stored = s(&[("/c/1", Some("a")), ("/c/2", Some("b")), ("/c/3", Some("c"))]);
        let listing = Listing {
            present: s(&[("/c/1", Some("a")), ("/c/2", Some("B")), ("/c/4", Some("d"))]),
            removed: vec![],
            complete: true,
            token: None,
            members: 0,
        };
        let p = plan(&stored, &listing, &HashSet::new());
        assert_eq!(p.fetch, vec!["/c/2", "/c/4"]);
        assert_eq!(p.remove, vec!["/c/3"]);
        assert!(p.held.is_empty());
    }

    #[test]
    fn guard_holds_a_mass_deletion() {
        let stored: Vec<_> = (0..20)
            .map(|i| (format!("/c/{i}"), Some("e".to_owned())))
            .collect();
        let empty = Listing {
            complete: true,
            ..Listing::default()
        };
        let p = plan(&stored, &empty, &HashSet::new());
        assert!(p.remove.is_empty());
        assert_eq!(p.held.len(), 20);
        // Losing a few is normal.
        let some = Listing {
            removed: vec!["/c/1".into(), "/c/2".into()],
            ..Listing::default()
        };
        assert_eq!(plan(&stored, &some, &HashSet::new()).remove.len(), 2);
        // A small collection may empty out.
        let small: Vec<_> = stored[..5].to_vec();
        assert_eq!(plan(&small, &empty, &HashSet::new()).remove.len(), 5);
    }

    #[test]
    fn unsent_items_are_neither_removed_nor_counted_by_the_guard() {
        let stored = s(&[("/c/1", Some("a")), ("/c/2", Some("b")), ("/c/new", None)]);
        let unsent: HashSet<String> = ["/c/new".to_owned()].into();
        let listing = Listing {
            present: s(&[("/c/1", Some("a")), ("/c/2", Some("b"))]),
            complete: true,
            ..Listing::default()
        };
        assert!(plan(&stored, &listing, &unsent).remove.is_empty());
        let gone = Listing {
            removed: vec!["/c/new".into(), "/c/1".into()],
            ..Listing::default()
        };
        assert_eq!(plan(&stored, &gone, &unsent).remove, vec!["/c/1"]);
        // 10 mirrored, 8 of them still unsent: losing 2 of the 2 settled is a small collection
        // emptying out, not a mass deletion of 10.
        let many: Vec<_> = (0..10)
            .map(|i| (format!("/c/{i}"), Some("e".to_owned())))
            .collect();
        let unsent: HashSet<String> = (2..10).map(|i| format!("/c/{i}")).collect();
        let empty = Listing {
            complete: true,
            ..Listing::default()
        };
        let p = plan(&many, &empty, &unsent);
        assert_eq!((p.remove.len(), p.held.len()), (2, 0));
    }

    const SYNC: &str = include_str!("../../tests/fixtures/radicale/sync-collection.xml");
    const MULTIGET: &str = include_str!("../../tests/fixtures/radicale/calendar-multiget.xml");

    #[test]
    fn reads_recorded_sync_and_multiget_answers() {
        let col = Url::parse("http://127.0.0.1:5299/alice/work/").unwrap();
        let (listing, truncated) = read_sync_answer(&parse_multistatus(SYNC.as_bytes()).unwrap(), &col);
        assert!(!truncated);
        assert!(
            listing
                .token
                .as_deref()
                .unwrap()
                .starts_with("http://radicale.org/ns/sync/")
        );
        assert_eq!(listing.present.len(), 2, "{listing:?}");
        let e1 = listing
            .present
            .iter()
            .find(|(h, _)| h == "/alice/work/e1.ics")
            .unwrap();
        assert!(e1.1.as_deref().unwrap().starts_with('"'));
        let got = read_multiget(
            &parse_multistatus(MULTIGET.as_bytes()).unwrap(),
            &col,
            DavService::CalDav,
        );
        assert_eq!(got.len(), 2);
        let e1 = got.iter().find(|f| f.href == "/alice/work/e1.ics").unwrap();
        let body = e1.body.as_deref().unwrap();
        assert!(body.starts_with("BEGIN:VCALENDAR\r\n"), "{body:?}");
        assert!(body.contains("SUMMARY:One\r\n"));
    }

    #[test]
    fn truncation_and_removals() {
        let body = r#"<d:multistatus xmlns:d="DAV:"><d:response><d:href>/c/</d:href><d:status>HTTP/1.1 507 Insufficient Storage</d:status></d:response>
<d:response><d:href>/c/gone.ics</d:href><d:status>HTTP/1.1 404 Not Found</d:status></d:response><d:sync-token>t2</d:sync-token></d:multistatus>"#;
        let col = Url::parse("https://dav.example.org/c/").unwrap();
        let (listing, truncated) = read_sync_answer(&parse_multistatus(body.as_bytes()).unwrap(), &col);
        assert!(truncated);
        assert_eq!(listing.removed, vec!["/c/gone.ics"]);
        assert_eq!(listing.token.as_deref(), Some("t2"));
    }

    #[test]
    fn recorded_invalid_token_names_the_precondition() {
        let body = include_str!("../../tests/fixtures/radicale/sync-invalid-token.xml");
        assert!(crate::dav::xml::names_precondition(
            body.as_bytes(),
            "valid-sync-token"
        ));
        assert!(!crate::dav::xml::names_precondition(
            b"<html/>",
            "valid-sync-token"
        ));
    }

    #[test]
    fn hrefs_have_one_form() {
        for (given, want) in [
            ("/alice/cal/a%40b.ics", "/alice/cal/a@b.ics"),
            ("/alice/cal/a@b.ics", "/alice/cal/a@b.ics"),
            (
                "/alice%40example.org/cal/x%2dy%7E.ics",
                "/alice@example.org/cal/x-y~.ics",
            ),
            ("/c/a%2fb%20c.ics", "/c/a%2Fb%20c.ics"),
            ("/c/a b.ics", "/c/a%20b.ics"),
            ("/c/100%.ics", "/c/100%25.ics"),
            ("/c/caf\u{e9}.vcf", "/c/caf%C3%A9.vcf"),
            ("/c/caf%c3%a9.vcf", "/c/caf%C3%A9.vcf"),
        ] {
            assert_eq!(normalize_href(given), want, "{given}");
            assert_eq!(normalize_href(want), want, "idempotent on {want}");
        }
        let col = Url::parse("http://127.0.0.1:1/alice/cal/").unwrap();
        assert_eq!(
            path_of(&col, "http://127.0.0.1:1/alice/cal/x%40y.ics").as_deref(),
            Some("/alice/cal/x@y.ics")
        );
    }

    #[test]
    fn multiget_body_escapes_hrefs() {
        let b = multiget_body(DavService::CardDav, &["/a/b&c.vcf".into()]);
        assert!(b.contains("addressbook-multiget") && b.contains("/a/b&amp;c.vcf"));
    }

    proptest::proptest! {
        #[test]
        fn plan_never_removes_more_than_stored(n in 0usize..40, keep in 0usize..40, removed in 0usize..40) {
            let stored: Vec<_> = (0..n).map(|i| (format!("/c/{i}"), Some("e".to_owned()))).collect();
            let listing = Listing {
                present: stored.iter().take(keep).cloned().collect(),
                removed: (0..removed).map(|i| format!("/c/{i}")).collect(),
                complete: keep % 2 == 0,
                token: None,
                members: 0,
            };
            let p = plan(&stored, &listing, &HashSet::new());
            proptest::prop_assert!(p.remove.len() + p.held.len() <= n * 2);
            if n >= GUARD_MIN_ITEMS {
                proptest::prop_assert!(p.remove.len() as f64 <= n as f64 * GUARD_MAX_SHARE);
            }
        }
    }
}
