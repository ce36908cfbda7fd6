//! Which change marker says a collection is unchanged (issue 22): per collection, the cheapest
//! one that is still correct. Pure: the poller asks the home listing it names and compares.
//!
//! ```text
//!   sync-token http://radicale.org/ns/sync/… seen ─► stamp: DAV:getlastmodified of the collection
//!   (Radicale hashes every item for a token or ctag;        (a stat per file), trusted only once
//!    its getlastmodified is the max mtime of the files)      settled (see [`settled`])
//!   any other sync-token ──────────────────────────────► sync-token (the server stores it)
//!   no token, a ctag ──────────────────────────────────► ctag
//!   neither ───────────────────────────────────────────► listing (every round lists the etags)
//!   first pull only, never listed ─────────────────────► unknown: the next round lists it
//! ```
//!
//! Radicale is recognised by the form of its sync-token (`storage/multifilesystem/sync.py`
//! writes `http://radicale.org/ns/sync/` and a SHA-256): its `Server` header is Python's
//! `WSGIServer/0.2`, and its realm is configurable and only sent with a 401. Radicale computes
//! `getlastmodified` of a calendar or address book (`app/propfind.py`, `is_leaf`) as the newest
//! modification time of the collection's folder, its `.Radicale.props` and every item file
//! (`storage/multifilesystem/__init__.py`, `last_modified`): an item write replaces a file, a
//! delete or move changes the folder, a property change rewrites `.Radicale.props`. The value
//! has one-second resolution, which [`settled`] accounts for.

use std::time::Duration;

use crate::dav::discovery::CollectionInfo;
use crate::store::records::CollectionRecord;

/// The prefix of every sync-token Radicale hands out.
pub const RADICALE_TOKEN_PREFIX: &str = "http://radicale.org/ns/sync/";

/// How a poll tells that a collection has not changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// The collection's `DAV:getlastmodified` (Radicale).
    Stamp,
    /// Its `DAV:sync-token` (RFC 6578 §4).
    SyncToken,
    /// Its CalendarServer `getctag`.
    Ctag,
    /// None: every round lists the etags.
    Listing,
    /// Only first-pulled, never listed: the next round lists it and learns.
    Unknown,
}

impl Marker {
    pub fn as_str(self) -> &'static str {
        match self {
            Marker::Stamp => "stamp",
            Marker::SyncToken => "sync-token",
            Marker::Ctag => "ctag",
            Marker::Listing => "listing",
            Marker::Unknown => "unknown",
        }
    }

    fn parse(s: &str) -> Marker {
        match s {
            "stamp" => Marker::Stamp,
            "sync-token" => Marker::SyncToken,
            "ctag" => Marker::Ctag,
            "listing" => Marker::Listing,
            _ => Marker::Unknown,
        }
    }

    /// The marker a mirrored collection is polled by. Records from before markers were kept
    /// are judged by the token they hold.
    pub fn of(record: &CollectionRecord) -> Marker {
        if let Some(m) = &record.marker {
            return Marker::parse(m);
        }
        match (&record.sync_token, &record.ctag) {
            (Some(t), _) if is_radicale_token(t) => Marker::Stamp,
            (Some(_), _) => Marker::SyncToken,
            (None, Some(_)) => Marker::Ctag,
            (None, None) => Marker::Unknown,
        }
    }

    /// The marker after a round that listed the collection: `token` is the one it got (from
    /// sync-collection, or seen in the home listing), `ctag` the home listing's. A stamp stays a
    /// stamp: Radicale does not stop being Radicale when a round lists without a token.
    pub fn after_round(old: Option<Marker>, token: Option<&str>, ctag: Option<&str>) -> Marker {
        if old == Some(Marker::Stamp) || token.is_some_and(is_radicale_token) {
            Marker::Stamp
        } else if token.is_some() {
            Marker::SyncToken
        } else if ctag.is_some() {
            Marker::Ctag
        } else {
            Marker::Listing
        }
    }
}

pub fn is_radicale_token(token: &str) -> bool {
    token.starts_with(RADICALE_TOKEN_PREFIX)
}

