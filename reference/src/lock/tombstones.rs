//! Tombstones of revoked sessions (LK-REV-5): when a Revocation removes an installed session
//! and the revocation is remembered (LK-REV-4), the lock keeps the session's identities and
//! the two keys that recognise its beacons, `K_tag` and `K_adv`, until the revocation is
//! purged or evicted. A beacon of that session is then refused `session_revoked` (after the
//! RSSI and CMAC checks) instead of `unknown_tag`, so the driver can report a revoked guest
//! still trying. `K_chal` and `K_resp` are not kept: a tombstone can never answer a Select.
//!
//! Tombstones have their own tag index, moved at each step boundary like the sessions', and
//! it is consulted only when the sessions' index misses and a tombstone exists: the path of a
//! valid beacon does not change.

use alloc::vec::Vec;
use core::fmt;

use hashbrown::HashMap;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::sessions::{Session, TagSlots};
use super::tag_index::{TagEntry, TagIndex, move_window};
use crate::crypto::ShortCmac;
use crate::{GrantId, GuestId, SessionId, Step};

/// `K_tag` of a revoked session: zeroized on drop (LK-CRY-2), redacted in Debug (LK-CRY-3).
#[derive(Zeroize, ZeroizeOnDrop)]
struct TagKey([u8; 32]);

impl fmt::Debug for TagKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TagKey(<redacted>)")
    }
}

/// What is left of a revoked session.
#[derive(Debug)]
pub(crate) struct Tombstone {
    pub(crate) grant_id: GrantId,
    pub(crate) session_id: SessionId,
    pub(crate) guest_id: GuestId,
    tag_key: TagKey,
    /// `K_adv`, expanded; zeroizes its key schedule on drop.
    pub(crate) cmac: ShortCmac,
    tags: TagSlots,
}

impl Tombstone {
    /// Keeps `K_tag` and `K_adv` of a removed session; its other keys are zeroized as the
    /// session drops.
    pub(crate) fn of(s: Session) -> Self {
        let Session {
            grant_id,
            session_id,
            guest_id,
            keys,
            cmac,
            ..
        } = s;
        Self {
            grant_id,
            session_id,
            guest_id,
            tag_key: TagKey(keys.tag),
            cmac,
            tags: TagSlots::default(),
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Tombstones {
    slots: Vec<Option<Tombstone>>,
    free: Vec<u32>,
    by_grant: HashMap<GrantId, u32>,
    index: TagIndex,
}

impl Tombstones {
    pub(crate) fn len(&self) -> usize {
        self.by_grant.len()
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.by_grant.is_empty()
    }

    /// Adds a tombstone, indexed for `window` (`lo..=hi`) when the lock has indexed a step.
    pub(crate) fn insert(&mut self, mut t: Tombstone, window: Option<(Step, Step)>) {
        if self.by_grant.contains_key(&t.grant_id) {
            return;
        }
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(None);
                // Bounded by revocation_capacity (≤ 1,000,000): fits in u32.
                (self.slots.len() - 1) as u32
            }
        };
        if let Some((lo, hi)) = window {
            move_window(&mut self.index, slot, &mut t.tags, &t.tag_key.0, lo, hi);
        }
        self.by_grant.insert(t.grant_id, slot);
        if let Some(x) = self.slots.get_mut(slot as usize) {
            *x = Some(t);
        }
    }

    /// Drops the tombstone of `grant` (its revocation was purged or evicted); its keys are
    /// zeroized.
    pub(crate) fn remove(&mut self, grant: &GrantId) {
        let Some(slot) = self.by_grant.remove(grant) else {
            return;
        };
        if let Some(t) = self.slots.get_mut(slot as usize).and_then(Option::take) {
            for (step, tag) in t.tags.iter() {
                self.index.remove(tag, TagEntry { slot, step });
            }
            self.free.push(slot);
        }
    }

    /// Moves every tombstone's index entries to the window `lo..=hi`.
    pub(crate) fn reindex(&mut self, lo: Step, hi: Step) {
        let index = &mut self.index;
        for (slot, t) in self.slots.iter_mut().enumerate() {
            if let Some(t) = t {
                move_window(index, slot as u32, &mut t.tags, &t.tag_key.0, lo, hi);
            }
        }
    }

    /// The tombstone whose tag for `step` is `tag`, if any.
    pub(crate) fn find(&self, tag: u64, step: Step) -> Option<&Tombstone> {
        let e = self.index.find(tag, step)?;
        self.slots.get(e.slot as usize)?.as_ref()
    }
}
