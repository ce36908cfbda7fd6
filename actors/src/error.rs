//! Errors of a service connection, shaped around what the supervisor does next.

use std::time::Duration;

/// What went wrong talking to one server, grouped by what happens next:
/// `Transient` → offline, retry with backoff; `Auth` → error state, retry slowly;
/// `Tls`, `Protocol`, `Unsupported`, `Config` → error state until the user acts or asks to sync.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ServiceError {
    /// The server could not be reached or dropped the connection; try again later.
    #[error("{message}")]
    Transient {
        message: String,
        retry_after: Option<Duration>,
    },
    /// The server refused the credentials (the message is the server's, never ours).
    #[error("authentication failed: {0}")]
    Auth(String),
    /// The TLS handshake failed, usually an untrusted certificate.
    #[error("TLS: {0}")]
    Tls(String),
    /// The server answered something we cannot work with.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The server does not offer what this service needs.
    #[error("not supported: {0}")]
    Unsupported(String),
    /// The thing asked for does not exist on the server (a message expunged meanwhile, …).
    #[error("not found: {0}")]
    NotFound(String),
    /// The account's settings cannot work (missing password, unreadable CA file, …).
    #[error("configuration: {0}")]
    Config(String),
}

impl ServiceError {
    pub fn transient(message: impl Into<String>) -> Self {
        ServiceError::Transient {
            message: message.into(),
            retry_after: None,
        }
    }

    /// True when the server is simply not there right now (state `offline`, not `error`).
    pub fn is_transient(&self) -> bool {
        matches!(self, ServiceError::Transient { .. })
    }
}
