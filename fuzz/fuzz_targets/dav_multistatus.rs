//! DAV `207 Multi-Status` bodies as servers send them, read the way discovery, sync, delegation
//! and free/busy read them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opconnect_actors::dav::discovery::{self, DavService};
use opconnect_actors::dav::{proxy, xml};
use opconnect_actors::formats::freebusy;
use url::Url;

fuzz_target!(|data: &[u8]| {
    let _ = xml::names_precondition(data, "valid-sync-token");
    let _ = freebusy::parse_schedule_response(data);
    let Ok(ms) = xml::parse_multistatus(data) else {
        return;
    };
    let base = Url::parse("https://dav.example.org/home/alice/").unwrap();
    for service in [DavService::CalDav, DavService::CardDav] {
        let _ = discovery::collections(&ms, &base, service);
        let _ = discovery::home_sets(&ms, &base, service);
    }
    let _ = proxy::links(&ms, &base);
    let _ = proxy::card(&ms, &base);
});
