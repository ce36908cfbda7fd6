//! The CalDAV and CardDAV probes: principal and homes (the sync's own discovery), the homes'
//! collections, and the principal properties the report needs. Read-only PROPFINDs.
//!
//! ```text
//!   dav::discovery::discover ──► principal, homes        (RFC 6764, RFC 4791 §6.2.1, RFC 6352 §7.1.1)
//!   OPTIONS calendar home ──► calendar-auto-schedule in the DAV header (RFC 6638 §2)
//!   PROPFIND principal Depth 0 ──► schedule-outbox-URL (RFC 6638 §2.1.1), -inbox-URL (§2.2.1), calendar-proxy-*-for
//!                                  (caldav-proxy.txt §5.3), directory-gateway (draft-daboo §3)
//!   PROPFIND home Depth 1 ──► collections (components, privileges, directory)
//!   PROPFIND collection Depth 0 ──► supported-report-set has sync-collection? (RFC 6578 §3)
//! ```

use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use url::Url;

use crate::account::Secret;
use crate::dav::DavClient;
use crate::dav::discovery::{self, CollectionInfo, DavService, NS_CALSERVER, PROPFIND_COLLECTIONS};
use crate::dav::xml::{Multistatus, NS_CALDAV, NS_CARDDAV, NS_DAV};
use crate::error::ServiceError;
use crate::net::endpoint::Endpoint;
use crate::probe::facts::{CollectionFacts, DavFacts, public_url};

/// RFC 6638 §2.1.1, caldav-proxy.txt §5.3 and the CardDAV directory gateway draft §3.
const PROPFIND_PRINCIPAL: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<d:propfind xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav" xmlns:cr="urn:ietf:params:xml:ns:carddav" xmlns:cs="http://calendarserver.org/ns/"><d:prop><c:schedule-outbox-URL/><c:schedule-inbox-URL/><cs:calendar-proxy-read-for/><cs:calendar-proxy-write-for/><cr:directory-gateway/></d:prop></d:propfind>"#;

/// RFC 3253 §3.1.5: the reports a collection supports.
const PROPFIND_REPORTS: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<d:propfind xmlns:d="DAV:"><d:prop><d:supported-report-set/></d:prop></d:propfind>"#;

/// Finds the principal, homes and collections of `service` at `endpoint`.
pub async fn probe(
    endpoint: &Endpoint,
    tls: Arc<ClientConfig>,
    username: &str,
    password: &Secret,
    service: DavService,
    gal: Option<&Url>,
    timeout: Duration,
) -> Result<DavFacts, ServiceError> {
    let client = DavClient::new(endpoint, username, password.clone(), tls, timeout)?;
    let (principal, homes) = discovery::discover(&client, service).await?;
    let mut facts = DavFacts {
        url: public_url(&endpoint.url),
        principal: principal.path().to_owned(),
        // A home on another host than the configured one (iCloud's partitions) is named whole.
        homes: homes
            .iter()
            .map(|h| match h.origin() == endpoint.url.origin() {
                true => h.path().to_owned(),
                false => public_url(h),
            })
            .collect(),
        ..DavFacts::default()
    };
    // Extras are evidence, not requirements: a server that refuses them still has its homes.
    if let Ok((_, ms)) = client.propfind(&principal, "0", PROPFIND_PRINCIPAL).await {
        principal_facts(&ms, &principal, &mut facts);
    }
    if service == DavService::CalDav
        && let Some(home) = homes.first()
    {
        facts.auto_schedule = client
            .options(home)
            .await
            .is_ok_and(|c| c.has(crate::meetings::server::AUTO_SCHEDULE));
    }
    for home in &homes {
        let (_, ms) = client.propfind(home, "1", PROPFIND_COLLECTIONS).await?;
        facts.collections.extend(
            discovery::collections(&ms, home, service)
                .into_iter()
                .map(collection_facts),
        );
    }
    // The account's `gal` book is a directory opconnect searches (dav/gal.rs).
    if let Some(gal) = gal {
        facts.collections.extend(
            discovery::configured_directory(&client, gal)
                .await?
                .into_iter()
                .map(collection_facts),
        );
    }
    if let Some(first) = facts.collections.first()
        && let Ok(url) = client.locate(&first.href)
    {
        facts.sync_collection = match client.propfind(&url, "0", PROPFIND_REPORTS).await {
            Ok((_, ms)) => Some(has_sync_collection(&ms)),
            Err(_) => None,
        };
    }
    Ok(facts)
}

fn collection_facts(c: CollectionInfo) -> CollectionFacts {
    CollectionFacts {
        href: c.href,
        name: c.name,
        kind: c.kind,
        components: c.components,
        read_only: c.read_only,
        directory: c.directory,
    }
}

