//! The memory tier: the crate's [`MemoryCache`] (sharded, its eviction decided by the same
//! policy code the simulator runs) holding typed values with a per-entry expiry, so values
//! promoted from lower tiers keep the time they have left.
//!
//! It can switch its eviction policy online (residents are carried over, coldest first) and
//! shrink on memory pressure.

use super::tier::{Hit, PolicyControl, Tier, TierFuture, TierKind, TierUsage};
use crate::policy::PolicyKind;
use crate::{BuildError, MemoryCache};
use perfkit_core::{SharedClock, SystemClock};
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Clone)]
struct Stored<V> {
    value: V,
    expires: Option<Instant>,
}

/// The memory tier. Cheap to clone (clones share the entries).
pub struct MemoryTier<K, V> {
    cache: MemoryCache<K, Stored<V>>,
    weighted: bool,
    name: Arc<str>,
    clock: SharedClock,
    expired: Arc<AtomicU64>,
}

impl<K, V> Clone for MemoryTier<K, V> {
    fn clone(&self) -> Self {
        MemoryTier {
            cache: self.cache.clone(),
            weighted: self.weighted,
            name: Arc::clone(&self.name),
            clock: Arc::clone(&self.clock),
            expired: Arc::clone(&self.expired),
        }
    }
}

impl<K, V> std::fmt::Debug for MemoryTier<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryTier")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<K, V> MemoryTier<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// A tier of `capacity` entries with `policy` (`opt` is refused: it is offline only).
    pub fn new(capacity: u64, policy: PolicyKind) -> Result<Self, BuildError> {
        Self::with_clock(capacity, policy, SystemClock::shared())
    }

    /// Like [`new`](Self::new), with a clock for expiry.
    pub fn with_clock(
        capacity: u64,
        policy: PolicyKind,
        clock: SharedClock,
    ) -> Result<Self, BuildError> {
        let cache = MemoryCache::builder()
            .capacity(capacity)
            .policy(policy)
            .clock(Arc::clone(&clock))
            .build()?;
        Ok(MemoryTier {
            cache,
            weighted: false,
            name: Arc::from("memory"),
            clock,
            expired: Arc::new(AtomicU64::new(0)),
        })
    }

    /// A tier bounded by weight rather than entries: `capacity_bytes` of what `weigher`
    /// says each entry costs (its size in bytes, say). The tier's metrics then report
    /// bytes.
    pub fn weighted(
        capacity_bytes: u64,
        policy: PolicyKind,
        clock: SharedClock,
        weigher: impl Fn(&K, &V) -> u32 + Send + Sync + 'static,
    ) -> Result<Self, BuildError> {
        let cache = MemoryCache::builder()
            .capacity(capacity_bytes)
            .policy(policy)
            .clock(Arc::clone(&clock))
            .weigher(move |k: &K, s: &Stored<V>| weigher(k, &s.value))
            .build()?;
        Ok(MemoryTier {
            cache,
            weighted: true,
            name: Arc::from("memory"),
            clock,
            expired: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Renames the tier (its name in metrics; `memory` by default).
    pub fn named(mut self, name: &str) -> Self {
        self.name = Arc::from(name);
        self
    }

    /// Capacity: entries, or weight for a [`weighted`](Self::weighted) tier.
    pub fn capacity(&self) -> u64 {
        self.cache.capacity()
    }

    /// The capacity in entries: for a weighted tier, estimated from the mean weight of the
    /// entries it holds.
    pub fn capacity_in_entries(&self) -> u64 {
        if !self.weighted {
            return self.capacity();
        }
        let (len, weight) = (self.cache.len() as u64, self.cache.weight());
        if len == 0 || weight == 0 {
            return self.capacity();
        }
        (self.capacity() as u128 * len as u128 / weight as u128) as u64
    }

    /// The policy in use.
    pub fn policy(&self) -> PolicyKind {
        self.cache.policy()
    }

    /// Looks `key` up (counts as a request for the policy). An expired entry is dropped.
    pub fn get_now(&self, key: &K) -> Option<Hit<V>> {
        let stored = self.cache.get(key)?;
        let Some(expires) = stored.expires else {
            return Some(Hit {
                value: stored.value,
                ttl_left: None,
            });
        };
        let now = self.clock.now();
        if expires <= now {
            self.expired.fetch_add(1, Ordering::Relaxed);
            self.cache.remove(key);
            return None;
        }
        Some(Hit {
            value: stored.value,
            ttl_left: Some(expires.saturating_duration_since(now)),
        })
    }

    /// Stores `value` (admission is the policy's decision), expiring after `ttl`.
    pub fn insert_now(&self, key: K, value: V, ttl: Option<Duration>) {
        let expires = ttl.map(|t| self.clock.now() + t);
        self.cache.insert(key, Stored { value, expires });
    }

    /// Removes `key`.
    pub fn remove_now(&self, key: &K) {
        self.cache.remove(key);
    }

    /// Entries stored.
    pub fn len(&self) -> usize {
        self.cache.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.cache.is_empty()
    }

    /// Evicts about `fraction` (0..=1) of the entries, coldest first by the policy's
    /// order; returns how many. The capacity is unchanged afterwards.
    pub fn shrink_now(&self, fraction: f64) -> u64 {
        let fraction = if fraction.is_finite() {
            fraction.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let before = self.cache.len() as u64;
        let capacity = self.cache.capacity();
        let keep = ((before as f64) * (1.0 - fraction)).floor() as u64;
        self.cache.resize(keep.min(capacity));
        self.cache.resize(capacity);
        before.saturating_sub(self.cache.len() as u64)
    }

    /// Switches the eviction policy, carrying residents over coldest first.
    pub fn switch_to(&self, kind: PolicyKind) -> Result<(), BuildError> {
        self.cache.set_policy(kind)
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
        self.capacity_in_entries()
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
        &self.name
    }

    fn kind(&self) -> TierKind {
        TierKind::Memory
    }

    fn get<'a>(&'a self, key: &'a K) -> TierFuture<'a, Option<Hit<V>>> {
        let hit = self.get_now(key);
        Box::pin(std::future::ready(Ok(hit)))
    }

    fn try_get_sync(&self, key: &K) -> Option<Option<Hit<V>>> {
        Some(self.get_now(key))
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
            bytes: if self.weighted {
                self.cache.weight()
            } else {
                0
            },
            capacity: self.capacity(),
            evictions: self.cache.stats().evictions,
            corrupt: 0,
            expired: self.expired.load(Ordering::Relaxed),
        }
    }

    fn shrink(&self, fraction: f64) -> u64 {
        self.shrink_now(fraction)
    }

    fn policy_control(&self) -> Option<&dyn PolicyControl> {
        Some(self)
    }
}
