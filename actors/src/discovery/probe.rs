//! Trying one candidate for real. Without a password (the add-in's setup dialog asks before it
//! has one) a probe stops after the transport and the greeting; with one it logs in.
//!
//! ```text
//!  IMAP   TCP ─ TLS | greeting ─ CAPABILITY ─ STARTTLS ─ TLS ─┬─ LOGOUT           (no password)
//!                                                             └─ connect_and_login (password)
//!  SMTP   TCP ─ TLS | 220 ─ EHLO ─ STARTTLS ─ TLS ─ EHLO ─ [AUTH PLAIN] ─ QUIT
//!  Sieve  TCP ─ capabilities ─ STARTTLS ─ TLS ─ capabilities ─ [AUTHENTICATE "PLAIN"] ─ LOGOUT
//!  DAV    OPTIONS (no password) | current-user-principal → home set (password)
//! ```

use std::sync::Arc;

use base64::Engine as _;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio_rustls::TlsConnector;

use crate::account::Secret;
use crate::dav::DavClient;
use crate::dav::discovery::{self as dav_discovery, DavService};
use crate::error::ServiceError;
use crate::formats::discovery::Service;
use crate::imap::connect::{ImapConnection as Stream, connect_and_login};
use crate::net::endpoint::{Endpoint, Security};
use crate::net::tls::describe_tls_error;

/// A proxy's handshake during a probe (the probe's own timeout bounds the whole).
const PROXY_HANDSHAKE: std::time::Duration = std::time::Duration::from_secs(15);

/// A user name and password to log in with.
#[derive(Debug, Clone)]
pub struct Login {
    pub username: String,
    pub password: Secret,
}

/// A server line longer than this is not one of the protocols tried here.
const MAX_LINE: usize = 8192;

/// A login may take this long: servers delay failed logins on purpose, longer after each
/// failure from the same address (Dovecot's auth_penalty reaches 15 s).
pub const LOGIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Tries `endpoint` for `service`; the `Ok` text says what was established. Reaching the server
/// (transport, TLS, greeting) must happen within `timeout`, so dead candidates cost little; a
/// login then gets [`LOGIN_TIMEOUT`] on a second connection.
pub async fn probe(
    service: Service,
    endpoint: &Endpoint,
    tls: Arc<ClientConfig>,
    login: Option<&Login>,
    timeout: std::time::Duration,
) -> Result<String, ServiceError> {
    let reached = timed(
        endpoint,
        timeout,
        probe_once(service, endpoint, tls.clone(), None, timeout),
    )
    .await?;
    match login {
        None => Ok(reached),
        Some(l) => {
            let limit = LOGIN_TIMEOUT.max(timeout);
            timed(
                endpoint,
                limit,
                probe_once(service, endpoint, tls, Some(l), limit),
            )
            .await
        }
    }
}

async fn timed(
    endpoint: &Endpoint,
    limit: std::time::Duration,
    work: impl Future<Output = Result<String, ServiceError>>,
) -> Result<String, ServiceError> {
    match tokio::time::timeout(limit, work).await {
        Ok(result) => result,
        Err(_) => Err(ServiceError::transient(format!(
            "{}: no answer within {} ms",
            endpoint.authority(),
            limit.as_millis()
        ))),
    }
}

async fn probe_once(
    service: Service,
    endpoint: &Endpoint,
    tls: Arc<ClientConfig>,
    login: Option<&Login>,
    timeout: std::time::Duration,
) -> Result<String, ServiceError> {
    match service {
        Service::Imap => match login {
            Some(l) => {
                let mut s = connect_and_login(endpoint, tls, &l.username, &l.password, timeout).await?;
                let _ = s.session.logout().await;
                Ok(format!(
                    "logged in ({})",
                    if s.encrypted { "TLS" } else { "plaintext, loopback" }
                ))
            }
            None => imap_greeting(endpoint, tls).await,
        },
        Service::Smtp => smtp(endpoint, tls, login).await,
        Service::Sieve => sieve(endpoint, tls, login).await,
        Service::CalDav => dav(endpoint, tls, login, DavService::CalDav, timeout).await,
        Service::CardDav => dav(endpoint, tls, login, DavService::CardDav, timeout).await,
    }
}

