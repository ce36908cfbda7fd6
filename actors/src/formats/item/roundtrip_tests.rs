//! Property tests: for everything Outlook can express, field set → create → read is the identity,
//! sending back what was read changes nothing but the stamps, and a patch from one field set to
//! another reads back as the second.

use chrono::{Duration, NaiveDate, NaiveDateTime};
use proptest::prelude::*;
use serde_json::{Value, json};

use super::appointment_tests::{FIXTURES, assert_has, now};
use super::recurrence::{self, End, Pattern};
use super::{FieldSet, appointment, appointment_patch, task};

const ZONES: &[&str] = &[
    "W. Europe Standard Time",
    "Eastern Standard Time",
    "Pacific Standard Time",
    "Tokyo Standard Time",
    "India Standard Time",
    "AUS Eastern Standard Time",
    "GMT Standard Time",
    "UTC",
];

fn day(n: i64) -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 1, 1).unwrap() + Duration::days(n)
}

fn text() -> impl Strategy<Value = String> {
    "[A-Za-z0-9äöüß][A-Za-z0-9 ,;:\\\\äöüß.-]{0,30}[A-Za-z0-9]"
}

fn pattern(start: NaiveDate) -> impl Strategy<Value = Pattern> {
    (
        prop::sample::select(vec![
            recurrence::DAILY,
            recurrence::WEEKLY,
            recurrence::MONTHLY,
            recurrence::MONTH_NTH,
            recurrence::YEARLY,
            recurrence::YEAR_NTH,
        ]),
        1u32..4,
        1u8..128,
        1u32..32,
        1u8..6,
        1u32..13,
        prop_oneof![
            Just(End::Never),
            (1u32..50).prop_map(End::Count),
            (30i64..700).prop_map(move |n| End::Until(start + Duration::days(n)))
        ],
    )
        .prop_map(move |(kind, interval, mask, dom, instance, month, end)| {
            let nth = kind == recurrence::MONTH_NTH || kind == recurrence::YEAR_NTH;
            Pattern {
                kind,
                interval,
                day_of_week_mask: if nth || kind == recurrence::WEEKLY {
                    mask
                } else {
                    0
                },
                day_of_month: if kind == recurrence::MONTHLY || kind == recurrence::YEARLY {
                    dom
                } else {
                    0
                },
                instance: if nth { instance } else { 0 },
                month_of_year: if kind == recurrence::YEARLY || kind == recurrence::YEAR_NTH {
                    month
                } else {
                    0
                },
                start,
                end,
            }
        })
}

