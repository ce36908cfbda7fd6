//! Opening an authenticated IMAP session: TCP, TLS or STARTTLS, greeting, LOGIN, CAPABILITY.
//!
//! ```text
//!  imaps://  TCP ─ TLS ─ greeting ───────────────────────── LOGIN ─ CAPABILITY
//!  imap://   TCP ─ greeting ─ STARTTLS ─ TLS ────────────── LOGIN ─ CAPABILITY
//!            (loopback only, server offers no STARTTLS: plaintext LOGIN)
//! ```

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use async_imap::imap_proto::{Capability, Response, ResponseCode};
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::account::Secret;
use crate::error::ServiceError;
use crate::imap::capped::Guard;
use crate::net::endpoint::{Endpoint, Security};
use crate::net::tls::describe_tls_error;

/// The byte stream under an IMAP session: plaintext (loopback only) or TLS, with a watchdog and
/// with what the server sends checked by a [`Guard`] (no endless line, no oversized literal).
///
/// Every read or write that waits longer than the stall limit fails with `TimedOut`, so that a
/// server that stops answering in the middle of any command (LSUB that never completes, a FETCH
/// that stops half way) ends the session instead of freezing it. Silence is what counts, not the
/// length of the answer: a large FETCH that keeps arriving is never cut. IDLE turns the watchdog
/// off while it waits (it has its own renewal, RFC 2177 §3) through [`ImapConnection::waiting`].
pub struct ImapConnection {
    stream: Stream,
    guard: Guard,
    stall: Duration,
    waiting: Arc<AtomicBool>,
    read_deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    write_deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// Until login the connect timeout bounds the whole exchange; afterwards this is the silence a
/// command may meet before the session is given up (`[agent] command_timeout` overrides it).
pub const DEFAULT_STALL: Duration = Duration::from_secs(60);

impl ImapConnection {
    fn new(stream: Stream) -> Self {
        ImapConnection {
            stream,
            guard: Guard::default(),
            stall: DEFAULT_STALL,
            waiting: Arc::new(AtomicBool::new(false)),
            read_deadline: None,
            write_deadline: None,
        }
    }

    /// A plaintext stream (loopback, or before STARTTLS).
    pub fn plain(tcp: TcpStream) -> Self {
        Self::new(Stream::Plain(tcp))
    }

    pub fn tls(stream: TlsStream<TcpStream>) -> Self {
        Self::new(Stream::Tls(Box::new(stream)))
    }

    /// The TCP stream of a plaintext connection, for STARTTLS; `None` once it is TLS.
    pub fn into_plain(self) -> Option<TcpStream> {
        match self.stream {
            Stream::Plain(tcp) => Some(tcp),
            Stream::Tls(_) => None,
        }
    }

    /// The longest silence a command may meet; zero turns the watchdog off.
    pub fn set_stall_limit(&mut self, stall: Duration) {
        self.stall = stall;
    }

    /// A switch that, while on, lets reads wait indefinitely (an IDLE in progress).
    pub fn waiting(&self) -> Arc<AtomicBool> {
        self.waiting.clone()
    }

    fn stalled(&self) -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!(
                "the server stopped answering (nothing for {}s)",
                self.stall.as_secs()
            ),
        )
    }

    /// Polls `deadline` after the stream said Pending: `Ready(err)` when the silence ran out.
    fn watch(
        stall: Duration,
        off: bool,
        deadline: &mut Option<Pin<Box<tokio::time::Sleep>>>,
        cx: &mut Context<'_>,
    ) -> bool {
        if off || stall.is_zero() {
            *deadline = None;
            return false;
        }
        let timer = deadline.get_or_insert_with(|| Box::pin(tokio::time::sleep(stall)));
        if timer.as_mut().poll(cx).is_ready() {
            *deadline = None;
            return true;
        }
        false
    }
}

impl fmt::Debug for ImapConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.stream {
            Stream::Plain(_) => f.write_str("ImapConnection::Plain"),
            Stream::Tls(_) => f.write_str("ImapConnection::Tls"),
        }
    }
}