/// Reads the principal's answer into `facts` (hrefs resolved to paths).
pub fn principal_facts(ms: &Multistatus, principal: &Url, facts: &mut DavFacts) {
    let path = |h: &String| {
        principal
            .join(h)
            .map(|u| u.path().to_owned())
            .unwrap_or_else(|_| h.clone())
    };
    for r in &ms.responses {
        if let Some(p) = r.prop(NS_CALDAV, "schedule-outbox-URL") {
            facts.schedule_outbox = p.hrefs.first().map(path);
        }
        if let Some(p) = r.prop(NS_CALDAV, "schedule-inbox-URL") {
            facts.schedule_inbox = p.hrefs.first().map(path);
        }
        if let Some(p) = r.prop(NS_CALSERVER, "calendar-proxy-read-for") {
            facts.proxy_supported = true;
            facts.proxy_read_for = p.hrefs.iter().map(path).collect();
        }
        if let Some(p) = r.prop(NS_CALSERVER, "calendar-proxy-write-for") {
            facts.proxy_supported = true;
            facts.proxy_write_for = p.hrefs.iter().map(path).collect();
        }
        if let Some(p) = r.prop(NS_CARDDAV, "directory-gateway") {
            facts.directory_gateway = p.hrefs.first().map(path);
        }
    }
}

/// RFC 6578 §3: `<d:supported-report><d:report><d:sync-collection/></d:report></d:supported-report>`.
pub fn has_sync_collection(ms: &Multistatus) -> bool {
    ms.responses
        .iter()
        .filter_map(|r| r.prop(NS_DAV, "supported-report-set"))
        .any(|p| {
            p.descendants
                .iter()
                .any(|(ns, l)| ns == NS_DAV && l == "sync-collection")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dav::xml::parse_multistatus;

    /// Cyrus 3.6's answer to PROPFIND_PRINCIPAL, trimmed.
    const CYRUS_PRINCIPAL: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<D:multistatus xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:CS="http://calendarserver.org/ns/" xmlns:CR="urn:ietf:params:xml:ns:carddav">
<D:response><D:href>/dav/principals/user/alice/</D:href>
<D:propstat><D:prop><C:schedule-outbox-URL><D:href>/dav/calendars/user/alice/Outbox/</D:href></C:schedule-outbox-URL>
<CS:calendar-proxy-read-for/><CS:calendar-proxy-write-for/></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>
<D:propstat><D:prop><CR:directory-gateway/></D:prop><D:status>HTTP/1.1 404 Not Found</D:status></D:propstat>
</D:response></D:multistatus>"#;

    /// Radicale 3's answer: none of them.
    const RADICALE_PRINCIPAL: &str = r#"<?xml version='1.0' encoding='utf-8'?>
<multistatus xmlns="DAV:"><response><href>/alice/</href><propstat><prop><schedule-outbox-URL xmlns="urn:ietf:params:xml:ns:caldav"/><calendar-proxy-read-for xmlns="http://calendarserver.org/ns/"/></prop><status>HTTP/1.1 404 Not Found</status></propstat></response></multistatus>"#;

    #[test]
    fn cyrus_has_an_outbox_and_proxies() {
        let ms = parse_multistatus(CYRUS_PRINCIPAL.as_bytes()).unwrap();
        let principal = Url::parse("http://127.0.0.1:8080/dav/principals/user/alice/").unwrap();
        let mut f = DavFacts::default();
        principal_facts(&ms, &principal, &mut f);
        assert_eq!(
            f.schedule_outbox.as_deref(),
            Some("/dav/calendars/user/alice/Outbox/")
        );
        assert!(f.proxy_supported);
        assert!(f.proxy_read_for.is_empty());
        assert_eq!(f.directory_gateway, None);
    }

    #[test]
    fn radicale_has_neither() {
        let ms = parse_multistatus(RADICALE_PRINCIPAL.as_bytes()).unwrap();
        let principal = Url::parse("http://127.0.0.1:5232/alice/").unwrap();
        let mut f = DavFacts::default();
        principal_facts(&ms, &principal, &mut f);
        assert_eq!(f.schedule_outbox, None);
        assert!(!f.proxy_supported);
    }

    #[test]
    fn sync_collection_in_the_report_set() {
        let body = r#"<d:multistatus xmlns:d="DAV:"><d:response><d:href>/c/</d:href><d:propstat><d:prop><d:supported-report-set><d:supported-report><d:report><d:sync-collection/></d:report></d:supported-report><d:supported-report><d:report><d:expand-property/></d:report></d:supported-report></d:supported-report-set></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>"#;
        assert!(has_sync_collection(&parse_multistatus(body.as_bytes()).unwrap()));
        let none = body.replace("sync-collection", "principal-match");
        assert!(!has_sync_collection(&parse_multistatus(none.as_bytes()).unwrap()));
    }
}