fn appointment_fields() -> impl Strategy<Value = FieldSet> {
    (
        (
            text(),
            proptest::option::of(text()),
            proptest::option::of("[A-Za-z0-9 ,;\\\\\n]{1,80}"),
            any::<bool>(),
            prop::sample::select(ZONES),
            0i64..3650,
            8u32..20,
            prop::sample::select(vec![0u32, 15, 30, 45]),
            0i64..16,
        ),
        (
            0i64..5,
            0i64..4,
            0i64..3,
            proptest::option::of(prop::sample::select(vec![0i64, 5, 15, 60, 1440, 2880])),
            prop::collection::vec("[A-Za-z][A-Za-z0-9]{0,8}", 0..3),
            proptest::option::of(("[a-z]{1,8}@example\\.com", proptest::option::of("[A-Z][a-z]{1,8}"))),
            prop::collection::btree_map(
                "[a-z]{1,8}@example\\.org",
                (proptest::option::of("[A-Z][a-z]{1,6}( [A-Z][a-z]{1,6})?"), 1i64..4, prop::sample::select(vec![0i64, 2, 3, 4, 5]), any::<bool>()),
                0..4,
            ),
        ),
        (
            0i64..200,
            prop::collection::btree_map(
                1i64..60,
                (any::<bool>(), proptest::option::of(text()), proptest::option::of(text()), proptest::option::of(0i64..5), -3i64..4, proptest::option::of(1i64..5)),
                0..4,
            ),
            any::<bool>(),
        ),
    )
        .prop_flat_map(|(a, b, c)| {
            let start = day(a.5);
            (Just((a, b, c)), proptest::option::of(pattern(start)))
        })
        .prop_map(|((a, b, c), pattern)| {
            let (subject, location, body, all_day, zone, d, hour, minute, length) = a;
            let (busy, sensitivity, importance, reminder, categories, organizer, recipients) = b;
            let (_, seeds, _) = c;
            let start_date = day(d);
            let start = start_date.and_hms_opt(hour, minute, 0).unwrap();
            let mut f = json!({
                "Subject": subject, "AllDayEvent": all_day, "BusyStatus": busy,
                "Sensitivity": sensitivity, "Importance": importance,
            });
            let o = f.as_object_mut().unwrap();
            if let Some(l) = location { o.insert("Location".into(), l.into()); }
            if let Some(b) = body { o.insert("Body".into(), b.into()); }
            let show = |t: NaiveDateTime| if all_day { t.date().to_string() } else { t.format("%Y-%m-%dT%H:%M:%S").to_string() };
            let duration = if all_day { Duration::days(1 + length % 3) } else { Duration::minutes(15 * length) };
            o.insert("Start".into(), show(start).into());
            o.insert("End".into(), show(start + duration).into());
            if !all_day {
                o.insert("StartTimeZone".into(), zone.into());
                o.insert("EndTimeZone".into(), zone.into());
            }
            match reminder {
                Some(m) => {
                    o.insert("ReminderSet".into(), true.into());
                    o.insert("ReminderMinutesBeforeStart".into(), m.into());
                }
                None => { o.insert("ReminderSet".into(), false.into()); }
            }
            if !categories.is_empty() { o.insert("Categories".into(), categories.join(", ").into()); }
            if let Some((addr, name)) = organizer {
                o.insert("Organizer".into(), addr.into());
                if let Some(n) = name { o.insert("OrganizerName".into(), n.into()); }
            }
            if !recipients.is_empty() {
                let list: Vec<Value> = recipients.into_iter().map(|(addr, (name, kind, status, rsvp))| {
                    let mut r = json!({"Address": addr, "Type": kind, "MeetingResponseStatus": status, "Rsvp": rsvp});
                    if let Some(n) = name { r["Name"] = n.into(); }
                    r
                }).collect();
                o.insert("Recipients".into(), list.into());
            }
            if let Some(p) = pattern {
                o.insert("Recurrence".into(), recurrence::to_json(&Pattern { start: start_date, ..p }));
                let master_busy = busy;
                let mut list = Vec::new();
                for (k, (deleted, subj, loc, busy, shift, len)) in seeds {
                    let original = start + Duration::days(k);
                    let mut e = json!({"OriginalDate": show(original), "Deleted": deleted});
                    if !deleted {
                        if let Some(s) = subj { e["Subject"] = s.into(); }
                        if let Some(l) = loc { e["Location"] = l.into(); }
                        if let Some(b) = busy.filter(|b| *b != master_busy) { e["BusyStatus"] = b.into(); }
                        let moved = if all_day { original + Duration::days(shift) } else { original + Duration::hours(shift) };
                        if shift != 0 { e["Start"] = show(moved).into(); }
                        if let Some(n) = len {
                            let other = if all_day { Duration::days(n) } else { Duration::minutes(20 * n) };
                            if other != duration { e["End"] = show(moved + other).into(); }
                        }
                    }
                    list.push(e);
                }
                if !list.is_empty() { o.insert("Exceptions".into(), list.into()); }
            }
            f.as_object().unwrap().clone()
        })
}

fn task_fields() -> impl Strategy<Value = FieldSet> {
    (
        text(),
        proptest::option::of("[A-Za-z0-9 ,;\n]{1,60}"),
        proptest::option::of(0i64..2000),
        proptest::option::of(0i64..60),
        0i64..5,
        0i64..101,
        0i64..3,
        0i64..4,
        proptest::option::of(0i64..100_000),
        any::<bool>(),
    )
        .prop_flat_map(|t| {
            let anchor = day(t.2.unwrap_or(100));
            (Just(t), proptest::option::of(pattern(anchor)))
        })
        .prop_map(
            |(
                (subject, body, start, due, status, percent, importance, sensitivity, reminder, _),
                pattern,
            )| {
                let mut f = json!({"Subject": subject, "Status": status, "Complete": status == 2,
                "PercentComplete": percent, "Importance": importance, "Sensitivity": sensitivity});
                let o = f.as_object_mut().unwrap();
                if let Some(b) = body {
                    o.insert("Body".into(), b.into());
                }
                if let Some(s) = start {
                    o.insert("StartDate".into(), day(s).to_string().into());
                }
                if let Some(d) = due {
                    o.insert(
                        "DueDate".into(),
                        (day(start.unwrap_or(0)) + Duration::days(d)).to_string().into(),
                    );
                }
                if status == 2 {
                    o.insert(
                        "DateCompleted".into(),
                        day(start.unwrap_or(0) + 3).to_string().into(),
                    );
                }
                match reminder {
                    Some(m) => {
                        o.insert("ReminderSet".into(), true.into());
                        let at = day(0).and_hms_opt(0, 0, 0).unwrap().and_utc() + Duration::minutes(m * 15);
                        o.insert(
                            "ReminderTime".into(),
                            at.format("%Y-%m-%dT%H:%M:%SZ").to_string().into(),
                        );
                    }
                    None => {
                        o.insert("ReminderSet".into(), false.into());
                    }
                }
                if let (Some(p), Some(s)) = (pattern, start) {
                    o.insert(
                        "Recurrence".into(),
                        recurrence::to_json(&Pattern { start: day(s), ..p }),
                    );
                }
                f.as_object().unwrap().clone()
            },
        )
}

