//! W-TinyLFU (Einziger, Friedman & Manes, 2017) as Caffeine runs it: new keys enter a small
//! LRU admission window; a key leaving the window becomes a candidate for the main space, a
//! segmented LRU (probation and protected), and is admitted only if the frequency sketch
//! says it is used more often than the main space's victim. The window's share adapts by
//! hill climbing on the sampled hit ratio: a larger window favours recency (shifting
//! working sets), a smaller one frequency (scans, loops).

use super::sketch::FrequencySketch;
use super::slab::{List, NIL, Table};
use super::{Policy, PolicyKind};
use crate::hash::XorShift;

const WINDOW: u8 = 0;
const PROBATION: u8 = 1;
const PROTECTED: u8 = 2;

/// Options of [`WTinyLfu`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WTinyLfuConfig {
    /// Initial share of the capacity given to the admission window (0.01).
    pub window: f64,
    /// Share of the main space given to the protected segment (0.8).
    pub protected: f64,
    /// Whether the window adapts by hill climbing (true).
    pub adaptive: bool,
    /// Whether the sketch has a doorkeeper (true).
    pub doorkeeper: bool,
    /// Requests per hill-climbing sample, as a multiple of the capacity (10).
    pub sample_factor: u64,
    /// Step of the climber as a share of the capacity (0.0625).
    pub step: f64,
    /// Change of hit ratio between samples that restarts the step (0.05).
    pub restart_threshold: f64,
    /// Decay of the step per sample (0.98).
    pub step_decay: f64,
}

impl Default for WTinyLfuConfig {
    fn default() -> Self {
        WTinyLfuConfig {
            window: 0.01,
            protected: 0.8,
            adaptive: true,
            doorkeeper: true,
            sample_factor: 10,
            step: 0.0625,
            restart_threshold: 0.05,
            step_decay: 0.98,
        }
    }
}

#[derive(Debug, Clone)]
struct Climber {
    hits: u64,
    misses: u64,
    sample: u64,
    previous_rate: f64,
    step: f64,
}

/// Adaptive W-TinyLFU.
#[derive(Debug)]
pub struct WTinyLfu {
    t: Table,
    window: List,
    probation: List,
    protected: List,
    /// Weight of every resident key, including a candidate between queues.
    total: u64,
    cap: u64,
    window_max: f64,
    protected_max: f64,
    sketch: FrequencySketch,
    climber: Climber,
    rng: XorShift,
    cfg: WTinyLfuConfig,
}

impl WTinyLfu {
    /// The default adaptive policy with `capacity` weight units.
    pub fn new(capacity: u64) -> Self {
        Self::with_config(capacity, WTinyLfuConfig::default())
    }

    /// With explicit options.
    pub fn with_config(capacity: u64, cfg: WTinyLfuConfig) -> Self {
        let sketch = FrequencySketch::new(capacity, cfg.doorkeeper);
        let mut p = WTinyLfu {
            t: Table::with_capacity(capacity as usize),
            window: List::default(),
            probation: List::default(),
            protected: List::default(),
            total: 0,
            cap: capacity,
            window_max: 0.0,
            protected_max: 0.0,
            sketch,
            climber: Climber {
                hits: 0,
                misses: 0,
                sample: cfg.sample_factor.max(1) * capacity.max(1),
                previous_rate: 0.0,
                step: -cfg.step * capacity as f64,
            },
            rng: XorShift::new(0x5eed_1234_abcd_ef01),
            cfg,
        };
        p.size_segments();
        p
    }

    fn size_segments(&mut self) {
        let cap = self.cap as f64;
        self.window_max = (cap * self.cfg.window).max(1.0).min(cap);
        self.protected_max = (cap - self.window_max) * self.cfg.protected;
    }

    /// The current target weight of the admission window (it adapts).
    pub fn window_target(&self) -> u64 {
        self.window_max as u64
    }

    fn list(&mut self, tag: u8) -> &mut List {
        match tag {
            WINDOW => &mut self.window,
            PROBATION => &mut self.probation,
            _ => &mut self.protected,
        }
    }

