//! cargo-fuzz target `dav_multistatus`: libFuzzer's inputs to `opconnect_fuzz_targets::dav_multistatus` (fuzz/src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| opconnect_fuzz_targets::dav_multistatus(data));
