//! cargo-fuzz target `sieve_response`: libFuzzer's inputs to `opconnect_fuzz_targets::sieve_response` (fuzz/src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| opconnect_fuzz_targets::sieve_response(data));
