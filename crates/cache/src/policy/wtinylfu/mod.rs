//! W-TinyLFU (Einziger, Friedman & Manes, 2017) as Caffeine runs it: new keys enter a small
//! LRU admission window; a key leaving the window becomes a candidate for the main space, a
//! segmented LRU (probation and protected), and is admitted only if the frequency sketch
//! says it is used clearly more often than the main space's victim. By default hits in the
//! protected segment are deferred, which makes it a CLOCK (see [`WTinyLfu`]). The window's
//! share adapts: a larger window favours recency (shifting working sets), a smaller one
//! frequency (scans, loops). Miniature copies of the cache with fixed windows run beside it
//! on a spatial sample of the keys (`shadows.rs`), and the window jumps to the share of
//! whichever does clearly best. Caffeine's hill climbing on the sampled hit ratio is there
//! too, but off by default: against moka and quick_cache on the synthetic and shared
//! workloads its steps cost more (churn on every move, oscillation on loops) than they
//! found.

use std::sync::Arc;

use self::adapt::Climber;
use super::marks::{FastHit, HitMarks};
use super::shadows::{ShadowLink, Shadows, SharedShadows};
use super::sketch::FrequencySketch;
use super::slab::{List, NIL, NO_ESTIMATE, Table};
use super::{Policy, PolicyKind};
use crate::hash::XorShift;

mod adapt;

const WINDOW: u8 = 0;
const PROBATION: u8 = 1;
const PROTECTED: u8 = 2;

/// In a node's `bits`: the shadow caches sample the key (tested once, on admission).
const SAMPLED: u8 = 2;

/// Options of [`WTinyLfu`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WTinyLfuConfig {
    /// Initial share of the capacity given to the admission window (0.01).
    pub window: f64,
    /// Share of the main space given to the protected segment (0.8).
    pub protected: f64,
    /// Whether the window adapts, by the shadow caches and (when `step` is not 0) hill
    /// climbing (true).
    pub adaptive: bool,
    /// Whether the sketch has a doorkeeper Bloom filter in front of it (false: measured
    /// on the shared traces, aging without it keeps warm keys better).
    pub doorkeeper: bool,
    /// Requests per hill-climbing sample, as a multiple of the capacity (20; Caffeine
    /// uses 10, which climbs on noise more often).
    pub sample_factor: u64,
    /// Step of the hill climber as a share of the capacity (0: no hill climbing, the
    /// default; Caffeine uses 0.0625).
    pub step: f64,
    /// Change of hit ratio between samples that restarts the step (0.05).
    pub restart_threshold: f64,
    /// Decay of the step per sample (0.98).
    pub step_decay: f64,
    /// Window shares simulated in miniature beside the cache (on a spatial sample of the
    /// keys); when one of them does clearly better than the current window, the window
    /// jumps there (and hill climbing, if on, resumes from it). Empty: hill climbing only.
    /// Default: 0.2 %, 1 %, 20 % and 100 % of the capacity.
    pub shadow_windows: &'static [f64],
    /// How much better (hit ratio, 0..1) a shadow must do to trigger a jump (0.015: at
    /// 0.01, a cache of 100k entries under a steady Zipf workload jumped to a 20 % window
    /// on noise, 0.5 points below a fixed window; at 0.02 a loop reacts too late).
    pub shadow_margin: f64,
    /// Sampled requests per shadow epoch, as a multiple of the shadow capacity (0.5: a
    /// shift of the working set is seen within a few hundred sampled requests).
    pub shadow_epoch: f64,
    /// Whether hits are held for the key, reaching the sketch when the key's frequency is
    /// read or the key leaves, a hit in the protected segment moves the key only when it
    /// reaches the segment's oldest end, and one in the window only after a sixteenth to an
    /// eighth of the window has been admitted since it last moved (true); or every hit is
    /// counted in the sketch and moves the key at once (false: the textbook policy). See
    /// [`WTinyLfu`]'s "Deferred hits".
    pub deferred_hits: bool,
}

