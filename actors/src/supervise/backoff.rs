//! Exponential reconnect backoff with jitter and a cap (DESIGN.md, "IDLE").

use std::time::Duration;

use rand::Rng;

/// Delays of `base · 2^n`, capped at `max`, each drawn uniformly from its upper half so that many
/// clients restarting together spread out ("equal jitter").
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Self {
        Backoff {
            base,
            max: max.max(base),
            attempt: 0,
        }
    }

    /// The delay before the next attempt; each call doubles the ceiling up to `max`.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        let half = ceiling / 2;
        let jitter = rand::rng().random_range(0..=half.as_millis().max(1) as u64);
        half + Duration::from_millis(jitter)
    }

    /// The current ceiling without advancing.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(20)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// Back to the first, shortest delay: after a success or when the user asks to sync now.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_doubles_and_caps() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(10));
        let mut ceilings = Vec::new();
        for _ in 0..8 {
            let ceiling = b.ceiling();
            let d = b.next_delay();
            assert!(
                d >= ceiling / 2 && d <= ceiling + Duration::from_millis(1),
                "{d:?} vs {ceiling:?}"
            );
            ceilings.push(ceiling.as_secs());
        }
        assert_eq!(ceilings, [1, 2, 4, 8, 10, 10, 10, 10]);
        b.reset();
        assert_eq!(b.ceiling(), Duration::from_secs(1));
    }

    #[test]
    fn jitter_spreads_delays() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..50 {
            let mut b = Backoff::new(Duration::from_secs(8), Duration::from_secs(8));
            seen.insert(b.next_delay().as_millis());
        }
        assert!(seen.len() > 10, "jitter should vary delays: {seen:?}");
    }

    #[test]
    fn survives_many_attempts() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(300));
        for _ in 0..10_000 {
            assert!(b.next_delay() <= Duration::from_secs(300));
        }
    }
}
