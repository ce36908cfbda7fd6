//! Recurrence expansion of one calendar object inside a time range: RRULE, RDATE and EXDATE
//! (RFC 5545 §3.8.5), overrides by RECURRENCE-ID including RANGE=THISANDFUTURE (§3.8.4.4), each
//! value read in its own zone.
//!
//! calcard iterates one rule at a time, in floating time (its iterator is dateutil's algorithm);
//! everything around it is done here, because calcard's own `expand_dates` drops an occurrence that
//! falls on a UTC UNTIL, keeps only the last RRULE, misses THISANDFUTURE and matches an all-day
//! series' overrides only when they are dates. Only the window is generated: a rule stops past the
//! window's end, and a DAILY/WEEKLY/HOURLY… rule without COUNT starts from a whole number of its
//! periods before the window's start instead of from DTSTART.
//!
//! ```text
//!   DTSTART ─┬─ RRULE… (calcard, floating, UNTIL in DTSTART's zone, capped at the window)
//!            ├─ RDATE…                                 ─► candidates (local time of DTSTART's zone)
//!            └─ DTSTART itself
//!   candidates − EXDATE − overridden ─► shifted by the latest THISANDFUTURE before them
//!   + every override in the window ─► occurrences
//! ```

use std::collections::{BTreeSet, HashMap, HashSet};

use calcard::common::PartialDateTime;
use calcard::common::timezone::Tz;
use calcard::icalendar::timezone::TzResolver;
use calcard::icalendar::{
    ICalendar, ICalendarComponent, ICalendarComponentType, ICalendarEntry, ICalendarParameterName,
    ICalendarPeriod, ICalendarProperty, ICalendarRecurrenceRule, ICalendarValue,
};
use calcard::{Entry, Parser};
use chrono::{
    DateTime, Datelike, LocalResult, NaiveDate, NaiveDateTime, Offset, TimeDelta, TimeZone, Timelike, Utc,
};

/// A DATE or DATE-TIME value with the zone it is read in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stamp {
    /// The wall-clock time as written (midnight for a date; UTC for a `Z` value).
    pub local: NaiveDateTime,
    /// A DATE value (RFC 5545 §3.3.4).
    pub date: bool,
    /// The zone (UTC for dates, `Z` values and floating times).
    pub tz: Tz,
}

impl Stamp {
    pub fn instant(&self) -> DateTime<Utc> {
        if self.date {
            self.local.and_utc()
        } else {
            to_utc(self.tz, self.local)
        }
    }

    /// The wall-clock time in `tz` (a date stays as written).
    fn local_in(&self, tz: Tz) -> NaiveDateTime {
        if self.date {
            self.local
        } else {
            self.instant().with_timezone(&tz).naive_local()
        }
    }
}

/// A local time in `tz` as an instant. RFC 5545 §3.3.5: a time in a DST gap is read with the
/// offset in force before the gap; an ambiguous one as the first of the two.
pub fn to_utc(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.with_timezone(&Utc),
        LocalResult::None => {
            let before = tz
                .from_local_datetime(&(local - TimeDelta::hours(3)))
                .earliest()
                .map(|t| t.offset().fix())
                .unwrap_or_else(|| chrono::FixedOffset::east_opt(0).expect("zero offset"));
            (local - before).and_utc()
        }
    }
}

/// The zone a TZID names: the object's own VTIMEZONE first, then the name itself
/// (`formats::zones`: IANA, Windows, display and prefixed names).
pub fn zone(resolver: &TzResolver<&str>, tzid: &str) -> Option<Tz> {
    resolver.resolve(tzid).or_else(|| super::zones::resolve(tzid))
}

/// The warning an unknown TZID gets: its times are read as floating (UTC), not refused.
pub fn unknown_zone(tzid: &str) -> String {
    format!(
        "TZID {tzid:?} has no VTIMEZONE and names no known zone: its times are read as floating time (RFC 5545 §3.2.19)"
    )
}

