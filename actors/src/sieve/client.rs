//! A ManageSieve client (RFC 5804): connect, STARTTLS, AUTHENTICATE PLAIN, and the script commands.
//!
//! ```text
//!  TCP ─ capabilities ─ STARTTLS ─ TLS ─ capabilities ─ AUTHENTICATE "PLAIN" ─ commands ─ LOGOUT
//!        (loopback only, server offers no STARTTLS: plaintext)
//! ```
//!
//! Every exchange runs under the client's timeout; a silent server is a `Transient` error.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_rustls::TlsConnector;

use super::response::{Item, Outcome, ParseError, Response, encode_string, parse_response};
use crate::account::Secret;
use crate::error::ServiceError;
use crate::net::endpoint::{Endpoint, Security};
use crate::net::tls::describe_tls_error;

/// The largest answer buffered: a script (a literal of at most 16 MiB, see `response`) and its
/// status line. A server sending more fails the command.
pub const MAX_ANSWER: usize = 17 * 1024 * 1024;

/// The byte stream: plain TCP (loopback only) or TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// What the server announced (RFC 5804 §1.7).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    pub implementation: Option<String>,
    /// Sieve extensions (`SIEVE`), lower-cased.
    pub sieve: Vec<String>,
    /// SASL mechanisms (`SASL`), upper-cased.
    pub sasl: Vec<String>,
    pub starttls: bool,
}

impl Capabilities {
    /// Reads the capability lines of a greeting or a CAPABILITY answer.
    pub fn from_response(r: &Response) -> Self {
        let mut caps = Capabilities::default();
        for line in &r.lines {
            let Some(name) = line.first().and_then(Item::text) else {
                continue;
            };
            let value = line.get(1).and_then(Item::text).unwrap_or_default();
            match name.to_ascii_uppercase().as_str() {
                "IMPLEMENTATION" => caps.implementation = Some(value),
                "SIEVE" => caps.sieve = value.split_whitespace().map(str::to_ascii_lowercase).collect(),
                "SASL" => caps.sasl = value.split_whitespace().map(str::to_ascii_uppercase).collect(),
                "STARTTLS" => caps.starttls = true,
                _ => {}
            }
        }
        caps
    }

    /// True when the server's Sieve interpreter has `extension` (e.g. `vacation`).
    pub fn has_extension(&self, extension: &str) -> bool {
        self.sieve.iter().any(|e| e.eq_ignore_ascii_case(extension))
    }
}

/// One script in LISTSCRIPTS (RFC 5804 §2.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptInfo {
    pub name: String,
    pub active: bool,
}

/// A logged-in ManageSieve session.
pub struct SieveClient {
    io: Box<dyn Io>,
    buf: Vec<u8>,
    timeout: Duration,
    authority: String,
    pub capabilities: Capabilities,
    pub encrypted: bool,
}

impl SieveClient {
    /// Connects, secures (RFC 5804 §2.2) and authenticates (§2.1) within `timeout` per step.
    pub async fn connect(
        endpoint: &Endpoint,
        tls: Arc<ClientConfig>,
        username: &str,
        password: &Secret,
        timeout: Duration,
    ) -> Result<SieveClient, ServiceError> {
        let authority = endpoint.authority();
        let tcp = tokio::time::timeout(timeout, endpoint.open_tcp(timeout))
            .await
            .map_err(|_| {
                ServiceError::transient(format!("{authority}: no answer within {}s", timeout.as_secs()))
            })??;
        let _ = tcp.set_nodelay(true);
        let mut client = SieveClient {
            io: Box::new(tcp),
            buf: Vec::new(),
            timeout,
            authority,
            capabilities: Capabilities::default(),
            encrypted: false,
        };
        let greeting = client.read().await?;
        client.check(&greeting, "greeting")?;
        client.capabilities = Capabilities::from_response(&greeting);
        let wants_tls = endpoint.security == Security::Tls;
        if wants_tls || client.capabilities.starttls || !endpoint.loopback {
            if !wants_tls {
                // RFC 5804 §2.2; a non-loopback server without STARTTLS is an error, never plaintext.
                let answer = client.command("STARTTLS").await?;
                client
                    .check(&answer, "STARTTLS")
                    .map_err(|e| ServiceError::Tls(format!("STARTTLS refused: {e}")))?;
            }
            client.start_tls(endpoint, tls).await?;
            // RFC 5804 §2.2: after TLS the server re-issues its capabilities.
            let caps = client.read().await?;
            client.check(&caps, "capabilities after STARTTLS")?;
            client.capabilities = Capabilities::from_response(&caps);
        }
        client.authenticate(username, password).await?;
        Ok(client)
    }

