//! Dates, times, zones and durations of calendar properties (RFC 5545 §3.3.4 DATE, §3.3.5
//! DATE-TIME, §3.3.6 DURATION, §3.2.19 TZID) as the item model reads and writes them, and the
//! field-set form of a time: wall clock `YYYY-MM-DDTHH:MM:SS` plus a Windows zone ID.

use std::cell::RefCell;
use std::collections::HashMap;
use std::str::FromStr;

use calcard::common::timezone::Tz;
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Offset, TimeZone, Utc};

use super::tzrules;
use crate::formats::lines::{Doc, Line};
use crate::formats::zones;

/// A DATE or DATE-TIME value. The zone of a date-time is `Tz::Floating` for floating time and
/// UTC for a trailing `Z`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum When {
    Date(NaiveDate),
    Time(NaiveDateTime, Tz),
}

pub const UTC: Tz = Tz::Tz(chrono_tz::UTC);

impl When {
    pub fn is_date(&self) -> bool {
        matches!(self, When::Date(_))
    }

    /// The local date (a date-time's date in its own zone).
    pub fn date(&self) -> NaiveDate {
        match self {
            When::Date(d) => *d,
            When::Time(t, _) => t.date(),
        }
    }

    pub fn zone(&self) -> Option<Tz> {
        match self {
            When::Date(_) => None,
            When::Time(_, tz) => Some(*tz),
        }
    }

    /// The instant; floating times and dates read as UTC (they have no instant of their own).
    pub fn utc(&self) -> DateTime<Utc> {
        match self {
            When::Date(d) => d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc(),
            When::Time(t, tz) => local_to_utc(*t, *tz),
        }
    }

    /// The same instant as wall-clock time in `tz` (floating stays floating).
    pub fn in_zone(&self, tz: Tz) -> When {
        match self {
            When::Date(_) => *self,
            When::Time(_, from) if from.is_floating() || tz.is_floating() => *self,
            When::Time(..) => When::Time(utc_to_local(self.utc(), tz), tz),
        }
    }

    pub fn add(&self, by: Duration) -> When {
        match self {
            When::Date(d) => When::Date(*d + Duration::days(by.num_days())),
            When::Time(t, tz) if tz.is_floating() => When::Time(*t + by, *tz),
            // RFC 5545 §3.3.6: a duration in days or weeks is nominal (wall clock), in hours exact.
            When::Time(t, tz) if by.num_seconds() % 86_400 == 0 => When::Time(*t + by, *tz),
            When::Time(_, tz) => When::Time(utc_to_local(self.utc() + by, *tz), *tz),
        }
    }

    /// `self - other`, in days for dates.
    pub fn since(&self, other: &When) -> Duration {
        match (self, other) {
            (When::Date(a), When::Date(b)) => *a - *b,
            (When::Time(a, x), When::Time(b, y)) if x.is_floating() || y.is_floating() => *a - *b,
            _ => self.utc() - other.utc(),
        }
    }
}

pub fn local_to_utc(local: NaiveDateTime, tz: Tz) -> DateTime<Utc> {
    if tz.is_floating() {
        return local.and_utc();
    }
    // RFC 5545 §3.3.5: a nonexistent local time reads with the offset before the gap; an ambiguous
    // one as its first occurrence.
    match tz.from_local_datetime(&local) {
        chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => t.with_timezone(&Utc),
        chrono::LocalResult::None => {
            let before = tz.offset_from_utc_datetime(&(local - Duration::hours(12))).fix();
            (local - Duration::seconds(before.local_minus_utc() as i64)).and_utc()
        }
    }
}

pub fn utc_to_local(utc: DateTime<Utc>, tz: Tz) -> NaiveDateTime {
    if tz.is_floating() {
        return utc.naive_utc();
    }
    utc.with_timezone(&tz).naive_local()
}

/// Parses `YYYYMMDD` or `YYYYMMDDTHHMMSS[Z]` with the property's TZID resolved in `doc`.
pub fn parse_value(doc: &Doc, line: &Line) -> Option<When> {
    parse_text(doc, line.value().trim(), line.param("TZID").as_deref())
}

/// Every value of a list property (EXDATE, RDATE), comma-separated.
pub fn parse_list(doc: &Doc, line: &Line) -> Vec<When> {
    let tzid = line.param("TZID");
    line.value()
        .split(',')
        .filter_map(|v| parse_text(doc, v.trim(), tzid.as_deref()))
        .collect()
}

fn parse_text(doc: &Doc, text: &str, tzid: Option<&str>) -> Option<When> {
    if text.len() == 8 {
        return NaiveDate::parse_from_str(text, "%Y%m%d").ok().map(When::Date);
    }
    if let Some(utc) = text.strip_suffix(['Z', 'z']) {
        let t = NaiveDateTime::parse_from_str(utc, "%Y%m%dT%H%M%S").ok()?;
        return Some(When::Time(t, UTC));
    }
    let t = NaiveDateTime::parse_from_str(text, "%Y%m%dT%H%M%S").ok()?;
    let tz = match tzid {
        Some(id) => zone_of(doc, id, t),
        None => Tz::Floating,
    };
    Some(When::Time(t, tz))
}

