//! The TLS that lettre cannot do for us (issue 21): its own TLS takes no custom verifier and only
//! wraps sockets it opened. So the agent speaks TLS (and STARTTLS) itself, over a direct
//! connection or a proxy's tunnel, with the one verifier of `net/tls.rs` (roots, `tls_ca`,
//! `tls_pins`, refusals that name the certificate) and hands lettre the finished stream.
//!
//! ```text
//!   implicit (smtps, RFC 8314 §3.3):  TCP/tunnel ─ TLS ─────────────────────────────► lettre
//!   STARTTLS (smtp, RFC 3207 §4):     TCP/tunnel ─ 220 ─ EHLO ─ 250 STARTTLS ─ STARTTLS ─ 220
//!                                     ─ TLS ─ (a made-up 220 greeting) ─► lettre: EHLO again (§4.2)
//! ```
//!
//! The plaintext replies are read byte by byte, so nothing the server sends after its `220` to
//! STARTTLS can be read as if it came over TLS (the command-injection flaw of CVE-2011-0411's
//! kind): bytes there end the connection.

use std::pin::Pin;
use std::task::{Context, Poll};

use lettre::transport::smtp::client::AsyncTokioStream;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use super::Trust;
use crate::error::ServiceError;
use crate::net::endpoint::Endpoint;

/// RFC 5321 §4.5.3.1.5: a reply line is at most 512 bytes; some servers exceed it a little.
const LINE_MAX: usize = 2048;
/// The most lines of one reply (an EHLO lists a few dozen extensions at most).
const LINES_MAX: usize = 100;

/// What lettre reads first from an upgraded stream, in place of the greeting it missed.
const GREETING: &[u8] = b"220 opconnect: STARTTLS done, the greeting was read before\r\n";

/// Implicit TLS (RFC 8314 §3.3), direct or over a proxy tunnel, verified like every other
/// connection (system roots, `tls_ca`, `tls_pins`).
pub async fn implicit(
    endpoint: &Endpoint,
    trust: Trust<'_>,
    tcp: TcpStream,
) -> Result<TlsTunnel, ServiceError> {
    handshake(endpoint, trust, tcp, None).await
}

/// STARTTLS (RFC 3207 §4) done here, then the TLS handshake under our verifier. lettre gets a
/// stream whose first bytes are a greeting, as a fresh connection would have, and sends EHLO
/// again as §4.2 asks.
pub async fn upgrade(
    endpoint: &Endpoint,
    trust: Trust<'_>,
    mut tcp: TcpStream,
    hello: &str,
    pinned: bool,
) -> Result<TlsTunnel, ServiceError> {
    let at = endpoint.authority();
    let (code, _) = reply(&mut tcp, &at).await?;
    if code != 220 {
        return Err(ServiceError::transient(format!(
            "{at}: the greeting was {code}, not 220"
        )));
    }
    send(&mut tcp, &at, &format!("EHLO {hello}\r\n")).await?;
    let (code, lines) = reply(&mut tcp, &at).await?;
    if code != 250 {
        return Err(ServiceError::Protocol(format!("{at}: EHLO answered {code}")));
    }
    // RFC 5321 §4.1.1.1: each line after the first names an extension, keyword first.
    let offers = lines.iter().skip(1).any(|l| {
        l.split_whitespace()
            .next()
            .is_some_and(|k| k.eq_ignore_ascii_case("STARTTLS"))
    });
    if !offers && endpoint.loopback && !pinned {
        // Invariant 8: plaintext to a loopback server that offers no STARTTLS (a test server).
        return Ok(TlsTunnel {
            inner: Inner::Plain(tcp),
            greeting: GREETING,
        });
    }
    if !offers {
        return Err(ServiceError::Unsupported(format!(
            "{at} does not offer STARTTLS (RFC 3207); mail is submitted over TLS only"
        )));
    }
    send(&mut tcp, &at, "STARTTLS\r\n").await?;
    let (code, _) = reply(&mut tcp, &at).await?;
    if code != 220 {
        return Err(ServiceError::Protocol(format!("{at}: STARTTLS answered {code}")));
    }
    // RFC 3207 §4: the server waits for the client's TLS handshake; anything already sent is
    // not from the TLS session and must not be read as if it were.
    let mut probe = [0u8; 1];
    if let Ok(Ok(n)) = tokio::time::timeout(std::time::Duration::ZERO, tcp.peek(&mut probe)).await
        && n > 0
    {
        return Err(ServiceError::Protocol(format!(
            "{at} sent data after agreeing to STARTTLS, before TLS began; the connection is dropped"
        )));
    }
    handshake(endpoint, trust, tcp, Some(GREETING)).await
}