/// A property's DATE/DATE-TIME value (`value` picks one of several, as in RDATE/EXDATE).
fn stamp_of(
    entry: &ICalendarEntry,
    dt: &PartialDateTime,
    resolver: &TzResolver<&str>,
    warnings: &mut Vec<String>,
) -> Option<Stamp> {
    if !dt.has_date() {
        return None;
    }
    let r = dt.to_date_time()?;
    if !dt.has_time() {
        return Some(Stamp {
            local: r.date_time.date().and_time(chrono::NaiveTime::MIN),
            date: true,
            tz: Tz::UTC,
        });
    }
    if let Some(offset) = r.offset {
        return Some(Stamp {
            local: r.date_time - offset,
            date: false,
            tz: Tz::UTC,
        });
    }
    let tz = match entry.tz_id() {
        Some(tzid) => zone(resolver, tzid).unwrap_or_else(|| {
            let w = unknown_zone(tzid);
            if !warnings.contains(&w) {
                warnings.push(w);
            }
            Tz::UTC
        }),
        None => Tz::UTC,
    };
    Some(Stamp {
        local: r.date_time,
        date: false,
        tz,
    })
}

/// The first DATE/DATE-TIME value of `prop` in `comp`.
pub fn stamp(
    comp: &ICalendarComponent,
    prop: ICalendarProperty,
    resolver: &TzResolver<&str>,
    warnings: &mut Vec<String>,
) -> Option<Stamp> {
    let entry = comp.property(&prop)?;
    match entry.values.first()? {
        ICalendarValue::PartialDateTime(dt) => stamp_of(entry, dt, resolver, warnings),
        _ => None,
    }
}

/// How long an occurrence lasts: whole days for all-day values (nominal, RFC 5545 §3.3.6), exact
/// time otherwise.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Length {
    Days(i64),
    Exact(TimeDelta),
}

/// One occurrence: where it comes from and when it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Occurrence {
    /// Index of the component in `ICalendar::components` whose properties it shows.
    pub comp: usize,
    pub start_utc: DateTime<Utc>,
    pub end_utc: DateTime<Utc>,
    /// The zone its times are shown in.
    pub tz: Tz,
    pub all_day: bool,
    /// Produced by a RECURRENCE-ID component (itself, or a THISANDFUTURE one shifting it).
    pub overridden: bool,
}

/// What one component says about its own timing.
struct Timing {
    start: Stamp,
    length: Length,
}

fn timing(
    comp: &ICalendarComponent,
    resolver: &TzResolver<&str>,
    warnings: &mut Vec<String>,
) -> Option<Timing> {
    let todo = comp.component_type == ICalendarComponentType::VTodo;
    let dtstart = stamp(comp, ICalendarProperty::Dtstart, resolver, warnings);
    let due = if todo {
        stamp(comp, ICalendarProperty::Due, resolver, warnings)
    } else {
        None
    };
    let start = dtstart.or(due).or_else(|| {
        // An override without DTSTART keeps its RECURRENCE-ID's time.
        stamp(comp, ICalendarProperty::RecurrenceId, resolver, warnings)
    })?;
    let end = if todo {
        due.filter(|_| dtstart.is_some())
    } else {
        stamp(comp, ICalendarProperty::Dtend, resolver, warnings)
    };
    let duration = comp
        .property(&ICalendarProperty::Duration)
        .and_then(|e| e.values.first())
        .and_then(|v| match v {
            ICalendarValue::Duration(d) => d.to_time_delta(),
            _ => None,
        });
    let length = match (end, duration) {
        (Some(end), _) if start.date && end.date => {
            Length::Days((end.local.date() - start.local.date()).num_days())
        }
        (Some(end), _) => Length::Exact(end.instant() - start.instant()),
        (None, Some(d)) if start.date && d.num_seconds() % 86_400 == 0 => Length::Days(d.num_days()),
        (None, Some(d)) => Length::Exact(d),
        // RFC 5545 §3.6.1: a date lasts one day, a date-time without end no time at all.
        (None, None) if start.date && comp.component_type == ICalendarComponentType::VEvent => {
            Length::Days(1)
        }
        (None, None) => Length::Exact(TimeDelta::zero()),
    };
    let length = match length {
        Length::Days(d) => Length::Days(d.max(0)),
        Length::Exact(d) => Length::Exact(d.max(TimeDelta::zero())),
    };
    Some(Timing { start, length })
}

