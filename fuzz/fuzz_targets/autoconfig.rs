//! What a domain's web server hands discovery: a Thunderbird autoconfig file (issue 21). The first
//! line is the email address, the rest the file; every candidate read from it must then pass or
//! fail the endpoint rules without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opconnect_actors::formats::autoconfig;
use opconnect_actors::formats::discovery::Service;
use opconnect_actors::net::endpoint::{self, Protocol};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (email, xml) = text.split_once('\n').unwrap_or(("alice@example.org", text));
    if let Ok(found) = autoconfig::parse(xml, email, "fuzz") {
        for c in found.candidates {
            let proto = match c.service {
                Service::Imap => Protocol::Imap,
                Service::Smtp => Protocol::Smtp,
                Service::Sieve => Protocol::Sieve,
                Service::CalDav | Service::CardDav => Protocol::Dav,
            };
            let _ = endpoint::parse(proto, &c.url);
        }
    }
});
