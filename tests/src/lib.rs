//! The harness every end-to-end test of opconnect shares: private Dovecot, Radicale, Cyrus and DAViCal instances on
//! 127.0.0.1, raw IMAP/HTTP/IPC probes, and a driver for the real `opconnect` binary.
//!
//! ```text
//!   test ──▶ Dovecot::start()  ─┐  private servers, own process groups, TempDir data,
//!        ──▶ Radicale::start() ─┘  killed on Drop; start_again() keeps ports and data
//!        ──▶ Agent::start(&config_for(&dovecot, &radicale, "alice"))
//!              └─ `opconnect run --headless --config F --data-dir D --socket S`
//!        ──▶ agent.cli(..) / agent.call(..) / agent.wait_for(..) / agent.watch(..)
//! ```
//!
//! A test that needs a server it cannot start fails with the reason; nothing is skipped silently.

pub mod agent;
pub mod apache;
pub mod config;
pub mod cyrus;
pub mod dav;
pub mod davical;
pub mod desktop;
pub mod dovecot;
pub mod faultproxy;
pub mod http;
pub mod imap;
pub mod ipc;
pub mod lyingdav;
pub mod meetings;
pub mod ports;
pub mod postfix;
pub mod process;
pub mod proxies;
pub mod radicale;
pub mod tls;
pub mod xandikos;

pub use agent::{Agent, EventStream};
pub use config::{AccountSpec, AgentSettings, config_for};
pub use cyrus::{Cyrus, HttpLogEntry};
pub use dav::DavServer;
pub use davical::Davical;
pub use dovecot::{Dovecot, DovecotOptions};
pub use faultproxy::{Fault, FaultProxy, Trigger};
pub use http::HttpResponse;
pub use imap::ImapProbe;
pub use ipc::RawIpc;
pub use postfix::Postfix;
pub use radicale::{Radicale, RadicaleOptions};

/// The users every private server knows, with their passwords.
pub const USERS: &[(&str, &str)] = &[("alice", "alice-pw"), ("bob", "bob-pw")];

/// The password of one of [`USERS`]. Panics for an unknown user (a bug in the test).
pub fn password_of(user: &str) -> &'static str {
    USERS
        .iter()
        .find(|(u, _)| *u == user)
        .map(|(_, p)| *p)
        .unwrap_or_else(|| panic!("unknown test user {user:?}; the harness knows {USERS:?}"))
}

/// The mail address of a test user: `USER@localhost` (LMTP delivers it to USER).
pub fn email_of(user: &str) -> String {
    format!("{user}@localhost")
}
