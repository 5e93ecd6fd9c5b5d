//! W-TinyLFU's deferred hits, two bytes per node in an array of their own.
//!
//! A hit in the protected segment (most hits) only counts: the count waits for the sketch,
//! and a mark asks for a requeue when the key reaches the segment's oldest end (see
//! [`WTinyLfu`](super::WTinyLfu)). Kept apart from the nodes, such a hit writes two bytes of
//! an array of two bytes per entry (200 KB for 100k entries, which stays in a core's
//! cache) instead of a 32-byte node somewhere in megabytes of them. The fast bit says that
//! a hit on the node only counts, so a hit through an exact handle reads no node at all.

/// The hits held for the sketch (saturating).
const HELD: u16 = 0x3fff;
/// Hit in the protected segment since it was last queued there.
const REFERENCED: u16 = 0x4000;
/// In the protected segment and not sampled by the shadows: a hit only counts.
const FAST: u16 = 0x8000;

/// `m` with one more hit held (saturating).
#[inline]
fn one_more(m: u16) -> u16 {
    (m & !HELD) | ((m & HELD) + u16::from(m & HELD != HELD))
}

/// Per node index: the hits held, the reference mark and the fast bit.
#[derive(Debug, Default)]
pub(crate) struct HitMarks(Vec<u16>);

impl HitMarks {
    /// Clears `idx`'s marks (a node just taken or freed), growing the array to hold it.
    #[inline]
    pub(crate) fn reset(&mut self, idx: u32) {
        let i = idx as usize;
        if i >= self.0.len() {
            self.0.resize(i + 1, 0);
        }
        self.0[i] = 0;
    }

    /// A hit: one more held, and the reference mark when `referenced`.
    #[inline]
    pub(crate) fn hit(&mut self, idx: u32, referenced: bool) {
        if let Some(m) = self.0.get_mut(idx as usize) {
            *m = one_more(*m) | if referenced { REFERENCED } else { 0 };
        }
    }

    /// A hit on a node whose fast bit is set (one more held, and marked); `false`, with
    /// nothing changed, when the bit is not set.
    #[inline]
    pub(crate) fn count_fast(&mut self, idx: u32) -> bool {
        match self.0.get_mut(idx as usize) {
            Some(m) if *m & FAST != 0 => {
                *m = one_more(*m) | REFERENCED;
                true
            }
            _ => false,
        }
    }

    /// `idx` was (re)queued in a segment: the reference mark is cleared and the fast bit
    /// set to `fast`; the hits held stay.
    #[inline]
    pub(crate) fn queued(&mut self, idx: u32, fast: bool) {
        if let Some(m) = self.0.get_mut(idx as usize) {
            *m = (*m & HELD) | if fast { FAST } else { 0 };
        }
    }

    /// Takes the hits held on `idx`.
    #[inline]
    pub(crate) fn take_held(&mut self, idx: u32) -> u32 {
        match self.0.get_mut(idx as usize) {
            Some(m) => {
                let held = *m & HELD;
                *m &= !HELD;
                u32::from(held)
            }
            None => 0,
        }
    }

    /// The hits held on `idx`.
    #[cfg(test)]
    pub(crate) fn held(&self, idx: u32) -> u32 {
        self.0.get(idx as usize).map_or(0, |m| u32::from(m & HELD))
    }

    /// Whether `idx` was marked, clearing the mark (its hits stay held).
    #[inline]
    pub(crate) fn take_reference(&mut self, idx: u32) -> bool {
        match self.0.get_mut(idx as usize) {
            Some(m) => {
                let hit = *m & REFERENCED != 0;
                *m &= !REFERENCED;
                hit
            }
            None => false,
        }
    }

    /// Halves every count held (the sketch has aged).
    pub(crate) fn age(&mut self) {
        for m in &mut self.0 {
            *m = (*m & !HELD) | ((*m & HELD) >> 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_saturate_and_age_and_the_bits_follow_the_queueing() {
        let mut m = HitMarks::default();
        m.reset(3);
        assert!(!m.count_fast(3), "a new node is not fast");
        m.queued(3, true);
        assert!(m.count_fast(3) && m.count_fast(3));
        assert_eq!(m.held(3), 2);
        assert!(m.take_reference(3) && !m.take_reference(3));
        for _ in 0..20_000 {
            m.hit(3, false);
        }
        assert_eq!(m.held(3), u32::from(HELD));
        assert!(m.count_fast(3));
        assert_eq!(m.held(3), u32::from(HELD));
        m.age();
        assert_eq!(m.held(3), u32::from(HELD >> 1));
        assert!(m.count_fast(3), "aging keeps the bits");
        m.queued(3, false);
        assert!(!m.count_fast(3) && !m.take_reference(3));
        assert_eq!(m.take_held(3), u32::from(HELD >> 1) + 1);
        assert_eq!(m.held(3), 0);
        // Out of range: nothing, and no panic.
        assert!(!m.count_fast(99) && !m.take_reference(99));
        assert_eq!(m.take_held(99), 0);
        m.hit(99, true);
    }
}
