//! cargo-fuzz target `imap_response`: libFuzzer's inputs to `opconnect_fuzz_targets::imap_response` (fuzz/src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| opconnect_fuzz_targets::imap_response(data));