/// Which listing a home is asked, by the markers of the collections mirrored from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HomeListing {
    /// No marker at all: a first round, with nothing mirrored to compare. Even the stamp costs
    /// Radicale a stat of every item file (0.1–0.2 s at 20,000–50,000 events), and the round
    /// after a first pull lists the collection in full whatever the stamp said.
    Bare,
    /// No sync-token, no ctag: each costs Radicale a read of every item. Asked when every
    /// collection is polled by stamp or not known yet.
    Stamps,
    /// The sync-token only: every collection has one.
    SyncTokens,
    /// Both markers.
    All,
}

/// The listing for a home whose mirrored collections are `stored`.
pub fn home_listing(stored: &[CollectionRecord]) -> HomeListing {
    if stored.is_empty() {
        HomeListing::Bare
    } else if stored
        .iter()
        .all(|c| matches!(Marker::of(c), Marker::Stamp | Marker::Unknown))
    {
        HomeListing::Stamps
    } else if stored.iter().all(|c| c.sync_token.is_some()) {
        HomeListing::SyncTokens
    } else {
        HomeListing::All
    }
}

/// Whether the home listing says `old` has not changed, by its marker.
pub fn unchanged(old: &CollectionRecord, info: &CollectionInfo) -> bool {
    let by_token = old.sync_token.is_some() && old.sync_token == info.sync_token;
    match Marker::of(old) {
        Marker::Stamp => (old.stamp.is_some() && old.stamp == info.stamp) || by_token,
        Marker::Unknown => false,
        _ => (old.ctag.is_some() && old.ctag == info.ctag) || by_token,
    }
}

/// Whether a stamp may vouch for "unchanged" in a later round. `stamp` is the collection's
/// `getlastmodified` and `date` the `Date` header of the answer that carried it (both HTTP
/// dates, one-second resolution, from the server's clock); `elapsed` is how long that request
/// took as this side measured it.
///
/// A change the stamp missed was made after the server read its files, so at a time t with
/// t ≥ date − elapsed; it moves the stamp unless t falls in the stamp's own second (t earlier
/// than stamp plus one second). So the stamp is settled when date − elapsed ≥ stamp + 1 s; with
/// the second rounding of both dates, when date − stamp ≥ 1 + ⌈elapsed⌉ (at least 2 s). A fresh stamp is not kept:
/// the next round checks in full, and keeps that round's stamp if settled.
pub fn settled(stamp: &str, date: Option<&str>, elapsed: Duration) -> bool {
    let (Some(stamp), Some(date)) = (http_date(stamp), date.and_then(http_date)) else {
        return false;
    };
    let margin = 1 + elapsed.as_secs() + u64::from(elapsed.subsec_nanos() > 0);
    (date - stamp).num_seconds() >= margin as i64
}

