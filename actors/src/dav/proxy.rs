//! Calendar delegation as CalDAV servers publish it (a pure format, like `xml`): Apple's
//! calendar-proxy (CalendarServer's caldav-proxy.txt, implemented by DAViCal, CalendarServer,
//! Cyrus, SOGo) on top of WebDAV ACL groups (RFC 3744 §4).
//!
//! ```text
//!   PROPFIND my principal, Depth 1 (PROPFIND_DELEGATION)
//!     me                    cs:calendar-proxy-read-for   → whom I may read for      (§5.3.1)
//!                           cs:calendar-proxy-write-for  → whom I may write for     (§5.3.2)
//!                           d:group-membership           → …/bob/calendar-proxy-write/ (RFC 3744 §4.4)
//!     me/calendar-proxy-read/   d:group-member-set → who reads for me   (§5.1, RFC 3744 §4.3)
//!     me/calendar-proxy-write/  d:group-member-set → who writes for me
//!   PROPFIND another principal, Depth 0 (PROPFIND_PRINCIPAL_CARD)
//!     displayname, calendar-user-address-set (mailto:), calendar-home-set (RFC 4791 §6.2.1)
//! ```
//!
//! Principal links are kept as paths on the answering server, whatever host an href names; the
//! calendar homes of a card are full URLs, checked by `DavClient::named` before use.

use url::Url;

use crate::dav::discovery::NS_CALSERVER;
use crate::dav::xml::{DavResponse, Multistatus, NS_CALDAV, NS_DAV};

/// My principal and its proxy groups, one request (caldav-proxy.txt §5.1: the groups are
/// children of the principal; RFC 3744 §4.3, §4.4).
pub const PROPFIND_DELEGATION: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<d:propfind xmlns:d="DAV:" xmlns:cs="http://calendarserver.org/ns/"><d:prop><d:resourcetype/><cs:calendar-proxy-read-for/><cs:calendar-proxy-write-for/><d:group-membership/><d:group-member-set/></d:prop></d:propfind>"#;

/// Who another principal is, and where their calendars live.
pub const PROPFIND_PRINCIPAL_CARD: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<d:propfind xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:prop><d:displayname/><c:calendar-user-address-set/><c:calendar-home-set/></d:prop></d:propfind>"#;

/// The access a proxy group grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Access {
    Read,
    Write,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
        }
    }

    /// The proxy group of this access: `calendar-proxy-read` / `calendar-proxy-write`.
    fn group(self) -> &'static str {
        match self {
            Access::Read => "calendar-proxy-read",
            Access::Write => "calendar-proxy-write",
        }
    }
}

/// The delegation links of one principal, as principal paths (hrefs resolved against it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyLinks {
    /// Whether the server answered any calendar-proxy property (even empty): it supports it.
    pub supported: bool,
    /// Principals whose calendars I may read, and write.
    pub read_for: Vec<String>,
    pub write_for: Vec<String>,
    /// Principals who act for me, with what access. Someone in both groups is listed once, with
    /// write.
    pub delegates: Vec<(String, Access)>,
}

/// Reads the answer to [`PROPFIND_DELEGATION`] on `principal`.
///
/// The `-for` properties are what caldav-proxy.txt §5.3 defines; servers that only publish
/// `group-membership` (membership in `…/<owner>/calendar-proxy-write/`) are read from that too.
pub fn links(ms: &Multistatus, principal: &Url) -> ProxyLinks {
    let me = principal.path();
    let path = |h: &str| principal.join(h).ok().map(|u| u.path().to_owned());
    let mut out = ProxyLinks::default();
    for r in &ms.responses {
        let Some(href) = path(&r.href) else { continue };
        if same_path(&href, me) {
            for (access, list) in [
                (Access::Read, "calendar-proxy-read-for"),
                (Access::Write, "calendar-proxy-write-for"),
            ] {
                if let Some(p) = r.prop(NS_CALSERVER, list) {
                    out.supported = true;
                    for h in p.hrefs.iter().filter_map(|h| path(h)) {
                        push_owner(&mut out, access, h);
                    }
                }
            }
            if let Some(p) = r.prop(NS_DAV, "group-membership") {
                for group in p.hrefs.iter().filter_map(|h| path(h)) {
                    if let Some((owner, access)) = proxy_group_owner(&group) {
                        out.supported = true;
                        push_owner(&mut out, access, owner);
                    }
                }
            }
        } else if let Some(access) = proxy_group_access(r, &href, me) {
            out.supported = true;
            for member in r
                .prop(NS_DAV, "group-member-set")
                .map(|p| p.hrefs.as_slice())
                .unwrap_or_default()
                .iter()
                .filter_map(|h| path(h))
            {
                match out.delegates.iter_mut().find(|(p, _)| same_path(p, &member)) {
                    Some((_, a)) => *a = (*a).max(access),
                    None => out.delegates.push((member, access)),
                }
            }
        }
    }
    // Write implies read: someone I write for is not listed again as read-only.
    let write_for = out.write_for.clone();
    out.read_for
        .retain(|p| !write_for.iter().any(|w| same_path(w, p)));
    out
}

