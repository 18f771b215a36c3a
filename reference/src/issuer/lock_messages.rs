//! What the issuer remembers of the messages locks publish on their events topics
//! (LockEvent, LockStatus): per lock, the ids of those still inside the event window
//! (LK-EVT-4), so a replayed message is refused instead of recorded twice.
//!
//! At capacity the entry with the smallest timestamp (ties: smallest id) is evicted and the
//! lock's floor rises to its timestamp: from then on every message of that lock timestamped
//! at or before the floor is refused as a replay (fail closed, as the lock's revocation
//! floor, LK-REV-4). An entry leaves when `timestamp_s + event_window_s < now_s`: from then
//! on LK-EVT-3 refuses the message as stale anyway.

use alloc::collections::BTreeSet;
use hashbrown::HashMap;

use crate::frame::{LockEvent, LockStatus};
use crate::{EventId, LockId, Reason};

/// A verified message of a lock's events topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockReport {
    /// A LockEvent (§6.6).
    Event(LockEvent),
    /// A LockStatus (§6.10).
    Status(LockStatus),
}

impl LockReport {
    /// The reporting lock.
    pub fn lock_id(&self) -> LockId {
        match self {
            Self::Event(e) => e.lock_id,
            Self::Status(s) => s.lock_id,
        }
    }

    /// The message id (`event_id` or `status_id`; one id space per lock).
    pub fn message_id(&self) -> EventId {
        match self {
            Self::Event(e) => e.event_id,
            Self::Status(s) => s.status_id,
        }
    }

    /// The lock's timestamp, Unix milliseconds.
    pub fn timestamp_ms(&self) -> u64 {
        match self {
            Self::Event(e) => e.timestamp_ms,
            Self::Status(s) => s.timestamp_ms,
        }
    }
}

#[derive(Debug, Default)]
struct SeenIds {
    by_id: HashMap<EventId, u64>,
    /// `(timestamp_ms, id)`: eviction and purge order.
    order: BTreeSet<(u64, EventId)>,
    floor_ms: Option<u64>,
}

#[derive(Debug)]
pub(crate) struct LockMessages {
    capacity: usize,
    window_s: u64,
    by_lock: HashMap<LockId, SeenIds>,
    /// Messages timestamped before this (ms) are refused: set after a restart that did not
    /// restore the ids (LK-EVT-4).
    restart_floor_ms: u64,
}

impl LockMessages {
    pub(crate) fn new(capacity: usize, window_s: u64) -> Self {
        Self {
            capacity,
            window_s,
            by_lock: HashMap::new(),
            restart_floor_ms: 0,
        }
    }

    /// LK-EVT-3: `stale_event` or `future_event` outside ± the window.
    pub(crate) fn check_window(&self, timestamp_ms: u64, now_s: u64) -> Result<(), Reason> {
        let ts = timestamp_ms / 1000;
        if ts.saturating_add(self.window_s) < now_s {
            return Err(Reason::StaleEvent);
        }
        if ts > now_s.saturating_add(self.window_s) {
            return Err(Reason::FutureEvent);
        }
        Ok(())
    }

    /// LK-EVT-4: `event_replay` if `id` was seen from `lock`, or the timestamp is at or
    /// before the lock's floor (or before the restart floor).
    pub(crate) fn check_replay(
        &self,
        lock: &LockId,
        id: &EventId,
        timestamp_ms: u64,
    ) -> Result<(), Reason> {
        if timestamp_ms < self.restart_floor_ms {
            return Err(Reason::EventReplay);
        }
        match self.by_lock.get(lock) {
            Some(s)
                if s.by_id.contains_key(id) || s.floor_ms.is_some_and(|f| timestamp_ms <= f) =>
            {
                Err(Reason::EventReplay)
            }
            _ => Ok(()),
        }
    }