/// The zone a TZID stands for: by its name (IANA, Windows, prefixed, display names), else by
/// the rules of its VTIMEZONE (`local` picks the year to compare), else floating time.
pub fn zone_of(doc: &Doc, tzid: &str, local: NaiveDateTime) -> Tz {
    if let Some(tz) = resolve_name(tzid) {
        return tz;
    }
    let wanted = tzid.trim().trim_matches('"');
    for comp in doc.components_named("VTIMEZONE") {
        let same = doc
            .first_prop(comp, "TZID")
            .is_some_and(|l| l.value().trim().trim_matches('"') == wanted);
        if same {
            return tzrules::resolve_vtimezone(doc, comp, local);
        }
    }
    tracing::warn!(tzid, "unknown TZID without VTIMEZONE: read as floating time");
    Tz::Floating
}

/// The Windows zone ID for a zone (`UTC` for UTC), if CLDR has one.
pub fn windows_id(tz: Tz) -> Option<&'static str> {
    match tz {
        Tz::Floating => None,
        t if t.is_utc() => Some("UTC"),
        Tz::Tz(t) => {
            thread_local! {
                static WINDOWS: RefCell<HashMap<&'static str, Option<&'static str>>> = RefCell::new(HashMap::new());
            }
            WINDOWS.with(|w| {
                *w.borrow_mut()
                    .entry(t.name())
                    .or_insert_with(|| zones::windows_of_iana(t.name()))
            })
        }
        Tz::Fixed(_) => None,
    }
}

/// [`zones::resolve`], remembered per name: a calendar names the same few zones in every object.
fn resolve_name(name: &str) -> Option<Tz> {
    thread_local! {
        static NAMES: RefCell<HashMap<String, Option<Tz>>> = RefCell::new(HashMap::new());
    }
    if let Some(found) = NAMES.with(|n| n.borrow().get(name).copied()) {
        return found;
    }
    let found = zones::resolve(name);
    NAMES.with(|n| {
        let mut n = n.borrow_mut();
        if n.len() >= 1024 {
            n.clear();
        }
        n.insert(name.to_owned(), found);
    });
    found
}

/// A field-set zone name to a zone: Windows IDs first, then any name `zones::resolve` knows.
pub fn zone_of_field(name: &str) -> Option<Tz> {
    if name.eq_ignore_ascii_case("UTC") {
        return Some(UTC);
    }
    resolve_name(name)
}

/// A time as the field set shows it: local text and Windows zone (None for dates and floating).
/// Zones Outlook has no ID for are shown in UTC.
pub fn to_field(when: &When) -> (String, Option<String>) {
    match when {
        When::Date(d) => (d.format("%Y-%m-%d").to_string(), None),
        When::Time(t, tz) if tz.is_floating() => (fmt_field(t), None),
        When::Time(t, tz) => match windows_id(*tz) {
            Some(id) => (fmt_field(t), Some(id.to_owned())),
            None => (
                fmt_field(&utc_to_local(local_to_utc(*t, *tz), UTC)),
                Some("UTC".into()),
            ),
        },
    }
}

pub fn fmt_field(t: &NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// Reads a field-set time: `YYYY-MM-DD` (a date) or `YYYY-MM-DDTHH:MM:SS` in `zone`.
pub fn from_field(text: &str, zone: Option<&str>) -> Result<When, String> {
    let text = text.trim();
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(When::Date(d));
    }
    let t = NaiveDateTime::parse_from_str(text.trim_end_matches('Z'), "%Y-%m-%dT%H:%M:%S")
        .map_err(|_| format!("`{text}` is not YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS"))?;
    let tz = match zone {
        None | Some("") if text.ends_with('Z') => UTC,
        None | Some("") => Tz::Floating,
        Some(name) => zone_of_field(name).ok_or_else(|| format!("unknown time zone `{name}`"))?,
    };
    Ok(When::Time(t, tz))
}

pub fn parse_field_date(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map_err(|_| format!("`{text}` is not YYYY-MM-DD"))
}

/// The TZID a zone is written with: its IANA name.
pub fn tzid_of(tz: Tz) -> Option<String> {
    match tz {
        Tz::Tz(t) => Some(t.name().to_owned()),
        _ => None,
    }
}

