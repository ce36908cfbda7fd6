//! Server discovery from an email address, the pure part: DNS records (RFC 6186 SRV for mail,
//! RFC 6764 SRV + TXT for CalDAV/CardDAV, RFC 5804 §1.8 for ManageSieve) and common host names
//! turned into ranked candidate URLs. No sockets here: `crate::discovery` looks the records up
//! and tries each candidate for real.
//!
//! ```text
//!   alice@example.org ─► domain ─► SRV _imaps._tcp.example.org ─┐
//!                                  SRV _imap._tcp.example.org  ─┼─► candidates (ranked) ─► probes
//!                                  imap.example.org, mail.…    ─┘   (guesses only when no SRV works)
//! ```

use std::fmt;

/// One service of an account, named as in the config file (INTERFACE §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Service {
    Imap,
    Smtp,
    CalDav,
    CardDav,
    Sieve,
}

impl Service {
    pub const ALL: [Service; 5] = [
        Service::Imap,
        Service::Smtp,
        Service::CalDav,
        Service::CardDav,
        Service::Sieve,
    ];

    /// The config key and IPC field of the service.
    pub fn key(self) -> &'static str {
        match self {
            Service::Imap => "imap",
            Service::Smtp => "smtp",
            Service::CalDav => "caldav",
            Service::CardDav => "carddav",
            Service::Sieve => "sieve",
        }
    }

    pub fn from_key(key: &str) -> Option<Service> {
        Service::ALL.into_iter().find(|s| s.key() == key)
    }

    pub fn is_dav(self) -> bool {
        matches!(self, Service::CalDav | Service::CardDav)
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// One SRV query and the URL scheme its answers stand for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SrvQuery {
    pub service: Service,
    /// `_imaps._tcp` and so on (RFC 2782 §"The format of the SRV RR").
    pub label: &'static str,
    pub scheme: &'static str,
    /// Implicit TLS, preferred over STARTTLS at equal priority (RFC 8314 §5.1).
    pub implicit_tls: bool,
}

const fn q(service: Service, label: &'static str, scheme: &'static str, implicit_tls: bool) -> SrvQuery {
    SrvQuery {
        service,
        label,
        scheme,
        implicit_tls,
    }
}

/// RFC 6186 §3.1–3.2 (IMAP, submission), RFC 8314 §5.1 (`_submissions`), RFC 6764 §3 (DAV),
/// RFC 5804 §1.8 (`_sieve`).
const QUERIES: &[SrvQuery] = &[
    q(Service::Imap, "_imaps._tcp", "imaps", true),
    q(Service::Imap, "_imap._tcp", "imap", false),
    q(Service::Smtp, "_submissions._tcp", "smtps", true),
    q(Service::Smtp, "_submission._tcp", "smtp", false),
    q(Service::CalDav, "_caldavs._tcp", "https", true),
    q(Service::CalDav, "_caldav._tcp", "http", false),
    q(Service::CardDav, "_carddavs._tcp", "https", true),
    q(Service::CardDav, "_carddav._tcp", "http", false),
    q(Service::Sieve, "_sieve._tcp", "sieve", false),
];

/// The SRV queries for `service`.
pub fn srv_queries(service: Service) -> impl Iterator<Item = &'static SrvQuery> {
    QUERIES.iter().filter(move |q| q.service == service)
}

/// One SRV answer (RFC 2782), the target without its trailing dot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvRecord {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    pub target: String,
}

/// A URL worth trying for a service, with where it came from and its place in the order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub service: Service,
    pub url: String,
    /// `given`, `SRV _imaps._tcp.example.org`, `guess` …
    pub source: String,
    /// Lower is better; only compared within one service.
    pub rank: u32,
}

/// The domain of an address: what follows the last `@`, lower-cased, without a trailing dot.
pub fn email_domain(email: &str) -> Option<String> {
    let (local, domain) = email.trim().rsplit_once('@')?;
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let valid = !local.is_empty()
        && !domain.is_empty()
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    valid.then_some(domain)
}

/// RFC 6764 §4: the TXT record beside a DAV SRV record carries `path=/context/`.
pub fn txt_path(strings: &[String]) -> Option<String> {
    strings.iter().find_map(|s| {
        let (key, value) = s.split_once('=')?;
        let value = value.trim();
        (key.trim().eq_ignore_ascii_case("path") && value.starts_with('/')).then(|| value.to_owned())
    })
}

