//! How W-TinyLFU's window adapts: to the shadow caches' choice (a jump to the share of
//! the one that does clearly best) and, when configured, by Caffeine's hill climbing on the
//! sampled hit ratio; and how the queues follow a new window size.

use super::{PROBATION, SAMPLED, WINDOW, WTinyLfu};
use crate::policy::slab::NO_ESTIMATE;

/// Caffeine's hill climber: the hits and misses of the current sample, its length, the
/// last sample's hit ratio and the next step (weight units; its sign the direction).
#[derive(Debug, Clone)]
#[repr(C)]
pub(super) struct Climber {
    pub(super) hits: u64,
    pub(super) misses: u64,
    pub(super) sample: u64,
    pub(super) previous_rate: f64,
    pub(super) step: f64,
}

impl Climber {
    /// How many more requests the climber takes before its next step.
    pub(super) fn until_step(&self) -> u64 {
        self.sample.saturating_sub(self.hits + self.misses)
    }
}

impl WTinyLfu {
    /// Feeds a request's outcome to the hill climber, when it climbs.
    #[inline]
    pub(super) fn record(&mut self, hit: bool) {
        if self.climbing {
            let c = &mut self.climber;
            if hit {
                c.hits += 1;
            } else {
                c.misses += 1;
            }
            if c.hits + c.misses >= c.sample {
                self.climb();
            }
        }
    }

    /// The end of a sample: one step of the climb.
    #[cold]
    fn climb(&mut self) {
        let n = self.climber.hits + self.climber.misses;
        let rate = self.climber.hits as f64 / n as f64;
        let change = rate - self.climber.previous_rate;
        let amount = if change >= 0.0 {
            self.climber.step
        } else {
            -self.climber.step
        };
        let cap = self.cap as f64;
        self.climber.step = if change.abs() >= self.cfg.restart_threshold {
            self.cfg.step * cap * if amount >= 0.0 { 1.0 } else { -1.0 }
        } else {
            self.cfg.step_decay * amount
        };
        self.climber.previous_rate = rate;
        self.climber.hits = 0;
        self.climber.misses = 0;
        self.adjust(amount);
    }

    /// Feeds a hit on `idx` to the hill climber and, when its key is sampled, the shadows.
    #[inline]
    pub(super) fn observe_hit(&mut self, key: u64, idx: u32) {
        self.record(true);
        if self.t.node(idx).bits & SAMPLED != 0 {
            self.feed_shadows(key);
        }
    }

    /// Feeds a miss to the hill climber and, when its key is sampled, the shadows; applies
    /// a choice the shared shadows made meanwhile.
    pub(super) fn observe_miss(&mut self, key: u64) {
        self.record(false);
        if self.shadows.samples(key) {
            self.feed_shadows(key);
        } else if let Some(best) = self.shadows.poll() {
            self.jump(best);
        }
    }

    fn feed_shadows(&mut self, key: u64) {
        let current = self.window_max / self.cap.max(1) as f64;
        if let Some(best) = self.shadows.feed(key, current, self.cfg.shadow_margin) {
            self.jump(best);
        }
    }

    /// Sets the window to `share` of the capacity (the shadows' choice).
    fn jump(&mut self, share: f64) {
        let cap = self.cap.max(1) as f64;
        let current = self.window_max;
        let target = (share * cap).max(1.0).min(cap);
        self.set_window(target);
        self.climber.step = self.cfg.step * cap * if target > current { 1.0 } else { -1.0 };
        self.climber.hits = 0;
        self.climber.misses = 0;
    }

    /// Sets the window's target to `target` weight units and the protected segment to its
    /// configured share of the rest, then moves keys so the queues match.
    pub(super) fn set_window(&mut self, target: f64) {
        let cap = self.cap as f64;
        let old = self.window_max;
        let window = target.clamp(1.0_f64.min(cap), cap);
        self.set_targets(window, (cap - window) * self.cfg.protected);
        self.demote_protected();
        if self.window_max > old {
            self.fill_window();
        } else {
            while self.window.weight > self.window_limit && !self.window.is_empty() {
                let idx = self.window.tail;
                self.window.unlink(&mut self.t, idx);
                self.push(idx, PROBATION);
            }
        }
    }

    /// Moves main's least recently used keys into a window that has room, behind the
    /// window's own keys and in their order: they were used less recently than the window's
    /// keys, so they leave it first (ahead of them, a shift of the working set would evict
    /// the new keys the window has just taken in).
    fn fill_window(&mut self) {
        let mut room = self.window_max - self.window.weight as f64;
        let mut moved = Vec::new();
        while room > 0.0 {
            let idx = if !self.probation.is_empty() {
                self.probation.tail
            } else if !self.protected.is_empty() {
                self.protected.tail
            } else {
                break;
            };
            let w = f64::from(self.t.node(idx).weight);
            if w > room {
                break;
            }
            room -= w;
            self.unlink(idx);
            moved.push(idx);
        }
        // Oldest first in `moved`: the oldest ends at the window's tail.
        for &idx in moved.iter().rev() {
            let n = self.t.node_mut(idx);
            n.tag = WINDOW;
            // From the main space: no estimate to carry (see "Carried estimates").
            n.est = NO_ESTIMATE;
            let fast = self.deferred && n.bits & SAMPLED == 0;
            // As if queued long ago (they join at the oldest end; 16 generations back, the
            // first hit is due): a hit moves them.
            self.marks
                .windowed(idx, fast, self.window_gen.wrapping_sub(16));
            self.window.push_back(&mut self.t, idx);
        }
    }

    /// Moves `amount` weight units of target between the window and the protected segment.
    fn adjust(&mut self, amount: f64) {
        if amount > 0.0 {
            let quota = amount.min(self.protected_max);
            self.set_targets(self.window_max + quota, self.protected_max - quota);
            self.demote_protected();
            // Fill the grown window with main's least recently used keys.
            self.fill_window();
        } else if amount < 0.0 {
            let quota = (-amount).min(self.window_max - 1.0).max(0.0);
            self.set_targets(self.window_max - quota, self.protected_max + quota);
            while self.window.weight > self.window_limit && !self.window.is_empty() {
                let idx = self.window.tail;
                self.window.unlink(&mut self.t, idx);
                self.push(idx, PROBATION);
            }
        }
    }
}
