//! The engine of opconnect: protocol formats, clients, the LMDB store and the actors that run them.
//!
//! Layers point down (DESIGN.md): `net`/`dav::xml` are formats and pure rules, `imap`/`dav` hold the
//! clients, `store` is heed, and `supervise`, `supervisor` and `hub` are the actors.

pub mod account;
pub mod children;
pub mod dav;
pub mod discovery;
pub mod error;
pub mod events;
pub mod formats;
pub mod hub;
pub mod imap;
pub mod journal;
pub mod meetings;
pub mod net;
pub mod probe;
pub mod settings;
pub mod sieve;
pub mod smtp;
pub mod status;
pub mod store;
pub mod supervise;
pub mod supervisor;

pub use account::{AccountSpec, Secret, SecretSource};
pub use error::ServiceError;
pub use events::AgentEvent;
pub use settings::Settings;