impl Default for WTinyLfuConfig {
    fn default() -> Self {
        WTinyLfuConfig {
            window: 0.01,
            protected: 0.8,
            adaptive: true,
            doorkeeper: false,
            sample_factor: 20,
            step: 0.0,
            restart_threshold: 0.05,
            step_decay: 0.98,
            shadow_windows: &[0.002, 0.01, 0.2, 1.0],
            shadow_margin: 0.015,
            shadow_epoch: 0.5,
            deferred_hits: true,
        }
    }
}

/// Adaptive W-TinyLFU.
///
/// # Deferred hits
///
/// By default ([`WTinyLfuConfig::deferred_hits`]) a hit adds one to a count held for the
/// key (in a side array of two bytes per node), and the sketch gets the count only when
/// the key's frequency is about to be read (it is the candidate or the victim of an
/// admission) or the key leaves the cache. A hit in the protected segment, where most hits
/// land, does nothing else: it marks the key, and the move to the segment's newest end
/// happens when the key reaches the oldest end, where a marked key is requeued instead of
/// being demoted (the segment is a CLOCK). A hit in the window moves the key to the
/// window's newest end only if a sixteenth to an eighth of the window has been admitted
/// since it was last put there (two generations of a sixteenth, which the key's marks
/// record): the hottest keys can stay in the window for good (half the hits at Zipf 1.1 in
/// a `MemoryCache` of 100k entries over 1M keys), and they no longer move on every hit;
/// such a hit reads no node either, but for a due move. A hit in probation still promotes
/// the key at once (deferring it cost three points with a fixed window on a shifting
/// working set; a CLOCK window, marking instead of moving, cost 0.7-0.8 on multi3 and on a
/// shifting set). Aging counts every hit when it happens and halves the held counts with
/// the sketch's.
///
/// This is what makes a hit cheap in [`MemoryCache`](crate::MemoryCache): a protected or
/// window hit writes two bytes and (mostly) reads no node, where the textbook hit touches
/// the node, its two list neighbours and a sketch block. The hit ratios stay within 0.25
/// points of the textbook policy's on the synthetic workloads (`tests/adaptive.rs` holds
/// them to 0.3), up on most; `crates/bench/tests/cache_hit_ratio_vs_peers.rs` holds them
/// to the bar against moka, quick_cache and LRU.
///
/// # Carried estimates
///
/// With deferred hits and no doorkeeper (the default), a key admitted into the window
/// takes the sketch's estimate of its frequency into its node when its count is written
/// (the sketch writes a count at the next one), and when it leaves the window as a
/// candidate its count is that estimate plus the hits held for it since: its own counters
/// are not read again. Most candidates are declined on that count alone (see
/// `place_candidate`), so a miss reads one block of the sketch (the newcomer's) where it
/// read two, one of them a cache miss of its own. The count differs from a fresh read
/// only by what other keys added to the candidate's counters while it was in the window
/// (collisions, which only ever raise an estimate). An estimate is dropped when the counts
/// age (the window's nodes are walked then), when its key leaves the window, and when its
/// count was written some other way (before an aging, or before a read of the same
/// block): the candidate's counters are then read.
///
/// # Layout
///
/// A memory cache has one policy per shard, and a request lands on a random shard: what a
/// request reads of the policy's own fields is a cache miss unless it is on few lines. So
/// the fields are in a fixed order from a line's start: what a batch of hits reads in the
/// first line (the marks, two flags, the sketch's request count), then the fields of
/// every admission (about four lines), the configuration and the rarely used state after.
#[derive(Debug)]
#[repr(C, align(64))]
pub struct WTinyLfu {
    /// The hits held and the marks of each node (see "Deferred hits").
    marks: HitMarks,
    /// `cfg.deferred_hits`, read on every hit.
    deferred: bool,
    /// Whether the window climbs at all (adaptive with a step; fixed at construction).
    climbing: bool,
    sketch: FrequencySketch,
    t: Table,
    window: List,
    probation: List,
    protected: List,
    /// Weight of every resident key, including a candidate between queues.
    total: u64,
    cap: u64,
    /// The most weight the window and the protected segment hold: `window_max` and
    /// `protected_max` rounded down, which the admissions compare with (an integer weight
    /// exceeds a target exactly when it exceeds the target's floor; a weight turned into a
    /// float for the comparison cost about 17 instructions a miss). Set with the targets,
    /// by [`set_targets`](Self::set_targets).
    window_limit: u64,
    protected_limit: u64,
    /// The window's generation (wrapping): the clock of its lazy moves, one tick every
    /// sixteenth of the window's length in admissions (see `HitMarks::fast_hit`).
    window_gen: u32,
    /// Admissions left until the next generation.
    gen_left: u32,
    /// The node of the key whose count the sketch holds pending (`NIL`: none, or not
    /// a window node): it gets its estimate when the count is written (see
    /// "Carried estimates").
    pending_node: u32,
    /// Whether window nodes carry their estimates (with deferred hits and no
    /// doorkeeper: see "Carried estimates").
    carry: bool,
    climber: Climber,
    shadows: ShadowLink,
    rng: XorShift,
    /// The targets of the window's and the protected segment's weights (the window's
    /// adapts; fractional, as the climber moves them by shares of the capacity).
    window_max: f64,
    protected_max: f64,
    cfg: WTinyLfuConfig,
}