/// RFC 9110 §5.6.7: an IMF-fixdate (`Thu, 03 Dec 2026 16:31:47 GMT`).
fn http_date(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc2822(s.trim())
        .ok()
        .map(|d| d.to_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: &str = "Thu, 03 Dec 2026 16:31:47 GMT";

    #[test]
    fn a_stamp_settles_two_seconds_after_its_second() {
        let quick = Duration::from_millis(40);
        assert!(!settled(S, Some(S), quick), "the same second");
        assert!(!settled(S, Some("Thu, 03 Dec 2026 16:31:48 GMT"), quick));
        assert!(settled(S, Some("Thu, 03 Dec 2026 16:31:49 GMT"), quick));
        assert!(settled(S, Some("Fri, 04 Dec 2026 09:00:00 GMT"), quick));
        // A slow answer: the server may have read its files up to `elapsed` before its Date.
        let slow = Duration::from_millis(2_300);
        assert!(!settled(S, Some("Thu, 03 Dec 2026 16:31:50 GMT"), slow));
        assert!(settled(S, Some("Thu, 03 Dec 2026 16:31:51 GMT"), slow));
        assert!(!settled(
            S,
            Some("Thu, 03 Dec 2026 16:31:51 GMT"),
            Duration::from_millis(3_001)
        ));
        // Exactly whole seconds take no rounding up.
        assert!(settled(
            S,
            Some("Thu, 03 Dec 2026 16:31:50 GMT"),
            Duration::from_secs(2)
        ));
    }

    #[test]
    fn an_odd_stamp_or_date_is_never_settled() {
        let quick = Duration::from_millis(40);
        assert!(!settled(S, None, quick), "no Date header");
        assert!(!settled("yesterday", Some(S), quick));
        assert!(!settled(S, Some("soon"), quick));
        // A stamp in the future of the server's own Date (a clock step, a touched file).
        assert!(!settled("Thu, 03 Dec 2026 17:00:00 GMT", Some(S), quick));
    }

    fn record(marker: Option<&str>, token: Option<&str>, ctag: Option<&str>) -> CollectionRecord {
        CollectionRecord {
            href: "/a/c/".into(),
            marker: marker.map(str::to_owned),
            sync_token: token.map(str::to_owned),
            ctag: ctag.map(str::to_owned),
            ..CollectionRecord::default()
        }
    }

    #[test]
    fn markers_of_records_old_and_new() {
        let radicale = "http://radicale.org/ns/sync/0a1b";
        assert_eq!(Marker::of(&record(None, Some(radicale), None)), Marker::Stamp);
        assert_eq!(
            Marker::of(&record(None, Some("data:,1"), None)),
            Marker::SyncToken
        );
        assert_eq!(Marker::of(&record(None, None, Some("c1"))), Marker::Ctag);
        assert_eq!(Marker::of(&record(None, None, None)), Marker::Unknown);
        assert_eq!(Marker::of(&record(Some("listing"), None, None)), Marker::Listing);
        assert_eq!(Marker::after_round(None, Some(radicale), None), Marker::Stamp);
        assert_eq!(
            Marker::after_round(Some(Marker::Stamp), None, None),
            Marker::Stamp
        );
        assert_eq!(Marker::after_round(None, Some("t"), Some("c")), Marker::SyncToken);
        assert_eq!(
            Marker::after_round(Some(Marker::Unknown), None, Some("c")),
            Marker::Ctag
        );
        assert_eq!(Marker::after_round(None, None, None), Marker::Listing);
    }

    #[test]
    fn the_listing_asks_only_for_what_is_compared() {
        let stamp = record(Some("stamp"), Some("http://radicale.org/ns/sync/1"), None);
        let unknown = record(None, None, None);
        let token = record(Some("sync-token"), Some("t"), None);
        let ctag = record(Some("ctag"), None, Some("c"));
        assert_eq!(home_listing(&[]), HomeListing::Bare);
        assert_eq!(
            home_listing(&[stamp.clone(), unknown.clone()]),
            HomeListing::Stamps
        );
        assert_eq!(
            home_listing(std::slice::from_ref(&token)),
            HomeListing::SyncTokens
        );
        assert_eq!(home_listing(&[token, ctag.clone()]), HomeListing::All);
        assert_eq!(home_listing(&[unknown, ctag]), HomeListing::All);
    }

    #[test]
    fn a_stamp_vouches_only_when_kept() {
        let info = |stamp: Option<&str>| CollectionInfo {
            href: "/a/c/".into(),
            stamp: stamp.map(str::to_owned),
            ..CollectionInfo::default()
        };
        let mut old = record(Some("stamp"), Some("http://radicale.org/ns/sync/1"), None);
        assert!(!unchanged(&old, &info(Some(S))), "no stamp kept (it was fresh)");
        old.stamp = Some(S.into());
        assert!(unchanged(&old, &info(Some(S))));
        assert!(!unchanged(&old, &info(Some("Thu, 03 Dec 2026 16:31:48 GMT"))));
        assert!(!unchanged(&old, &info(None)));
        // Never listed: nothing vouches.
        let mut first = record(None, None, None);
        first.stamp = Some(S.into());
        assert!(!unchanged(&first, &info(Some(S))));
        // A stamp is not a ctag's business.
        let mut ctag = record(Some("ctag"), None, Some("c"));
        ctag.stamp = Some(S.into());
        assert!(!unchanged(&ctag, &info(Some(S))));
    }
}
