//! The session table: a slab of installed sessions with lookups by session and grant id.

use alloc::vec::Vec;
use hashbrown::HashMap;

use crate::crypto::{SessionKeys, ShortCmac};
use crate::{GrantId, GuestId, SessionId, Step};

/// An installed session. Keys are derived once at install; the CMAC key schedule is kept
/// expanded for the beacon hot path.
#[derive(Debug)]
pub(crate) struct Session {
    /// Install generation, unique per lock instance.
    pub(crate) install: u64,
    pub(crate) grant_id: GrantId,
    pub(crate) session_id: SessionId,
    pub(crate) guest_id: GuestId,
    pub(crate) not_before: u64,
    pub(crate) not_after: u64,
    /// The grant's unlock limit (LK-LIM-1); 0 = no limit.
    pub(crate) max_unlocks: u16,
    /// Unlocks so far (saturating).
    pub(crate) unlocks: u16,
    pub(crate) keys: SessionKeys,
    pub(crate) cmac: ShortCmac,
    /// The tags this session has in the index, at most one per window step.
    pub(crate) tags: TagSlots,
    /// The tag under which this session's pending authentication is kept, if any.
    pub(crate) pending_tag: Option<u64>,
}

/// A session's `(step, tag)` pairs in the tag index: three slots, one per step of the
/// window, in 40 bytes (three `Option<(Step, u64)>` take 72).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TagSlots {
    steps: [u32; 3],
    tags: [u64; 3],
    used: u8,
}

impl TagSlots {
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Step, u64)> + '_ {
        (0..3)
            .filter(|i| self.used & (1 << i) != 0)
            .map(|i| (Step(self.steps[i]), self.tags[i]))
    }

    pub(crate) fn has(&self, step: Step) -> bool {
        self.iter().any(|(s, _)| s == step)
    }

    /// Frees the slots whose step is outside `lo..=hi`, telling `removed` about each.
    pub(crate) fn retain_window(&mut self, lo: Step, hi: Step, mut removed: impl FnMut(Step, u64)) {
        for i in 0..3 {
            let step = Step(self.steps[i]);
            if self.used & (1 << i) != 0 && (step < lo || step > hi) {
                removed(step, self.tags[i]);
                self.used &= !(1 << i);
            }
        }
    }

    /// Records `(step, tag)` in a free slot; `false` if all three are taken.
    pub(crate) fn insert(&mut self, step: Step, tag: u64) -> bool {
        match (0..3).find(|i| self.used & (1 << i) == 0) {
            Some(i) => {
                self.steps[i] = step.0;
                self.tags[i] = tag;
                self.used |= 1 << i;
                true
            }
            None => false,
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Sessions {
    slots: Vec<Option<Session>>,
    free: Vec<u32>,
    by_session: HashMap<SessionId, u32>,
    by_grant: HashMap<GrantId, u32>,
}

impl Sessions {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Self {
            slots: Vec::with_capacity(n),
            free: Vec::new(),
            by_session: HashMap::with_capacity(n),
            by_grant: HashMap::with_capacity(n),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.by_session.len()
    }

    pub(crate) fn insert(&mut self, s: Session) -> u32 {
        let (sid, gid) = (s.session_id, s.grant_id);
        let slot = match self.free.pop() {
            Some(slot) => {
                if let Some(x) = self.slots.get_mut(slot as usize) {
                    *x = Some(s);
                }
                slot
            }
            None => {
                self.slots.push(Some(s));
                // Capped by max_sessions (≤ 1,000,000), so the slot count fits in u32.
                (self.slots.len() - 1) as u32
            }
        };
        self.by_session.insert(sid, slot);
        self.by_grant.insert(gid, slot);
        slot
    }

    pub(crate) fn remove(&mut self, slot: u32) -> Option<Session> {
        let s = self.slots.get_mut(slot as usize)?.take()?;
        self.by_session.remove(&s.session_id);
        self.by_grant.remove(&s.grant_id);
        self.free.push(slot);
        Some(s)
    }

    #[inline]
    pub(crate) fn get(&self, slot: u32) -> Option<&Session> {
        self.slots.get(slot as usize)?.as_ref()
    }

    pub(crate) fn get_mut(&mut self, slot: u32) -> Option<&mut Session> {
        self.slots.get_mut(slot as usize)?.as_mut()
    }

    pub(crate) fn by_session_id(&self, id: &SessionId) -> Option<u32> {
        self.by_session.get(id).copied()
    }

    pub(crate) fn by_grant_id(&self, id: &GrantId) -> Option<u32> {
        self.by_grant.get(id).copied()
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (u32, &mut Session)> {
        self.slots
            .iter_mut()
            .enumerate()
            .filter_map(|(i, s)| s.as_mut().map(|s| (i as u32, s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The memory bound (100,000 sessions in 64 MiB, benches/tests/hot_path.rs) rests on
    /// this; a field added to `Session` shows up here first.
    #[test]
    fn a_session_stays_small() {
        let size = core::mem::size_of::<Option<Session>>();
        std::eprintln!("Option<Session>: {size} bytes");
        assert!(size <= 464, "Option<Session> is {size} bytes");
    }

    #[test]
    fn tag_slots_hold_three_and_free_outside_the_window() {
        let mut t = TagSlots::default();
        assert_eq!(t.iter().count(), 0);
        assert!(!t.has(Step(0)));
        assert!(t.insert(Step(9), 90));
        assert!(t.insert(Step(10), 100));
        assert!(t.insert(Step(11), 110));
        assert!(!t.insert(Step(12), 120));
        assert!(t.has(Step(10)) && !t.has(Step(12)));
        let mut gone = alloc::vec::Vec::new();
        t.retain_window(Step(10), Step(12), |s, tag| gone.push((s, tag)));
        assert_eq!(gone, [(Step(9), 90)]);
        assert_eq!(t.iter().count(), 2);
        assert!(!t.has(Step(9)));
        // Both ends of the window are inside it.
        t.retain_window(Step(10), Step(11), |_, _| {
            panic!("10 and 11 are in the window")
        });
        assert!(t.insert(Step(12), 120));
        let mut all: alloc::vec::Vec<_> = t.iter().collect();
        all.sort();
        assert_eq!(all, [(Step(10), 100), (Step(11), 110), (Step(12), 120)]);
    }
}
