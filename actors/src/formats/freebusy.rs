//! Free/busy: the VFREEBUSY request a scheduling outbox takes (RFC 6638 §5, RFC 5546 §3.3), the
//! `schedule-response` it answers with, and FREEBUSY periods (RFC 5545 §3.8.2.6) normalized to
//! busy, busy-tentative and busy-unavailable.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use quick_xml::events::Event;
use quick_xml::reader::Reader;

/// One busy period of an attendee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// `busy`, `busy-tentative` or `busy-unavailable`.
    pub kind: &'static str,
}

/// One recipient's answer in a schedule-response (RFC 6638 §10.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Answer {
    pub recipient: String,
    /// `2.0;Success`, `3.7;Invalid calendar user`, … (RFC 5545 §3.8.8.3).
    pub status: String,
    pub calendar_data: Option<String>,
}

fn utc(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// PROPFIND of a principal for its scheduling outbox and addresses (RFC 6638 §2.1.1, §2.4.1).
pub const PROPFIND_SCHEDULING: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<d:propfind xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:prop><c:schedule-outbox-URL/><c:calendar-user-address-set/></d:prop></d:propfind>"#;

/// The free-busy-query REPORT body for [`start`, `end`) (RFC 4791 §7.10).
pub fn query_body(start: DateTime<Utc>, end: DateTime<Utc>) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><c:free-busy-query xmlns:c="urn:ietf:params:xml:ns:caldav"><c:time-range start="{}" end="{}"/></c:free-busy-query>"#,
        utc(start),
        utc(end)
    )
}

/// A VFREEBUSY REQUEST for `attendees` over [`start`, `end`).
pub fn request(
    organizer: &str,
    attendees: &[String],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    uid: &str,
) -> String {
    let mut ics = format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//opconnect//freebusy//EN\r\nMETHOD:REQUEST\r\n\
         BEGIN:VFREEBUSY\r\nUID:{uid}\r\nDTSTAMP:{}\r\nDTSTART:{}\r\nDTEND:{}\r\nORGANIZER:{organizer}\r\n",
        utc(Utc::now()),
        utc(start),
        utc(end)
    );
    for attendee in attendees {
        ics.push_str(&format!("ATTENDEE:{attendee}\r\n"));
    }
    ics.push_str("END:VFREEBUSY\r\nEND:VCALENDAR\r\n");
    ics
}

