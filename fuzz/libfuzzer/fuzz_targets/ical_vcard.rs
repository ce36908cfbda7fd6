//! cargo-fuzz target `ical_vcard`: libFuzzer's inputs to `opconnect_fuzz_targets::ical_vcard` (fuzz/src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| opconnect_fuzz_targets::ical_vcard(data));
