//! The first pull of a collection in one streaming request (issue 22): on an empty mirror, beside
//! the listing that gives the token, one calendar-query (RFC 4791 §7.8) / addressbook-query
//! (RFC 6352 §8.6) carrying every member's data instead of a multiget per hundred members, read
//! as it arrives and handed on in batches, so memory follows one batch, not the collection.
//!
//! Why not sync-collection asking for the data (RFC 6578 §3.2), which would bring the token in
//! the same answer: Radicale 3.1 twice in five runs of `tests/tests/dav_sync.rs` (1,000 events,
//! a loaded machine) never answered it (no byte in 60 s, the process asleep), while the
//! address-book service listed the same home; the listing plus the query passed every run.
//!
//! ```text
//!   REPORT ──207──► chunks ──► quick-xml (async) ──► xml::Builder ──► DavResponse
//!      │                 └ bytes since the last response > MAX_ITEM: refused
//!      │                                   ├─ data ──► batch (BATCH items or BATCH_BYTES) ──► channel
//!      │                                   ├─ no data ──► missing (the caller multigets them)
//!      │                                   └─ the collection with 507 ──► truncated (RFC 6578 §3.6)
//!      └─ refused (400/403/405/409/415/501/507) ──► None: the caller lists and multigets
//! ```
//! Hostile input: a body may be of any length, but one response may hold at most [`MAX_ITEM`]
//! bytes (the limit a whole multiget answer had), counted both as text kept and as bytes read
//! since the last complete response, so neither the parser's buffer nor a response grows past
//! it; nesting and property counts keep the limits of [`xml`].
//!
//! Batches go out on a bounded channel: the caller parses and stores them on other threads while
//! this task reads on (`children::dav_first`), and a full channel holds the reading back, so
//! memory stays a few batches whatever the speed of either side. A closed channel (its reader
//! failed) ends the pull with [`WRITER_STOPPED`]; the caller has the reader's own error.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use quick_xml::NsReader;
use tokio::io::AsyncBufRead;
use tokio::sync::mpsc::Sender;
use tokio_util::io::StreamReader;
use url::Url;

use crate::dav::DavClient;
use crate::dav::client::{MAX_BODY, classify_reqwest};
use crate::dav::discovery::DavService;
use crate::dav::sync::{Fetched, is_collection, normalize_href, path_of};
use crate::dav::xml::{self, Builder, DavResponse, Fed, NS_CALDAV, NS_CARDDAV, NS_DAV};
use crate::error::ServiceError;

/// The most one response of a streamed answer may hold.
pub const MAX_ITEM: usize = MAX_BODY;
/// Items handed on at once …
pub const BATCH: usize = 500;
/// … or fewer, once their bodies reach this many bytes.
pub const BATCH_BYTES: usize = 4 * 1024 * 1024;

/// The error of a pull whose batches' receiver went away: the receiver knows why.
pub const WRITER_STOPPED: &str = "the receiver of the streamed batches stopped";

/// What one streamed first pull did.
#[derive(Debug, Default, PartialEq)]
pub struct FirstPull {
    /// Members handed on with their data.
    pub written: usize,
    /// Members the answer named without their data: the caller fetches them by multiget.
    pub missing: Vec<String>,
    /// The server stopped early (a 507 for the collection, RFC 4791 §7.8 `number-of-matches`):
    /// the caller fetches the rest by multiget.
    pub truncated: bool,
}

/// The request body: the query of `service` for every member, with its data.
pub fn body(service: DavService) -> String {
    let (query, data, ns) = match service {
        DavService::CalDav => ("calendar-query", "calendar-data", NS_CALDAV),
        DavService::CardDav => ("addressbook-query", "address-data", NS_CARDDAV),
    };
    // RFC 4791 §9.7.1: a VCALENDAR comp-filter matches every object; RFC 6352 §10.5: an
    // empty filter matches every card.
    let filter = match service {
        DavService::CalDav => r#"<x:filter><x:comp-filter name="VCALENDAR"/></x:filter>"#,
        DavService::CardDav => "<x:filter/>",
    };
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<x:{query} xmlns:d="DAV:" xmlns:x="{ns}"><d:prop><d:getetag/><x:{data}/></d:prop>{filter}</x:{query}>"#
    )
}