    async fn start_tls(&mut self, endpoint: &Endpoint, tls: Arc<ClientConfig>) -> Result<(), ServiceError> {
        let name = ServerName::try_from(endpoint.host.clone()).map_err(|e| {
            ServiceError::Config(format!("{}: not a valid TLS server name: {e}", endpoint.host))
        })?;
        // A placeholder stands in while the handshake owns the plain stream.
        let plain = std::mem::replace(&mut self.io, Box::new(tokio::io::duplex(1).0));
        self.buf.clear();
        let stream = tokio::time::timeout(self.timeout, TlsConnector::from(tls).connect(name, plain))
            .await
            .map_err(|_| ServiceError::transient(format!("{}: TLS handshake timed out", self.authority)))?
            .map_err(|e| ServiceError::Tls(format!("{}: {}", self.authority, describe_tls_error(&e))))?;
        self.io = Box::new(stream);
        self.encrypted = true;
        Ok(())
    }

    /// `AUTHENTICATE "PLAIN" initial-response` (RFC 5804 §2.1, RFC 4616 §2: `\0user\0password`).
    async fn authenticate(&mut self, username: &str, password: &Secret) -> Result<(), ServiceError> {
        if !self.capabilities.sasl.is_empty() && !self.capabilities.sasl.iter().any(|m| m == "PLAIN") {
            return Err(ServiceError::Unsupported(format!(
                "{}: the server offers no SASL PLAIN (only {})",
                self.authority,
                self.capabilities.sasl.join(", ")
            )));
        }
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("\0{username}\0{}", password.expose()));
        // The token is a secret (invariant 7): it goes on the wire, never into an error or a log.
        let answer = self
            .command(&format!("AUTHENTICATE \"PLAIN\" {}", encode_string(&token)))
            .await?;
        match answer.status.outcome {
            Outcome::Ok => Ok(()),
            Outcome::No => Err(ServiceError::Auth(
                answer
                    .status
                    .text
                    .unwrap_or_else(|| "the server refused the login".into()),
            )),
            Outcome::Bye => Err(bye(&self.authority, &answer)),
        }
    }

    /// `LISTSCRIPTS` (RFC 5804 §2.7).
    pub async fn list_scripts(&mut self) -> Result<Vec<ScriptInfo>, ServiceError> {
        let answer = self.command("LISTSCRIPTS").await?;
        self.check(&answer, "LISTSCRIPTS")?;
        Ok(answer
            .lines
            .iter()
            .filter_map(|line| {
                let name = match line.first()? {
                    Item::Str(s) => String::from_utf8_lossy(s).into_owned(),
                    _ => return None,
                };
                let active = matches!(line.get(1), Some(Item::Atom(a)) if a.eq_ignore_ascii_case("ACTIVE"));
                Some(ScriptInfo { name, active })
            })
            .collect())
    }

    /// `GETSCRIPT name` (RFC 5804 §2.9); a missing script is `NotFound`.
    pub async fn get_script(&mut self, name: &str) -> Result<String, ServiceError> {
        let answer = self
            .command(&format!("GETSCRIPT {}", encode_string(name)))
            .await?;
        self.check(&answer, "GETSCRIPT")?;
        answer
            .lines
            .first()
            .and_then(|l| l.first())
            .and_then(Item::text)
            .ok_or_else(|| {
                ServiceError::Protocol(format!("{}: GETSCRIPT returned no script", self.authority))
            })
    }

    /// `PUTSCRIPT name {n+} content` (RFC 5804 §2.6); the server checks the script and refuses a bad one.
    pub async fn put_script(&mut self, name: &str, content: &str) -> Result<(), ServiceError> {
        let command = format!(
            "PUTSCRIPT {} {{{}+}}\r\n{content}",
            encode_string(name),
            content.len()
        );
        let answer = self.command(&command).await?;
        self.check(&answer, "PUTSCRIPT")
    }

    /// `CHECKSCRIPT {n+} content` (RFC 5804 §2.12): validates without storing.
    pub async fn check_script(&mut self, content: &str) -> Result<(), ServiceError> {
        let answer = self
            .command(&format!("CHECKSCRIPT {{{}+}}\r\n{content}", content.len()))
            .await?;
        self.check(&answer, "CHECKSCRIPT")
    }

    /// `SETACTIVE name` (RFC 5804 §2.8); the empty name deactivates every script.
    pub async fn set_active(&mut self, name: &str) -> Result<(), ServiceError> {
        let answer = self
            .command(&format!("SETACTIVE {}", encode_string(name)))
            .await?;
        self.check(&answer, "SETACTIVE")
    }

    /// `LOGOUT` (RFC 5804 §2.3); errors are ignored, the connection is closed either way.
    pub async fn logout(mut self) {
        let _ = self.command("LOGOUT").await;
        let _ = self.io.shutdown().await;
    }

    /// Sends one command line and reads its complete response.
    async fn command(&mut self, line: &str) -> Result<Response, ServiceError> {
        let authority = self.authority.clone();
        let write = async {
            self.io.write_all(line.as_bytes()).await?;
            self.io.write_all(b"\r\n").await?;
            self.io.flush().await
        };
        tokio::time::timeout(self.timeout, write)
            .await
            .map_err(|_| ServiceError::transient(format!("{authority}: write timed out")))?
            .map_err(|e| ServiceError::transient(format!("{authority}: {e}")))?;
        self.read().await
    }

    /// Reads until one complete response is buffered. A response ends with a line, so the buffer
    /// is parsed again only when a read brought an LF (an endless line costs one scan per read,
    /// not one parse); it may not grow beyond [`MAX_ANSWER`].
    async fn read(&mut self) -> Result<Response, ServiceError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut parse = true;
        loop {
            if parse {
                match parse_response(&self.buf) {
                    Ok(Some((response, used))) => {
                        self.buf.drain(..used);
                        return Ok(response);
                    }
                    Ok(None) => {}
                    Err(ParseError(why)) => {
                        return Err(ServiceError::Protocol(format!("{}: {why}", self.authority)));
                    }
                }
            }
            if self.buf.len() > MAX_ANSWER {
                return Err(ServiceError::Protocol(format!(
                    "{}: the answer is larger than {} MiB; refused",
                    self.authority,
                    MAX_ANSWER >> 20
                )));
            }
            let mut chunk = [0u8; 8192];
            let n = tokio::time::timeout_at(deadline, self.io.read(&mut chunk))
                .await
                .map_err(|_| {
                    ServiceError::transient(format!(
                        "{}: no answer within {}s",
                        self.authority,
                        self.timeout.as_secs()
                    ))
                })?
                .map_err(|e| ServiceError::transient(format!("{}: {e}", self.authority)))?;
            if n == 0 {
                return Err(ServiceError::transient(format!(
                    "{}: connection closed",
                    self.authority
                )));
            }
            self.buf.extend_from_slice(&chunk[..n]);
            parse = chunk[..n].contains(&b'\n');
        }
    }

    /// An `OK` passes; `NO` and `BYE` become typed errors carrying the server's text.
    fn check(&self, answer: &Response, what: &str) -> Result<(), ServiceError> {
        let text = answer.status.text.clone().unwrap_or_default();
        match (answer.status.outcome, answer.status.code.as_deref()) {
            (Outcome::Ok, _) => Ok(()),
            (Outcome::Bye, _) => Err(bye(&self.authority, answer)),
            // RFC 5804 §1.3 response codes.
            (Outcome::No, Some("NONEXISTENT")) => Err(ServiceError::NotFound(format!("{what}: {text}"))),
            (Outcome::No, Some("TRYLATER")) => Err(ServiceError::transient(format!("{what}: {text}"))),
            (Outcome::No, _) => Err(ServiceError::Protocol(format!("{what} refused: {text}"))),
        }
    }
}

