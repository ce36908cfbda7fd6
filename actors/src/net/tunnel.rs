//! Tunnels through a proxy for IMAP, SMTP and ManageSieve (issue 21): HTTP CONNECT (RFC 9110
//! §9.3.6) with `Proxy-Authorization: Basic` when the proxy has a login (§11.7.1), and SOCKS5
//! (RFC 1928) with username/password authentication (RFC 1929) when it has one.
//!
//! ```text
//!   http:   CONNECT host:port ──► 2xx: tunnel │ 407: login wanted / refused (Config)
//!   socks5: methods {0, 2?} ──► 0: none │ 2: RFC 1929 login ──► CONNECT ──► REP 0: tunnel
//! ```
//!
//! A refused login is the user's to fix (`ServiceError::Config`, naming the proxy and its user,
//! never the password); a proxy that cannot be reached or reached nothing is transient.

use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::ServiceError;
use crate::net::proxy::{Proxy, ProxyKind};

/// The longest answer head a CONNECT may bring before the tunnel is refused.
const CONNECT_HEAD_MAX: usize = 8 * 1024;

fn refused(proxy: &Proxy, target: &str, why: impl std::fmt::Display) -> ServiceError {
    ServiceError::transient(format!("proxy {}: tunnel to {target}: {why}", proxy.url()))
}

/// The proxy wants a login it did not get, or refused the one it got: the user's to fix.
pub fn login_refused(proxy: &Proxy, target: &str, code: &str) -> ServiceError {
    ServiceError::Config(format!(
        "proxy {}: tunnel to {target}: {}",
        proxy.url(),
        login_advice(proxy.login.as_ref().map(|l| l.user.as_str()), code)
    ))
}

/// What a refused proxy login means for the user; also used for reqwest's own tunnels.
pub fn login_advice(user: Option<&str>, code: &str) -> String {
    match user {
        Some(user) => format!(
            "the proxy refused the login of user `{user}` ({code}); check the user name and \
             password in the account's `proxy` (or the *_PROXY variable)"
        ),
        None => format!(
            "the proxy wants a login ({code}); give it in the account's `proxy` as \
             `http://USER:PASSWORD@host:port` (or `socks5://USER:PASSWORD@…`)"
        ),
    }
}

/// reqwest's own tunnels (CalDAV, CardDAV): the proxy's refusal of a login, read from the error
/// chain (hyper-util's words) or an HTTP 407, as advice; `None` for any other failure.
pub fn reqwest_login_problem(chain: &str) -> Option<String> {
    let code = if chain.contains("proxy authorization required") {
        "407 Proxy Authentication Required"
    } else if chain.contains("credentials not accepted") || chain.contains("does not support user/pass") {
        "SOCKS5 username/password, RFC 1929"
    } else {
        return None;
    };
    Some(format!(
        "the proxy wants a login or refused the one given ({code}); give it in the account's \
         `proxy` as `http://USER:PASSWORD@host:port` (or `socks5://…`), or check the *_PROXY variable"
    ))
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
        tracing::debug!(proxy = %proxy.named(), %target, "tunnel open");
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

/// The CONNECT request, with the login when the proxy has one (RFC 9110 §11.7.1, Basic as
/// RFC 7617 §2 encodes it).
fn connect_request(proxy: &Proxy, authority: &str) -> String {
    let mut request =
        format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: opconnect\r\n");
    if let Some(login) = &proxy.login {
        let token = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            login.user,
            login.password.expose()
        ));
        request.push_str(&format!("Proxy-Authorization: Basic {token}\r\n"));
    }
    request.push_str("\r\n");
    request
}

