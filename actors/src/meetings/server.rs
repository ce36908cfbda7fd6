//! Server scheduling (RFC 6638): whether the CalDAV server schedules, and what arrived in the
//! user's scheduling inbox. Where the server schedules, writing the organizer's event is the
//! invitation, and an attendee's PUT of their own PARTSTAT is the reply: the agent sends nothing.
//!
//! ```text
//!   DAV header of the home has calendar-auto-schedule (§2)      ─┐
//!   PROPFIND principal: schedule-inbox-URL (§2.2.1),             ├─► SchedulingRecord (store)
//!     schedule-outbox-URL (§2.1.1), calendar-user-address-set    ─┘      └─► meetings::delivery
//!   meetings.list: PROPFIND inbox Depth 1 ─► GET each iTIP message ─► invite::from_inbox
//! ```

use url::Url;

use crate::dav::DavClient;
use crate::dav::client::Compliance;
use crate::dav::xml::{Multistatus, NS_CALDAV, NS_DAV};
use crate::error::ServiceError;
use crate::store::records::SchedulingRecord;

/// RFC 6638 §2: the DAV compliance class of a server that schedules.
pub const AUTO_SCHEDULE: &str = "calendar-auto-schedule";

/// RFC 6638 §2.1.1, §2.2.1, §2.4.1.
const PROPFIND_SCHEDULING: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<d:propfind xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:prop><c:schedule-inbox-URL/><c:schedule-outbox-URL/><c:calendar-user-address-set/></d:prop></d:propfind>"#;

/// RFC 4918 §9.1: the inbox's members and whether each is a collection.
const PROPFIND_MEMBERS: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<d:propfind xmlns:d="DAV:"><d:prop><d:resourcetype/><d:getetag/></d:prop></d:propfind>"#;

/// The most inbox messages one listing reads: an inbox nobody empties must not make
/// `meetings.list` unbounded (the newest are the ones that matter; hrefs sort by name only, so
/// the cap is a safety net, not a page).
pub const MAX_INBOX: usize = 500;

/// Asks the server whether it schedules. `compliance` is the DAV header already read (of the
/// server root or the first home); when it lacks the class but the principal has an inbox, the
/// home is asked, as RFC 6638 §2 puts the class on the calendar resources.
pub async fn discover(
    client: &DavClient,
    principal: &Url,
    homes: &[Url],
    compliance: &Compliance,
) -> Result<SchedulingRecord, ServiceError> {
    let mut record = match client.propfind(principal, "0", PROPFIND_SCHEDULING).await {
        Ok((answered, ms)) => from_principal(&ms, &answered),
        // A server without these properties may refuse the question: it does not schedule.
        Err(ServiceError::Protocol(_)) => SchedulingRecord::default(),
        Err(e) => return Err(e),
    };
    record.auto_schedule = compliance.has(AUTO_SCHEDULE);
    if !record.auto_schedule
        && record.inbox.is_some()
        && let Some(home) = homes.first()
    {
        record.auto_schedule = client.options(home).await?.has(AUTO_SCHEDULE);
    }
    // The inbox is read with the account's credentials: only where the server names it.
    for url in [&mut record.inbox, &mut record.outbox] {
        if let Some(u) = url.as_ref().and_then(|u| Url::parse(u).ok()) {
            *url = client.named(principal, u).ok().map(String::from);
        }
    }
    record.checked = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    Ok(record)
}

/// The principal's answer: absolute inbox and outbox URLs, addresses without `mailto:`.
pub fn from_principal(ms: &Multistatus, principal: &Url) -> SchedulingRecord {
    let mut record = SchedulingRecord::default();
    let absolute = |h: &String| principal.join(h).ok().map(String::from);
    for r in &ms.responses {
        if let Some(p) = r.prop(NS_CALDAV, "schedule-inbox-URL") {
            record.inbox = p.hrefs.first().and_then(absolute);
        }
        if let Some(p) = r.prop(NS_CALDAV, "schedule-outbox-URL") {
            record.outbox = p.hrefs.first().and_then(absolute);
        }
        if let Some(p) = r.prop(NS_CALDAV, "calendar-user-address-set") {
            record.addresses = p
                .hrefs
                .iter()
                .filter_map(|h| {
                    let h = h.trim();
                    h.get(..7)
                        .filter(|s| s.eq_ignore_ascii_case("mailto:"))
                        .map(|_| h[7..].to_ascii_lowercase())
                })
                .collect();
        }
    }
    record
}

