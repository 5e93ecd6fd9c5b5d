//! [`MemoryCache`]: a concurrent in-memory cache, sharded with one lock per shard, whose
//! eviction decisions are made by the same [`Policy`] code the simulator runs.

use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use perfkit_core::{SharedClock, SystemClock};

use crate::hash::{FastState, U64Map, mix64};
use crate::policy::{Policy, PolicyKind};

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

/// Hit, miss and eviction counts (sums over the shards, read without locking).
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
        let n = self.hits + self.misses;
        if n == 0 {
            0.0
        } else {
            self.hits as f64 / n as f64
        }
    }
}

struct Entry<K, V> {
    key: K,
    value: V,
    weight: u32,
    written: Option<Instant>,
    accessed: Option<Instant>,
}

/// A load in progress for one key (single flight).
struct Flight<V> {
    state: Mutex<FlightState<V>>,
    cv: Condvar,
}

struct FlightState<V> {
    done: bool,
    value: Option<V>,
    wakers: Vec<Waker>,
}

impl<V: Clone> Flight<V> {
    fn new() -> Self {
        Flight {
            state: Mutex::new(FlightState {
                done: false,
                value: None,
                wakers: Vec::new(),
            }),
            cv: Condvar::new(),
        }
    }

    fn finish(&self, value: Option<V>) {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.done = true;
        st.value = value;
        for w in st.wakers.drain(..) {
            w.wake();
        }
        drop(st);
        self.cv.notify_all();
    }

    fn wait(&self) -> Option<V> {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        while !st.done {
            st = self.cv.wait(st).unwrap_or_else(PoisonError::into_inner);
        }
        st.value.clone()
    }

    async fn wait_async(&self) -> Option<V> {
        std::future::poll_fn(|cx| {
            let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if st.done {
                Poll::Ready(st.value.clone())
            } else {
                if !st.wakers.iter().any(|w| w.will_wake(cx.waker())) {
                    st.wakers.push(cx.waker().clone());
                }
                Poll::Pending
            }
        })
        .await
    }
}

struct ShardState<K, V> {
    map: U64Map<Entry<K, V>>,
    policy: Box<dyn Policy>,
    evicted: Vec<u64>,
    loading: U64Map<Arc<Flight<V>>>,
}

/// One shard: its lock and its counters, on their own cache lines.
#[repr(align(128))]
struct Shard<K, V> {
    state: Mutex<ShardState<K, V>>,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
    expirations: AtomicU64,
}

/// Adds one to a counter only written under the shard's lock: a plain load and store, no
/// atomic read-modify-write on the hot path.
#[inline]
fn bump(c: &AtomicU64, by: u64) {
    c.store(c.load(Ordering::Relaxed) + by, Ordering::Relaxed);
}

struct Inner<K, V, S> {
    shards: Box<[Shard<K, V>]>,
    shard_bits: u32,
    hasher: S,
    weigher: Option<Weigher<K, V>>,
    ttl: Option<Duration>,
    tti: Option<Duration>,
    clock: SharedClock,
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

/// Options of a [`MemoryCache`].
pub struct MemoryCacheBuilder<K, V, S = FastState> {
    capacity: u64,
    policy: PolicyKind,
    weigher: Option<Weigher<K, V>>,
    ttl: Option<Duration>,
    tti: Option<Duration>,
    shards: Option<usize>,
    clock: Option<SharedClock>,
    hasher: S,
}

impl<K, V, S> fmt::Debug for MemoryCacheBuilder<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryCacheBuilder")
            .field("capacity", &self.capacity)
            .field("policy", &self.policy)
            .field("ttl", &self.ttl)
            .field("tti", &self.tti)
            .field("shards", &self.shards)
            .finish_non_exhaustive()
    }
}