/// RFC 9110 §9.3.6: `CONNECT host:port`; any 2xx opens the tunnel. The head is read byte by byte
/// so that nothing of the server's first bytes is swallowed.
async fn http_connect(tcp: &mut TcpStream, proxy: &Proxy, host: &str, port: u16) -> Result<(), ServiceError> {
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let fail = |why: String| refused(proxy, &authority, why);
    tcp.write_all(connect_request(proxy, &authority).as_bytes())
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
        407 => Err(login_refused(
            proxy,
            &authority,
            "407 Proxy Authentication Required",
        )),
        // A CONNECT is answered by the proxy itself, so a 401 is its too: tinyproxy 1.11 answers
        // a wrong login with 401 instead of 407.
        401 => Err(login_refused(proxy, &authority, "401 from the proxy")),
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

/// RFC 1928: the methods offered (§3: 0 none, 2 username/password when there is a login), the
/// RFC 1929 subnegotiation when the proxy picks 2, then CONNECT with a domain name (§4, ATYP 3)
/// so that names resolve at the proxy, and the reply (§6).
async fn socks5_connect(
    tcp: &mut TcpStream,
    proxy: &Proxy,
    host: &str,
    port: u16,
) -> Result<(), ServiceError> {
    let target = format!("{host}:{port}");
    let fail = |why: String| refused(proxy, &target, why);
    let io = |e: std::io::Error| refused(proxy, &target, e);
    let offer: &[u8] = if proxy.login.is_some() {
        &[5, 2, 0, 2]
    } else {
        &[5, 1, 0]
    };
    tcp.write_all(offer).await.map_err(io)?;
    let mut choice = [0u8; 2];
    tcp.read_exact(&mut choice).await.map_err(io)?;
    match (choice, &proxy.login) {
        ([5, 0], _) => {}
        ([5, 2], Some(login)) => {
            // RFC 1929 §2: VER 1, ULEN, UNAME, PLEN, PASSWD (lengths checked by Proxy::parse).
            let (user, password) = (login.user.as_bytes(), login.password.expose().as_bytes());
            let mut request = Vec::with_capacity(3 + user.len() + password.len());
            request.push(1);
            request.push(u8::try_from(user.len()).map_err(|_| fail("user name over 255 bytes".into()))?);
            request.extend_from_slice(user);
            request.push(u8::try_from(password.len()).map_err(|_| fail("password over 255 bytes".into()))?);
            request.extend_from_slice(password);
            tcp.write_all(&request).await.map_err(io)?;
            let mut status = [0u8; 2];
            tcp.read_exact(&mut status).await.map_err(io)?;
            // §2: STATUS 0 is success; anything else, and the proxy closes the connection.
            if status[1] != 0 {
                return Err(login_refused(
                    proxy,
                    &target,
                    "SOCKS5 username/password, RFC 1929",
                ));
            }
        }
        ([5, 0xff], _) => {
            return Err(login_refused(
                proxy,
                &target,
                "SOCKS5: no offered method accepted",
            ));
        }
        (other, _) => return Err(fail(format!("not a SOCKS5 answer ({other:?})"))),
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

    #[test]
    fn connect_carries_basic_login_only_when_there_is_one() {
        let p = Proxy::parse("http://Aladdin:open%20sesame@proxy:3128").unwrap();
        let r = connect_request(&p, "imap.example.org:993");
        // RFC 7617 §2's example credentials.
        assert!(
            r.contains("Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n"),
            "{r}"
        );
        let bare = Proxy::parse("http://proxy:3128").unwrap();
        assert!(!connect_request(&bare, "x:1").contains("Proxy-Authorization"));
    }

    #[test]
    fn a_refused_login_names_the_proxy_and_user_but_not_the_password() {
        let p = Proxy::parse("http://bob:s3cret@proxy:3128").unwrap();
        let e = login_refused(&p, "imap:993", "407 Proxy Authentication Required").to_string();
        assert!(
            e.contains("proxy http://proxy:3128") && e.contains("`bob`") && e.contains("407"),
            "{e}"
        );
        assert!(!e.contains("s3cret"), "{e}");
        let e = login_refused(&Proxy::parse("http://proxy:3128").unwrap(), "imap:993", "407").to_string();
        assert!(e.contains("USER:PASSWORD@"), "{e}");
    }
}
