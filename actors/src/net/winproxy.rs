//! The Windows system proxy setting (issue 21), as the Internet Options dialog stores it under
//! `HKCU\Software\Microsoft\Windows\CurrentVersion\Internet Settings`: `ProxyEnable` (DWORD),
//! `ProxyServer` and `ProxyOverride` (strings). Reading the strings is pure and tested on every
//! platform; the registry read itself is compiled on Windows only.
//!
//! ```text
//!   ProxyServer  "proxy:8080"                              every protocol, HTTP proxy
//!                "http=p:80;https=p:443;socks=s:1080"      per protocol (`socks` = SOCKS5 here)
//!   ProxyOverride "*.corp.example;10.*;<local>"            direct; <local> = names without a dot
//!   https: https=, bare, socks= · http: http=, bare, socks= · imap/smtp/sieve: socks=, https=, bare
//! ```
//!
//! Automatic configuration (PAC scripts, WPAD) is not read: only the manual setting.

use crate::net::proxy::Proxy;

/// The manual proxy setting, when it is enabled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemProxy {
    /// `(protocol, proxy)`: protocol is `None` for the bare form (every protocol).
    pub servers: Vec<(Option<String>, Proxy)>,
    /// ProxyOverride's patterns, lower case; `<local>` kept as is.
    pub bypass: Vec<String>,
}

impl SystemProxy {
    /// Reads the three values; `None` when the setting is off or names no usable proxy. An entry
    /// that cannot be read is logged (without any login it may hold) and skipped.
    pub fn parse(enable: u32, server: &str, overrides: &str) -> Option<SystemProxy> {
        if enable == 0 {
            return None;
        }
        let mut servers = Vec::new();
        for entry in server.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let (protocol, address) = match entry.split_once('=') {
                Some((p, a)) => (Some(p.trim().to_ascii_lowercase()), a.trim()),
                None => (None, entry),
            };
            let text = if address.contains("://") {
                address.to_owned()
            } else if protocol.as_deref() == Some("socks") {
                format!("socks5://{address}")
            } else {
                format!("http://{address}")
            };
            match Proxy::parse(&text) {
                Ok(p) => servers.push((protocol, p)),
                Err(e) => tracing::warn!(error = %e, "an entry of Windows' ProxyServer setting is ignored"),
            }
        }
        if servers.is_empty() {
            return None;
        }
        let bypass = overrides
            .split(';')
            .map(|e| e.trim().to_ascii_lowercase())
            .filter(|e| !e.is_empty())
            .collect();
        Some(SystemProxy { servers, bypass })
    }

    /// The proxy for `host` over `scheme` (see the diagram), or `None` when ProxyOverride
    /// sends it direct or no entry covers the protocol.
    pub fn for_target(&self, scheme: &str, host: &str) -> Option<Proxy> {
        if self.bypassed(host) {
            return None;
        }
        let order: &[Option<&str>] = match scheme {
            "https" => &[Some("https"), None, Some("socks")],
            "http" => &[Some("http"), None, Some("socks")],
            _ => &[Some("socks"), Some("https"), None],
        };
        order.iter().find_map(|want| {
            self.servers
                .iter()
                .find(|(p, _)| p.as_deref() == *want)
                .map(|(_, proxy)| proxy.clone())
        })
    }

    /// ProxyOverride: `*` wildcards, case-insensitive; `<local>` matches a name without a dot.
    fn bypassed(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.bypass.iter().any(|pattern| {
            if pattern == "<local>" {
                !host.contains('.') && !host.contains(':')
            } else {
                glob(pattern.as_bytes(), host.as_bytes())
            }
        })
    }
}

/// `*` matches any run of characters (also none); everything else itself. Greedy with one
/// backtrack point, so linear in practice whatever the pattern.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == b'*')
}

/// The current user's setting, read from the registry each time (a changed setting applies to
/// the next connection). Windows only; elsewhere there is none.
#[cfg(windows)]
pub fn current() -> Option<SystemProxy> {
    let key = windows_registry::CURRENT_USER
        .open(r"Software\Microsoft\Windows\CurrentVersion\Internet Settings")
        .ok()?;
    let enable = key.get_u32("ProxyEnable").unwrap_or(0);
    let server = key.get_string("ProxyServer").unwrap_or_default();
    let overrides = key.get_string("ProxyOverride").unwrap_or_default();
    SystemProxy::parse(enable, &server, &overrides)
}

