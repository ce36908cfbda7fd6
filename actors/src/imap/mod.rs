//! IMAP: connecting and logging in (`connect`), and the per-account session that keeps the
//! connection alive and notices new data with IDLE or NOOP (`watch`).

pub mod acl;
pub mod batch;
pub mod capped;
pub mod connect;
pub mod folders;
pub mod headers;
pub mod multiappend;
pub mod namespace;
pub mod ops;
pub mod raw;
pub mod sync;
pub mod watch;

pub use connect::{ImapConnection, ImapSession, connect_and_login};