/// Pulls `collection` whole in one request, sending each batch on `batches` as it is read.
/// `Ok(None)`: the server refused the request, nothing was sent.
pub async fn first_pull(
    client: &DavClient,
    collection: &Url,
    service: DavService,
    batches: Sender<Vec<Fetched>>,
) -> Result<Option<FirstPull>, ServiceError> {
    let sent = std::time::Instant::now();
    let (url, resp) = match client.report_streamed(collection, "1", &body(service)).await? {
        Ok(answer) => answer,
        Err(status) => {
            tracing::info!(%collection, status, "streaming first pull refused: listing and multiget instead");
            return Ok(None);
        }
    };
    let (reader, since, failed) = chunked(resp, &url, MAX_ITEM, "answer");
    let answered = sent.elapsed();
    let read = read_answer(reader, collection, service, MAX_ITEM, &since, &batches).await;
    tracing::info!(
        answered_s = answered.as_secs_f64(),
        read_s = (sent.elapsed() - answered).as_secs_f64(),
        "streaming first pull: the answer's headers after answered_s, its body read in read_s"
    );
    read.map(Some).map_err(|e| failed.cause(e, &url))
}

/// A multistatus body read as it arrives, one whole `DAV:response` at a time; each resets
/// `since`, the bytes counted by [`chunked`] since the last complete response.
pub(crate) struct Responses<'a, R> {
    reader: NsReader<R>,
    builder: Builder,
    buf: Vec<u8>,
    since: &'a AtomicUsize,
}

impl<'a, R: AsyncBufRead + Unpin> Responses<'a, R> {
    /// One response may keep `max_item` bytes of text.
    pub(crate) fn new(reader: R, max_item: usize, since: &'a AtomicUsize) -> Self {
        let mut reader = NsReader::from_reader(reader);
        reader.config_mut().trim_text(false);
        let builder = Builder::new(max_item);
        Responses {
            reader,
            builder,
            buf: Vec::new(),
            since,
        }
    }

    /// The next whole response; `None` at the end of the body.
    pub(crate) async fn next(&mut self) -> Result<Option<DavResponse>, ServiceError> {
        loop {
            let position = self.reader.buffer_position();
            let fed = match self.reader.read_resolved_event_into_async(&mut self.buf).await {
                Ok((ns, event)) => self.builder.feed(ns, event),
                Err(e) => Err(xml::XmlError(format!("after byte {position}: {e}"))),
            }
            .map_err(|e| ServiceError::Protocol(e.to_string()))?;
            self.buf.clear();
            match fed {
                Fed::More => {}
                Fed::End => return Ok(None),
                Fed::Response(r) => {
                    self.since.store(0, Ordering::Relaxed);
                    return Ok(Some(r));
                }
            }
        }
    }

    /// The body's sync-token, once it was read to its end; an error if it was no multistatus.
    pub(crate) fn finish(self) -> Result<Option<String>, ServiceError> {
        self.builder
            .finish()
            .map_err(|e| ServiceError::Protocol(e.to_string()))
    }
}

/// Where a streamed read failed first: the chunk source's own error (a network failure or the
/// size limit), kept because the XML reader above it sees only an I/O error.
#[derive(Clone, Default)]
pub(crate) struct Failed(Arc<Mutex<Option<ServiceError>>>);

impl Failed {
    /// The real cause of `e`, named by `url`.
    pub(crate) fn cause(&self, e: ServiceError, url: &Url) -> ServiceError {
        match self.0.lock().ok().and_then(|mut f| f.take()).unwrap_or(e) {
            ServiceError::Protocol(m) if !m.contains(url.as_str()) => {
                ServiceError::Protocol(format!("{url}: {m}"))
            }
            other => other,
        }
    }

    fn keep(&self, e: ServiceError) -> std::io::Error {
        let message = e.to_string();
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(e);
        }
        std::io::Error::other(message)
    }
}

