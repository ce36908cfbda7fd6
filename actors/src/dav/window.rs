//! The listing of a calendar whose past is limited (`past_days`): a calendar-query REPORT
//! (RFC 4791 §7.8) for the events overlapping `[start, ∞)`, plus the collection's other
//! components (tasks, journal entries) whole. The server decides overlap with the recurrence
//! expanded (RFC 4791 §9.9), so a series whose rule reaches into the window is listed even when
//! its first occurrence is years old.
//!
//! ```text
//!   REPORT calendar-query  VEVENT time-range start=…  ─┐
//!   REPORT calendar-query  VTODO / VJOURNAL (no range) ─┴─► complete listing ─► sync::plan
//! ```

use chrono::{DateTime, Utc};
use url::Url;

use crate::dav::DavClient;
use crate::dav::client::ReportAnswer;
use crate::dav::sync::{Listing, read_sync_answer};
use crate::error::ServiceError;

/// The calendar-query body for `component`, with a time-range from `start` on when given
/// (RFC 4791 §9.9: `end` may be left out; times in UTC "date with UTC time" form).
pub fn query_body(component: &str, start: Option<DateTime<Utc>>) -> String {
    let range = start
        .map(|s| format!(r#"<c:time-range start="{}"/>"#, s.format("%Y%m%dT%H%M%SZ")))
        .unwrap_or_default();
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:prop><d:getetag/></d:prop><c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="{component}">{range}</c:comp-filter></c:comp-filter></c:filter></c:calendar-query>"#
    )
}

/// Components listed whole beside the windowed events: those the collection announces (RFC 4791
/// §5.2.3), or tasks where it announces nothing.
fn others(components: &[String]) -> Vec<&str> {
    if components.is_empty() {
        return vec!["VTODO"];
    }
    ["VTODO", "VJOURNAL"]
        .into_iter()
        .filter(|c| components.iter().any(|have| have.eq_ignore_ascii_case(c)))
        .collect()
}

/// The complete listing of `collection` within the window; `None` when the server does not
/// answer calendar-query (the caller then syncs the whole collection).
pub async fn list_window(
    client: &DavClient,
    collection: &Url,
    components: &[String],
    start: DateTime<Utc>,
) -> Result<Option<Listing>, ServiceError> {
    let mut listing = Listing {
        complete: true,
        ..Listing::default()
    };
    let queries =
        std::iter::once(("VEVENT", Some(start))).chain(others(components).into_iter().map(|c| (c, None)));
    for (component, from) in queries {
        match client
            .report(collection, "1", &query_body(component, from))
            .await?
        {
            ReportAnswer::Multistatus(ms) => {
                let (part, _) = read_sync_answer(&ms, collection);
                for member in part.present {
                    if !listing.present.iter().any(|(h, _)| *h == member.0) {
                        listing.present.push(member);
                    }
                }
            }
            other => {
                tracing::warn!(%collection, answer = ?other, "calendar-query refused: the past_days window is not applied");
                return Ok(None);
            }
        }
    }
    Ok(Some(listing))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_and_components() {
        let start = DateTime::parse_from_rfc3339("2026-03-01T00:00:00Z")
            .unwrap()
            .to_utc();
        let b = query_body("VEVENT", Some(start));
        assert!(
            b.contains(
                r#"<c:comp-filter name="VEVENT"><c:time-range start="20260301T000000Z"/></c:comp-filter>"#
            ),
            "{b}"
        );
        let t = query_body("VTODO", None);
        assert!(
            t.contains(r#"<c:comp-filter name="VTODO"></c:comp-filter>"#),
            "{t}"
        );
        assert_eq!(others(&[]), vec!["VTODO"]);
        assert!(others(&["VEVENT".into()]).is_empty());
        assert_eq!(
            others(&["VEVENT".into(), "VTODO".into(), "VJOURNAL".into()]),
            vec!["VTODO", "VJOURNAL"]
        );
    }
}
