//! Fetching Thunderbird autoconfig files for a domain (issue 21): the domain's own
//! `https://autoconfig.DOMAIN/mail/config-v1.1.xml`, then
//! `https://DOMAIN/.well-known/autoconfig/mail/config-v1.1.xml`. HTTPS only, verified, no
//! redirects followed to other schemes, each fetch under the probe timeout and capped at
//! [`AUTOCONFIG_MAX`]; the file is read by `formats::autoconfig`.
//!
//! ```text
//!   autoconfig.DOMAIN ─┬─► 200 + clientConfig ─► candidates (rank 500…), provider name
//!   DOMAIN/.well-known ┘   anything else ─► a line in dns_errors-like notes, discovery goes on
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;

use crate::discovery::dns::Dns;
use crate::formats::autoconfig::{self, AUTOCONFIG_MAX, Autoconfig};

/// The URLs asked, in order (Thunderbird's own order, without its central ISPDB).
pub fn urls(domain: &str, email: &str) -> Vec<String> {
    let q = url::form_urlencoded::byte_serialize(email.as_bytes()).collect::<String>();
    vec![
        format!("https://autoconfig.{domain}/mail/config-v1.1.xml?emailaddress={q}"),
        format!("https://{domain}/.well-known/autoconfig/mail/config-v1.1.xml"),
    ]
}

/// The first autoconfig file found for `email`, or why none was (one note per URL tried).
/// `dns` (the test's name server) resolves the hosts instead of the system when given.
pub async fn fetch(
    domain: &str,
    email: &str,
    tls: &Arc<ClientConfig>,
    dns: Option<&Dns>,
    timeout: Duration,
) -> (Option<Autoconfig>, Vec<String>) {
    let mut notes = Vec::new();
    for url in urls(domain, email) {
        match fetch_one(&url, email, tls, dns, timeout).await {
            Ok(found) => return (Some(found), notes),
            Err(e) => notes.push(format!(
                "autoconfig {}: {e}",
                url.split('?').next().unwrap_or(&url)
            )),
        }
    }
    (None, notes)
}

async fn fetch_one(
    url: &str,
    email: &str,
    tls: &Arc<ClientConfig>,
    dns: Option<&Dns>,
    timeout: Duration,
) -> Result<Autoconfig, String> {
    let parsed = url::Url::parse(url).map_err(|e| e.to_string())?;
    let host = parsed.host_str().unwrap_or_default().to_owned();
    let mut builder = reqwest::Client::builder()
        .tls_backend_preconfigured((**tls).clone())
        .redirect(reqwest::redirect::Policy::limited(3))
        .https_only(true)
        .connect_timeout(timeout)
        .timeout(timeout)
        .user_agent(concat!("opconnect/", env!("CARGO_PKG_VERSION")));
    if let Some(dns) = dns {
        let ips = dns.ips(&host).await?;
        let ip = ips.first().ok_or_else(|| format!("{host} has no address"))?;
        builder = builder.resolve(
            &host,
            SocketAddr::new(*ip, parsed.port_or_known_default().unwrap_or(443)),
        );
    }
    let client = builder.build().map_err(|e| e.to_string())?;
    let mut resp = client.get(url).send().await.map_err(|e| chain(&e))?;
    if !resp.status().is_success() {
        return Err(format!("answered {}", resp.status()));
    }
    // Capped while reading: a server that sends more is refused, not buffered.
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| chain(&e))? {
        if body.len() + chunk.len() > AUTOCONFIG_MAX {
            return Err(format!("the file is over {AUTOCONFIG_MAX} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    let text = String::from_utf8(body).map_err(|_| "the file is not UTF-8".to_owned())?;
    autoconfig::parse(&text, email, &format!("autoconfig {host}"))
}

/// An error with its causes (reqwest's own message says only "error sending request").
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_places_are_asked() {
        let u = urls("example.org", "alice+x@example.org");
        assert_eq!(
            u,
            vec![
                "https://autoconfig.example.org/mail/config-v1.1.xml?emailaddress=alice%2Bx%40example.org",
                "https://example.org/.well-known/autoconfig/mail/config-v1.1.xml",
            ]
        );
    }
}
