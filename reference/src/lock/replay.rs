//! The replay cache (LK-ADV-7, LK-ADV-9): the `(session, step, attempt)` of every beacon
//! that armed an authentication while its step is in the window.
//!
//! Keys are packed into one `u128` so the hot path hashes a single word, and the cache is
//! allocated at its cap up front so inserting never allocates.

use hashbrown::hash_set::Entry;
use hashbrown::{DefaultHashBuilder, HashSet};

use crate::{SessionId, Step};

/// `session (64 bits) | step (32 bits) | attempt (16 bits)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ReplayKey(u128);

impl ReplayKey {
    pub(crate) fn new(session: &SessionId, step: Step, attempt: u16) -> Self {
        let s = u128::from(u64::from_be_bytes(session.0));
        Self((s << 48) | (u128::from(step.0) << 16) | u128::from(attempt))
    }

    fn step(self) -> Step {
        Step((self.0 >> 16) as u32)
    }

    #[cfg(feature = "testkit")]
    fn session(self) -> SessionId {
        SessionId(((self.0 >> 48) as u64).to_be_bytes())
    }
}

#[derive(Debug)]
pub(crate) struct ReplayCache {
    seen: HashSet<ReplayKey>,
}

impl ReplayCache {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Self {
            seen: HashSet::with_capacity(n),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.seen.len()
    }

    /// One probe: `Ok(slot)` to insert into if `key` is new, `Err(())` if it was seen.
    #[inline]
    pub(crate) fn lookup(&mut self, key: ReplayKey) -> Result<Vacant<'_>, Seen> {
        match self.seen.entry(key) {
            Entry::Occupied(_) => Err(Seen),
            Entry::Vacant(v) => Ok(Vacant(v)),
        }
    }

    /// Drops the entries of steps before `lo` (they fail the step window anyway).
    pub(crate) fn purge_before(&mut self, lo: Step) {
        self.seen.retain(|k| k.step() >= lo);
    }

    #[cfg(feature = "testkit")]
    pub(crate) fn forget(&mut self, forget: impl Fn(&SessionId) -> bool) -> usize {
        let before = self.seen.len();
        self.seen.retain(|k| !forget(&k.session()));
        before - self.seen.len()
    }
}

/// The key was seen: a replay (or a repeat of a pending beacon).
#[derive(Debug)]
pub(crate) struct Seen;

/// Where a new key goes; inserting is the caller's decision after the cap checks.
#[derive(Debug)]
pub(crate) struct Vacant<'a>(hashbrown::hash_set::VacantEntry<'a, ReplayKey, DefaultHashBuilder>);

impl Vacant<'_> {
    pub(crate) fn insert(self) {
        self.0.insert();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_injective_and_keep_their_fields() {
        let a = ReplayKey::new(
            &SessionId([1, 2, 3, 4, 5, 6, 7, 8]),
            Step(0xDEAD_BEEF),
            0xFFFF,
        );
        assert_eq!(a.step(), Step(0xDEAD_BEEF));
        let b = ReplayKey::new(
            &SessionId([1, 2, 3, 4, 5, 6, 7, 8]),
            Step(0xDEAD_BEEF),
            0xFFFE,
        );
        let c = ReplayKey::new(
            &SessionId([1, 2, 3, 4, 5, 6, 7, 9]),
            Step(0xDEAD_BEEF),
            0xFFFF,
        );
        let d = ReplayKey::new(
            &SessionId([1, 2, 3, 4, 5, 6, 7, 8]),
            Step(0xDEAD_BEEE),
            0xFFFF,
        );
        assert!(a != b && a != c && a != d && b != c && b != d && c != d);
    }

    #[test]
    fn lookup_then_insert_then_seen_then_purged() {
        let mut r = ReplayCache::with_capacity(16);
        let k = ReplayKey::new(&SessionId([9; 8]), Step(10), 3);
        r.lookup(k).map(Vacant::insert).expect("new");
        assert!(r.lookup(k).is_err());
        assert_eq!(r.len(), 1);
        r.purge_before(Step(10));
        assert_eq!(r.len(), 1);
        r.purge_before(Step(11));
        assert_eq!(r.len(), 0);
    }
}