/// The iTIP messages in the scheduling inbox (RFC 6638 §2.2): `(href, body)`, at most
/// [`MAX_INBOX`]. A message that vanished between the listing and its GET is left out.
pub async fn inbox(client: &DavClient, inbox: &Url) -> Result<Vec<(String, String)>, ServiceError> {
    let (answered, ms) = client.propfind(inbox, "1", PROPFIND_MEMBERS).await?;
    let mut out = Vec::new();
    for href in members(&ms, &answered).into_iter().take(MAX_INBOX) {
        let url = answered
            .join(&href)
            .map_err(|e| ServiceError::Protocol(format!("{answered}: bad member href `{href}`: {e}")))?;
        if let Some((body, _)) = client.get(&url).await? {
            out.push((url.path().to_owned(), body));
        }
    }
    Ok(out)
}

/// The non-collection members of a Depth 1 listing of `listed`.
pub fn members(ms: &Multistatus, listed: &Url) -> Vec<String> {
    ms.responses
        .iter()
        .filter(|r| {
            let same = listed
                .join(&r.href)
                .is_ok_and(|u| u.path().trim_end_matches('/') == listed.path().trim_end_matches('/'));
            let collection = r
                .prop(NS_DAV, "resourcetype")
                .is_some_and(|p| p.children.iter().any(|(ns, l)| ns == NS_DAV && l == "collection"));
            !same && !collection && r.status.is_none_or(|s| s == 200)
        })
        .map(|r| r.href.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dav::xml::parse_multistatus;

    /// Cyrus 3.6's answer to PROPFIND_SCHEDULING, trimmed.
    const CYRUS: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<D:multistatus xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:response><D:href>/dav/principals/user/bob/</D:href>
<D:propstat><D:prop><C:schedule-inbox-URL><D:href>/dav/calendars/user/bob/Inbox/</D:href></C:schedule-inbox-URL>
<C:schedule-outbox-URL><D:href>/dav/calendars/user/bob/Outbox/</D:href></C:schedule-outbox-URL>
<C:calendar-user-address-set><D:href>mailto:Bob@localhost</D:href><D:href>/dav/principals/user/bob/</D:href></C:calendar-user-address-set>
</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response></D:multistatus>"#;

    #[test]
    fn cyrus_names_inbox_outbox_and_addresses() {
        let ms = parse_multistatus(CYRUS.as_bytes()).unwrap();
        let principal = Url::parse("http://127.0.0.1:8008/dav/principals/user/bob/").unwrap();
        let r = from_principal(&ms, &principal);
        assert_eq!(
            r.inbox.as_deref(),
            Some("http://127.0.0.1:8008/dav/calendars/user/bob/Inbox/")
        );
        assert_eq!(
            r.outbox.as_deref(),
            Some("http://127.0.0.1:8008/dav/calendars/user/bob/Outbox/")
        );
        assert_eq!(r.addresses, vec!["bob@localhost"]);
        // The DAV class decides, not the inbox alone.
        assert!(!r.schedules());
    }

    #[test]
    fn members_leave_out_the_inbox_itself_and_collections() {
        let body = r#"<d:multistatus xmlns:d="DAV:">
<d:response><d:href>/in/</d:href><d:propstat><d:prop><d:resourcetype><d:collection/></d:resourcetype></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>
<d:response><d:href>/in/a.ics</d:href><d:propstat><d:prop><d:resourcetype/><d:getetag>"1"</d:getetag></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>
<d:response><d:href>/in/sub/</d:href><d:propstat><d:prop><d:resourcetype><d:collection/></d:resourcetype></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>
</d:multistatus>"#;
        let ms = parse_multistatus(body.as_bytes()).unwrap();
        let listed = Url::parse("http://h/in").unwrap();
        assert_eq!(members(&ms, &listed), vec!["/in/a.ics"]);
    }
}
