//! Presets for providers whose servers are known (issue 21): iCloud, Fastmail and Yahoo by the
//! address's domain; Zimbra, SmarterMail and Open-Xchange by the DAV paths their servers use on
//! the mail host. Tried before guessing host names; they also name the provider in reports and
//! say where to make an app password when a login is refused.
//!
//! ```text
//!   alice@icloud.com ──► iCloud preset: imap.mail.me.com, caldav.icloud.com, …
//!   alice@corp.example, IMAP on mail.corp.example ──► https://mail.corp.example/dav/ (Zimbra),
//!                              /WebDAV/ (SmarterMail), /caldav/ + /carddav/ (Open-Xchange)
//! ```

use crate::formats::discovery::{Candidate, Service};

/// Where presets rank: after SRV and autoconfig, before guesses (1000).
const RANK: u32 = 700;

/// A provider opconnect knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Provider {
    pub id: &'static str,
    pub name: &'static str,
    /// Address domains served (empty for server software run under the customer's own domain).
    pub domains: &'static [&'static str],
    /// Fixed servers: (service, URL).
    pub servers: &'static [(Service, &'static str)],
    /// DAV paths on the mail host: (service, path).
    pub dav_paths: &'static [(Service, &'static str)],
    /// Where the user makes an app password, for providers that refuse the account password.
    pub app_password: Option<&'static str>,
}

pub const PROVIDERS: &[Provider] = &[
    Provider {
        id: "icloud",
        name: "iCloud",
        domains: &["icloud.com", "me.com", "mac.com"],
        servers: &[
            (Service::Imap, "imaps://imap.mail.me.com:993"),
            (Service::Smtp, "smtp://smtp.mail.me.com:587"),
            (Service::CalDav, "https://caldav.icloud.com/"),
            (Service::CardDav, "https://contacts.icloud.com/"),
        ],
        dav_paths: &[],
        app_password: Some(
            "iCloud needs an app-specific password: make one at https://account.apple.com (Sign-In and Security → App-Specific Passwords)",
        ),
    },
    Provider {
        id: "fastmail",
        name: "Fastmail",
        domains: &["fastmail.com", "fastmail.fm", "messagingengine.com"],
        servers: &[
            (Service::Imap, "imaps://imap.fastmail.com:993"),
            (Service::Smtp, "smtps://smtp.fastmail.com:465"),
            (Service::CalDav, "https://caldav.fastmail.com/"),
            (Service::CardDav, "https://carddav.fastmail.com/"),
        ],
        dav_paths: &[],
        app_password: Some(
            "Fastmail needs an app password: make one at https://app.fastmail.com/settings/security/apps (Settings → Privacy & Security → App passwords)",
        ),
    },
    Provider {
        id: "yahoo",
        name: "Yahoo",
        domains: &[
            "yahoo.com",
            "ymail.com",
            "rocketmail.com",
            "yahoo.co.uk",
            "yahoo.de",
            "yahoo.fr",
        ],
        servers: &[
            (Service::Imap, "imaps://imap.mail.yahoo.com:993"),
            (Service::Smtp, "smtps://smtp.mail.yahoo.com:465"),
            (Service::CalDav, "https://caldav.calendar.yahoo.com/"),
            (Service::CardDav, "https://carddav.address.yahoo.com/"),
        ],
        dav_paths: &[],
        app_password: Some(
            "Yahoo needs an app password: make one at https://login.yahoo.com/account/security (Generate app password)",
        ),
    },
    Provider {
        id: "zimbra",
        name: "Zimbra",
        domains: &[],
        servers: &[],
        dav_paths: &[(Service::CalDav, "/dav/"), (Service::CardDav, "/dav/")],
        app_password: None,
    },
    Provider {
        id: "smartermail",
        name: "SmarterMail",
        domains: &[],
        servers: &[],
        dav_paths: &[(Service::CalDav, "/WebDAV/"), (Service::CardDav, "/WebDAV/")],
        app_password: None,
    },
    Provider {
        id: "open-xchange",
        name: "Open-Xchange",
        domains: &[],
        servers: &[],
        dav_paths: &[(Service::CalDav, "/caldav/"), (Service::CardDav, "/carddav/")],
        app_password: None,
    },
];

/// The provider serving addresses at `domain`, if a preset knows it.
pub fn by_domain(domain: &str) -> Option<&'static Provider> {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    PROVIDERS.iter().find(|p| p.domains.contains(&domain.as_str()))
}

