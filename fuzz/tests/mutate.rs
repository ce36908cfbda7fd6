//! The brief fuzzer itself: deterministic inputs, and a panic reported with its input.

use std::time::Duration;

use opconnect_fuzz_targets::mutate::{Rng, mutate, run};

#[test]
fn the_same_seed_gives_the_same_inputs() {
    let seeds = vec![b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n".to_vec()];
    let inputs = |seed| {
        let mut rng = Rng::new(seed);
        let mut input = seeds[0].clone();
        (0..50)
            .map(|_| {
                mutate(&mut rng, &mut input, &seeds);
                input.clone()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(inputs(7), inputs(7));
    assert_ne!(inputs(7), inputs(8));
}

#[test]
fn a_panic_is_a_finding_with_its_input() {
    fn picky(data: &[u8]) {
        assert!(!data.contains(&b'\n'), "no newline please");
    }
    let finding = run(picky, &[b"a\nb".to_vec()], 1, Duration::ZERO).unwrap_err();
    assert_eq!(finding.input, b"a\nb");
    assert!(finding.message.contains("no newline please"));
    fn calm(_: &[u8]) {}
    let run = run(calm, &[b"ab".to_vec()], 1, Duration::from_millis(50)).unwrap();
    assert!(run.executions > 1);
}
