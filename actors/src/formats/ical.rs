//! iCalendar objects (RFC 5545, RFC 4791 §4 calendar object resources): the fields the mirror
//! indexes, and the instances of a (possibly recurring) object inside a time range.
//!
//! Parsing uses calcard; expansion is `formats::expand` (calcard iterates each rule). A TZID
//! without VTIMEZONE is resolved by name (`formats::zones`); one that names no zone at all is read
//! as floating time with a warning on the item, not refused.

use calcard::common::timezone::Tz;
use calcard::icalendar::{
    ICalendar, ICalendarComponent, ICalendarComponentType, ICalendarEntry, ICalendarProperty, ICalendarValue,
};
use calcard::{Entry, Parser};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::expand;
use super::text::unfold_to_string;

/// Upper bound on the instances one rule generates: an endless `FREQ=SECONDLY` rule must not
/// stall a read. Rules are generated within the read's window only, so this is rarely reached.
const MAX_INSTANCES: usize = 50_000;

/// A UTC instant, as range bounds are given.
pub type UtcTime = DateTime<Utc>;
/// An open range's lower end (no calendar data predates the Gregorian reform in practice).
pub const RANGE_MIN: UtcTime = DateTime::<Utc>::MIN_UTC;
/// An open range's upper end.
pub const RANGE_MAX: UtcTime = DateTime::<Utc>::MAX_UTC;

/// A DATE or DATE-TIME value (RFC 5545 §3.3.4, §3.3.5) as it was written.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct When {
    /// RFC 3339 with the offset in force in its zone (`2026-03-10T09:00:00+01:00`), a bare
    /// date (`2026-03-10`) for all-day values, or a local time without offset for floating ones.
    pub value: String,
    /// The TZID parameter, if any (`Europe/Berlin`).
    pub tzid: Option<String>,
    pub all_day: bool,
}

/// What the mirror keeps about a calendar object besides its bytes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct EventFields {
    pub uid: String,
    /// `VEVENT`, `VTODO` or `VJOURNAL`.
    pub component: String,
    pub summary: Option<String>,
    pub start: Option<When>,
    pub end: Option<When>,
    pub due: Option<When>,
    /// RRULE or RDATE on the master, or overrides present (RFC 5545 §3.8.5).
    pub recurring: bool,
    /// What was read with a guess rather than refused (a TZID that names no zone is read as
    /// floating time).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// One occurrence inside a requested range.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    /// The occurrence's start in its own zone (RFC 3339) or a date for all-day occurrences.
    pub start: String,
    pub end: String,
    pub start_utc: DateTime<Utc>,
    pub end_utc: DateTime<Utc>,
    /// The summary of the component that produced it (an override may rename one occurrence).
    pub summary: Option<String>,
    /// True when an override (RECURRENCE-ID) produced this occurrence.
    pub overridden: bool,
}

fn parse(body: &[u8]) -> Result<ICalendar, String> {
    let text = unfold_to_string(body)?;
    match Parser::new(&text).entry() {
        Entry::ICalendar(ical) => Ok(ical),
        Entry::VCard(_) => Err("a vCard where an iCalendar object was expected".into()),
        Entry::InvalidLine(line) => Err(format!("invalid line `{}`", truncate(&line, 80))),
        Entry::UnterminatedComponent(name) => Err(format!("BEGIN:{name} without END")),
        Entry::UnexpectedComponentEnd { expected, found } => Err(format!(
            "END:{} where END:{} was expected",
            found.as_str(),
            expected.as_str()
        )),
        Entry::TooManyComponents => Err("too many components".into()),
        Entry::Eof => Err("empty: no BEGIN:VCALENDAR".into()),
        _ => Err("not an iCalendar object".into()),
    }
}

fn is_item(t: &ICalendarComponentType) -> bool {
    matches!(
        t,
        ICalendarComponentType::VEvent | ICalendarComponentType::VTodo | ICalendarComponentType::VJournal
    )
}

fn text_of(comp: &ICalendarComponent, prop: ICalendarProperty) -> Option<String> {
    comp.property(&prop)
        .and_then(|e| e.values.first())
        .and_then(ICalendarValue::as_text)
        .map(str::to_owned)
}

