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

/// The most SRV records used from one answer; discovery tries them in order, each with its own
/// timeout, so a server naming thousands must not make setup take hours.
pub const MAX_SRV: usize = 16;

/// The most TXT records read from one answer, and the most bytes kept of each (RFC 6764 §4's
/// `path=` value is a URL path; nothing legitimate comes close).
pub const MAX_TXT: usize = 8;
pub const MAX_TXT_BYTES: usize = 2048;

/// A resolver for discovery's SRV and TXT questions. A DNS message is at most 64 KiB by its own
/// framing (RFC 1035 §4.2); what is kept of one is capped by `MAX_SRV`, `MAX_TXT` and `MAX_TXT_BYTES`.
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
                // UDP first, and TCP for a truncated answer (RFC 7766 §5), as with the system's.
                config.add_name_server(NameServerConfig::new(addr, DnsProtocol::Udp));
                config.add_name_server(NameServerConfig::new(addr, DnsProtocol::Tcp));
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
                .take(MAX_SRV)
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
                .take(MAX_TXT)
                .map(|r| {
                    let mut bytes = Vec::new();
                    for part in r.txt_data() {
                        let room = MAX_TXT_BYTES - bytes.len();
                        bytes.extend_from_slice(&part[..part.len().min(room)]);
                    }
                    String::from_utf8_lossy(&bytes).into_owned()
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

    /// A scripted name server answering every question with `answers(name)`: over UDP when the
    /// answer fits 512 bytes, else truncated there (RFC 1035 §4.2.1) and in full over TCP.
    async fn scripted(
        answers: impl Fn(hickory_resolver::proto::rr::Name) -> Vec<hickory_resolver::proto::rr::Record>
        + Send
        + Sync
        + 'static,
    ) -> SocketAddr {
        use hickory_resolver::proto::op::{Message, MessageType};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let answers = std::sync::Arc::new(answers);
        let respond = {
            let answers = answers.clone();
            move |query: &[u8], full: bool| {
                let query = Message::from_vec(query).unwrap();
                let mut answer = Message::new();
                answer.set_id(query.id());
                answer.set_message_type(MessageType::Response);
                answer.set_recursion_available(true);
                answer.add_queries(query.queries().to_vec());
                answer.add_answers(answers(query.queries()[0].name().clone()));
                let bytes = answer.to_vec().unwrap();
                if full || bytes.len() <= 512 {
                    return bytes;
                }
                answer.take_answers();
                answer.set_truncated(true);
                answer.to_vec().unwrap()
            }
        };
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let tcp = tokio::net::TcpListener::bind(addr).await.unwrap();
        let over_tcp = respond.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = tcp.accept().await {
                let len = stream.read_u16().await.unwrap() as usize;
                let mut query = vec![0u8; len];
                stream.read_exact(&mut query).await.unwrap();
                let bytes = over_tcp(&query, true);
                stream.write_u16(bytes.len() as u16).await.unwrap();
                stream.write_all(&bytes).await.unwrap();
            }
        });
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok((n, peer)) = socket.recv_from(&mut buf).await {
                let _ = socket.send_to(&respond(&buf[..n], false), peer).await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn answers_are_capped_by_record_count_and_size() {
        use hickory_resolver::proto::rr::rdata::{SRV, TXT};
        use hickory_resolver::proto::rr::{RData, Record};
        let server = scripted(|name| {
            if name.to_ascii().starts_with("_imaps") {
                (0..60)
                    .map(|i| {
                        let target = format!("h{i}.example.test.").parse().unwrap();
                        Record::from_rdata(name.clone(), 60, RData::SRV(SRV::new(0, 0, 993, target)))
                    })
                    .collect()
            } else {
                (0..20)
                    .map(|i| {
                        let parts = vec![format!("{i:0>200}"); 12];
                        Record::from_rdata(name.clone(), 60, RData::TXT(TXT::new(parts)))
                    })
                    .collect()
            }
        })
        .await;
        let dns = Dns::new(Some(server)).unwrap();
        let srv = dns.srv("_imaps._tcp.example.test").await.unwrap();
        assert_eq!(srv.len(), MAX_SRV, "SRV records beyond the cap are not used");
        let txt = dns.txt("_caldavs._tcp.example.test").await.unwrap();
        assert_eq!(txt.len(), MAX_TXT);
        assert!(
            txt.iter().all(|t| t.len() == MAX_TXT_BYTES),
            "each TXT kept to its cap"
        );
    }
}