impl AsyncRead for ImapConnection {
    /// Reads through the [`Guard`] (whole lines and literal contents only), with the watchdog
    /// counting silence: bytes that arrive reset it even while a line is still incomplete.
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        loop {
            let ready = this.guard.ready();
            if !ready.is_empty() {
                let n = ready.len().min(buf.remaining());
                buf.put_slice(&ready[..n]);
                this.guard.consume(n);
                return Poll::Ready(Ok(()));
            }
            if this.guard.at_eof() {
                return Poll::Ready(Ok(()));
            }
            let mut scratch = [0u8; 16 * 1024];
            let mut read = ReadBuf::new(&mut scratch);
            let polled = match &mut this.stream {
                Stream::Plain(s) => Pin::new(s).poll_read(cx, &mut read),
                Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, &mut read),
            };
            match polled {
                Poll::Ready(Ok(())) => {
                    this.read_deadline = None;
                    this.guard.push(read.filled())?;
                }
                Poll::Ready(Err(e)) => {
                    this.read_deadline = None;
                    return Poll::Ready(Err(e));
                }
                Poll::Pending => {
                    let off = this.waiting.load(Ordering::Relaxed);
                    return if Self::watch(this.stall, off, &mut this.read_deadline, cx) {
                        Poll::Ready(Err(this.stalled()))
                    } else {
                        Poll::Pending
                    };
                }
            }
        }
    }
}

impl AsyncWrite for ImapConnection {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        // A new command starts with a write: a read timer left from an abandoned read is stale.
        this.read_deadline = None;
        let polled = match &mut this.stream {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        };
        this.after_write(polled, cx)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let polled = match &mut this.stream {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        };
        this.after_write(polled, cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let polled = match &mut this.stream {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        };
        this.after_write(polled, cx)
    }
}