/// Reads a calendar object resource. An error here is recorded with the item (invariant 4).
pub fn parse_event(body: &[u8]) -> Result<EventFields, String> {
    let ical = parse(body)?;
    let items: Vec<&ICalendarComponent> = ical
        .components
        .iter()
        .filter(|c| is_item(&c.component_type))
        .collect();
    // RFC 4791 §4.1: one UID per resource; the master is the component without RECURRENCE-ID.
    let master = items
        .iter()
        .find(|c| !c.is_recurrence_override())
        .or_else(|| items.first())
        .ok_or("no VEVENT, VTODO or VJOURNAL")?;
    let uid = master.uid().ok_or("no UID (RFC 5545 §3.8.4.7)")?.to_owned();
    let resolver = ical.build_tz_resolver();
    let mut warnings = Vec::new();
    let mut when = |prop: ICalendarProperty| -> Result<Option<When>, String> {
        let Some(entry) = master.property(&prop) else {
            return Ok(None);
        };
        if let Some(tzid) = entry.tz_id()
            && expand::zone(&resolver, tzid).is_none()
        {
            let warning = expand::unknown_zone(tzid);
            if !warnings.contains(&warning) {
                warnings.push(warning);
            }
        }
        when_of(entry, |tzid| expand::zone(&resolver, tzid))
            .map(Some)
            .ok_or_else(|| format!("{} is not a date or date-time", prop.as_str()))
    };
    let start = when(ICalendarProperty::Dtstart)?;
    let end = when(ICalendarProperty::Dtend)?;
    let due = when(ICalendarProperty::Due)?;
    if master.component_type == ICalendarComponentType::VEvent
        && start.is_none()
        && !master.is_recurrence_override()
    {
        // RFC 5545 §3.6.1: DTSTART is required in a VEVENT without METHOD.
        return Err("VEVENT without DTSTART (RFC 5545 §3.6.1)".into());
    }
    if let (Some(s), Some(e)) = (&start, &end)
        && ends_before(s, e)
    {
        // RFC 5545 §3.8.2.2: DTEND must be later than DTSTART.
        return Err(format!("DTEND {} is before DTSTART {}", e.value, s.value));
    }
    Ok(EventFields {
        uid,
        component: master.component_type.as_str().to_owned(),
        summary: text_of(master, ICalendarProperty::Summary),
        start,
        end,
        due,
        recurring: master.is_recurrent() || items.iter().any(|c| c.is_recurrence_override()),
        warnings,
    })
}

fn ends_before(start: &When, end: &When) -> bool {
    match (
        DateTime::parse_from_rfc3339(&start.value),
        DateTime::parse_from_rfc3339(&end.value),
    ) {
        (Ok(s), Ok(e)) => e < s,
        _ => start.all_day && end.all_day && end.value < start.value,
    }
}

fn when_of(entry: &ICalendarEntry, resolve: impl Fn(&str) -> Option<Tz>) -> Option<When> {
    let Some(ICalendarValue::PartialDateTime(dt)) = entry.values.first() else {
        return None;
    };
    let tzid = entry.tz_id().map(str::to_owned);
    if !dt.has_date() {
        return None;
    }
    if !dt.has_time() {
        let d = dt.to_date_time()?.date_time.date();
        return Some(When {
            value: d.format("%Y-%m-%d").to_string(),
            tzid,
            all_day: true,
        });
    }
    let result = dt.to_date_time()?;
    let value = match (result.offset, tzid.as_deref().and_then(&resolve)) {
        (Some(_), _) => result.to_date_time_with_tz(Tz::UTC)?.fixed_offset().to_rfc3339(),
        (None, Some(tz)) => result.to_date_time_with_tz(tz)?.fixed_offset().to_rfc3339(),
        (None, None) => result.date_time.format("%Y-%m-%dT%H:%M:%S").to_string(),
    };
    Some(When {
        value,
        tzid,
        all_day: false,
    })
}

