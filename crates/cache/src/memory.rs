//! [`MemoryCache`]: a concurrent in-memory cache, sharded, whose eviction decisions are
//! made by the same [`Policy`] code the simulator runs.
//!
//! Each shard has a read-write lock over its entries and a mutex over its policy. A hit
//! takes only the read lock and records the access in a small lossy ring buffer; the
//! buffer is applied to the policy, in order, by whoever holds the policy lock next (the
//! same reader when the lock is free, as it always is on one thread, so the policy sees
//! exactly the simulator's sequence). Misses and writes take the policy lock, then the
//! write lock.

use std::collections::hash_map::Entry as MapEntry;
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{
    Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard,
    TryLockError,
};
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
    /// The policy's handle for the key ([`Policy::slot`]), so that a hit needs no second
    /// key lookup in the policy; [`NO_SLOT`] when it has none. Kept current under the
    /// write lock; a stale one is only slower (the policy checks it).
    slot: u32,
    /// Nanoseconds since the cache's base instant (only read with a time to live).
    written: u64,
    /// Nanoseconds since the base instant of the last access (updated under the read lock).
    accessed: AtomicU64,
}

/// No policy handle.
const NO_SLOT: u32 = u32::MAX;

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

/// What the policy lock guards.
struct Core<V> {
    policy: Box<dyn Policy>,
    evicted: Vec<u64>,
    loading: U64Map<Arc<Flight<V>>>,
}

/// Hits buffered between policy updates (a power of two).
const RING: usize = 64;

/// One shard: entries behind a read-write lock, the policy behind a mutex, the lossy ring
/// of recent hits, and the counters, on their own cache lines.
#[repr(align(128))]
struct Shard<K, V> {
    map: RwLock<U64Map<Entry<K, V>>>,
    core: Mutex<Core<V>>,
    ring: [AtomicU64; RING],
    /// Slots reserved by readers (monotonic).
    head: AtomicUsize,
    /// Slots applied to the policy (monotonic; written under the policy lock).
    tail: AtomicUsize,
    /// Hits counted under the policy lock (plain stores).
    hits: AtomicU64,
    /// Hits counted while another thread held the policy lock (atomic adds).
    hits_unlocked: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
    expirations: AtomicU64,
}

/// Adds to a counter only written under the policy lock: a plain load and store, no
/// atomic read-modify-write on the hot path.
#[inline]
fn bump(c: &AtomicU64, by: u64) {
    c.store(c.load(Ordering::Relaxed) + by, Ordering::Relaxed);
}