/// An occurrence starting at `local` in `tz`.
fn occurrence(
    comp: usize,
    local: NaiveDateTime,
    tz: Tz,
    all_day: bool,
    length: Length,
    overridden: bool,
) -> Occurrence {
    let start_utc = if all_day {
        local.and_utc()
    } else {
        to_utc(tz, local)
    };
    // A length past the calendar's end (DURATION:P4000000000W) ends at the end of time.
    let days = |d: i64| TimeDelta::try_days(d).unwrap_or(TimeDelta::MAX);
    let end_utc = match length {
        Length::Days(d) if all_day => local.checked_add_signed(days(d)).map(|t| t.and_utc()),
        Length::Days(d) => start_utc.checked_add_signed(days(d)),
        Length::Exact(d) => start_utc.checked_add_signed(d),
    }
    .unwrap_or(DateTime::<Utc>::MAX_UTC);
    Occurrence {
        comp,
        start_utc,
        end_utc,
        tz,
        all_day,
        overridden,
    }
}

/// RFC 4791 §9.9: does the occurrence overlap `[from, to)`?
fn overlaps(o: &Occurrence, from: DateTime<Utc>, to: DateTime<Utc>) -> bool {
    if o.end_utc > o.start_utc {
        o.start_utc < to && o.end_utc > from
    } else {
        o.start_utc >= from && o.start_utc < to
    }
}

fn is_item(t: &ICalendarComponentType) -> bool {
    matches!(
        t,
        ICalendarComponentType::VEvent | ICalendarComponentType::VTodo | ICalendarComponentType::VJournal
    )
}

/// Every occurrence of the objects in `ical` that overlaps `[from, to)`, sorted by start.
/// `limit` bounds what one rule may generate (an endless `FREQ=SECONDLY` must not stall a read).
pub fn expand(ical: &ICalendar, from: DateTime<Utc>, to: DateTime<Utc>, limit: usize) -> Vec<Occurrence> {
    let resolver = ical.build_tz_resolver();
    let mut ignored = Vec::new();
    // RFC 4791 §4.1 allows one UID per resource; group anyway, in order of appearance.
    let mut groups: Vec<(Option<&str>, Vec<usize>)> = Vec::new();
    for (i, comp) in ical.components.iter().enumerate() {
        if !is_item(&comp.component_type) {
            continue;
        }
        let uid = comp.uid();
        match groups.iter_mut().find(|(u, _)| *u == uid) {
            Some((_, members)) => members.push(i),
            None => groups.push((uid, vec![i])),
        }
    }
    let mut out = Vec::new();
    for (_, members) in groups {
        let (overrides, masters): (Vec<usize>, Vec<usize>) = members
            .into_iter()
            .partition(|i| ical.components[*i].is_recurrence_override());
        match masters.first() {
            Some(&master) => series(ical, master, &overrides, &resolver, from, to, limit, &mut out),
            None => {
                // Overrides without their series (an invitation to one occurrence): each stands alone.
                for i in overrides {
                    if let Some(t) = timing(&ical.components[i], &resolver, &mut ignored) {
                        let o = occurrence(i, t.start.local, t.start.tz, t.start.date, t.length, true);
                        if overlaps(&o, from, to) {
                            out.push(o);
                        }
                    }
                }
            }
        }
    }
    out.sort_by_key(|o| (o.start_utc, o.end_utc));
    out
}

/// An override's identity: a local time of the series' zone, or a date for all-day series and
/// date-valued RECURRENCE-IDs (Outlook writes an all-day series' overrides as
/// `RECURRENCE-ID;TZID=…:20260310T000000`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    At(NaiveDateTime),
    On(NaiveDate),
}