/// The property line for `when`, e.g. `DTSTART;TZID=Europe/Berlin:20260310T090000`. `tzid`
/// overrides the TZID text written (to keep the stored object's own name for the same zone).
pub fn property(name: &str, when: &When, tzid: Option<&str>) -> String {
    match when {
        When::Date(d) => format!("{name};VALUE=DATE:{}", d.format("%Y%m%d")),
        When::Time(t, tz) if tz.is_floating() => format!("{name}:{}", t.format("%Y%m%dT%H%M%S")),
        When::Time(t, tz) if tz.is_utc() && tzid.is_none() => format!("{name}:{}", fmt_utc(&t.and_utc())),
        When::Time(t, tz) => match tzid.map(str::to_owned).or_else(|| tzid_of(*tz)) {
            Some(id) => format!("{name};TZID={}:{}", quote_param(&id), t.format("%Y%m%dT%H%M%S")),
            None => format!("{name}:{}", fmt_utc(&local_to_utc(*t, *tz))),
        },
    }
}

/// A value in a list property's form (no TZID; the property line carries it).
pub fn value_text(when: &When) -> String {
    match when {
        When::Date(d) => d.format("%Y%m%d").to_string(),
        When::Time(t, tz) if tz.is_utc() => fmt_utc(&t.and_utc()),
        When::Time(t, _) => t.format("%Y%m%dT%H%M%S").to_string(),
    }
}

pub fn fmt_utc(t: &DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// RFC 5545 §3.2: a parameter value with `:;,` is quoted; so is one with spaces, as Outlook
/// writes its zone names.
pub fn quote_param(value: &str) -> String {
    if value.contains([':', ';', ',', ' ']) {
        format!("\"{}\"", value.replace('"', ""))
    } else {
        value.to_owned()
    }
}

/// Parses a DURATION (RFC 5545 §3.3.6): `[+-]P[nW][nD][T[nH][nM][nS]]`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (sign, rest) = match text.as_bytes().first()? {
        b'-' => (-1, &text[1..]),
        b'+' => (1, &text[1..]),
        _ => (1, text),
    };
    let rest = rest.strip_prefix(['P', 'p'])?;
    let mut seconds: i64 = 0;
    let mut number = String::new();
    let mut any = false;
    for c in rest.chars() {
        match c.to_ascii_uppercase() {
            '0'..='9' => number.push(c),
            'T' => {}
            unit @ ('W' | 'D' | 'H' | 'M' | 'S') => {
                let n: i64 = number.parse().ok()?;
                number.clear();
                any = true;
                seconds += n * match unit {
                    'W' => 604_800,
                    'D' => 86_400,
                    'H' => 3_600,
                    'M' => 60,
                    _ => 1,
                };
            }
            _ => return None,
        }
    }
    (any && number.is_empty()).then(|| Duration::seconds(sign * seconds))
}

/// Writes a duration in whole minutes the short way (`-PT15M`, `-PT2H`, `-P1D`, `PT0S`).
pub fn fmt_duration(d: Duration) -> String {
    let minutes = d.num_minutes();
    let sign = if minutes < 0 { "-" } else { "" };
    let m = minutes.abs();
    if m == 0 {
        "PT0S".into()
    } else if m % 1440 == 0 {
        format!("{sign}P{}D", m / 1440)
    } else if m % 60 == 0 {
        format!("{sign}PT{}H", m / 60)
    } else {
        format!("{sign}PT{m}M")
    }
}

/// Parses an RFC 3339 instant (`ReminderTime`), or a field-set local time read as UTC.
pub fn parse_instant(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text.trim()) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDateTime::from_str(text.trim())
        .map(|t| t.and_utc())
        .map_err(|_| format!("`{text}` is not an RFC 3339 time"))
}

pub fn fmt_instant(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_both_ways() {
        assert_eq!(parse_duration("-PT15M"), Some(Duration::minutes(-15)));
        assert_eq!(parse_duration("P1W2DT3H"), Some(Duration::hours(7 * 24 + 48 + 3)));
        assert_eq!(parse_duration("PT"), None);
        assert_eq!(parse_duration("15M"), None);
        for m in [-2880, -120, -15, 0, 5] {
            assert_eq!(
                parse_duration(&fmt_duration(Duration::minutes(m))),
                Some(Duration::minutes(m))
            );
        }
    }

    #[test]
    fn field_times_map_to_zones_and_back() {
        let w = from_field("2026-03-10T09:00:00", Some("W. Europe Standard Time")).unwrap();
        assert_eq!(
            property("DTSTART", &w, None),
            "DTSTART;TZID=Europe/Berlin:20260310T090000"
        );
        assert_eq!(w.utc().to_rfc3339(), "2026-03-10T08:00:00+00:00");
        assert_eq!(
            to_field(&w),
            (
                "2026-03-10T09:00:00".into(),
                Some("W. Europe Standard Time".into())
            )
        );
        let d = from_field("2026-03-10", None).unwrap();
        assert_eq!(property("DTSTART", &d, None), "DTSTART;VALUE=DATE:20260310");
        let u = from_field("2026-03-10T09:00:00", Some("UTC")).unwrap();
        assert_eq!(property("DTEND", &u, None), "DTEND:20260310T090000Z");
        assert!(from_field("2026-03-10T09:00:00", Some("Mars Standard Time")).is_err());
    }
}
