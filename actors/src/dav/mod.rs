//! WebDAV, CalDAV and CardDAV: XML bodies and multistatus parsing (`xml`, a pure format), the
//! calendar-proxy bodies and their reading (`proxy`, a pure format), the HTTP client that speaks
//! them (`client`), discovery of homes and collections (`discovery`), the delegations
//! (`delegation`), the pull of one collection (`sync`), a first pull in one streaming request (`stream`) and
//! directory search (`gal`).

pub mod client;
pub mod delegation;
pub mod discovery;
pub mod gal;
pub mod proxy;
pub mod stream;
pub mod sync;
pub mod xml;

pub use client::DavClient;
