//! Proxies (issue 21): which one a connection goes through — the account's `proxy`, else the
//! `*_PROXY` variables, else (on Windows) the system setting — and the login it carries. The
//! tunnels IMAP, SMTP and ManageSieve open through them are in `net/tunnel.rs`; reqwest opens
//! its own from [`Proxy::reqwest_url`]. TLS runs inside the tunnel, end to end with the server.
//!
//! ```text
//!   account `proxy` ──────────────────────────────► always (loopback too)
//!   loopback target ──────────────────────────────► direct
//!   NO_PROXY match ───────────────────────────────► direct
//!   https: HTTPS_PROXY, ALL_PROXY · http: HTTP_PROXY, ALL_PROXY
//!   imap/smtp/sieve: ALL_PROXY, HTTPS_PROXY ──────► that proxy
//!   none set, Windows: Internet Settings ─────────► that proxy, unless ProxyOverride matches
//! ```
//!
//! A login (`http://user:password@host:port`) is kept as a [`Secret`]: [`Proxy::url`], which
//! every message uses, never holds it; only the handshake (`Proxy-Authorization: Basic`, RFC 9110
//! §11.7.1; RFC 1929 for SOCKS5) and reqwest's copy see the password.

use crate::account::Secret;
use crate::net::endpoint::is_loopback_host;

pub use crate::net::tunnel::tunnel;

/// The proxy protocols spoken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyKind {
    /// HTTP: absolute-form requests for `http://`, CONNECT tunnels for the rest.
    Http,
    /// SOCKS5 (`socks5://` resolves names locally for reqwest; `socks5h://` at the proxy).
    Socks5 { remote_dns: bool },
}

/// One proxy, as `http://[user:password@]host:port` or `socks5://…` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxy {
    pub kind: ProxyKind,
    pub host: String,
    pub port: u16,
    /// The login the proxy wants, if any.
    pub login: Option<ProxyLogin>,
}

/// A user name and password for a proxy; the password prints as `***` (invariant 7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyLogin {
    pub user: String,
    pub password: Secret,
}

impl Proxy {
    /// Reads `http://host:port`, `socks5://host:port` or `socks5h://host:port`, each with an
    /// optional `user:password@` (percent-encoded, as curl reads it); a bare `host:port` is
    /// HTTP. No error message repeats the password.
    pub fn parse(text: &str) -> Result<Proxy, String> {
        let text = text.trim();
        let with_scheme = if text.contains("://") {
            text.to_owned()
        } else {
            format!("http://{text}")
        };
        let url = url::Url::parse(&with_scheme)
            .map_err(|e| format!("`{}` is not a proxy URL ({e})", strip_auth(text)))?;
        let (kind, default_port) = match url.scheme() {
            "http" => (ProxyKind::Http, 8080),
            "socks5" => (ProxyKind::Socks5 { remote_dns: false }, 1080),
            "socks5h" => (ProxyKind::Socks5 { remote_dns: true }, 1080),
            other => {
                return Err(format!(
                    "proxy scheme `{other}` is not one of http, socks5, socks5h"
                ));
            }
        };
        let login = if url.username().is_empty() && url.password().is_none() {
            None
        } else {
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8()
                    .map(|c| c.into_owned())
                    .map_err(|_| "the proxy's user name or password is not UTF-8 once decoded".to_owned())
            };
            let user = decode(url.username())?;
            let password = Secret::new(decode(url.password().unwrap_or(""))?);
            // RFC 1929 §2: each at most 255 bytes.
            if user.is_empty() || user.len() > 255 || password.expose().len() > 255 {
                return Err("the proxy's user name must be 1 to 255 bytes, its password at most 255".into());
            }
            Some(ProxyLogin { user, password })
        };
        let host = url
            .host_str()
            .ok_or_else(|| "the proxy URL has no host".to_owned())?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        Ok(Proxy {
            kind,
            host,
            // `url` drops a port equal to the scheme's default (80 for http): it was given.
            port: url
                .port()
                .unwrap_or(if gave_port(&with_scheme) { 80 } else { default_port }),
            login,
        })
    }

    /// The proxy as messages name it: scheme, host and port, never the login.
    pub fn url(&self) -> String {
        let scheme = match self.kind {
            ProxyKind::Http => "http",
            ProxyKind::Socks5 { remote_dns: false } => "socks5",
            ProxyKind::Socks5 { remote_dns: true } => "socks5h",
        };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{scheme}://{host}:{}", self.port)
    }

    /// [`Self::url`] with the user name (not the password), for advice to the user.
    pub fn named(&self) -> String {
        match &self.login {
            Some(l) => format!("{} (user `{}`)", self.url(), l.user),
            None => self.url(),
        }
    }

    /// The URL reqwest takes: with the login, percent-encoded. Only for reqwest's proxy
    /// setting; never log it.
    pub fn reqwest_url(&self) -> String {
        let plain = self.url();
        let Some(login) = &self.login else { return plain };
        let Ok(mut url) = url::Url::parse(&plain) else {
            return plain;
        };
        if url.set_username(&login.user).is_err() || url.set_password(Some(login.password.expose())).is_err()
        {
            return plain;
        }
        url.to_string().trim_end_matches('/').to_owned()
    }
}

