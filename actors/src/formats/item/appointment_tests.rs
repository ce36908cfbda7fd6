//! Appointments and tasks as Outlook, Apple Calendar, Google and Thunderbird write them (fixtures
//! in `actors/tests/fixtures/outlook-items/`), and patches that keep every other byte.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{FieldSet, PatchError, appointment, appointment_patch, task};

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!("../../../tests/fixtures/outlook-items/", $name))
    };
}

const OUTLOOK_CUSTOM: &str = fixture!("outlook-custom-zone-series.ics");
const OUTLOOK_ALL_DAY: &str = fixture!("outlook-all-day-series.ics");
const APPLE: &str = fixture!("apple-meeting.ics");
const GOOGLE: &str = fixture!("google-monthly.ics");
const THUNDERBIRD: &str = fixture!("thunderbird-yearly.ics");
const THUNDERBIRD_TASK: &str = fixture!("thunderbird-task.ics");
const APPLE_TASK: &str = fixture!("apple-reminder-done.ics");

pub const FIXTURES: [&str; 7] = [
    OUTLOOK_CUSTOM,
    OUTLOOK_ALL_DAY,
    APPLE,
    GOOGLE,
    THUNDERBIRD,
    THUNDERBIRD_TASK,
    APPLE_TASK,
];

pub fn now() -> DateTime<Utc> {
    "2026-07-01T12:00:00Z".parse().unwrap()
}

pub fn fields(v: Value) -> FieldSet {
    v.as_object().unwrap().clone()
}

/// Asserts that every key of `want` reads back equal.
pub fn assert_has(got: &FieldSet, want: &Value) {
    for (k, v) in want.as_object().unwrap() {
        assert_eq!(
            got.get(k),
            Some(v),
            "key {k} in {}",
            serde_json::to_string_pretty(got).unwrap()
        );
    }
}

/// The lines of `a` and `b` that differ, as (before, after) pairs of unfolded text.
fn changed_lines(a: &str, b: &str) -> Vec<String> {
    let la: Vec<&str> = a.split("\r\n").collect();
    let lb: Vec<&str> = b.split("\r\n").collect();
    let mut out = Vec::new();
    for l in &lb {
        if !la.contains(l) {
            out.push(format!("+{l}"));
        }
    }
    for l in &la {
        if !lb.contains(l) {
            out.push(format!("-{l}"));
        }
    }
    out
}

#[test]
fn outlook_customized_time_zone_series_reads() {
    let f = appointment::read(OUTLOOK_CUSTOM).unwrap();
    assert_has(
        &f,
        &json!({
            "Subject": "Team sync",
            "Location": "Room 4",
            "Body": "Agenda in the team folder\n",
            "Start": "2026-03-03T10:00:00",
            "StartTimeZone": "W. Europe Standard Time",
            "End": "2026-03-03T11:00:00",
            "StartUTC": "2026-03-03T09:00:00Z",
            "AllDayEvent": false,
            "BusyStatus": 1,
            "Importance": 1,
            "Sensitivity": 0,
            "ReminderSet": true,
            "ReminderMinutesBeforeStart": 15,
            "IsRecurring": true,
            "Recurrence": {"RecurrenceType": 1, "Interval": 1, "DayOfWeekMask": 4,
                "PatternStartDate": "2026-03-03", "PatternEndDate": "2026-04-28", "NoEndDate": false},
            "Exceptions": [
                {"OriginalDate": "2026-03-10T10:00:00", "Deleted": false, "Subject": "Team sync (moved)",
                 "Start": "2026-03-10T14:00:00"},
                {"OriginalDate": "2026-03-17T10:00:00", "Deleted": true},
            ],
        }),
    );
    assert!(!f.contains_key("Unsupported"), "{f:?}");
}

