//! What DNS and the user hand to discovery: an email address, TXT strings (RFC 6764 §4) and SRV
//! answers (RFC 2782), one per line: `priority weight port target`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opconnect_actors::formats::discovery::{
    Service, SrvRecord, email_domain, guesses, srv_candidates, srv_queries, txt_path,
};
use opconnect_actors::net::endpoint::{self, Protocol};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.lines();
    let email = lines.next().unwrap_or_default();
    let domain = email_domain(email).unwrap_or_else(|| "example.org".into());
    let txt: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split('|')
        .map(str::to_owned)
        .collect();
    let path = txt_path(&txt);
    let records: Vec<SrvRecord> = lines
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some(SrvRecord {
                priority: f.next()?.parse().ok()?,
                weight: f.next()?.parse().ok()?,
                port: f.next()?.parse().ok()?,
                target: f.next()?.to_owned(),
            })
        })
        .collect();
    for service in Service::ALL {
        let answers: Vec<_> = srv_queries(service)
            .map(|q| (q, records.clone(), path.clone()))
            .collect();
        let candidates = srv_candidates(&answers);
        let guessed = guesses(service, &domain, records.first().map(|r| r.target.as_str()));
        for c in candidates.iter().chain(guessed.iter()) {
            for proto in [Protocol::Imap, Protocol::Smtp, Protocol::Dav, Protocol::Sieve] {
                let _ = endpoint::parse(proto, &c.url);
            }
        }
    }
    for proto in [Protocol::Imap, Protocol::Smtp, Protocol::Dav, Protocol::Sieve] {
        let _ = endpoint::parse(proto, text);
    }
});