    /// Remembers `id` of `lock`, evicting the oldest entry at capacity.
    pub(crate) fn record(&mut self, lock: LockId, id: EventId, timestamp_ms: u64) {
        let s = self.by_lock.entry(lock).or_default();
        if s.by_id.contains_key(&id) {
            return;
        }
        while s.by_id.len() >= self.capacity {
            let Some((ts, old)) = s.order.pop_first() else {
                break;
            };
            s.by_id.remove(&old);
            s.floor_ms = Some(s.floor_ms.map_or(ts, |f| f.max(ts)));
        }
        s.by_id.insert(id, timestamp_ms);
        s.order.insert((timestamp_ms, id));
    }

    /// After a restart without the ids: refuse every message timestamped before
    /// `timestamp_ms`.
    pub(crate) fn refuse_before(&mut self, timestamp_ms: u64) {
        self.restart_floor_ms = self.restart_floor_ms.max(timestamp_ms);
    }

    /// Drops `lock`'s entries that left the window (`timestamp_s + window < now_s`).
    pub(crate) fn purge_lock(&mut self, lock: &LockId, now_s: u64) {
        if let Some(s) = self.by_lock.get_mut(lock) {
            Self::purge_ids(s, self.window_s, now_s);
            if s.by_id.is_empty() && s.floor_ms.is_none() {
                self.by_lock.remove(lock);
            }
        }
    }

    /// Drops every lock's entries that left the window.
    pub(crate) fn purge(&mut self, now_s: u64) {
        let window_s = self.window_s;
        self.by_lock.retain(|_, s| {
            Self::purge_ids(s, window_s, now_s);
            !s.by_id.is_empty() || s.floor_ms.is_some()
        });
    }

    fn purge_ids(s: &mut SeenIds, window_s: u64, now_s: u64) {
        while let Some(&(ts, id)) = s.order.first() {
            if (ts / 1000).saturating_add(window_s) >= now_s {
                break;
            }
            s.order.pop_first();
            s.by_id.remove(&id);
        }
    }

    /// Ids remembered, over all locks.
    pub(crate) fn len(&self) -> usize {
        self.by_lock.values().map(|s| s.by_id.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: LockId = LockId([1; 16]);

    fn id(i: u8) -> EventId {
        EventId([i; 16])
    }

    #[test]
    fn the_window_is_inclusive_on_both_sides() {
        let m = LockMessages::new(16, 60);
        assert_eq!(m.check_window(40_000, 100), Ok(()));
        assert_eq!(m.check_window(39_999, 100), Err(Reason::StaleEvent));
        assert_eq!(m.check_window(160_999, 100), Ok(()));
        assert_eq!(m.check_window(161_000, 100), Err(Reason::FutureEvent));
    }

    #[test]
    fn ids_are_per_lock_and_a_full_cache_raises_the_floor() {
        let mut m = LockMessages::new(2, 60);
        m.record(L, id(1), 1_000);
        m.record(L, id(2), 2_000);
        assert_eq!(m.check_replay(&L, &id(1), 5_000), Err(Reason::EventReplay));
        assert_eq!(m.check_replay(&LockId([2; 16]), &id(1), 5_000), Ok(()));
        m.record(L, id(3), 3_000); // evicts id 1, floor 1 000
        assert_eq!(m.len(), 2);
        assert_eq!(m.check_replay(&L, &id(1), 1_000), Err(Reason::EventReplay));
        assert_eq!(m.check_replay(&L, &id(9), 1_000), Err(Reason::EventReplay));
        assert_eq!(m.check_replay(&L, &id(9), 1_001), Ok(()));
    }

    #[test]
    fn entries_leave_with_the_window_and_a_restart_floor_refuses_older_ones() {
        let mut m = LockMessages::new(16, 60);
        m.record(L, id(1), 10_000);
        m.purge(70);
        assert_eq!(m.len(), 1, "10 + 60 = 70 is still inside");
        m.purge_lock(&L, 71);
        assert_eq!(m.len(), 0);
        m.refuse_before(50_000);
        assert_eq!(m.check_replay(&L, &id(2), 49_999), Err(Reason::EventReplay));
        assert_eq!(m.check_replay(&L, &id(2), 50_000), Ok(()));
    }
}
