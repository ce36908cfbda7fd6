//! Outlook's recurrence patterns (RecurrencePattern) against RFC 5545 §3.3.10 RRULEs, both ways.
//!
//! ```text
//!   FREQ=DAILY;INTERVAL=n                      ↔ daily (0)
//!   FREQ=WEEKLY;BYDAY=MO,WE (or DAILY;BYDAY)   ↔ weekly (1), DayOfWeekMask
//!   FREQ=MONTHLY;BYMONTHDAY=d                  ↔ monthly (2), DayOfMonth
//!   FREQ=MONTHLY;BYDAY=2TU | BYDAY=..;BYSETPOS ↔ month-nth (3), Instance (5 = last)
//!   FREQ=YEARLY;BYMONTH=m;BYMONTHDAY=d         ↔ yearly (5)
//!   FREQ=YEARLY;BYMONTH=m;BYDAY=-1SU           ↔ year-nth (6)
//!   COUNT ↔ Occurrences, UNTIL ↔ PatternEndDate, neither ↔ NoEndDate
//! ```
//! Anything else (BYHOUR, BYWEEKNO, BYYEARDAY, several BYMONTHDAY or BYSETPOS values, sub-daily
//! frequencies…) has no Outlook pattern: the reading says why instead.

use chrono::{Datelike, NaiveDate, Timelike, Weekday};
use serde_json::{Value, json};

use super::caltime::{self, When};

pub const DAILY: u8 = 0;
pub const WEEKLY: u8 = 1;
pub const MONTHLY: u8 = 2;
pub const MONTH_NTH: u8 = 3;
pub const YEARLY: u8 = 5;
pub const YEAR_NTH: u8 = 6;

const DAYS: [(&str, Weekday, u8); 7] = [
    ("SU", Weekday::Sun, 1),
    ("MO", Weekday::Mon, 2),
    ("TU", Weekday::Tue, 4),
    ("WE", Weekday::Wed, 8),
    ("TH", Weekday::Thu, 16),
    ("FR", Weekday::Fri, 32),
    ("SA", Weekday::Sat, 64),
];

/// How a series ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum End {
    Never,
    Count(u32),
    Until(NaiveDate),
}

/// Outlook's RecurrencePattern.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    pub kind: u8,
    pub interval: u32,
    pub day_of_week_mask: u8,
    pub day_of_month: u32,
    /// 1-4, 5 = last.
    pub instance: u8,
    pub month_of_year: u32,
    pub start: NaiveDate,
    pub end: End,
}

pub fn weekday_of(code: &str) -> Option<Weekday> {
    DAYS.iter()
        .find(|(c, _, _)| c.eq_ignore_ascii_case(code))
        .map(|(_, w, _)| *w)
}

pub fn weekday_code(day: Weekday) -> &'static str {
    DAYS.iter()
        .find(|(_, w, _)| *w == day)
        .map_or("MO", |(c, _, _)| c)
}

fn bit(day: Weekday) -> u8 {
    DAYS.iter().find(|(_, w, _)| *w == day).map_or(0, |(_, _, b)| *b)
}

fn mask_codes(mask: u8) -> String {
    let codes: Vec<&str> = DAYS
        .iter()
        .filter(|(_, _, b)| mask & b != 0)
        .map(|(c, _, _)| *c)
        .collect();
    codes.join(",")
}

