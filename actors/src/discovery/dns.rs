//! DNS lookups for discovery (hickory-resolver): SRV (RFC 2782) and TXT (RFC 6764 §4), from the
//! system's resolver or from one given name server (`[agent] dns`, used by tests with dnsmasq).

use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::xfer::Protocol as DnsProtocol;
use hickory_resolver::{ResolveError, TokioResolver};

use crate::error::ServiceError;
use crate::formats::discovery::SrvRecord;

/// One lookup may take this long in all; a missing record must not hold up the setup dialog.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);

/// A resolver for discovery's SRV and TXT questions.
#[derive(Clone)]
pub struct Dns {
    resolver: TokioResolver,
}

impl Dns {
    /// The system's resolver, or `server` alone when given.
    pub fn new(server: Option<SocketAddr>) -> Result<Dns, ServiceError> {
        let mut opts = ResolverOpts::default();
        opts.timeout = LOOKUP_TIMEOUT;
        opts.attempts = 1;
        let builder = match server {
            Some(addr) => {
                let mut config = ResolverConfig::new();
                config.add_name_server(NameServerConfig::new(addr, DnsProtocol::Udp));
                TokioResolver::builder_with_config(config, TokioConnectionProvider::default())
            }
            None => TokioResolver::builder_tokio()
                .map_err(|e| ServiceError::Config(format!("the system's DNS configuration: {e}")))?,
        };
        Ok(Dns {
            resolver: builder.with_options(opts).build(),
        })
    }

    /// The SRV records at `name`; none (NXDOMAIN, no data) is an empty list, not an error.
    pub async fn srv(&self, name: &str) -> Result<Vec<SrvRecord>, String> {
        match self.resolver.srv_lookup(fqdn(name)).await {
            Ok(lookup) => Ok(lookup
                .iter()
                .map(|r| SrvRecord {
                    priority: r.priority(),
                    weight: r.weight(),
                    port: r.port(),
                    target: r.target().to_ascii().trim_end_matches('.').to_owned(),
                })
                .collect()),
            Err(e) if e.is_no_records_found() => Ok(Vec::new()),
            Err(e) => Err(describe(name, e)),
        }
    }

    /// The addresses of `name` (A and AAAA), for fetching autoconfig files when the test's
    /// name server stands in for the system's.
    pub async fn ips(&self, name: &str) -> Result<Vec<std::net::IpAddr>, String> {
        match self.resolver.lookup_ip(fqdn(name)).await {
            Ok(lookup) => Ok(lookup.iter().collect()),
            Err(e) if e.is_no_records_found() => Ok(Vec::new()),
            Err(e) => Err(describe(name, e)),
        }
    }

    /// The TXT strings at `name` (each record's character-strings joined, RFC 1035 §3.3.14).
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, String> {
        match self.resolver.txt_lookup(fqdn(name)).await {
            Ok(lookup) => Ok(lookup
                .iter()
                .map(|r| {
                    r.txt_data()
                        .iter()
                        .map(|part| String::from_utf8_lossy(part).into_owned())
                        .collect::<String>()
                })
                .collect()),
            Err(e) if e.is_no_records_found() => Ok(Vec::new()),
            Err(e) => Err(describe(name, e)),
        }
    }
}

/// Absolute names, so no search domain of the machine is appended.
fn fqdn(name: &str) -> String {
    if name.ends_with('.') {
        name.to_owned()
    } else {
        format!("{name}.")
    }
}

fn describe(name: &str, e: ResolveError) -> String {
    format!("DNS {name}: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_absolute() {
        assert_eq!(fqdn("_imaps._tcp.example.org"), "_imaps._tcp.example.org.");
        assert_eq!(fqdn("example.org."), "example.org.");
    }

    #[tokio::test]
    async fn a_silent_server_fails_within_the_timeout() {
        // A UDP port nobody answers on: the lookup must end, with an error, not hang.
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let dns = Dns::new(Some(socket.local_addr().unwrap())).unwrap();
        let began = std::time::Instant::now();
        let result = dns.srv("_imaps._tcp.example.test").await;
        assert!(result.is_err(), "{result:?}");
        assert!(began.elapsed() < Duration::from_secs(10));
    }
}