impl WTinyLfu {
    /// The default adaptive policy with `capacity` weight units.
    pub fn new(capacity: u64) -> Self {
        Self::with_config(capacity, WTinyLfuConfig::default())
    }

    /// With explicit options.
    pub fn with_config(capacity: u64, cfg: WTinyLfuConfig) -> Self {
        let shadows = match Shadows::new(capacity, &cfg) {
            Some(own) => ShadowLink::own(own),
            None => ShadowLink::None,
        };
        Self::with_shadows(capacity, cfg, shadows)
    }

    /// A shard of a cache: its window follows `shared`, the shadows of the whole cache
    /// (none: not adaptive by shadows).
    pub(crate) fn with_shared_shadows(
        capacity: u64,
        cfg: WTinyLfuConfig,
        shared: Option<Arc<SharedShadows>>,
    ) -> Self {
        let shadows = match shared {
            Some(shared) if cfg.adaptive => ShadowLink::shared(shared),
            _ => ShadowLink::None,
        };
        Self::with_shadows(capacity, cfg, shadows)
    }

    fn with_shadows(capacity: u64, cfg: WTinyLfuConfig, shadows: ShadowLink) -> Self {
        let sketch = FrequencySketch::new(capacity, cfg.doorkeeper);
        let mut p = WTinyLfu {
            t: Table::with_capacity(capacity as usize),
            marks: HitMarks::default(),
            window: List::default(),
            probation: List::default(),
            protected: List::default(),
            total: 0,
            cap: capacity,
            window_max: 0.0,
            protected_max: 0.0,
            window_limit: 0,
            protected_limit: 0,
            sketch,
            climber: Climber {
                hits: 0,
                misses: 0,
                sample: cfg.sample_factor.max(1) * capacity.max(1),
                previous_rate: 0.0,
                step: -cfg.step * capacity as f64,
            },
            shadows,
            rng: XorShift::new(0x5eed_1234_abcd_ef01),
            cfg,
            window_gen: 0,
            gen_left: 0,
            pending_node: NIL,
            carry: cfg.deferred_hits && !cfg.doorkeeper,
            deferred: cfg.deferred_hits,
            climbing: cfg.adaptive && cfg.step != 0.0,
        };
        p.size_segments();
        p
    }

    fn size_segments(&mut self) {
        let cap = self.cap as f64;
        let window = (cap * self.cfg.window).max(1.0).min(cap);
        self.set_targets(window, (cap - window) * self.cfg.protected);
    }

    /// Sets the window's and the protected segment's target weights, and their limits.
    pub(super) fn set_targets(&mut self, window: f64, protected: f64) {
        self.window_max = window;
        self.protected_max = protected;
        // (Saturating: a negative or not-a-number target would be 0.)
        self.window_limit = window as u64;
        self.protected_limit = protected as u64;
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
        let n = self.t.node_mut(idx);
        n.tag = tag;
        // Carried only through the window (see "Carried estimates").
        n.est = NO_ESTIMATE;
        let fast = self.deferred && tag == PROTECTED && n.bits & SAMPLED == 0;
        self.marks.queued(idx, fast);
        let mut l = *self.list(tag);
        l.push_front(&mut self.t, idx);
        *self.list(tag) = l;
    }

