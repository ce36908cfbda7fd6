//! The ManageSieve probe: the server sends its capabilities in the greeting (RFC 5804 §1.7), so
//! no login is needed to learn whether the `vacation` extension (RFC 5230) is there.
//!
//! ```text
//!   TCP ─ [TLS] ─ capabilities ─ [STARTTLS ─ TLS ─ capabilities (§2.2)] ─ LOGOUT (§2.3)
//! ```
//!
//! The connection code is the account setup's (`discovery::probe::Lines`), reused as is.

use std::sync::Arc;

use rustls::ClientConfig;

use crate::discovery::probe::{Lines, sieve_response};
use crate::error::ServiceError;
use crate::net::endpoint::Endpoint;
use crate::probe::facts::{SieveFacts, public_url};

/// Reads the capabilities, upgrading to TLS first where the server offers STARTTLS.
pub async fn probe(endpoint: &Endpoint, tls: Arc<ClientConfig>) -> Result<SieveFacts, ServiceError> {
    let mut c = Lines::open(endpoint, &tls).await?;
    let mut caps = sieve_response(&mut c).await?;
    let offered = parse_capabilities(&caps)
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("STARTTLS"));
    if c.need_starttls(offered)? {
        c.send("STARTTLS").await?;
        sieve_response(&mut c).await?;
        c.start_tls(&tls).await?;
        // RFC 5804 §2.2: the capabilities are sent again, and may differ, after TLS.
        caps = sieve_response(&mut c).await?;
    }
    let _ = c.send("LOGOUT").await;
    let mut facts = facts_from(&parse_capabilities(&caps));
    facts.url = public_url(&endpoint.url);
    facts.encrypted = c.security() == "TLS";
    Ok(facts)
}

/// RFC 5804 §1.7: each capability line is `"NAME"` or `"NAME" "value"`.
pub fn parse_capabilities(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let mut quoted = quoted_strings(line).into_iter();
            let name = quoted.next()?;
            Some((name, quoted.next().unwrap_or_default()))
        })
        .collect()
}

/// The quoted strings of one line, with `\"` and `\\` unescaped (RFC 5804 §4 `quoted`).
fn quoted_strings(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = line.chars();
    while let Some(ch) = chars.next() {
        if ch != '"' {
            continue;
        }
        let mut s = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => s.extend(chars.next()),
                '"' => break,
                c => s.push(c),
            }
        }
        out.push(s);
    }
    out
}

/// The facts the report needs from the parsed capabilities.
pub fn facts_from(caps: &[(String, String)]) -> SieveFacts {
    let value = |name: &str| {
        caps.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let words = |name: &str| -> Vec<String> {
        value(name)
            .map(|v| v.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default()
    };
    SieveFacts {
        implementation: value("IMPLEMENTATION"),
        extensions: words("SIEVE"),
        sasl: words("SASL"),
        ..SieveFacts::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Dovecot Pigeonhole's greeting, as recorded.
    const DOVECOT: &str = "\"IMPLEMENTATION\" \"Dovecot Pigeonhole\"\n\
        \"SIEVE\" \"fileinto reject envelope encoded-character vacation subaddress comparator-i;ascii-numeric relational regex imap4flags copy include variables body enotify environment mailbox date index ihave duplicate mime foreverypart extracttext\"\n\
        \"NOTIFY\" \"mailto\"\n\"SASL\" \"PLAIN LOGIN\"\n\"STARTTLS\"\n\"VERSION\" \"1.0\"\n";

    #[test]
    fn dovecot_offers_vacation() {
        let caps = parse_capabilities(DOVECOT);
        assert!(caps.iter().any(|(k, v)| k == "STARTTLS" && v.is_empty()));
        let f = facts_from(&caps);
        assert_eq!(f.implementation.as_deref(), Some("Dovecot Pigeonhole"));
        assert!(f.has_extension("vacation"));
        assert!(f.has_extension("FILEINTO"));
        assert_eq!(f.sasl, vec!["PLAIN", "LOGIN"]);
    }

    #[test]
    fn a_server_without_vacation_says_so() {
        let f = facts_from(&parse_capabilities("\"SIEVE\" \"fileinto\"\n"));
        assert!(!f.has_extension("vacation"));
        assert_eq!(f.implementation, None);
    }

    #[test]
    fn escapes_in_quoted_strings() {
        assert_eq!(
            quoted_strings(r#""IMPLEMENTATION" "A \"quoted\" \\ name""#),
            vec!["IMPLEMENTATION", r#"A "quoted" \ name"#]
        );
    }
}
