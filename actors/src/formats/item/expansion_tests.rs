//! What other clients see: created series expanded by the mirror's RFC 5545 expansion
//! (`formats::ical::instances`), so that each Outlook pattern means the same days on the server.

use serde_json::json;

use super::appointment;
use super::appointment_tests::{fields, now};
use crate::formats::ical::{RANGE_MAX, RANGE_MIN, instances};

fn days(
    start: &str,
    zone: Option<&str>,
    recurrence: serde_json::Value,
    exceptions: serde_json::Value,
) -> Vec<String> {
    let all_day = start.len() == 10;
    let mut f = json!({"Subject": "s", "Start": start, "AllDayEvent": all_day, "Recurrence": recurrence,
        "Exceptions": exceptions});
    if let Some(z) = zone {
        f["StartTimeZone"] = z.into();
        f["EndTimeZone"] = z.into();
    }
    let body = appointment::create_at("x", &fields(f), now()).unwrap();
    instances(body.as_bytes(), RANGE_MIN, RANGE_MAX)
        .unwrap()
        .into_iter()
        .map(|i| i.start.chars().take(if all_day { 10 } else { 16 }).collect())
        .collect()
}

#[test]
fn outlook_patterns_expand_to_outlooks_days() {
    let berlin = Some("W. Europe Standard Time");
    // Day 31 falls on the last day of shorter months.
    assert_eq!(
        days(
            "2026-01-31",
            None,
            json!({"RecurrenceType": 2, "DayOfMonth": 31, "Occurrences": 4}),
            json!([])
        ),
        ["2026-01-31", "2026-02-28", "2026-03-31", "2026-04-30"]
    );
    // The last weekday of the month.
    assert_eq!(
        days(
            "2026-01-30",
            None,
            json!({"RecurrenceType": 3, "DayOfWeekMask": 62, "Instance": 5, "Occurrences": 3}),
            json!([])
        ),
        ["2026-01-30", "2026-02-27", "2026-03-31"]
    );
    // Tuesdays and Thursdays until a date (UNTIL on an occurrence is left to the expansion fix of
    // issue 16; the rule written for it is checked in recurrence_tests).
    assert_eq!(
        days(
            "2026-03-03T09:00:00",
            berlin,
            json!({"RecurrenceType": 1, "DayOfWeekMask": 20, "PatternEndDate": "2026-03-13"}),
            json!([])
        ),
        [
            "2026-03-03T09:00",
            "2026-03-05T09:00",
            "2026-03-10T09:00",
            "2026-03-12T09:00"
        ]
    );
    // The fourth Thursday of November.
    assert_eq!(
        days(
            "2026-11-26",
            None,
            json!({"RecurrenceType": 6, "DayOfWeekMask": 16, "Instance": 4, "MonthOfYear": 11, "Occurrences": 2}),
            json!([])
        ),
        ["2026-11-26", "2027-11-25"]
    );
    // A deleted and a moved occurrence.
    assert_eq!(
        days(
            "2026-03-02T09:00:00",
            berlin,
            json!({"RecurrenceType": 0, "Interval": 1, "Occurrences": 4}),
            json!([{"OriginalDate": "2026-03-03T09:00:00", "Deleted": true},
                   {"OriginalDate": "2026-03-04T09:00:00", "Deleted": false, "Start": "2026-03-04T15:00:00"}])
        ),
        ["2026-03-02T09:00", "2026-03-04T15:00", "2026-03-05T09:00"]
    );
}
