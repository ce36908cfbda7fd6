//! The item model's mapping from server bytes to Outlook field sets, for each item class.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opconnect_actors::formats::item::{self, ItemClass};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let Ok(body) = std::str::from_utf8(body) else {
        return;
    };
    let class = [
        ItemClass::Appointment,
        ItemClass::Task,
        ItemClass::Contact,
        ItemClass::DistList,
        ItemClass::Note,
    ][pick as usize % 5];
    let _ = item::read(class, body);
});
