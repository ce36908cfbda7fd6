//! iCalendar and vCard bodies as servers store them (first byte picks the reader).
#![no_main]

use libfuzzer_sys::fuzz_target;
use opconnect_actors::formats::{freebusy, ical, vcard};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    match pick % 3 {
        0 => {
            let _ = ical::parse_event(body);
        }
        1 => {
            let _ = vcard::parse_contact(body);
        }
        _ => {
            if let Ok(text) = std::str::from_utf8(body) {
                let _ = freebusy::periods(text);
            }
        }
    }
});
