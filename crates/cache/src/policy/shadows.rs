//! The shadow caches that adapt W-TinyLFU's window: miniature copies of the cache with
//! fixed window shares, fed a spatial sample of the requests; the window jumps to the share
//! of whichever does clearly best.
//!
//! A policy on its own owns its shadows. The shards of one [`MemoryCache`](crate::MemoryCache)
//! share one set ([`SharedShadows`]), sized and sampled for the whole capacity as a single
//! policy of that capacity would be: each shard sampling its own share of the keys at the
//! rate its own (smaller) capacity calls for cost a quarter of the cache's time on a
//! large cache, for shadows that each saw an eighth of the keys.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, TryLockError};

use super::slab::NIL;
use super::wtinylfu::{WTinyLfu, WTinyLfuConfig};
use crate::hash::U64Map;
use crate::policy::Policy;

/// Shadow caches hold at least this many entries (when the cache does)...
const SHADOW_MIN: f64 = 512.0;
/// ...and at least this share of the cache's entries.
///
/// A miniature's hit ratio estimates the cache's with a sampling error of its own, which
/// a larger sample makes smaller. With 512 entries for a cache of 100k (0.5 % of the keys
/// sampled), the epoch's difference between two shadows' hit ratios varied by 1.5 points
/// (standard deviation, steady Zipf 0.9, where the true one is 0.6), more than the jump's
/// margin of 1.5 once smoothed now and then: by its hash seed, 10 such caches of 24 left
/// the 1 % window for a wider one on noise, for up to a point of hit ratio at Zipf 0.9
/// (0.5 at 1.1). At 1 % (1000 entries) none of 32 did; the shadows' work doubles
/// (about 3 % of a one-thread Zipf loop's time). Caches under 51,200 entries keep their
/// 512-entry shadows: the shared traces' bars are held at 1000 and 10,000.
const SHADOW_SHARE: f64 = 0.01;

/// Miniature W-TinyLFU caches with fixed windows, fed a spatial sample of the requests.
///
/// The miniatures keep no key index of their own ([`Policy::detach_index`]): one index
/// here gives a key's handle in each of them, so a sampled request probes one table where
/// it probed one per miniature, and a hit in a miniature reaches it by handle, which for
/// most hits reads only the key's marks (a miniature's node is seldom in a cache: the
/// miniatures are touched once every hundred requests or so). The miniatures decide as
/// they did with their own indexes (the same calls a memory cache makes, which decide as
/// the simulator does).
#[derive(Debug)]
pub(super) struct Shadows {
    threshold: u64,
    sims: Vec<(f64, WTinyLfu)>,
    /// A sampled key's row in `handles`, while some miniature holds it.
    rows: U64Map<u32>,
    /// Rows of `sims.len()` handles, one per miniature (`NIL`: not resident there).
    handles: Vec<u32>,
    /// Rows no key has.
    free_rows: Vec<u32>,
    /// Scratch: the `(key, handle)`s a miniature's call freed.
    freed: Vec<(u64, u32)>,
    hits: Vec<u64>,
    score: Vec<f64>,
    requests: u64,
    epoch: u64,
    scored: bool,
    evicted: Vec<u64>,
}

impl Shadows {
    /// Shadows for a cache of `cap` entries, or `None` when `cfg` asks for none.
    pub(super) fn new(cap: u64, cfg: &WTinyLfuConfig) -> Option<Self> {
        if cfg.shadow_windows.is_empty() || !cfg.adaptive || cap < 8 {
            return None;
        }
        let rate = (SHADOW_MIN.max(SHADOW_SHARE * cap as f64) / cap as f64).min(1.0);
        let shadow_cap = ((cap as f64 * rate).round() as u64).max(1);
        let sub = WTinyLfuConfig {
            adaptive: false,
            shadow_windows: &[],
            ..*cfg
        };
        let sims: Vec<(f64, WTinyLfu)> = cfg
            .shadow_windows
            .iter()
            .map(|&w| {
                let mut sim =
                    WTinyLfu::with_config(shadow_cap, WTinyLfuConfig { window: w, ..sub });
                // (A new policy is empty: it detaches.)
                sim.detach_index();
                (w, sim)
            })
            .collect();
        let n = sims.len();
        Some(Shadows {
            threshold: if rate >= 1.0 {
                u64::MAX
            } else {
                (rate * u64::MAX as f64) as u64
            },
            sims,
            rows: U64Map::default(),
            handles: Vec::new(),
            free_rows: Vec::new(),
            freed: Vec::new(),
            hits: vec![0; n],
            score: vec![0.0; n],
            requests: 0,
            epoch: ((cfg.shadow_epoch * shadow_cap as f64) as u64).max(64),
            scored: false,
            evicted: Vec::new(),
        })
    }

