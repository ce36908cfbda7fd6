//! `formats::expand` against recorded expectations of a reference implementation (python's
//! `recurring_ical_events`, see tests/fixtures/ical/recurring/reference.py), on recurring
//! objects shaped as Outlook, Google, Apple, Thunderbird and Evolution write them.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use crate::formats::ical::{Instance, instances};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ical/recurring");

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{DIR}/{name}")).unwrap()
}

/// expected.txt: `== name count` then `start|end|summary` lines.
fn expected() -> BTreeMap<String, Vec<(String, String, String)>> {
    let mut out: BTreeMap<String, Vec<_>> = BTreeMap::new();
    let mut current = String::new();
    for line in fixture("expected.txt").lines() {
        if let Some(head) = line.strip_prefix("== ") {
            current = head.split(' ').next().unwrap().to_owned();
            out.insert(current.clone(), Vec::new());
        } else {
            let mut parts = line.splitn(3, '|');
            let mut next = || parts.next().unwrap().to_owned();
            let row = (next(), next(), next());
            out.get_mut(&current).unwrap().push(row);
        }
    }
    out
}

/// A reference time as an instant: dates and floating times are read as UTC (as `instances` does).
fn instant(text: &str) -> DateTime<Utc> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return t.with_timezone(&Utc);
    }
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return d.and_time(chrono::NaiveTime::MIN).and_utc();
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
        .unwrap()
        .and_utc()
}

fn year() -> (DateTime<Utc>, DateTime<Utc>) {
    (utc("2026-01-01T00:00:00Z"), utc("2027-01-01T00:00:00Z"))
}

fn describe(i: &Instance) -> String {
    format!("{}|{}|{}", i.start, i.end, i.summary.as_deref().unwrap_or(""))
}

#[test]
fn until_on_an_occurrence_includes_it() {
    // RFC 5545 §3.3.10: UNTIL 08:00Z is 10:00 in Berlin (summer time), Monday 2026-06-01's
    // occurrence, the last one.
    let got = instances(
        fixture("outlook-weekly-until-on-occurrence.ics").as_bytes(),
        utc("2026-05-25T00:00:00Z"),
        utc("2026-07-01T00:00:00Z"),
    )
    .unwrap();
    let starts: Vec<&str> = got.iter().map(|i| i.start.as_str()).collect();
    assert_eq!(
        starts,
        [
            "2026-05-25T10:00:00+02:00",
            "2026-05-27T10:00:00+02:00",
            "2026-06-01T10:00:00+02:00"
        ]
    );
}

#[test]
fn two_rrules_expand_both() {
    let got = instances(
        fixture("thunderbird-two-rrules.ics").as_bytes(),
        utc("2026-03-01T00:00:00Z"),
        utc("2026-03-20T00:00:00Z"),
    )
    .unwrap();
    let days: Vec<&str> = got.iter().map(|i| &i.start[..10]).collect();
    // Mondays from the weekly rule, the 15th from the monthly one.
    assert_eq!(days, ["2026-03-02", "2026-03-09", "2026-03-15", "2026-03-16"]);
}

#[test]
fn this_and_future_moves_every_later_occurrence() {
    // RFC 5545 §3.8.4.4: from the 10th on, an hour earlier, 45 minutes long, with the new summary.
    let got = instances(
        fixture("apple-thisandfuture.ics").as_bytes(),
        utc("2026-03-09T00:00:00Z"),
        utc("2026-03-13T00:00:00Z"),
    )
    .unwrap();
    let rows: Vec<String> = got.iter().map(describe).collect();
    assert_eq!(
        rows,
        [
            "2026-03-09T08:00:00+01:00|2026-03-09T08:30:00+01:00|Run",
            "2026-03-10T07:00:00+01:00|2026-03-10T07:45:00+01:00|Early run",
            "2026-03-11T07:00:00+01:00|2026-03-11T07:45:00+01:00|Early run",
            "2026-03-12T07:00:00+01:00|2026-03-12T07:45:00+01:00|Early run",
        ]
    );
    assert!(got[1].overridden && got[2].overridden && !got[0].overridden);
}

