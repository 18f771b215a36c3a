//! The tag index: rotating tag → (session slot, step) for the steps the window accepts,
//! rebuilt at each step boundary, so a beacon finds its session in O(1) without any
//! static identifier on air (spec §7.2).

use alloc::vec::Vec;
use core::hash::{BuildHasher, Hasher};
use hashbrown::HashMap;

use super::sessions::TagSlots;
use crate::{Step, crypto};

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

/// One entry per tag in `main`, 16 bytes a bucket. Two sessions sharing a 64-bit tag is
/// possible only by chance (≈ n²/2⁶⁵; tags are HMAC outputs under keys only the issuer
/// chooses), and then the later entries wait in `overflow`, so the common case costs
/// neither a branchy enum nor a heap pointer per tag.
#[derive(Debug, Default)]
pub(crate) struct TagIndex {
    main: TagMap<TagEntry>,
    overflow: TagMap<Vec<TagEntry>>,
}

impl TagIndex {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Self {
            main: TagMap::with_capacity_and_hasher(n, BuildTagHasher),
            overflow: TagMap::default(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.main.len() + self.overflow.values().map(Vec::len).sum::<usize>()
    }

    pub(crate) fn insert(&mut self, tag: u64, e: TagEntry) {
        match self.main.entry(tag) {
            hashbrown::hash_map::Entry::Vacant(v) => {
                v.insert(e);
            }
            hashbrown::hash_map::Entry::Occupied(_) => {
                self.overflow.entry(tag).or_default().push(e)
            }
        }
    }

    pub(crate) fn remove(&mut self, tag: u64, e: TagEntry) {
        if self.main.get(&tag) == Some(&e) {
            // Promote a colliding entry, if any, so `main` keeps one per tag.
            let next = self.overflow.get_mut(&tag).and_then(Vec::pop);
            match next {
                Some(x) => {
                    self.main.insert(tag, x);
                }
                None => {
                    self.main.remove(&tag);
                }
            }
        } else if let Some(v) = self.overflow.get_mut(&tag) {
            v.retain(|x| *x != e);
        }
        if self.overflow.get(&tag).is_some_and(Vec::is_empty) {
            self.overflow.remove(&tag);
        }
    }

    /// The entry for `tag` whose step is `step`, if any.
    #[inline]
    pub(crate) fn find(&self, tag: u64, step: Step) -> Option<TagEntry> {
        match self.main.get(&tag) {
            Some(e) if e.step == step => Some(*e),
            Some(_) => self
                .overflow
                .get(&tag)?
                .iter()
                .find(|e| e.step == step)
                .copied(),
            None => None,
        }
    }
}

/// Moves one keyholder's entries of `index` to the window `lo..=hi`: drops those of steps
/// that left it and adds the missing ones (one HMAC each). Sessions and tombstones share it.
pub(crate) fn move_window(
    index: &mut TagIndex,
    slot: u32,
    tags: &mut TagSlots,
    tag_key: &[u8; 32],
    lo: Step,
    hi: Step,
) {
    tags.retain_window(lo, hi, |ts, tag| {
        index.remove(tag, TagEntry { slot, step: ts });
    });
    for st in lo.0..=hi.0 {
        let st = Step(st);
        if tags.has(st) {
            continue;
        }
        let tag = u64::from_be_bytes(crypto::beacon_tag(tag_key, st));
        if tags.insert(st, tag) {
            index.insert(tag, TagEntry { slot, step: st });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(slot: u32, step: u32) -> TagEntry {
        TagEntry {
            slot,
            step: Step(step),
        }
    }

    #[test]
    fn colliding_tags_keep_every_entry_and_promote_on_removal() {
        let mut t = TagIndex::with_capacity(4);
        t.insert(7, e(1, 10));
        t.insert(7, e(2, 11));
        t.insert(7, e(3, 12));
        t.insert(8, e(4, 10));
        assert_eq!(t.len(), 4);
        assert_eq!(t.find(7, Step(10)), Some(e(1, 10)));
        assert_eq!(t.find(7, Step(11)), Some(e(2, 11)));
        assert_eq!(t.find(7, Step(12)), Some(e(3, 12)));
        assert_eq!(t.find(7, Step(13)), None);
        assert_eq!(t.find(9, Step(10)), None);
        t.remove(7, e(1, 10));
        assert_eq!(t.find(7, Step(10)), None);
        assert_eq!(t.find(7, Step(11)), Some(e(2, 11)));
        assert_eq!(t.find(7, Step(12)), Some(e(3, 12)));
        t.remove(7, e(2, 11));
        assert_eq!(t.find(7, Step(11)), None);
        assert_eq!(t.len(), 2);
        t.remove(7, e(9, 99)); // not there: no effect
        assert_eq!(t.len(), 2);
        t.remove(7, e(3, 12));
        t.remove(8, e(4, 10));
        assert_eq!(t.len(), 0);
        assert!(t.overflow.is_empty());
    }
}