fn bye(authority: &str, answer: &Response) -> ServiceError {
    ServiceError::transient(format!(
        "{authority}: server said BYE: {}",
        answer.status.text.as_deref().unwrap_or("")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server whose greeting never ends: the answer is refused at the cap, quickly.
    #[tokio::test]
    async fn an_endless_greeting_is_refused() {
        use tokio::io::AsyncWriteExt as _;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let _ = s.write_all(b"\"IMPLEMENTATION\" \"x\"\r\n\"SIEVE\" \"").await;
            let chunk = vec![b'a'; 1 << 20];
            for _ in 0..(MAX_ANSWER >> 20) + 4 {
                if s.write_all(&chunk).await.is_err() {
                    break;
                }
            }
        });
        let endpoint = crate::net::endpoint::parse(
            crate::net::endpoint::Protocol::Sieve,
            &format!("sieve://127.0.0.1:{port}"),
        )
        .unwrap();
        let tls = crate::net::tls::client_config(None).unwrap();
        let began = std::time::Instant::now();
        let err = SieveClient::connect(&endpoint, tls, "u", &Secret::new("p"), Duration::from_secs(20))
            .await
            .err()
            .expect("refused");
        assert!(err.to_string().contains("larger than 17 MiB"), "{err}");
        assert!(began.elapsed() < Duration::from_secs(10), "{:?}", began.elapsed());
    }

    #[test]
    fn capabilities_are_read() {
        let (r, _) = parse_response(
            b"\"IMPLEMENTATION\" \"Dovecot Pigeonhole\"\r\n\"SIEVE\" \"fileinto Vacation date include\"\r\n\"SASL\" \"plain\"\r\n\"STARTTLS\"\r\nOK\r\n",
        )
        .unwrap()
        .unwrap();
        let caps = Capabilities::from_response(&r);
        assert_eq!(caps.implementation.as_deref(), Some("Dovecot Pigeonhole"));
        assert!(caps.has_extension("vacation") && caps.has_extension("include"));
        assert!(!caps.has_extension("relational"));
        assert_eq!(caps.sasl, vec!["PLAIN"]);
        assert!(caps.starttls);
    }
}
