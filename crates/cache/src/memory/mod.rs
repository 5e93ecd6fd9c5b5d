//! [`MemoryCache`]: a concurrent in-memory cache, sharded, whose eviction decisions are
//! made by the same [`Policy`](crate::policy::Policy) code the simulator runs.
//!
//! Each shard has one mutex over its entries and its policy: a lookup (hit or miss) is one
//! lock and unlock, one probe of the shard's table of entries, and the policy's update, in
//! the order the requests arrive, so on one thread the policy sees exactly the simulator's
//! sequence (with one shard, the cache's hits are the simulator's). The policy keeps no key
//! index of its own ([`Policy::detach_index`](crate::policy::Policy::detach_index)): an
//! entry lives at its key's policy handle.
//! The shards of the adaptive W-TinyLFU share one set of shadow caches sized for the whole
//! capacity (`PolicyKind::build_shards`), so the window adapts as it would for one policy
//! of that capacity.
//!
//! Here: the cache's operations. `shard`: what a shard's lock guards (entries, policy,
//! queued hits, counts). `entries`: the entries by policy handle. `flight`: one load per
//! key at a time. `builder`: the options.

use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use perfkit_core::SharedClock;

use crate::hash::{FastState, U64Map};
use crate::policy::PolicyKind;

mod builder;
mod entries;
mod flight;
mod shard;

pub use builder::MemoryCacheBuilder;
use builder::shard_capacity;
use entries::{Entry, Found};
use flight::{Flight, FlightGuard};
use shard::{Core, Shard, Times};

/// A weigher: the weight of an entry in capacity units.
type Weigher<K, V> = Box<dyn Fn(&K, &V) -> u32 + Send + Sync>;

/// Errors building a [`MemoryCache`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// `capacity(0)` or no capacity at all.
    #[error("a memory cache needs a capacity above zero")]
    ZeroCapacity,
    /// `opt` cannot run online.
    #[error("policy {0} cannot be used by a memory cache (it needs the future)")]
    OfflinePolicy(PolicyKind),
}

/// Hit, miss and eviction counts (sums over the shards).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups that found a live entry.
    pub hits: u64,
    /// Lookups that did not.
    pub misses: u64,
    /// Entries the policy evicted to make room (not explicit removals or expiries).
    pub evictions: u64,
    /// Entries dropped because their time to live or to idle passed.
    pub expirations: u64,
}

impl CacheStats {
    /// hits / (hits + misses), 0 when there was no lookup.
    pub fn hit_ratio(&self) -> f64 {
        crate::sim::hit_ratio(self.hits, self.misses)
    }
}

struct Inner<K, V, S> {
    shards: Box<[Shard<K, V>]>,
    shard_bits: u32,
    hasher: S,
    weigher: Option<Weigher<K, V>>,
    ttl: Option<Duration>,
    tti: Option<Duration>,
    /// `ttl` or `tti` is set (read on every hit).
    timed: bool,
    clock: SharedClock,
    base: Instant,
    capacity: AtomicU64,
}

/// A concurrent cache of `K -> V` with a bounded capacity (entries, or weight with a
/// weigher), sharded with one lock per shard. Cheap to clone (an `Arc` inside).
///
/// ```
/// use perfkit_cache::{MemoryCache, PolicyKind};
///
/// let cache: MemoryCache<String, u64> = MemoryCache::builder()
///     .capacity(1_000)
///     .policy(PolicyKind::WTinyLfu)
///     .build()
///     .unwrap();
/// cache.insert("a".to_owned(), 1);
/// assert_eq!(cache.get(&"a".to_owned()), Some(1));
/// let v = cache.get_or_insert_with("b".to_owned(), || 2);
/// assert_eq!(v, 2);
/// assert_eq!(cache.stats().hits, 1);
/// ```
pub struct MemoryCache<K, V, S = FastState> {
    inner: Arc<Inner<K, V, S>>,
}

