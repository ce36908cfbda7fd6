//! Message submission over SMTP (RFC 6409) with lettre: implicit TLS (`smtps://`, RFC 8314 §3.3)
//! or STARTTLS (`smtp://`, RFC 3207), AUTH, and the envelope taken from the message's own headers.
//! Plaintext only to a loopback server that offers no STARTTLS (invariant 8). The TLS, implicit
//! or after STARTTLS, direct or through a proxy's tunnel, is ours (`smtp/starttls.rs`); lettre
//! speaks SMTP over it.
//!
//! ```text
//!  connect ─ TLS/STARTTLS ─ EHLO ─ AUTH │ MAIL ─ RCPT… ─ DATA │ transmitting() │ message ─ "." ─ 250
//!  └──────── Budget::connect ─────────┘ └─ command each ───┘  durable mark   └ command + size ┘
//!        failure here: NotSent (retry is safe)                  failure after the mark: Unknown
//! ```

use std::time::Duration;

use lettre::Address;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, MailBodyParameter, MailParameter};
use mail_parser::MessageParser;

use crate::account::Secret;
use crate::error::ServiceError;
use crate::net::endpoint::{Endpoint, Security};

mod starttls;

/// Who the message goes to, read from its headers (RFC 5322 §3.6.2, §3.6.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addressing {
    pub from: String,
    pub recipients: Vec<String>,
}

/// Reads From (or Sender) and To, Cc, Bcc; a message without a sender or recipient is refused.
pub fn addressing(raw: &[u8]) -> Result<Addressing, String> {
    let message = MessageParser::default()
        .parse_headers(raw)
        .ok_or("the message has no readable headers")?;
    let first = |a: Option<&mail_parser::Address<'_>>| {
        a.and_then(|a| a.first())
            .and_then(|a| a.address())
            .map(str::to_owned)
    };
    let from = first(message.from())
        .or_else(|| first(message.sender()))
        .ok_or("the message has no From address")?;
    let mut recipients = Vec::new();
    for list in [message.to(), message.cc(), message.bcc()].into_iter().flatten() {
        recipients.extend(list.iter().filter_map(|a| a.address()).map(str::to_owned));
    }
    recipients.sort();
    recipients.dedup();
    if recipients.is_empty() {
        return Err("the message has no recipient (To, Cc or Bcc)".into());
    }
    Ok(Addressing { from, recipients })
}

/// The message as transmitted: without its Bcc header, which must not reach the recipients
/// (RFC 5322 §3.6.3); the copy in Sent keeps it.
pub fn without_bcc(raw: &[u8]) -> Vec<u8> {
    let header_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 2)
        .unwrap_or(raw.len());
    let (head, body) = raw.split_at(header_end);
    let mut out = Vec::with_capacity(raw.len());
    let mut skipping = false;
    for line in head.split_inclusive(|b| *b == b'\n') {
        let continuation = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if !continuation {
            skipping = line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"bcc:");
        }
        if !skipping {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(body);
    out
}

/// How long each stage of a submission may take. RFC 5321 §4.5.3.2 suggests minutes per stage;
/// the agent's `[agent] connect_timeout` and `command_timeout` stand in for them.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// TCP, TLS or STARTTLS, greeting, EHLO and AUTH together.
    pub connect: Duration,
    /// One command (MAIL, RCPT, DATA), and the wait for the answer to the final dot.
    pub command: Duration,
}

/// A message needs this much time on top of `Budget::command` per byte transmitted
/// (a slow 16 KiB/s uplink still gets there).
const BYTES_PER_SECOND: u64 = 16 * 1024;

/// Why a submission failed, by what the caller may do next.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SubmitError {
    /// The message itself never went out: submitting again cannot deliver it twice.
    #[error(transparent)]
    NotSent(ServiceError),
    /// The message went out but the server's answer did not come back (a timeout or a dropped
    /// connection after the final dot, RFC 5321 §4.1.1.4): the server may have accepted it.
    /// Sending again risks a duplicate (RFC 1047), so the caller must not do it on its own.
    #[error("{0}")]
    Unknown(String),
}

