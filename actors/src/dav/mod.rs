//! WebDAV, CalDAV and CardDAV: XML bodies and multistatus parsing (`xml`, a pure format) and the
//! HTTP client that speaks them (`client`).

pub mod client;
pub mod xml;

pub use client::DavClient;
