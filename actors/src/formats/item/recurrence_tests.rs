//! Recurrence patterns against RRULEs: every Outlook pattern both ways, and the rules Outlook
//! has no pattern for.

use super::caltime::{self, When};
use super::recurrence::*;
use chrono::NaiveDate;

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn timed(s: &str) -> When {
    caltime::from_field(s, Some("W. Europe Standard Time")).unwrap()
}

#[test]
fn outlook_patterns_read_from_rules() {
    let start = timed("2026-03-10T09:00:00");
    let p = from_rrule("FREQ=WEEKLY;BYDAY=TU,TH;UNTIL=20260430T070000Z;WKST=SU", &start).unwrap();
    assert_eq!(
        (p.kind, p.day_of_week_mask, p.end),
        (WEEKLY, 4 | 16, End::Until(d("2026-04-30")))
    );
    let p = from_rrule("FREQ=MONTHLY;BYDAY=-1MO;COUNT=5", &start).unwrap();
    assert_eq!(
        (p.kind, p.instance, p.day_of_week_mask, p.end),
        (MONTH_NTH, 5, 2, End::Count(5))
    );
    let p = from_rrule("FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1", &start).unwrap();
    assert_eq!((p.kind, p.instance, p.day_of_week_mask), (MONTH_NTH, 5, 62));
    let p = from_rrule("FREQ=YEARLY;BYMONTH=11;BYDAY=4TH", &start).unwrap();
    assert_eq!((p.kind, p.instance, p.month_of_year), (YEAR_NTH, 4, 11));
    let p = from_rrule("FREQ=YEARLY", &start).unwrap();
    assert_eq!(
        (p.kind, p.day_of_month, p.month_of_year, p.end),
        (YEARLY, 10, 3, End::Never)
    );
    let p = from_rrule("FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR", &start).unwrap();
    assert_eq!((p.kind, p.day_of_week_mask), (WEEKLY, 62));
    let p = from_rrule("FREQ=MONTHLY;BYMONTHDAY=-1", &start).unwrap();
    assert_eq!((p.kind, p.instance, p.day_of_week_mask), (MONTH_NTH, 5, 127));
}

#[test]
fn rules_outlook_cannot_show_say_why() {
    let start = timed("2026-03-10T09:00:00");
    for rule in [
        "FREQ=HOURLY",
        "FREQ=MINUTELY;INTERVAL=15",
        "FREQ=DAILY;BYHOUR=9,17",
        "FREQ=YEARLY;BYWEEKNO=20",
        "FREQ=YEARLY;BYYEARDAY=100",
        "FREQ=MONTHLY;BYMONTHDAY=1,15",
        "FREQ=MONTHLY;BYDAY=MO;BYSETPOS=1,-1",
        "FREQ=YEARLY;BYMONTH=1,7",
        "FREQ=WEEKLY;BYMONTH=3",
        "FREQ=MONTHLY;BYDAY=2MO,-1FR",
    ] {
        assert!(from_rrule(rule, &start).is_err(), "{rule}");
    }
}

#[test]
fn days_some_months_lack_fall_on_their_last_day() {
    let start = timed("2026-01-31T09:00:00");
    let p = Pattern {
        kind: MONTHLY,
        day_of_month: 31,
        ..from_rrule("FREQ=MONTHLY", &timed("2026-01-15T09:00:00")).unwrap()
    };
    let rule = to_rrule(&p, &start);
    assert_eq!(rule, "FREQ=MONTHLY;BYMONTHDAY=28,29,30,31;BYSETPOS=-1");
    assert_eq!(from_rrule(&rule, &start).unwrap().day_of_month, 31);
    assert!(
        from_rrule("FREQ=MONTHLY;BYMONTHDAY=31", &start)
            .unwrap_err()
            .contains("last day")
    );
    assert!(from_rrule("FREQ=MONTHLY", &start).is_err());
    assert!(from_rrule("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29", &start).is_err());
    assert!(from_rrule("FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=31", &start).is_ok());
    assert!(from_rrule("FREQ=MONTHLY;BYMONTHDAY=29,30;BYSETPOS=-1", &start).is_err());
}

#[test]
fn rewritten_rules_keep_wkst() {
    assert_eq!(
        keep_parts(Some("FREQ=WEEKLY;WKST=SU;BYDAY=MO"), "FREQ=DAILY".into()),
        "FREQ=DAILY;WKST=SU"
    );
    assert_eq!(keep_parts(None, "FREQ=DAILY".into()), "FREQ=DAILY");
    let p = from_rrule("FREQ=DAILY;UNTIL=20260319T230000Z", &When::Date(d("2026-03-10"))).unwrap();
    assert_eq!(p.end, End::Until(d("2026-03-20")));
}

#[test]
fn all_day_until_is_a_date() {
    let p = from_rrule("FREQ=DAILY;UNTIL=20260320", &When::Date(d("2026-03-10"))).unwrap();
    assert_eq!(
        to_rrule(&p, &When::Date(d("2026-03-10"))),
        "FREQ=DAILY;UNTIL=20260320"
    );
    let start = timed("2026-03-10T09:00:00");
    let p = Pattern {
        end: End::Until(d("2026-07-01")),
        ..p
    };
    assert_eq!(to_rrule(&p, &start), "FREQ=DAILY;UNTIL=20260701T070000Z");
}

fn pattern() -> impl proptest::strategy::Strategy<Value = Pattern> {
    use proptest::prelude::*;
    (
        prop::sample::select(vec![DAILY, WEEKLY, MONTHLY, MONTH_NTH, YEARLY, YEAR_NTH]),
        1u32..5,
        1u8..128,
        1u32..32,
        1u8..6,
        1u32..13,
        0i64..3000,
        prop_oneof![
            Just(End::Never),
            (1u32..200).prop_map(End::Count),
            (0i64..900).prop_map(|n| End::Until(d("2027-01-01") + chrono::Duration::days(n)))
        ],
    )
        .prop_map(|(kind, interval, mask, dom, instance, month, day, end)| {
            let start = d("2020-01-01") + chrono::Duration::days(day);
            let weekly = kind == WEEKLY || kind == MONTH_NTH || kind == YEAR_NTH;
            Pattern {
                kind,
                interval,
                day_of_week_mask: if weekly { mask } else { 0 },
                day_of_month: if kind == MONTHLY || kind == YEARLY { dom } else { 0 },
                instance: if weekly && kind != WEEKLY { instance } else { 0 },
                month_of_year: if kind == YEARLY || kind == YEAR_NTH {
                    month
                } else {
                    0
                },
                start,
                end,
            }
        })
}

proptest::proptest! {
    #[test]
    fn patterns_round_trip_through_rules_and_json(p in pattern(), hour in 0u32..24, all_day: bool) {
        let dtstart = if all_day {
            When::Date(p.start)
        } else {
            timed(&format!("{}T{hour:02}:30:00", p.start))
        };
        let rule = to_rrule(&p, &dtstart);
        proptest::prop_assert_eq!(&from_rrule(&rule, &dtstart).unwrap(), &p, "{}", rule);
        let json = to_json(&p);
        let mut back = from_json(&json, p.start).unwrap();
        if p.kind != WEEKLY && p.kind != MONTH_NTH && p.kind != YEAR_NTH { back.day_of_week_mask = 0; }
        if p.kind != MONTHLY && p.kind != YEARLY { back.day_of_month = 0; }
        if p.kind != MONTH_NTH && p.kind != YEAR_NTH { back.instance = 0; }
        if p.kind != YEARLY && p.kind != YEAR_NTH { back.month_of_year = 0; }
        proptest::prop_assert_eq!(back, p);
    }
}