/// The body of `resp` as a buffered reader over its chunks, refused once more than `limit` bytes
/// arrive since the last complete response: the counter returned, which the multistatus reader
/// resets at each response. `what` names the answer in that error ("answer", "listing").
pub(crate) fn chunked(
    resp: reqwest::Response,
    url: &Url,
    limit: usize,
    what: &'static str,
) -> (impl AsyncBufRead + Unpin, Arc<AtomicUsize>, Failed) {
    let since = Arc::new(AtomicUsize::new(0));
    let failed = Failed::default();
    let chunks = {
        let (since, failed, url) = (since.clone(), failed.clone(), url.clone());
        futures::stream::unfold(Some(resp), move |resp| {
            let (since, failed, url) = (since.clone(), failed.clone(), url.clone());
            async move {
                let mut resp = resp?;
                match resp.chunk().await {
                    Ok(Some(chunk)) => {
                        if since.fetch_add(chunk.len(), Ordering::Relaxed) + chunk.len() > limit {
                            let e = ServiceError::Protocol(format!(
                                "{url}: one response of the {what} is larger than {} MiB; refused",
                                limit >> 20
                            ));
                            return Some((Err(failed.keep(e)), None));
                        }
                        Some((Ok(chunk), Some(resp)))
                    }
                    Ok(None) => None,
                    Err(e) => Some((Err(failed.keep(classify_reqwest(&url, e))), None)),
                }
            }
        })
    };
    (StreamReader::new(Box::pin(chunks)), since, failed)
}