#[test]
fn outlook_all_day_overrides_replace_their_dates() {
    // The overrides say `RECURRENCE-ID;TZID="W. Europe Standard Time":20260310T000000` for the
    // all-day occurrence of 2026-03-10: it moves to the 11th, and the 10th is gone.
    let got = instances(
        fixture("outlook-allday-windows-recurrence-id.ics").as_bytes(),
        utc("2026-03-01T00:00:00Z"),
        utc("2026-04-05T00:00:00Z"),
    )
    .unwrap();
    let rows: Vec<String> = got.iter().map(describe).collect();
    assert_eq!(
        rows,
        [
            "2026-03-03|2026-03-04|Homeoffice",
            "2026-03-11|2026-03-12|Homeoffice (Wednesday)",
            // 03-17 is an EXDATE written the same way.
            "2026-03-24|2026-03-25|Homeoffice",
            "2026-03-31|2026-04-02|Homeoffice (two days)",
        ]
    );
}

#[test]
fn an_endless_minutely_rule_reaches_today() {
    // Started in 2010: from DTSTART, 50,000 occurrences would end in 2010.
    let ics = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:m\r\nDTSTART:20100101T000000Z\r\nRRULE:FREQ=MINUTELY;INTERVAL=15\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    let got = instances(
        ics.as_bytes(),
        utc("2026-03-10T10:00:00Z"),
        utc("2026-03-10T11:00:00Z"),
    )
    .unwrap();
    let starts: Vec<&str> = got.iter().map(|i| i.start.as_str()).collect();
    assert_eq!(
        starts,
        [
            "2026-03-10T10:00:00+00:00",
            "2026-03-10T10:15:00+00:00",
            "2026-03-10T10:30:00+00:00",
            "2026-03-10T10:45:00+00:00"
        ]
    );
}

#[test]
fn lengths_past_the_end_of_time_do_not_panic() {
    for extra in [
        "DURATION:P4000000000W",
        "DTEND:99991231T235959Z",
        "RRULE:FREQ=DAILY;COUNT=4000000000",
    ] {
        let ics = format!(
            "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:e\r\nDTSTART:20200101T000000Z\r\n{extra}\r\nRRULE:FREQ=YEARLY\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
        );
        let _ = instances(
            ics.as_bytes(),
            crate::formats::ical::RANGE_MIN,
            crate::formats::ical::RANGE_MAX,
        );
        let _ = instances(
            ics.as_bytes(),
            utc("2026-01-01T00:00:00Z"),
            utc("2026-01-08T00:00:00Z"),
        );
    }
}

#[test]
fn every_fixture_agrees_with_the_reference() {
    let expected = expected();
    assert!(expected.len() >= 30, "{} fixtures", expected.len());
    let (from, to) = year();
    let mut disagree = Vec::new();
    for (name, rows) in &expected {
        let got = instances(fixture(name).as_bytes(), from, to).unwrap();
        let want: Vec<_> = rows
            .iter()
            .map(|(s, e, summary)| (instant(s), instant(e), summary.clone()))
            .collect();
        let have: Vec<_> = got
            .iter()
            .map(|i| (i.start_utc, i.end_utc, i.summary.clone().unwrap_or_default()))
            .collect();
        if want != have {
            disagree.push(format!(
                "{name}: reference {} occurrences, expand {}:\n  want {:?}\n  have {:?}",
                want.len(),
                have.len(),
                rows.iter()
                    .map(|r| format!("{}|{}|{}", r.0, r.1, r.2))
                    .collect::<Vec<_>>(),
                got.iter().map(describe).collect::<Vec<_>>()
            ));
        }
        // All-day occurrences are dates on both sides.
        for (row, i) in rows.iter().zip(&got) {
            assert_eq!(
                row.0.len() == 10,
                i.start.len() == 10,
                "{name}: {} vs {}",
                row.0,
                i.start
            );
        }
    }
    assert!(disagree.is_empty(), "{}", disagree.join("\n"));
}

/// Expanding only a week (the rule started near the window, stopped at its end) gives exactly
/// the year's occurrences that overlap that week.
#[test]
fn a_week_window_is_the_year_filtered() {
    let (from, to) = year();
    for name in expected().keys() {
        let body = fixture(name);
        let all = instances(body.as_bytes(), from, to).unwrap();
        let mut week = from;
        while week < to {
            let end = (week + chrono::TimeDelta::days(7)).min(to);
            let got: Vec<String> = instances(body.as_bytes(), week, end)
                .unwrap()
                .iter()
                .map(describe)
                .collect();
            let want: Vec<String> = all
                .iter()
                .filter(|i| {
                    if i.end_utc > i.start_utc {
                        i.start_utc < end && i.end_utc > week
                    } else {
                        i.start_utc >= week && i.start_utc < end
                    }
                })
                .map(describe)
                .collect();
            assert_eq!(got, want, "{name}, week of {week}");
            week = end;
        }
    }
}
