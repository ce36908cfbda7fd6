//! Finding an account's servers from its email address, and trying each candidate for real.
//!
//! ```text
//!   email ─► domain ─► DNS: SRV (RFC 6186, RFC 6764, RFC 5804 §1.8) + TXT path (RFC 6764 §4)
//!                          │
//!   round 1: given URLs and SRV candidates, every service at once ──► best-ranked success
//!   round 2: Thunderbird autoconfig (autoconfig.DOMAIN, DOMAIN/.well-known) and the presets
//!            (iCloud, Fastmail, Yahoo by domain; Zimbra, SmarterMail, Open-Xchange DAV paths)
//!   round 3: common host names for services still missing (sieve beside the IMAP host)
//! ```
//!
//! Each probe has a short timeout and all probes of a round run concurrently, so a round costs
//! about one timeout at worst. Candidates that break the plaintext-to-loopback rule are listed
//! as tried and refused, never contacted (invariant 8).

pub mod autoconfig;
pub mod dns;
pub mod probe;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::future::join_all;
use serde::Serialize;

use crate::error::ServiceError;
use crate::formats::discovery::{self as rules, Candidate, Service, SrvRecord};
use crate::formats::providers;
use crate::net::endpoint::{self, Protocol};
use crate::net::tls;

pub use probe::Login;

/// One probe gives up after this long by default: the user is waiting.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// How to discover.
#[derive(Debug, Clone)]
pub struct Options {
    /// A DNS server instead of the system's (`[agent] dns`).
    pub dns: Option<SocketAddr>,
    pub timeout: Duration,
    pub tls_ca: Option<PathBuf>,
    /// Pinned certificates (`--trust-fingerprint`), and where to note the certificates seen.
    pub tls_pins: tls::Pins,
    pub witness: Option<tls::Witness>,
    /// With a login each candidate is logged in to; without, only transport and greeting count.
    pub login: Option<Login>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            dns: None,
            timeout: PROBE_TIMEOUT,
            tls_ca: None,
            tls_pins: tls::Pins::default(),
            witness: None,
            login: None,
        }
    }
}

/// One candidate tried: what, where from, how it went, how long it took.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub service: Service,
    pub url: String,
    pub source: String,
    pub ok: bool,
    /// What was established, or why it failed (never containing the password).
    pub detail: String,
    /// True when the server refused the credentials: the server is right, the password is not.
    pub auth_failed: bool,
    pub ms: u64,
}

/// What discovery chose per service, and everything it tried.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Discovery {
    pub found: BTreeMap<Service, String>,
    pub tried: Vec<Attempt>,
    /// DNS lookups that failed (as opposed to finding no record).
    pub dns_errors: Vec<String>,
    /// Autoconfig URLs that gave nothing, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub autoconfig: Vec<String>,
    /// The provider recognised (from autoconfig, a preset's domain, or the servers found).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Where to make an app password, when the provider's server refused the password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_password: Option<String>,
    pub elapsed_ms: u64,
}

impl Discovery {
    /// Services whose server refused the password.
    pub fn auth_failures(&self) -> Vec<&Attempt> {
        self.tried
            .iter()
            .filter(|a| a.auth_failed && !self.found.contains_key(&a.service))
            .collect()
    }
}

impl Serialize for Service {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.key())
    }
}

/// Looks for `wanted` services of `email`; `given` URLs are tried instead of discovering.
pub async fn discover(
    email: &str,
    given: &BTreeMap<Service, String>,
    wanted: &[Service],
    options: &Options,
) -> Result<Discovery, ServiceError> {
    let began = Instant::now();
    let domain = rules::email_domain(email)
        .ok_or_else(|| ServiceError::Config(format!("`{email}` is not an email address")))?;
    let tls = tls::client_config_with(
        options.tls_ca.as_deref(),
        &options.tls_pins,
        options.witness.clone(),
    )?;
    let mut out = Discovery::default();

    let mut round: Vec<Candidate> = given
        .iter()
        .map(|(service, url)| Candidate {
            service: *service,
            url: url.clone(),
            source: "given".into(),
            rank: 0,
        })
        .collect();
    let missing: Vec<Service> = wanted
        .iter()
        .copied()
        .filter(|s| !given.contains_key(s))
        .collect();
    if !missing.is_empty() {
        let resolver = dns::Dns::new(options.dns)?;
        let lookups = missing.iter().map(|s| srv_for(&resolver, *s, &domain));
        for (candidates, errors) in join_all(lookups).await {
            round.extend(candidates);
            out.dns_errors.extend(errors);
        }
    }
    try_round(&mut out, round, &tls, options).await;

    let imap_host = out
        .found
        .get(&Service::Imap)
        .and_then(|u| url::Url::parse(u).ok())
        .and_then(|u| u.host_str().map(str::to_owned));
    // A server that refused the password is the right server: no guessing past it.
    let located: Vec<Service> = out
        .tried
        .iter()
        .filter(|a| a.auth_failed)
        .map(|a| a.service)
        .collect();
    let still: Vec<Service> = missing
        .iter()
        .copied()
        .filter(|s| !out.found.contains_key(s) && !located.contains(s))
        .collect();
    let mut autoconfig_provider = None;
    if !still.is_empty() {
        let resolver = options.dns.map(|_| dns::Dns::new(options.dns)).transpose()?;
        let (file, notes) = autoconfig::fetch(&domain, email, &tls, resolver.as_ref(), options.timeout).await;
        out.autoconfig = notes;
        let mut known: Vec<Candidate> = Vec::new();
        if let Some(file) = file {
            autoconfig_provider = file.provider.clone();
            known.extend(file.candidates.into_iter().filter(|c| still.contains(&c.service)));
        }
        // Presets for what the domain's own file did not name.
        for s in still
            .iter()
            .filter(|s| !known.iter().any(|c| c.service == **s))
            .collect::<Vec<_>>()
        {
            known.extend(providers::candidates(*s, &domain, imap_host.as_deref()));
        }
        try_round(&mut out, known, &tls, options).await;
    }
    let imap_host = imap_host.or_else(|| {
        out.found
            .get(&Service::Imap)
            .and_then(|u| url::Url::parse(u).ok())
            .and_then(|u| u.host_str().map(str::to_owned))
    });
    let located: Vec<Service> = out
        .tried
        .iter()
        .filter(|a| a.auth_failed)
        .map(|a| a.service)
        .collect();
    let guesses: Vec<Candidate> = still
        .iter()
        .filter(|s| !out.found.contains_key(s) && !located.contains(s))
        .flat_map(|s| rules::guesses(*s, &domain, imap_host.as_deref()))
        .collect();
    try_round(&mut out, guesses, &tls, options).await;
    let provider = providers::by_domain(&domain).or_else(|| {
        out.found
            .values()
            .chain(out.tried.iter().filter(|a| a.auth_failed).map(|a| &a.url))
            .find_map(|u| providers::by_url(u))
    });
    out.provider = autoconfig_provider.or_else(|| provider.map(|p| p.name.to_owned()));
    if !out.auth_failures().is_empty() {
        out.app_password = provider.and_then(|p| p.app_password).map(str::to_owned);
    }
    out.elapsed_ms = began.elapsed().as_millis() as u64;
    Ok(out)
}