/// The candidates of one service from all its SRV answers, best first.
///
/// - RFC 6186 §3.4 / RFC 2782: a sole record whose target is `.` says the service is not offered.
/// - Order: priority ascending; at equal priority implicit TLS first (RFC 8314 §5.1), then weight
///   descending. RFC 2782 asks for a weighted random pick; a fixed order makes the choice
///   repeatable, and every candidate is tried anyway.
/// - DAV URLs carry the TXT path, else `/` (the client tries `/.well-known/…` from there,
///   RFC 6764 §5).
pub fn srv_candidates(answers: &[(&SrvQuery, Vec<SrvRecord>, Option<String>)]) -> Vec<Candidate> {
    let mut rows: Vec<(u16, bool, u16, Candidate)> = Vec::new();
    for (query, records, path) in answers {
        if records.len() == 1 && (records[0].target.is_empty() || records[0].target == ".") {
            continue;
        }
        for r in records {
            if r.target.is_empty() || r.target == "." {
                continue;
            }
            let host = if r.target.contains(':') {
                format!("[{}]", r.target)
            } else {
                r.target.clone()
            };
            let path = if query.service.is_dav() {
                path.clone().unwrap_or_else(|| "/".to_owned())
            } else {
                String::new()
            };
            let url = format!("{}://{}:{}{}", query.scheme, host, r.port, path);
            rows.push((
                r.priority,
                !query.implicit_tls,
                u16::MAX - r.weight,
                Candidate {
                    service: query.service,
                    url,
                    source: format!("SRV {}", query.label),
                    rank: 0,
                },
            ));
        }
    }
    rows.sort_by_key(|r| (r.0, r.1, r.2));
    let mut out: Vec<Candidate> = Vec::new();
    for (_, _, _, mut c) in rows {
        if out.iter().any(|o| o.url == c.url) {
            continue;
        }
        c.rank = out.len() as u32;
        out.push(c);
    }
    out
}

