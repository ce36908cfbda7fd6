//! The configuration file, read by the agent's own loader (included from agent/src/config.rs:
//! the agent is a binary crate). A refusal never repeats a password written into a URL.
#![no_main]

#[allow(dead_code, unused_imports)]
#[path = "../../agent/src/config.rs"]
mod config;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = config::Config::parse(std::path::Path::new("config.toml"), text) {
        // A URL's password, when the text has one, is masked in the message (a password that
        // also appears elsewhere in the text is not a secret the message could keep).
        for word in text.split(|c: char| c.is_whitespace() || c == '"' || c == '\'') {
            if let Some((_, rest)) = word.split_once("://")
                && let Some((userinfo, _)) = rest.split_once('@')
                && let Some((_, password)) = userinfo.split_once(':')
                && password.len() >= 8
                && password.chars().all(|c| c.is_ascii_alphanumeric())
                && text.matches(password).count() == 1
            {
                assert!(!e.0.contains(password), "{}", e.0);
            }
        }
    }
});