fn key_of(s: &Stamp, series_tz: Tz, all_day_series: bool) -> Key {
    if all_day_series || s.date {
        Key::On(s.local.date())
    } else {
        Key::At(s.local_in(series_tz))
    }
}

fn matches(keys: &HashMap<Key, usize>, local: NaiveDateTime) -> Option<usize> {
    keys.get(&Key::At(local))
        .or_else(|| keys.get(&Key::On(local.date())))
        .copied()
}

/// A THISANDFUTURE override: occurrences after `from` move by `shift` and take its length.
struct Future {
    comp: usize,
    from: NaiveDateTime,
    shift: TimeDelta,
    length: Length,
}

#[allow(clippy::too_many_arguments)]
fn series(
    ical: &ICalendar,
    master: usize,
    overrides: &[usize],
    resolver: &TzResolver<&str>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: usize,
    out: &mut Vec<Occurrence>,
) {
    let mut ignored = Vec::new();
    let comp = &ical.components[master];
    let Some(t) = timing(comp, resolver, &mut ignored) else {
        return;
    };
    let (tz, all_day) = (t.start.tz, t.start.date);

    let excluded = exdates(comp, tz, all_day, resolver);
    let is_excluded = |local: NaiveDateTime| {
        excluded.contains(&Key::At(local)) || excluded.contains(&Key::On(local.date()))
    };

    // Overrides by what they replace; THISANDFUTURE ones also shift what follows.
    let mut replaced: HashMap<Key, usize> = HashMap::new();
    let mut future: Vec<Future> = Vec::new();
    for &i in overrides {
        let o = &ical.components[i];
        let Some(entry) = o.property(&ICalendarProperty::RecurrenceId) else {
            continue;
        };
        let Some(rid) = stamp(o, ICalendarProperty::RecurrenceId, resolver, &mut ignored) else {
            continue;
        };
        let key = key_of(&rid, tz, all_day);
        replaced.insert(key, i);
        if excluded.contains(&key) {
            // An EXDATE removes the occurrence, moved or not.
            continue;
        }
        let Some(ot) = timing(o, resolver, &mut ignored) else {
            continue;
        };
        let ooc = occurrence(i, ot.start.local, ot.start.tz, ot.start.date, ot.length, true);
        if entry
            .params
            .iter()
            .any(|p| p.name == ICalendarParameterName::Range)
        {
            let rid_local = match key {
                Key::At(at) => at,
                Key::On(on) => on.and_time(chrono::NaiveTime::MIN),
            };
            let new_start = if all_day {
                ot.start.local
            } else {
                ot.start.local_in(tz)
            };
            future.push(Future {
                comp: i,
                from: rid_local,
                shift: new_start - rid_local,
                length: ot.length,
            });
        }
        if overlaps(&ooc, from, to) {
            out.push(ooc);
        }
    }
    future.sort_by_key(|f| f.from);

    // The window in the series' local time, widened by what can move an occurrence into it.
    let longest = match t.length {
        Length::Days(d) => TimeDelta::try_days(d).unwrap_or(TimeDelta::MAX),
        Length::Exact(d) => d,
    };
    let reach = future
        .iter()
        .map(|f| f.shift.abs())
        .max()
        .unwrap_or_default()
        .checked_add(&TimeDelta::days(2))
        .and_then(|r| r.checked_add(&longest))
        .unwrap_or(TimeDelta::MAX);
    let window_start = from
        .naive_utc()
        .checked_sub_signed(reach)
        .unwrap_or(NaiveDateTime::MIN);
    // iCalendar dates end with year 9999 (RFC 5545 §3.3.4): an open range stops there.
    let last_day = NaiveDate::from_ymd_opt(9999, 12, 31)
        .and_then(|d| d.and_hms_opt(23, 59, 59))
        .unwrap_or(NaiveDateTime::MAX);
    let window_end = to
        .naive_utc()
        .checked_add_signed(reach)
        .unwrap_or(NaiveDateTime::MAX)
        .min(last_day);

    // Candidates: local start → a length of their own (RDATE periods).
    let mut candidates: Vec<(NaiveDateTime, Option<Length>)> = Vec::new();
    let mut last_until: Option<NaiveDateTime> = None;
    let mut unbounded = false;
    for entry in comp.entries.iter().filter(|e| e.name == ICalendarProperty::Rrule) {
        let Some(ICalendarValue::RecurrenceRule(rule)) = entry.values.first() else {
            continue;
        };
        let until = rule.until.as_ref().and_then(|u| until_local(u, tz, all_day));
        match until {
            Some(u) => last_until = Some(last_until.map_or(u, |l| l.max(u))),
            None => unbounded = true,
        }
        candidates.extend(
            rule_starts(rule, t.start.local, until, window_start, window_end, limit)
                .into_iter()
                .map(|s| (s, None)),
        );
    }
    for entry in comp.entries.iter().filter(|e| e.name == ICalendarProperty::Rdate) {
        for value in &entry.values {
            let (start, length) = match value {
                ICalendarValue::PartialDateTime(dt) => (dt.as_ref(), None),
                ICalendarValue::Period(ICalendarPeriod::Range { start, end }) => (start, Some(end)),
                ICalendarValue::Period(ICalendarPeriod::Duration { start, duration }) => {
                    let Some(s) = stamp_of(entry, start, resolver, &mut ignored) else {
                        continue;
                    };
                    let d = duration.to_time_delta().unwrap_or_default();
                    candidates.push((s.local_in(tz), Some(Length::Exact(d))));
                    continue;
                }
                _ => continue,
            };
            let Some(s) = stamp_of(entry, start, resolver, &mut ignored) else {
                continue;
            };
            let length = length
                .and_then(|end| stamp_of(entry, end, resolver, &mut ignored))
                .map(|e| Length::Exact(e.instant() - s.instant()));
            let local = if all_day { s.local } else { s.local_in(tz) };
            candidates.push((local, length));
        }
    }
    // DTSTART is the first instance (RFC 5545 §3.8.5.3) unless every rule ended before it.
    if unbounded || last_until.is_none_or(|u| t.start.local <= u) {
        candidates.push((t.start.local, None));
    }
    candidates.sort_by_key(|(s, _)| *s);
    candidates.dedup_by_key(|(s, _)| *s);

    for (local, own) in candidates {
        if local < window_start
            || local > window_end
            || is_excluded(local)
            || matches(&replaced, local).is_some()
        {
            continue;
        }
        let shifted = future.iter().rev().find(|f| f.from < local);
        let o = match shifted {
            Some(f) => occurrence(
                f.comp,
                local.checked_add_signed(f.shift).unwrap_or(local),
                tz,
                all_day,
                f.length,
                true,
            ),
            None => occurrence(master, local, tz, all_day, own.unwrap_or(t.length), false),
        };
        if overlaps(&o, from, to) {
            out.push(o);
        }
    }
}

