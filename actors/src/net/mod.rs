//! Network rules shared by every protocol client: endpoints, the loopback rule, TLS trust,
//! proxies.

pub mod certinfo;
pub mod endpoint;
pub mod proxy;
pub mod tls;