async fn send(tcp: &mut TcpStream, at: &str, line: &str) -> Result<(), ServiceError> {
    tcp.write_all(line.as_bytes())
        .await
        .map_err(|e| ServiceError::transient(format!("{at}: {e}")))
}

/// One reply (RFC 5321 §4.2.1): lines `CODE-text` then `CODE text`; the code and the texts.
async fn reply(tcp: &mut TcpStream, at: &str) -> Result<(u16, Vec<String>), ServiceError> {
    let mut lines = Vec::new();
    loop {
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while !line.ends_with(b"\n") {
            if line.len() >= LINE_MAX {
                return Err(ServiceError::Protocol(format!(
                    "{at}: a reply line over {LINE_MAX} bytes"
                )));
            }
            match tcp.read(&mut byte).await {
                Ok(0) => {
                    return Err(ServiceError::transient(format!(
                        "{at}: the server closed the connection"
                    )));
                }
                Ok(_) => line.push(byte[0]),
                Err(e) => return Err(ServiceError::transient(format!("{at}: {e}"))),
            }
        }
        let text = String::from_utf8_lossy(&line).trim_end().to_owned();
        let code = text
            .get(..3)
            .and_then(|c| c.parse::<u16>().ok())
            .ok_or_else(|| ServiceError::Protocol(format!("{at}: not an SMTP reply: {:?}", short(&text))))?;
        let last = text.as_bytes().get(3) != Some(&b'-');
        lines.push(text.get(4..).unwrap_or("").to_owned());
        if last {
            return Ok((code, lines));
        }
        if lines.len() >= LINES_MAX {
            return Err(ServiceError::Protocol(format!(
                "{at}: a reply of over {LINES_MAX} lines"
            )));
        }
    }
}

fn short(text: &str) -> String {
    text.chars().take(80).collect()
}

async fn handshake(
    endpoint: &Endpoint,
    trust: Trust<'_>,
    tcp: TcpStream,
    greeting: Option<&'static [u8]>,
) -> Result<TlsTunnel, ServiceError> {
    let config = crate::net::tls::client_config_with(trust.ca, trust.pins, None)?;
    let name = rustls_pki_types::ServerName::try_from(endpoint.host.clone())
        .map_err(|e| ServiceError::Config(format!("{}: {e}", endpoint.host)))?;
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map(|s| TlsTunnel {
            inner: Inner::Tls(Box::new(s)),
            greeting: greeting.unwrap_or_default(),
        })
        .map_err(|e| {
            // rustls's refusals (the certificate, the protocol) come as InvalidData: the user's
            // to decide; a connection lost during the handshake is retried.
            if e.kind() == std::io::ErrorKind::InvalidData {
                ServiceError::Tls(format!("{}: {e}", endpoint.authority()))
            } else {
                ServiceError::transient(format!("{}: TLS handshake: {e}", endpoint.authority()))
            }
        })
}

/// A TLS stream of ours (or, to a loopback server without STARTTLS, the plain one), in the shape
/// lettre takes an existing stream; after STARTTLS it first yields a greeting for lettre to read.
pub struct TlsTunnel {
    inner: Inner,
    greeting: &'static [u8],
}

enum Inner {
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    Plain(TcpStream),
}

impl std::fmt::Debug for TlsTunnel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsTunnel")
    }
}

impl AsyncTokioStream for TlsTunnel {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        match &self.inner {
            Inner::Tls(s) => s.get_ref().0.peer_addr(),
            Inner::Plain(s) => s.peer_addr(),
        }
    }
}

impl AsyncRead for TlsTunnel {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if !self.greeting.is_empty() {
            let n = self.greeting.len().min(buf.remaining());
            buf.put_slice(&self.greeting[..n]);
            self.greeting = &self.greeting[n..];
            return Poll::Ready(Ok(()));
        }
        match &mut self.inner {
            Inner::Tls(s) => Pin::new(&mut **s).poll_read(cx, buf),
            Inner::Plain(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for TlsTunnel {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match &mut self.inner {
            Inner::Tls(s) => Pin::new(&mut **s).poll_write(cx, buf),
            Inner::Plain(s) => Pin::new(s).poll_write(cx, buf),
        }
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.inner {
            Inner::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
            Inner::Plain(s) => Pin::new(s).poll_flush(cx),
        }
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.inner {
            Inner::Tls(s) => Pin::new(&mut **s).poll_shutdown(cx),
            Inner::Plain(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
