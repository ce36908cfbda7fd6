//! Checking a sync-token's word (issue 21, "sync tokens that lie"): some servers (Zimbra among
//! them) leave changes out of a sync-collection answer (RFC 6578 §3.8 promises every change
//! since the token). Every few polls the mirror, as the token's delta leaves it, is compared
//! with a full etag listing; where they differ, the token is not trusted for that collection
//! any more and it is synced by listings. Pure: the poller does the requests.
//!
//! ```text
//!   stored etags ─► + delta (sync-collection) ─► what the token says is there ─┐
//!   PROPFIND Depth 1 getetag ─────────────────► what is there ─────────────────┴─► differences
//! ```

use std::collections::HashMap;

use crate::dav::sync::Listing;

/// One way the token's view and the listing differ, for the log and the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    /// On the server, but the token never reported it.
    Missing(String),
    /// Gone from the server, but the token never reported the removal.
    Stale(String),
    /// Changed on the server (another etag), but the token never reported the change.
    Changed(String),
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Difference::Missing(h) => write!(f, "{h} is on the server but was never reported"),
            Difference::Stale(h) => write!(
                f,
                "{h} is gone from the server but its removal was never reported"
            ),
            Difference::Changed(h) => {
                write!(f, "{h} changed on the server but the change was never reported")
            }
        }
    }
}

/// The differences between `stored` updated by `delta` and the `full` listing. Members without
/// an etag on either side are compared by presence only.
pub fn differences(stored: &[(String, Option<String>)], delta: &Listing, full: &Listing) -> Vec<Difference> {
    let mut view: HashMap<&str, Option<&str>> =
        stored.iter().map(|(h, e)| (h.as_str(), e.as_deref())).collect();
    if delta.complete {
        view.clear();
    }
    for (href, etag) in &delta.present {
        view.insert(href, etag.as_deref());
    }
    for href in &delta.removed {
        view.remove(href.as_str());
    }
    let mut out = Vec::new();
    for (href, etag) in &full.present {
        match view.remove(href.as_str()) {
            None => out.push(Difference::Missing(href.clone())),
            Some(Some(seen)) if etag.as_deref().is_some_and(|e| e != seen) => {
                out.push(Difference::Changed(href.clone()))
            }
            Some(_) => {}
        }
    }
    let mut stale: Vec<Difference> = view
        .into_keys()
        .map(|h| Difference::Stale(h.to_owned()))
        .collect();
    stale.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    out.extend(stale);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, Option<String>)> {
        items
            .iter()
            .map(|(h, e)| (h.to_string(), Some(e.to_string())))
            .collect()
    }

    #[test]
    fn a_truthful_token_agrees() {
        let stored = pairs(&[("/c/a", "1"), ("/c/b", "1")]);
        let delta = Listing {
            present: pairs(&[("/c/b", "2"), ("/c/n", "1")]),
            removed: vec!["/c/a".into()],
            ..Listing::default()
        };
        let full = Listing {
            present: pairs(&[("/c/b", "2"), ("/c/n", "1")]),
            complete: true,
            ..Listing::default()
        };
        assert!(differences(&stored, &delta, &full).is_empty());
    }

    #[test]
    fn what_a_lying_token_left_out_is_named() {
        let stored = pairs(&[("/c/a", "1"), ("/c/b", "1"), ("/c/gone", "1")]);
        // The server changed b, added n and removed gone; the token reported none of it.
        let delta = Listing::default();
        let full = Listing {
            present: pairs(&[("/c/a", "1"), ("/c/b", "2"), ("/c/n", "1")]),
            complete: true,
            ..Listing::default()
        };
        let d = differences(&stored, &delta, &full);
        assert_eq!(
            d,
            vec![
                Difference::Changed("/c/b".into()),
                Difference::Missing("/c/n".into()),
                Difference::Stale("/c/gone".into()),
            ]
        );
        assert_eq!(d[1].to_string(), "/c/n is on the server but was never reported");
    }
}
