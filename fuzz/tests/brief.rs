//! Every fuzz target, briefly, in the ordinary test suite: its seeds (`fuzz/seeds/NAME/`), the
//! inputs that once crashed it (`fuzz/regressions/NAME/`), then mutated seeds for a few seconds.
//! `OPCONNECT_FUZZ_SECONDS` and `OPCONNECT_FUZZ_SEED` change the budget and the sequence.

use std::path::Path;
use std::time::Duration;

use opconnect_fuzz_targets::{TARGETS, mutate};

fn inputs(dir: &Path) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
    paths.sort();
    paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

fn brief(name: &str) {
    let target = TARGETS.iter().find(|(n, _)| *n == name).unwrap().1;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut seeds = inputs(&root.join("seeds").join(name));
    assert!(!seeds.is_empty(), "fuzz/seeds/{name}/ has no seed");
    seeds.extend(inputs(&root.join("regressions").join(name)));
    let env = |key: &str, default: u64| {
        std::env::var(key)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let budget = Duration::from_secs(env("OPCONNECT_FUZZ_SECONDS", 3));
    let seed = env("OPCONNECT_FUZZ_SEED", 0x6f70_636f_6e6e_6563);
    match mutate::run(target, &seeds, seed, budget) {
        Ok(run) => eprintln!("{name}: {} executions in {budget:?}", run.executions),
        Err(finding) => {
            let out = std::env::temp_dir().join(format!("opconnect-fuzz-{name}-finding"));
            std::fs::write(&out, &finding.input).unwrap();
            panic!(
                "{name} panicked: {}\ninput ({} bytes, written to {}): {:?}",
                finding.message,
                finding.input.len(),
                out.display(),
                String::from_utf8_lossy(&finding.input[..finding.input.len().min(2000)])
            );
        }
    }
}

#[test]
fn every_target_is_run_here() {
    let here = include_str!("brief.rs");
    for (name, _) in TARGETS {
        assert!(
            here.contains(&format!("brief(\"{name}\")")),
            "{name} has no test here"
        );
        let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("libfuzzer/fuzz_targets/{name}.rs"));
        assert!(bin.exists(), "{name} has no cargo-fuzz target");
    }
}

#[test]
fn autoconfig() {
    brief("autoconfig");
}

#[test]
fn config() {
    brief("config");
}

#[test]
fn dav_multistatus() {
    brief("dav_multistatus");
}

#[test]
fn discovery() {
    brief("discovery");
}

#[test]
fn ical_vcard() {
    brief("ical_vcard");
}

#[test]
fn imap_response() {
    brief("imap_response");
}

#[test]
fn ipc_frame() {
    brief("ipc_frame");
}

#[test]
fn item_read() {
    brief("item_read");
}

#[test]
fn item_write() {
    brief("item_write");
}

#[test]
fn sieve_response() {
    brief("sieve_response");
}