/// The answers of a `C:schedule-response`.
pub fn parse_schedule_response(xml: &[u8]) -> Result<Vec<Answer>, String> {
    let mut reader = Reader::from_reader(xml);
    let mut out = Vec::new();
    let mut current: Option<Answer> = None;
    let mut field: Option<&'static str> = None;
    let mut saw_root = false;
    let mut buf = Vec::new();
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| format!("schedule-response: {e}"))?;
        match event {
            Event::Start(e) => match e.local_name().as_ref() {
                "schedule-response" => saw_root = true,
                "response" => current = Some(Answer::default()),
                "recipient" => field = Some("recipient"),
                "request-status" => field = Some("status"),
                "calendar-data" => field = Some("data"),
                _ => {}
            },
            Event::Text(t) => push(&mut current, field, &t.xml10_content()),
            Event::CData(t) => push(&mut current, field, &t.xml10_content()),
            Event::GeneralRef(r) => {
                let name = r.xml10_content();
                let text = quick_xml::escape::resolve_predefined_entity(&name).unwrap_or("");
                push(&mut current, field, text);
            }
            Event::End(e) => match e.local_name().as_ref() {
                "response" => out.extend(current.take()),
                "recipient" | "request-status" | "calendar-data" => field = None,
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !saw_root {
        return Err("not a schedule-response".into());
    }
    for a in &mut out {
        a.recipient = a.recipient.trim().to_owned();
        a.status = a.status.trim().to_owned();
    }
    Ok(out)
}

fn push(current: &mut Option<Answer>, field: Option<&'static str>, text: &str) {
    let Some(answer) = current.as_mut() else { return };
    match field {
        Some("recipient") => answer.recipient.push_str(text),
        Some("status") => answer.status.push_str(text),
        Some("data") => answer
            .calendar_data
            .get_or_insert_with(String::new)
            .push_str(text),
        _ => {}
    }
}

/// The busy periods of a VFREEBUSY (FREE periods are left out).
pub fn periods(ics: &str) -> Result<Vec<Period>, String> {
    let unfolded = crate::formats::text::unfold_to_string(ics.as_bytes())?;
    let mut out = Vec::new();
    for line in unfolded.lines() {
        let Some(rest) = line.strip_prefix("FREEBUSY") else {
            continue;
        };
        let (params, values) = rest
            .split_once(':')
            .ok_or_else(|| format!("malformed FREEBUSY: {line}"))?;
        let fbtype = params
            .split(';')
            .find_map(|p| p.strip_prefix("FBTYPE="))
            .unwrap_or("BUSY")
            .to_ascii_uppercase();
        let kind = match fbtype.as_str() {
            "FREE" => continue,
            "BUSY-TENTATIVE" => "busy-tentative",
            "BUSY-UNAVAILABLE" => "busy-unavailable",
            // RFC 5545 §3.2.9: unknown types are treated as BUSY.
            _ => "busy",
        };
        for value in values.split(',') {
            let (start, end) = value
                .split_once('/')
                .ok_or_else(|| format!("malformed period: {value}"))?;
            let start = date_time(start)?;
            let end = if end.starts_with('P') || end.starts_with("+P") {
                start + duration(end)?
            } else {
                date_time(end)?
            };
            out.push(Period { start, end, kind });
        }
    }
    out.sort_by_key(|p| p.start);
    Ok(out)
}

/// `20261201T090000Z` (RFC 5545 §3.3.5, UTC form as FREEBUSY requires).
fn date_time(text: &str) -> Result<DateTime<Utc>, String> {
    let bare = text
        .trim()
        .strip_suffix('Z')
        .ok_or_else(|| format!("FREEBUSY time not in UTC: {text}"))?;
    NaiveDateTime::parse_from_str(bare, "%Y%m%dT%H%M%S")
        .map(|t| t.and_utc())
        .map_err(|e| format!("bad time {text}: {e}"))
}

/// `PT1H30M`, `P1D`, `P2W` (RFC 5545 §3.3.6).
fn duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("bad duration {text}");
    let body = text.trim_start_matches('+').strip_prefix('P').ok_or_else(bad)?;
    let (mut total, mut number, mut in_time) = (Duration::zero(), String::new(), false);
    for c in body.chars() {
        match c {
            'T' => in_time = true,
            '0'..='9' => number.push(c),
            unit => {
                let n: i64 = number.parse().map_err(|_| bad())?;
                number.clear();
                total += match (unit, in_time) {
                    ('W', false) => Duration::weeks(n),
                    ('D', false) => Duration::days(n),
                    ('H', true) => Duration::hours(n),
                    ('M', true) => Duration::minutes(n),
                    ('S', true) => Duration::seconds(n),
                    _ => return Err(bad()),
                };
            }
        }
    }
    if !number.is_empty() {
        return Err(bad());
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cyrus_answers() {
        let xml = br#"<C:schedule-response xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:D="DAV:"><C:response><C:recipient><D:href>mailto:bob@localhost</D:href></C:recipient><C:request-status>2.0;Success</C:request-status><C:calendar-data content-type="text/calendar"><![CDATA[BEGIN:VCALENDAR
BEGIN:VFREEBUSY
FREEBUSY:20261201T090000Z/20261201T100000Z
FREEBUSY;FBTYPE=BUSY-TENTATIVE:20261201T110000Z/PT30M,20261201T130000Z/20261201T
 140000Z
FREEBUSY;FBTYPE=FREE:20261201T150000Z/PT1H
END:VFREEBUSY
END:VCALENDAR
]]></C:calendar-data></C:response><C:response><C:recipient><D:href>mailto:nobody@localhost</D:href></C:recipient><C:request-status>3.7;Invalid calendar user</C:request-status></C:response></C:schedule-response>"#;
        let answers = parse_schedule_response(xml).unwrap();
        assert_eq!(answers.len(), 2);
        assert_eq!(
            (answers[0].recipient.as_str(), answers[0].status.as_str()),
            ("mailto:bob@localhost", "2.0;Success")
        );
        assert!(answers[1].calendar_data.is_none());
        let periods = periods(answers[0].calendar_data.as_deref().unwrap()).unwrap();
        let shown: Vec<(String, String, &str)> = periods
            .iter()
            .map(|p| (p.start.to_rfc3339(), p.end.to_rfc3339(), p.kind))
            .collect();
        assert_eq!(
            shown,
            [
                (
                    "2026-12-01T09:00:00+00:00".into(),
                    "2026-12-01T10:00:00+00:00".into(),
                    "busy"
                ),
                (
                    "2026-12-01T11:00:00+00:00".into(),
                    "2026-12-01T11:30:00+00:00".into(),
                    "busy-tentative"
                ),
                (
                    "2026-12-01T13:00:00+00:00".into(),
                    "2026-12-01T14:00:00+00:00".into(),
                    "busy-tentative"
                ),
            ]
        );
    }

    #[test]
    fn the_request_names_everyone() {
        let start = date_time("20261201T000000Z").unwrap();
        let ics = request(
            "mailto:alice@x",
            &["mailto:bob@x".into()],
            start,
            start + Duration::days(1),
            "u1",
        );
        assert!(ics.contains("METHOD:REQUEST\r\n") && ics.contains("ATTENDEE:mailto:bob@x\r\n"));
        assert!(ics.contains("DTEND:20261202T000000Z\r\n"));
        assert!(parse_schedule_response(b"<html/>").is_err());
        assert!(
            periods("FREEBUSY:20261201T090000/20261201T100000Z").is_err(),
            "times must be UTC"
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in ".{0,200}") {
            let _ = periods(&text);
            let _ = periods(&format!("FREEBUSY:{text}"));
            let _ = parse_schedule_response(text.as_bytes());
        }
    }
}