    /// Whether `key` is in the sample.
    #[inline]
    fn samples(threshold: u64, key: u64) -> bool {
        crate::hash::mix64(key ^ 0x5bd1_e995_0000_0001) <= threshold
    }

    /// Feeds a request for a sampled key; at the end of an epoch returns the best window
    /// share and by how much its smoothed hit ratio beats the shadow nearest to `current`.
    fn feed(&mut self, key: u64, current: f64) -> Option<(f64, f64)> {
        self.requests += 1;
        self.access_all(key);
        if self.requests < self.epoch {
            return None;
        }
        for i in 0..self.sims.len() {
            let rate = self.hits[i] as f64 / self.requests as f64;
            self.score[i] = if self.scored {
                0.5 * self.score[i] + 0.5 * rate
            } else {
                rate
            };
            self.hits[i] = 0;
        }
        self.scored = true;
        self.requests = 0;
        let best = (0..self.sims.len())
            .max_by(|&a, &b| self.score[a].total_cmp(&self.score[b]))
            .unwrap_or(0);
        let near = (0..self.sims.len())
            .min_by(|&a, &b| {
                (self.sims[a].0 - current)
                    .abs()
                    .total_cmp(&(self.sims[b].0 - current).abs())
            })
            .unwrap_or(0);
        Some((self.sims[best].0, self.score[best] - self.score[near]))
    }

    /// A request for `key` in every miniature, as [`Policy::access`] would make it, their
    /// hits counted in `hits`, the index kept.
    fn access_all(&mut self, key: u64) {
        let n = self.sims.len();
        let mut row = self.rows.get(&key).copied();
        for i in 0..n {
            let handle = row.map_or(NIL, |r| self.handles[r as usize * n + i]);
            let sim = &mut self.sims[i].1;
            if handle != NIL {
                sim.touch_handles(&[handle]);
                self.hits[i] += 1;
                continue;
            }
            sim.lookup_absent(key);
            self.evicted.clear();
            let admitted = sim.admit(key, 1, &mut self.evicted);
            let slot = if admitted { sim.slot(key) } else { None };
            let mut freed = std::mem::take(&mut self.freed);
            sim.take_freed(&mut freed);
            for &(k, h) in &freed {
                // (A declined newcomer is freed too; it has no handle here.)
                if k != key {
                    self.forget(k, i, h);
                }
            }
            freed.clear();
            self.freed = freed;
            if let Some(slot) = slot {
                let r = match row {
                    Some(r) => r,
                    None => {
                        let r = self.new_row(key);
                        row = Some(r);
                        r
                    }
                };
                self.handles[r as usize * n + i] = slot;
            }
        }
    }

    /// A row for `key`, all `NIL`.
    fn new_row(&mut self, key: u64) -> u32 {
        let n = self.sims.len();
        let r = match self.free_rows.pop() {
            Some(r) => r,
            None => {
                let r = (self.handles.len() / n) as u32;
                self.handles.resize(self.handles.len() + n, NIL);
                r
            }
        };
        self.rows.insert(key, r);
        r
    }

    /// `key` left miniature `i`, where its handle was `handle`: its row forgets it, and
    /// is freed when no miniature holds the key.
    fn forget(&mut self, key: u64, i: usize, handle: u32) {
        let n = self.sims.len();
        let Some(&r) = self.rows.get(&key) else {
            return;
        };
        let row = &mut self.handles[r as usize * n..r as usize * n + n];
        if row[i] == handle {
            row[i] = NIL;
        }
        if row.iter().all(|&h| h == NIL) {
            self.rows.remove(&key);
            self.free_rows.push(r);
        }
    }
}

/// One set of shadows shared by the shards of a cache. The sample test needs no lock; a
/// sampled request tries the shadows' lock (under its shard's lock, so it never waits). A
/// choice is published as a share of the capacity with a version, which each shard
/// compares with the last it applied.
#[derive(Debug)]
pub(crate) struct SharedShadows {
    threshold: u64,
    state: Mutex<(Shadows, f64)>,
    /// The choice, on a line of its own: shards read it while another locks `state`.
    choice: Choice,
}