    fn demote_protected(&mut self) {
        while self.protected.weight > self.protected_limit && !self.protected.is_empty() {
            let idx = self.protected.tail;
            if self.take_reference(idx) {
                // Hit since it was queued: what the hit's move would have done.
                self.protected.move_to_front(&mut self.t, idx);
                continue;
            }
            self.protected.unlink(&mut self.t, idx);
            self.push(idx, PROBATION);
        }
    }

    /// Writes the deferred hits held on `idx`'s node into the sketch (before the key's
    /// frequency is read, or the key leaves).
    #[inline]
    fn settle(&mut self, idx: u32) -> u32 {
        let hits = self.marks.take_held(idx);
        if hits > 0 {
            let key = self.t.node(idx).key;
            self.sketch.add(key, hits);
        }
        hits
    }

    /// Whether `idx` was hit since it was last queued in the protected segment, clearing
    /// the mark. Its hits stay held: a requeued key does not need its frequency yet.
    #[inline]
    fn take_reference(&mut self, idx: u32) -> bool {
        self.marks.take_reference(idx)
    }

    /// After the sketch has aged: deferred hits age with it (counted in time, they would
    /// have been halved with the rest).
    /// The window's carried estimates are dropped too: read before the aging, they count
    /// twice what the counters now hold.
    fn age_deferred(&mut self) {
        if self.deferred {
            self.marks.age();
        }
        if self.carry {
            let mut i = self.window.head;
            while let Some(n) = self.t.try_node_mut(i) {
                n.est = NO_ESTIMATE;
                i = n.next;
            }
        }
    }

    /// Counts a request for `key` in the sketch at once. The count pending until now (see
    /// [`FrequencySketch::increment`]) is written, and when it was a window node's, the
    /// node takes its estimate.
    fn count(&mut self, key: u64) {
        let (aged, estimate) = self.sketch.increment(key);
        let pending = std::mem::replace(&mut self.pending_node, NIL);
        if let Some(est) = estimate
            && let Some(n) = self.t.try_node_mut(pending)
            && n.live
            && n.tag == WINDOW
        {
            n.est = est as u8;
        }
        if aged {
            self.age_deferred();
        }
    }

    /// The estimated frequency of the window node `c` after its held hits were written
    /// (`held` of them): carried from its admission when it has one, else read from the
    /// sketch (see "Carried estimates").
    #[inline]
    fn candidate_count(&mut self, c: u32, held: u32) -> u32 {
        let n = self.t.node(c);
        if n.est != NO_ESTIMATE {
            (u32::from(n.est) + held).min(15)
        } else {
            let key = n.key;
            self.sketch.frequency(key)
        }
    }

    /// The main space's next victim: probation's oldest key, else protected's (`NIL` when
    /// both are empty). A key hit since it was queued is first given what its hits would
    /// have done: promoted out of probation, or requeued at protected's newest end.
    fn victim(&mut self) -> u32 {
        loop {
            let idx = if !self.probation.is_empty() {
                self.probation.tail
            } else if !self.protected.is_empty() {
                self.protected.tail
            } else {
                return NIL;
            };
            if !self.take_reference(idx) {
                self.settle(idx);
                return idx;
            }
            if self.t.node(idx).tag == PROBATION {
                self.probation.unlink(&mut self.t, idx);
                self.push(idx, PROTECTED);
                self.demote_protected();
            } else {
                self.protected.move_to_front(&mut self.t, idx);
            }
        }
    }

    fn drop_resident(&mut self, idx: u32, evicted: &mut Vec<u64>) {
        self.settle(idx);
        if self.pending_node == idx {
            self.pending_node = NIL;
        }
        self.marks.reset(idx);
        self.total -= u64::from(self.t.node(idx).weight);
        let key = self.t.remove(idx);
        // Detached, the caller learns of it from the freed handles.
        if !self.t.is_detached() {
            evicted.push(key);
        }
    }