fn push_owner(out: &mut ProxyLinks, access: Access, owner: String) {
    let list = match access {
        Access::Read => &mut out.read_for,
        Access::Write => &mut out.write_for,
    };
    if !list.iter().any(|p| same_path(p, &owner)) {
        list.push(owner);
    }
}

/// `/…/bob/calendar-proxy-write/` → (`/…/bob/`, write).
fn proxy_group_owner(group: &str) -> Option<(String, Access)> {
    let trimmed = group.trim_end_matches('/');
    let (parent, last) = trimmed.rsplit_once('/')?;
    let access = [Access::Read, Access::Write]
        .into_iter()
        .find(|a| a.group() == last)?;
    Some((format!("{parent}/"), access))
}

/// The access of my own proxy group `href` (a child of my principal), from its resourcetype
/// (`cs:calendar-proxy-read`) or, without one, its name.
fn proxy_group_access(r: &DavResponse, href: &str, me: &str) -> Option<Access> {
    let (owner, by_name) = proxy_group_owner(href)?;
    if !same_path(&owner, me) {
        return None;
    }
    let by_type = r.prop(NS_DAV, "resourcetype").and_then(|rt| {
        [Access::Read, Access::Write].into_iter().find(|a| {
            rt.children
                .iter()
                .any(|(ns, l)| ns == NS_CALSERVER && l == a.group())
        })
    });
    Some(by_type.unwrap_or(by_name))
}

/// Paths compared without a trailing slash (servers differ on it).
pub fn same_path(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// Another principal as [`PROPFIND_PRINCIPAL_CARD`] describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrincipalCard {
    pub name: Option<String>,
    /// The first `mailto:` of the calendar-user-address-set, without the scheme.
    pub email: Option<String>,
    /// Calendar homes as absolute URLs.
    pub calendar_homes: Vec<Url>,
}