/// The SRV (and for DAV, TXT) answers of one service as candidates, plus lookup errors.
async fn srv_for(resolver: &dns::Dns, service: Service, domain: &str) -> (Vec<Candidate>, Vec<String>) {
    let queries: Vec<_> = rules::srv_queries(service).collect();
    let lookups = queries.iter().map(|q| async move {
        let name = format!("{}.{domain}", q.label);
        let srv = resolver.srv(&name).await;
        let txt = if service.is_dav() && matches!(&srv, Ok(r) if !r.is_empty()) {
            resolver.txt(&name).await.map(|t| rules::txt_path(&t))
        } else {
            Ok(None)
        };
        (*q, srv, txt)
    });
    let mut answers: Vec<(&rules::SrvQuery, Vec<SrvRecord>, Option<String>)> = Vec::new();
    let mut errors = Vec::new();
    for (q, srv, txt) in join_all(lookups).await {
        let records = srv.unwrap_or_else(|e| {
            errors.push(e);
            Vec::new()
        });
        let path = txt.unwrap_or_else(|e| {
            errors.push(e);
            None
        });
        answers.push((q, records, path));
    }
    let mut candidates = rules::srv_candidates(&answers);
    for c in &mut candidates {
        c.source = format!("{}.{domain}", c.source);
    }
    (candidates, errors)
}

/// Probes every candidate at once; per service the best-ranked success is chosen.
async fn try_round(
    out: &mut Discovery,
    candidates: Vec<Candidate>,
    tls: &std::sync::Arc<rustls::ClientConfig>,
    options: &Options,
) {
    let probes = candidates.into_iter().map(|c| async move {
        let began = Instant::now();
        let result = match endpoint::parse(protocol(c.service), &c.url) {
            Err(e) => Err(ServiceError::Config(format!("not tried: {e}"))),
            Ok(ep) => {
                probe::probe(
                    c.service,
                    &ep,
                    tls.clone(),
                    options.login.as_ref(),
                    options.timeout,
                )
                .await
            }
        };
        (c, result, began.elapsed())
    });
    let mut best: BTreeMap<Service, u32> = BTreeMap::new();
    for (c, result, elapsed) in join_all(probes).await {
        let ok = result.is_ok();
        if ok && best.get(&c.service).is_none_or(|r| c.rank < *r) {
            best.insert(c.service, c.rank);
            out.found.insert(c.service, c.url.clone());
        }
        out.tried.push(Attempt {
            service: c.service,
            url: c.url,
            source: c.source,
            ok,
            auth_failed: matches!(result, Err(ServiceError::Auth(_))),
            detail: match result {
                Ok(detail) => detail,
                Err(e) => e.to_string(),
            },
            ms: elapsed.as_millis() as u64,
        });
    }
}

/// The URL rules of a service (schemes, default ports, loopback rule).
pub fn protocol(service: Service) -> Protocol {
    match service {
        Service::Imap => Protocol::Imap,
        Service::Smtp => Protocol::Smtp,
        Service::CalDav | Service::CardDav => Protocol::Dav,
        Service::Sieve => Protocol::Sieve,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refused_urls_are_listed_not_contacted() {
        let given = BTreeMap::from([(Service::CalDav, "http://dav.example.org/".to_owned())]);
        let d = discover(
            "alice@example.invalid",
            &given,
            &[Service::CalDav],
            &Options::default(),
        )
        .await
        .unwrap();
        assert!(d.found.is_empty());
        let a = &d.tried[0];
        assert!(!a.ok && a.detail.contains("not a loopback address"), "{a:?}");
        assert_eq!(a.source, "given");
    }

    #[tokio::test]
    async fn a_closed_port_fails_fast() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let given = BTreeMap::from([(Service::Imap, format!("imap://127.0.0.1:{port}"))]);
        let d = discover(
            "alice@example.invalid",
            &given,
            &[Service::Imap],
            &Options::default(),
        )
        .await
        .unwrap();
        assert!(!d.tried[0].ok);
        assert!(d.tried[0].ms < 2000, "{:?}", d.tried[0]);
    }
}
