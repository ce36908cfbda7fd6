//! HTTP authentication of the DAV client: Basic (RFC 7617) until a server asks for Digest
//! (RFC 7616) in a 401, then Digest for that origin, computed by the `digest_auth` crate.
//!
//! ```text
//!   request ─ a Digest challenge kept for its origin? ─ yes ─► Authorization: Digest (nc + 1)
//!                                                      └ no ──► Authorization: Basic
//!   401 with WWW-Authenticate: Digest ─► challenge kept for the origin ─► sent once more
//!   401 again ─► the login is wrong (authentication error)
//! ```
//!
//! Once an origin asked for Digest, Basic is never sent there again. Plaintext HTTP goes to
//! loopback only (the credential rule), so Basic never crosses a network unencrypted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use digest_auth::{AuthContext, HttpMethod, WwwAuthenticateHeader};
use reqwest::header::{HeaderMap, WWW_AUTHENTICATE};
use url::{Position, Url};

use crate::account::Secret;

/// Digest challenges per origin (`scheme://host:port`), shared by clones of the client.
#[derive(Clone, Default)]
pub struct Challenges(Arc<Mutex<HashMap<String, WwwAuthenticateHeader>>>);

impl Challenges {
    /// The `Authorization` value for `method url` when `origin` asked for Digest; `None` means
    /// Basic. A challenge the crate cannot answer falls back to `None` only if none is kept.
    pub fn answer(
        &self,
        origin: &str,
        username: &str,
        password: &Secret,
        method: &str,
        url: &Url,
        body: Option<&str>,
    ) -> Option<String> {
        let mut all = self.0.lock().ok()?;
        let challenge = all.get_mut(origin)?;
        // RFC 7616 §3.4: the request-target as sent (path and query).
        let uri = &url[Position::BeforePath..];
        let mut context = AuthContext::new(username, password.expose(), uri);
        context.method = HttpMethod::from(method.to_owned());
        context.body = body.map(|b| std::borrow::Cow::Owned(b.as_bytes().to_vec()));
        match challenge.respond(&context) {
            Ok(header) => Some(header.to_header_string()),
            Err(e) => {
                tracing::warn!(%origin, error = %e, "Digest challenge not answerable");
                None
            }
        }
    }

    /// Reads a 401's `WWW-Authenticate` headers: true when one is a Digest challenge (now kept
    /// for `origin`), so the request is worth sending once more.
    pub fn learn(&self, origin: &str, headers: &HeaderMap) -> bool {
        let digest = headers
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.trim_start().to_ascii_lowercase().starts_with("digest "));
        let Some(text) = digest else {
            return false;
        };
        match digest_auth::parse(text) {
            Ok(challenge) => {
                if let Ok(mut all) = self.0.lock() {
                    all.insert(origin.to_owned(), challenge);
                }
                true
            }
            Err(e) => {
                tracing::warn!(%origin, error = %e, "unreadable Digest challenge");
                false
            }
        }
    }

    /// Whether `origin` asked for Digest (Basic is then never sent there).
    pub fn wants_digest(&self, origin: &str) -> bool {
        self.0.lock().map(|a| a.contains_key(origin)).unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn a_digest_challenge_is_answered_and_counts_up() {
        let c = Challenges::default();
        let mut h = HeaderMap::new();
        h.append(WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"x\""));
        assert!(!c.learn("https://d", &h));
        h.append(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Digest realm=\"dav\", nonce=\"abc\", algorithm=MD5, qop=\"auth\""),
        );
        assert!(c.learn("https://d", &h));
        let url = Url::parse("https://d/alice/cal/?x=1").unwrap();
        let pw = Secret::new("pw");
        let first = c
            .answer("https://d", "alice", &pw, "PROPFIND", &url, None)
            .unwrap();
        assert!(first.starts_with("Digest "), "{first}");
        assert!(
            first.contains("uri=\"/alice/cal/?x=1\"") && first.contains("nc=00000001"),
            "{first}"
        );
        assert!(!first.contains("pw"), "the password itself is never sent");
        let second = c
            .answer("https://d", "alice", &pw, "PUT", &url, Some("b"))
            .unwrap();
        assert!(second.contains("nc=00000002"), "{second}");
        assert_eq!(c.answer("https://other", "alice", &pw, "GET", &url, None), None);
    }
}