/// Reads the answer to [`PROPFIND_PRINCIPAL_CARD`] (asked at `url`).
pub fn card(ms: &Multistatus, url: &Url) -> PrincipalCard {
    let mut out = PrincipalCard::default();
    for r in &ms.responses {
        if let Some(p) = r.prop(NS_DAV, "displayname").filter(|p| !p.text.is_empty()) {
            out.name = Some(p.text.clone());
        }
        if let Some(p) = r.prop(NS_CALDAV, "calendar-user-address-set") {
            out.email = p.hrefs.iter().find_map(|h| {
                let (scheme, rest) = h.split_once(':')?;
                (scheme.eq_ignore_ascii_case("mailto") && !rest.is_empty()).then(|| rest.to_owned())
            });
        }
        if let Some(p) = r.prop(NS_CALDAV, "calendar-home-set") {
            out.calendar_homes = p.hrefs.iter().filter_map(|h| url.join(h).ok()).collect();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dav::xml::parse_multistatus;

    /// DAViCal 1.1.12: alice is bob's read proxy, and bob is alice's write proxy. DAViCal
    /// repeats the principal's `-for` properties on every member of the home.
    const DAVICAL: &str = include_str!("../../tests/fixtures/davical/principal-delegation-depth1.xml");

    fn principal() -> Url {
        Url::parse("http://127.0.0.1:8080/caldav.php/alice/").unwrap()
    }

    #[test]
    fn reads_davical_links() {
        let ms = parse_multistatus(DAVICAL.as_bytes()).unwrap();
        let l = links(&ms, &principal());
        assert!(l.supported);
        assert_eq!(l.read_for, ["/caldav.php/bob/"]);
        assert!(l.write_for.is_empty());
        assert_eq!(l.delegates, [("/caldav.php/bob/".to_owned(), Access::Write)]);
    }

    #[test]
    fn group_membership_alone_is_enough() {
        let body = r#"<d:multistatus xmlns:d="DAV:"><d:response><d:href>/p/alice/</d:href><d:propstat><d:prop>
<d:group-membership><d:href>/p/bob/calendar-proxy-write/</d:href><d:href>/p/team/</d:href></d:group-membership>
</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>"#;
        let ms = parse_multistatus(body.as_bytes()).unwrap();
        let l = links(&ms, &Url::parse("https://dav.example.org/p/alice/").unwrap());
        assert!(l.supported);
        assert_eq!(l.write_for, ["/p/bob/"]);
        assert!(l.read_for.is_empty() && l.delegates.is_empty());
    }

    #[test]
    fn without_proxy_properties_it_is_unsupported() {
        let body = r#"<multistatus xmlns="DAV:"><response><href>/alice/</href><propstat><prop><calendar-proxy-read-for xmlns="http://calendarserver.org/ns/"/><group-membership/></prop><status>HTTP/1.1 404 Not Found</status></propstat></response></multistatus>"#;
        let ms = parse_multistatus(body.as_bytes()).unwrap();
        let l = links(&ms, &Url::parse("http://127.0.0.1:5232/alice/").unwrap());
        assert_eq!(l, ProxyLinks::default());
    }

    #[test]
    fn reads_a_principal_card() {
        let body = r#"<d:multistatus xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:response><d:href>/caldav.php/bob/</d:href><d:propstat><d:prop>
<d:displayname>Bob</d:displayname><c:calendar-user-address-set><d:href>/caldav.php/bob/</d:href><d:href>MAILTO:bob@localhost</d:href></c:calendar-user-address-set>
<c:calendar-home-set><d:href>/caldav.php/bob/</d:href></c:calendar-home-set></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>"#;
        let ms = parse_multistatus(body.as_bytes()).unwrap();
        let url = Url::parse("http://127.0.0.1:8080/caldav.php/bob/").unwrap();
        let c = card(&ms, &url);
        assert_eq!(c.name.as_deref(), Some("Bob"));
        assert_eq!(c.email.as_deref(), Some("bob@localhost"));
        assert_eq!(c.calendar_homes, [url]);
    }

    /// A link to another host (or a cleartext URL) is read as a path on the answering server:
    /// a proxy group never sends the account's credentials anywhere else.
    #[test]
    fn links_to_other_hosts_stay_on_the_answering_server() {
        let body = r#"<d:multistatus xmlns:d="DAV:" xmlns:cs="http://calendarserver.org/ns/"><d:response><d:href>http://[::ffff:127.0.0.1]:1/p/me/</d:href><d:propstat><d:prop>
<cs:calendar-proxy-write-for><d:href>http://evil.example.org/p/bob/</d:href></cs:calendar-proxy-write-for>
</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>"#;
        let ms = parse_multistatus(body.as_bytes()).unwrap();
        let l = links(&ms, &Url::parse("https://dav.example.org/p/me/").unwrap());
        assert_eq!(l.write_for, ["/p/bob/"]);
    }

    proptest::proptest! {
        /// Whatever a server sends in the hrefs, reading never panics and lists no one twice.
        #[test]
        fn any_hrefs_read_without_panic(hrefs in proptest::collection::vec("[ -~]{0,24}", 0..6)) {
            let items: String = hrefs
                .iter()
                .map(|h| format!("<d:href>{}</d:href>", h.replace('&', "&amp;").replace('<', "&lt;")))
                .collect();
            let body = format!(
                r#"<d:multistatus xmlns:d="DAV:" xmlns:cs="http://calendarserver.org/ns/"><d:response><d:href>/p/me/</d:href><d:propstat><d:prop><cs:calendar-proxy-read-for>{items}</cs:calendar-proxy-read-for><d:group-membership>{items}</d:group-membership></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response><d:response><d:href>/p/me/calendar-proxy-write/</d:href><d:propstat><d:prop><d:group-member-set>{items}</d:group-member-set></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>"#
            );
            if let Ok(ms) = parse_multistatus(body.as_bytes()) {
                let l = links(&ms, &Url::parse("https://dav.example.org/p/me/").unwrap());
                for list in [&l.read_for, &l.write_for] {
                    for (i, a) in list.iter().enumerate() {
                        proptest::prop_assert!(!list[i + 1..].iter().any(|b| same_path(a, b)));
                    }
                }
                let _ = card(&ms, &Url::parse("https://dav.example.org/p/me/").unwrap());
            }
        }
    }
}