/// The occurrences of the object that overlap `[from, to)` (RFC 4791 §9.9 semantics), with
/// RRULE/RDATE expanded, EXDATE removed and RECURRENCE-ID overrides applied in their time zones
/// (`formats::expand`). Floating times are read as UTC.
pub fn instances(body: &[u8], from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<Instance>, String> {
    let ical = parse(body)?;
    let show = |t: DateTime<Utc>, tz: Tz, all_day: bool| {
        if all_day {
            t.format("%Y-%m-%d").to_string()
        } else {
            t.with_timezone(&tz).fixed_offset().to_rfc3339()
        }
    };
    Ok(expand::expand(&ical, from, to, MAX_INSTANCES)
        .into_iter()
        .map(|o| {
            let comp = &ical.components[o.comp];
            Instance {
                start: show(o.start_utc, o.tz, o.all_day),
                end: show(o.end_utc, o.tz, o.all_day),
                start_utc: o.start_utc,
                end_utc: o.end_utc,
                summary: text_of(comp, ICalendarProperty::Summary),
                overridden: o.overridden,
            }
        })
        .collect())
}

/// A range bound as a client writes it: RFC 3339 (`2026-03-01T00:00:00Z`, any offset), an
/// iCalendar UTC time (`20260301T000000Z`, RFC 4791 §9.9) or a date (`2026-03-01`, midnight UTC).
pub fn parse_bound(text: &str) -> Result<DateTime<Utc>, String> {
    let t = text.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(dt.with_timezone(&Utc));
    }
    if let Ok(naive) = chrono::NaiveDateTime::parse_from_str(t, "%Y%m%dT%H%M%SZ") {
        return Ok(naive.and_utc());
    }
    if let Ok(date) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(date.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    Err(format!(
        "`{text}` is not an RFC 3339 time, a date or an iCalendar UTC time"
    ))
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    const BERLIN_WEEKLY: &str = include_str!("../../tests/fixtures/ical/berlin-weekly.ics");

    #[test]
    fn reads_fields_with_their_zone() {
        let f = parse_event(BERLIN_WEEKLY.as_bytes()).unwrap();
        assert_eq!(f.uid, "weekly-standup@example.org");
        assert_eq!(f.component, "VEVENT");
        assert_eq!(f.summary.as_deref(), Some("Standup"));
        let start = f.start.unwrap();
        assert_eq!(start.value, "2026-03-02T09:00:00+01:00");
        assert_eq!(start.tzid.as_deref(), Some("Europe/Berlin"));
        assert!(f.recurring);
    }

    #[test]
    fn expands_across_dst_with_exdate_and_overrides() {
        // March 2026: Europe/Berlin switches to CEST on the 29th.
        let got = instances(
            BERLIN_WEEKLY.as_bytes(),
            utc("2026-03-01T00:00:00Z"),
            utc("2026-04-07T00:00:00Z"),
        )
        .unwrap();
        let starts: Vec<&str> = got.iter().map(|i| i.start.as_str()).collect();
        assert_eq!(
            starts,
            vec![
                "2026-03-02T09:00:00+01:00",
                // 03-09 is an EXDATE.
                "2026-03-16T11:30:00+01:00", // override moved it (SEQUENCE 2 vs master 0)
                "2026-03-23T09:00:00+01:00",
                "2026-03-30T09:00:00+02:00", // summer time, same wall clock
                "2026-04-06T09:00:00+02:00",
            ]
        );
        assert_eq!(got[1].summary.as_deref(), Some("Standup (moved)"));
        assert!(got[1].overridden);
        assert_eq!(got[0].end, "2026-03-02T09:15:00+01:00");
    }

    #[test]
    fn range_bounds() {
        assert_eq!(parse_bound("2026-03-01").unwrap(), utc("2026-03-01T00:00:00Z"));
        assert_eq!(
            parse_bound("20260301T120000Z").unwrap(),
            utc("2026-03-01T12:00:00Z")
        );
        assert_eq!(
            parse_bound("2026-03-01T13:00:00+01:00").unwrap(),
            utc("2026-03-01T12:00:00Z")
        );
        assert!(parse_bound("March").is_err());
    }

    #[test]
    fn reads_tasks_and_all_day_events() {
        let todo = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VTODO\r\nUID:t1\r\nSUMMARY:File taxes\r\nDUE;VALUE=DATE:20260415\r\nEND:VTODO\r\nEND:VCALENDAR\r\n";
        let f = parse_event(todo.as_bytes()).unwrap();
        assert_eq!(f.component, "VTODO");
        let due = f.due.unwrap();
        assert_eq!((due.value.as_str(), due.all_day), ("2026-04-15", true));
        assert!(!f.recurring);
    }

    #[test]
    fn broken_objects_are_errors_not_panics() {
        assert!(parse_event(b"").is_err());
        assert!(parse_event(b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\n").is_err());
        assert!(parse_event(b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n").is_err());
        let no_start =
            "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\nSUMMARY:s\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        assert!(parse_event(no_start.as_bytes()).unwrap_err().contains("DTSTART"));
        let backwards = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:b\r\nDTSTART:20260101T100000Z\r\nDTEND:20250101T100000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        assert!(parse_event(backwards.as_bytes()).unwrap_err().contains("before"));
        // An IANA name without VTIMEZONE is understood (common in practice).
        let iana = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:i\r\nDTSTART;TZID=Europe/Berlin:20260701T100000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        assert_eq!(
            parse_event(iana.as_bytes()).unwrap().start.unwrap().value,
            "2026-07-01T10:00:00+02:00"
        );
    }

    fn with_tzid(tzid: &str) -> String {
        format!(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:z\r\nDTSTART;TZID={tzid}:20260701T100000\r\nDTEND;TZID={tzid}:20260701T110000\r\nRRULE:FREQ=DAILY;COUNT=2\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
        )
    }

    #[test]
    fn zone_names_without_vtimezone_resolve_by_name() {
        for (tzid, offset) in [
            ("/freeassociation.sourceforge.net/Europe/Berlin", "+02:00"),
            ("posix/Europe/Vaduz", "+02:00"),
            ("custom_America/New_York", "-04:00"),
            ("\"W. Europe Standard Time\"", "+02:00"),
            ("Central Europe Standard Time", "+02:00"),
        ] {
            let ics = with_tzid(tzid);
            let f = parse_event(ics.as_bytes()).unwrap_or_else(|e| panic!("{tzid}: {e}"));
            assert_eq!(
                f.start.unwrap().value,
                format!("2026-07-01T10:00:00{offset}"),
                "{tzid}"
            );
            assert!(f.warnings.is_empty(), "{tzid}: {:?}", f.warnings);
            let got = instances(
                ics.as_bytes(),
                utc("2026-07-01T00:00:00Z"),
                utc("2026-07-03T00:00:00Z"),
            )
            .unwrap();
            assert_eq!(got.len(), 2, "{tzid}");
            assert_eq!(got[1].start, format!("2026-07-02T10:00:00{offset}"), "{tzid}");
        }
    }

    #[test]
    fn an_unknown_zone_is_floating_with_a_warning() {
        for tzid in ["Mars/Olympus", "Western/Central Europe"] {
            let ics = with_tzid(tzid);
            let f = parse_event(ics.as_bytes()).unwrap_or_else(|e| panic!("{tzid}: {e}"));
            assert_eq!(f.start.unwrap().value, "2026-07-01T10:00:00", "{tzid}");
            assert_eq!(f.warnings.len(), 1, "{tzid}: one warning for DTSTART and DTEND");
            assert!(
                f.warnings[0].contains(tzid) && f.warnings[0].contains("floating"),
                "{:?}",
                f.warnings
            );
            // Floating times are read as UTC for ranges.
            let got = instances(
                ics.as_bytes(),
                utc("2026-07-01T00:00:00Z"),
                utc("2026-07-03T00:00:00Z"),
            )
            .unwrap();
            let starts: Vec<&str> = got.iter().map(|i| i.start.as_str()).collect();
            assert_eq!(starts, ["2026-07-01T10:00:00+00:00", "2026-07-02T10:00:00+00:00"]);
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let _ = parse_event(&bytes);
            let _ = instances(&bytes, utc("2026-01-01T00:00:00Z"), utc("2027-01-01T00:00:00Z"));
        }

        #[test]
        fn any_summary_and_hour_round_trip(summary in "[A-Za-z0-9äöü][A-Za-z0-9 äöü.]{0,59}[A-Za-z0-9]", hour in 0u32..24) {
            let ics = format!(
                "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:p\r\nDTSTART:20260101T{hour:02}0000Z\r\nSUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
            );
            let f = parse_event(ics.as_bytes()).unwrap();
            proptest::prop_assert_eq!(f.summary.as_deref(), Some(summary.as_str()));
            let start = f.start.unwrap().value;
            proptest::prop_assert_eq!(start, format!("2026-01-01T{hour:02}:00:00+00:00"));
        }
    }
}
