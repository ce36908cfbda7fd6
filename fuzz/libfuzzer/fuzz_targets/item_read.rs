//! cargo-fuzz target `item_read`: libFuzzer's inputs to `opconnect_fuzz_targets::item_read` (fuzz/src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| opconnect_fuzz_targets::item_read(data));