fn exdates(comp: &ICalendarComponent, tz: Tz, all_day: bool, resolver: &TzResolver<&str>) -> HashSet<Key> {
    let mut ignored = Vec::new();
    let mut out = HashSet::new();
    for entry in comp
        .entries
        .iter()
        .filter(|e| e.name == ICalendarProperty::Exdate)
    {
        for value in &entry.values {
            if let ICalendarValue::PartialDateTime(dt) = value
                && let Some(s) = stamp_of(entry, dt, resolver, &mut ignored)
            {
                out.insert(key_of(&s, tz, all_day));
            }
        }
    }
    out
}

/// UNTIL as a local time of the series' zone (RFC 5545 §3.3.10: UTC when DTSTART has a zone, a
/// date when DTSTART is one). A date UNTIL of a timed series ends with that day.
fn until_local(until: &PartialDateTime, tz: Tz, all_day: bool) -> Option<NaiveDateTime> {
    let r = until.to_date_time()?;
    if !until.has_time() {
        let day = r.date_time.date();
        return Some(if all_day {
            day.and_time(chrono::NaiveTime::MIN)
        } else {
            day.and_hms_opt(23, 59, 59)?
        });
    }
    let local = match r.offset {
        Some(offset) => (r.date_time - offset).and_utc().with_timezone(&tz).naive_local(),
        None => r.date_time,
    };
    Some(if all_day {
        local.date().and_time(chrono::NaiveTime::MIN)
    } else {
        local
    })
}