/// The pattern of `rule` (an RRULE value) for a series starting at `dtstart`.
pub fn from_rrule(rule: &str, dtstart: &When) -> Result<Pattern, String> {
    let start = dtstart.date();
    let mut freq = None;
    let mut interval = 1u32;
    let mut end = End::Never;
    let mut byday: Vec<(i32, Weekday)> = Vec::new();
    let mut bymonthday: Vec<i32> = Vec::new();
    let mut bymonth: Vec<u32> = Vec::new();
    let mut bysetpos: Vec<i32> = Vec::new();
    let no_pattern = |part: &str| format!("the rule's {part} has no Outlook recurrence pattern");
    for part in rule.trim().split(';').filter(|p| !p.is_empty()) {
        let Some((key, value)) = part.split_once('=') else {
            return Err(format!("malformed RRULE part `{part}`"));
        };
        let ints = |v: &str| -> Result<Vec<i32>, String> {
            v.split(',')
                .map(|n| {
                    n.trim()
                        .parse()
                        .map_err(|_| format!("malformed RRULE part `{part}`"))
                })
                .collect()
        };
        match key.to_ascii_uppercase().as_str() {
            "FREQ" => freq = Some(value.to_ascii_uppercase()),
            "INTERVAL" => {
                interval = value
                    .parse()
                    .map_err(|_| format!("malformed INTERVAL `{value}`"))?
            }
            "COUNT" => end = End::Count(value.parse().map_err(|_| format!("malformed COUNT `{value}`"))?),
            "UNTIL" => end = End::Until(until_date(value, dtstart)?),
            "BYDAY" => {
                for item in value.split(',') {
                    let item = item.trim();
                    let split = item.len().saturating_sub(2);
                    let code = item.get(split..).filter(|_| item.is_char_boundary(split));
                    let wd = code
                        .and_then(weekday_of)
                        .ok_or(format!("malformed BYDAY `{item}`"))?;
                    let n = match &item[..split] {
                        "" => 0,
                        n => n
                            .trim_start_matches('+')
                            .parse()
                            .map_err(|_| format!("malformed BYDAY `{item}`"))?,
                    };
                    byday.push((n, wd));
                }
            }
            "BYMONTHDAY" => bymonthday = ints(value)?,
            "BYMONTH" => bymonth = ints(value)?.into_iter().map(|m| m as u32).collect(),
            "BYSETPOS" => bysetpos = ints(value)?,
            // Outlook's first day of the week only matters for its own display.
            "WKST" => {}
            other => return Err(no_pattern(other)),
        }
    }
    if interval == 0 {
        return Err("INTERVAL=0".into());
    }
    let freq = freq.ok_or("RRULE without FREQ")?;
    let mut p = Pattern {
        kind: DAILY,
        interval,
        day_of_week_mask: 0,
        day_of_month: 0,
        instance: 0,
        month_of_year: 0,
        start,
        end,
    };
    let plain_days = byday.iter().all(|(n, _)| *n == 0);
    let mask: u8 = byday.iter().fold(0, |m, (_, wd)| m | bit(*wd));
    if bysetpos.len() > 1 {
        return Err(no_pattern("BYSETPOS list"));
    }
    // Outlook's "day 31" falls on the last day of shorter months; the rule for that is
    // BYMONTHDAY=28,29,30,31;BYSETPOS=-1 (what `to_rrule` writes).
    let mut day_or_last = None;
    if bymonthday.len() > 1 {
        let last = *bymonthday.iter().max().unwrap_or(&0);
        let contiguous = (last >= 29) && bymonthday.iter().copied().eq(28..=last);
        if !(contiguous && bysetpos == [-1] && byday.is_empty()) {
            return Err(no_pattern("BYMONTHDAY list"));
        }
        day_or_last = Some(last as u32);
        bysetpos.clear();
        bymonthday = vec![last];
    }
    if bymonth.len() > 1 {
        return Err(no_pattern("BYMONTH list"));
    }
    let setpos = bysetpos.first().copied();
    if setpos.is_some_and(|n| !(1..=4).contains(&n) && n != -1) {
        return Err(no_pattern("BYSETPOS value"));
    }
    // The nth-weekday part of a monthly or yearly rule: BYDAY=2TU, or BYDAY=MO,TU;BYSETPOS=2,
    // or BYMONTHDAY=-1 (the last day).
    let nth = |p: &mut Pattern| -> Result<bool, String> {
        let instance = |n: i32| {
            if n == -1 {
                Ok(5)
            } else if (1..=4).contains(&n) {
                Ok(n as u8)
            } else {
                Err(())
            }
        };
        if let [(n, wd)] = byday[..]
            && n != 0
            && setpos.is_none()
        {
            p.instance = instance(n).map_err(|_| no_pattern("BYDAY ordinal"))?;
            p.day_of_week_mask = bit(wd);
            return Ok(true);
        }
        if let Some(pos) = setpos
            && !byday.is_empty()
            && plain_days
            && bymonthday.is_empty()
        {
            p.instance = instance(pos).map_err(|_| no_pattern("BYSETPOS value"))?;
            p.day_of_week_mask = mask;
            return Ok(true);
        }
        if bymonthday == [-1] && byday.is_empty() && setpos.is_none() {
            p.instance = 5;
            p.day_of_week_mask = 127;
            return Ok(true);
        }
        Ok(false)
    };
    match freq.as_str() {
        "DAILY" if byday.is_empty() && bymonthday.is_empty() && bymonth.is_empty() && setpos.is_none() => {}
        "DAILY"
            if interval == 1
                && plain_days
                && bymonthday.is_empty()
                && bymonth.is_empty()
                && setpos.is_none() =>
        {
            p.kind = WEEKLY;
            p.day_of_week_mask = mask;
        }
        "WEEKLY" if plain_days && bymonthday.is_empty() && bymonth.is_empty() && setpos.is_none() => {
            p.kind = WEEKLY;
            p.day_of_week_mask = if byday.is_empty() {
                bit(start.weekday())
            } else {
                mask
            };
        }
        "MONTHLY"
            if bymonth.is_empty()
                && interval.is_multiple_of(12)
                && byday.is_empty()
                && bymonthday.is_empty()
                && setpos.is_none() =>
        {
            p.kind = YEARLY;
            p.interval = interval / 12;
            p.day_of_month = start.day();
            p.month_of_year = start.month();
        }
        "MONTHLY" if bymonth.is_empty() => {
            if nth(&mut p)? {
                p.kind = MONTH_NTH;
            } else if byday.is_empty() && setpos.is_none() {
                p.kind = MONTHLY;
                p.day_of_month = match bymonthday.first() {
                    None => start.day(),
                    Some(&d) if (1..=31).contains(&d) => d as u32,
                    Some(_) => return Err(no_pattern("BYMONTHDAY value")),
                };
                if p.day_of_month > 28 && day_or_last.is_none() {
                    return Err(skipped_days(p.day_of_month));
                }
            } else {
                return Err(no_pattern("BYDAY"));
            }
        }
        "YEARLY" => {
            p.month_of_year = bymonth.first().copied().unwrap_or(start.month());
            if nth(&mut p)? {
                p.kind = YEAR_NTH;
            } else if byday.is_empty() && setpos.is_none() {
                p.kind = YEARLY;
                p.day_of_month = match bymonthday.first() {
                    None => start.day(),
                    Some(&d) if (1..=31).contains(&d) => d as u32,
                    Some(_) => return Err(no_pattern("BYMONTHDAY value")),
                };
                if p.day_of_month > shortest(p.month_of_year) && day_or_last.is_none() {
                    return Err(skipped_days(p.day_of_month));
                }
            } else {
                return Err(no_pattern("BYDAY"));
            }
        }
        "DAILY" | "WEEKLY" | "MONTHLY" => return Err(no_pattern("combination of FREQ and BY parts")),
        other => return Err(no_pattern(&format!("FREQ={other}"))),
    }
    Ok(p)
}