    fn unlink(&mut self, idx: u32) {
        let tag = self.t.node(idx).tag;
        let mut l = *self.list(tag);
        l.unlink(&mut self.t, idx);
        *self.list(tag) = l;
    }

    fn push(&mut self, idx: u32, tag: u8) {
        self.t.node_mut(idx).tag = tag;
        let mut l = *self.list(tag);
        l.push_front(&mut self.t, idx);
        *self.list(tag) = l;
    }

    fn demote_protected(&mut self) {
        while self.protected.weight as f64 > self.protected_max && !self.protected.is_empty() {
            let idx = self.protected.tail;
            self.protected.unlink(&mut self.t, idx);
            self.push(idx, PROBATION);
        }
    }

    fn drop_resident(&mut self, idx: u32, evicted: &mut Vec<u64>) {
        self.total -= u64::from(self.t.node(idx).weight);
        evicted.push(self.t.remove(idx));
    }

    /// TinyLFU admission: the candidate must be used more often than the victim.
    fn admit_over(&mut self, candidate: u64, victim: u64) -> bool {
        let v = self.sketch.frequency(victim);
        let c = self.sketch.frequency(candidate);
        if c > v {
            true
        } else if c <= 6 {
            false
        } else {
            // Against hash flooding: a warm candidate sometimes wins anyway.
            self.rng.next_u64() & 127 == 0
        }
    }

    /// A key leaving the window (already unlinked, still counted in `total`).
    fn place_candidate(&mut self, c: u32, evicted: &mut Vec<u64>) {
        loop {
            if self.total <= self.cap {
                self.push(c, PROBATION);
                return;
            }
            let victim = if !self.probation.is_empty() {
                self.probation.tail
            } else if !self.protected.is_empty() {
                self.protected.tail
            } else {
                NIL
            };
            if victim == NIL {
                self.drop_resident(c, evicted);
                return;
            }
            let (ck, vk) = (self.t.node(c).key, self.t.node(victim).key);
            if self.admit_over(ck, vk) {
                self.unlink(victim);
                self.drop_resident(victim, evicted);
            } else {
                self.drop_resident(c, evicted);
                return;
            }
        }
    }

    fn evict(&mut self, evicted: &mut Vec<u64>) {
        while self.window.weight as f64 > self.window_max && !self.window.is_empty() {
            let c = self.window.tail;
            self.window.unlink(&mut self.t, c);
            self.place_candidate(c, evicted);
        }
        while self.total > self.cap {
            let victim = if !self.probation.is_empty() {
                self.probation.tail
            } else if !self.protected.is_empty() {
                self.protected.tail
            } else {
                self.window.tail
            };
            if victim == NIL {
                break;
            }
            self.unlink(victim);
            self.drop_resident(victim, evicted);
        }
    }

    fn record(&mut self, hit: bool) {
        if !self.cfg.adaptive {
            return;
        }
        if hit {
            self.climber.hits += 1;
        } else {
            self.climber.misses += 1;
        }
        let n = self.climber.hits + self.climber.misses;
        if n < self.climber.sample {
            return;
        }
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

    /// Moves `amount` weight units of target between the window and the protected segment.
    fn adjust(&mut self, amount: f64) {
        if amount > 0.0 {
            let quota = amount.min(self.protected_max);
            self.protected_max -= quota;
            self.window_max += quota;
            self.demote_protected();
            // Fill the grown window with main's least recently used keys.
            while (self.window.weight as f64) < self.window_max {
                let idx = if !self.probation.is_empty() {
                    self.probation.tail
                } else if !self.protected.is_empty() {
                    self.protected.tail
                } else {
                    break;
                };
                let w = f64::from(self.t.node(idx).weight);
                if self.window.weight as f64 + w > self.window_max {
                    break;
                }
                self.unlink(idx);
                self.push(idx, WINDOW);
            }
        } else if amount < 0.0 {
            let quota = (-amount).min(self.window_max - 1.0).max(0.0);
            self.window_max -= quota;
            self.protected_max += quota;
            while self.window.weight as f64 > self.window_max && !self.window.is_empty() {
                let idx = self.window.tail;
                self.window.unlink(&mut self.t, idx);
                self.push(idx, PROBATION);
            }
        }
    }
}

impl Policy for WTinyLfu {
    fn kind(&self) -> PolicyKind {
        if self.cfg.adaptive {
            PolicyKind::WTinyLfu
        } else {
            PolicyKind::TinyLfuStatic
        }
    }

