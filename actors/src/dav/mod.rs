//! WebDAV, CalDAV and CardDAV: XML bodies and multistatus parsing (`xml`, a pure format), the
//! calendar-proxy bodies and their reading (`proxy`, a pure format), the HTTP client that speaks
//! them (`client`), discovery of homes and collections (`discovery`), the delegations
//! (`delegation`), the pull of one collection (`sync`, and `window` for a limited past; `listing` reads
//! its listings as they arrive, compared with the mirror), a first pull
//! in one streaming request (`stream`), what the account chose to sync (`choice`), the check of a
//! sync-token's word (`verify`), the change marker each collection is polled by (`marker`) and
//! directory search (`gal`).

pub mod auth;
pub mod choice;
pub mod client;
pub mod delegation;
pub mod discovery;
pub mod gal;
pub mod listing;
pub mod marker;
pub mod proxy;
pub mod stream;
pub mod sync;
pub mod verify;
pub mod window;
pub mod xml;

pub use client::DavClient;
