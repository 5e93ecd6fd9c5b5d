//! The memory tier: typed values in process memory, sharded, each shard governed by one of
//! the crate's eviction [`Policy`](crate::policy::Policy) implementations keyed by the key's
//! hash (the same code the simulator runs), with per-entry expiry.
//!
//! Unlike a plain memory cache it can switch its eviction policy online (residents are
//! carried over, coldest first, so the hottest survive) and shrink on memory pressure.

use super::tier::{Hit, PolicyControl, Tier, TierFuture, TierKind, TierUsage};
use crate::policy::{Policy, PolicyKind};
use parking_lot::Mutex;
use perfkit_core::{SharedClock, SystemClock};
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

struct Entry<K, V> {
    key: K,
    value: V,
    expires: Option<Instant>,
}

struct Shard<K, V> {
    map: HashMap<u64, Entry<K, V>>,
    policy: Box<dyn Policy>,
    evicted: Vec<u64>,
}

struct Inner<K, V> {
    name: String,
    shards: Box<[Mutex<Shard<K, V>>]>,
    shard_capacity: u64,
    hasher: std::hash::RandomState,
    policy: Mutex<PolicyKind>,
    clock: SharedClock,
    evictions: AtomicU64,
    expired: AtomicU64,
}

/// The memory tier. Cheap to clone (clones share the entries).
pub struct MemoryTier<K, V> {
    inner: Arc<Inner<K, V>>,
}

impl<K, V> Clone for MemoryTier<K, V> {
    fn clone(&self) -> Self {
        MemoryTier {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<K, V> std::fmt::Debug for MemoryTier<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryTier")
            .field("name", &self.inner.name)
            .field("policy", &*self.inner.policy.lock())
            .field(
                "capacity",
                &(self.inner.shard_capacity * self.inner.shards.len() as u64),
            )
            .finish()
    }
}

/// Shards for a capacity: one shard per 4,096 entries, at most 16, a power of two. Small
/// tiers have one shard, so they behave exactly like the simulated policy.
fn shard_count(capacity: u64) -> usize {
    let wanted = (capacity / 4096).clamp(1, 16) as usize;
    wanted.next_power_of_two().min(16)
}

impl<K, V> MemoryTier<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// A tier of `capacity` entries with `policy` (`opt` is refused: it is offline only).
    pub fn new(capacity: u64, policy: PolicyKind) -> Result<Self, crate::policy::PolicyError> {
        Self::with_clock(capacity, policy, SystemClock::shared())
    }

    /// Like [`new`](Self::new), with a clock for expiry.
    pub fn with_clock(
        capacity: u64,
        policy: PolicyKind,
        clock: SharedClock,
    ) -> Result<Self, crate::policy::PolicyError> {
        let n = shard_count(capacity.max(1));
        let shard_capacity = capacity.max(1).div_ceil(n as u64);
        let mut shards = Vec::with_capacity(n);
        for _ in 0..n {
            shards.push(Mutex::new(Shard {
                map: HashMap::new(),
                policy: policy.build(shard_capacity)?,
                evicted: Vec::new(),
            }));
        }
        Ok(MemoryTier {
            inner: Arc::new(Inner {
                name: "memory".to_owned(),
                shards: shards.into_boxed_slice(),
                shard_capacity,
                hasher: std::hash::RandomState::new(),
                policy: Mutex::new(policy),
                clock,
                evictions: AtomicU64::new(0),
                expired: AtomicU64::new(0),
            }),
        })
    }

    /// Renames the tier (its name in metrics; `memory` by default).
    pub fn named(self, name: &str) -> Self {
        match Arc::try_unwrap(self.inner) {
            Ok(mut inner) => {
                inner.name = name.to_owned();
                MemoryTier {
                    inner: Arc::new(inner),
                }
            }
            Err(inner) => MemoryTier { inner },
        }
    }

    /// Capacity in entries.
    pub fn capacity(&self) -> u64 {
        self.inner.shard_capacity * self.inner.shards.len() as u64
    }

    /// The policy in use.
    pub fn policy(&self) -> PolicyKind {
        *self.inner.policy.lock()
    }

    fn locate(&self, key: &K) -> (u64, &Mutex<Shard<K, V>>) {
        let h = self.inner.hasher.hash_one(key);
        let shard = &self.inner.shards[(h >> 58) as usize % self.inner.shards.len()];
        (h, shard)
    }

    /// Looks `key` up (counts as a request for the policy).
    pub fn get_now(&self, key: &K) -> Option<Hit<V>> {
        let (h, shard) = self.locate(key);
        let now = self.inner.clock.now();
        let mut s = shard.lock();
        if !s.policy.lookup(h) {
            return None;
        }
        let (fresh, same) = match s.map.get(&h) {
            Some(e) => (e.expires.is_none_or(|t| t > now), e.key == *key),
            None => (false, false),
        };
        if same && fresh {
            let e = s.map.get(&h)?;
            return Some(Hit {
                value: e.value.clone(),
                ttl_left: e.expires.map(|t| t.saturating_duration_since(now)),
            });
        }
        if same {
            self.inner.expired.fetch_add(1, Ordering::Relaxed);
        }
        // Expired, or a different key with the same hash: drop the resident.
        s.map.remove(&h);
        s.policy.remove(h);
        None
    }

