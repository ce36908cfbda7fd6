//! VTIMEZONE rules (RFC 5545 §3.6.5) both ways: a VTIMEZONE whose TZID names no known zone
//! (Outlook's "Customized Time Zone") is matched by its offsets and transitions against the IANA
//! zones for the event's year, falling back to the fixed offset in force; and a minimal VTIMEZONE
//! is generated from chrono-tz for the years an object needs.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::OnceLock;

use calcard::common::timezone::Tz;
use chrono::{
    DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveDateTime, Offset, TimeZone, Utc, Weekday,
};
use chrono_tz::{OffsetComponents, OffsetName};

use crate::formats::lines::{Component, Doc};
use crate::formats::zones;

/// One STANDARD or DAYLIGHT observance.
#[derive(Debug)]
struct Observance {
    start: NaiveDateTime,
    from: i32,
    to: i32,
    rule: Option<YearRule>,
    rdates: Vec<NaiveDateTime>,
}

/// `FREQ=YEARLY;BYMONTH=m;BYDAY=nWD` (or `BYMONTHDAY=d`), the only rules time zones use.
#[derive(Debug)]
struct YearRule {
    month: u32,
    day: RuleDay,
    until: Option<DateTime<Utc>>,
}

#[derive(Debug)]
enum RuleDay {
    Nth(i32, Weekday),
    MonthDay(u32),
    Same,
}

/// The zone a VTIMEZONE describes, judged in the year of `local`.
pub fn resolve_vtimezone(doc: &Doc, comp: Component, local: NaiveDateTime) -> Tz {
    thread_local! {
        /// Matches by (VTIMEZONE text, year): a calendar repeats the same VTIMEZONE in every object.
        static MATCHED: RefCell<HashMap<(String, i32), Tz>> = RefCell::new(HashMap::new());
    }
    let text: Vec<&str> = (comp.begin..=comp.end)
        .map(|i| doc.lines[i].unfolded.as_str())
        .collect();
    let key = (text.join("\n"), local.year());
    if let Some(tz) = MATCHED.with(|m| m.borrow().get(&key).copied()) {
        return tz;
    }
    let tz = match_rules(doc, comp, local);
    if let Tz::Tz(_) = tz {
        MATCHED.with(|m| {
            let mut m = m.borrow_mut();
            if m.len() >= 256 {
                m.clear();
            }
            m.insert(key, tz);
        });
    }
    tz
}

fn match_rules(doc: &Doc, comp: Component, local: NaiveDateTime) -> Tz {
    let observances = read_observances(doc, comp);
    if observances.is_empty() {
        return Tz::Floating;
    }
    let year = local.year();
    let timeline = timeline(&observances, year);
    let mut probes: Vec<DateTime<Utc>> = [1, 4, 7, 10]
        .iter()
        .filter_map(|&m| NaiveDate::from_ymd_opt(year, m, 15))
        .map(|d| d.and_hms_opt(12, 0, 0).unwrap_or_default().and_utc())
        .collect();
    for (at, _) in timeline.iter().filter(|(at, _)| at.year() == year) {
        probes.push(*at - Duration::minutes(1));
        probes.push(*at);
    }
    let matches = |tz: &chrono_tz::Tz| {
        probes.iter().all(|p| {
            tz.offset_from_utc_datetime(&p.naive_utc())
                .fix()
                .local_minus_utc()
                == offset_at(&timeline, *p)
        })
    };
    let hint = doc
        .first_prop(comp, "X-MICROSOFT-CDO-TZID")
        .and_then(|l| Tz::from_ms_cdo_zone_id(l.value().trim()));
    if let Some(Tz::Tz(tz)) = hint
        && matches(&tz)
    {
        return Tz::Tz(tz);
    }
    if let Some(tz) = candidates().iter().find(|tz| matches(tz)) {
        return Tz::Tz(*tz);
    }
    if let Some(tz) = chrono_tz::TZ_VARIANTS.iter().find(|tz| matches(tz)) {
        return Tz::Tz(*tz);
    }
    let guess = local.and_utc() - Duration::seconds(observances[0].to as i64);
    let offset = offset_at(&timeline, guess);
    FixedOffset::east_opt(offset)
        .map(Tz::Fixed)
        .unwrap_or(Tz::Floating)
}

