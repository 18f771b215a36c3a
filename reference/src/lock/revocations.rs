//! The revocation list (LK-REV-4): revoked grant ids remembered until the grant would have
//! expired, so a grant delivered after its revocation (MQTT may reorder or redeliver) is
//! never installed. At capacity the oldest entry is evicted and the floor rises: every grant
//! issued at or before the evicted revocation's issue time is then refused (fail closed).

use alloc::collections::BTreeSet;
use hashbrown::HashMap;

use crate::GrantId;

#[derive(Debug)]
pub(crate) struct Revocations {
    cap: usize,
    by_grant: HashMap<GrantId, (u64, u64)>,
    /// (issued_at, grant): eviction order, oldest first.
    order: BTreeSet<(u64, GrantId)>,
    floor: Option<u64>,
}

impl Revocations {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            cap,
            by_grant: HashMap::new(),
            order: BTreeSet::new(),
            floor: None,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.by_grant.len()
    }

    pub(crate) fn contains(&self, g: &GrantId) -> bool {
        self.by_grant.contains_key(g)
    }

    /// Whether a grant with this id and issue time must be refused.
    pub(crate) fn revokes(&self, g: &GrantId, issued_at: u64) -> bool {
        self.contains(g) || self.floor.is_some_and(|f| issued_at <= f)
    }

    /// `now_s` only purges expired entries before a live one is evicted. `removed` hears of
    /// every entry that leaves to make room (the lock drops their tombstones).
    pub(crate) fn insert(
        &mut self,
        g: GrantId,
        issued_at: u64,
        expires_at: u64,
        now_s: u64,
        mut removed: impl FnMut(&GrantId),
    ) {
        if self.by_grant.contains_key(&g) {
            return;
        }
        if self.by_grant.len() >= self.cap {
            // Expired entries go first: evicting one of them must not raise the floor.
            self.purge(now_s, &mut removed);
        }
        while self.by_grant.len() >= self.cap {
            let Some(oldest) = self.order.pop_first() else {
                break;
            };
            self.by_grant.remove(&oldest.1);
            removed(&oldest.1);
            // The floor and grants' issued_at are both on the issuer's clock, so the lock's own
            // clock must not lower it: that would let the evicted grant install again.
            self.floor = Some(self.floor.map_or(oldest.0, |f| f.max(oldest.0)));
        }
        self.by_grant.insert(g, (issued_at, expires_at));
        self.order.insert((issued_at, g));
    }

    /// Drops the entries with `expires_at ≤ now_s`, telling `removed` about each.
    pub(crate) fn purge(&mut self, now_s: u64, mut removed: impl FnMut(&GrantId)) {
        let order = &mut self.order;
        self.by_grant.retain(|g, (issued, expires)| {
            let keep = *expires > now_s;
            if !keep {
                order.remove(&(*issued, *g));
                removed(g);
            }
            keep
        });
    }
}