/// The shared shadows' latest window share and how many choices were made.
#[derive(Debug)]
#[repr(align(64))]
struct Choice {
    version: AtomicU64,
    share: AtomicU64,
}

/// A shard polls the shared shadows' choice once every this many misses: the choice
/// changes once per epoch of thousands of sampled requests, and each poll reads a line
/// shared by every shard (a cache miss on a miss's path).
pub(super) const POLL_EVERY: u32 = 16;

impl SharedShadows {
    /// Shadows for shards whose capacities add up to `total`, starting from the window
    /// share `cfg.window`; `None` when `cfg` asks for none.
    pub(crate) fn new(total: u64, cfg: &WTinyLfuConfig) -> Option<Arc<Self>> {
        let shadows = Shadows::new(total, cfg)?;
        Some(Arc::new(SharedShadows {
            threshold: shadows.threshold,
            state: Mutex::new((shadows, cfg.window)),
            choice: Choice {
                version: AtomicU64::new(0),
                share: AtomicU64::new(cfg.window.to_bits()),
            },
        }))
    }

    /// Feeds a request for a sampled key, publishing a new share when a shadow beats the
    /// current one by more than `margin`.
    fn feed(&self, key: u64, margin: f64) {
        // Busy (another shard is feeding them): this sample is dropped rather than waited
        // for under the shard's lock. A sample is a sample; one thread never finds it busy.
        let mut state = match self.state.try_lock() {
            Ok(state) => state,
            Err(TryLockError::Poisoned(state)) => state.into_inner(),
            Err(TryLockError::WouldBlock) => return,
        };
        let (shadows, current) = &mut *state;
        if let Some((best, gain)) = shadows.feed(key, *current)
            && gain > margin
        {
            *current = best;
            self.choice.share.store(best.to_bits(), Ordering::Relaxed);
            self.choice.version.fetch_add(1, Ordering::Release);
        }
    }
}

/// Where a W-TinyLFU policy's window choices come from.
#[derive(Debug)]
pub(super) enum ShadowLink {
    /// Not adaptive by shadows.
    None,
    /// Its own shadows, and their sampling threshold (a copy beside the policy's fields:
    /// every miss tests it).
    Own(Box<Shadows>, u64),
    /// Shadows shared with the other shards of a cache.
    Shared(SharedLink),
}

/// A shard's link to the shared shadows.
#[derive(Debug)]
pub(super) struct SharedLink {
    shadows: Arc<SharedShadows>,
    /// The sampling threshold (a copy: see [`ShadowLink::Own`]).
    threshold: u64,
    /// The version of the choice last applied.
    seen: u64,
    /// Misses until the next poll.
    countdown: u32,
}

impl ShadowLink {
    /// Its own shadows.
    pub(super) fn own(shadows: Shadows) -> Self {
        let threshold = shadows.threshold;
        ShadowLink::Own(Box::new(shadows), threshold)
    }

    /// Shadows shared with the other shards of a cache.
    pub(super) fn shared(shadows: Arc<SharedShadows>) -> Self {
        let threshold = shadows.threshold;
        ShadowLink::Shared(SharedLink {
            shadows,
            threshold,
            seen: 0,
            countdown: 0,
        })
    }
}

impl ShadowLink {
    /// Whether the shadows sample `key` (every request for it is to be fed to them).
    #[inline]
    pub(super) fn samples(&self, key: u64) -> bool {
        match self {
            ShadowLink::None => false,
            ShadowLink::Own(_, threshold) => Shadows::samples(*threshold, key),
            ShadowLink::Shared(link) => Shadows::samples(link.threshold, key),
        }
    }

    /// Feeds a request for a sampled key; returns a window share to jump to, when the
    /// shadows choose one. `current` is the policy's window share.
    pub(super) fn feed(&mut self, key: u64, current: f64, margin: f64) -> Option<f64> {
        match self {
            ShadowLink::None => None,
            ShadowLink::Own(shadows, _) => shadows
                .feed(key, current)
                .and_then(|(best, gain)| (gain > margin).then_some(best)),
            ShadowLink::Shared(link) => {
                link.shadows.feed(key, margin);
                link.countdown = 0;
                self.poll()
            }
        }
    }

