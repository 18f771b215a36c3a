//! The tag index: rotating tag → (session slot, step) for the steps the window accepts,
//! rebuilt at each step boundary, so a beacon finds its session in O(1) without any
//! static identifier on air (spec §7.2).

use core::hash::{BuildHasher, Hasher};
use hashbrown::HashMap;

use crate::Step;

/// Tags are HMAC outputs chosen by honest parties only, so their bits are already uniformly
/// distributed: hashing them again would only cost time on the hot path.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TagHasher(u64);

impl Hasher for TagHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct BuildTagHasher;

impl BuildHasher for BuildTagHasher {
    type Hasher = TagHasher;
    fn build_hasher(&self) -> TagHasher {
        TagHasher(0)
    }
}

pub(crate) type TagMap<V> = HashMap<u64, V, BuildTagHasher>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TagEntry {
    pub(crate) slot: u32,
    pub(crate) step: Step,
}

/// Usually one entry per tag; two sessions sharing a 64-bit tag is possible only by chance
/// (≈ n²/2⁶⁵), and then both are kept.
#[derive(Debug, Clone)]
enum Bucket {
    One(TagEntry),
    Many(alloc::vec::Vec<TagEntry>),
}

#[derive(Debug, Default)]
pub(crate) struct TagIndex {
    map: TagMap<Bucket>,
}

impl TagIndex {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Self {
            map: TagMap::with_capacity_and_hasher(n, BuildTagHasher),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn insert(&mut self, tag: u64, e: TagEntry) {
        match self.map.get_mut(&tag) {
            None => {
                self.map.insert(tag, Bucket::One(e));
            }
            Some(Bucket::One(first)) => {
                let first = *first;
                self.map.insert(tag, Bucket::Many(alloc::vec![first, e]));
            }
            Some(Bucket::Many(v)) => v.push(e),
        }
    }

    pub(crate) fn remove(&mut self, tag: u64, e: TagEntry) {
        let now_empty = match self.map.get_mut(&tag) {
            None => return,
            Some(Bucket::One(x)) => *x == e,
            Some(Bucket::Many(v)) => {
                v.retain(|x| *x != e);
                v.is_empty()
            }
        };
        if now_empty {
            self.map.remove(&tag);
        }
    }

    /// The entry for `tag` whose step is `step`, if any.
    #[inline]
    pub(crate) fn find(&self, tag: u64, step: Step) -> Option<TagEntry> {
        match self.map.get(&tag)? {
            Bucket::One(e) => (e.step == step).then_some(*e),
            Bucket::Many(v) => v.iter().find(|e| e.step == step).copied(),
        }
    }
}
