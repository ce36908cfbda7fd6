//! Message submission over SMTP (RFC 6409) with lettre: implicit TLS (`smtps://`, RFC 8314 §3.3)
//! or STARTTLS (`smtp://`, RFC 3207), AUTH, and the envelope taken from the message's own headers.
//! Plaintext only to a loopback server that offers no STARTTLS (invariant 8).

use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use mail_parser::MessageParser;

use crate::account::Secret;
use crate::error::ServiceError;
use crate::net::endpoint::{Endpoint, Security};

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

/// Submits `raw` as `username`. 4xx and connection failures are transient; 535 is authentication;
/// other 5xx refusals are permanent (the operation is kept for the user).
pub async fn submit(
    endpoint: &Endpoint,
    tls_ca: Option<&std::path::Path>,
    username: &str,
    password: &Secret,
    raw: &[u8],
    timeout: Duration,
) -> Result<(), ServiceError> {
    let who = addressing(raw).map_err(ServiceError::Protocol)?;
    let parse = |a: &str| {
        a.parse::<Address>()
            .map_err(|e| ServiceError::Protocol(format!("address {a}: {e}")))
    };
    let envelope = Envelope::new(
        Some(parse(&who.from)?),
        who.recipients
            .iter()
            .map(|r| parse(r))
            .collect::<Result<_, _>>()?,
    )
    .map_err(|e| ServiceError::Protocol(format!("envelope: {e}")))?;
    let mut params = TlsParameters::builder(endpoint.host.clone());
    if let Some(ca) = tls_ca {
        let pem =
            std::fs::read(ca).map_err(|e| ServiceError::Config(format!("tls_ca {}: {e}", ca.display())))?;
        let cert = Certificate::from_pem(&pem)
            .map_err(|e| ServiceError::Config(format!("tls_ca {}: {e}", ca.display())))?;
        params = params.add_root_certificate(cert);
    }
    let params = params
        .build_rustls()
        .map_err(|e| ServiceError::Config(format!("TLS: {e}")))?;
    let tls = match endpoint.security {
        Security::Tls => Tls::Wrapper(params),
        // A loopback test server may lack STARTTLS; anything else must offer it.
        Security::StartTls if endpoint.loopback => Tls::Opportunistic(params),
        Security::StartTls => Tls::Required(params),
        Security::Plain => Tls::None,
    };
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(endpoint.host.clone())
        .port(endpoint.port)
        .tls(tls)
        .timeout(Some(timeout))
        .credentials(Credentials::new(
            username.to_owned(),
            password.expose().to_owned(),
        ))
        .build();
    transport
        .send_raw(&envelope, &without_bcc(raw))
        .await
        .map(|_| ())
        .map_err(|e| {
            let text = e.to_string();
            match e.status().map(|c| c.to_string()) {
                Some(code) if code.starts_with("535") || code.starts_with("530") => {
                    ServiceError::Auth(format!("{}: {text}", endpoint.authority()))
                }
                Some(_) if e.is_permanent() => {
                    ServiceError::Protocol(format!("{} refused the message: {text}", endpoint.authority()))
                }
                _ => ServiceError::transient(format!("{}: {text}", endpoint.authority())),
            }
        })
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
