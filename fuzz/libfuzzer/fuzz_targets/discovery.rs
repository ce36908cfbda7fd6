//! cargo-fuzz target `discovery`: libFuzzer's inputs to `opconnect_fuzz_targets::discovery_answers` (fuzz/src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| opconnect_fuzz_targets::discovery_answers(data));