/// The IANA zones that are CLDR's default for a Windows zone ID: what Outlook can name.
fn candidates() -> &'static [chrono_tz::Tz] {
    static LIST: OnceLock<Vec<chrono_tz::Tz>> = OnceLock::new();
    LIST.get_or_init(|| {
        chrono_tz::TZ_VARIANTS
            .iter()
            .filter(|tz| {
                zones::windows_of_iana(tz.name())
                    .and_then(zones::iana_of_windows)
                    .is_some_and(|iana| iana == tz.name())
            })
            .copied()
            .collect()
    })
}

fn read_observances(doc: &Doc, comp: Component) -> Vec<Observance> {
    let mut out = Vec::new();
    for (name, sub) in doc.components() {
        if sub.begin <= comp.begin || sub.end >= comp.end || !(name == "STANDARD" || name == "DAYLIGHT") {
            continue;
        }
        let value = |prop: &str| doc.first_prop(sub, prop).map(|l| l.value().trim().to_owned());
        let (Some(start), Some(from), Some(to)) = (
            value("DTSTART").and_then(|v| NaiveDateTime::parse_from_str(&v, "%Y%m%dT%H%M%S").ok()),
            value("TZOFFSETFROM").and_then(|v| parse_offset(&v)),
            value("TZOFFSETTO").and_then(|v| parse_offset(&v)),
        ) else {
            continue;
        };
        let rule = value("RRULE").and_then(|r| parse_rule(&r));
        let rdates = doc
            .find_prop(sub, "RDATE")
            .iter()
            .flat_map(|&i| {
                doc.lines[i]
                    .value()
                    .split(',')
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .filter_map(|v| NaiveDateTime::parse_from_str(v.trim(), "%Y%m%dT%H%M%S").ok())
            .collect();
        out.push(Observance {
            start,
            from,
            to,
            rule,
            rdates,
        });
    }
    out
}

/// `+0100`, `-0530`, `+013000` → seconds east of UTC.
fn parse_offset(text: &str) -> Option<i32> {
    let (sign, digits) = match text.as_bytes().first()? {
        b'-' => (-1, &text[1..]),
        b'+' => (1, &text[1..]),
        _ => (1, text),
    };
    if !(digits.len() == 4 || digits.len() == 6) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let h: i32 = digits[0..2].parse().ok()?;
    let m: i32 = digits[2..4].parse().ok()?;
    let s: i32 = digits.get(4..6).and_then(|s| s.parse().ok()).unwrap_or(0);
    Some(sign * (h * 3600 + m * 60 + s))
}

fn parse_rule(rule: &str) -> Option<YearRule> {
    let mut month = None;
    let mut day = RuleDay::Same;
    let mut until = None;
    for part in rule.split(';') {
        let (k, v) = part.split_once('=')?;
        match k.to_ascii_uppercase().as_str() {
            "FREQ" if !v.eq_ignore_ascii_case("YEARLY") => return None,
            "BYMONTH" => month = v.parse().ok(),
            "BYMONTHDAY" => day = RuleDay::MonthDay(v.parse().ok()?),
            "BYDAY" => {
                let v = v.trim();
                let at = v.len().checked_sub(2).filter(|&i| v.is_char_boundary(i))?;
                let (n, wd) = v.split_at(at);
                let n = if n.is_empty() {
                    1
                } else {
                    n.trim_start_matches('+').parse().ok()?
                };
                day = RuleDay::Nth(n, super::recurrence::weekday_of(wd)?);
            }
            "UNTIL" => {
                until = NaiveDateTime::parse_from_str(v.trim_end_matches('Z'), "%Y%m%dT%H%M%S")
                    .ok()
                    .map(|t| t.and_utc())
            }
            _ => {}
        }
    }
    Some(YearRule {
        month: month.unwrap_or(0),
        day,
        until,
    })
}

/// The day of `month` in `year` that is the `n`th (negative: from the end) `weekday`.
pub fn nth_weekday(year: i32, month: u32, n: i32, weekday: Weekday) -> Option<NaiveDate> {
    if n > 0 {
        let first = NaiveDate::from_ymd_opt(year, month, 1)?;
        let shift = (7 + weekday.num_days_from_monday() - first.weekday().num_days_from_monday()) % 7;
        let day = first + Duration::days(shift as i64 + 7 * (n as i64 - 1));
        (day.month() == month).then_some(day)
    } else {
        let last = last_of_month(year, month)?;
        let shift = (7 + last.weekday().num_days_from_monday() - weekday.num_days_from_monday()) % 7;
        let day = last - Duration::days(shift as i64 + 7 * (-n as i64 - 1));
        (day.month() == month).then_some(day)
    }
}

pub fn last_of_month(year: i32, month: u32) -> Option<NaiveDate> {
    let (y, m) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1).map(|d| d - Duration::days(1))
}

/// The onsets (UTC) and the offsets they bring, for the years before and of `year`.
fn timeline(observances: &[Observance], year: i32) -> Vec<(DateTime<Utc>, i32)> {
    let mut out = Vec::new();
    for obs in observances {
        let utc = |local: NaiveDateTime| (local - Duration::seconds(obs.from as i64)).and_utc();
        out.push((utc(obs.start), obs.to));
        out.extend(obs.rdates.iter().map(|&d| (utc(d), obs.to)));
        let Some(rule) = &obs.rule else { continue };
        for y in (year - 1).max(obs.start.year())..=year {
            let month = if rule.month == 0 {
                obs.start.month()
            } else {
                rule.month
            };
            let date = match rule.day {
                RuleDay::Nth(n, wd) => nth_weekday(y, month, n, wd),
                RuleDay::MonthDay(d) => NaiveDate::from_ymd_opt(y, month, d),
                RuleDay::Same => NaiveDate::from_ymd_opt(y, month, obs.start.day()),
            };
            let Some(onset) = date.map(|d| utc(d.and_time(obs.start.time()))) else {
                continue;
            };
            if onset >= utc(obs.start) && rule.until.is_none_or(|u| onset <= u) {
                out.push((onset, obs.to));
            }
        }
    }
    out.sort_by_key(|(at, _)| *at);
    out
}

fn offset_at(timeline: &[(DateTime<Utc>, i32)], at: DateTime<Utc>) -> i32 {
    timeline
        .iter()
        .rev()
        .find(|(onset, _)| *onset <= at)
        .or(timeline.first())
        .map(|(_, off)| *off)
        .unwrap_or(0)
}

/// A transition of a chrono-tz zone.
struct Transition {
    at: DateTime<Utc>,
    from: i32,
    to: i32,
    daylight: bool,
    name: String,
}

fn offset_of(tz: chrono_tz::Tz, at: DateTime<Utc>) -> i32 {
    tz.offset_from_utc_datetime(&at.naive_utc())
        .fix()
        .local_minus_utc()
}

fn transitions(tz: chrono_tz::Tz, first_year: i32, last_year: i32) -> Vec<Transition> {
    let mut out = Vec::new();
    let Some(start) = NaiveDate::from_ymd_opt(first_year, 1, 1) else {
        return out;
    };
    let mut day = start.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
    while day.year() <= last_year {
        let next = day + Duration::days(1);
        if offset_of(tz, day) != offset_of(tz, next) {
            // Whole minutes: transitions fall on them.
            let (mut lo, mut hi) = (0i64, 1440i64);
            let at = |m: i64| day + Duration::minutes(m);
            while hi - lo > 1 {
                let mid = (lo + hi) / 2;
                if offset_of(tz, at(mid)) == offset_of(tz, day) {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            let (lo, hi) = (at(lo), at(hi));
            let after = tz.offset_from_utc_datetime(&hi.naive_utc());
            out.push(Transition {
                at: hi,
                from: offset_of(tz, lo),
                to: offset_of(tz, hi),
                daylight: !after.dst_offset().is_zero(),
                name: after.abbreviation().unwrap_or_default().to_owned(),
            });
        }
        day = next;
    }
    out
}

fn fmt_offset(secs: i32) -> String {
    let sign = if secs < 0 { '-' } else { '+' };
    let s = secs.abs();
    if s % 60 == 0 {
        format!("{sign}{:02}{:02}", s / 3600, s % 3600 / 60)
    } else {
        format!("{sign}{:02}{:02}{:02}", s / 3600, s % 3600 / 60, s % 60)
    }
}

/// The yearly rule of a transition's local onset (`BYMONTH=3;BYDAY=-1SU`).
fn rule_of(local: NaiveDate) -> (u32, i32, Weekday) {
    let last = last_of_month(local.year(), local.month()).map_or(31, |d| d.day());
    let n = if local.day() + 7 > last {
        -1
    } else {
        (local.day() as i32 - 1) / 7 + 1
    };
    (local.month(), n, local.weekday())
}

/// A VTIMEZONE for `tz` named `tzid`, correct for `first_year..=last_year` (and, when the zone
/// follows a yearly rule, for every year after).
pub fn generate_vtimezone(tzid: &str, tz: chrono_tz::Tz, first_year: i32, last_year: i32) -> String {
    let last_year = last_year.max(first_year + 1);
    let list = transitions(tz, first_year, last_year);
    let mut out = format!("BEGIN:VTIMEZONE\r\nTZID:{tzid}\r\n");
    let block = |kind: &str, start: NaiveDateTime, from: i32, to: i32, name: &str, rrule: Option<String>| {
        let mut s = format!(
            "BEGIN:{kind}\r\nDTSTART:{}\r\nTZOFFSETFROM:{}\r\nTZOFFSETTO:{}\r\n",
            start.format("%Y%m%dT%H%M%S"),
            fmt_offset(from),
            fmt_offset(to)
        );
        if !name.is_empty() && !name.starts_with(['+', '-']) {
            s.push_str(&format!("TZNAME:{name}\r\n"));
        }
        if let Some(r) = rrule {
            s.push_str(&format!("RRULE:{r}\r\n"));
        }
        s.push_str(&format!("END:{kind}\r\n"));
        s
    };
    let kind = |daylight: bool| if daylight { "DAYLIGHT" } else { "STANDARD" };
    let local = |t: &Transition| (t.at + Duration::seconds(t.from as i64)).naive_utc();
    let yearly = {
        let years: Vec<i32> = (first_year..=last_year).collect();
        let per_year = |y: i32| list.iter().filter(|t| t.at.year() == y).count();
        let rules: Vec<_> = list
            .iter()
            .map(|t| (t.daylight, rule_of(local(t).date()), local(t).time()))
            .collect();
        !list.is_empty()
            && years.iter().all(|&y| per_year(y) == 2)
            && rules
                .iter()
                .all(|r| rules.iter().filter(|o| *o == r).count() == years.len())
    };
    if list.is_empty() {
        let start = NaiveDate::from_ymd_opt(1970, 1, 1)
            .unwrap_or_default()
            .and_hms_opt(0, 0, 0)
            .unwrap_or_default();
        let now = NaiveDate::from_ymd_opt(first_year, 1, 1)
            .unwrap_or_default()
            .and_hms_opt(0, 0, 0)
            .unwrap_or_default()
            .and_utc();
        let off = offset_of(tz, now);
        let name = tz
            .offset_from_utc_datetime(&now.naive_utc())
            .abbreviation()
            .unwrap_or_default()
            .to_owned();
        out.push_str(&block("STANDARD", start, off, off, &name, None));
    } else if yearly {
        for t in list.iter().filter(|t| t.at.year() == first_year) {
            let (month, n, wd) = rule_of(local(t).date());
            let rule = format!(
                "FREQ=YEARLY;BYMONTH={month};BYDAY={n}{}",
                super::recurrence::weekday_code(wd)
            );
            out.push_str(&block(
                kind(t.daylight),
                local(t),
                t.from,
                t.to,
                &t.name,
                Some(rule),
            ));
        }
    } else {
        let first = list[0].from;
        let start = NaiveDate::from_ymd_opt(first_year, 1, 1)
            .unwrap_or_default()
            .and_hms_opt(0, 0, 0)
            .unwrap_or_default();
        out.push_str(&block(kind(!list[0].daylight), start, first, first, "", None));
        for t in &list {
            out.push_str(&block(kind(t.daylight), local(t), t.from, t.to, &t.name, None));
        }
    }
    out.push_str("END:VTIMEZONE\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CUSTOM: &str = "BEGIN:VCALENDAR\r\nBEGIN:VTIMEZONE\r\nTZID:Customized Time Zone\r\nBEGIN:STANDARD\r\nDTSTART:16010101T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nRRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=10\r\nEND:STANDARD\r\nBEGIN:DAYLIGHT\r\nDTSTART:16010101T020000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nRRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=3\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\nEND:VCALENDAR\r\n";

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y%m%dT%H%M%S").unwrap()
    }

    #[test]
    fn customized_time_zone_matches_central_europe() {
        let doc = Doc::parse(CUSTOM);
        let comp = doc.components_named("VTIMEZONE")[0];
        let tz = resolve_vtimezone(&doc, comp, at("20260310T090000"));
        let Tz::Tz(found) = tz else { panic!("{tz:?}") };
        assert_eq!(offset_of(found, at("20260110T120000").and_utc()), 3600);
        assert_eq!(offset_of(found, at("20260710T120000").and_utc()), 7200);
        assert!(zones::windows_of_iana(found.name()).is_some());
    }

    #[test]
    fn matching_is_fast_enough_for_a_big_calendar() {
        let doc = Doc::parse(CUSTOM);
        let comp = doc.components_named("VTIMEZONE")[0];
        let started = std::time::Instant::now();
        for year in 2000..2100 {
            assert!(matches!(
                resolve_vtimezone(&doc, comp, at(&format!("{year}0310T090000"))),
                Tz::Tz(_)
            ));
        }
        let first = started.elapsed();
        let started = std::time::Instant::now();
        for _ in 0..10_000 {
            resolve_vtimezone(&doc, comp, at("20260310T090000"));
        }
        eprintln!(
            "100 years matched in {first:?}; 10,000 cached lookups in {:?}",
            started.elapsed()
        );
    }

    #[test]
    fn unknown_rules_fall_back_to_the_fixed_offset() {
        let odd = CUSTOM
            .replace("BYMONTH=3", "BYMONTH=2")
            .replace("+0100", "+0117")
            .replace("+0200", "+0217");
        let doc = Doc::parse(&odd);
        let comp = doc.components_named("VTIMEZONE")[0];
        assert!(
            matches!(resolve_vtimezone(&doc, comp, at("20260710T090000")), Tz::Fixed(o) if o.local_minus_utc() == 8220)
        );
    }

    #[test]
    fn generated_vtimezones_resolve_to_the_same_offsets() {
        for (name, tz) in [
            ("Europe/Berlin", chrono_tz::Europe::Berlin),
            ("America/New_York", chrono_tz::America::New_York),
            ("Australia/Sydney", chrono_tz::Australia::Sydney),
            ("Asia/Kolkata", chrono_tz::Asia::Kolkata),
            ("America/Sao_Paulo", chrono_tz::America::Sao_Paulo),
        ] {
            let text = format!(
                "BEGIN:VCALENDAR\r\n{}END:VCALENDAR\r\n",
                generate_vtimezone("X", tz, 2026, 2027)
            );
            let doc = Doc::parse(&text);
            let comp = doc.components_named("VTIMEZONE")[0];
            let Tz::Tz(found) = resolve_vtimezone(&doc, comp, at("20270310T090000")) else {
                panic!("{name}: {text}")
            };
            for day in (0..730).step_by(5) {
                let t = at("20260101T000000").and_utc() + Duration::days(day);
                assert_eq!(offset_of(found, t), offset_of(tz, t), "{name} at {t}: {text}");
            }
        }
        let berlin = generate_vtimezone("Europe/Berlin", chrono_tz::Europe::Berlin, 2026, 2026);
        let daylight = "BEGIN:DAYLIGHT\r\nDTSTART:20260329T020000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\n\
                        TZNAME:CEST\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\n";
        assert!(berlin.contains(daylight), "{berlin}");
        assert!(berlin.contains("DTSTART:20261025T030000"), "{berlin}");
    }
}
