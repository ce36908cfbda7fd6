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
//!
//! The same rule decides every URL a DAV client sends credentials to, whatever its source (the
//! configuration, discovery, a link in a server's answer, a redirect): [`credential_rule`].
//! Loopback is decided by address (127.0.0.0/8, `::1`) or by the one name `localhost` (RFC 6761
//! §6.3, which resolvers answer from the hosts file). An IPv4-mapped address (`::ffff:127.0.0.1`)
//! and names under `.localhost` are not loopback here: the first reaches whatever the IPv4 stack
//! routes it to, the second is whatever DNS says. A URL carrying a password (`user:pass@host`)
//! is refused, and the refusal does not repeat it.

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
    /// The account's own proxy (`proxy` in the config), used even for loopback; without it the
    /// `*_PROXY` variables decide (see [`crate::net::proxy`]).
    pub proxy: Option<crate::net::proxy::Proxy>,
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
    /// The password is not repeated: the message names the host only.
    #[error(
        "the URL for `{host}` contains a password; remove it from the URL (the password comes from password_command or the keyring)"
    )]
    PasswordInUrl { host: String },
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

/// True for 127.0.0.0/8, `::1` and the name `localhost` (RFC 6761 §6.3). Not for
/// `::ffff:127.0.0.1` (an IPv4-mapped address is not loopback by `Ipv6Addr::is_loopback`, and
/// which stack answers it is the system's choice) nor for `*.localhost` (a name, resolved by DNS).
pub fn is_loopback_host(host: &str) -> bool {
    let trimmed = host.trim_start_matches('[').trim_end_matches(']');
    if trimmed.eq_ignore_ascii_case("localhost") || trimmed.eq_ignore_ascii_case("localhost.") {
        return true;
    }
    trimmed
        .parse::<IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false)
}

/// The one rule for a URL that a DAV client sends credentials to (invariant 8): `https`, or
/// `http` to a loopback host, and no password inside the URL itself.
pub fn credential_rule(url: &Url) -> Result<(), EndpointError> {
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or(EndpointError::MissingHost)?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    if url.password().is_some() {
        return Err(EndpointError::PasswordInUrl { host });
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback_host(&host) => Ok(()),
        "http" => Err(EndpointError::PlaintextNotLoopback {
            url: url.to_string(),
            host,
            hint: "https",
        }),
        other => Err(EndpointError::WrongScheme {
            found: other.to_owned(),
            expected: Protocol::Dav.schemes(),
        }),
    }
}

/// Parses and checks one server URL for `proto`.
pub fn parse(proto: Protocol, input: &str) -> Result<Endpoint, EndpointError> {
    // url's own messages never quote the input, so a password in it is not repeated.
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
    if url.password().is_some() {
        return Err(EndpointError::PasswordInUrl { host });
    }
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
        proxy: None,
    })
}

impl Endpoint {
    /// The proxy a connection to this endpoint goes through, if any.
    pub fn proxy_to_use(&self) -> Option<crate::net::proxy::Proxy> {
        use crate::net::proxy;
        proxy::choose(
            self.proxy.as_ref(),
            self.url.scheme(),
            &self.host,
            &proxy::process_env,
        )
    }

