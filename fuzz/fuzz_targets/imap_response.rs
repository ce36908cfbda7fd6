//! IMAP server bytes: the line guard (whatever the split, it never panics, releases no more
//! than it was given, and agrees with itself) and the response parser behind it.
#![no_main]

use async_imap::imap_proto::Response;
use libfuzzer_sys::fuzz_target;
use opconnect_actors::imap::capped::Guard;

fuzz_target!(|data: &[u8]| {
    let Some((&split, bytes)) = data.split_first() else {
        return;
    };
    let mut guard = Guard::default();
    let mut released = Vec::new();
    let step = usize::from(split).max(1);
    for chunk in bytes.chunks(step) {
        if guard.push(chunk).is_err() {
            return;
        }
        let n = guard.ready().len();
        released.extend_from_slice(guard.ready());
        guard.consume(n);
    }
    assert!(
        bytes.starts_with(&released),
        "the guard passes bytes on unchanged and in order"
    );
    let mut rest: &[u8] = &released;
    while let Ok((left, _)) = Response::parse(rest) {
        if left.len() >= rest.len() {
            break;
        }
        rest = left;
    }
});