/// A line-oriented connection that can be upgraded to TLS in place (also used by `probe::sieve`).
pub(crate) struct Lines {
    /// `None` only while TLS is being started.
    io: Option<BufReader<Stream>>,
    endpoint: Endpoint,
    encrypted: bool,
}

impl Lines {
    pub(crate) async fn open(endpoint: &Endpoint, tls: &Arc<ClientConfig>) -> Result<Lines, ServiceError> {
        let tcp = endpoint.open_tcp(PROXY_HANDSHAKE).await?;
        let mut lines = Lines {
            io: Some(BufReader::new(Stream::plain(tcp))),
            endpoint: endpoint.clone(),
            encrypted: false,
        };
        if endpoint.security == Security::Tls {
            lines.start_tls(tls).await?;
        }
        Ok(lines)
    }

    pub(crate) async fn start_tls(&mut self, tls: &Arc<ClientConfig>) -> Result<(), ServiceError> {
        let Some(tcp) = self.io.take().and_then(|io| io.into_inner().into_plain()) else {
            return Err(ServiceError::Protocol("TLS started twice".into()));
        };
        let name = ServerName::try_from(self.endpoint.host.clone()).map_err(|e| {
            ServiceError::Config(format!(
                "{}: not a valid TLS server name: {e}",
                self.endpoint.host
            ))
        })?;
        let stream = TlsConnector::from(tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| {
                ServiceError::Tls(format!(
                    "{}: {}",
                    self.endpoint.authority(),
                    describe_tls_error(&e)
                ))
            })?;
        self.io = Some(BufReader::new(Stream::tls(stream)));
        self.encrypted = true;
        Ok(())
    }

    fn io(&mut self) -> Result<&mut BufReader<Stream>, ServiceError> {
        self.io
            .as_mut()
            .ok_or_else(|| ServiceError::transient("the connection was lost during the TLS handshake"))
    }

    pub(crate) async fn send(&mut self, line: &str) -> Result<(), ServiceError> {
        let mut data = Vec::with_capacity(line.len() + 2);
        data.extend_from_slice(line.as_bytes());
        data.extend_from_slice(b"\r\n");
        let io = self.io()?.get_mut();
        let result = match io.write_all(&data).await {
            Ok(()) => io.flush().await,
            Err(e) => Err(e),
        };
        result.map_err(|e| self.io_err(e))
    }

    pub(crate) async fn line(&mut self) -> Result<String, ServiceError> {
        let mut buf = Vec::new();
        let result = (&mut *self.io()?)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut buf)
            .await;
        let n = result.map_err(|e| self.io_err(e))?;
        if n == 0 {
            return Err(ServiceError::transient(format!(
                "{}: the server closed the connection",
                self.endpoint.authority()
            )));
        }
        Ok(String::from_utf8_lossy(&buf).trim_end().to_owned())
    }

    fn io_err(&self, e: std::io::Error) -> ServiceError {
        ServiceError::transient(format!("{}: {e}", self.endpoint.authority()))
    }

    fn protocol(&self, what: &str, line: &str) -> ServiceError {
        ServiceError::Protocol(format!(
            "{}: {what}, got `{}`",
            self.endpoint.authority(),
            line.chars().take(120).collect::<String>()
        ))
    }

    /// Plaintext is used only on loopback when the server offers no STARTTLS (invariant 8).
    pub(crate) fn need_starttls(&self, offered: bool) -> Result<bool, ServiceError> {
        match (self.encrypted, offered, self.endpoint.loopback) {
            (true, _, _) => Ok(false),
            (false, true, _) => Ok(true),
            (false, false, true) => Ok(false),
            (false, false, false) => Err(ServiceError::Tls(format!(
                "{}: the server offers no STARTTLS; refusing plaintext to a non-loopback host",
                self.endpoint.authority()
            ))),
        }
    }

    pub(crate) fn security(&self) -> &'static str {
        if self.encrypted {
            "TLS"
        } else {
            "plaintext, loopback"
        }
    }
}