/// The current user's setting: none outside Windows (the `*_PROXY` variables are the setting).
#[cfg(not(windows))]
pub fn current() -> Option<SystemProxy> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn via(s: &SystemProxy, scheme: &str, host: &str) -> Option<String> {
        s.for_target(scheme, host).map(|p| p.url())
    }

    #[test]
    fn the_bare_form_covers_every_protocol() {
        let s = SystemProxy::parse(1, "proxy.corp:8080", "").unwrap();
        assert_eq!(
            via(&s, "https", "dav.example.org").as_deref(),
            Some("http://proxy.corp:8080")
        );
        assert_eq!(
            via(&s, "imaps", "imap.example.org").as_deref(),
            Some("http://proxy.corp:8080")
        );
        assert_eq!(
            SystemProxy::parse(0, "proxy.corp:8080", ""),
            None,
            "ProxyEnable 0 is off"
        );
        assert_eq!(SystemProxy::parse(1, "", ""), None);
        assert_eq!(SystemProxy::parse(1, " ; ", ""), None);
    }

    #[test]
    fn the_per_protocol_form_picks_by_scheme() {
        let s = SystemProxy::parse(1, "http=web:80;https=secure:3128;ftp=f:21;socks=sox:1080", "").unwrap();
        assert_eq!(
            via(&s, "https", "a.example").as_deref(),
            Some("http://secure:3128")
        );
        assert_eq!(via(&s, "http", "a.example").as_deref(), Some("http://web:80"));
        assert_eq!(via(&s, "imap", "a.example").as_deref(), Some("socks5://sox:1080"));
        let no_socks = SystemProxy::parse(1, "http=web:80;https=secure:3128", "").unwrap();
        assert_eq!(
            via(&no_socks, "smtp", "a.example").as_deref(),
            Some("http://secure:3128")
        );
        let http_only = SystemProxy::parse(1, "http=web:80", "").unwrap();
        assert_eq!(
            via(&http_only, "https", "a.example"),
            None,
            "no entry for https: direct"
        );
        let schemed = SystemProxy::parse(1, "https=http://secure:3128;socks=socks5h://s:1", "").unwrap();
        assert_eq!(
            via(&schemed, "imap", "a.example").as_deref(),
            Some("socks5h://s:1")
        );
    }

    #[test]
    fn overrides_send_hosts_direct() {
        let s = SystemProxy::parse(1, "proxy:8080", "*.corp.example; 10.*;<local>;Exact.Example").unwrap();
        assert_eq!(via(&s, "https", "dav.corp.example"), None);
        assert_eq!(via(&s, "https", "10.1.2.3"), None);
        assert_eq!(via(&s, "https", "intranet"), None, "<local>: no dot");
        assert_eq!(via(&s, "https", "exact.example"), None);
        assert!(via(&s, "https", "corp.example.org").is_some());
        assert!(via(&s, "https", "110.1.2.3").is_some());
        assert!(via(&s, "https", "dav.example.org").is_some());
    }

    #[test]
    fn a_bad_entry_is_skipped_and_a_login_is_kept_secret() {
        let s = SystemProxy::parse(1, "ftp=x:1;https=gopher://x;http=bob:pw@web:80", "").unwrap();
        assert_eq!(s.servers.len(), 2);
        let p = s.for_target("http", "a.example").unwrap();
        assert_eq!(p.url(), "http://web:80");
        assert!(!format!("{s:?}").contains("pw"), "{s:?}");
    }

    proptest::proptest! {
        /// Whatever the registry holds, reading it never panics.
        #[test]
        fn any_setting_reads(server in "[ -~]{0,60}", overrides in "[ -~]{0,40}", host in "[a-z0-9.*]{0,20}") {
            if let Some(s) = SystemProxy::parse(1, &server, &overrides) {
                let _ = s.for_target("https", &host);
                let _ = s.for_target("imap", &host);
            }
        }
    }
}