impl<K, V, S> Clone for MemoryCache<K, V, S> {
    fn clone(&self) -> Self {
        MemoryCache {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<K, V, S> fmt::Debug for MemoryCache<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryCache")
            .field("shards", &self.inner.shards.len())
            .field("capacity", &self.inner.capacity.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

enum Probe<V> {
    Hit(V),
    Miss,
}

/// What a caller of `get_or_insert_with` does next.
enum Step<'a, K, V, S>
where
    K: Hash + Eq + Send + 'static,
    V: Clone + Send + 'static,
    S: BuildHasher,
{
    /// Return the cached value.
    Hit(V),
    /// Wait for another caller's load.
    Wait(Arc<Flight<V>>),
    /// Load, then complete the flight (dropping the guard without completing it lets a
    /// waiting caller load instead).
    Lead(FlightGuard<'a, K, V, S>),
}

impl<K, V, S> MemoryCache<K, V, S>
where
    K: Hash + Eq + Send + 'static,
    V: Clone + Send + 'static,
    S: BuildHasher,
{
    #[inline]
    fn hash(&self, key: &K) -> u64 {
        self.inner.hasher.hash_one(key)
    }

    /// The shard of hash `h`: the top bits of a multiplicative hash (they depend on every
    /// bit of `h`, so a user's hasher that leaves the high bits empty still spreads; one
    /// multiply where a full mix costs two and three shifts on every request).
    #[inline]
    fn shard(&self, h: u64) -> &Shard<K, V> {
        // `>> 1` first so that no shift reaches 64 with one shard (bits = 0).
        let i = (h.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 1) >> (63 - self.inner.shard_bits);
        &self.inner.shards[i as usize]
    }

    #[inline]
    fn timed(&self) -> bool {
        self.inner.timed
    }

    /// Now, in nanoseconds since the cache's base instant (0 without expiry).
    #[inline]
    fn now(&self) -> u64 {
        if self.timed() {
            let d = self
                .inner
                .clock
                .now()
                .saturating_duration_since(self.inner.base);
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
        } else {
            0
        }
    }

    fn expired(&self, t: &Times, now: u64) -> bool {
        let past = |since: u64, limit: Option<Duration>| {
            limit.is_some_and(|l| {
                now.saturating_sub(since) >= u64::try_from(l.as_nanos()).unwrap_or(u64::MAX)
            })
        };
        past(t.written, self.inner.ttl) || past(t.accessed, self.inner.tti)
    }

    /// Whether `h`'s entry has expired (never without expiry).
    #[inline]
    fn expired_in(&self, core: &Core<K, V>, h: u64, now: u64) -> bool {
        self.timed() && core.times.get(&h).is_some_and(|t| self.expired(t, now))
    }

    /// A counted lookup that informs the policy, under the shard's lock.
    #[inline]
    fn probe_locked(&self, core: &mut Core<K, V>, h: u64, key: &K) -> Probe<V> {
        let found = match core.entries.find(h, key, |k| self.hash(k)) {
            Some(Found::Key(slot, e)) if !self.timed() => {
                let v = e.value.clone();
                core.hit(slot, h);
                return Probe::Hit(v);
            }
            Some(Found::Key(slot, _)) => Some((slot, true)),
            Some(Found::OtherKey(slot)) => Some((slot, false)),
            None => None,
        };
        self.probe_rest(core, h, found)
    }

    /// The rest of [`probe_locked`](Self::probe_locked): misses and expiry, out of line so
    /// that a hit's path stays short.
    #[inline(never)]
    fn probe_rest(&self, core: &mut Core<K, V>, h: u64, found: Option<(u32, bool)>) -> Probe<V> {
        match found {
            Some((slot, true)) => {
                if self.still_live(core, h) {
                    let v = core.entries.get_at(h, slot).map(|e| e.value.clone());
                    if let Some(v) = v {
                        core.hit(slot, h);
                        return Probe::Hit(v);
                    }
                }
                core.forget_at(h, slot);
                core.counts.expirations += 1;
                core.policy().lookup_absent(h);
            }
            // Another key with the same hash: for the policy, `h` is resident.
            Some((slot, false)) => {
                core.policy().touch_slot(slot, h);
            }
            // The entries and the policy hold the same keys: no policy probe.
            None => core.policy().lookup_absent(h),
        }
        core.counts.misses += 1;
        Probe::Miss
    }

    /// With expiry on: whether `h`'s entry is live, recording the access when it is.
    #[cold]
    fn still_live(&self, core: &mut Core<K, V>, h: u64) -> bool {
        let now = self.now();
        match core.times.get_mut(&h) {
            Some(t) if self.expired(t, now) => false,
            Some(t) => {
                t.accessed = now;
                true
            }
            None => true,
        }
    }

    /// The value for `key`, if cached and live. Counts a hit or a miss.
    pub fn get(&self, key: &K) -> Option<V> {
        let h = self.hash(key);
        let shard = self.shard(h);
        match self.probe_locked(&mut shard.lock(), h, key) {
            Probe::Hit(v) => Some(v),
            Probe::Miss => None,
        }
    }

    /// Whether `key` is cached and live (not counted as a lookup).
    pub fn contains_key(&self, key: &K) -> bool {
        let h = self.hash(key);
        let now = self.now();
        let core = self.shard(h).lock();
        matches!(
            core.entries.find(h, key, |k| self.hash(k)),
            Some(Found::Key(..))
        ) && !self.expired_in(&core, h, now)
    }

    /// Inserts under the shard's lock (the caller's).
    fn insert_locked(&self, core: &mut Core<K, V>, h: u64, key: K, value: V) {
        let weight = self.inner.weigher.as_ref().map_or(1, |w| w(&key, &value));
        core.evicted.clear();
        let hash = |k: &K| self.hash(k);
        let found = match core.entries.find(h, &key, hash) {
            Some(Found::Key(slot, _) | Found::OtherKey(slot)) => Some(slot),
            None => None,
        };
        match found {
            Some(slot) => {
                // The same key, or another with its hash: either way the policy's `h`.
                if let Some(e) = core.entries.get_at(h, slot) {
                    e.key = key;
                    e.value = value;
                }
                if self.inner.weigher.is_some() {
                    let (policy, evicted) = core.policy_and_evicted();
                    policy.set_weight_slot(slot, h, weight, evicted);
                }
                core.counts.evictions += core.drop_evicted(hash);
            }
            None => {
                let (policy, evicted) = core.policy_and_evicted();
                let admitted = policy.admit(h, weight, evicted);
                let slot = policy.slot(h);
                // Victims first: the newcomer may take the handle one of them freed.
                core.counts.evictions += core.drop_evicted(hash);
                if let Some(slot) = slot.filter(|_| admitted) {
                    core.entries.insert(slot, h, Entry { key, value }, hash);
                }
            }
        }
        // (A weight change may have evicted the key itself: look again.)
        if self.timed() && core.entries.find_hash(h, hash).is_some() {
            let now = self.now();
            core.times.insert(
                h,
                Times {
                    written: now,
                    accessed: now,
                },
            );
        }
    }

    /// Inserts or replaces `key`. The policy may decline a new key (admission filter, or
    /// heavier than a shard's capacity): the insert is then dropped.
    pub fn insert(&self, key: K, value: V) {
        let h = self.hash(&key);
        let shard = self.shard(h);
        self.insert_locked(&mut shard.lock(), h, key, value);
    }

    /// Removes `key`, returning its value if it was cached.
    pub fn remove(&self, key: &K) -> Option<V> {
        let h = self.hash(key);
        let shard = self.shard(h);
        let mut core = shard.lock();
        match core.entries.find(h, key, |k| self.hash(k)) {
            Some(Found::Key(slot, _)) => core.forget_at(h, slot).map(|e| e.value),
            _ => None,
        }
    }

    /// Under the shard's lock: the value if cached (a counted lookup on the first try
    /// only, an uncounted re-check after a wait), else the load in flight for the key,
    /// else a new flight that this caller leads.
    fn step(&self, shard: &Shard<K, V>, h: u64, key: &K, first: bool) -> Step<'_, K, V, S> {
        let mut core = shard.lock();
        let probe = if first {
            self.probe_locked(&mut core, h, key)
        } else {
            self.peek_locked(&core, h, key)
        };
        if let Probe::Hit(v) = probe {
            return Step::Hit(v);
        }
        match core.loading.get(&h) {
            Some(f) => Step::Wait(Arc::clone(f)),
            None => {
                let flight = Arc::new(Flight::new());
                core.loading.insert(h, Arc::clone(&flight));
                Step::Lead(FlightGuard {
                    cache: self,
                    h,
                    flight,
                    done: false,
                })
            }
        }
    }

    /// The cached value for `key`, or the value `load` returns, which is then cached.
    /// Concurrent callers for the same key wait for one load (single flight); if the
    /// loading caller panics, a waiting one loads instead.
    pub fn get_or_insert_with(&self, key: K, load: impl FnOnce() -> V) -> V {
        let h = self.hash(&key);
        let shard = self.shard(h);
        let mut load = Some(load);
        let mut first = true;
        loop {
            match self.step(shard, h, &key, first) {
                Step::Hit(v) => return v,
                Step::Wait(f) => {
                    if let Some(v) = f.wait() {
                        return v;
                    }
                }
                Step::Lead(mut guard) => {
                    // We lead at most once (the flight is ours until it completes).
                    if let Some(f) = load.take() {
                        let v = f();
                        guard.complete(key, v.clone());
                        return v;
                    }
                }
            }
            first = false;
        }
    }

    /// The async form of [`get_or_insert_with`](Self::get_or_insert_with): waiting callers
    /// yield instead of blocking; dropping the loading future lets a waiting caller load.
    pub async fn get_or_insert_with_async<F>(&self, key: K, load: F) -> V
    where
        F: Future<Output = V>,
    {
        let h = self.hash(&key);
        let shard = self.shard(h);
        let mut load = Some(load);
        let mut first = true;
        loop {
            match self.step(shard, h, &key, first) {
                Step::Hit(v) => return v,
                Step::Wait(f) => {
                    if let Some(v) = f.wait_async().await {
                        return v;
                    }
                }
                Step::Lead(mut guard) => {
                    if let Some(fut) = load.take() {
                        let v = fut.await;
                        guard.complete(key, v.clone());
                        return v;
                    }
                }
            }
            first = false;
        }
    }

    /// A lookup that is not counted (used when re-checking around a load).
    fn peek_locked(&self, core: &Core<K, V>, h: u64, key: &K) -> Probe<V> {
        match core.entries.find(h, key, |k| self.hash(k)) {
            Some(Found::Key(_, e)) if !self.expired_in(core, h, self.now()) => {
                Probe::Hit(e.value.clone())
            }
            _ => Probe::Miss,
        }
    }

    /// Number of cached entries (expired ones not yet dropped included).
    pub fn len(&self) -> usize {
        self.inner
            .shards
            .iter()
            .map(|s| s.lock().entries.len())
            .sum()
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Total weight of the cached entries (their number without a weigher).
    pub fn weight(&self) -> u64 {
        self.inner
            .shards
            .iter()
            .map(|s| s.lock().policy().weight())
            .sum()
    }

    /// The capacity (entries or weight).
    pub fn capacity(&self) -> u64 {
        self.inner.capacity.load(Ordering::Relaxed)
    }

    /// The eviction policy in use.
    pub fn policy(&self) -> PolicyKind {
        self.inner.shards[0].lock().policy().kind()
    }

    /// Hit, miss, eviction and expiry counts: kept per shard under its lock (plain adds,
    /// nothing shared between cores on the hot path), summed here.
    pub fn stats(&self) -> CacheStats {
        let mut s = CacheStats::default();
        for sh in self.inner.shards.iter() {
            let core = sh.lock();
            let c = core.counts;
            s.hits += core.hits();
            s.misses += c.misses;
            s.evictions += c.evictions;
            s.expirations += c.expirations;
        }
        s
    }

    /// A snapshot in the shape every perfkit component reports.
    pub fn report(&self) -> crate::report::CacheReport {
        crate::report::CacheReport {
            policy: self.policy(),
            capacity: self.capacity(),
            entries: self.len(),
            weight: self.weight(),
            stats: self.stats(),
        }
    }

    /// Changes the capacity (for example to shrink under memory pressure), evicting by
    /// the policy until the entries fit. A capacity of 0 is treated as 1.
    pub fn resize(&self, capacity: u64) {
        let capacity = capacity.max(1);
        self.inner.capacity.store(capacity, Ordering::Relaxed);
        let n = self.inner.shards.len();
        for (i, shard) in self.inner.shards.iter().enumerate() {
            let mut core = shard.lock();
            let core = &mut *core;
            core.evicted.clear();
            let (policy, evicted) = core.policy_and_evicted();
            policy.set_capacity(shard_capacity(capacity, n, i), evicted);
            core.counts.evictions += core.drop_evicted(|k| self.hash(k));
        }
    }

    /// Switches the eviction policy online. The cached entries are offered to the new
    /// policy coldest first; those it does not keep are evicted.
    pub fn set_policy(&self, kind: PolicyKind) -> Result<(), BuildError> {
        if kind == PolicyKind::Opt {
            return Err(BuildError::OfflinePolicy(kind));
        }
        let capacities: Vec<u64> = self
            .inner
            .shards
            .iter()
            .map(|s| s.lock().policy().capacity())
            .collect();
        let policies = kind
            .build_shards(&capacities)
            .map_err(|_| BuildError::OfflinePolicy(kind))?;
        for (shard, mut next) in self.inner.shards.iter().zip(policies) {
            let mut core = shard.lock();
            let core = &mut *core;
            core.evicted.clear();
            // A resize between the two locks: the new policy takes the shard's capacity.
            let cap = core.policy().capacity();
            if next.capacity() != cap {
                next.set_capacity(cap, &mut core.evicted);
            }
            let detached = next.detach_index();
            let mut residents = Vec::with_capacity(core.policy().len());
            core.policy()
                .for_each_resident(&mut |k, w| residents.push((k, w)));
            // The old policy's handles mean nothing to the new one: each admitted key's
            // handle is taken right after its admission, and kept if the key is still
            // resident once all are in.
            let mut slots = Vec::with_capacity(residents.len());
            for (k, w) in residents {
                if next.admit(k, w, &mut core.evicted) {
                    slots.extend(next.slot(k).map(|s| (k, s)));
                }
            }
            // The handles it freed on the way are not in use: the entries move below.
            next.take_freed(&mut Vec::new());
            let hash = |k: &K| self.hash(k);
            let mut old: U64Map<Entry<K, V>> = core
                .entries
                .take_all(hash)
                .into_iter()
                .map(|(_, h, e)| (h, e))
                .collect();
            for (k, slot) in slots {
                if next.contains_slot(slot, k)
                    && let Some(e) = old.remove(&k)
                {
                    core.entries.insert(slot, k, e, hash);
                }
            }
            core.counts.evictions += old.len() as u64;
            for h in old.keys() {
                core.times.remove(h);
            }
            core.evicted.clear();
            core.set_policy(next, detached);
        }
        Ok(())
    }

    /// Drops every expired entry now (expiry is otherwise lazy, on lookup). Returns how
    /// many were dropped.
    pub fn purge_expired(&self) -> usize {
        if !self.timed() {
            return 0;
        }
        let now = self.now();
        let mut total = 0;
        for shard in self.inner.shards.iter() {
            let mut core = shard.lock();
            let dead: Vec<u64> = core
                .times
                .iter()
                .filter(|(_, t)| self.expired(t, now))
                .map(|(h, _)| *h)
                .collect();
            for h in &dead {
                core.forget(*h, |k| self.hash(k));
            }
            core.counts.expirations += dead.len() as u64;
            total += dead.len();
        }
        total
    }

    /// Removes every entry (statistics are kept).
    pub fn clear(&self) {
        for shard in self.inner.shards.iter() {
            let mut core = shard.lock();
            let core = &mut *core;
            for (slot, h, _) in core.entries.take_all(|k| self.hash(k)) {
                core.policy().remove_slot(slot, h);
            }
            core.times.clear();
            core.discard_freed();
        }
    }
}