/// The period a rule steps by, when starting later by whole periods yields the same occurrences
/// (no COUNT; BYxxx parts are either absolute or, for WEEKLY, relative to the week).
fn period(rule: &ICalendarRecurrenceRule) -> Option<TimeDelta> {
    use calcard::icalendar::ICalendarFrequency as F;
    if rule.count.is_some() {
        return None;
    }
    let unit = match rule.freq {
        F::Weekly => TimeDelta::weeks(1),
        F::Daily => TimeDelta::days(1),
        F::Hourly => TimeDelta::hours(1),
        F::Minutely => TimeDelta::minutes(1),
        F::Secondly => TimeDelta::seconds(1),
        _ => return None,
    };
    Some(unit * i32::from(rule.interval.unwrap_or(1).max(1)))
}

/// The starts one rule generates from `dtstart` (local, floating) up to `until` and the window's
/// end, at most `limit` of them; DTSTART itself only if the rule matches it.
fn rule_starts(
    rule: &ICalendarRecurrenceRule,
    dtstart: NaiveDateTime,
    until: Option<NaiveDateTime>,
    window_start: NaiveDateTime,
    window_end: NaiveDateTime,
    limit: usize,
) -> Vec<NaiveDateTime> {
    let mut rule = rule.clone();
    let mut anchor = dtstart;
    if let Some(step) = period(&rule)
        && window_start > dtstart + step
        && step.num_seconds() > 0
    {
        let steps = (window_start - dtstart).num_seconds() / step.num_seconds();
        anchor = dtstart + TimeDelta::seconds(steps * step.num_seconds());
    }
    // With COUNT too: counting starts at DTSTART (the anchor is not moved), so stopping at the
    // window's end drops only occurrences after it.
    let stop = Some(until.map_or(window_end, |u| u.min(window_end)));
    if stop.is_some_and(|s| s < anchor) {
        return Vec::new();
    }
    // Past year 9999 UNTIL cannot be written; `limit` bounds the rule instead.
    rule.until = stop.filter(|s| s.year() <= 9999).map(partial);
    let text = format!(
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\nDTSTART:{}\r\nRRULE:{rule}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        anchor.format("%Y%m%dT%H%M%S")
    );
    let Entry::ICalendar(synthetic) = Parser::new(&text).entry() else {
        return Vec::new();
    };
    let expanded = synthetic.expand_dates(Tz::Floating, limit);
    let starts: BTreeSet<NaiveDateTime> = expanded
        .events
        .iter()
        .map(|e| e.start.naive_local())
        .filter(|s| *s >= anchor && until.is_none_or(|u| *s <= u))
        .collect();
    starts.into_iter().collect()
}

fn partial(t: NaiveDateTime) -> PartialDateTime {
    PartialDateTime {
        year: Some(t.year() as u16),
        month: Some(t.month() as u8),
        day: Some(t.day() as u8),
        hour: Some(t.hour() as u8),
        minute: Some(t.minute() as u8),
        second: Some(t.second() as u8),
        ..PartialDateTime::default()
    }
}

/// Parses iCalendar text for `expand` (unfolded UTF-8).
pub fn parse_text(text: &str) -> Option<ICalendar> {
    match Parser::new(text).entry() {
        Entry::ICalendar(ical) => Some(ical),
        _ => None,
    }
}

#[cfg(test)]
#[path = "expand_tests.rs"]
mod tests;