/// Common host names, tried only when DNS named nothing that works. `imap_host` is where IMAP
/// was found: ManageSieve usually lives beside it (RFC 5804 §1.8's default port 4190).
pub fn guesses(service: Service, domain: &str, imap_host: Option<&str>) -> Vec<Candidate> {
    let hosts = |prefixes: &[&str]| -> Vec<String> {
        prefixes
            .iter()
            .map(|p| {
                if p.is_empty() {
                    domain.to_owned()
                } else {
                    format!("{p}.{domain}")
                }
            })
            .collect()
    };
    let urls: Vec<String> = match service {
        // Implicit TLS first (RFC 8314 §5.1), then STARTTLS on the same names.
        Service::Imap => {
            let h = hosts(&["imap", "mail", ""]);
            let tls = h.iter().map(|h| format!("imaps://{h}"));
            tls.chain(h.iter().map(|h| format!("imap://{h}"))).collect()
        }
        Service::Smtp => {
            let h = hosts(&["smtp", "mail", ""]);
            let tls = h.iter().map(|h| format!("smtps://{h}"));
            tls.chain(h.iter().map(|h| format!("smtp://{h}"))).collect()
        }
        Service::CalDav | Service::CardDav => hosts(&["", "dav", "mail"])
            .iter()
            .map(|h| format!("https://{h}/"))
            .collect(),
        Service::Sieve => {
            let mut h = Vec::new();
            if let Some(imap) = imap_host {
                h.push(imap.to_owned());
            }
            h.extend(hosts(&["imap", "mail", ""]));
            h.dedup();
            h.iter().map(|h| format!("sieve://{h}:4190")).collect()
        }
    };
    let mut out: Vec<Candidate> = Vec::new();
    for url in urls {
        if !out.iter().any(|c| c.url == url) {
            out.push(Candidate {
                service,
                url,
                source: "guess".into(),
                rank: 1000 + out.len() as u32,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(priority: u16, weight: u16, port: u16, target: &str) -> SrvRecord {
        SrvRecord {
            priority,
            weight,
            port,
            target: target.into(),
        }
    }

    fn query(label: &str) -> &'static SrvQuery {
        QUERIES.iter().find(|q| q.label == label).unwrap()
    }

    #[test]
    fn domains_from_addresses() {
        assert_eq!(email_domain("alice@Example.ORG").as_deref(), Some("example.org"));
        assert_eq!(
            email_domain("a@b@mail.example.org.").as_deref(),
            Some("mail.example.org")
        );
        assert_eq!(email_domain("alice"), None);
        assert_eq!(email_domain("@example.org"), None);
        assert_eq!(email_domain("alice@exa mple.org"), None);
    }

    #[test]
    fn srv_answers_become_ranked_urls() {
        let answers = vec![
            (
                query("_imap._tcp"),
                vec![rec(0, 0, 143, "imap.example.org")],
                None,
            ),
            (
                query("_imaps._tcp"),
                vec![
                    rec(10, 0, 993, "backup.example.org"),
                    rec(0, 5, 993, "imap.example.org"),
                ],
                None,
            ),
        ];
        let c = srv_candidates(&answers);
        let urls: Vec<&str> = c.iter().map(|c| c.url.as_str()).collect();
        // Priority 0 first; within it implicit TLS before STARTTLS (RFC 8314 §5.1).
        assert_eq!(
            urls,
            [
                "imaps://imap.example.org:993",
                "imap://imap.example.org:143",
                "imaps://backup.example.org:993"
            ]
        );
        assert_eq!(c[0].source, "SRV _imaps._tcp");
        assert_eq!(c.iter().map(|c| c.rank).collect::<Vec<_>>(), [0, 1, 2]);
    }

    #[test]
    fn weight_orders_equal_priorities() {
        let answers = vec![(
            query("_submissions._tcp"),
            vec![rec(1, 10, 465, "a.example.org"), rec(1, 60, 465, "b.example.org")],
            None,
        )];
        let c = srv_candidates(&answers);
        assert_eq!(c[0].url, "smtps://b.example.org:465");
    }

    #[test]
    fn a_dot_target_means_not_offered() {
        // RFC 6186 §3.4: "." says the service is decidedly not available.
        let answers = vec![
            (query("_imap._tcp"), vec![rec(0, 0, 0, ".")], None),
            (
                query("_imaps._tcp"),
                vec![rec(0, 0, 993, "imap.example.org")],
                None,
            ),
        ];
        let c = srv_candidates(&answers);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].url, "imaps://imap.example.org:993");
    }

    #[test]
    fn dav_urls_carry_the_txt_path() {
        assert_eq!(
            txt_path(&["foo=bar".into(), "path=/dav/cal/".into()]).as_deref(),
            Some("/dav/cal/")
        );
        assert_eq!(txt_path(&["path=relative".into()]), None);
        let answers = vec![
            (
                query("_caldavs._tcp"),
                vec![rec(0, 0, 8443, "dav.example.org")],
                Some("/dav/cal/".to_owned()),
            ),
            (query("_caldav._tcp"), vec![rec(0, 0, 5232, "localhost")], None),
        ];
        let c = srv_candidates(&answers);
        assert_eq!(c[0].url, "https://dav.example.org:8443/dav/cal/");
        assert_eq!(c[1].url, "http://localhost:5232/");
    }

    #[test]
    fn ipv6_targets_are_bracketed() {
        let answers = vec![(query("_imaps._tcp"), vec![rec(0, 0, 993, "::1")], None)];
        assert_eq!(srv_candidates(&answers)[0].url, "imaps://[::1]:993");
    }

    #[test]
    fn guesses_follow_the_common_names() {
        let g: Vec<String> = guesses(Service::Imap, "example.org", None)
            .into_iter()
            .map(|c| c.url)
            .collect();
        assert_eq!(
            g,
            [
                "imaps://imap.example.org",
                "imaps://mail.example.org",
                "imaps://example.org",
                "imap://imap.example.org",
                "imap://mail.example.org",
                "imap://example.org"
            ]
        );
        let s = guesses(Service::Sieve, "example.org", Some("imap.example.org"));
        assert_eq!(s[0].url, "sieve://imap.example.org:4190");
        assert_eq!(s.len(), 3, "the IMAP host is not tried twice");
        let d = guesses(Service::CardDav, "example.org", None);
        assert_eq!(d[0].url, "https://example.org/");
        assert!(d.iter().all(|c| c.rank >= 1000 && c.source == "guess"));
        assert_eq!(srv_queries(Service::Smtp).count(), 2);
        assert_eq!(Service::from_key("carddav"), Some(Service::CardDav));
    }
}
