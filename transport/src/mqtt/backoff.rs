//! Capped exponential backoff with full jitter for reconnect attempts.
//!
//! "Full jitter" (delay drawn uniformly from `[0, min(cap, base * 2^attempt)]`) spreads a
//! fleet of daemons that lost the same broker, so they do not reconnect in lockstep.

use std::fmt;
use std::time::Duration;

use crate::rng::SplitMix64;

/// A source of randomness for jitter; injectable so tests can pin the sequence.
pub trait Jitter: Send + 'static {
    /// Returns a value uniformly distributed in `[0, bound]` (inclusive).
    fn up_to(&mut self, bound: u64) -> u64;
}

/// Seeded SplitMix64 jitter. [`SeededJitter::from_entropy`] is the production default.
#[derive(Debug, Clone)]
pub struct SeededJitter(SplitMix64);

impl SeededJitter {
    /// A reproducible jitter sequence.
    pub fn new(seed: u64) -> Self {
        Self(SplitMix64::new(seed))
    }

    /// A per-process random jitter sequence.
    pub fn from_entropy() -> Self {
        Self(SplitMix64::from_entropy())
    }
}

impl Jitter for SeededJitter {
    fn up_to(&mut self, bound: u64) -> u64 {
        self.0.up_to(bound)
    }
}

/// Always returns the upper bound: turns full jitter off (useful in tests).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoJitter;

impl Jitter for NoJitter {
    fn up_to(&mut self, bound: u64) -> u64 {
        bound
    }
}

/// Reconnect delay policy.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Ceiling for the first retry; doubles per failed attempt.
    pub base: Duration,
    /// Largest ceiling ever used.
    pub cap: Duration,
}

impl Default for Backoff {
    /// Base 100 ms, cap 30 s.
    fn default() -> Self {
        Self {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(30),
        }
    }
}

impl fmt::Debug for Backoff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Backoff(base={:?}, cap={:?})", self.base, self.cap)
    }
}

impl Backoff {
    /// The un-jittered ceiling for retry number `attempt` (0-based):
    /// `min(cap, base * 2^attempt)`, saturating instead of overflowing.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The delay before retry number `attempt`: uniform in `[0, ceiling(attempt)]`.
    pub fn delay(&self, attempt: u32, jitter: &mut dyn Jitter) -> Duration {
        let ceiling = self.ceiling(attempt);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(jitter.up_to(nanos).min(nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_doubles_then_caps() {
        let b = Backoff::default();
        let ms: Vec<u128> = (0..12).map(|a| b.ceiling(a).as_millis()).collect();
        assert_eq!(
            ms,
            [
                100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000, 30000
            ]
        );
        // Huge attempt counts must not overflow.
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn no_jitter_is_the_ceiling() {
        let b = Backoff::default();
        for a in 0..20 {
            assert_eq!(b.delay(a, &mut NoJitter), b.ceiling(a));
        }
    }

    #[test]
    fn full_jitter_stays_in_range_and_varies() {
        let b = Backoff::default();
        let mut j = SeededJitter::new(42);
        for a in 0..40 {
            let d = b.delay(a, &mut j);
            assert!(d <= b.ceiling(a), "attempt {a}: {d:?} > ceiling");
            assert!(d <= Duration::from_secs(30));
        }
        // Full jitter: many draws at the cap must spread over the whole range.
        let draws: Vec<Duration> = (0..200).map(|_| b.delay(30, &mut j)).collect();
        assert!(draws.iter().any(|d| *d < Duration::from_secs(10)));
        assert!(draws.iter().any(|d| *d > Duration::from_secs(20)));
    }

    #[test]
    fn jitter_is_reproducible_from_seed() {
        let b = Backoff::default();
        let run = |seed| {
            let mut j = SeededJitter::new(seed);
            (0..10).map(|a| b.delay(a, &mut j)).collect::<Vec<_>>()
        };
        assert_eq!(run(5), run(5));
        assert_ne!(run(5), run(6));
    }
}
