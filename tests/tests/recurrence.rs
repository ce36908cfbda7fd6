//! Range reads of recurring events through the agent against Radicale: a week of a calendar with
//! 500 endless series is expanded within that week only (the time is printed, not asserted), and
//! the recurrence cases of issue 16 come out right end to end: two RRULEs, an UNTIL on an
//! occurrence, Outlook's all-day overrides with a Windows-zone RECURRENCE-ID, and a TZID that
//! names no zone (read as floating time with a warning, not refused).

use std::fs;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use opconnect_tests::config::render_config;
use opconnect_tests::{AccountSpec, Agent, AgentSettings, Radicale};
use serde_json::{Value, json};

const FIXTURES: [(&str, &str); 3] = [
    (
        "two-rrules",
        include_str!("../../actors/tests/fixtures/ical/recurring/thunderbird-two-rrules.ics"),
    ),
    (
        "until",
        include_str!("../../actors/tests/fixtures/ical/recurring/outlook-weekly-until-on-occurrence.ics"),
    ),
    (
        "allday",
        include_str!("../../actors/tests/fixtures/ical/recurring/outlook-allday-windows-recurrence-id.ics"),
    ),
];

const MARS: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:mars\r\n\
DTSTAMP:20260301T000000Z\r\nDTSTART;TZID=Mars/Olympus:20260310T100000\r\n\
DTEND;TZID=Mars/Olympus:20260310T110000\r\nRRULE:FREQ=DAILY;COUNT=3\r\nSUMMARY:On Mars\r\n\
END:VEVENT\r\nEND:VCALENDAR\r\n";

/// 500 endless or long series in Europe/Berlin, started 2018-2023 (as actors/examples/range_bench.rs).
fn series(i: usize) -> String {
    let rules = [
        "FREQ=WEEKLY;BYDAY=MO,WE",
        "FREQ=DAILY",
        "FREQ=DAILY;INTERVAL=2",
        "FREQ=MONTHLY;BYDAY=2TU",
        "FREQ=WEEKLY;INTERVAL=2;BYDAY=FR;UNTIL=20301231T230000Z",
    ];
    let (y, m, h) = (2018 + i % 6, 1 + i % 9, i % 9);
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:bench-{i}\r\n\
         DTSTAMP:20260301T000000Z\r\nDTSTART;TZID=Europe/Berlin:{y}0{m}0{m}T0{h}0000\r\n\
         DTEND;TZID=Europe/Berlin:{y}0{m}0{m}T0{h}3000\r\nRRULE:{}\r\nSUMMARY:Series {i}\r\n\
         END:VEVENT\r\nEND:VCALENDAR\r\n",
        rules[i % rules.len()]
    )
}

fn of<'a>(items: &'a [Value], uid: &str) -> Vec<&'a Value> {
    items.iter().filter(|i| i["uid"] == uid).collect()
}

fn starts(items: &[Value], uid: &str) -> Vec<String> {
    of(items, uid)
        .iter()
        .map(|i| i["start"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn a_week_of_500_series_and_the_issue_16_cases() -> Result<()> {
    let radicale = Radicale::start()?;
    let cal = radicale.create_calendar("alice", "work", "Work")?;
    let dir = radicale.dir().join("collections/collection-root/alice/work");
    for i in 0..500 {
        fs::write(dir.join(format!("bench-{i}.ics")), series(i))?;
    }
    for (name, body) in FIXTURES {
        fs::write(dir.join(format!("{name}.ics")), body)?;
    }
    fs::write(dir.join("mars.ics"), MARS)?;
    let config = render_config(
        &AgentSettings::default(),
        &[AccountSpec::for_user("alice").dav_from(&radicale)],
    );
    let agent = Agent::start(&config)?;
    let began = Instant::now();
    let all = agent.call_until(
        "calendar.items",
        json!({"account": "alice", "calendar": cal}),
        Duration::from_secs(120),
        |v| v.as_array().is_some_and(|a| a.len() == 504),
    )?;
    println!("first sync of 504 series: {:?}", began.elapsed());
    let mars = of(all.as_array().context("items")?, "mars");
    ensure!(
        mars.len() == 1 && mars[0]["error"].is_null(),
        "an unknown zone is no error: {mars:?}"
    );
    ensure!(
        mars[0]["warnings"][0]
            .as_str()
            .is_some_and(|w| w.contains("Mars/Olympus") && w.contains("floating")),
        "{mars:?}"
    );

    let mut ipc = agent.ipc()?;
    ipc.set_timeout(Duration::from_secs(600))?;
    let started = Instant::now();
    let week = ipc.call(
        "calendar.items",
        json!({"account": "alice", "calendar": cal, "start": "2026-03-09T00:00:00Z", "end": "2026-03-16T00:00:00Z"}),
    )?;
    let took = started.elapsed();
    let week = week.as_array().context("items")?.clone();
    let bench = week
        .iter()
        .filter(|i| i["uid"].as_str().is_some_and(|u| u.starts_with("bench-")))
        .count();
    println!(
        "calendar.items, 504 series, one week: {} occurrences in {took:?}",
        week.len()
    );
    // As formats::ical::instances counts them (actors/examples/range_bench.rs).
    ensure!(bench == 1421, "{bench} occurrences of the 500 series");

    // Mondays from one rule, the 15th from the other.
    let two = starts(&week, "tb-2rr-1");
    ensure!(
        two == ["2026-03-09T20:00:00+01:00", "2026-03-15T20:00:00+01:00"],
        "{two:?}"
    );
    // The all-day occurrence of the 10th moved to the 11th: one occurrence, not two.
    let allday = starts(
        &week,
        "040000008200E00074C5B7101A82E00800000000B1C2D3E4F5A6D901000000000000000010000000",
    );
    ensure!(allday == ["2026-03-11"], "{allday:?}");
    let on_mars = starts(&week, "mars");
    ensure!(
        on_mars
            == [
                "2026-03-10T10:00:00+00:00",
                "2026-03-11T10:00:00+00:00",
                "2026-03-12T10:00:00+00:00"
            ],
        "{on_mars:?}"
    );

    // UNTIL=20260601T080000Z is 10:00 in Berlin on Monday 1 June: the last occurrence.
    let june = ipc.call(
        "calendar.items",
        json!({"account": "alice", "calendar": cal, "start": "2026-05-31T00:00:00Z", "end": "2026-06-08T00:00:00Z"}),
    )?;
    let until = starts(
        june.as_array().context("items")?,
        "040000008200E00074C5B7101A82E00800000000A0B1C2D3E4F5D901000000000000000010000000",
    );
    ensure!(until == ["2026-06-01T10:00:00+02:00"], "{until:?}");
    Ok(())
}
