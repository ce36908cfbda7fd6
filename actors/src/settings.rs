//! Agent-wide timing settings (`[agent]` in the config file).

use std::time::Duration;

/// Who wins when the server and the user changed the same item (the loser is always kept in a
/// conflict record until the user resolves it, invariant 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConflictPolicy {
    #[default]
    ServerWins,
    LocalWins,
    KeepBoth,
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// NOOP polling where the server has no IDLE (the original product's 20 s).
    pub noop_interval: Duration,
    /// RFC 2177 §3: servers may drop IDLE after 30 min; renew well before.
    pub idle_renew: Duration,
    pub dav_poll_interval: Duration,
    /// Upper bound of the reconnect backoff.
    pub backoff_max: Duration,
    /// How long one connection attempt (TCP, TLS, greeting, login) may take.
    pub connect_timeout: Duration,
    /// How long a server may stay silent in the middle of a command (IMAP) or a stage (SMTP)
    /// before the connection is given up and the service restarted.
    pub command_timeout: Duration,
    /// IMAP connections per account: one for sync, the rest listen on watched folders; folders
    /// beyond the budget are polled. Dovecot allows 10 per user and IP by default, and the
    /// user's phone and webmail need some too.
    pub imap_connections: usize,
    /// A message body larger than this is served but not cached.
    pub body_cache_max: usize,
    pub conflict_policy: ConflictPolicy,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            noop_interval: Duration::from_secs(20),
            idle_renew: Duration::from_secs(25 * 60),
            dav_poll_interval: Duration::from_secs(5 * 60),
            backoff_max: Duration::from_secs(5 * 60),
            connect_timeout: Duration::from_secs(20),
            // Long enough for a slow SEARCH or EXPUNGE on a large mailbox to say something.
            command_timeout: Duration::from_secs(60),
            imap_connections: 5,
            body_cache_max: 25 << 20,
            conflict_policy: ConflictPolicy::ServerWins,
        }
    }
}
