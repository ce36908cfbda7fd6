//! A collection's listing read as it arrives and compared with the mirror on the way (issue 22):
//! a sync-collection answer (RFC 6578 §3.5) or a PROPFIND Depth 1 of etags (RFC 4918 §9.1) is
//! fed chunk by chunk to the multistatus parser, and each member is looked up in the mirror's
//! `(href, etag)` as soon as its response closes. Only what differs is kept: neither the answer,
//! nor its parsed tree, nor a list of every member is held, so the round after a first sync of
//! 20,000 cards holds the mirror's etags and the differences, not the 3 MB listing beside them
//! (15 MB of a 21 MB heap peak when it was parsed whole).
//!
//! ```text
//!   REPORT / PROPFIND ──207──► chunks ──► quick-xml (async) ──► xml::Builder ──► DavResponse
//!     │                  └ bytes since the last response > MAX_BODY: refused
//!     │      ├─ the collection: 507 ──► truncated (RFC 6578 §3.6)
//!     │      ├─ 404 ──► removed
//!     │      └─ member ──► Mirror: same etag ──► seen, dropped │ else ──► present
//!     ├─ 403/409 naming valid-sync-token ──► InvalidSyncToken (RFC 6578 §3.2)
//!     └─ 400/405/415/501 ──► Unsupported
//!   end of a complete listing: mirrored members never seen ──► removed
//! ```
//! Hostile input: the body may be of any length, one response may hold at most
//! [`MAX_BODY`] bytes (counted as bytes read since the last complete response, so the parser's
//! buffer cannot grow past it either), and the parser's nesting and property limits
//! ([`xml::MAX_PROPS`] bounds the members of one answer) hold as for a whole body.

use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;

use reqwest::{Method, StatusCode};
use tokio::io::AsyncBufRead;
use url::Url;

use crate::dav::DavClient;
use crate::dav::client::{MAX_BODY, check_status, read_body};
use crate::dav::stream::{Responses, chunked};
use crate::dav::sync::{Listing, is_collection, normalize_href, path_of};
use crate::dav::xml::{self, DavResponse, NS_DAV};
use crate::error::ServiceError;

/// The mirror's `(href, etag)` of one collection, each marked once a listing names it.
pub struct Mirror<'a> {
    etags: HashMap<&'a str, (Option<&'a str>, bool)>,
}

impl<'a> Mirror<'a> {
    pub fn new(stored: &'a [(String, Option<String>)]) -> Mirror<'a> {
        Mirror {
            etags: stored
                .iter()
                .map(|(h, e)| (h.as_str(), (e.as_deref(), false)))
                .collect(),
        }
    }

    /// Forgets what a listing named (a sync-collection that starts over).
    pub fn reset(&mut self) {
        self.etags.values_mut().for_each(|(_, seen)| *seen = false);
    }

    /// Marks `href` seen; true when the mirror holds it with this same (known) etag.
    fn unchanged(&mut self, href: &str, etag: Option<&str>) -> bool {
        match self.etags.get_mut(href) {
            Some((old, seen)) => {
                *seen = true;
                matches!((*old, etag), (Some(old), Some(new)) if old == new)
            }
            None => false,
        }
    }

    /// Mirrored members no listing named since the last reset.
    fn unseen(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.etags.iter().filter(|(_, (_, seen))| !seen).map(|(h, _)| *h)
    }
}

/// Adds the responses of one answer to a listing: see the module's drawing.
pub struct Collect<'m, 'a> {
    pub listing: Listing,
    /// A 507 for the collection itself: the answer was cut short (RFC 6578 §3.6).
    pub truncated: bool,
    collection: Url,
    self_href: String,
    mirror: Option<&'m mut Mirror<'a>>,
}

impl<'m, 'a> Collect<'m, 'a> {
    pub fn new(collection: &Url, listing: Listing, mirror: Option<&'m mut Mirror<'a>>) -> Self {
        Collect {
            listing,
            truncated: false,
            collection: collection.clone(),
            self_href: normalize_href(collection.path()),
            mirror,
        }
    }

    /// One response of the answer.
    pub fn take(&mut self, r: &DavResponse) {
        let Some(href) = path_of(&self.collection, &r.href) else {
            return;
        };
        if href == self.self_href {
            self.truncated |= r.status == Some(507);
            return;
        }
        if r.status == Some(404) {
            if let Some(m) = self.mirror.as_deref_mut() {
                m.unchanged(&href, None);
            }
            self.listing.removed.push(href);
        } else if !is_collection(r) {
            self.listing.members += 1;
            let etag = r.prop(NS_DAV, "getetag").map(|p| p.text.clone());
            if let Some(m) = self.mirror.as_deref_mut()
                && m.unchanged(&href, etag.as_deref())
            {
                return;
            }
            self.listing.present.push((href, etag));
        }
    }