    fn lookup(&mut self, key: u64) -> bool {
        // The sketch counts a hit here and a miss when the key is admitted (as Caffeine
        // counts reads and writes), so a lookup that is never followed by an insert does
        // not inflate the key's frequency.
        let hit = match self.t.get(key) {
            Some(idx) => {
                self.sketch.increment(key);
                match self.t.node(idx).tag {
                    WINDOW => self.window.move_to_front(&mut self.t, idx),
                    PROBATION => {
                        self.probation.unlink(&mut self.t, idx);
                        self.push(idx, PROTECTED);
                        self.demote_protected();
                    }
                    _ => self.protected.move_to_front(&mut self.t, idx),
                }
                true
            }
            None => false,
        };
        self.record(hit);
        hit
    }

    fn admit(&mut self, key: u64, weight: u32, evicted: &mut Vec<u64>) -> bool {
        if self.t.get(key).is_some() {
            return true;
        }
        self.sketch.increment(key);
        if u64::from(weight) > self.cap {
            return false;
        }
        let idx = self.t.insert(key, weight, WINDOW);
        self.window.push_front(&mut self.t, idx);
        self.total += u64::from(weight);
        let before = evicted.len();
        self.evict(evicted);
        if self.t.get(key).is_some() {
            true
        } else {
            // Declined: the newcomer was never resident, so it is not an eviction.
            if let Some(pos) = evicted[before..].iter().position(|&e| e == key) {
                evicted.remove(before + pos);
            }
            false
        }
    }

    fn set_weight(&mut self, key: u64, weight: u32, evicted: &mut Vec<u64>) {
        let Some(idx) = self.t.get(key) else { return };
        let tag = self.t.node(idx).tag;
        let old = self.t.node(idx).weight;
        let mut l = *self.list(tag);
        l.reweigh(&mut self.t, idx, weight);
        *self.list(tag) = l;
        self.total = self.total - u64::from(old) + u64::from(weight);
        if u64::from(weight) > self.cap {
            self.unlink(idx);
            self.drop_resident(idx, evicted);
        }
        self.demote_protected();
        self.evict(evicted);
    }

    fn remove(&mut self, key: u64) -> bool {
        match self.t.get(key) {
            Some(idx) => {
                self.unlink(idx);
                self.total -= u64::from(self.t.node(idx).weight);
                self.t.remove(idx);
                true
            }
            None => false,
        }
    }

    fn contains(&self, key: u64) -> bool {
        self.t.get(key).is_some()
    }

    fn len(&self) -> usize {
        self.t.len()
    }

    fn weight(&self) -> u64 {
        self.total
    }

    fn capacity(&self) -> u64 {
        self.cap
    }

    fn set_capacity(&mut self, capacity: u64, evicted: &mut Vec<u64>) {
        let share = if self.cap == 0 {
            self.cfg.window
        } else {
            self.window_max / self.cap as f64
        };
        self.cap = capacity;
        let cap = capacity as f64;
        self.window_max = (cap * share).max(1.0).min(cap);
        self.protected_max = (cap - self.window_max) * self.cfg.protected;
        self.climber.sample = self.cfg.sample_factor.max(1) * capacity.max(1);
        self.demote_protected();
        self.evict(evicted);
    }

    fn for_each_resident(&self, f: &mut dyn FnMut(u64, u32)) {
        self.probation.for_each_oldest_first(&self.t, f);
        self.protected.for_each_oldest_first(&self.t, f);
        self.window.for_each_oldest_first(&self.t, f);
    }
}