    /// TinyLFU admission: the candidate, counted `candidate` times, must be used clearly
    /// more often than the victim.
    ///
    /// "Clearly": by more than one. A candidate leaving the window has just been counted and
    /// the victim, in a loop, not yet in the current round, so "more often" alone admits a
    /// key used no more often than the one it replaces. On a loop a little larger than the
    /// cache that churn cost about a tenth of the hits; on Zipf workloads the margin also
    /// keeps the sketch's collisions from deciding (measured against moka and quick_cache).
    fn admit_over(&mut self, candidate: u32, victim: u64) -> bool {
        let v = self.sketch.frequency(victim);
        if candidate > v + 1 {
            true
        } else if candidate <= 6 {
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
            // A candidate taken into a widened window may hold deferred hits.
            let held = self.settle(c);
            let count = self.candidate_count(c, held);
            // A count of one or none is below any victim's plus one, so the candidate is
            // declined without looking for a victim (most candidates on a skewed workload
            // were seen once): the main space's oldest nodes, their marks and counters
            // are not read on most misses. Any hits the victim would have been given
            // first are given at the next search.
            let victim = if count <= 1 { NIL } else { self.victim() };
            if victim != NIL && self.admit_over(count, self.t.node(victim).key) {
                self.unlink(victim);
                self.drop_resident(victim, evicted);
            } else {
                self.drop_resident(c, evicted);
                return;
            }
        }
    }

    fn evict(&mut self, evicted: &mut Vec<u64>) {
        while self.window.weight > self.window_limit && !self.window.is_empty() {
            let c = self.window.tail;
            self.window.unlink(&mut self.t, c);
            self.place_candidate(c, evicted);
        }
        while self.total > self.cap {
            let mut victim = self.victim();
            if victim == NIL {
                victim = self.window.tail;
            }
            if victim == NIL {
                break;
            }
            self.unlink(victim);
            self.drop_resident(victim, evicted);
        }
    }

    /// A hit on the resident at `idx` (the handle methods' entry point).
    fn hit_at(&mut self, idx: u32) {
        let key = self.t.node(idx).key;
        self.hit(key, idx);
    }

    /// A hit on `key`, resident at `idx`.
    #[inline]
    fn hit(&mut self, key: u64, idx: u32) {
        self.on_hit(key, idx);
        self.observe_hit(key, idx);
    }

    /// [`Policy::touch_handles`] with deferred hits, and a batch
    /// that neither ages the sketch nor ends the climber's sample: what `hit` does in the
    /// common cases, inline, with the batch's counts added once at the end (nothing in
    /// between reads them). A hit in the protected segment counts and marks the key
    /// without reading its node; one in the window counts too, and is moved when due
    /// ([`window_move`](Self::window_move)); the others take `hit`.
    fn touch_exact(&mut self, handles: &[u32]) {
        let mut counted = 0u64;
        for &slot in handles {
            match self.marks.fast_hit(slot, self.window_gen) {
                FastHit::Counted => counted += 1,
                FastHit::Move => {
                    counted += 1;
                    self.window_move(slot);
                }
                FastHit::No => {
                    if let Some(n) = self.t.try_node(slot).filter(|n| n.live) {
                        self.hit(n.key, slot);
                    }
                }
            }
        }
        self.sketch.count_deferred_many(counted);
        if self.climbing {
            self.climber.hits += counted;
        }
    }

    /// Textbook hits (every hit moves its node and counts in the sketch): reads the nodes,
    /// their neighbours and the counters of a batch first, so that the loads overlap.
    fn warm_for_hits(&mut self, slots: impl Iterator<Item = u32>) {
        let mut acc = 0u64;
        for slot in slots {
            let key = self.t.try_node(slot).map_or(0, |n| n.key);
            acc ^= self.t.warm(slot) ^ self.sketch.warm(key);
        }
        std::hint::black_box(acc);
    }

    /// The move of a window hit that is due (out of line: most are not). With deferred
    /// hits the key moves to the window's newest end only once the window has turned
    /// over by a sixteenth to an eighth since it was last put there (see
    /// `HitMarks::fast_hit`): the window's hottest keys, hit again and again, then stop
    /// moving on every hit, and a key leaves the window at most an eighth of a window of
    /// admissions before it would with a move on every hit. (With half a window, the
    /// shifting set of 2000 fell 1.3 points under LRU, with a quarter 0.47; with more than
    /// an eighth, the earlier rule, every test workload was within 0.21 points of the
    /// textbook policy.)
    #[inline(never)]
    fn window_move(&mut self, idx: u32) {
        self.window.move_to_front(&mut self.t, idx);
        let fast = self.t.node(idx).bits & SAMPLED == 0;
        self.marks.windowed(idx, fast, self.window_gen);
    }