/// What a submission server's certificate is checked against: system roots, `tls_ca`, `tls_pins`.
#[derive(Debug, Clone, Copy)]
pub struct Trust<'a> {
    pub ca: Option<&'a std::path::Path>,
    pub pins: &'a crate::net::tls::Pins,
}

/// Submits `raw` as `username`, stage by stage, each under its part of `budget`.
/// `transmitting` runs after the server agreed to take the message (354) and before its first
/// byte is sent: the caller records durably that the outcome may become unknown from here.
/// 4xx and connection failures are transient; 535 is authentication; other 5xx refusals are
/// permanent (the operation is kept for the user).
pub async fn submit(
    endpoint: &Endpoint,
    trust: Trust<'_>,
    username: &str,
    password: &Secret,
    raw: &[u8],
    budget: Budget,
    transmitting: &mut dyn FnMut() -> Result<(), ServiceError>,
) -> Result<(), SubmitError> {
    let who = addressing(raw)
        .map_err(ServiceError::Protocol)
        .map_err(SubmitError::NotSent)?;
    let parse = |a: &str| {
        a.parse::<Address>()
            .map_err(|e| ServiceError::Protocol(format!("address {a}: {e}")))
    };
    let from = parse(&who.from).map_err(SubmitError::NotSent)?;
    let recipients: Vec<Address> = who
        .recipients
        .iter()
        .map(|r| parse(r))
        .collect::<Result<_, _>>()
        .map_err(SubmitError::NotSent)?;
    // lettre's own TLS takes no custom verifier and wraps only sockets it opened: TLS, implicit
    // or after STARTTLS, is ours (smtp/starttls.rs, the one verifier of net/tls.rs: roots,
    // tls_ca, tls_pins, and refusals that name the certificate), and lettre talks through it.
    let pinned = trust.pins.covers(&endpoint.host);
    let credentials = Credentials::new(username.to_owned(), password.expose().to_owned());
    let classify = |e: lettre::transport::smtp::Error| classify(endpoint, e);
    let late = |stage: &str, limit: Duration| {
        ServiceError::transient(format!(
            "{}: no answer to {stage} within {}s",
            endpoint.authority(),
            limit.as_secs()
        ))
    };
    let hello = ClientId::default();
    let mut conn = stage(
        budget.connect,
        late("the greeting, EHLO or AUTH", budget.connect),
        async {
            // Direct or through the proxy's tunnel (net/proxy.rs).
            let tcp = endpoint.open_tcp(budget.connect).await?;
            let stream: Box<dyn AsyncTokioStream> = match endpoint.security {
                Security::Tls => Box::new(starttls::implicit(endpoint, trust, tcp).await?),
                Security::StartTls => {
                    Box::new(starttls::upgrade(endpoint, trust, tcp, &hello.to_string(), pinned).await?)
                }
                Security::Plain => Box::new(tcp),
            };
            let mut conn = AsyncSmtpConnection::connect_with_transport(stream, &hello)
                .await
                .map_err(classify)?;
            conn.auth(DEFAULT_MECHANISMS, &credentials)
                .await
                .map_err(classify)?;
            Ok(conn)
        },
    )
    .await
    .map_err(SubmitError::NotSent)?;

    // RFC 6152 (8BITMIME), RFC 6531 (SMTPUTF8), as lettre's own send does.
    let mut options = Vec::new();
    if !raw.is_ascii() {
        options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    if who
        .from
        .chars()
        .chain(who.recipients.concat().chars())
        .any(|c| !c.is_ascii())
    {
        options.push(MailParameter::SmtpUtfEight);
    }
    let envelope = async {
        conn.command(Mail::new(Some(from), options))
            .await
            .map_err(classify)?;
        for to in recipients {
            conn.command(Rcpt::new(to, Vec::new())).await.map_err(classify)?;
        }
        conn.command(Data).await.map_err(classify)
    };
    let recipients_count = who.recipients.len() as u32 + 2;
    let envelope_limit = budget.command * recipients_count;
    if let Err(e) = stage(
        envelope_limit,
        late("MAIL, RCPT or DATA", envelope_limit),
        envelope,
    )
    .await
    {
        conn.abort().await;
        return Err(SubmitError::NotSent(e));
    }
    transmitting().map_err(SubmitError::NotSent)?;
    let body = without_bcc(raw);
    let limit = budget.command + Duration::from_secs(body.len() as u64 / BYTES_PER_SECOND);
    match tokio::time::timeout(limit, conn.message(&body)).await {
        Ok(Ok(_)) => {
            // The message is the server's now; a failing QUIT changes nothing.
            let _ = tokio::time::timeout(budget.command, conn.quit()).await;
            Ok(())
        }
        // A definite refusal of the message (RFC 5321 §4.2.1: 4yz or 5yz to the final dot).
        Ok(Err(e)) if e.status().is_some() => Err(SubmitError::NotSent(classify(e))),
        Ok(Err(e)) => Err(SubmitError::Unknown(format!(
            "{}: the connection failed after the message was transmitted ({e}); the server may have accepted it",
            endpoint.authority()
        ))),
        Err(_) => Err(SubmitError::Unknown(format!(
            "{}: no answer within {}s after the message was transmitted; the server may have accepted it",
            endpoint.authority(),
            limit.as_secs()
        ))),
    }
}

/// Runs one stage under its time limit.
async fn stage<T>(
    limit: Duration,
    late: ServiceError,
    work: impl Future<Output = Result<T, ServiceError>>,
) -> Result<T, ServiceError> {
    tokio::time::timeout(limit, work).await.unwrap_or(Err(late))
}

/// 535/530 are authentication; other 5xx are refusals; the rest (4xx, network) transient.
fn classify(endpoint: &Endpoint, e: lettre::transport::smtp::Error) -> ServiceError {
    let text = e.to_string();
    match e.status().map(|c| c.to_string()) {
        Some(code) if code.starts_with("535") || code.starts_with("530") => {
            ServiceError::Auth(format!("{}: {text}", endpoint.authority()))
        }
        Some(_) if e.is_permanent() => {
            ServiceError::Protocol(format!("{} refused the message: {text}", endpoint.authority()))
        }
        // A certificate refused is the user's to decide (a pin, a CA), not a retry's.
        None if e.is_tls() && text.contains("certificate") => {
            ServiceError::Tls(format!("{}: {text}", endpoint.authority()))
        }
        _ => ServiceError::transient(format!("{}: {text}", endpoint.authority())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAW: &[u8] = b"From: Alice <alice@example.org>\r\nTo: bob@example.org, Carol <carol@example.org>\r\n\
Cc: dave@example.org\r\nBcc: eve@example.org,\r\n  frank@example.org\r\nSubject: hi\r\n\r\nBcc: not a header\r\n";

    #[test]
    fn the_envelope_comes_from_the_headers() {
        let a = addressing(RAW).unwrap();
        assert_eq!(a.from, "alice@example.org");
        assert_eq!(
            a.recipients,
            [
                "bob@example.org",
                "carol@example.org",
                "dave@example.org",
                "eve@example.org",
                "frank@example.org"
            ]
        );
        assert!(
            addressing(b"To: bob@example.org\r\n\r\n")
                .unwrap_err()
                .contains("From")
        );
        assert!(
            addressing(b"From: a@b.c\r\n\r\n")
                .unwrap_err()
                .contains("recipient")
        );
    }

    #[test]
    fn bcc_is_not_transmitted_but_the_body_is_untouched() {
        let out = String::from_utf8(without_bcc(RAW)).unwrap();
        assert!(!out.contains("eve@") && !out.contains("frank@"), "{out}");
        assert!(
            out.contains("Cc: dave@example.org\r\nSubject: hi\r\n\r\nBcc: not a header\r\n"),
            "{out}"
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = addressing(&bytes);
            let _ = without_bcc(&bytes);
        }
    }
}
