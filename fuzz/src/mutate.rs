//! A brief, deterministic fuzzer for the stable toolchain: seeds mutated the way libFuzzer's
//! simplest strategies do (bit flips, special bytes, cut, repeated and spliced ranges, lines of
//! other seeds inserted), for a time budget. Not a substitute for `scripts/fuzz`: it has no
//! coverage feedback. It gives every parser some thousands of hostile inputs in every test run.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

/// Bytes parsers tend to treat specially.
const SPECIAL: &[u8] = b"\0\r\n\t :;,=\"'<>{}[]()\\/@*%&#\xff\x80\xc3";

/// xorshift64*: the same inputs for the same seed on every machine.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }
}

/// One mutation of `input`, drawing material from `seeds`.
pub fn mutate(rng: &mut Rng, input: &mut Vec<u8>, seeds: &[Vec<u8>]) {
    let at = rng.below(input.len() + 1);
    match rng.below(8) {
        0 if !input.is_empty() => {
            let i = rng.below(input.len());
            input[i] ^= 1 << rng.below(8);
        }
        1 if !input.is_empty() => {
            let i = rng.below(input.len());
            input[i] = SPECIAL[rng.below(SPECIAL.len())];
        }
        2 => input.insert(at, SPECIAL[rng.below(SPECIAL.len())]),
        3 => {
            let end = (at + 1 + rng.below(64)).min(input.len());
            input.drain(at.min(end)..end);
        }
        4 => {
            // A range repeated: long lines, deep nesting, many properties.
            let end = (at + 1 + rng.below(32)).min(input.len());
            let piece = input[at.min(end)..end].to_vec();
            for _ in 0..1 + rng.below(16) {
                input.splice(at..at, piece.iter().copied());
            }
        }
        5 if !seeds.is_empty() => {
            // A line of another seed, inserted at a line start where there is one.
            let other = &seeds[rng.below(seeds.len())];
            let lines: Vec<&[u8]> = other.split_inclusive(|b| *b == b'\n').collect();
            let line = lines[rng.below(lines.len())];
            let at = input[..at].iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
            input.splice(at..at, line.iter().copied());
        }
        6 if !seeds.is_empty() => {
            let other = &seeds[rng.below(seeds.len())];
            let from = rng.below(other.len() + 1);
            input.truncate(at);
            input.extend_from_slice(&other[from..]);
        }
        _ => input.truncate(at),
    }
}

/// What a brief run did.
#[derive(Debug)]
pub struct Run {
    pub executions: u64,
}

/// An input that made the target panic, and the panic's message.
#[derive(Debug)]
pub struct Finding {
    pub input: Vec<u8>,
    pub message: String,
}

/// Runs `target` on every seed, then on mutated seeds until `budget` has passed.
pub fn run(target: crate::Target, seeds: &[Vec<u8>], seed: u64, budget: Duration) -> Result<Run, Finding> {
    let attempt = |input: &[u8]| {
        catch_unwind(AssertUnwindSafe(|| target(input))).map_err(|panic| Finding {
            input: input.to_vec(),
            message: panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default(),
        })
    };
    let mut executions = 0;
    for input in seeds {
        attempt(input)?;
        executions += 1;
    }
    let mut rng = Rng::new(seed);
    let began = Instant::now();
    let mut input = Vec::new();
    while began.elapsed() < budget {
        // Half the time a fresh seed, else the last input mutated further.
        if input.is_empty() || input.len() > 1 << 20 || rng.below(2) == 0 {
            input = seeds.get(rng.below(seeds.len())).cloned().unwrap_or_default();
        }
        for _ in 0..1 + rng.below(4) {
            mutate(&mut rng, &mut input, seeds);
        }
        attempt(&input)?;
        executions += 1;
    }
    Ok(Run { executions })
}