/// RFC 3501 §7.1.1 greeting, §6.1.1 CAPABILITY, §6.2.1 STARTTLS; then LOGOUT.
async fn imap_greeting(endpoint: &Endpoint, tls: Arc<ClientConfig>) -> Result<String, ServiceError> {
    let mut c = Lines::open(endpoint, &tls).await?;
    let greeting = c.line().await?;
    if !(greeting.starts_with("* OK") || greeting.starts_with("* PREAUTH")) {
        return Err(c.protocol("expected an IMAP greeting", &greeting));
    }
    let caps = imap_command(&mut c, "a1", "CAPABILITY").await?;
    if c.need_starttls(caps.to_ascii_uppercase().contains(" STARTTLS"))? {
        imap_command(&mut c, "a2", "STARTTLS").await?;
        c.start_tls(&tls).await?;
        imap_command(&mut c, "a3", "CAPABILITY").await?;
    }
    let _ = imap_command(&mut c, "a4", "LOGOUT").await;
    Ok(format!("IMAP greeting ({})", c.security()))
}

/// Sends a tagged command and returns the untagged lines; anything but `tag OK` is an error.
async fn imap_command(c: &mut Lines, tag: &str, command: &str) -> Result<String, ServiceError> {
    c.send(&format!("{tag} {command}")).await?;
    let mut untagged = String::new();
    loop {
        let line = c.line().await?;
        if let Some(rest) = line.strip_prefix(tag) {
            return if rest.trim_start().starts_with("OK") {
                Ok(untagged)
            } else {
                Err(c.protocol(&format!("{command} refused"), &line))
            };
        }
        untagged.push_str(&line);
        untagged.push('\n');
    }
}

/// RFC 5321 §4.2: a reply is lines `NNN-text` ending with `NNN text`; returns (code, all text).
async fn smtp_reply(c: &mut Lines) -> Result<(u16, String), ServiceError> {
    let mut text = String::new();
    loop {
        let line = c.line().await?;
        let code = line.get(..3).and_then(|d| d.parse::<u16>().ok());
        let Some(code) = code else {
            return Err(c.protocol("expected an SMTP reply", &line));
        };
        text.push_str(line.get(4..).unwrap_or(""));
        text.push('\n');
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok((code, text));
        }
    }
}

/// Submission (RFC 6409) over implicit TLS (RFC 8314 §3.3) or STARTTLS (RFC 3207), AUTH PLAIN
/// (RFC 4954 §4, RFC 4616).
async fn smtp(
    endpoint: &Endpoint,
    tls: Arc<ClientConfig>,
    login: Option<&Login>,
) -> Result<String, ServiceError> {
    let mut c = Lines::open(endpoint, &tls).await?;
    let (code, text) = smtp_reply(&mut c).await?;
    if code != 220 {
        return Err(c.protocol("expected the 220 greeting", &text));
    }
    c.send("EHLO opconnect.invalid").await?;
    let (code, mut ehlo) = smtp_reply(&mut c).await?;
    if code != 250 {
        return Err(c.protocol("EHLO refused", &ehlo));
    }
    let offers = |ehlo: &str, kw: &str| ehlo.lines().any(|l| l.to_ascii_uppercase().starts_with(kw));
    if c.need_starttls(offers(&ehlo, "STARTTLS"))? {
        c.send("STARTTLS").await?;
        let (code, text) = smtp_reply(&mut c).await?;
        if code != 220 {
            return Err(c.protocol("STARTTLS refused", &text));
        }
        c.start_tls(&tls).await?;
        c.send("EHLO opconnect.invalid").await?;
        ehlo = smtp_reply(&mut c).await?.1;
    }
    let mut done = format!("SMTP submission ({})", c.security());
    if let Some(l) = login {
        if !offers(&ehlo, "AUTH") {
            return Err(ServiceError::Unsupported(format!(
                "{}: the server offers no AUTH",
                endpoint.authority()
            )));
        }
        c.send(&format!("AUTH PLAIN {}", sasl_plain(l))).await?;
        let (code, text) = smtp_reply(&mut c).await?;
        match code {
            235 => done = format!("logged in ({})", c.security()),
            535 | 534 => return Err(ServiceError::Auth(text.trim().to_owned())),
            _ => return Err(c.protocol("AUTH PLAIN failed", &text)),
        }
    }
    let _ = c.send("QUIT").await;
    Ok(done)
}