/// The changes that turn field set `a` into `b`: `b`'s keys, and null for those only `a` has.
fn changes(a: &FieldSet, b: &FieldSet) -> FieldSet {
    let mut out = b.clone();
    for k in a.keys() {
        if !b.contains_key(k) {
            out.insert(k.clone(), Value::Null);
        }
    }
    out
}

/// Recipients in address order: a patch keeps the existing ATTENDEE lines where they are and adds
/// new ones after them, so the order may differ from the one sent.
fn by_address(f: &FieldSet) -> FieldSet {
    let mut f = f.clone();
    if let Some(Value::Array(list)) = f.get_mut("Recipients") {
        list.sort_by_key(|r| r["Address"].as_str().unwrap_or_default().to_owned());
    }
    f
}

fn only_stamps_differ(a: &str, b: &str) -> bool {
    let keep = |s: &str| -> Vec<String> {
        s.split("\r\n")
            .filter(|l| !l.starts_with("DTSTAMP") && !l.starts_with("LAST-MODIFIED"))
            .map(str::to_owned)
            .collect()
    };
    keep(a) == keep(b)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn appointments_round_trip(f in appointment_fields()) {
        let body = appointment::create_at("uid-1@example.com", &f, now()).unwrap();
        let back = appointment::read(&body).unwrap();
        prop_assert!(!back.contains_key("Unsupported"), "{:?}\n{}", back.get("Unsupported"), body);
        for (k, v) in &f {
            prop_assert_eq!(back.get(k), Some(v), "key {}\n{}", k, body);
        }
        let again = appointment_patch::patch_at(&body, &back, now(), false).unwrap();
        prop_assert!(only_stamps_differ(&body, &again), "{}\n---\n{}", body, again);
    }

    #[test]
    fn appointment_patches_read_back_as_the_new_fields(a in appointment_fields(), b in appointment_fields()) {
        let body = appointment::create_at("uid-2", &a, now()).unwrap();
        let read_a = appointment::read(&body).unwrap();
        let out = appointment_patch::patch_at(&body, &changes(&read_a, &b), now(), false).unwrap();
        let back = appointment::read(&out).unwrap();
        assert_has(&by_address(&back), &Value::Object(by_address(&b)));
    }

    #[test]
    fn fixtures_patched_to_any_field_set_read_back_as_it(which in 0usize..5, b in appointment_fields()) {
        let body = FIXTURES[which];
        let read_a = appointment::read(body).unwrap();
        let out = appointment_patch::patch_at(body, &changes(&read_a, &b), now(), false).unwrap();
        let back = appointment::read(&out).unwrap();
        prop_assert!(!back.contains_key("Unsupported"), "{:?}", back.get("Unsupported"));
        let mut want = by_address(&b);
        if which == 3 && b["ReminderSet"] == false {
            // Google's object has two relative alarms: turning the reminder off removes the first
            // only, and the second then is the reminder.
            want.remove("ReminderSet");
        }
        assert_has(&by_address(&back), &Value::Object(want));
        // The other clients' properties survive.
        for keep in ["X-MS-OLK-CONFTYPE:0", "X-APPLE-TRAVEL-ADVISORY-BEHAVIOR:AUTOMATIC", "X-GOOGLE-CONFERENCE", "X-MOZ-GENERATION:3", "ATTACH;VALUE=URI:https"] {
            prop_assert_eq!(body.contains(keep), out.contains(keep), "{}", keep);
        }
    }

    #[test]
    fn tasks_round_trip(f in task_fields(), g in task_fields()) {
        let body = task::create_at("task-1", &f, now()).unwrap();
        let back = task::read(&body).unwrap();
        prop_assert!(!back.contains_key("Unsupported"));
        for (k, v) in &f {
            prop_assert_eq!(back.get(k), Some(v), "key {}\n{}", k, body);
        }
        let out = task::patch_at(&body, &changes(&back, &g), now(), false).unwrap();
        assert_has(&task::read(&out).unwrap(), &Value::Object(g.clone()));
    }

    #[test]
    fn damaged_objects_never_panic(which in 0usize..7, line in 0usize..80, junk in "(?s).{0,40}", keep_name: bool) {
        let body = FIXTURES[which];
        let mut lines: Vec<String> = body.split("\r\n").map(str::to_owned).collect();
        let i = line % lines.len();
        lines[i] = match lines[i].split_once(':') {
            Some((name, _)) if keep_name => format!("{name}:{junk}"),
            _ => junk.clone(),
        };
        let damaged = lines.join("\r\n");
        for class in [super::ItemClass::Appointment, super::ItemClass::Task] {
            if let Ok(f) = super::read(class, &damaged) {
                let mut changes = f.clone();
                changes.insert("Subject".into(), "patched".into());
                let _ = super::patch(class, &damaged, &changes);
            }
        }
    }
}
