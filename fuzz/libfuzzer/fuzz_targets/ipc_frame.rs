//! cargo-fuzz target `ipc_frame`: libFuzzer's inputs to `opconnect_fuzz_targets::ipc_frame` (fuzz/src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| opconnect_fuzz_targets::ipc_frame(data));
