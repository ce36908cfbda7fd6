//! Proxies (issue 21): which one a connection goes through — the account's `proxy`, else the
//! `*_PROXY` variables — and the tunnels IMAP, SMTP and ManageSieve open through them: HTTP
//! CONNECT (RFC 9110 §9.3.6) and SOCKS5 (RFC 1928). TLS runs inside the tunnel, end to end with
//! the server, so the proxy sees only ciphertext and certificates are checked as ever.
//!
//! ```text
//!   account `proxy` ──────────────────────────────► always (loopback too)
//!   loopback target ──────────────────────────────► direct
//!   NO_PROXY match ───────────────────────────────► direct
//!   https: HTTPS_PROXY, ALL_PROXY · http: HTTP_PROXY, ALL_PROXY
//!   imap/smtp/sieve: ALL_PROXY, HTTPS_PROXY ──────► that proxy
//! ```

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::ServiceError;
use crate::net::endpoint::is_loopback_host;

/// The longest answer head a CONNECT may bring before the tunnel is refused.
const CONNECT_HEAD_MAX: usize = 8 * 1024;

/// The proxy protocols spoken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyKind {
    /// HTTP: absolute-form requests for `http://`, CONNECT tunnels for the rest.
    Http,
    /// SOCKS5 (`socks5://` resolves names locally for reqwest; `socks5h://` at the proxy).
    Socks5 { remote_dns: bool },
}

/// One proxy, as `http://host:port` or `socks5://host:port` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxy {
    pub kind: ProxyKind,
    pub host: String,
    pub port: u16,
}

impl Proxy {
    /// Reads `http://host:port`, `socks5://host:port` or `socks5h://host:port`; a bare
    /// `host:port` is HTTP, as curl reads it. User info is refused: no password in the config
    /// or the environment's copy of it in our logs (invariant 7).
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
        if !url.username().is_empty() || url.password().is_some() {
            return Err("proxy URLs with a user name or password are not supported".into());
        }
        let host = url
            .host_str()
            .ok_or_else(|| "the proxy URL has no host".to_owned())?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        Ok(Proxy {
            kind,
            host,
            port: url.port().unwrap_or(default_port),
        })
    }

    /// The URL form reqwest takes.
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
}

fn strip_auth(text: &str) -> String {
    match (text.find("://"), text.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***{}", &text[..s + 3], &text[at..]),
        (None, Some(at)) => format!("***{}", &text[at..]),
        _ => text.to_owned(),
    }
}

/// The proxy for a connection to `host` over `scheme` (`https`, `http`, `imap`, `smtp`,
/// `sieve`…): the account's `explicit` one, else the variables `env` reads (see the diagram).
/// A variable that cannot be read is logged and ignored.
pub fn choose(
    explicit: Option<&Proxy>,
    scheme: &str,
    host: &str,
    env: &dyn Fn(&str) -> Option<String>,
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
    let (name, value) = order.iter().find_map(|n| var(n).map(|v| (*n, v)))?;
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

fn refused(proxy: &Proxy, target: &str, why: impl std::fmt::Display) -> ServiceError {
    ServiceError::transient(format!("proxy {}: tunnel to {target}: {why}", proxy.url()))
}

/// A TCP stream to `host:port` through `proxy`, ready for TLS or a plaintext greeting. The
/// caller bounds the time (every connect here runs under `connect_timeout`); `limit` bounds the
/// handshake with the proxy on its own.
pub async fn tunnel(
    proxy: &Proxy,
    host: &str,
    port: u16,
    limit: Duration,
) -> Result<TcpStream, ServiceError> {
    let target = format!("{host}:{port}");
    let work = async {
        let mut tcp = TcpStream::connect((proxy.host.as_str(), proxy.port))
            .await
            .map_err(|e| refused(proxy, &target, format!("cannot reach the proxy: {e}")))?;
        let _ = tcp.set_nodelay(true);
        match proxy.kind {
            ProxyKind::Http => http_connect(&mut tcp, proxy, host, port).await?,
            ProxyKind::Socks5 { .. } => socks5_connect(&mut tcp, proxy, host, port).await?,
        }
        tracing::debug!(proxy = %proxy.url(), %target, "tunnel open");
        Ok(tcp)
    };
    tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
        Err(refused(
            proxy,
            &target,
            format!("no answer within {}s", limit.as_secs()),
        ))
    })
}