    /// A TCP stream to the server, through the proxy when one applies ([`Self::proxy_to_use`]).
    /// The caller bounds the time of the whole connect; `limit` bounds a proxy's handshake.
    pub async fn open_tcp(
        &self,
        limit: std::time::Duration,
    ) -> Result<tokio::net::TcpStream, crate::error::ServiceError> {
        match self.proxy_to_use() {
            Some(p) => crate::net::proxy::tunnel(&p, &self.host, self.port, limit).await,
            None => tokio::net::TcpStream::connect(self.authority())
                .await
                .map_err(|e| crate::error::ServiceError::transient(format!("{}: {e}", self.authority()))),
        }
    }

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
        // Loopback by address: neither a mapped address nor a name under .localhost.
        assert!(!is_loopback_host("[::ffff:127.0.0.1]"));
        assert!(!is_loopback_host("evil.localhost"));
        assert!(parse(Protocol::Dav, "http://[::ffff:127.0.0.1]:8080/").is_err());
        assert!(parse(Protocol::Dav, "http://dav.localhost/").is_err());
    }

    #[test]
    fn a_password_in_the_url_is_refused_without_repeating_it() {
        for (proto, url) in [
            (Protocol::Dav, "https://alice:hunter2@dav.example.org/"),
            (Protocol::Dav, "http://alice:hunter2@example.org/"),
            (Protocol::Imap, "imaps://alice:hunter2@imap.example.org"),
            (Protocol::Smtp, "smtp://alice:hunter2@127.0.0.1:25"),
            (Protocol::Sieve, "sieve://alice:hunter2@imap.example.org"),
        ] {
            let err = parse(proto, url).unwrap_err();
            assert!(matches!(err, EndpointError::PasswordInUrl { .. }), "{url}: {err}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
        // A user name alone is no secret.
        assert!(parse(Protocol::Imap, "imaps://alice@imap.example.org").is_ok());
    }

    #[test]
    fn the_credential_rule_for_links() {
        let rule = |u: &str| credential_rule(&Url::parse(u).unwrap());
        assert!(rule("https://p42-caldav.icloud.com/1234/principal/").is_ok());
        assert!(rule("http://127.0.0.1:5232/alice/").is_ok());
        assert!(rule("http://[::1]:5232/alice/").is_ok());
        assert!(rule("http://localhost:5232/alice/").is_ok());
        for bad in [
            "http://[::ffff:127.0.0.1]:5232/",
            "http://[::ffff:7f00:1]/",
            "http://dav.localhost/",
            "http://dav.example.org/",
            "http://10.0.0.1/",
            "ftp://127.0.0.1/",
            "https://a:b@dav.example.org/",
        ] {
            assert!(rule(bad).is_err(), "{bad}");
        }
    }

    mod property {
        use super::*;
        use proptest::prelude::*;
        use std::net::{Ipv4Addr, Ipv6Addr};

        fn host() -> impl Strategy<Value = String> {
            prop_oneof![
                any::<u32>().prop_map(|n| Ipv4Addr::from(n).to_string()),
                (0u8..=255, any::<u16>()).prop_map(|(b, n)| format!("127.{b}.{}.{}", n >> 8, n & 0xff)),
                any::<u128>().prop_map(|n| format!("[{}]", Ipv6Addr::from(n))),
                Just("[::1]".to_owned()),
                Just("[0:0:0:0:0:0:0:1]".to_owned()),
                any::<u32>().prop_map(|n| format!("[::ffff:{}]", Ipv4Addr::from(n))),
                (0u8..=255).prop_map(|b| format!("[::ffff:127.0.0.{b}]")),
                Just("localhost".to_owned()),
                Just("LocalHost".to_owned()),
                "[a-z]{1,8}".prop_map(|s| format!("{s}.localhost")),
                "[a-z]{1,8}".prop_map(|s| format!("localhost.{s}")),
                "[a-z]{1,8}\\.[a-z]{2,4}",
            ]
        }

        /// The reference: loopback by address, or the one name `localhost`.
        fn expected_loopback(host: &str) -> bool {
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            match bare.parse::<IpAddr>() {
                Ok(IpAddr::V4(v4)) => v4.octets()[0] == 127,
                Ok(IpAddr::V6(v6)) => v6 == Ipv6Addr::LOCALHOST,
                Err(_) => bare.eq_ignore_ascii_case("localhost"),
            }
        }

        proptest! {
            #[test]
            fn parse_and_the_credential_rule_agree(
                scheme in prop::sample::select(vec!["http", "https", "imap", "imaps", "smtp", "smtps", "sieve", "ftp"]),
                host in host(),
                port in prop::option::of(1u16..),
                user in prop::option::of("[a-z]{1,6}"),
                password in prop::option::of("[A-Za-z0-9]{4,10}"),
                path in "(/[a-z0-9]{0,6}){0,3}",
            ) {
                let password = password.map(|p| format!("Pw{p}Secret"));
                let userinfo = match (&user, &password) {
                    (_, Some(p)) => format!("{}:{p}@", user.as_deref().unwrap_or("")),
                    (Some(u), None) => format!("{u}@"),
                    (None, None) => String::new(),
                };
                let port = port.map(|p| format!(":{p}")).unwrap_or_default();
                let input = format!("{scheme}://{userinfo}{host}{port}{path}");
                for proto in [Protocol::Imap, Protocol::Smtp, Protocol::Dav, Protocol::Sieve] {
                    match parse(proto, &input) {
                        Ok(e) => {
                            prop_assert!(password.is_none(), "{input} accepted with a password");
                            prop_assert_eq!(e.loopback, expected_loopback(&host), "{}", input);
                            if e.security == Security::Plain {
                                prop_assert!(expected_loopback(&host), "{input}: plaintext off loopback");
                            }
                            if proto == Protocol::Dav {
                                prop_assert!(credential_rule(&e.url).is_ok(), "{input}");
                            }
                        }
                        Err(err) => {
                            if let Some(p) = &password {
                                prop_assert!(!err.to_string().contains(p.as_str()), "{err}");
                            }
                            if proto == Protocol::Dav && let Ok(url) = Url::parse(&input) {
                                prop_assert!(credential_rule(&url).is_err(), "{input}: {err}");
                            }
                        }
                    }
                }
            }
        }
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