/// Reads a multistatus answer from `reader` as it arrives: see the module's drawing. One
/// response may keep `max_item` bytes of text; `since` counts the bytes read since the last
/// complete response, and is reset at each one.
pub async fn read_answer<R: AsyncBufRead + Unpin>(
    reader: R,
    collection: &Url,
    service: DavService,
    max_item: usize,
    since: &AtomicUsize,
    batches: &Sender<Vec<Fetched>>,
) -> Result<FirstPull, ServiceError> {
    let send = |batch| async move {
        batches
            .send(batch)
            .await
            .map_err(|_| ServiceError::Config(WRITER_STOPPED.into()))
    };
    let (data_ns, data_name) = match service {
        DavService::CalDav => (NS_CALDAV, "calendar-data"),
        DavService::CardDav => (NS_CARDDAV, "address-data"),
    };
    let mut responses = Responses::new(reader, max_item, since);
    let mut out = FirstPull::default();
    let (mut batch, mut batch_bytes) = (Vec::new(), 0usize);
    let self_href = normalize_href(collection.path());
    while let Some(mut r) = responses.next().await? {
        let Some(href) = path_of(collection, &r.href) else {
            continue;
        };
        if href == self_href {
            out.truncated |= r.status == Some(507);
            continue;
        }
        // A member of another collection, or a removal (nothing is stored yet): not ours here.
        if !href.starts_with(&self_href) || r.status == Some(404) || is_collection(&r) {
            continue;
        }
        let etag = r.prop(NS_DAV, "getetag").map(|p| p.text.clone());
        let data = r
            .props
            .iter_mut()
            .find(|p| p.status == 200 && p.ns == data_ns && p.name == data_name)
            .map(|p| std::mem::take(&mut p.raw));
        match data {
            Some(body) => {
                batch_bytes += body.len();
                batch.push(Fetched {
                    href,
                    etag,
                    body: Some(body),
                });
                if batch.len() >= BATCH || batch_bytes >= BATCH_BYTES {
                    out.written += batch.len();
                    send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH))).await?;
                    batch_bytes = 0;
                }
            }
            None => out.missing.push(href),
        }
    }
    responses.finish()?;
    if !batch.is_empty() {
        out.written += batch.len();
        send(batch).await?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAL: &str = "http://h/alice/cal/";

    /// The per-response limit of the tests.
    const LIMIT: usize = 4096;

    async fn read(body: &str) -> Result<(FirstPull, Vec<Vec<Fetched>>), ServiceError> {
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        let since = AtomicUsize::new(0);
        let collection = Url::parse(CAL).unwrap();
        let out = read_answer(
            body.as_bytes(),
            &collection,
            DavService::CalDav,
            LIMIT,
            &since,
            &tx,
        )
        .await?;
        drop(tx);
        let mut batches = Vec::new();
        while let Some(b) = rx.recv().await {
            batches.push(b);
        }
        Ok((out, batches))
    }

    fn member(i: usize, data: &str) -> String {
        format!(
            "<d:response><d:href>/alice/cal/{i}.ics</d:href><d:propstat><d:prop><d:getetag>\"e{i}\"</d:getetag>\
             {data}</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>"
        )
    }

    fn answer(members: &str, tail: &str) -> String {
        format!(
            r#"<?xml version="1.0"?><d:multistatus xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">{members}{tail}</d:multistatus>"#
        )
    }

    #[test]
    fn bodies_ask_for_the_data() {
        let q = body(DavService::CalDav);
        assert!(q.contains("calendar-query") && q.contains(r#"comp-filter name="VCALENDAR""#));
        let a = body(DavService::CardDav);
        assert!(a.contains("addressbook-query") && a.contains("<x:address-data/>"));
    }

    #[tokio::test]
    async fn members_come_in_batches_with_the_missing_and_the_truncation() {
        let mut members: String = (0..BATCH + 3)
            .map(|i| {
                member(
                    i,
                    &format!("<c:calendar-data>BEGIN:VCALENDAR\r\n{i}&amp;</c:calendar-data>"),
                )
            })
            .collect();
        members.push_str(&member(9999, ""));
        let tail = "<d:response><d:href>/alice/cal/</d:href><d:status>HTTP/1.1 507 Insufficient Storage</d:status></d:response><d:sync-token>tok-1</d:sync-token>";
        let (out, batches) = read(&answer(&members, tail)).await.unwrap();
        assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), vec![BATCH, 3]);
        assert_eq!(out.written, BATCH + 3);
        assert_eq!(out.missing, vec!["/alice/cal/9999.ics".to_string()]);
        assert!(out.truncated);
        let first = &batches[0][0];
        assert_eq!(first.href, "/alice/cal/0.ics");
        assert_eq!(first.etag.as_deref(), Some("\"e0\""));
        assert_eq!(first.body.as_deref(), Some("BEGIN:VCALENDAR\r\n0&"));
    }

    #[tokio::test]
    async fn a_receiver_gone_stops_the_read() {
        let members: String = (0..BATCH + 1)
            .map(|i| member(i, "<c:calendar-data>BEGIN:VCALENDAR</c:calendar-data>"))
            .collect();
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        drop(rx);
        let collection = Url::parse(CAL).unwrap();
        let body = answer(&members, "");
        let since = AtomicUsize::new(0);
        let e = read_answer(
            body.as_bytes(),
            &collection,
            DavService::CalDav,
            LIMIT,
            &since,
            &tx,
        )
        .await
        .unwrap_err();
        assert!(e.to_string().contains(WRITER_STOPPED), "{e}");
    }

    #[tokio::test]
    async fn the_limit_is_per_response_and_a_truncated_body_fails() {
        // Many members that together pass the limit are fine: it is per response.
        let data = format!("<c:calendar-data>{}</c:calendar-data>", "x".repeat(LIMIT / 2));
        let members: String = (0..10).map(|i| member(i, &data)).collect();
        let (out, _) = read(&answer(&members, "")).await.unwrap();
        assert_eq!(out.written, 10);
        // One member past it is refused, and names the limit.
        let big = format!("<c:calendar-data>{}</c:calendar-data>", "x".repeat(LIMIT + 1));
        let e = read(&answer(&member(1, &big), "")).await.unwrap_err();
        assert!(e.to_string().contains("larger than"), "{e}");
        let cut = answer(&member(1, "<c:calendar-data>abc</c:calendar-data>"), "");
        let e = read(&cut.replace("</d:multistatus>", "")).await.unwrap_err();
        assert!(e.to_string().contains("truncated inside <multistatus>"), "{e}");
        let e = read(&cut[..cut.len() - 10]).await.unwrap_err();
        assert!(e.to_string().contains("malformed multistatus"), "{e}");
        assert!(read("<x/>").await.is_err());
    }
}