/// The fewest days month `m` has.
fn shortest(m: u32) -> u32 {
    match m {
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn skipped_days(day: u32) -> String {
    format!("day {day} of the month: RFC 5545 skips months without it, Outlook moves it to their last day")
}

/// `BYMONTHDAY=d`, or for a day some months lack, the last existing day up to d.
fn month_day(d: u32, shortest: u32) -> String {
    if d <= shortest {
        return format!(";BYMONTHDAY={d}");
    }
    let days: Vec<String> = (28..=d).map(|n| n.to_string()).collect();
    format!(";BYMONTHDAY={};BYSETPOS=-1", days.join(","))
}

/// UNTIL as a local date of the series: a UTC date-time is read in the start's zone.
fn until_date(value: &str, dtstart: &When) -> Result<NaiveDate, String> {
    let value = value.trim();
    if let Ok(d) = NaiveDate::parse_from_str(value, "%Y%m%d") {
        return Ok(d);
    }
    let utc = value.ends_with(['Z', 'z']);
    let local = chrono::NaiveDateTime::parse_from_str(value.trim_end_matches(['Z', 'z']), "%Y%m%dT%H%M%S")
        .map_err(|_| format!("malformed UNTIL `{value}`"))?;
    Ok(match (utc, dtstart) {
        (true, When::Time(_, tz)) => caltime::utc_to_local(local.and_utc(), *tz).date(),
        // An all-day series with a UTC UNTIL (Outlook writes the local midnight in UTC): the
        // date of the nearest midnight.
        (true, When::Date(_)) if local.hour() >= 12 => local.date() + chrono::Duration::days(1),
        _ => local.date(),
    })
}

/// A rewritten rule keeps the parts of the old one no pattern carries (WKST, X- parts), so
/// that what other clients set survives.
pub fn keep_parts(old: Option<&str>, mut new: String) -> String {
    for part in old.unwrap_or("").split(';') {
        let key = part.split('=').next().unwrap_or("").to_ascii_uppercase();
        if key == "WKST" || key.starts_with("X-") {
            new.push(';');
            new.push_str(part);
        }
    }
    new
}

/// The RRULE value for `p`, for a series whose DTSTART is `dtstart` (RFC 5545 §3.3.10: UNTIL
/// has DTSTART's value type, in UTC when DTSTART has a zone).
pub fn to_rrule(p: &Pattern, dtstart: &When) -> String {
    let freq = match p.kind {
        DAILY => "DAILY",
        WEEKLY => "WEEKLY",
        MONTHLY | MONTH_NTH => "MONTHLY",
        _ => "YEARLY",
    };
    let mut out = format!("FREQ={freq}");
    if p.interval > 1 {
        out.push_str(&format!(";INTERVAL={}", p.interval));
    }
    match p.end {
        End::Never => {}
        End::Count(n) => out.push_str(&format!(";COUNT={n}")),
        End::Until(d) => {
            let until = match dtstart {
                When::Date(_) => d.format("%Y%m%d").to_string(),
                When::Time(t, tz) if tz.is_floating() => {
                    d.and_time(t.time()).format("%Y%m%dT%H%M%S").to_string()
                }
                When::Time(t, tz) => caltime::fmt_utc(&caltime::local_to_utc(d.and_time(t.time()), *tz)),
            };
            out.push_str(&format!(";UNTIL={until}"));
        }
    }
    let instance = if p.instance >= 5 { -1 } else { p.instance as i32 };
    let nth = |out: &mut String| {
        if p.day_of_week_mask.count_ones() == 1 {
            out.push_str(&format!(";BYDAY={instance}{}", mask_codes(p.day_of_week_mask)));
        } else {
            out.push_str(&format!(
                ";BYDAY={};BYSETPOS={instance}",
                mask_codes(p.day_of_week_mask)
            ));
        }
    };
    match p.kind {
        WEEKLY => out.push_str(&format!(";BYDAY={}", mask_codes(p.day_of_week_mask))),
        MONTHLY => out.push_str(&month_day(p.day_of_month, 28)),
        MONTH_NTH => nth(&mut out),
        YEARLY => {
            out.push_str(&format!(";BYMONTH={}", p.month_of_year));
            out.push_str(&month_day(p.day_of_month, shortest(p.month_of_year)));
        }
        YEAR_NTH => {
            out.push_str(&format!(";BYMONTH={}", p.month_of_year));
            nth(&mut out);
        }
        _ => {}
    }
    out
}

/// The field-set form (`Recurrence`), with only the keys the pattern's type uses.
pub fn to_json(p: &Pattern) -> Value {
    let mut v = json!({
        "RecurrenceType": p.kind,
        "Interval": p.interval,
        "PatternStartDate": p.start.format("%Y-%m-%d").to_string(),
        "NoEndDate": p.end == End::Never,
    });
    let o = v.as_object_mut().expect("an object");
    if matches!(p.kind, WEEKLY | MONTH_NTH | YEAR_NTH) {
        o.insert("DayOfWeekMask".into(), p.day_of_week_mask.into());
    }
    if matches!(p.kind, MONTHLY | YEARLY) {
        o.insert("DayOfMonth".into(), p.day_of_month.into());
    }
    if matches!(p.kind, MONTH_NTH | YEAR_NTH) {
        o.insert("Instance".into(), p.instance.into());
    }
    if matches!(p.kind, YEARLY | YEAR_NTH) {
        o.insert("MonthOfYear".into(), p.month_of_year.into());
    }
    match p.end {
        End::Count(n) => {
            o.insert("Occurrences".into(), n.into());
        }
        End::Until(d) => {
            o.insert("PatternEndDate".into(), d.format("%Y-%m-%d").to_string().into());
        }
        End::Never => {}
    }
    v
}

/// Reads a `Recurrence` object; `start` is the series' start date (PatternStartDate's default).
pub fn from_json(v: &Value, start: NaiveDate) -> Result<Pattern, String> {
    let o = v.as_object().ok_or("Recurrence must be an object or null")?;
    let int = |k: &str| o.get(k).and_then(Value::as_u64);
    let kind = int("RecurrenceType").ok_or("RecurrenceType is required")? as u8;
    if ![DAILY, WEEKLY, MONTHLY, MONTH_NTH, YEARLY, YEAR_NTH].contains(&kind) {
        return Err(format!("RecurrenceType {kind} is not 0, 1, 2, 3, 5 or 6"));
    }
    let start = match o.get("PatternStartDate").and_then(Value::as_str) {
        Some(s) => caltime::parse_field_date(s)?,
        None => start,
    };
    let end = if let Some(n) = int("Occurrences") {
        End::Count(n as u32)
    } else if let Some(d) = o.get("PatternEndDate").and_then(Value::as_str) {
        End::Until(caltime::parse_field_date(d)?)
    } else {
        End::Never
    };
    let p = Pattern {
        kind,
        interval: int("Interval").unwrap_or(1).max(1) as u32,
        day_of_week_mask: int("DayOfWeekMask").unwrap_or(if kind == WEEKLY {
            bit(start.weekday()) as u64
        } else {
            0
        }) as u8
            & 127,
        day_of_month: int("DayOfMonth").unwrap_or(start.day() as u64) as u32,
        instance: int("Instance").unwrap_or(1).clamp(1, 5) as u8,
        month_of_year: int("MonthOfYear").unwrap_or(start.month() as u64) as u32,
        start,
        end,
    };
    if matches!(kind, WEEKLY | MONTH_NTH | YEAR_NTH) && p.day_of_week_mask == 0 {
        return Err("DayOfWeekMask names no day".into());
    }
    if !(1..=31).contains(&p.day_of_month) || !(1..=12).contains(&p.month_of_year) {
        return Err("DayOfMonth or MonthOfYear out of range".into());
    }
    Ok(p)
}
