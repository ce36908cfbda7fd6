//! Measures `calendar.items`' range read cost: 500 recurring objects, a one-week window.
use opconnect_actors::formats::ical;

fn main() {
    let rules = [
        "FREQ=WEEKLY;BYDAY=MO,WE",
        "FREQ=DAILY",
        "FREQ=DAILY;INTERVAL=2",
        "FREQ=MONTHLY;BYDAY=2TU",
        "FREQ=WEEKLY;INTERVAL=2;BYDAY=FR;UNTIL=20301231T230000Z",
    ];
    let bodies: Vec<String> = (0..500)
        .map(|i| {
            format!(
                "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:bench-{i}\r\nDTSTART;TZID=Europe/Berlin:{}0{}0{}T0{}0000\r\nDTEND;TZID=Europe/Berlin:{}0{}0{}T0{}3000\r\nRRULE:{}\r\nSUMMARY:Series {i}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
                2018 + i % 6, 1 + i % 9, 1 + i % 9, i % 9,
                2018 + i % 6, 1 + i % 9, 1 + i % 9, i % 9,
                rules[i % rules.len()]
            )
        })
        .collect();
    let from = ical::parse_bound("2026-03-09").unwrap();
    let to = ical::parse_bound("2026-03-16").unwrap();
    for _ in 0..2 {
        let started = std::time::Instant::now();
        let mut n = 0;
        for b in &bodies {
            n += ical::instances(b.as_bytes(), from, to).unwrap().len();
        }
        println!("500 series, one week: {n} occurrences in {:?}", started.elapsed());
    }
}
