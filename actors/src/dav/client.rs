//! The DAV HTTP client: OPTIONS, PROPFIND and principal discovery over reqwest, with the account's
//! TLS trust, Basic or Digest authentication ([`crate::dav::auth`]), and redirects followed by hand so that each hop is checked
//! against the plaintext-to-loopback rule (invariant 8).
//!
//! Where the credentials go (one rule for every URL, whatever its source):
//!
//! ```text
//!   any URL ── endpoint::credential_rule: https, or http to loopback by address ── else refused
//!      │
//!      ├─ its origin is trusted ──► sent with Basic credentials
//!      │    trusted: the configured origin, and origins that a trusted answer names for this
//!      │    account in discovery (principal, home sets, outbox, a delegator's homes): `named`
//!      └─ not trusted (e.g. reached only by a redirect to another host) ──► sent without them
//! ```

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{ACCEPT_ENCODING, ETAG, HeaderMap, HeaderValue, LOCATION, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use rustls::ClientConfig;
use url::Url;

use crate::account::Secret;
use crate::dav::auth::Challenges;
use crate::dav::xml::{self, Multistatus, NS_DAV};
use crate::error::ServiceError;
use crate::net::endpoint::{self, Endpoint};

/// RFC 9110 §15.4: clients should detect redirect loops; five hops is plenty for discovery.
const MAX_REDIRECTS: usize = 5;
/// The largest answer body read (streamed; the rest is never buffered). A multiget batch of
/// large events stays well under it; a server sending more fails that one request.
pub const MAX_BODY: usize = 64 * 1024 * 1024;
/// Retry-After beyond this is clamped (DESIGN.md: "Clamp Retry-After").
const MAX_RETRY_AFTER: Duration = Duration::from_secs(15 * 60);

/// An authenticated client for one DAV server.
#[derive(Clone)]
pub struct DavClient {
    http: reqwest::Client,
    base: Url,
    username: String,
    password: Secret,
    /// Origins (`scheme://host:port`) the credentials may go to, shared by clones.
    trusted: Arc<Mutex<HashSet<String>>>,
    /// Digest challenges of origins that asked for Digest (RFC 7616).
    digest: Challenges,
    /// The homes discovery found, as absolute URLs: a stored href (a path) is resolved against
    /// the home it lies under, so it reaches the host that serves it ([`DavClient::locate`]).
    homes: Arc<Mutex<Vec<Url>>>,
}

/// What `OPTIONS` says about the server (RFC 4918 §10.1, RFC 4791 §5.1, RFC 6352 §6.1).
#[derive(Debug, Clone, PartialEq)]
pub struct Compliance {
    pub classes: Vec<String>,
}

impl Compliance {
    pub fn has(&self, class: &str) -> bool {
        self.classes.iter().any(|c| c.eq_ignore_ascii_case(class))
    }
}

/// How a `REPORT` came back.
#[derive(Debug, Clone, PartialEq)]
pub enum ReportAnswer {
    Multistatus(Multistatus),
    /// RFC 6578 §3.2: the token is no longer valid; sync from scratch.
    InvalidSyncToken,
    /// The server refused the report method with this status.
    Unsupported(u16),
}

/// The longest one request may take in all, however steadily it moves.
const REQUEST_CEILING: Duration = Duration::from_secs(30 * 60);

impl DavClient {
    pub fn new(
        endpoint: &Endpoint,
        username: &str,
        password: Secret,
        tls: Arc<ClientConfig>,
        timeout: Duration,
    ) -> Result<Self, ServiceError> {
        // One rule for every protocol (net::proxy): the account's proxy, else the variables,
        // loopback direct; decided per URL, as links may lead to other hosts.
        let explicit = endpoint.proxy.clone();
        let proxy = reqwest::Proxy::custom(move |url| {
            crate::net::proxy::choose(
                explicit.as_ref(),
                url.scheme(),
                url.host_str().unwrap_or(""),
                &crate::net::proxy::process_env,
            )
            .map(|p| p.reqwest_url())
        });
        let http = reqwest::Client::builder()
            .no_proxy()
            .proxy(proxy)
            .tls_backend_preconfigured((*tls).clone())
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout)
            // Silence bounds a request, not its length: a slow upload or a trickling answer that
            // keeps moving lands; the total ceiling only catches a write that can never finish.
            .read_timeout(timeout.max(Duration::from_secs(60)))
            .timeout(REQUEST_CEILING)
            .user_agent(concat!("opconnect/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ServiceError::Config(format!("HTTP client: {e}")))?;
        endpoint::credential_rule(&endpoint.url).map_err(|e| ServiceError::Config(e.to_string()))?;
        Ok(DavClient {
            http,
            base: endpoint.url.clone(),
            username: username.to_owned(),
            password,
            trusted: Arc::new(Mutex::new(HashSet::from([origin(&endpoint.url)]))),
            homes: Arc::new(Mutex::new(Vec::new())),
            digest: Challenges::default(),
        })
    }

    pub fn base(&self) -> &Url {
        &self.base
    }

    /// Whether a request to `url` carries the credentials.
    pub fn trusts(&self, url: &Url) -> bool {
        self.trusted
            .lock()
            .map(|t| t.contains(&origin(url)))
            .unwrap_or(false)
    }

    /// `link`, which the answer from `answered` names for this account in discovery (a principal,
    /// a home set, an outbox): its origin may receive the credentials too, when `answered` itself
    /// did (iCloud serves each user's data from another host than the one configured). A link
    /// that breaks the credential rule is refused here, before any request.
    pub fn named(&self, answered: &Url, link: Url) -> Result<Url, ServiceError> {
        endpoint::credential_rule(&link).map_err(|e| {
            ServiceError::Protocol(format!(
                "{answered} names {} for this account: {e}; credentials are not sent there",
                public(&link)
            ))
        })?;
        if self.trusts(answered)
            && let Ok(mut trusted) = self.trusted.lock()
            && trusted.insert(origin(&link))
        {
            tracing::debug!(named_by = %origin(answered), origin = %origin(&link), "credentials also go to a host the server named");
        }
        Ok(link)
    }

    /// Remembers `home` (a home set discovery found, already [`DavClient::named`]) as the place
    /// of the collections under its path.
    pub fn add_home(&self, home: &Url) {
        if let Ok(mut homes) = self.homes.lock()
            && !homes.contains(home)
        {
            homes.push(home.clone());
        }
    }

    /// The absolute URL of a stored href. The mirror and the journal keep hrefs as paths; the
    /// host is the one of the home whose path is the longest prefix of the href (iCloud serves
    /// each user's homes from a partitioned host, `pNN-caldav.icloud.com`, other than the one
    /// configured), else the configured server's.
    pub fn locate(&self, href: &str) -> Result<Url, ServiceError> {
        let bad = |e: url::ParseError| ServiceError::Protocol(format!("bad href {href}: {e}"));
        if let Ok(absolute) = Url::parse(href) {
            return Ok(absolute);
        }
        let homes = self.homes.lock().map(|h| h.clone()).unwrap_or_default();
        let home = homes
            .iter()
            .filter(|h| under(href, h.path()))
            .max_by_key(|h| h.path().len())
            .unwrap_or(&self.base);
        home.join(href).map_err(bad)
    }

    /// Sends one request, following redirects (method and body kept, RFC 9110 §15.4.8/§15.4.9).
    /// Every hop obeys the credential rule; credentials go only to trusted origins, so a redirect
    /// to another host is followed without them.
    pub async fn request(
        &self,
        method: Method,
        url: &Url,
        headers: &[(&'static str, &str)],
        body: Option<&str>,
    ) -> Result<(Url, reqwest::Response), ServiceError> {
        let mut url = url.clone();
        let mut redirected_from: Option<Url> = None;
        let mut challenged = false;
        for _ in 0..=MAX_REDIRECTS + 1 {
            endpoint::credential_rule(&url).map_err(|e| match &redirected_from {
                Some(from) => ServiceError::Config(format!("{from} redirects to {}: {e}", public(&url))),
                None => ServiceError::Config(format!("{e}; credentials are not sent there")),
            })?;
            let authenticate = self.trusts(&url);
            let mut req = self.http.request(method.clone(), url.clone());
            let here = origin(&url);
            if authenticate && self.digest.wants_digest(&here) {
                // RFC 7616: this origin asked for Digest; Basic is not sent there again.
                if let Some(answer) =
                    self.digest
                        .answer(&here, &self.username, &self.password, method.as_str(), &url, body)
                {
                    req = req.header(reqwest::header::AUTHORIZATION, answer);
                }
            } else if authenticate {
                req = req.basic_auth(&self.username, Some(self.password.expose()));
            }
            for (name, value) in headers {
                req = req.header(*name, *value);
            }
            if !compressible(&method)
                && !headers
                    .iter()
                    .any(|(n, _)| n.eq_ignore_ascii_case("Accept-Encoding"))
            {
                // Without a header of ours reqwest would ask for gzip (see the module docs).
                req = req.header(ACCEPT_ENCODING, "identity");
            }
            if let Some(body) = body {
                if !headers
                    .iter()
                    .any(|(n, _)| n.eq_ignore_ascii_case("Content-Type"))
                {
                    req = req.header("Content-Type", "application/xml; charset=utf-8");
                }
                req = req.body(body.to_owned());
            }
            let resp = req.send().await.map_err(|e| classify_reqwest(&url, e))?;
            if resp.status().is_redirection()
                && let Some(location) = resp.headers().get(LOCATION)
            {
                let next = location
                    .to_str()
                    .ok()
                    .and_then(|l| url.join(l).ok())
                    .ok_or_else(|| ServiceError::Protocol(format!("{url}: unusable redirect")))?;
                redirected_from = Some(url);
                url = next;
                continue;
            }
            if resp.status() == StatusCode::UNAUTHORIZED
                && authenticate
                && !challenged
                && self.digest.learn(&here, resp.headers())
            {
                // RFC 7616 §3.3: answer the challenge once; a second 401 means a wrong login.
                tracing::debug!(origin = %here, "the server asks for Digest authentication");
                challenged = true;
                continue;
            }
            if resp.status() == StatusCode::UNAUTHORIZED
                && !authenticate
                && let Some(from) = &redirected_from
            {
                // RFC 9110 §15.4: a redirect does not extend trust; say why no login was sent.
                return Err(ServiceError::Auth(format!(
                    "{from} redirects to {}, another host, which asks for a login; credentials go only to \
                     the configured server and the hosts it names, so configure {} as the server instead",
                    public(&url),
                    origin(&url)
                )));
            }
            return Ok((url, resp));
        }
        Err(ServiceError::Protocol(format!(
            "{url}: more than {MAX_REDIRECTS} redirects"
        )))
    }

    /// A conditional `PUT` (RFC 9110 §13.1): `If-Match` on an update, `If-None-Match: *` on a
    /// create, so a change made elsewhere meanwhile is never overwritten.
    pub async fn put(
        &self,
        url: &Url,
        body: &str,
        content_type: &str,
        if_match: Option<&str>,
    ) -> Result<WriteAnswer, ServiceError> {
        let condition = match if_match {
            Some(etag) => ("If-Match", etag),
            None => ("If-None-Match", "*"),
        };
        let (url, resp) = self
            .request(
                Method::PUT,
                url,
                &[("Content-Type", content_type), condition],
                Some(body),
            )
            .await?;
        write_answer(&url, resp, if_match.is_some())
    }

    /// [`DavClient::put`] of an attendee's answer: with a Schedule-Tag, the condition is
    /// `If-Schedule-Tag-Match` (RFC 6638 §3.2.10, §8.3) instead of `If-Match`.
    pub async fn put_scheduled(
        &self,
        url: &Url,
        body: &str,
        content_type: &str,
        if_match: Option<&str>,
        schedule_tag: Option<&str>,
    ) -> Result<WriteAnswer, ServiceError> {
        let Some(tag) = schedule_tag else {
            return self.put(url, body, content_type, if_match).await;
        };
        let (url, resp) = self
            .request(
                Method::PUT,
                url,
                &[("Content-Type", content_type), ("If-Schedule-Tag-Match", tag)],
                Some(body),
            )
            .await?;
        write_answer(&url, resp, true)
    }

    /// `GET` of one calendar object with its etag and Schedule-Tag (RFC 6638 §3.2.10), or `None`
    /// when it is gone.
    pub async fn get_scheduled(&self, url: &Url) -> Result<Option<Scheduled>, ServiceError> {
        let (url, resp) = self.request(Method::GET, url, &[], None).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        check_status(&url, resp.status(), resp.headers())?;
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (etag, schedule_tag) = (header("ETag"), header("Schedule-Tag"));
        let body = read_body(&url, resp).await?;
        let body =
            String::from_utf8(body).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        Ok(Some(Scheduled {
            body,
            etag,
            schedule_tag,
        }))
    }

    /// A conditional `DELETE`.
    pub async fn delete(&self, url: &Url, if_match: Option<&str>) -> Result<WriteAnswer, ServiceError> {
        let headers: Vec<(&'static str, &str)> = if_match.map(|e| ("If-Match", e)).into_iter().collect();
        let (url, resp) = self.request(Method::DELETE, url, &headers, None).await?;
        write_answer(&url, resp, true)
    }

    /// `GET` of one item: its bytes and etag, or `None` when it is gone (404).
    pub async fn get(&self, url: &Url) -> Result<Option<(String, Option<String>)>, ServiceError> {
        let (url, resp) = self.request(Method::GET, url, &[], None).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        check_status(&url, resp.status(), resp.headers())?;
        let etag = resp
            .headers()
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = read_body(&url, resp).await?;
        let body =
            String::from_utf8(body).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        Ok(Some((body, etag)))
    }

    /// `OPTIONS`: the DAV compliance classes (`1`, `calendar-access`, `addressbook`, …).
    pub async fn options(&self, url: &Url) -> Result<Compliance, ServiceError> {
        let (url, resp) = self.request(Method::OPTIONS, url, &[], None).await?;
        check_status(&url, resp.status(), resp.headers())?;
        let classes = resp
            .headers()
            .get_all("DAV")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty())
            .collect();
        Ok(Compliance { classes })
    }

    /// `PROPFIND` with `depth` and `body`; returns the URL answered (after redirects) and the parsed body.
    pub async fn propfind(
        &self,
        url: &Url,
        depth: &str,
        body: &str,
    ) -> Result<(Url, Multistatus), ServiceError> {
        let method = Method::from_bytes(b"PROPFIND").expect("valid method");
        let (url, resp) = self.request(method, url, &[("Depth", depth)], Some(body)).await?;
        check_status(&url, resp.status(), resp.headers())?;
        if resp.status() != StatusCode::MULTI_STATUS {
            return Err(ServiceError::Protocol(format!(
                "{url}: PROPFIND answered {} instead of 207 Multi-Status",
                resp.status()
            )));
        }
        let bytes = read_body(&url, resp).await?;
        let ms = xml::parse_multistatus(&bytes).map_err(|e| ServiceError::Protocol(format!("{url}: {e}")))?;
        Ok((url, ms))
    }

    /// `REPORT` (RFC 3253 §3.6) for sync-collection and the multigets. A 403/409 naming the
    /// `valid-sync-token` precondition (RFC 6578 §3.2) and a refused report method are answers,
    /// not errors: the caller starts over or falls back to PROPFIND.
    pub async fn report(&self, url: &Url, depth: &str, body: &str) -> Result<ReportAnswer, ServiceError> {
        let method = Method::from_bytes(b"REPORT").expect("valid method");
        let (url, resp) = self.request(method, url, &[("Depth", depth)], Some(body)).await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = read_body(&url, resp).await?;
        if matches!(status.as_u16(), 403 | 409) && xml::names_precondition(&bytes, "valid-sync-token") {
            return Ok(ReportAnswer::InvalidSyncToken);
        }
        // RFC 9110 §15.5.6/§15.6.2: the server does not do this report here.
        if matches!(status.as_u16(), 400 | 405 | 415 | 501) {
            return Ok(ReportAnswer::Unsupported(status.as_u16()));
        }
        check_status(&url, status, &headers)?;
        if status != StatusCode::MULTI_STATUS {
            return Err(ServiceError::Protocol(format!(
                "{url}: REPORT answered {status} instead of 207 Multi-Status"
            )));
        }
        let ms = xml::parse_multistatus(&bytes).map_err(|e| ServiceError::Protocol(format!("{url}: {e}")))?;
        Ok(ReportAnswer::Multistatus(ms))
    }

    /// A `REPORT` whose `207` answer the caller reads as it arrives (`dav::stream`): the answer
    /// unread, or `Err(status)` when the server refuses this report here (RFC 9110 §15.5: 400,
    /// 403, 405, 415, 501; RFC 4918 §11.5: 507), so that the caller takes another way.
    pub async fn report_streamed(
        &self,
        url: &Url,
        depth: &str,
        body: &str,
    ) -> Result<Result<(Url, reqwest::Response), u16>, ServiceError> {
        let method = Method::from_bytes(b"REPORT").expect("valid method");
        let (url, resp) = self.request(method, url, &[("Depth", depth)], Some(body)).await?;
        let status = resp.status();
        if status == StatusCode::MULTI_STATUS {
            return Ok(Ok((url, resp)));
        }
        if matches!(status.as_u16(), 400 | 403 | 405 | 409 | 415 | 501 | 507) {
            return Ok(Err(status.as_u16()));
        }
        check_status(&url, status, resp.headers())?;
        Err(ServiceError::Protocol(format!(
            "{url}: REPORT answered {status} instead of 207 Multi-Status"
        )))
    }

    /// RFC 5397 §3: the authenticated user's principal URL.
    pub async fn current_user_principal(&self, start: &Url) -> Result<Url, ServiceError> {
        let (answered, ms) = self
            .propfind(start, "0", xml::PROPFIND_CURRENT_USER_PRINCIPAL)
            .await?;
        let href = ms
            .responses
            .iter()
            .find_map(|r| r.prop(NS_DAV, "current-user-principal"))
            .and_then(|p| p.hrefs.first())
            .ok_or_else(|| {
                ServiceError::Unsupported(format!("{answered}: no current-user-principal (RFC 5397)"))
            })?;
        let principal = answered
            .join(href)
            .map_err(|e| ServiceError::Protocol(format!("{answered}: bad principal href `{href}`: {e}")))?;
        self.named(&answered, principal)
    }
}

/// Reads an answer body chunk by chunk, up to [`MAX_BODY`]: a larger one (announced or sent)
/// fails this request with a clear error, and the connection is dropped unread.
pub async fn read_body(url: &Url, mut resp: reqwest::Response) -> Result<Vec<u8>, ServiceError> {
    let too_large = || {
        ServiceError::Protocol(format!(
            "{url}: the answer is larger than {} MiB; refused",
            MAX_BODY >> 20
        ))
    };
    if resp.content_length().is_some_and(|n| n > MAX_BODY as u64) {
        return Err(too_large());
    }
    let mut body = Vec::with_capacity(resp.content_length().unwrap_or(0) as usize);
    while let Some(chunk) = resp.chunk().await.map_err(|e| classify_reqwest(url, e))? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Whether an answer to `method` may come compressed: those whose etags travel in the body
/// (RFC 4918 §9.1, RFC 3253 §3.6), never a GET or a write (see the module docs).
fn compressible(method: &Method) -> bool {
    matches!(method.as_str(), "PROPFIND" | "REPORT")
}

/// `scheme://host:port` of `url`, the unit credentials are trusted for (RFC 6454 §4).
pub fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// Whether the path `href` lies at or under the collection path `path` (segment-wise).
fn under(href: &str, path: &str) -> bool {
    let path = path.trim_end_matches('/');
    href.strip_prefix(path)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// `url` without any user info, for messages.
fn public(url: &Url) -> Url {
    let mut u = url.clone();
    let _ = u.set_password(None);
    let _ = u.set_username("");
    u
}

/// A calendar object as [`DavClient::get_scheduled`] read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheduled {
    pub body: String,
    pub etag: Option<String>,
    pub schedule_tag: Option<String>,
}

/// What a conditional write came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteAnswer {
    /// Stored; the new etag when the server sent one (RFC 4791 §5.3.4 lets it not).
    Done { etag: Option<String> },
    /// 412: the item changed on the server since the client's version (a conflict).
    PreconditionFailed,
    /// 404 to a conditional request: the item was deleted on the server.
    Gone,
}

fn write_answer(url: &Url, resp: reqwest::Response, conditional: bool) -> Result<WriteAnswer, ServiceError> {
    match resp.status().as_u16() {
        200..=299 => Ok(WriteAnswer::Done {
            etag: resp
                .headers()
                .get(ETAG)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        }),
        412 => Ok(WriteAnswer::PreconditionFailed),
        404 if conditional => Ok(WriteAnswer::Gone),
        _ => {
            check_status(url, resp.status(), resp.headers())?;
            Err(ServiceError::Protocol(format!(
                "{url}: unexpected {}",
                resp.status()
            )))
        }
    }
}

/// Maps an HTTP status to what happens next: 401/403 → authentication, 5xx/408/429 → try later
/// (RFC 9110 §15.5.9, RFC 6585 §4).
pub fn check_status(url: &Url, status: StatusCode, headers: &HeaderMap) -> Result<(), ServiceError> {
    use crate::formats::providers;
    if status.is_success() {
        return Ok(());
    }
    let what = format!("{url}: {status}");
    Err(match status.as_u16() {
        401 => ServiceError::Auth(providers::hinted(
            format!("{url} answered 401 Unauthorized"),
            url.as_str(),
        )),
        407 => ServiceError::Config(format!(
            "{url}: {}",
            crate::net::tunnel::reqwest_login_problem("proxy authorization required").unwrap_or_default()
        )),
        403 => ServiceError::Auth(format!("{url} answered 403 Forbidden")),
        408 | 429 | 500..=599 => ServiceError::Transient {
            message: what,
            retry_after: headers.get(RETRY_AFTER).and_then(retry_after),
        },
        _ => ServiceError::Protocol(what),
    })
}

/// RFC 9110 §10.2.3: Retry-After in seconds (an HTTP date is treated as a minute), clamped.
fn retry_after(value: &HeaderValue) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    let secs = text.parse::<u64>().unwrap_or(60);
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

pub fn classify_reqwest(url: &Url, err: reqwest::Error) -> ServiceError {
    let mut chain = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        source = s.source();
    }
    // The URL never carries the password (Basic auth travels in a header).
    if let Some(advice) = crate::net::tunnel::reqwest_login_problem(&chain) {
        ServiceError::Config(format!("{url}: {advice}"))
    } else if chain.contains("is not trusted") || chain.contains("changed: the pinned one") {
        ServiceError::Tls(format!("{url}: {}", crate::net::tls::tidy(&chain)))
    } else if chain.contains("certificate") || chain.contains("UnknownIssuer") {
        ServiceError::Tls(format!(
            "{url}: {chain} (the server's certificate is not trusted; for a self-hosted server set tls_ca)"
        ))
    } else {
        ServiceError::transient(format!("{url}: {chain}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: &str) -> DavClient {
        let endpoint = endpoint::parse(endpoint::Protocol::Dav, base).unwrap();
        let tls = crate::net::tls::client_config(None).unwrap();
        DavClient::new(&endpoint, "u", Secret::new("p"), tls, Duration::from_secs(5)).unwrap()
    }

    #[test]
    fn stored_hrefs_reach_the_host_of_their_home() {
        let c = client("https://caldav.example.com/");
        let home = Url::parse("https://p42-caldav.example.com/123/calendars/").unwrap();
        c.add_home(&home);
        let at = |h: &str| c.locate(h).unwrap().to_string();
        assert_eq!(
            at("/123/calendars/work/a.ics"),
            "https://p42-caldav.example.com/123/calendars/work/a.ics"
        );
        assert_eq!(
            at("/123/calendars/"),
            "https://p42-caldav.example.com/123/calendars/"
        );
        // Not under the home (a sibling whose name only starts alike): the configured host.
        assert_eq!(
            at("/123/calendarsX/a.ics"),
            "https://caldav.example.com/123/calendarsX/a.ics"
        );
        assert_eq!(at("/other/a.ics"), "https://caldav.example.com/other/a.ics");
        assert_eq!(
            at("https://elsewhere.example.com/x"),
            "https://elsewhere.example.com/x"
        );
    }

    #[test]
    fn statuses_map_to_next_steps() {
        let url = Url::parse("https://dav.example.org/").unwrap();
        let h = HeaderMap::new();
        assert!(check_status(&url, StatusCode::OK, &h).is_ok());
        assert!(matches!(
            check_status(&url, StatusCode::UNAUTHORIZED, &h),
            Err(ServiceError::Auth(_))
        ));
        assert!(matches!(
            check_status(&url, StatusCode::NOT_FOUND, &h),
            Err(ServiceError::Protocol(_))
        ));
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("999999"));
        match check_status(&url, StatusCode::SERVICE_UNAVAILABLE, &h) {
            Err(ServiceError::Transient { retry_after, .. }) => {
                assert_eq!(retry_after, Some(MAX_RETRY_AFTER))
            }
            other => panic!("{other:?}"),
        }
    }
}