impl<K, V> MemoryCache<K, V, FastState>
where
    K: Hash + Eq + Send + 'static,
    V: Clone + Send + 'static,
{
    /// A cache of `capacity` entries with the default policy (adaptive W-TinyLFU).
    pub fn new(capacity: u64) -> Result<Self, BuildError> {
        Self::builder().capacity(capacity).build()
    }

    /// Starts building a cache.
    pub fn builder() -> MemoryCacheBuilder<K, V, FastState> {
        MemoryCacheBuilder {
            capacity: 0,
            policy: PolicyKind::default(),
            weigher: None,
            ttl: None,
            tti: None,
            shards: None,
            clock: None,
            hasher: FastState::default(),
        }
    }
}

impl<K, V, S> MemoryCacheBuilder<K, V, S>
where
    K: Hash + Eq + Send + 'static,
    V: Clone + Send + 'static,
    S: BuildHasher,
{
    /// The capacity: entries, or total weight when a weigher is set.
    pub fn capacity(mut self, capacity: u64) -> Self {
        self.capacity = capacity;
        self
    }

    /// The eviction policy (default: adaptive W-TinyLFU).
    pub fn policy(mut self, policy: PolicyKind) -> Self {
        self.policy = policy;
        self
    }

    /// Weighs entries; capacity then counts weight instead of entries.
    pub fn weigher(mut self, f: impl Fn(&K, &V) -> u32 + Send + Sync + 'static) -> Self {
        self.weigher = Some(Box::new(f));
        self
    }

    /// Entries expire this long after they were written.
    pub fn time_to_live(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Entries expire this long after they were last read or written.
    pub fn time_to_idle(mut self, tti: Duration) -> Self {
        self.tti = Some(tti);
        self
    }

    /// The number of shards (rounded up to a power of two). Default: about four per CPU,
    /// fewer for small caches (each shard has its own share of the capacity).
    pub fn shards(mut self, n: usize) -> Self {
        self.shards = Some(n.max(1));
        self
    }

    /// The clock used for expiry (default: the system clock).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The hasher of keys.
    pub fn hasher<S2: BuildHasher>(self, hasher: S2) -> MemoryCacheBuilder<K, V, S2> {
        MemoryCacheBuilder {
            capacity: self.capacity,
            policy: self.policy,
            weigher: self.weigher,
            ttl: self.ttl,
            tti: self.tti,
            shards: self.shards,
            clock: self.clock,
            hasher,
        }
    }

    /// Builds the cache.
    pub fn build(self) -> Result<MemoryCache<K, V, S>, BuildError> {
        if self.capacity == 0 {
            return Err(BuildError::ZeroCapacity);
        }
        if self.policy == PolicyKind::Opt {
            return Err(BuildError::OfflinePolicy(self.policy));
        }
        let wanted = self.shards.unwrap_or_else(|| {
            let cpus = std::thread::available_parallelism().map_or(4, |n| n.get());
            let by_size = (self.capacity / 512).max(1) as usize;
            (cpus * 4).min(by_size)
        });
        let n = wanted.next_power_of_two().min(1 << 16);
        let mut shards = Vec::with_capacity(n);
        for i in 0..n {
            let cap = shard_capacity(self.capacity, n, i);
            let policy = self
                .policy
                .build(cap)
                .map_err(|_| BuildError::OfflinePolicy(self.policy))?;
            shards.push(Shard {
                state: Mutex::new(ShardState {
                    map: U64Map::default(),
                    policy,
                    evicted: Vec::new(),
                    loading: U64Map::default(),
                }),
                hits: AtomicU64::new(0),
                misses: AtomicU64::new(0),
                evictions: AtomicU64::new(0),
                expirations: AtomicU64::new(0),
            });
        }
        Ok(MemoryCache {
            inner: Arc::new(Inner {
                shards: shards.into_boxed_slice(),
                shard_bits: n.trailing_zeros(),
                hasher: self.hasher,
                weigher: self.weigher,
                ttl: self.ttl,
                tti: self.tti,
                clock: self.clock.unwrap_or_else(SystemClock::shared),
                capacity: AtomicU64::new(self.capacity),
            }),
        })
    }
}

fn shard_capacity(total: u64, n: usize, i: usize) -> u64 {
    let n = n as u64;
    let base = total / n;
    let extra = u64::from((i as u64) < total % n);
    (base + extra).max(1)
}

enum Probe<V> {
    Hit(V),
    Miss,
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

    #[inline]
    fn shard(&self, h: u64) -> &Shard<K, V> {
        let bits = self.inner.shard_bits;
        let i = if bits == 0 {
            0
        } else {
            (mix64(h) >> (64 - bits)) as usize
        };
        &self.inner.shards[i]
    }

    fn timed(&self) -> bool {
        self.inner.ttl.is_some() || self.inner.tti.is_some()
    }

    fn expired(&self, e: &Entry<K, V>, now: Option<Instant>) -> bool {
        let Some(now) = now else { return false };
        let by_ttl =
            matches!((self.inner.ttl, e.written), (Some(t), Some(w)) if now.duration_since(w) >= t);
        let by_tti = matches!((self.inner.tti, e.accessed), (Some(t), Some(a)) if now.duration_since(a) >= t);
        by_ttl || by_tti
    }

    fn lock<'a>(&self, shard: &'a Shard<K, V>) -> MutexGuard<'a, ShardState<K, V>> {
        shard.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The lookup under the lock: counts the hit or miss and informs the policy.
    fn probe(&self, shard: &Shard<K, V>, st: &mut ShardState<K, V>, h: u64, key: &K) -> Probe<V> {
        let now = self.timed().then(|| self.inner.clock.now());
        let ShardState { map, policy, .. } = st;
        if let Some(e) = map.get_mut(&h)
            && e.key == *key
        {
            if self.expired(e, now) {
                map.remove(&h);
                policy.remove(h);
                bump(&shard.expirations, 1);
            } else {
                policy.lookup(h);
                if self.inner.tti.is_some() {
                    e.accessed = now;
                }
                bump(&shard.hits, 1);
                return Probe::Hit(e.value.clone());
            }
        }
        policy.lookup(h);
        bump(&shard.misses, 1);
        Probe::Miss
    }

    /// The value for `key`, if cached and live. Counts a hit or a miss.
    pub fn get(&self, key: &K) -> Option<V> {
        let h = self.hash(key);
        let shard = self.shard(h);
        let mut st = self.lock(shard);
        match self.probe(shard, &mut st, h, key) {
            Probe::Hit(v) => Some(v),
            Probe::Miss => None,
        }
    }

    /// Whether `key` is cached and live (not counted as a lookup).
    pub fn contains_key(&self, key: &K) -> bool {
        let h = self.hash(key);
        let shard = self.shard(h);
        let st = self.lock(shard);
        let now = self.timed().then(|| self.inner.clock.now());
        st.map
            .get(&h)
            .is_some_and(|e| e.key == *key && !self.expired(e, now))
    }

    fn insert_locked(
        &self,
        shard: &Shard<K, V>,
        st: &mut ShardState<K, V>,
        h: u64,
        key: K,
        value: V,
    ) {
        let weight = self.inner.weigher.as_ref().map_or(1, |w| w(&key, &value));
        let now = self.timed().then(|| self.inner.clock.now());
        let ShardState {
            map,
            policy,
            evicted,
            ..
        } = st;
        evicted.clear();
        if let Some(e) = map.get_mut(&h) {
            let old = e.weight;
            *e = Entry {
                key,
                value,
                weight,
                written: now,
                accessed: now,
            };
            if policy.contains(h) {
                if old != weight {
                    policy.set_weight(h, weight, evicted);
                }
            } else if !policy.admit(h, weight, evicted) {
                map.remove(&h);
            }
        } else if policy.admit(h, weight, evicted) {
            map.insert(
                h,
                Entry {
                    key,
                    value,
                    weight,
                    written: now,
                    accessed: now,
                },
            );
        }
        let mut n = 0;
        for k in evicted.drain(..) {
            if map.remove(&k).is_some() {
                n += 1;
            }
        }
        if n > 0 {
            bump(&shard.evictions, n);
        }
    }

    /// Inserts or replaces `key`. The policy may decline a new key (admission filter, or
    /// heavier than a shard's capacity): the insert is then dropped.
    pub fn insert(&self, key: K, value: V) {
        let h = self.hash(&key);
        let shard = self.shard(h);
        let mut st = self.lock(shard);
        self.insert_locked(shard, &mut st, h, key, value);
    }

    /// Removes `key`, returning its value if it was cached.
    pub fn remove(&self, key: &K) -> Option<V> {
        let h = self.hash(key);
        let shard = self.shard(h);
        let mut st = self.lock(shard);
        match st.map.get(&h) {
            Some(e) if e.key == *key => {
                st.policy.remove(h);
                st.map.remove(&h).map(|e| e.value)
            }
            _ => None,
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
            let mut st = self.lock(shard);
            let probe = if first {
                self.probe(shard, &mut st, h, &key)
            } else {
                self.peek(&st, h, &key)
            };
            first = false;
            if let Probe::Hit(v) = probe {
                return v;
            }
            if let Some(f) = st.loading.get(&h).cloned() {
                drop(st);
                if let Some(v) = f.wait() {
                    return v;
                }
                continue;
            }
            let flight = Arc::new(Flight::new());
            st.loading.insert(h, Arc::clone(&flight));
            drop(st);
            let mut guard = FlightGuard {
                cache: self,
                h,
                flight,
                done: false,
            };
            let Some(f) = load.take() else {
                // Unreachable: we load at most once; keep waiting callers safe anyway.
                continue;
            };
            let v = f();
            guard.complete(key, v.clone());
            return v;
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
            let waiting = {
                let mut st = self.lock(shard);
                let probe = if first {
                    self.probe(shard, &mut st, h, &key)
                } else {
                    self.peek(&st, h, &key)
                };
                first = false;
                if let Probe::Hit(v) = probe {
                    return v;
                }
                match st.loading.get(&h).cloned() {
                    Some(f) => Ok(f),
                    None => {
                        let flight = Arc::new(Flight::new());
                        st.loading.insert(h, Arc::clone(&flight));
                        Err(flight)
                    }
                }
            };
            match waiting {
                Ok(f) => {
                    if let Some(v) = f.wait_async().await {
                        return v;
                    }
                }
                Err(flight) => {
                    let mut guard = FlightGuard {
                        cache: self,
                        h,
                        flight,
                        done: false,
                    };
                    let Some(fut) = load.take() else { continue };
                    let v = fut.await;
                    guard.complete(key, v.clone());
                    return v;
                }
            }
        }
    }

    /// A lookup that is not counted (used when re-checking after a failed load).
    fn peek(&self, st: &ShardState<K, V>, h: u64, key: &K) -> Probe<V> {
        let now = self.timed().then(|| self.inner.clock.now());
        match st.map.get(&h) {
            Some(e) if e.key == *key && !self.expired(e, now) => Probe::Hit(e.value.clone()),
            _ => Probe::Miss,
        }
    }

    /// Number of cached entries (expired ones not yet dropped included).
    pub fn len(&self) -> usize {
        self.inner
            .shards
            .iter()
            .map(|s| self.lock(s).map.len())
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
            .map(|s| self.lock(s).policy.weight())
            .sum()
    }

    /// The capacity (entries or weight).
    pub fn capacity(&self) -> u64 {
        self.inner.capacity.load(Ordering::Relaxed)
    }

    /// The eviction policy in use.
    pub fn policy(&self) -> PolicyKind {
        self.lock(&self.inner.shards[0]).policy.kind()
    }

    /// Hit, miss, eviction and expiry counts (relaxed reads, no lock).
    pub fn stats(&self) -> CacheStats {
        let mut s = CacheStats::default();
        for sh in self.inner.shards.iter() {
            s.hits += sh.hits.load(Ordering::Relaxed);
            s.misses += sh.misses.load(Ordering::Relaxed);
            s.evictions += sh.evictions.load(Ordering::Relaxed);
            s.expirations += sh.expirations.load(Ordering::Relaxed);
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
            let mut st = self.lock(shard);
            let ShardState {
                map,
                policy,
                evicted,
                ..
            } = &mut *st;
            evicted.clear();
            policy.set_capacity(shard_capacity(capacity, n, i), evicted);
            let mut gone = 0;
            for k in evicted.drain(..) {
                gone += u64::from(map.remove(&k).is_some());
            }
            bump(&shard.evictions, gone);
        }
    }

    /// Switches the eviction policy online. The cached entries are offered to the new
    /// policy coldest first; those it does not keep are evicted.
    pub fn set_policy(&self, kind: PolicyKind) -> Result<(), BuildError> {
        if kind == PolicyKind::Opt {
            return Err(BuildError::OfflinePolicy(kind));
        }
        for shard in self.inner.shards.iter() {
            let mut st = self.lock(shard);
            let cap = st.policy.capacity();
            let mut next = kind
                .build(cap)
                .map_err(|_| BuildError::OfflinePolicy(kind))?;
            let mut residents = Vec::with_capacity(st.policy.len());
            st.policy
                .for_each_resident(&mut |k, w| residents.push((k, w)));
            let ShardState {
                map,
                policy,
                evicted,
                ..
            } = &mut *st;
            evicted.clear();
            for (k, w) in residents {
                if !next.admit(k, w, evicted) {
                    evicted.push(k);
                }
            }
            *policy = next;
            let mut gone = 0;
            for k in evicted.drain(..) {
                gone += u64::from(map.remove(&k).is_some());
            }
            bump(&shard.evictions, gone);
        }
        Ok(())
    }

    /// Drops every expired entry now (expiry is otherwise lazy, on lookup). Returns how
    /// many were dropped.
    pub fn purge_expired(&self) -> usize {
        if !self.timed() {
            return 0;
        }
        let now = Some(self.inner.clock.now());
        let mut total = 0;
        for shard in self.inner.shards.iter() {
            let mut st = self.lock(shard);
            let dead: Vec<u64> = st
                .map
                .iter()
                .filter(|(_, e)| self.expired(e, now))
                .map(|(h, _)| *h)
                .collect();
            for h in &dead {
                st.map.remove(h);
                st.policy.remove(*h);
            }
            bump(&shard.expirations, dead.len() as u64);
            total += dead.len();
        }
        total
    }

    /// Removes every entry (statistics are kept).
    pub fn clear(&self) {
        for shard in self.inner.shards.iter() {
            let mut st = self.lock(shard);
            let keys: Vec<u64> = st.map.keys().copied().collect();
            for h in keys {
                st.policy.remove(h);
            }
            st.map.clear();
        }
    }
}

