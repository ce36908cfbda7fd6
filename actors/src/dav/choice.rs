//! What of an account's DAV servers is synced (`[account.sync]` in the config): which
//! collections, how far back in time events go, which collections are read-only here, and how
//! often a sync-token's word is checked against a listing. Pure: the poller asks it questions.
//!
//! ```text
//!   home listing ─► chosen? ──no──► not mirrored (and dropped from the mirror)
//!                      │yes
//!                      ├─ read_only? ─► writes refused before the journal (server → client only)
//!                      └─ past_days? ─► calendar-query time-range instead of sync-collection
//! ```

use chrono::{DateTime, Duration as Days, Utc};
use serde::Deserialize;

use crate::dav::discovery::CollectionInfo;
use crate::dav::sync::normalize_href;
use crate::formats::EventFields;

/// Default of `verify_every`: with the default 5-minute poll, a lying token costs at most an
/// hour of missed changes, for one PROPFIND per collection an hour.
pub const VERIFY_EVERY: u32 = 12;

/// `[account.sync]`; every key is optional and the default syncs everything, both ways.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncChoice {
    /// Collections to sync, each by its display name or its href (`/alice/work/`); empty: all.
    #[serde(default)]
    pub collections: Vec<String>,
    /// Collections synced from the server only: local writes to them are refused.
    #[serde(default)]
    pub read_only: Vec<String>,
    /// Events whose last occurrence ended more than this many days ago are not synced; the
    /// future always is. Tasks and contacts are not limited.
    #[serde(default)]
    pub past_days: Option<u32>,
    /// Every this many polls, a collection synced by sync-token is also compared with an etag
    /// listing (servers such as Zimbra miss changes in sync-collection); 0 never. Default 12.
    #[serde(default)]
    pub verify_every: Option<u32>,
}

impl SyncChoice {
    /// The config check: names must not be empty, the window must be at least a day.
    pub fn check(&self) -> Result<(), String> {
        for (key, list) in [("collections", &self.collections), ("read_only", &self.read_only)] {
            if list.iter().any(|n| n.trim().is_empty()) {
                return Err(format!(
                    "`{key}` has an empty name (give a display name or an href)"
                ));
            }
        }
        if self.past_days == Some(0) {
            return Err("`past_days` must be at least 1 (leave it out to sync all of the past)".into());
        }
        if let Some(d) = self.past_days
            && d > 36_500
        {
            return Err(format!(
                "`past_days` {d} is over a hundred years; leave it out instead"
            ));
        }
        Ok(())
    }

    /// Whether `info` is synced at all. Directories (global address lists) always are: they
    /// are searched on the server, never downloaded.
    pub fn chosen(&self, info: &CollectionInfo) -> bool {
        info.directory || self.collections.is_empty() || self.collections.iter().any(|p| matches(p, info))
    }

    /// Whether the user asked for `info` to be synced from the server only.
    pub fn read_only(&self, info: &CollectionInfo) -> bool {
        self.read_only.iter().any(|p| matches(p, info))
    }

    /// Where the window of events starts at `now`, when the account has one.
    pub fn window_start(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.past_days.map(|d| now - Days::days(i64::from(d)))
    }

    /// Whether poll number `round` (counted from 1) compares tokens with listings.
    pub fn verifies(&self, round: u64) -> bool {
        match self.verify_every.unwrap_or(VERIFY_EVERY) {
            0 => false,
            n => round.is_multiple_of(u64::from(n)),
        }
    }

    /// Patterns that match none of `listed`, for a warning: a typo should not pass in silence.
    pub fn unmatched<'a>(&'a self, listed: &[&CollectionInfo]) -> Vec<&'a str> {
        self.collections
            .iter()
            .chain(&self.read_only)
            .filter(|p| !listed.iter().any(|c| matches(p, c)))
            .map(String::as_str)
            .collect()
    }
}

/// Whether a mirrored event ended before `start` (so a windowed listing leaves it out for that
/// reason, not because it was deleted). Recurring events and those without dates never have:
/// the server judges their occurrences. A day of slack covers all-day and floating times.
pub fn ended_before(event: &EventFields, start: DateTime<Utc>) -> bool {
    if event.component != "VEVENT" || event.recurring {
        return false;
    }
    let Some(when) = event.end.as_ref().or(event.start.as_ref()) else {
        return false;
    };
    let v = when.value.as_str();
    let at = DateTime::parse_from_rfc3339(v)
        .map(|d| d.to_utc())
        .ok()
        .or_else(|| {
            chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S")
                .ok()
                .map(|n| n.and_utc())
        })
        .or_else(|| {
            chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|n| n.and_utc())
        });
    at.is_some_and(|at| at + Days::days(1) < start)
}

