//! Server URLs (INTERFACE §3) turned into endpoints, with the rule that plaintext goes to loopback only.
//!
//! | scheme      | port | security                                   |
//! |-------------|------|--------------------------------------------|
//! | `imaps`     | 993  | implicit TLS (RFC 8314 §3.3)               |
//! | `imap`      | 143  | STARTTLS (RFC 3501 §6.2.1), required       |
//! | `smtps`     | 465  | implicit TLS (RFC 8314 §3.3)               |
//! | `smtp`      | 587  | submission with STARTTLS (RFC 6409, 3207)  |
//! | `https`     | 443  | TLS                                        |
//! | `http`      | 80   | none: loopback only                        |
//! | `sieve`     | 4190 | STARTTLS (RFC 5804 §2.2), required         |
//!
//! "Required" STARTTLS is relaxed on loopback only: a local test server that offers no STARTTLS is
//! spoken to in plaintext (invariant 8).

use std::net::IpAddr;

use url::Url;

/// Which protocol a URL is for; decides the schemes and default ports allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Imap,
    Smtp,
    Dav,
    Sieve,
}

/// How the connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// TLS from the first byte.
    Tls,
    /// Plain connect, then STARTTLS; plaintext only when loopback and the server offers no STARTTLS.
    StartTls,
    /// No encryption at all (`http://`), loopback only.
    Plain,
}

/// A validated server address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub url: Url,
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub loopback: bool,
}

/// Why a URL was refused; the config loader adds the file, account and key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("not a valid URL ({0})")]
    Malformed(String),
    #[error("scheme `{found}` is not one of {expected}")]
    WrongScheme { found: String, expected: &'static str },
    #[error("the URL has no host")]
    MissingHost,
    #[error(
        "`{url}` is unencrypted and `{host}` is not a loopback address; use an encrypted scheme ({hint})"
    )]
    PlaintextNotLoopback {
        url: String,
        host: String,
        hint: &'static str,
    },
}

impl Protocol {
    fn schemes(self) -> &'static str {
        match self {
            Protocol::Imap => "imaps, imap",
            Protocol::Smtp => "smtps, smtp",
            Protocol::Dav => "https, http",
            Protocol::Sieve => "sieve",
        }
    }

    fn scheme(self, scheme: &str) -> Option<(u16, Security)> {
        Some(match (self, scheme) {
            (Protocol::Imap, "imaps") => (993, Security::Tls),
            (Protocol::Imap, "imap") => (143, Security::StartTls),
            (Protocol::Smtp, "smtps") => (465, Security::Tls),
            (Protocol::Smtp, "smtp" | "submission") => (587, Security::StartTls),
            (Protocol::Dav, "https") => (443, Security::Tls),
            (Protocol::Dav, "http") => (80, Security::Plain),
            (Protocol::Sieve, "sieve") => (4190, Security::StartTls),
            _ => return None,
        })
    }
}

/// True for 127.0.0.0/8, ::1 and `localhost` (RFC 6761 §6.3 reserves it for loopback).
pub fn is_loopback_host(host: &str) -> bool {
    let trimmed = host.trim_start_matches('[').trim_end_matches(']');
    if trimmed.eq_ignore_ascii_case("localhost") || trimmed.to_ascii_lowercase().ends_with(".localhost") {
        return true;
    }
    trimmed
        .parse::<IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false)
}

/// Parses and checks one server URL for `proto`.
pub fn parse(proto: Protocol, input: &str) -> Result<Endpoint, EndpointError> {
    let url = Url::parse(input.trim()).map_err(|e| EndpointError::Malformed(e.to_string()))?;
    let (default_port, security) = proto
        .scheme(url.scheme())
        .ok_or_else(|| EndpointError::WrongScheme {
            found: url.scheme().to_owned(),
            expected: proto.schemes(),
        })?;
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or(EndpointError::MissingHost)?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let loopback = is_loopback_host(&host);
    if security == Security::Plain && !loopback {
        return Err(EndpointError::PlaintextNotLoopback {
            url: url.to_string(),
            host,
            hint: "https",
        });
    }
    let port = url.port().unwrap_or(default_port);
    Ok(Endpoint {
        url,
        host,
        port,
        security,
        loopback,
    })
}

impl Endpoint {
    /// `host:port` for socket connects (IPv6 hosts bracketed).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_give_ports_and_security() {
        let e = parse(Protocol::Imap, "imaps://imap.example.org").unwrap();
        assert_eq!((e.port, e.security, e.loopback), (993, Security::Tls, false));
        let e = parse(Protocol::Imap, "imap://127.0.0.1:1143").unwrap();
        assert_eq!((e.port, e.security, e.loopback), (1143, Security::StartTls, true));
        let e = parse(Protocol::Smtp, "smtp://mail.example.org").unwrap();
        assert_eq!((e.port, e.security), (587, Security::StartTls));
        let e = parse(Protocol::Sieve, "sieve://imap.example.org").unwrap();
        assert_eq!(e.port, 4190);
        let e = parse(Protocol::Dav, "http://[::1]:5232/").unwrap();
        assert_eq!((e.authority(), e.loopback), ("[::1]:5232".to_owned(), true));
    }

    #[test]
    fn plaintext_only_to_loopback() {
        assert!(parse(Protocol::Dav, "http://localhost:5232/").is_ok());
        assert!(parse(Protocol::Dav, "http://127.8.9.1/").is_ok());
        let err = parse(Protocol::Dav, "http://dav.example.org/").unwrap_err();
        assert!(matches!(err, EndpointError::PlaintextNotLoopback { .. }), "{err}");
        // imap:// is STARTTLS, which is allowed anywhere: plaintext is then refused at connect time.
        assert!(parse(Protocol::Imap, "imap://imap.example.org").is_ok());
        // A loopback-looking name that is not loopback.
        assert!(!is_loopback_host("localhost.example.org"));
        assert!(!is_loopback_host("10.0.0.1"));
    }

    #[test]
    fn bad_urls_say_why() {
        assert!(matches!(
            parse(Protocol::Imap, "not a url"),
            Err(EndpointError::Malformed(_))
        ));
        let err = parse(Protocol::Imap, "https://imap.example.org").unwrap_err();
        assert_eq!(err.to_string(), "scheme `https` is not one of imaps, imap");
        assert_eq!(
            parse(Protocol::Imap, "imaps:///INBOX"),
            Err(EndpointError::MissingHost)
        );
    }
}
