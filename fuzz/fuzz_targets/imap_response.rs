//! IMAP server bytes: the line guard (whatever the split, it never panics and passes on every
//! byte, adding at most the space after a status line's response code) and the response parser
//! behind it, which must not panic on what the guard passes on.
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
    let no_spaces = |b: &[u8]| b.iter().copied().filter(|c| *c != b' ').collect::<Vec<u8>>();
    assert!(
        no_spaces(bytes).starts_with(&no_spaces(&released)),
        "the guard passes bytes on in order, adding spaces only"
    );
    let mut rest: &[u8] = &released;
    while let Ok((left, _)) = Response::parse(rest) {
        if left.len() >= rest.len() {
            break;
        }
        rest = left;
    }
});
