//! WebDAV, CalDAV and CardDAV: XML bodies and multistatus parsing (`xml`, a pure format), the
//! HTTP client that speaks them (`client`), discovery of homes and collections (`discovery`) and
//! the pull of one collection (`sync`).

pub mod client;
pub mod discovery;
pub mod gal;
pub mod sync;
pub mod xml;

pub use client::DavClient;
