//! cargo-fuzz target `autoconfig`: libFuzzer's inputs to `opconnect_fuzz_targets::autoconfig_file` (fuzz/src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| opconnect_fuzz_targets::autoconfig_file(data));