/// The provider whose servers `url` belongs to: a preset's host, or a server software's DAV
/// path (`/dav/` Zimbra, `/WebDAV/` SmarterMail, `/caldav/` `/carddav/` Open-Xchange).
pub fn by_url(url: &str) -> Option<&'static Provider> {
    let parsed = url::Url::parse(url).ok()?;
    let host = parsed.host_str()?.to_ascii_lowercase();
    if let Some(p) = PROVIDERS.iter().find(|p| {
        p.servers
            .iter()
            .filter_map(|(_, u)| url::Url::parse(u).ok())
            .any(|u| u.host_str().is_some_and(|h| h == host))
    }) {
        return Some(p);
    }
    if host.ends_with(".icloud.com") {
        // iCloud's partitioned hosts (pNN-caldav.icloud.com).
        return PROVIDERS.iter().find(|p| p.id == "icloud");
    }
    let path = parsed.path();
    PROVIDERS
        .iter()
        .find(|p| p.dav_paths.iter().any(|(_, prefix)| path.starts_with(prefix)))
}

/// Candidates from the presets for `service`: the provider of `domain`'s servers, then the
/// server software's DAV paths on the mail host (`imap_host`, else `mail.DOMAIN`).
pub fn candidates(service: Service, domain: &str, imap_host: Option<&str>) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = Vec::new();
    let mut push = |url: String, source: String| {
        if !out.iter().any(|c| c.url == url) {
            out.push(Candidate {
                service,
                url,
                source,
                rank: RANK + out.len() as u32,
            });
        }
    };
    if let Some(p) = by_domain(domain) {
        for (s, url) in p.servers {
            if *s == service {
                push((*url).to_owned(), format!("preset {}", p.name));
            }
        }
        return out;
    }
    if service.is_dav() {
        let mut hosts: Vec<String> = imap_host.map(str::to_owned).into_iter().collect();
        hosts.push(format!("mail.{domain}"));
        hosts.dedup();
        for host in hosts {
            for p in PROVIDERS {
                for (s, path) in p.dav_paths {
                    if *s == service {
                        push(format!("https://{host}{path}"), format!("preset {}", p.name));
                    }
                }
            }
        }
    }
    out
}

/// A refused login's `text` with the app-password advice of the provider whose server `url` is
/// (a preset's host, iCloud's partitioned hosts), so that the status and the log say what to do.
pub fn hinted(text: String, url: &str) -> String {
    match by_url(url).and_then(|p| p.app_password) {
        Some(hint) => format!("{text}. {hint}"),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn providers_by_domain_and_url() {
        assert_eq!(by_domain("ME.com").map(|p| p.name), Some("iCloud"));
        assert_eq!(by_domain("example.org"), None);
        assert_eq!(
            by_url("https://p42-caldav.icloud.com/1234/calendars/").map(|p| p.name),
            Some("iCloud")
        );
        assert_eq!(
            by_url("imaps://imap.mail.yahoo.com:993").map(|p| p.name),
            Some("Yahoo")
        );
        assert_eq!(
            by_url("https://mail.corp.example/dav/alice/").map(|p| p.name),
            Some("Zimbra")
        );
        assert_eq!(
            by_url("https://mail.corp.example/WebDAV/").map(|p| p.name),
            Some("SmarterMail")
        );
        assert_eq!(
            by_url("https://ox.corp.example/carddav/").map(|p| p.name),
            Some("Open-Xchange")
        );
        assert_eq!(by_url("https://dav.example.org/"), None);
        for p in PROVIDERS {
            assert!(
                p.app_password.is_none_or(|a| a.contains("https://")),
                "{}",
                p.name
            );
        }
    }

    #[test]
    fn preset_candidates() {
        let c = candidates(Service::CalDav, "icloud.com", None);
        assert_eq!(c.len(), 1);
        assert_eq!(
            (c[0].url.as_str(), c[0].source.as_str()),
            ("https://caldav.icloud.com/", "preset iCloud")
        );
        let d = candidates(Service::CardDav, "corp.example", Some("imap.corp.example"));
        let urls: Vec<&str> = d.iter().map(|c| c.url.as_str()).collect();
        assert_eq!(
            urls,
            vec![
                "https://imap.corp.example/dav/",
                "https://imap.corp.example/WebDAV/",
                "https://imap.corp.example/carddav/",
                "https://mail.corp.example/dav/",
                "https://mail.corp.example/WebDAV/",
                "https://mail.corp.example/carddav/",
            ]
        );
        assert!(candidates(Service::Imap, "corp.example", None).is_empty());
    }

    #[test]
    fn a_refused_login_at_a_provider_host_says_to_make_an_app_password() {
        let t = hinted("[AUTHENTICATIONFAILED] no".into(), "imaps://imap.mail.me.com:993");
        assert!(
            t.starts_with("[AUTHENTICATIONFAILED] no. iCloud needs an app-specific password"),
            "{t}"
        );
        let t = hinted("401".into(), "https://p42-caldav.icloud.com/123/calendars/");
        assert!(t.contains("app-specific"), "{t}");
        assert_eq!(hinted("401".into(), "http://127.0.0.1:5232/"), "401");
    }
}
