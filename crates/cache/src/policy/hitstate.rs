//! The part of W-TinyLFU's per-node state that a hit reads and writes, one `u32` per node
//! in a dense array (sixteen to a cache line, where a node takes half a line): a hit in the
//! protected segment, most hits, touches only this word.
//!
//! A word holds the hits not yet written into the sketch (15 bits, saturating: the sketch's
//! counters saturate at 15 anyway), whether the key was hit since it was last queued, whether
//! the shadow caches sample it, its queue (a copy of the node's tag), and a fingerprint of
//! its key, never zero while the node is live, so that a stale handle is told apart.

use crate::hash::mix64;

const PENDING: u32 = (1 << 15) - 1;
const REFERENCED: u32 = 1 << 15;
const SAMPLED: u32 = 1 << 16;
const TAG_SHIFT: u32 = 17;
const TAG_MASK: u32 = 3 << TAG_SHIFT;
const FP_SHIFT: u32 = 19;

/// The hit state of every node, indexed like the node table.
#[derive(Debug, Default)]
pub(super) struct HitStates {
    words: Vec<u32>,
}

/// `key`'s 13-bit fingerprint, never zero.
#[inline]
fn fingerprint(key: u64) -> u32 {
    ((mix64(key ^ 0x2545_f491_4f6c_dd1d) >> 51) as u32) | 1
}

impl HitStates {
    /// A node was given to `key`, in queue `tag`.
    pub(super) fn admit(&mut self, idx: u32, key: u64, tag: u8, sampled: bool) {
        let i = idx as usize;
        if i >= self.words.len() {
            self.words.resize(i + 1, 0);
        }
        self.words[i] = (fingerprint(key) << FP_SHIFT)
            | (u32::from(tag) << TAG_SHIFT)
            | if sampled { SAMPLED } else { 0 };
    }

    /// The node was freed.
    pub(super) fn free(&mut self, idx: u32) {
        if let Some(w) = self.words.get_mut(idx as usize) {
            *w = 0;
        }
    }

    /// The node entered queue `tag` (at its newest end: not hit since).
    #[inline]
    pub(super) fn set_tag(&mut self, idx: u32, tag: u8) {
        if let Some(w) = self.words.get_mut(idx as usize) {
            *w = (*w & !(TAG_MASK | REFERENCED)) | (u32::from(tag) << TAG_SHIFT);
        }
    }

    /// Whether the node was hit since it was last queued, clearing the mark.
    #[inline]
    pub(super) fn take_reference(&mut self, idx: u32) -> bool {
        self.words.get_mut(idx as usize).is_some_and(|w| {
            let hit = *w & REFERENCED != 0;
            *w &= !REFERENCED;
            hit
        })
    }

    /// The hits held on the node, now handed over (to the sketch).
    #[inline]
    pub(super) fn take_pending(&mut self, idx: u32) -> u32 {
        self.words.get_mut(idx as usize).map_or(0, |w| {
            let n = *w & PENDING;
            *w &= !PENDING;
            n
        })
    }

    /// The hits held on the node.
    #[cfg(test)]
    pub(super) fn pending(&self, idx: u32) -> u32 {
        self.words.get(idx as usize).map_or(0, |w| w & PENDING)
    }

    /// Holds one more hit on the node, marking it as hit when `mark`.
    #[inline]
    pub(super) fn add_hit(&mut self, idx: u32, mark: bool) {
        if let Some(w) = self.words.get_mut(idx as usize) {
            if *w & PENDING < PENDING {
                *w += 1;
            }
            if mark {
                *w |= REFERENCED;
            }
        }
    }

    /// Whether the shadow caches sample the node's key.
    #[inline]
    pub(super) fn sampled(&self, idx: u32) -> bool {
        self.words
            .get(idx as usize)
            .is_some_and(|w| w & SAMPLED != 0)
    }

    /// A hit through a remembered handle, when `slot` holds `key` in queue `tag`: holds
    /// the hit and marks the node, and returns whether the key is sampled. `None` (and no
    /// change) otherwise.
    #[inline]
    pub(super) fn hit_if(&mut self, slot: u32, key: u64, tag: u8) -> Option<bool> {
        let w = self.words.get_mut(slot as usize)?;
        let want = (fingerprint(key) << FP_SHIFT) | (u32::from(tag) << TAG_SHIFT);
        if *w & !(PENDING | REFERENCED | SAMPLED) != want {
            return None;
        }
        if *w & PENDING < PENDING {
            *w += 1;
        }
        *w |= REFERENCED;
        Some(*w & SAMPLED != 0)
    }

    /// Halves every node's held hits (the sketch has aged).
    pub(super) fn halve_pending(&mut self) {
        for w in &mut self.words {
            *w = (*w & !PENDING) | ((*w & PENDING) >> 1);
        }
    }

    /// Starts loading the word of `slot`.
    #[inline]
    pub(super) fn prefetch(&self, slot: u32) {
        if let Some(w) = self.words.get(slot as usize) {
            crate::prefetch::prefetch(w);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_stay_apart() {
        let mut s = HitStates::default();
        s.admit(3, 42, 2, true);
        assert!(s.sampled(3));
        for _ in 0..40_000 {
            s.add_hit(3, false);
        }
        assert_eq!(s.pending(3), PENDING, "saturates");
        assert!(!s.take_reference(3));
        assert_eq!(s.hit_if(3, 42, 2), Some(true));
        assert_eq!(s.hit_if(3, 42, 1), None, "another queue");
        assert!(s.take_reference(3));
        s.halve_pending();
        assert_eq!(s.take_pending(3), PENDING >> 1);
        assert_eq!(s.pending(3), 0);
        s.set_tag(3, 1);
        assert_eq!(s.hit_if(3, 42, 1), Some(true));
        s.free(3);
        assert_eq!(s.hit_if(3, 42, 1), None, "freed");
        assert!(!s.sampled(3));
        // A stale handle: the slot now holds another key.
        s.admit(3, 43, 2, false);
        let other_fp = fingerprint(42) != fingerprint(43);
        assert_eq!(s.hit_if(3, 42, 2).is_none(), other_fp);
    }
}