/// ManageSieve (RFC 5804): §1.7 capabilities, §2.2 STARTTLS, §2.1 AUTHENTICATE, §2.3 LOGOUT.
async fn sieve(
    endpoint: &Endpoint,
    tls: Arc<ClientConfig>,
    login: Option<&Login>,
) -> Result<String, ServiceError> {
    let mut c = Lines::open(endpoint, &tls).await?;
    let caps = sieve_response(&mut c).await?;
    if c.need_starttls(caps.to_ascii_uppercase().contains("\"STARTTLS\""))? {
        c.send("STARTTLS").await?;
        sieve_response(&mut c).await?;
        c.start_tls(&tls).await?;
        // §2.2: the server sends its capabilities again after TLS.
        sieve_response(&mut c).await?;
    }
    let mut done = format!("ManageSieve ({})", c.security());
    if let Some(l) = login {
        c.send(&format!("AUTHENTICATE \"PLAIN\" \"{}\"", sasl_plain(l)))
            .await?;
        match sieve_response(&mut c).await {
            Ok(_) => done = format!("logged in ({})", c.security()),
            Err(ServiceError::Protocol(text)) if text.contains(": NO") => {
                return Err(ServiceError::Auth(text));
            }
            Err(e) => return Err(e),
        }
    }
    let _ = c.send("LOGOUT").await;
    Ok(done)
}

/// Reads lines up to `OK`, `NO` or `BYE` (RFC 5804 §1.3); `NO`/`BYE` become errors.
pub(crate) async fn sieve_response(c: &mut Lines) -> Result<String, ServiceError> {
    let mut text = String::new();
    loop {
        let line = c.line().await?;
        let upper = line.to_ascii_uppercase();
        if upper.starts_with("OK") {
            return Ok(text);
        }
        if upper.starts_with("NO") || upper.starts_with("BYE") {
            return Err(ServiceError::Protocol(format!(
                "{}: {line}",
                c.endpoint.authority()
            )));
        }
        text.push_str(&line);
        text.push('\n');
    }
}

/// RFC 4616 §2: `authzid NUL authcid NUL passwd`, base64 for the wire.
fn sasl_plain(l: &Login) -> String {
    let raw = format!("\0{}\0{}", l.username, l.password.expose());
    base64::engine::general_purpose::STANDARD.encode(raw)
}

