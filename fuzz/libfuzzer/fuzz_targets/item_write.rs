//! cargo-fuzz target `item_write`: libFuzzer's inputs to `opconnect_fuzz_targets::item_write` (fuzz/src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| opconnect_fuzz_targets::item_write(data));
