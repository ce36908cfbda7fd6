//! ManageSieve answers (RFC 5804 §4), as the client reads them: repeatedly from the front.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opconnect_actors::sieve::response::parse_response;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok(Some((_, used))) = parse_response(rest) {
        assert!(used > 0 && used <= rest.len(), "a response uses what it read");
        rest = &rest[used..];
    }
});