#[test]
fn outlook_all_day_overrides_with_zoned_recurrence_ids_keep_their_dates() {
    let f = appointment::read(OUTLOOK_ALL_DAY).unwrap();
    assert_has(
        &f,
        &json!({
            "Subject": "Home office",
            "AllDayEvent": true,
            "Start": "2026-03-02",
            "End": "2026-03-03",
            "BusyStatus": 4,
            "Recurrence": {"RecurrenceType": 1, "Interval": 1, "DayOfWeekMask": 2,
                "PatternStartDate": "2026-03-02", "Occurrences": 6, "NoEndDate": false},
            "Exceptions": [
                {"OriginalDate": "2026-03-09", "Deleted": true},
                {"OriginalDate": "2026-03-16", "Deleted": false, "Start": "2026-03-17"},
                {"OriginalDate": "2026-03-23", "Deleted": false, "Subject": "Office day"},
            ],
        }),
    );
    assert!(!f.contains_key("StartTimeZone"));
}

#[test]
fn apple_google_and_thunderbird_events_read() {
    let apple = appointment::read(APPLE).unwrap();
    assert_has(
        &apple,
        &json!({
            "Subject": "Coffee with Anna",
            "Location": "Café Kranzler\nKurfürstendamm 18, 10719 Berlin",
            "StartTimeZone": "W. Europe Standard Time",
            "Start": "2026-06-12T09:30:00",
            "EndUTC": "2026-06-12T08:30:00Z",
            "ReminderMinutesBeforeStart": 30,
            "Organizer": "me@example.com",
            "OrganizerName": "Me",
            "Recipients": [
                {"Name": "Anna Berg", "Address": "anna@example.com", "Type": 1, "MeetingResponseStatus": 3, "Rsvp": false},
                {"Name": "Me", "Address": "me@example.com", "Type": 1, "MeetingResponseStatus": 3, "Rsvp": false},
            ],
            "IsRecurring": false,
        }),
    );
    let google = appointment::read(GOOGLE).unwrap();
    assert_has(
        &google,
        &json!({
            "StartTimeZone": "Eastern Standard Time",
            "StartUTC": "2026-03-10T13:00:00Z",
            "Body": "Numbers first, then plans.",
            "ReminderMinutesBeforeStart": 30,
            "Recurrence": {"RecurrenceType": 3, "Interval": 1, "DayOfWeekMask": 4, "Instance": 2,
                "PatternStartDate": "2026-03-10", "PatternEndDate": "2026-12-31", "NoEndDate": false},
        }),
    );
    let types: Vec<(i64, i64)> = google["Recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["Type"].as_i64().unwrap(),
                r["MeetingResponseStatus"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(types, vec![(1, 5), (3, 3), (2, 4)]);
    assert!(!google.contains_key("Location"));
    let tb = appointment::read(THUNDERBIRD).unwrap();
    assert_has(
        &tb,
        &json!({
            "AllDayEvent": true, "Start": "2026-07-05", "End": "2026-07-06", "BusyStatus": 0,
            "Categories": "Family, Holidays", "Sensitivity": 2, "Importance": 2,
            "ReminderMinutesBeforeStart": 1440,
            "Recurrence": {"RecurrenceType": 5, "Interval": 1, "DayOfMonth": 5, "MonthOfYear": 7,
                "PatternStartDate": "2026-07-05", "NoEndDate": true},
        }),
    );
}

#[test]
fn tasks_from_thunderbird_and_apple_read() {
    let tb = task::read(THUNDERBIRD_TASK).unwrap();
    assert_has(
        &tb,
        &json!({
            "Subject": "File taxes", "StartDate": "2026-04-01", "DueDate": "2026-05-31", "Status": 1,
            "Complete": false, "PercentComplete": 40, "Importance": 0, "ReminderSet": true,
            "ReminderTime": "2026-05-31T14:00:00Z", "IsRecurring": false,
        }),
    );
    let apple = task::read(APPLE_TASK).unwrap();
    assert_has(
        &apple,
        &json!({"Subject": "Buy milk", "DueDate": "2026-03-02", "Complete": true, "Status": 2,
            "DateCompleted": "2026-03-02", "ReminderTime": "2026-03-02T08:00:00Z"}),
    );
}

#[test]
fn a_new_subject_changes_only_the_summary_and_the_stamps() {
    let out = appointment_patch::patch_at(
        APPLE,
        &fields(json!({"Subject": "Coffee with Anna and Ben"})),
        now(),
        false,
    )
    .unwrap();
    let expected = APPLE
        .replace(
            "SUMMARY:Coffee with Anna\r\n",
            "SUMMARY:Coffee with Anna and Ben\r\n",
        )
        .replace("DTSTAMP:20260601T080000Z", "DTSTAMP:20260701T120000Z")
        .replace("LAST-MODIFIED:20260601T080000Z", "LAST-MODIFIED:20260701T120000Z");
    assert_eq!(out, expected);
    // Sending back what was read changes nothing but the stamps.
    for body in [APPLE, GOOGLE, OUTLOOK_CUSTOM, OUTLOOK_ALL_DAY, THUNDERBIRD] {
        let same = appointment::read(body).unwrap();
        let out = appointment_patch::patch_at(body, &same, now(), false).unwrap();
        let diff = changed_lines(body, &out);
        assert!(
            diff.iter()
                .all(|l| l.contains("DTSTAMP") || l.contains("LAST-MODIFIED")),
            "{diff:#?}"
        );
    }
}

#[test]
fn text_keeps_its_language_and_a_new_body_drops_the_stale_html() {
    let changes = fields(json!({"Subject": "Team sync; weekly", "Body": "New agenda"}));
    let out = appointment_patch::patch_at(OUTLOOK_CUSTOM, &changes, now(), false).unwrap();
    assert!(
        out.contains("SUMMARY;LANGUAGE=de:Team sync\\; weekly\r\n"),
        "{out}"
    );
    assert!(
        out.contains("DESCRIPTION:New agenda\r\n") && !out.contains("X-ALT-DESC"),
        "{out}"
    );
    assert!(
        out.contains("SUMMARY;LANGUAGE=de:Team sync (moved)"),
        "the override stays"
    );
}

#[test]
fn reminders_touch_only_their_own_alarm() {
    let off =
        appointment_patch::patch_at(APPLE, &fields(json!({"ReminderSet": false})), now(), false).unwrap();
    assert!(!off.contains("X-APPLE-DEFAULT-ALARM") && !off.contains("TRIGGER:-PT30M"));
    assert!(off.contains("TRIGGER;VALUE=DATE-TIME:20260611T180000Z"));
    let on = appointment_patch::patch_at(
        &off,
        &fields(json!({"ReminderSet": true, "ReminderMinutesBeforeStart": 10})),
        now(),
        false,
    )
    .unwrap();
    assert!(on.contains(
        "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:Reminder\r\nTRIGGER:-PT10M\r\nEND:VALARM\r\nEND:VEVENT"
    ));
    let moved = appointment_patch::patch_at(
        GOOGLE,
        &fields(json!({"ReminderMinutesBeforeStart": 45})),
        now(),
        false,
    )
    .unwrap();
    assert_eq!(
        changed_lines(GOOGLE, &moved)
            .into_iter()
            .filter(|l| !l.contains("DTSTAMP") && !l.contains("LAST-MODIFIED"))
            .collect::<Vec<_>>(),
        vec!["+TRIGGER:-PT45M", "-TRIGGER:-P0DT0H30M0S"]
    );
}

#[test]
fn an_alarm_related_to_the_end_counts_from_the_start() {
    let body = APPLE.replace("TRIGGER:-PT30M", "TRIGGER;RELATED=END:-PT90M");
    let f = appointment::read(&body).unwrap();
    assert_eq!(f["ReminderMinutesBeforeStart"], 30);
    let out = appointment_patch::patch_at(
        &body,
        &fields(json!({"ReminderMinutesBeforeStart": 20})),
        now(),
        false,
    )
    .unwrap();
    assert!(out.contains("TRIGGER:-PT20M\r\n") && !out.contains("RELATED=END"));
}

#[test]
fn recipients_keep_the_parameters_of_untouched_attendees() {
    let mut f = appointment::read(GOOGLE).unwrap();
    let mut list = f["Recipients"].as_array().unwrap().clone();
    list[2]["MeetingResponseStatus"] = 3.into();
    list.remove(1);
    list.push(json!({"Address": "dave@example.com", "Name": "Dave; Jr.", "Type": 2, "MeetingResponseStatus": 0, "Rsvp": true}));
    f.insert("Recipients".into(), list.clone().into());
    let out =
        appointment_patch::patch_at(GOOGLE, &fields(json!({"Recipients": list})), now(), false).unwrap();
    assert!(out.contains("ATTENDEE;CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=\r\n TRUE;CN=bob@example.com;X-NUM-GUESTS=0:mailto:bob@example.com\r\n"));
    assert!(!out.contains("resource.calendar"));
    let back = appointment::read(&out).unwrap();
    assert_eq!(back["Recipients"], f["Recipients"]);
    assert!(out.contains("X-NUM-GUESTS=0:mailto:carol@example.com"), "{out}");
}

#[test]
fn time_changes_keep_the_tzid_scheme_and_bump_the_sequence() {
    // Same zone: the Customized Time Zone's TZID and VTIMEZONE stay.
    let out = appointment_patch::patch_at(
        OUTLOOK_CUSTOM,
        &fields(json!({"Start": "2026-03-03T10:30:00", "End": "2026-03-03T11:30:00"})),
        now(),
        false,
    )
    .unwrap();
    assert!(
        out.contains("DTSTART;TZID=\"Customized Time Zone\":20260303T103000\r\n"),
        "{out}"
    );
    assert!(out.contains("TZID:Customized Time Zone"));
    assert!(out.contains("SEQUENCE:1\r\n"));
    assert!(
        out.contains("RRULE:FREQ=WEEKLY;UNTIL=20260428T083000Z;INTERVAL=1;BYDAY=TU;WKST=SU\r\n"),
        "{out}"
    );
    // Another zone: IANA TZID, and a generated VTIMEZONE since the object had some.
    let out = appointment_patch::patch_at(
        APPLE,
        &fields(
            json!({"Start": "2026-06-12T09:30:00", "StartTimeZone": "Tokyo Standard Time",
            "End": "2026-06-12T10:30:00", "EndTimeZone": "Tokyo Standard Time"}),
        ),
        now(),
        false,
    )
    .unwrap();
    assert!(out.contains("DTSTART;TZID=Asia/Tokyo:20260612T093000"));
    assert!(out.contains("BEGIN:VTIMEZONE\r\nTZID:Asia/Tokyo\r\n"));
    assert!(
        !out.contains("TZID:Europe/Berlin"),
        "the unused VTIMEZONE goes: {out}"
    );
    assert!(out.contains("SEQUENCE:2\r\n"));
    let back = appointment::read(&out).unwrap();
    assert_eq!(back["StartUTC"], "2026-06-12T00:30:00Z");
    // Without VTIMEZONEs in the stored copy, none is added.
    let out = appointment_patch::patch_at(THUNDERBIRD, &fields(json!({"AllDayEvent": false,
        "Start": "2026-07-05T18:00:00", "StartTimeZone": "Romance Standard Time", "End": "2026-07-05T23:00:00"})), now(), false)
        .unwrap();
    assert!(
        out.contains("DTSTART;TZID=Europe/Paris:20260705T180000") && !out.contains("VTIMEZONE"),
        "{out}"
    );
    assert!(out.contains("RRULE:FREQ=YEARLY\r\n"));
}

#[test]
fn exceptions_patch_as_exdates_and_overrides() {
    let mut f = appointment::read(OUTLOOK_CUSTOM).unwrap();
    let list = json!([
        {"OriginalDate": "2026-03-10T10:00:00", "Deleted": false, "Subject": "Team sync (moved)", "Start": "2026-03-10T14:00:00"},
        {"OriginalDate": "2026-03-24T10:00:00", "Deleted": true},
        {"OriginalDate": "2026-03-31T10:00:00", "Deleted": false, "Location": "Room 5", "Start": "2026-03-31T09:00:00", "End": "2026-03-31T09:30:00"},
    ]);
    let out = appointment_patch::patch_at(OUTLOOK_CUSTOM, &fields(json!({"Exceptions": list})), now(), false)
        .unwrap();
    f.insert("Exceptions".into(), list.clone());
    let back = appointment::read(&out).unwrap();
    assert_eq!(back["Exceptions"], list, "{out}");
    // The moved occurrence of March 10 was kept as it was.
    assert!(out.contains("DTSTAMP:20260205T090000Z"));
    assert!(out.contains("EXDATE;TZID=\"Customized Time Zone\":20260324T100000"));
    assert!(!out.contains("20260317T100000"));
    // The all-day series: a new override of an Outlook series.
    let list = json!([
        {"OriginalDate": "2026-03-09", "Deleted": true},
        {"OriginalDate": "2026-03-16", "Deleted": false, "Start": "2026-03-17"},
        {"OriginalDate": "2026-03-23", "Deleted": false, "Subject": "Office day"},
        {"OriginalDate": "2026-03-30", "Deleted": false, "BusyStatus": 3, "Subject": "Off"},
    ]);
    let out = appointment_patch::patch_at(
        OUTLOOK_ALL_DAY,
        &fields(json!({"Exceptions": list})),
        now(),
        false,
    )
    .unwrap();
    assert_eq!(appointment::read(&out).unwrap()["Exceptions"], list, "{out}");
    assert!(out.contains("RECURRENCE-ID;VALUE=DATE:20260330"));
    assert!(
        out.contains("RECURRENCE-ID:20260322T230000Z"),
        "untouched overrides stay"
    );
    // An override that changes nothing yet still is a whole VEVENT with its DTSTAMP.
    let list = json!([{"OriginalDate": "2026-04-06", "Deleted": false}]);
    let out = appointment_patch::patch_at(
        OUTLOOK_ALL_DAY,
        &fields(json!({"Exceptions": list})),
        now(),
        false,
    )
    .unwrap();
    let tail = &out[out.find("RECURRENCE-ID;VALUE=DATE:20260406").unwrap()..];
    assert!(tail.contains("DTSTAMP:20260701T120000Z"), "{out}");
}

#[test]
fn unsupported_items_say_why_and_refuse_recurrence_patches() {
    let base = APPLE.replace(
        "DTSTART;TZID=Europe/Berlin:20260612T093000\r\n",
        "DTSTART;TZID=Europe/Berlin:20260612T093000\r\nRRULE:FREQ=DAILY;COUNT=3\r\n",
    );
    for (extra, why) in [
        ("RRULE:FREQ=WEEKLY;COUNT=2\r\n", "several RRULEs"),
        ("RDATE;TZID=Europe/Berlin:20260701T093000\r\n", "RDATE"),
    ] {
        let body = base.replace(
            "ATTACH;VALUE=URI:https",
            &format!("{extra}ATTACH;VALUE=URI:https"),
        );
        let f = appointment::read(&body).unwrap();
        assert!(f["Unsupported"].as_str().unwrap().contains(why), "{f:?}");
        let refused = appointment::patch(&body, &fields(json!({"Start": "2026-06-12T10:00:00"})));
        assert!(matches!(refused, Err(PatchError::Unfaithful(_))), "{refused:?}");
        assert!(appointment::patch(&body, &fields(json!({"Subject": "Still fine"}))).is_ok());
    }
    for rule in [
        "FREQ=HOURLY",
        "FREQ=MONTHLY;BYSETPOS=1,2;BYDAY=MO",
        "FREQ=DAILY;BYHOUR=9,17",
        "FREQ=YEARLY;BYWEEKNO=3",
        "FREQ=YEARLY;BYYEARDAY=1",
        "FREQ=MONTHLY;BYMONTHDAY=1,15",
    ] {
        let body = base.replace("RRULE:FREQ=DAILY;COUNT=3", &format!("RRULE:{rule}"));
        let f = appointment::read(&body).unwrap();
        assert!(f.contains_key("Unsupported"), "{rule}");
        assert!(matches!(
            appointment::patch(
                &body,
                &fields(json!({"Recurrence": {"RecurrenceType": 0, "Interval": 1}}))
            ),
            Err(PatchError::Unfaithful(_))
        ));
    }
    let future = OUTLOOK_CUSTOM.replace("RECURRENCE-ID;TZID=", "RECURRENCE-ID;RANGE=THISANDFUTURE;TZID=");
    assert!(
        appointment::read(&future).unwrap()["Unsupported"]
            .as_str()
            .unwrap()
            .contains("THISANDFUTURE")
    );
}

#[test]
fn zone_names_without_vtimezone_resolve_or_float() {
    let body = |tzid: &str| {
        format!(
            "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:z\r\nDTSTART;TZID={tzid}:20260310T090000\r\nDTEND;TZID={tzid}:20260310T100000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
        )
    };
    for tzid in [
        "W. Europe Standard Time",
        "/freeassociation.sourceforge.net/Europe/Berlin",
        "posix/Europe/Berlin",
        "custom_Europe/Berlin",
    ] {
        let f = appointment::read(&body(tzid)).unwrap();
        assert_eq!(f["StartTimeZone"], "W. Europe Standard Time", "{tzid}");
    }
    let f = appointment::read(&body("Mars/Olympus")).unwrap();
    assert_eq!(f["Start"], "2026-03-10T09:00:00");
    assert!(!f.contains_key("StartTimeZone"));
}

#[test]
fn task_patches_keep_time_and_zone_of_dates() {
    let out = task::patch_at(
        THUNDERBIRD_TASK,
        &fields(json!({"DueDate": "2026-06-15", "Complete": true})),
        now(),
        false,
    )
    .unwrap();
    assert!(out.contains("DUE;TZID=Europe/Berlin:20260615T170000"), "{out}");
    assert!(out.contains("STATUS:COMPLETED") && out.contains("COMPLETED:20260701T120000Z"));
    assert!(out.contains("TRIGGER;RELATED=END:-PT1H"), "the alarm stays");
    let f = task::read(&out).unwrap();
    assert_has(
        &f,
        &json!({"DueDate": "2026-06-15", "Complete": true, "Status": 2, "PercentComplete": 100, "DateCompleted": "2026-07-01"}),
    );
    let undone = task::patch_at(
        APPLE_TASK,
        &fields(json!({"Complete": false, "Status": 0, "PercentComplete": 0})),
        now(),
        false,
    )
    .unwrap();
    assert_has(
        &task::read(&undone).unwrap(),
        &json!({"Complete": false, "Status": 0}),
    );
    assert!(!undone.contains("COMPLETED:2026"));
    assert!(undone.contains("X-APPLE-SORT-ORDER:700000000"));
    let same = task::read(THUNDERBIRD_TASK).unwrap();
    let out = task::patch_at(THUNDERBIRD_TASK, &same, now(), false).unwrap();
    let diff = changed_lines(THUNDERBIRD_TASK, &out);
    assert!(
        diff.iter()
            .all(|l| l.contains("DTSTAMP") || l.contains("LAST-MODIFIED")),
        "{diff:#?}"
    );
}

#[test]
fn created_objects_are_complete_calendars() {
    let f = fields(
        json!({"Subject": "Planning", "Start": "2026-10-20T09:00:00", "StartTimeZone": "W. Europe Standard Time",
        "End": "2026-10-20T10:00:00", "EndTimeZone": "W. Europe Standard Time", "ReminderSet": true,
        "ReminderMinutesBeforeStart": 10, "BusyStatus": 1,
        "Recurrence": {"RecurrenceType": 1, "Interval": 1, "DayOfWeekMask": 4, "Occurrences": 10}}),
    );
    let body = appointment::create_at("new-1", &f, now()).unwrap();
    for part in [
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//opconnect//EN\r\n",
        "BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\n",
        "UID:new-1\r\n",
        "DTSTART;TZID=Europe/Berlin:20261020T090000\r\n",
        "RRULE:FREQ=WEEKLY;COUNT=10;BYDAY=TU\r\n",
        "X-MICROSOFT-CDO-BUSYSTATUS:TENTATIVE\r\n",
        "TRIGGER:-PT10M\r\n",
        "END:VCALENDAR\r\n",
    ] {
        assert!(body.contains(part), "{part} in {body}");
    }
    assert!(matches!(
        appointment::create_at("x", &fields(json!({"Subject": "no start"})), now()),
        Err(PatchError::Field { .. })
    ));
    let todo = task::create_at(
        "t-1",
        &fields(json!({"Subject": "Call", "DueDate": "2026-10-21", "Status": 3})),
        now(),
    )
    .unwrap();
    assert!(
        todo.contains("BEGIN:VTODO\r\nUID:t-1\r\n") && todo.contains("DUE;VALUE=DATE:20261021\r\n"),
        "{todo}"
    );
    assert_has(
        &task::read(&todo).unwrap(),
        &json!({"Status": 3, "Complete": false, "DueDate": "2026-10-21"}),
    );
}

#[test]
fn meeting_status_says_who_organizes_and_whether_it_is_cancelled() {
    let mut f = appointment::read(GOOGLE).unwrap();
    assert_eq!(f["MeetingStatus"], 1);
    let organizer = f["Organizer"].as_str().unwrap().to_ascii_lowercase();
    appointment::received(&mut f, &[organizer]);
    assert_eq!(f["MeetingStatus"], 1, "the user organizes it");
    appointment::received(&mut f, &["someone@else.example".into()]);
    assert_eq!(f["MeetingStatus"], 3);
    let cancelled = GOOGLE.replacen("BEGIN:VEVENT\r\n", "BEGIN:VEVENT\r\nSTATUS:CANCELLED\r\n", 1);
    let mut f = appointment::read(&cancelled).unwrap();
    assert_eq!(f["MeetingStatus"], 5);
    appointment::received(&mut f, &["someone@else.example".into()]);
    assert_eq!(f["MeetingStatus"], 7);
    assert_eq!(appointment::read(THUNDERBIRD).unwrap()["MeetingStatus"], 0);
}

/// Servers order a series' components freely. An override stored before the master and deleted
/// through `Exceptions` moves the master's index; the rest of the patch still finds it (found
/// by the `item_write` fuzz target: it panicked with an index out of bounds).
#[test]
fn an_override_before_the_master_can_be_deleted() {
    let body = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n\
        BEGIN:VEVENT\r\nUID:s@x\r\nDTSTAMP:20260201T120000Z\r\nRECURRENCE-ID:20260309T090000Z\r\n\
        DTSTART:20260309T110000Z\r\nDTEND:20260309T113000Z\r\nSUMMARY:Moved\r\nEND:VEVENT\r\n\
        BEGIN:VEVENT\r\nUID:s@x\r\nDTSTAMP:20260201T120000Z\r\nDTSTART:20260302T090000Z\r\n\
        DTEND:20260302T093000Z\r\nRRULE:FREQ=WEEKLY;COUNT=4\r\nSUMMARY:Standup\r\nEND:VEVENT\r\n\
        END:VCALENDAR\r\n";
    let list = json!([{"OriginalDate": "2026-03-09T09:00:00", "Deleted": true}]);
    let changes = fields(json!({"Exceptions": list, "Subject": "Daily"}));
    let out = appointment_patch::patch_at(body, &changes, now(), false).unwrap();
    let back = appointment::read(&out).unwrap();
    assert_eq!(back["Exceptions"], list, "{out}");
    assert_eq!(back["Subject"], "Daily");
    assert!(!out.contains("SUMMARY:Moved"), "{out}");
}