    fn on_hit(&mut self, key: u64, idx: u32) {
        let tag = self.t.node(idx).tag;
        if self.deferred {
            // Held for the key; the sketch gets it before the key's frequency is read.
            self.marks.hit(idx, tag == PROTECTED);
            if self.sketch.count_deferred() {
                self.age_deferred();
            }
            if tag == PROTECTED {
                return;
            }
        } else {
            self.count(key);
        }
        match tag {
            WINDOW if self.deferred => {
                if self.marks.window_due(idx, self.window_gen) {
                    self.window_move(idx);
                }
            }
            WINDOW => self.window.move_to_front(&mut self.t, idx),
            PROBATION => {
                self.probation.unlink(&mut self.t, idx);
                self.push(idx, PROTECTED);
                self.demote_protected();
            }
            _ => self.protected.move_to_front(&mut self.t, idx),
        }
    }

    /// `idx`, just admitted into the window, is the key whose count the sketch now holds
    /// pending: it takes its estimate when the count is written (unless it has left by
    /// then, or estimates are not carried).
    #[inline]
    fn note_pending(&mut self, idx: u32) {
        if self.carry && self.t.node(idx).live {
            self.pending_node = idx;
        }
    }

    /// Changes the weight of the resident at `idx`, evicting as needed.
    fn reweigh_at(&mut self, idx: u32, weight: u32, evicted: &mut Vec<u64>) {
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

    /// Forgets the resident at `idx` (an explicit removal).
    fn remove_at(&mut self, idx: u32) {
        self.settle(idx);
        if self.pending_node == idx {
            self.pending_node = NIL;
        }
        self.marks.reset(idx);
        self.unlink(idx);
        self.total -= u64::from(self.t.node(idx).weight);
        self.t.remove(idx);
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
        match self.t.get(key) {
            Some(idx) => {
                self.hit(key, idx);
                true
            }
            None => {
                self.observe_miss(key);
                false
            }
        }
    }

    fn touch(&mut self, key: u64) -> bool {
        match self.t.get(key) {
            Some(idx) => {
                self.hit(key, idx);
                true
            }
            None => false,
        }
    }

    node_handles!(own touch_handles; t);

    fn touch_slots(&mut self, batch: &[(u32, u64)]) {
        if !self.deferred {
            self.warm_for_hits(batch.iter().map(|&(slot, _)| slot));
        }
        for &(slot, key) in batch {
            self.touch_slot(slot, key);
        }
    }

    fn touch_handles(&mut self, handles: &[u32]) {
        let n = handles.len() as u64;
        if self.deferred
            && n < self.sketch.until_aging()
            && (!self.climbing || n < self.climber.until_step())
        {
            self.touch_exact(handles);
            return;
        }
        if !self.deferred {
            self.warm_for_hits(handles.iter().copied());
        }
        for &idx in handles {
            if self.t.try_node(idx).is_some_and(|n| n.live) {
                self.hit_at(idx);
            }
        }
    }

    fn lookup_absent(&mut self, key: u64) {
        // An insert usually follows a miss: it counts the key, and its admission reads the
        // count of the window's oldest key (and only when that is above one, probation's
        // oldest: see `place_candidate`). The candidate's node was read ahead at the last
        // admission; start loading its counters and its neighbour (its unlinking writes
        // it) for the insert.
        self.sketch.prefetch(key);
        if let Some(n) = self.t.try_node(self.window.tail) {
            // (A carried estimate needs no counters.)
            if n.est == NO_ESTIMATE {
                self.sketch.prefetch(n.key);
            }
            self.t.prefetch(n.prev);
        }
        self.observe_miss(key);
    }

    fn admit(&mut self, key: u64, weight: u32, evicted: &mut Vec<u64>) -> bool {
        if u64::from(weight) > self.cap {
            if self.t.get(key).is_some() {
                return true;
            }
            self.count(key);
            return false;
        }
        let Some(idx) = self.t.try_insert(key, weight, WINDOW) else {
            return true;
        };
        self.marks.reset(idx);
        if self.gen_left == 0 {
            self.window_gen = self.window_gen.wrapping_add(1);
            self.gen_left = (self.window.len / 16).max(1) as u32;
        }
        self.gen_left -= 1;
        let sampled = self.shadows.samples(key);
        if sampled {
            self.t.node_mut(idx).bits |= SAMPLED;
        }
        self.marks
            .windowed(idx, self.deferred && !sampled, self.window_gen);
        // The newcomer's count waits until the eviction is done, so that its counters
        // (read ahead on the miss) have the eviction's time to arrive; unless the newcomer
        // itself may leave the window now, and be compared.
        let count_first = u64::from(weight) > self.window_limit;
        if count_first {
            self.count(key);
            self.note_pending(idx);
        }
        self.window.push_front(&mut self.t, idx);
        self.total += u64::from(weight);
        self.sketch.ensure(self.t.len());
        let before = evicted.len();
        self.evict(evicted);
        if !count_first {
            self.count(key);
            self.note_pending(idx);
        }
        // What the next admission reads first: the oldest nodes of the three queues (the
        // candidate, the victim, the next to demote). Only started here: the candidate's
        // counters are read ahead from its node at the next miss (`lookup_absent`), by
        // which time the nodes have arrived; reading a node now would wait for it.
        for tail in [self.window.tail, self.probation.tail, self.protected.tail] {
            self.t.prefetch(tail);
        }
        // The newcomer is resident unless this call evicted it (no second index probe;
        // nothing is allocated during an eviction, so its node is still its own).
        if self.t.is_detached() {
            return self.t.node(idx).live;
        }
        match evicted[before..].iter().position(|&e| e == key) {
            None => true,
            Some(pos) => {
                // Declined: the newcomer was never resident, so it is not an eviction.
                evicted.remove(before + pos);
                false
            }
        }
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
        let window = (cap * share).max(1.0).min(cap);
        self.set_targets(window, (cap - window) * self.cfg.protected);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Access;

    fn fixed(deferred_hits: bool) -> WTinyLfu {
        let cfg = WTinyLfuConfig {
            adaptive: false,
            deferred_hits,
            ..WTinyLfuConfig::default()
        };
        WTinyLfu::with_config(100, cfg)
    }

    fn tag(p: &WTinyLfu, key: u64) -> u8 {
        p.t.node(p.t.get(key).unwrap_or(NIL)).tag
    }

    #[test]
    fn a_deferred_protected_hit_requeues_the_key_and_reaches_the_sketch() {
        let (mut eager, mut deferred) = (fixed(false), fixed(true));
        let mut evicted = Vec::new();
        for p in [&mut eager, &mut deferred] {
            // 0..50 admitted, then each hit once: promoted to protected (0 the oldest).
            for k in (0..50).chain(0..50) {
                p.access(k, 1, &mut evicted);
            }
            assert_eq!(tag(p, 0), PROTECTED);
            // A hit on 0, then 35 more promotions: more than the protected segment (79).
            assert!(p.access(0, 1, &mut evicted).is_hit());
            for k in (50..85).chain(50..85) {
                p.access(k, 1, &mut evicted);
            }
        }
        assert!(evicted.is_empty());
        // Either way 0 stays protected (moved at once, or requeued when it was the
        // oldest) and 1, not hit since its promotion, is demoted.
        for p in [&eager, &deferred] {
            assert_eq!(tag(p, 0), PROTECTED);
            assert_ne!(tag(p, 1), PROTECTED);
        }
        // Requeued, 0 still holds its hits (the one that promoted it and the protected
        // one); the sketch gets them when 0's frequency is needed or 0 leaves: then the
        // counts are the eager policy's.
        let held = deferred.marks.held(deferred.t.get(0).unwrap_or(NIL));
        assert_eq!(held, 2);
        assert_eq!(
            eager.sketch.frequency(0),
            deferred.sketch.frequency(0) + held
        );
        assert!(deferred.remove(0) && eager.remove(0));
        assert_eq!(eager.sketch.frequency(0), deferred.sketch.frequency(0));
    }

    #[test]
    fn deferred_hits_age_with_the_sketch() {
        let mut p = fixed(true);
        let mut evicted = Vec::new();
        for k in (0..50).chain(0..50) {
            p.access(k, 1, &mut evicted);
        }
        // Hits held on node 0 until the sample runs out: the sketch ages, and so do they.
        let idx = p.t.get(0).unwrap_or(NIL);
        let mut held = 0u32;
        for _ in 0..p.sketch.sample_size() {
            p.access(0, 1, &mut evicted);
            let now = p.marks.held(idx);
            if now < held {
                // The count with this hit (held counts saturate at 255), halved with the
                // sketch.
                assert_eq!(now, (held + 1).min(255) >> 1);
                return;
            }
            held = now;
        }
        panic!("the sketch never aged");
    }

    #[test]
    fn a_window_hit_moves_its_key_once_about_an_eighth_of_the_window_was_admitted_since() {
        let cfg = WTinyLfuConfig {
            adaptive: false,
            window: 0.2,
            ..WTinyLfuConfig::default()
        };
        // A window of 64 keys: a generation is 4 admissions, and a move is due two
        // generations after the last, 5 to 8 admissions later.
        let mut p = WTinyLfu::with_config(320, cfg);
        let mut evicted = Vec::new();
        for k in 0..64 {
            p.access(k, 1, &mut evicted);
        }
        assert_eq!(p.window.len, 64);
        let idx = p.t.get(0).unwrap_or(NIL);
        assert_eq!(p.window.tail, idx);
        // 64 admissions since 0 was queued: the hit moves it.
        assert!(p.access(0, 1, &mut evicted).is_hit());
        assert_eq!(p.window.head, idx);
        // Four more: a hit leaves it where it is...
        for k in 100..104 {
            p.access(k, 1, &mut evicted);
        }
        assert!(p.access(0, 1, &mut evicted).is_hit());
        assert_ne!(p.window.head, idx);
        // ...and after eight, moves it again.
        for k in 104..108 {
            p.access(k, 1, &mut evicted);
        }
        assert!(p.access(0, 1, &mut evicted).is_hit());
        assert_eq!(p.window.head, idx);
        // In a window of fewer than 32 keys a generation is one admission: the second
        // admission since makes the move due.
        let mut small = WTinyLfu::with_config(100, cfg);
        for k in 0..20 {
            small.access(k, 1, &mut evicted);
        }
        let idx = small.t.get(0).unwrap_or(NIL);
        assert!(small.access(0, 1, &mut evicted).is_hit());
        assert_eq!(small.window.head, idx);
        small.access(20, 1, &mut evicted);
        assert!(small.access(0, 1, &mut evicted).is_hit());
        assert_ne!(small.window.head, idx);
        small.access(21, 1, &mut evicted);
        assert!(small.access(0, 1, &mut evicted).is_hit());
        assert_eq!(small.window.head, idx);
        // The textbook policy moves it on every hit.
        let mut eager = WTinyLfu::with_config(
            100,
            WTinyLfuConfig {
                deferred_hits: false,
                ..cfg
            },
        );
        for k in 0..20 {
            eager.access(k, 1, &mut evicted);
        }
        for k in [5, 6, 5] {
            let idx = eager.t.get(k).unwrap_or(NIL);
            assert!(eager.access(k, 1, &mut evicted).is_hit());
            assert_eq!(eager.window.head, idx);
        }
    }

    #[test]
    fn a_grown_window_keeps_its_own_keys_newest() {
        let cfg = WTinyLfuConfig {
            window: 0.1,
            adaptive: false,
            ..WTinyLfuConfig::default()
        };
        let mut p = WTinyLfu::with_config(20, cfg);
        let mut evicted = Vec::new();
        // The window (2 keys) ends with 18 and 19; 0..=17 went to probation, oldest last.
        for k in 0..20 {
            assert_eq!(p.access(k, 1, &mut evicted), Access::Admitted);
        }
        p.set_window(20.0);
        let mut order = Vec::new();
        p.window
            .for_each_oldest_first(&p.t, &mut |k, _| order.push(k));
        assert_eq!(order, (0..20).collect::<Vec<u64>>());
    }
}