/// Whether `scheme://[userinfo@]host:port[/…]` names a port.
fn gave_port(text: &str) -> bool {
    let rest = text.split_once("://").map_or(text, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    host_port
        .rsplit_once(':')
        .is_some_and(|(h, p)| !h.ends_with(':') && !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

fn strip_auth(text: &str) -> String {
    match (text.find("://"), text.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***{}", &text[..s + 3], &text[at..]),
        (None, Some(at)) => format!("***{}", &text[at..]),
        _ => text.to_owned(),
    }
}

/// The proxy for a connection to `host` over `scheme` (`https`, `http`, `imap`, `smtp`,
/// `sieve`…): the account's `explicit` one, else the variables `env` reads, else the system
/// setting (Windows; see the diagram). A variable that cannot be read is logged and ignored.
pub fn choose(
    explicit: Option<&Proxy>,
    scheme: &str,
    host: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<Proxy> {
    choose_with(explicit, scheme, host, env, &crate::net::winproxy::current)
}

/// [`choose`] with the system setting read by `system` (a test gives its own).
pub fn choose_with(
    explicit: Option<&Proxy>,
    scheme: &str,
    host: &str,
    env: &dyn Fn(&str) -> Option<String>,
    system: &dyn Fn() -> Option<crate::net::winproxy::SystemProxy>,
) -> Option<Proxy> {
    if let Some(p) = explicit {
        return Some(p.clone());
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if is_loopback_host(host) {
        return None;
    }
    let var = |name: &str| {
        env(&name.to_ascii_uppercase())
            .or_else(|| env(&name.to_ascii_lowercase()))
            .filter(|v| !v.trim().is_empty())
    };
    if let Some(list) = var("no_proxy")
        && no_proxy_matches(&list, host)
    {
        return None;
    }
    let order: &[&str] = match scheme {
        "https" => &["https_proxy", "all_proxy"],
        "http" => &["http_proxy", "all_proxy"],
        _ => &["all_proxy", "https_proxy"],
    };
    let Some((name, value)) = order.iter().find_map(|n| var(n).map(|v| (*n, v))) else {
        return system().and_then(|s| s.for_target(scheme, host));
    };
    match Proxy::parse(&value) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::warn!(variable = %name.to_ascii_uppercase(), error = %e, "proxy variable ignored");
            None
        }
    }
}

/// The process environment, for [`choose`].
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// `NO_PROXY`: comma-separated names (a leading `.` or `*.` matches subdomains; a bare name
/// matches itself and its subdomains, as curl does), addresses, or `*` for everything.
fn no_proxy_matches(list: &str, host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    list.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|entry| {
            let entry = entry.to_ascii_lowercase();
            let entry = entry
                .split_once(':')
                .filter(|_| !entry.contains('['))
                .map_or(entry.as_str(), |(h, _)| h);
            let bare = entry.trim_start_matches("*.").trim_start_matches('.');
            entry == "*" || host == bare || host.ends_with(&format!(".{bare}"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    }

    #[test]
    fn proxies_parse() {
        let p = Proxy::parse("http://proxy.corp:3128").unwrap();
        assert_eq!(
            (p.kind, p.host.as_str(), p.port),
            (ProxyKind::Http, "proxy.corp", 3128)
        );
        assert_eq!(Proxy::parse("proxy.corp:3128").unwrap(), p);
        assert_eq!(Proxy::parse("http://proxy.corp:80").unwrap().port, 80);
        assert_eq!(Proxy::parse("http://proxy.corp").unwrap().port, 8080);
        assert_eq!(Proxy::parse("http://[::1]:80").unwrap().port, 80);
        assert_eq!(Proxy::parse("http://[::1]").unwrap().port, 8080);
        let s = Proxy::parse("socks5://127.0.0.1").unwrap();
        assert_eq!((s.port, s.url().as_str()), (1080, "socks5://127.0.0.1:1080"));
        assert!(Proxy::parse("ftp://x").unwrap_err().contains("ftp"));
        let e = Proxy::parse("http://bob:s3cret@[bad").unwrap_err();
        assert!(!e.contains("s3cret"), "{e}");
    }

    #[test]
    fn a_login_is_read_and_never_shown() {
        let p = Proxy::parse("http://bob:s3cr%40t@proxy.corp:3128").unwrap();
        let login = p.login.clone().unwrap();
        assert_eq!((login.user.as_str(), login.password.expose()), ("bob", "s3cr@t"));
        assert_eq!(p.url(), "http://proxy.corp:3128");
        assert_eq!(p.named(), "http://proxy.corp:3128 (user `bob`)");
        assert!(!format!("{p:?}").contains("s3cr"), "{p:?}");
        assert_eq!(p.reqwest_url(), "http://bob:s3cr%40t@proxy.corp:3128");
        let s = Proxy::parse("socks5h://carol:pw@127.0.0.1:1081").unwrap();
        assert_eq!(s.reqwest_url(), "socks5h://carol:pw@127.0.0.1:1081");
        assert_eq!(
            Proxy::parse("http://127.0.0.1:1").unwrap().reqwest_url(),
            "http://127.0.0.1:1"
        );
        let long = format!("socks5://bob:{}@p:1", "x".repeat(256));
        let e = Proxy::parse(&long).unwrap_err();
        assert!(e.contains("255") && !e.contains("xxx"), "{e}");
    }

    #[test]
    fn the_rules_choose() {
        let env = env_of(&[
            ("HTTPS_PROXY", "http://web:3128"),
            ("all_proxy", "socks5://socks:1080"),
            ("NO_PROXY", "intranet.example,.corp.example,10.1.2.3"),
        ]);
        let host = |h: &str, s: &str| choose(None, s, h, &env).map(|p| p.url());
        assert_eq!(
            host("dav.example.org", "https").as_deref(),
            Some("http://web:3128")
        );
        assert_eq!(
            host("imap.example.org", "imap").as_deref(),
            Some("socks5://socks:1080")
        );
        assert_eq!(
            host("dav.example.org", "http").as_deref(),
            Some("socks5://socks:1080")
        );
        assert_eq!(host("intranet.example", "https"), None);
        assert_eq!(host("mail.intranet.example", "imap"), None);
        assert_eq!(host("x.corp.example", "https"), None);
        assert_eq!(host("10.1.2.3", "https"), None);
        assert_eq!(host("127.0.0.1", "https"), None, "loopback stays direct");
        assert_eq!(host("localhost", "imap"), None);
        let explicit = Proxy::parse("http://127.0.0.1:8888").unwrap();
        assert_eq!(
            choose(Some(&explicit), "imap", "127.0.0.1", &env)
                .map(|p| p.url())
                .as_deref(),
            Some("http://127.0.0.1:8888"),
            "an account's own proxy is used even for loopback"
        );
        let none = env_of(&[]);
        assert_eq!(
            choose_with(None, "https", "dav.example.org", &none, &|| None),
            None
        );
        // Without variables, the system setting (Windows) decides; with them, they do.
        let system = || crate::net::winproxy::SystemProxy::parse(1, "corp:8080", "");
        assert_eq!(
            choose_with(None, "https", "dav.example.org", &none, &system).map(|p| p.url()),
            Some("http://corp:8080".into())
        );
        assert_eq!(
            choose_with(None, "https", "dav.example.org", &env, &system).map(|p| p.url()),
            Some("http://web:3128".into())
        );
        let star = env_of(&[("HTTPS_PROXY", "http://web:3128"), ("no_proxy", "*")]);
        assert_eq!(choose(None, "https", "dav.example.org", &star), None);
    }
}