    /// Starts the listing over (the token was refused): nothing read so far counts.
    pub fn restart(&mut self, listing: Listing) {
        self.listing = listing;
        self.truncated = false;
        if let Some(m) = self.mirror.as_deref_mut() {
            m.reset();
        }
    }

    /// The listing. A complete one compared with the mirror holds only the members that differ,
    /// so it is no longer complete: the mirrored members it never named are in `removed` instead.
    pub fn finish(mut self) -> Listing {
        if let Some(m) = self.mirror.take()
            && self.listing.complete
        {
            self.listing.removed.extend(m.unseen().map(str::to_owned));
            self.listing.complete = false;
        }
        self.listing
    }
}

/// How a listing request came back.
pub enum Answer {
    /// A 207, read into the collector; the body's sync-token.
    Read(Option<String>),
    /// RFC 6578 §3.2: the token is no longer valid.
    InvalidSyncToken,
    /// The server does not do this report here (RFC 9110 §15.5.6/§15.6.2).
    Unsupported(u16),
}

/// Sends a listing request (`REPORT` sync-collection or `PROPFIND` Depth 1) and reads its 207
/// answer as it arrives into `collect`.
pub async fn request(
    client: &DavClient,
    method: &str,
    url: &Url,
    depth: &str,
    body: &str,
    collect: &mut Collect<'_, '_>,
) -> Result<Answer, ServiceError> {
    let m = Method::from_bytes(method.as_bytes()).expect("valid method");
    let report = method == "REPORT";
    let (url, resp) = client.request(m, url, &[("Depth", depth)], Some(body)).await?;
    let status = resp.status();
    if report && matches!(status.as_u16(), 403 | 409) {
        let headers = resp.headers().clone();
        let bytes = read_body(&url, resp).await?;
        if xml::names_precondition(&bytes, "valid-sync-token") {
            return Ok(Answer::InvalidSyncToken);
        }
        check_status(&url, status, &headers)?;
        return Err(ServiceError::Protocol(format!(
            "{url}: {method} answered {status}"
        )));
    }
    if report && matches!(status.as_u16(), 400 | 405 | 415 | 501) {
        return Ok(Answer::Unsupported(status.as_u16()));
    }
    check_status(&url, status, resp.headers())?;
    if status != StatusCode::MULTI_STATUS {
        return Err(ServiceError::Protocol(format!(
            "{url}: {method} answered {status} instead of 207 Multi-Status"
        )));
    }
    let (reader, since, failed) = chunked(resp, &url, MAX_BODY, "listing");
    let token = read(reader, MAX_BODY, &since, collect).await;
    token.map(Answer::Read).map_err(|e| failed.cause(e, &url))
}

/// Reads a multistatus answer from `reader` into `collect` as it arrives; the body's
/// sync-token. One response may keep `max_item` bytes of text; `since` counts the bytes read
/// since the last complete response and is reset at each one.
pub async fn read<R: AsyncBufRead + Unpin>(
    reader: R,
    max_item: usize,
    since: &AtomicUsize,
    collect: &mut Collect<'_, '_>,
) -> Result<Option<String>, ServiceError> {
    let mut responses = Responses::new(reader, max_item, since);
    while let Some(r) = responses.next().await? {
        collect.take(&r);
    }
    responses.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const COL: &str = "http://h/alice/book/";

    fn member(i: usize, etag: &str) -> String {
        format!(
            "<d:response><d:href>/alice/book/{i}.vcf</d:href><d:propstat><d:prop><d:getetag>{etag}</d:getetag>\
             </d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>"
        )
    }

    fn answer(members: &str, tail: &str) -> String {
        format!(r#"<?xml version="1.0"?><d:multistatus xmlns:d="DAV:">{members}{tail}</d:multistatus>"#)
    }

    async fn read_str(
        body: &str,
        complete: bool,
        mirror: Option<&mut Mirror<'_>>,
        limit: usize,
    ) -> Result<(Listing, bool, Option<String>), ServiceError> {
        let url = Url::parse(COL).unwrap();
        let listing = Listing {
            complete,
            ..Listing::default()
        };
        let mut collect = Collect::new(&url, listing, mirror);
        let since = AtomicUsize::new(0);
        let token = read(body.as_bytes(), limit, &since, &mut collect).await?;
        let truncated = collect.truncated;
        Ok((collect.finish(), truncated, token))
    }

    fn stored(n: usize) -> Vec<(String, Option<String>)> {
        (0..n)
            .map(|i| (format!("/alice/book/{i}.vcf"), Some(format!("\"e{i}\""))))
            .collect()
    }

    #[tokio::test]
    async fn a_complete_listing_keeps_only_what_differs_from_the_mirror() {
        let stored = stored(1000);
        let mut mirror = Mirror::new(&stored);
        // Every member but 7 (gone) with its etag, 3 changed, 2 new.
        let mut members = String::new();
        for i in (0..1000).filter(|i| *i != 7) {
            let etag = if [10, 20, 30].contains(&i) {
                "\"new\"".to_owned()
            } else {
                format!("\"e{i}\"")
            };
            members.push_str(&member(i, &etag));
        }
        members.push_str(&member(5000, "\"x\""));
        members.push_str(&member(5001, "\"y\""));
        let tail = "<d:response><d:href>/alice/book/</d:href><d:propstat><d:prop><d:resourcetype><d:collection/></d:resourcetype></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response><d:sync-token>tok-2</d:sync-token>";
        let (listing, truncated, token) = read_str(&answer(&members, tail), true, Some(&mut mirror), 4096)
            .await
            .unwrap();
        assert!(!truncated);
        assert_eq!(token.as_deref(), Some("tok-2"));
        assert_eq!(listing.members, 1001);
        let present: Vec<&str> = listing.present.iter().map(|(h, _)| h.as_str()).collect();
        assert_eq!(
            present,
            vec![
                "/alice/book/10.vcf",
                "/alice/book/20.vcf",
                "/alice/book/30.vcf",
                "/alice/book/5000.vcf",
                "/alice/book/5001.vcf"
            ]
        );
        assert_eq!(listing.removed, vec!["/alice/book/7.vcf"]);
        assert!(!listing.complete);
        // The plan from the trimmed listing is the plan from the whole one.
        let whole = crate::dav::sync::read_sync_answer(
            &xml::parse_multistatus(answer(&members, tail).as_bytes()).unwrap(),
            &Url::parse(COL).unwrap(),
        )
        .0;
        let whole = Listing {
            complete: true,
            ..whole
        };
        let mut a = crate::dav::sync::plan(&stored, &listing, &Default::default());
        let mut b = crate::dav::sync::plan(&stored, &whole, &Default::default());
        a.fetch.sort();
        b.fetch.sort();
        assert_eq!(a, b);
    }

    #[tokio::test]
    async fn a_delta_drops_unchanged_members_and_keeps_removals() {
        let stored = stored(10);
        let mut mirror = Mirror::new(&stored);
        let gone = "<d:response><d:href>/alice/book/3.vcf</d:href><d:status>HTTP/1.1 404 Not Found</d:status></d:response>";
        let body = answer(
            &format!("{}{}{gone}", member(1, "\"e1\""), member(2, "\"z\"")),
            "",
        );
        let (listing, _, _) = read_str(&body, false, Some(&mut mirror), 4096).await.unwrap();
        assert_eq!(
            listing.present,
            vec![("/alice/book/2.vcf".into(), Some("\"z\"".into()))]
        );
        assert_eq!(listing.removed, vec!["/alice/book/3.vcf"]);
        assert_eq!(listing.members, 2);
        // Without a mirror, everything is kept.
        let (whole, _, _) = read_str(&body, false, None, 4096).await.unwrap();
        assert_eq!(whole.present.len(), 2);
    }

    #[tokio::test]
    async fn truncation_a_huge_listing_and_hostile_bodies() {
        let tail = "<d:response><d:href>/alice/book/</d:href><d:status>HTTP/1.1 507 Insufficient Storage</d:status></d:response>";
        let (_, truncated, _) = read_str(&answer(&member(1, "\"a\""), tail), false, None, 4096)
            .await
            .unwrap();
        assert!(truncated);
        // 200,000 members, all known and unchanged: nothing kept, whatever the size.
        let stored = stored(200_000);
        let mut mirror = Mirror::new(&stored);
        let members: String = (0..200_000).map(|i| member(i, &format!("\"e{i}\""))).collect();
        let (listing, _, _) = read_str(&answer(&members, ""), true, Some(&mut mirror), 4096)
            .await
            .unwrap();
        assert_eq!(listing.members, 200_000);
        assert!(listing.present.is_empty() && listing.removed.is_empty());
        // One response past the limit is refused; a cut body and a foreign root fail.
        let big = member(1, &"x".repeat(5000));
        let e = read_str(&answer(&big, ""), false, None, 4096).await.unwrap_err();
        assert!(e.to_string().contains("larger than"), "{e}");
        let cut = answer(&member(1, "\"a\""), "");
        let e = read_str(&cut.replace("</d:multistatus>", ""), false, None, 4096)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("truncated inside <multistatus>"), "{e}");
        assert!(read_str("<x/>", false, None, 4096).await.is_err());
    }
}