/// Without a password, `OPTIONS` must show the service's DAV class (RFC 4791 §5.1, RFC 6352
/// §6.1) or ask for a login; with one, the principal and home set must be found.
async fn dav(
    endpoint: &Endpoint,
    tls: Arc<ClientConfig>,
    login: Option<&Login>,
    service: DavService,
    timeout: std::time::Duration,
) -> Result<String, ServiceError> {
    if let Some(l) = login {
        let client = DavClient::new(endpoint, &l.username, l.password.clone(), tls, timeout)?;
        let (principal, homes) = dav_discovery::discover(&client, service).await?;
        return Ok(format!("principal {}, {} home(s)", principal.path(), homes.len()));
    }
    // No credentials at all (not even an empty Basic header): the server answers as to anyone.
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured((*tls).clone())
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout)
        .timeout(timeout)
        .build()
        .map_err(|e| ServiceError::Config(format!("HTTP client: {e}")))?;
    let url = &endpoint.url;
    let resp = http
        .request(reqwest::Method::OPTIONS, url.clone())
        .send()
        .await
        .map_err(|e| ServiceError::transient(format!("{url}: {e}")))?;
    let class = match service {
        DavService::CalDav => "calendar-access",
        DavService::CardDav => "addressbook",
    };
    let dav_header: String = resp
        .headers()
        .get_all("DAV")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    let status = resp.status().as_u16();
    if dav_header
        .split(',')
        .any(|c| c.trim().eq_ignore_ascii_case(class))
    {
        Ok(format!("OPTIONS: DAV {class}"))
    } else if status == 401 {
        Ok("asks for a login (DAV class shown after login)".into())
    } else {
        Err(ServiceError::Unsupported(format!(
            "{url}: OPTIONS answered {status} without DAV `{class}`"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::endpoint::{Protocol, parse};
    use tokio::net::TcpListener;

    /// A scripted submission server on loopback (no STARTTLS: loopback plaintext is allowed).
    /// It accepts `alice` / `pw` and answers every connection the same way.
    async fn fake_smtp() -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut lines = BufReader::new(read).lines();
                    write.write_all(b"220 fake ESMTP\r\n").await.unwrap();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let reply: &[u8] = if line.starts_with("EHLO") {
                            b"250-fake\r\n250-AUTH PLAIN LOGIN\r\n250 SIZE 1000\r\n"
                        } else if let Some(b64) = line.strip_prefix("AUTH PLAIN ") {
                            let raw = base64::engine::general_purpose::STANDARD.decode(b64).unwrap();
                            if raw == b"\0alice\0pw" {
                                b"235 2.7.0 ok\r\n"
                            } else {
                                b"535 5.7.8 bad credentials\r\n"
                            }
                        } else {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            break;
                        };
                        write.write_all(reply).await.unwrap();
                    }
                });
            }
        });
        port
    }

    fn login(password: &str) -> Login {
        Login {
            username: "alice".into(),
            password: Secret::new(password),
        }
    }

    #[tokio::test]
    async fn smtp_greeting_and_auth_plain() {
        let port = fake_smtp().await;
        let ep = parse(Protocol::Smtp, &format!("smtp://127.0.0.1:{port}")).unwrap();
        let tls = crate::net::tls::client_config(None).unwrap();
        let t = std::time::Duration::from_secs(5);
        let reached = probe(Service::Smtp, &ep, tls.clone(), None, t).await.unwrap();
        assert_eq!(reached, "SMTP submission (plaintext, loopback)");
        let ok = probe(Service::Smtp, &ep, tls.clone(), Some(&login("pw")), t).await;
        assert_eq!(ok.unwrap(), "logged in (plaintext, loopback)");
        let refused = probe(Service::Smtp, &ep, tls, Some(&login("nope")), t).await;
        match refused {
            Err(ServiceError::Auth(text)) => {
                assert!(text.contains("bad credentials") && !text.contains("nope"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn plaintext_is_refused_off_loopback() {
        // A server that offers no STARTTLS must not get a password unless it is on loopback.
        let port = fake_smtp().await;
        let mut ep = parse(Protocol::Smtp, &format!("smtp://127.0.0.1:{port}")).unwrap();
        ep.loopback = false;
        let tls = crate::net::tls::client_config(None).unwrap();
        let e = probe(
            Service::Smtp,
            &ep,
            tls,
            Some(&login("pw")),
            std::time::Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(e, ServiceError::Tls(_)) && e.to_string().contains("no STARTTLS"),
            "{e}"
        );
    }

    #[test]
    fn sasl_plain_is_rfc_4616() {
        assert_eq!(sasl_plain(&login("pw")), "AGFsaWNlAHB3");
    }
}