    /// A choice the shared shadows made since this policy last applied one (looked for
    /// once every [`POLL_EVERY`] calls, and right after a feed).
    #[inline]
    pub(super) fn poll(&mut self) -> Option<f64> {
        let ShadowLink::Shared(link) = self else {
            return None;
        };
        if link.countdown > 0 {
            link.countdown -= 1;
            return None;
        }
        link.countdown = POLL_EVERY - 1;
        let choice = &link.shadows.choice;
        let version = choice.version.load(Ordering::Acquire);
        if version == link.seen {
            return None;
        }
        link.seen = version;
        Some(f64::from_bits(choice.share.load(Ordering::Relaxed)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::mix64;

    #[test]
    fn shadows_hold_512_entries_or_a_hundredth_of_the_cache() {
        let cfg = WTinyLfuConfig::default();
        let cap_of = |cap: u64| {
            let s = Shadows::new(cap, &cfg).map(|s| s.sims[0].1.capacity());
            s.unwrap_or(0)
        };
        assert_eq!(cap_of(300), 300);
        assert_eq!(cap_of(1000), 512);
        assert_eq!(cap_of(10_000), 512);
        assert_eq!(cap_of(100_000), 1000);
        assert_eq!(cap_of(1_000_000), 10_000);
    }

    #[test]
    fn the_miniatures_through_one_index_decide_as_with_their_own() {
        let cfg = WTinyLfuConfig::default();
        let mut shadows = Shadows::new(500, &cfg).expect("shadows");
        let sub = WTinyLfuConfig {
            adaptive: false,
            shadow_windows: &[],
            ..cfg
        };
        // The same miniatures, each with its own key index, as `feed` ran them before.
        let mut alone: Vec<WTinyLfu> = cfg
            .shadow_windows
            .iter()
            .map(|&w| WTinyLfu::with_config(500, WTinyLfuConfig { window: w, ..sub }))
            .collect();
        let mut hits = vec![0u64; alone.len()];
        // Skewed keys, then a loop of 700 keys of its own, larger than the miniatures: the
        // windows differ in both, and keys leave and come back.
        let mut keys = crate::synth::zipf(20_000, 3000, 0.9, 3);
        keys.extend((0..8000u64).map(|i| (1 << 40) + i % 700));
        let mut evicted = Vec::new();
        for &k in &keys {
            shadows.access_all(k);
            for (sim, h) in alone.iter_mut().zip(&mut hits) {
                *h += u64::from(sim.access(k, 1, &mut evicted).is_hit());
                evicted.clear();
            }
        }
        assert_eq!(shadows.hits, hits);
        assert!(hits.iter().all(|&h| h > 0) && hits.iter().any(|&h| h != hits[0]));
        // The index holds exactly the keys some miniature holds.
        let resident: std::collections::HashSet<u64> = alone
            .iter()
            .flat_map(|sim| {
                let mut keys = Vec::new();
                sim.for_each_resident(&mut |k, _| keys.push(k));
                keys
            })
            .collect();
        assert_eq!(shadows.rows.len(), resident.len());
        assert!(resident.iter().all(|k| shadows.rows.contains_key(k)));
    }

    #[test]
    fn shards_follow_one_set_of_shadows() {
        let cfg = WTinyLfuConfig::default();
        let shared = SharedShadows::new(4000, &cfg);
        assert!(shared.is_some());
        let mut shards: Vec<WTinyLfu> = (0..4)
            .map(|_| WTinyLfu::with_shared_shadows(1000, cfg, shared.clone()))
            .collect();
        let shard_of = |k: u64| (mix64(k) >> 62) as usize;
        // A skewed set twice the cache, replaced every 30k requests: recency pays, and the
        // window widens from its initial 1 %.
        let mut keys = crate::synth::shifting(300_000, 8000, 0.8, 30_000, 5);
        // Then enough misses per shard that each polls, and sees the last choice.
        for s in 0..4 {
            let fresh = (1u64 << 40..).filter(|&k| shard_of(k) == s);
            keys.extend(fresh.take(POLL_EVERY as usize));
        }
        let mut evicted = Vec::new();
        for k in keys {
            shards[shard_of(k)].access(k, 1, &mut evicted);
            evicted.clear();
        }
        let Some(shared) = shared else { return };
        assert!(
            shared.choice.version.load(Ordering::Relaxed) > 0,
            "never chose"
        );
        let share = f64::from_bits(shared.choice.share.load(Ordering::Relaxed));
        for s in &shards {
            assert_eq!(s.window_target(), (share * 1000.0).max(1.0) as u64);
        }
    }
}
