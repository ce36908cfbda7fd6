//! Network rules shared by every protocol client: endpoints, the loopback rule, TLS trust.

pub mod certinfo;
pub mod endpoint;
pub mod tls;
