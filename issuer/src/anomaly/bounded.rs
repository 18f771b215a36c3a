//! A map with a hard cap on its entries that evicts the least recently used one.
//!
//! Every detector keeps its per-guest, per-lock or per-pair state in one of these, so the
//! engine's memory has a fixed ceiling whatever the audit trail holds. Eviction order is a
//! touch counter, not a clock or a hash order, so it is deterministic: the same records give
//! the same state, the same evictions and the same alerts.

use std::collections::BTreeMap;

/// Entries keyed by `K`, at most `capacity` of them; inserting into a full map evicts the
/// entry touched longest ago.
#[derive(Debug, Clone)]
pub(crate) struct LruMap<K, V> {
    capacity: usize,
    /// Incremented on every touch; a `u64` does not wrap in any real run.
    clock: u64,
    entries: BTreeMap<K, Slot<V>>,
    /// touch stamp → key, oldest first.
    order: BTreeMap<u64, K>,
    evicted: u64,
}

#[derive(Debug, Clone)]
struct Slot<V> {
    value: V,
    stamp: u64,
}

impl<K: Ord + Clone, V> LruMap<K, V> {
    /// An empty map holding at most `capacity` entries (a capacity of 0 is taken as 1, so
    /// the entry being worked on always fits).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            clock: 0,
            entries: BTreeMap::new(),
            order: BTreeMap::new(),
            evicted: 0,
        }
    }

    /// The entry for `key`, created with `make` if absent (evicting the least recently
    /// used entry when full), and marked as the most recently used.
    pub(crate) fn touch_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        self.clock = self.clock.wrapping_add(1);
        let stamp = self.clock;
        if let Some(slot) = self.entries.get(&key) {
            self.order.remove(&slot.stamp);
        } else if self.entries.len() >= self.capacity
            && let Some((_, oldest)) = self.order.pop_first()
        {
            self.entries.remove(&oldest);
            self.evicted += 1;
        }
        self.order.insert(stamp, key.clone());
        let slot = self.entries.entry(key).or_insert_with(|| Slot {
            value: make(),
            stamp,
        });
        slot.stamp = stamp;
        &mut slot.value
    }

    /// The entry for `key`, without marking it used.
    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        self.entries.get(key).map(|slot| &slot.value)
    }

    /// How many entries the map holds.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// How many entries were evicted to make room since the map was created.
    pub(crate) fn evicted(&self) -> u64 {
        self.evicted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_map_evicts_the_least_recently_touched_entry() {
        let mut map = LruMap::new(2);
        *map.touch_or_insert_with(1, || 0) += 10;
        *map.touch_or_insert_with(2, || 0) += 20;
        // Touching 1 makes 2 the oldest.
        *map.touch_or_insert_with(1, || 0) += 1;
        map.touch_or_insert_with(3, || 30);
        assert_eq!(map.len(), 2);
        assert_eq!(map.get(&1), Some(&11));
        assert_eq!(map.get(&2), None);
        assert_eq!(map.get(&3), Some(&30));
        assert_eq!(map.evicted(), 1);
    }

    #[test]
    fn a_zero_capacity_still_holds_the_entry_being_worked_on() {
        let mut map = LruMap::new(0);
        *map.touch_or_insert_with("a", || 1) += 1;
        assert_eq!(map.get(&"a"), Some(&2));
        map.touch_or_insert_with("b", || 5);
        assert_eq!(map.len(), 1);
        assert_eq!(map.get(&"b"), Some(&5));
    }

    #[test]
    fn touching_an_existing_entry_neither_grows_nor_evicts() {
        let mut map = LruMap::new(3);
        for _ in 0..100 {
            map.touch_or_insert_with('x', || 0);
        }
        assert_eq!(map.len(), 1);
        assert_eq!(map.evicted(), 0);
        assert_eq!(map.order.len(), 1);
    }
}