/// RFC 9110 §9.3.6: `CONNECT host:port`; any 2xx opens the tunnel. The head is read byte by byte
/// so that nothing of the server's first bytes is swallowed.
async fn http_connect(tcp: &mut TcpStream, proxy: &Proxy, host: &str, port: u16) -> Result<(), ServiceError> {
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let request =
        format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: opconnect\r\n\r\n");
    let fail = |why: String| refused(proxy, &authority, why);
    tcp.write_all(request.as_bytes())
        .await
        .map_err(|e| fail(e.to_string()))?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= CONNECT_HEAD_MAX {
            return Err(fail(format!(
                "the proxy's answer head is over {CONNECT_HEAD_MAX} bytes"
            )));
        }
        match tcp.read(&mut byte).await.map_err(|e| fail(e.to_string()))? {
            0 => return Err(fail("the proxy closed the connection".into())),
            _ => head.push(byte[0]),
        }
    }
    let text = String::from_utf8_lossy(&head);
    let status_line = text.lines().next().unwrap_or("");
    let code: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    match code {
        200..=299 => Ok(()),
        407 => Err(fail(
            "the proxy wants a login (407), which opconnect does not send".into(),
        )),
        0 => Err(fail(format!(
            "not an HTTP answer: {:?}",
            status_line.chars().take(80).collect::<String>()
        ))),
        _ => Err(fail(format!(
            "refused: {}",
            status_line.chars().take(120).collect::<String>()
        ))),
    }
}

/// RFC 1928: no-authentication method (§3), CONNECT with a domain name (§4, ATYP 3) so that
/// names resolve at the proxy, then the reply (§6).
async fn socks5_connect(
    tcp: &mut TcpStream,
    proxy: &Proxy,
    host: &str,
    port: u16,
) -> Result<(), ServiceError> {
    let target = format!("{host}:{port}");
    let fail = |why: String| refused(proxy, &target, why);
    let io = |e: std::io::Error| refused(proxy, &target, e);
    tcp.write_all(&[5, 1, 0]).await.map_err(io)?;
    let mut choice = [0u8; 2];
    tcp.read_exact(&mut choice).await.map_err(io)?;
    match choice {
        [5, 0] => {}
        [5, 0xff] => {
            return Err(fail(
                "the SOCKS5 proxy wants a login, which opconnect does not send".into(),
            ));
        }
        other => return Err(fail(format!("not a SOCKS5 answer ({other:?})"))),
    }
    let mut request = vec![5, 1, 0];
    match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(a)) => {
            request.push(1);
            request.extend_from_slice(&a.octets());
        }
        Ok(std::net::IpAddr::V6(a)) => {
            request.push(4);
            request.extend_from_slice(&a.octets());
        }
        Err(_) => {
            let name = host.as_bytes();
            let len = u8::try_from(name.len()).map_err(|_| fail("host name over 255 bytes".into()))?;
            request.push(3);
            request.push(len);
            request.extend_from_slice(name);
        }
    }
    request.extend_from_slice(&port.to_be_bytes());
    tcp.write_all(&request).await.map_err(io)?;
    let mut reply = [0u8; 4];
    tcp.read_exact(&mut reply).await.map_err(io)?;
    if reply[0] != 5 {
        return Err(fail(format!("not a SOCKS5 reply (version {})", reply[0])));
    }
    if reply[1] != 0 {
        // RFC 1928 §6: the REP field.
        let why = match reply[1] {
            1 => "general failure",
            2 => "not allowed by the proxy's rules",
            3 => "network unreachable",
            4 => "host unreachable",
            5 => "connection refused",
            6 => "TTL expired",
            7 => "command not supported",
            8 => "address type not supported",
            _ => "unknown error",
        };
        return Err(fail(format!("the SOCKS5 proxy answered {} ({why})", reply[1])));
    }
    let rest = match reply[3] {
        1 => 4 + 2,
        4 => 16 + 2,
        3 => {
            let mut len = [0u8; 1];
            tcp.read_exact(&mut len).await.map_err(io)?;
            usize::from(len[0]) + 2
        }
        other => return Err(fail(format!("SOCKS5 reply with address type {other}"))),
    };
    let mut bound = vec![0u8; rest];
    tcp.read_exact(&mut bound).await.map_err(io)?;
    Ok(())
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
        let s = Proxy::parse("socks5://127.0.0.1").unwrap();
        assert_eq!((s.port, s.url().as_str()), (1080, "socks5://127.0.0.1:1080"));
        assert!(Proxy::parse("ftp://x").unwrap_err().contains("ftp"));
        let e = Proxy::parse("http://bob:s3cret@proxy:8080").unwrap_err();
        assert!(!e.contains("s3cret"), "{e}");
        let e = Proxy::parse("http://bob:s3cret@[bad").unwrap_err();
        assert!(!e.contains("s3cret"), "{e}");
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
        assert_eq!(choose(None, "https", "dav.example.org", &none), None);
        let star = env_of(&[("HTTPS_PROXY", "http://web:3128"), ("no_proxy", "*")]);
        assert_eq!(choose(None, "https", "dav.example.org", &star), None);
    }
}
