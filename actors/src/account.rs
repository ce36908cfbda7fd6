//! What the engine knows about one account: its servers, its user name and where its password comes from.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::net::endpoint::Endpoint;
use crate::net::tls::Pins;

/// One configured account, already validated (the agent's config loader builds it).
#[derive(Clone, Debug)]
pub struct AccountSpec {
    pub name: String,
    pub email: String,
    pub username: String,
    pub imap: Option<Endpoint>,
    pub smtp: Option<Endpoint>,
    pub caldav: Option<Endpoint>,
    pub carddav: Option<Endpoint>,
    pub sieve: Option<Endpoint>,
    /// An address book (on the CardDAV server) searched as the global address list by
    /// `gal.search`, for servers that publish no directory collection of their own.
    pub gal: Option<Endpoint>,
    /// Extra trust anchor (PEM) for self-hosted servers, added to the system's roots.
    pub tls_ca: Option<PathBuf>,
    /// Certificates the user trusts by SHA-256 fingerprint, per host (`tls_pins`).
    pub tls_pins: Pins,
    /// Which collections are synced, how far back, and which only from the server.
    pub sync: crate::dav::choice::SyncChoice,
}

impl AccountSpec {
    /// The account's TLS trust: system roots, `tls_ca` and `tls_pins`.
    pub fn tls(&self) -> Result<Arc<rustls::ClientConfig>, crate::error::ServiceError> {
        crate::net::tls::client_config_with(self.tls_ca.as_deref(), &self.tls_pins, None)
    }
}

/// A password. It cannot be printed: `Debug` and `Display` show a placeholder (invariant 7).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The only way to read the value; grep for it to audit every use.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Why a password could not be had. The message never contains the password.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct SecretError(pub String);

/// Where an account's password comes from (a command, the OS credential store, a test value).
/// It is asked again on every connection attempt, so a changed password is picked up without a restart.
pub trait SecretSource: Send + Sync + fmt::Debug {
    fn password(&self) -> Result<Secret, SecretError>;
}

/// A fixed password, for tests and for callers that already hold one.
#[derive(Debug)]
pub struct FixedSecret(pub Secret);

impl SecretSource for FixedSecret {
    fn password(&self) -> Result<Secret, SecretError> {
        Ok(self.0.clone())
    }
}

pub type SharedSecretSource = Arc<dyn SecretSource>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "Secret(***) ***");
        assert_eq!(s.expose(), "hunter2");
    }
}