impl ImapConnection {
    /// A write that cannot go out (the peer stopped reading: half-open, full buffers) is a stall too.
    fn after_write<T>(
        &mut self,
        polled: Poll<std::io::Result<T>>,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<T>> {
        match polled {
            Poll::Ready(r) => {
                self.write_deadline = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                if Self::watch(self.stall, false, &mut self.write_deadline, cx) {
                    Poll::Ready(Err(self.stalled()))
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

/// A logged-in session and what the server said it can do.
pub struct ImapSession {
    pub session: async_imap::Session<ImapConnection>,
    /// Capabilities after login (RFC 3501 §6.1.1), upper-cased.
    pub capabilities: Vec<String>,
    pub encrypted: bool,
}

impl ImapSession {
    pub fn has(&self, capability: &str) -> bool {
        self.capabilities
            .iter()
            .any(|c| c.eq_ignore_ascii_case(capability))
    }
}

/// Connects, secures and logs in, all within `timeout`.
pub async fn connect_and_login(
    endpoint: &Endpoint,
    tls: Arc<ClientConfig>,
    username: &str,
    password: &Secret,
    timeout: Duration,
) -> Result<ImapSession, ServiceError> {
    match tokio::time::timeout(timeout, connect_inner(endpoint, tls, username, password)).await {
        Ok(result) => result,
        Err(_) => Err(ServiceError::transient(format!(
            "{}: no answer within {}s",
            endpoint.authority(),
            timeout.as_secs()
        ))),
    }
}

async fn connect_inner(
    endpoint: &Endpoint,
    tls: Arc<ClientConfig>,
    username: &str,
    password: &Secret,
) -> Result<ImapSession, ServiceError> {
    // The caller's timeout bounds the whole connect; a proxy's handshake gets no more.
    let tcp = endpoint.open_tcp(Duration::from_secs(60)).await?;
    let _ = tcp.set_nodelay(true);
    let (stream, encrypted) = match endpoint.security {
        Security::Tls => {
            let tls_stream = handshake(endpoint, tls, tcp).await?;
            let mut client = async_imap::Client::new(ImapConnection::new(Stream::Tls(Box::new(tls_stream))));
            read_greeting(&mut client, endpoint).await?;
            (client, true)
        }
        Security::StartTls | Security::Plain => {
            let mut client = async_imap::Client::new(ImapConnection::new(Stream::Plain(tcp)));
            let greeting_caps = read_greeting(&mut client, endpoint).await?;
            let offers_starttls = greeting_caps.iter().any(|c| c == "STARTTLS");
            if offers_starttls || !endpoint.loopback {
                // RFC 3501 §6.2.1; a non-loopback server that refuses STARTTLS is an error, never plaintext.
                client
                    .run_command_and_check_ok("STARTTLS", None)
                    .await
                    .map_err(|e| {
                        ServiceError::Tls(format!("{}: STARTTLS refused: {e}", endpoint.authority()))
                    })?;
                let Stream::Plain(tcp) = client.into_inner().stream else {
                    unreachable!("a fresh client holds a plain stream")
                };
                let tls_stream = handshake(endpoint, tls, tcp).await?;
                (
                    async_imap::Client::new(ImapConnection::new(Stream::Tls(Box::new(tls_stream)))),
                    true,
                )
            } else {
                (client, false)
            }
        }
    };
    let mut session = stream
        .login(username, password.expose())
        .await
        .map_err(|(e, _)| match classify_login_error(e) {
            // A provider's host (iCloud, Fastmail, Yahoo): say where to make an app password.
            ServiceError::Auth(t) => {
                ServiceError::Auth(crate::formats::providers::hinted(t, endpoint.url.as_str()))
            }
            other => other,
        })?;
    let caps = session.capabilities().await.map_err(classify_error)?;
    let mut capabilities: Vec<String> = caps
        .iter()
        .map(|c| match c {
            async_imap::types::Capability::Imap4rev1 => "IMAP4REV1".to_owned(),
            async_imap::types::Capability::Auth(a) => format!("AUTH={}", a.to_ascii_uppercase()),
            async_imap::types::Capability::Atom(a) => a.to_ascii_uppercase(),
        })
        .collect();
    capabilities.sort();
    Ok(ImapSession {
        session,
        capabilities,
        encrypted,
    })
}

async fn handshake(
    endpoint: &Endpoint,
    tls: Arc<ClientConfig>,
    tcp: TcpStream,
) -> Result<TlsStream<TcpStream>, ServiceError> {
    let name = ServerName::try_from(endpoint.host.clone())
        .map_err(|e| ServiceError::Config(format!("{}: not a valid TLS server name: {e}", endpoint.host)))?;
    TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .map_err(|e| ServiceError::Tls(format!("{}: {}", endpoint.authority(), describe_tls_error(&e))))
}

/// Reads the server greeting (RFC 3501 §7.1.1) and returns any capabilities it carries.
async fn read_greeting(
    client: &mut async_imap::Client<ImapConnection>,
    endpoint: &Endpoint,
) -> Result<Vec<String>, ServiceError> {
    let greeting = client
        .read_response()
        .await
        .map_err(|e| ServiceError::transient(format!("{}: {e}", endpoint.authority())))?
        .ok_or_else(|| {
            ServiceError::transient(format!("{}: closed before the greeting", endpoint.authority()))
        })?;
    match greeting.parsed() {
        Response::Data { status, outcome } => {
            use async_imap::imap_proto::Status;
            if matches!(status, Status::Bye) {
                return Err(ServiceError::transient(format!(
                    "{}: server said BYE: {}",
                    endpoint.authority(),
                    outcome.information.as_deref().unwrap_or("")
                )));
            }
            Ok(match &outcome.code {
                Some(ResponseCode::Capabilities(caps)) => caps
                    .iter()
                    .map(|c| match c {
                        Capability::Imap4rev1 => "IMAP4REV1".to_owned(),
                        Capability::Auth(a) => format!("AUTH={}", a.to_ascii_uppercase()),
                        Capability::Atom(a) => a.to_ascii_uppercase(),
                    })
                    .collect(),
                _ => Vec::new(),
            })
        }
        other => Err(ServiceError::Protocol(format!(
            "{}: unexpected greeting {other:?}",
            endpoint.authority()
        ))),
    }
}

/// LOGIN's NO is an authentication failure (RFC 3501 §6.2.3); anything else is not.
fn classify_login_error(err: async_imap::error::Error) -> ServiceError {
    match err {
        async_imap::error::Error::No(text) => ServiceError::Auth(text.trim().to_owned()),
        async_imap::error::Error::Validate(_) => {
            ServiceError::Config("the user name or password holds characters IMAP LOGIN cannot carry".into())
        }
        other => classify_error(other),
    }
}

/// Maps an IMAP error to what the supervisor does next.
pub fn classify_error(err: async_imap::error::Error) -> ServiceError {
    use async_imap::error::Error;
    match err {
        Error::Io(e) => ServiceError::transient(format!("connection: {e}")),
        Error::ConnectionLost => ServiceError::transient("connection lost"),
        Error::Bad(text) => ServiceError::Protocol(format!("BAD: {text}")),
        Error::No(text) => ServiceError::Protocol(format!("NO: {text}")),
        Error::Parse(e) => ServiceError::Protocol(format!("unparsable answer: {e}")),
        other => ServiceError::Protocol(other.to_string()),
    }
}