/// Ends a flight: on completion stores the value; on drop without completion (panic,
/// cancelled future) releases the key so a waiting caller loads instead.
struct FlightGuard<'a, K, V, S>
where
    K: Hash + Eq + Send + 'static,
    V: Clone + Send + 'static,
    S: BuildHasher,
{
    cache: &'a MemoryCache<K, V, S>,
    h: u64,
    flight: Arc<Flight<V>>,
    done: bool,
}

impl<K, V, S> FlightGuard<'_, K, V, S>
where
    K: Hash + Eq + Send + 'static,
    V: Clone + Send + 'static,
    S: BuildHasher,
{
    fn complete(&mut self, key: K, value: V) {
        let shard = self.cache.shard(self.h);
        {
            let mut st = self.cache.lock(shard);
            st.loading.remove(&self.h);
            self.cache
                .insert_locked(shard, &mut st, self.h, key, value.clone());
        }
        self.done = true;
        self.flight.finish(Some(value));
    }
}

impl<K, V, S> Drop for FlightGuard<'_, K, V, S>
where
    K: Hash + Eq + Send + 'static,
    V: Clone + Send + 'static,
    S: BuildHasher,
{
    fn drop(&mut self) {
        if !self.done {
            let shard = self.cache.shard(self.h);
            self.cache.lock(shard).loading.remove(&self.h);
            self.flight.finish(None);
        }
    }
}
