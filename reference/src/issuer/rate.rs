//! Rate limiting of grant requests (LK-ISS-11): a token bucket per guest and one per lock.
//! Integer arithmetic in milliseconds: one request costs [`UNITS_PER_REQUEST`] units and a
//! bucket refills `per_hour` units per millisecond, exactly `per_hour` requests an hour, up
//! to `burst` requests. A full bucket needs no entry, so the tables hold only guests and
//! locks that asked recently.

use core::hash::Hash;

use hashbrown::HashMap;

/// Milliseconds in an hour: the units one request costs.
const UNITS_PER_REQUEST: u64 = 3_600_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Units in the bucket at `at_ms`.
    level: u64,
    at_ms: u64,
}

/// The buckets of one kind of key (guests or locks).
#[derive(Debug)]
pub(crate) struct RateLimiter<K> {
    per_hour: u64,
    capacity: u64,
    buckets: HashMap<K, Bucket>,
}

impl<K: Hash + Eq + Copy> RateLimiter<K> {
    pub(crate) fn new(burst: u32, per_hour: u32) -> Self {
        Self {
            per_hour: u64::from(per_hour),
            capacity: u64::from(burst).saturating_mul(UNITS_PER_REQUEST),
            buckets: HashMap::new(),
        }
    }

    fn level(&self, key: &K, now_ms: u64) -> u64 {
        match self.buckets.get(key) {
            None => self.capacity,
            Some(b) => b
                .level
                .saturating_add(now_ms.saturating_sub(b.at_ms).saturating_mul(self.per_hour))
                .min(self.capacity),
        }
    }

    /// Whether `key` may make a request at `now_ms`.
    pub(crate) fn allows(&self, key: &K, now_ms: u64) -> bool {
        self.level(key, now_ms) >= UNITS_PER_REQUEST
    }

    /// Takes one request from `key`'s bucket (after [`allows`](Self::allows) said yes).
    pub(crate) fn take(&mut self, key: K, now_ms: u64) {
        let level = self.level(&key, now_ms).saturating_sub(UNITS_PER_REQUEST);
        self.buckets.insert(
            key,
            Bucket {
                level,
                at_ms: now_ms,
            },
        );
    }

    /// Forgets buckets that are full again.
    pub(crate) fn purge(&mut self, now_ms: u64) {
        let (per_hour, capacity) = (self.per_hour, self.capacity);
        self.buckets.retain(|_, b| {
            b.level
                .saturating_add(now_ms.saturating_sub(b.at_ms).saturating_mul(per_hour))
                < capacity
        });
    }

    /// Buckets held (not full).
    pub(crate) fn len(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_hourly_rate_exactly() {
        // 2 at once, then one every 30 minutes (2 an hour).
        let mut r = RateLimiter::new(2, 2);
        for t in [0, 1] {
            assert!(r.allows(&7u8, t));
            r.take(7, t);
        }
        assert!(!r.allows(&7, 2));
        assert!(r.allows(&8, 2), "buckets are per key");
        assert!(!r.allows(&7, 1_800_000 - 1));
        assert!(r.allows(&7, 1_800_000));
        r.take(7, 1_800_000);
        assert!(!r.allows(&7, 1_800_001));
        // Refill stops at the burst.
        r.purge(100 * UNITS_PER_REQUEST);
        assert_eq!(r.len(), 0, "a full bucket needs no entry");
        assert!(r.allows(&7, 100 * UNITS_PER_REQUEST));
    }

    #[test]
    fn extreme_tunables_do_not_overflow() {
        let mut r = RateLimiter::new(10_000, 1_000_000);
        r.take(1u8, u64::MAX - 1);
        assert!(r.allows(&1, u64::MAX));
        r.take(1u8, 0);
        assert!(r.allows(&1, u64::MAX));
    }
}
