//! W-TinyLFU's deferred hits, two bytes per node in an array of their own.
//!
//! A hit in the protected segment (most hits) only counts: the count waits for the sketch,
//! and a mark asks for a requeue when the key reaches the segment's oldest end (see
//! [`WTinyLfu`](super::WTinyLfu)). A hit in the window counts too, and moves the key only
//! when the window has turned over by about an eighth since the key was last put at its
//! newest end, which the mark's generation tells. Kept apart from the nodes, such a hit
//! writes two bytes of an array of two bytes per entry (200 KB for 100k entries, which
//! stays in a core's cache) instead of a 32-byte node somewhere in megabytes of them. The
//! fast bits say that a hit on the node is one of these, so a hit through an exact handle
//! reads no node at all, but for a window key's due move.

/// The hits held for the sketch (saturating: the sketch's counters stop at 15, and it
/// takes five agings, with no read of the key's frequency between, for a count held at
/// this most to come down to where one held higher would differ).
const HELD: u16 = 0x00ff;
/// The window generation when the key was last put at the window's newest end (see
/// [`HitMarks::fast_hit`]), for a key in the window.
const GEN_SHIFT: u32 = 8;
const GEN: u16 = 0x1f << GEN_SHIFT;
/// In the window and not sampled by the shadows: a hit counts, and moves the key when due.
const WINDOW_FAST: u16 = 0x2000;
/// Hit in the protected segment since it was queued there.
const REFERENCED: u16 = 0x4000;
/// In the protected segment and not sampled by the shadows: a hit only counts.
const FAST: u16 = 0x8000;

/// How many window generations must have begun for a window hit to move its key: with a
/// generation a sixteenth of the window's admissions, a move comes after between one and
/// two sixteenths of the window were admitted (it came after more than an eighth, by a
/// stamp in the node; moving a little sooner kept the hit ratios at least as high).
const DUE: u16 = 2;

/// `m` with one more hit held (saturating).
#[inline]
fn one_more(m: u16) -> u16 {
    m + u16::from(m & HELD != HELD)
}

/// What a hit through an exact handle was, by its marks alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FastHit {
    /// Neither fast bit is set: the caller reads the node.
    No,
    /// Counted (and marked, in the protected segment): nothing else to do.
    Counted,
    /// Counted, in the window, and its move to the window's newest end is due.
    Move,
}

/// Per node index: the hits held, the reference mark, the window generation and the fast
/// bits.
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

    /// A hit through an exact handle, when a fast bit says the marks suffice: counts it
    /// (marking a protected key), and tells a window key's due move by `generation`, the
    /// window's current one (the caller then moves it and calls
    /// [`windowed`](Self::windowed)).
    #[inline]
    pub(crate) fn fast_hit(&mut self, idx: u32, generation: u32) -> FastHit {
        let Some(m) = self.0.get_mut(idx as usize) else {
            return FastHit::No;
        };
        if *m & FAST != 0 {
            *m = one_more(*m) | REFERENCED;
            return FastHit::Counted;
        }
        if *m & WINDOW_FAST == 0 {
            return FastHit::No;
        }
        *m = one_more(*m);
        if since(*m, generation) >= DUE {
            FastHit::Move
        } else {
            FastHit::Counted
        }
    }

    /// Whether a window hit on `idx` is due to move it, by `generation` (for a key the
    /// shadows sample, whose hits take the slow path).
    #[inline]
    pub(crate) fn window_due(&self, idx: u32, generation: u32) -> bool {
        self.0
            .get(idx as usize)
            .is_some_and(|&m| since(m, generation) >= DUE)
    }

    /// `idx` was (re)queued in a main segment: the reference mark and the window's bits
    /// are cleared and the fast bit set to `fast`; the hits held stay.
    #[inline]
    pub(crate) fn queued(&mut self, idx: u32, fast: bool) {
        if let Some(m) = self.0.get_mut(idx as usize) {
            *m = (*m & HELD) | if fast { FAST } else { 0 };
        }
    }

    /// `idx` was put in the window (at its newest end in `generation`, or as if then): the
    /// window's fast bit is set to `fast`; the hits held stay.
    #[inline]
    pub(crate) fn windowed(&mut self, idx: u32, fast: bool, generation: u32) {
        if let Some(m) = self.0.get_mut(idx as usize) {
            let g = ((generation as u16) << GEN_SHIFT) & GEN;
            *m = (*m & HELD) | g | if fast { WINDOW_FAST } else { 0 };
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

/// Window generations since the one in `m` (modulo 32: a key leaves the window long
/// before 32 sixteenths of it are admitted after its last move, unless the window grows
/// meanwhile, when a move may come early or late).
#[inline]
fn since(m: u16, generation: u32) -> u16 {
    ((generation as u16).wrapping_sub((m & GEN) >> GEN_SHIFT)) & 0x1f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_saturate_and_age_and_the_bits_follow_the_queueing() {
        let mut m = HitMarks::default();
        m.reset(3);
        assert_eq!(m.fast_hit(3, 0), FastHit::No, "a new node is not fast");
        m.queued(3, true);
        assert_eq!(m.fast_hit(3, 0), FastHit::Counted);
        assert_eq!(m.fast_hit(3, 0), FastHit::Counted);
        assert_eq!(m.held(3), 2);
        assert!(m.take_reference(3) && !m.take_reference(3));
        for _ in 0..20_000 {
            m.hit(3, false);
        }
        assert_eq!(m.held(3), u32::from(HELD));
        assert_eq!(m.fast_hit(3, 0), FastHit::Counted);
        assert_eq!(m.held(3), u32::from(HELD));
        m.age();
        assert_eq!(m.held(3), u32::from(HELD >> 1));
        assert_eq!(m.fast_hit(3, 0), FastHit::Counted, "aging keeps the bits");
        m.queued(3, false);
        assert_eq!(m.fast_hit(3, 0), FastHit::No);
        assert!(!m.take_reference(3));
        assert_eq!(m.take_held(3), u32::from(HELD >> 1) + 1);
        assert_eq!(m.held(3), 0);
        // Out of range: nothing, and no panic.
        assert_eq!(m.fast_hit(99, 0), FastHit::No);
        assert!(!m.take_reference(99) && !m.window_due(99, 5));
        assert_eq!(m.take_held(99), 0);
        m.hit(99, true);
    }

    #[test]
    fn a_window_hit_moves_its_key_two_generations_after_it_was_put_there() {
        let mut m = HitMarks::default();
        m.reset(1);
        m.windowed(1, true, 30);
        assert_eq!(m.fast_hit(1, 30), FastHit::Counted);
        assert_eq!(m.fast_hit(1, 31), FastHit::Counted);
        // Across the generations' wrap (32 of them).
        assert_eq!(m.fast_hit(1, 32), FastHit::Move);
        assert!(m.window_due(1, 33) && !m.window_due(1, 31));
        m.windowed(1, true, 32);
        assert_eq!(m.fast_hit(1, 33), FastHit::Counted);
        assert_eq!(m.held(1), 4, "every hit counts, moved or not");
        // Sampled by the shadows: the slow path, which asks whether the move is due.
        m.windowed(1, false, 40);
        assert_eq!(m.fast_hit(1, 50), FastHit::No);
        assert!(m.window_due(1, 42));
        // Leaving the window for a main segment clears its bits, keeps its hits.
        m.windowed(1, true, 40);
        m.queued(1, false);
        assert_eq!(m.fast_hit(1, 50), FastHit::No);
        assert_eq!(m.held(1), 4);
    }
}
