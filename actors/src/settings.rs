//! Agent-wide timing settings (`[agent]` in the config file).

use std::time::Duration;

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
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            noop_interval: Duration::from_secs(20),
            idle_renew: Duration::from_secs(25 * 60),
            dav_poll_interval: Duration::from_secs(5 * 60),
            backoff_max: Duration::from_secs(5 * 60),
            connect_timeout: Duration::from_secs(20),
        }
    }
}
