//! Network rules shared by every protocol client: endpoints, the loopback rule, TLS trust,
//! proxies and their tunnels, the Windows system proxy setting.

pub mod certinfo;
pub mod endpoint;
pub mod proxy;
pub mod tls;
pub mod tunnel;
pub mod winproxy;