impl<K, V> Shard<K, V> {
    fn new(policy: Box<dyn Policy>) -> Self {
        Shard {
            map: RwLock::new(U64Map::default()),
            core: Mutex::new(Core {
                policy,
                evicted: Vec::new(),
                loading: U64Map::default(),
            }),
            ring: std::array::from_fn(|_| AtomicU64::new(0)),
            head: AtomicUsize::new(0),
            tail: AtomicUsize::new(0),
            hits: AtomicU64::new(0),
            hits_unlocked: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            expirations: AtomicU64::new(0),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, U64Map<Entry<K, V>>> {
        self.map.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, U64Map<Entry<K, V>>> {
        self.map.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock(&self) -> MutexGuard<'_, Core<V>> {
        self.core.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a hit on `h` for the policy. Returns `false` when it could not (ring full,
    /// a racing reader, or `h == 0`, the empty-slot marker): the caller then applies the
    /// hit itself under the lock.
    #[inline]
    fn buffer(&self, h: u64) -> bool {
        if h == 0 {
            return false;
        }
        let head = self.head.load(Ordering::Relaxed);
        if head.wrapping_sub(self.tail.load(Ordering::Acquire)) >= RING {
            return false;
        }
        if self
            .head
            .compare_exchange(
                head,
                head.wrapping_add(1),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_err()
        {
            return false;
        }
        self.ring[head & (RING - 1)].store(h, Ordering::Release);
        true
    }

    /// Applies buffered hits to the policy, in order (the caller holds the policy lock).
    #[inline]
    fn drain(&self, core: &mut Core<V>) {
        let head = self.head.load(Ordering::Acquire);
        let mut tail = self.tail.load(Ordering::Relaxed);
        if head == tail {
            return;
        }
        while tail != head {
            let h = self.ring[tail & (RING - 1)].swap(0, Ordering::Acquire);
            if h == 0 {
                break; // reserved by a reader, not yet written: next time
            }
            core.policy.touch(h);
            tail = tail.wrapping_add(1);
        }
        self.tail.store(tail, Ordering::Release);
    }

    /// The policy lock, with the buffered hits applied.
    fn lock_drained(&self) -> MutexGuard<'_, Core<V>> {
        let mut core = self.lock();
        self.drain(&mut core);
        core
    }
}

struct Inner<K, V, S> {
    shards: Box<[Shard<K, V>]>,
    shard_bits: u32,
    hasher: S,
    weigher: Option<Weigher<K, V>>,
    ttl: Option<Duration>,
    tti: Option<Duration>,
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
            shards.push(Shard::new(policy));
        }
        let clock = self.clock.unwrap_or_else(SystemClock::shared);
        Ok(MemoryCache {
            inner: Arc::new(Inner {
                shards: shards.into_boxed_slice(),
                shard_bits: n.trailing_zeros(),
                hasher: self.hasher,
                weigher: self.weigher,
                ttl: self.ttl,
                tti: self.tti,
                base: clock.now(),
                clock,
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

enum Lookup<V> {
    /// The value and the policy handle.
    Hit(V, u32),
    Expired,
    Absent,
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

    #[inline]
    fn timed(&self) -> bool {
        self.inner.ttl.is_some() || self.inner.tti.is_some()
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

    fn expired(&self, e: &Entry<K, V>, now: u64) -> bool {
        let past = |since: u64, limit: Option<Duration>| {
            limit.is_some_and(|l| {
                now.saturating_sub(since) >= u64::try_from(l.as_nanos()).unwrap_or(u64::MAX)
            })
        };
        past(e.written, self.inner.ttl) || past(e.accessed.load(Ordering::Relaxed), self.inner.tti)
    }

    /// The read-locked part of a lookup.
    #[inline]
    fn read(&self, shard: &Shard<K, V>, h: u64, key: &K, now: u64) -> Lookup<V> {
        let map = shard.read();
        match map.get(&h) {
            Some(e) if e.key == *key => {
                if self.timed() {
                    if self.expired(e, now) {
                        return Lookup::Expired;
                    }
                    if self.inner.tti.is_some() {
                        e.accessed.store(now, Ordering::Relaxed);
                    }
                }
                Lookup::Hit(e.value.clone(), e.slot)
            }
            _ => Lookup::Absent,
        }
    }

    /// A counted lookup that informs the policy.
    fn probe(&self, shard: &Shard<K, V>, h: u64, key: &K) -> Probe<V> {
        let now = self.now();
        match self.read(shard, h, key, now) {
            Lookup::Hit(v, slot) => {
                // Apply the hit now when the policy lock is free (always, on one thread);
                // otherwise leave it in the ring for the lock's holder.
                let core = match shard.core.try_lock() {
                    Ok(core) => Some(core),
                    Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
                    Err(TryLockError::WouldBlock) => None,
                };
                match core {
                    Some(mut core) => {
                        shard.drain(&mut core);
                        core.policy.touch_slot(slot, h);
                        bump(&shard.hits, 1);
                    }
                    None => {
                        shard.hits_unlocked.fetch_add(1, Ordering::Relaxed);
                        if !shard.buffer(h) {
                            shard.lock_drained().policy.touch(h);
                        }
                    }
                }
                Probe::Hit(v)
            }
            found => {
                let mut core = shard.lock_drained();
                if matches!(found, Lookup::Expired) {
                    let mut map = shard.write();
                    if let Some(e) = map.get(&h)
                        && e.key == *key
                        && self.expired(e, now)
                    {
                        map.remove(&h);
                        core.policy.remove(h);
                        bump(&shard.expirations, 1);
                    }
                }
                core.policy.lookup(h);
                bump(&shard.misses, 1);
                Probe::Miss
            }
        }
    }

    /// The value for `key`, if cached and live. Counts a hit or a miss.
    pub fn get(&self, key: &K) -> Option<V> {
        let h = self.hash(key);
        match self.probe(self.shard(h), h, key) {
            Probe::Hit(v) => Some(v),
            Probe::Miss => None,
        }
    }

    /// Whether `key` is cached and live (not counted as a lookup).
    pub fn contains_key(&self, key: &K) -> bool {
        let h = self.hash(key);
        let now = self.now();
        self.shard(h)
            .read()
            .get(&h)
            .is_some_and(|e| e.key == *key && !self.expired(e, now))
    }

    /// Inserts under the policy lock (the caller's), taking the write lock.
    fn insert_locked(&self, shard: &Shard<K, V>, core: &mut Core<V>, h: u64, key: K, value: V) {
        let weight = self.inner.weigher.as_ref().map_or(1, |w| w(&key, &value));
        let now = self.now();
        let Core {
            policy, evicted, ..
        } = core;
        evicted.clear();
        let mut map = shard.write();
        let entry = Entry {
            key,
            value,
            weight,
            slot: NO_SLOT,
            written: now,
            accessed: AtomicU64::new(now),
        };
        match map.entry(h) {
            MapEntry::Occupied(mut place) => {
                let old = place.get().weight;
                *place.get_mut() = entry;
                let kept = if policy.contains(h) {
                    if old != weight {
                        policy.set_weight(h, weight, evicted);
                    }
                    true
                } else {
                    policy.admit(h, weight, evicted)
                };
                if kept {
                    place.get_mut().slot = policy.slot(h).unwrap_or(NO_SLOT);
                } else {
                    place.remove();
                }
            }
            MapEntry::Vacant(place) => {
                if policy.admit(h, weight, evicted) {
                    place.insert(entry).slot = policy.slot(h).unwrap_or(NO_SLOT);
                }
            }
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
        let mut core = shard.lock_drained();
        self.insert_locked(shard, &mut core, h, key, value);
    }

    /// Removes `key`, returning its value if it was cached.
    pub fn remove(&self, key: &K) -> Option<V> {
        let h = self.hash(key);
        let shard = self.shard(h);
        let mut core = shard.lock_drained();
        let mut map = shard.write();
        match map.get(&h) {
            Some(e) if e.key == *key => {
                core.policy.remove(h);
                map.remove(&h).map(|e| e.value)
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
            let probe = if first {
                self.probe(shard, h, &key)
            } else {
                self.peek(shard, h, &key)
            };
            first = false;
            if let Probe::Hit(v) = probe {
                return v;
            }
            let mut core = shard.lock_drained();
            if let Probe::Hit(v) = self.peek(shard, h, &key) {
                return v;
            }
            if let Some(f) = core.loading.get(&h).cloned() {
                drop(core);
                if let Some(v) = f.wait() {
                    return v;
                }
                continue;
            }
            let flight = Arc::new(Flight::new());
            core.loading.insert(h, Arc::clone(&flight));
            drop(core);
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
            let probe = if first {
                self.probe(shard, h, &key)
            } else {
                self.peek(shard, h, &key)
            };
            first = false;
            if let Probe::Hit(v) = probe {
                return v;
            }
            let waiting = {
                let mut core = shard.lock_drained();
                if let Probe::Hit(v) = self.peek(shard, h, &key) {
                    return v;
                }
                match core.loading.get(&h).cloned() {
                    Some(f) => Ok(f),
                    None => {
                        let flight = Arc::new(Flight::new());
                        core.loading.insert(h, Arc::clone(&flight));
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

    /// A lookup that is not counted (used when re-checking around a load).
    fn peek(&self, shard: &Shard<K, V>, h: u64, key: &K) -> Probe<V> {
        let now = self.now();
        let map = shard.read();
        match map.get(&h) {
            Some(e) if e.key == *key && !self.expired(e, now) => Probe::Hit(e.value.clone()),
            _ => Probe::Miss,
        }
    }

    /// Number of cached entries (expired ones not yet dropped included).
    pub fn len(&self) -> usize {
        self.inner.shards.iter().map(|s| s.read().len()).sum()
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
            .map(|s| s.lock().policy.weight())
            .sum()
    }

    /// The capacity (entries or weight).
    pub fn capacity(&self) -> u64 {
        self.inner.capacity.load(Ordering::Relaxed)
    }

    /// The eviction policy in use.
    pub fn policy(&self) -> PolicyKind {
        self.inner.shards[0].lock().policy.kind()
    }

    /// Hit, miss, eviction and expiry counts (relaxed reads, no lock).
    pub fn stats(&self) -> CacheStats {
        let mut s = CacheStats::default();
        for sh in self.inner.shards.iter() {
            s.hits += sh.hits.load(Ordering::Relaxed) + sh.hits_unlocked.load(Ordering::Relaxed);
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
            let mut core = shard.lock_drained();
            let Core {
                policy, evicted, ..
            } = &mut *core;
            evicted.clear();
            policy.set_capacity(shard_capacity(capacity, n, i), evicted);
            let mut map = shard.write();
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
            let mut core = shard.lock_drained();
            let cap = core.policy.capacity();
            let mut next = kind
                .build(cap)
                .map_err(|_| BuildError::OfflinePolicy(kind))?;
            let mut residents = Vec::with_capacity(core.policy.len());
            core.policy
                .for_each_resident(&mut |k, w| residents.push((k, w)));
            let Core {
                policy, evicted, ..
            } = &mut *core;
            evicted.clear();
            for (k, w) in residents {
                if !next.admit(k, w, evicted) {
                    evicted.push(k);
                }
            }
            *policy = next;
            let mut map = shard.write();
            let mut gone = 0;
            for k in evicted.drain(..) {
                gone += u64::from(map.remove(&k).is_some());
            }
            // The old policy's handles mean nothing to the new one.
            for (k, e) in map.iter_mut() {
                e.slot = policy.slot(*k).unwrap_or(NO_SLOT);
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
        let now = self.now();
        let mut total = 0;
        for shard in self.inner.shards.iter() {
            let mut core = shard.lock_drained();
            let mut map = shard.write();
            let dead: Vec<u64> = map
                .iter()
                .filter(|(_, e)| self.expired(e, now))
                .map(|(h, _)| *h)
                .collect();
            for h in &dead {
                map.remove(h);
                core.policy.remove(*h);
            }
            bump(&shard.expirations, dead.len() as u64);
            total += dead.len();
        }
        total
    }

    /// Removes every entry (statistics are kept).
    pub fn clear(&self) {
        for shard in self.inner.shards.iter() {
            let mut core = shard.lock_drained();
            let mut map = shard.write();
            for h in map.keys() {
                core.policy.remove(*h);
            }
            map.clear();
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
            let mut core = shard.lock_drained();
            core.loading.remove(&self.h);
            self.cache
                .insert_locked(shard, &mut core, self.h, key, value.clone());
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
            shard.lock().loading.remove(&self.h);
            self.flight.finish(None);
        }
    }
}
