//! cargo-fuzz target `config`: libFuzzer's inputs to `opconnect_fuzz_targets::config_file` (fuzz/src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| opconnect_fuzz_targets::config_file(data));