/// A pattern names a collection by its href (with or without the final slash, in any escaping)
/// or by its display name (case-insensitive, as users type it).
fn matches(pattern: &str, info: &CollectionInfo) -> bool {
    let pattern = pattern.trim();
    if pattern.starts_with('/') {
        let want = normalize_href(pattern);
        let want = want.trim_end_matches('/');
        return info.href.trim_end_matches('/') == want;
    }
    info.name
        .as_deref()
        .is_some_and(|n| n.trim().eq_ignore_ascii_case(pattern))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(href: &str, name: &str) -> CollectionInfo {
        CollectionInfo {
            href: href.into(),
            name: Some(name.into()),
            kind: "calendar".into(),
            ..CollectionInfo::default()
        }
    }

    #[test]
    fn collections_by_name_or_href() {
        let work = col("/alice/work/", "Work");
        let home = col("/alice/home%20life/", "Home");
        let all = SyncChoice::default();
        assert!(all.chosen(&work) && all.chosen(&home));
        let some = SyncChoice {
            collections: vec!["work".into(), "/alice/home life".into()],
            read_only: vec!["/alice/work".into()],
            ..SyncChoice::default()
        };
        assert!(some.chosen(&work) && some.chosen(&home));
        assert!(some.read_only(&work) && !some.read_only(&home));
        let other = col("/alice/other/", "Other");
        assert!(!some.chosen(&other));
        let dir = CollectionInfo {
            directory: true,
            ..other.clone()
        };
        assert!(some.chosen(&dir), "directories are always kept");
        assert!(some.unmatched(&[&work, &home]).is_empty());
        assert_eq!(
            some.unmatched(&[&other]),
            vec!["work", "/alice/home life", "/alice/work"]
        );
    }

    #[test]
    fn events_that_ended_before_the_window() {
        use crate::formats::ical::When;
        let start = DateTime::parse_from_rfc3339("2026-03-01T00:00:00Z")
            .unwrap()
            .to_utc();
        let at = |v: &str| When {
            value: v.into(),
            tzid: None,
            all_day: !v.contains('T'),
        };
        let ev = |end: &str, recurring: bool| EventFields {
            component: "VEVENT".into(),
            end: Some(at(end)),
            recurring,
            ..EventFields::default()
        };
        assert!(ended_before(&ev("2025-12-01T10:00:00+01:00", false), start));
        assert!(ended_before(&ev("2025-12-01", false), start));
        assert!(ended_before(&ev("2025-12-01T10:00:00", false), start));
        assert!(
            !ended_before(&ev("2026-02-28T12:00:00Z", false), start),
            "a day of slack"
        );
        assert!(!ended_before(&ev("2026-04-01T10:00:00Z", false), start));
        assert!(
            !ended_before(&ev("2020-01-01", true), start),
            "the server judges series"
        );
        let todo = EventFields {
            component: "VTODO".into(),
            ..ev("2020-01-01", false)
        };
        assert!(!ended_before(&todo, start));
    }

    #[test]
    fn checks_and_rounds() {
        assert!(SyncChoice::default().check().is_ok());
        let zero = SyncChoice {
            past_days: Some(0),
            ..SyncChoice::default()
        };
        assert!(zero.check().unwrap_err().contains("past_days"));
        let empty = SyncChoice {
            read_only: vec![" ".into()],
            ..SyncChoice::default()
        };
        assert!(empty.check().unwrap_err().contains("read_only"));
        let d = SyncChoice::default();
        assert!(!d.verifies(1) && d.verifies(12) && d.verifies(24));
        let never = SyncChoice {
            verify_every: Some(0),
            ..SyncChoice::default()
        };
        assert!(!never.verifies(12));
        let now = DateTime::parse_from_rfc3339("2026-03-31T00:00:00Z")
            .unwrap()
            .to_utc();
        let w = SyncChoice {
            past_days: Some(30),
            ..SyncChoice::default()
        };
        assert_eq!(
            w.window_start(now).unwrap().to_rfc3339(),
            "2026-03-01T00:00:00+00:00"
        );
    }
}
