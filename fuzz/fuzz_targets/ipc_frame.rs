//! What a local process writes to the agent's socket: frames (4-byte length + JSON) and the
//! JSON-RPC requests, responses and events inside them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opconnect_ipc::frame::{self, Decoded};
use opconnect_ipc::{Event, Request, Response};

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok(Decoded::Frame { len }) = frame::decode(rest) {
        let payload = &rest[4..4 + len];
        if let Ok(req) = serde_json::from_slice::<Request>(payload) {
            let _ = serde_json::to_vec(&req);
        }
        let _ = serde_json::from_slice::<Response>(payload);
        let _ = serde_json::from_slice::<Event>(payload);
        rest = &rest[4 + len..];
    }
    let _ = serde_json::from_slice::<Request>(data);
});