    /// Stores `value` (admission is the policy's decision); returns whether it is resident.
    pub fn insert_now(&self, key: K, value: V, ttl: Option<Duration>) -> bool {
        let (h, shard) = self.locate(&key);
        let expires = ttl.map(|t| self.inner.clock.now() + t);
        let mut guard = shard.lock();
        let s = &mut *guard;
        let resident = s.policy.contains(h) || {
            s.evicted.clear();
            let admitted = s.policy.admit(h, 1, &mut s.evicted);
            for k in &s.evicted {
                s.map.remove(k);
            }
            self.inner
                .evictions
                .fetch_add(s.evicted.len() as u64, Ordering::Relaxed);
            admitted
        };
        if resident {
            s.map.insert(
                h,
                Entry {
                    key,
                    value,
                    expires,
                },
            );
        }
        resident
    }

    /// Removes `key`.
    pub fn remove_now(&self, key: &K) {
        let (h, shard) = self.locate(key);
        let mut s = shard.lock();
        if s.map.get(&h).is_some_and(|e| e.key == *key) {
            s.map.remove(&h);
            s.policy.remove(h);
        }
    }

    /// Entries stored.
    pub fn len(&self) -> usize {
        self.inner.shards.iter().map(|s| s.lock().map.len()).sum()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Evicts about `fraction` (0..=1) of the entries, coldest first by the policy's
    /// order; returns how many. The capacity is unchanged.
    pub fn shrink_now(&self, fraction: f64) -> u64 {
        let fraction = if fraction.is_finite() { fraction.clamp(0.0, 1.0) } else { 0.0 };
        let mut total = 0u64;
        for shard in self.inner.shards.iter() {
            let mut guard = shard.lock();
            let s = &mut *guard;
            let keep = ((s.policy.len() as f64) * (1.0 - fraction)).floor() as u64;
            s.evicted.clear();
            s.policy.set_capacity(keep, &mut s.evicted);
            s.policy.set_capacity(self.inner.shard_capacity, &mut s.evicted);
            for k in &s.evicted {
                s.map.remove(k);
            }
            total += s.evicted.len() as u64;
        }
        self.inner.evictions.fetch_add(total, Ordering::Relaxed);
        total
    }

    /// Switches every shard to `kind`, carrying residents over coldest first.
    pub fn switch_to(&self, kind: PolicyKind) -> Result<(), crate::policy::PolicyError> {
        let mut current = self.inner.policy.lock();
        for shard in self.inner.shards.iter() {
            let mut guard = shard.lock();
            let s = &mut *guard;
            let mut next = kind.build(self.inner.shard_capacity)?;
            let mut residents = Vec::with_capacity(s.policy.len());
            s.policy.for_each_resident(&mut |k, w| residents.push((k, w)));
            let mut evicted = Vec::new();
            for (k, w) in residents {
                if !next.admit(k, w, &mut evicted) {
                    evicted.push(k);
                }
            }
            for k in &evicted {
                if !next.contains(*k) {
                    s.map.remove(k);
                }
            }
            s.policy = next;
        }
        *current = kind;
        Ok(())
    }
}

impl<K, V> PolicyControl for MemoryTier<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn policy_name(&self) -> String {
        self.policy().name().to_owned()
    }

    fn capacity_entries(&self) -> u64 {
        self.capacity()
    }

    fn switch_policy(&self, name: &str) -> bool {
        match name.parse::<PolicyKind>() {
            Ok(kind) => self.switch_to(kind).is_ok(),
            Err(_) => false,
        }
    }

    fn available_policies(&self) -> Vec<String> {
        PolicyKind::online().map(|k| k.name().to_owned()).collect()
    }
}

impl<K, V> Tier<K, V> for MemoryTier<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn kind(&self) -> TierKind {
        TierKind::Memory
    }

    fn get<'a>(&'a self, key: &'a K) -> TierFuture<'a, Option<Hit<V>>> {
        let hit = self.get_now(key);
        Box::pin(std::future::ready(Ok(hit)))
    }

    fn put<'a>(&'a self, key: &'a K, value: &'a V, ttl: Option<Duration>) -> TierFuture<'a, ()> {
        self.insert_now(key.clone(), value.clone(), ttl);
        Box::pin(std::future::ready(Ok(())))
    }

    fn remove<'a>(&'a self, key: &'a K) -> TierFuture<'a, ()> {
        self.remove_now(key);
        Box::pin(std::future::ready(Ok(())))
    }

    fn usage(&self) -> TierUsage {
        TierUsage {
            entries: self.len() as u64,
            bytes: 0,
            capacity: self.capacity(),
            evictions: self.inner.evictions.load(Ordering::Relaxed),
            corrupt: 0,
            expired: self.inner.expired.load(Ordering::Relaxed),
        }
    }

    fn shrink(&self, fraction: f64) -> u64 {
        self.shrink_now(fraction)
    }

    fn policy_control(&self) -> Option<&dyn PolicyControl> {
        Some(self)
    }

    fn try_get_sync(&self, key: &K) -> Option<Option<Hit<V>>> {
        Some(self.get_now(key))
    }
}
