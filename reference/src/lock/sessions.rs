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
    pub(crate) keys: SessionKeys,
    pub(crate) cmac: ShortCmac,
    /// The tags this session has in the index: (step, tag), at most one per window step.
    pub(crate) tags: [Option<(Step, u64)>; 3],
    /// The tag under which this session's pending authentication is kept, if any.
    pub(crate) pending_tag: Option<u64>,
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
