//! ManageSieve (RFC 5804) and the out-of-office script opconnect keeps on the server.
//!
//! `response` parses the protocol's answers (pure), `client` speaks the protocol, `script` writes
//! and reads our Sieve script (pure), and `vacation` runs `ooo.get` / `ooo.set` with them.

pub mod client;
pub mod response;
pub mod script;
pub mod vacation;

pub use client::{Capabilities, ScriptInfo, SieveClient};
pub use script::{OurScript, SCRIPT_NAME, Vacation};
