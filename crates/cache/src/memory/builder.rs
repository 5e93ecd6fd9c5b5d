//! [`MemoryCacheBuilder`]: a cache's options, and how they become shards.

use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use perfkit_core::{SharedClock, SystemClock};

use super::shard::Shard;
use super::{BuildError, Inner, MemoryCache, Weigher};
use crate::hash::FastState;
use crate::policy::PolicyKind;

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

    /// The eviction policy (default: adaptive W-TinyLFU, the best hit ratios). The policy
    /// also sets the price of an operation: on the Zipf loop of BENCHMARKS.md, SIEVE runs
    /// in about three quarters of W-TinyLFU's time per operation, at a lower hit ratio on
    /// most workloads (`perfkit cache simulate` shows both on a trace of yours).
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

    /// The number of shards (rounded up to a power of two). Default: 32 per CPU (4 with a
    /// weigher), fewer for small caches: a shard holds at least 512 units of the capacity.
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
        let n = match self.shards {
            Some(n) => n.next_power_of_two().min(1 << 16),
            None => {
                let cpus = std::thread::available_parallelism().map_or(4, |n| n.get());
                default_shards(self.capacity, self.weigher.is_some(), cpus)
            }
        };
        let capacities: Vec<u64> = (0..n)
            .map(|i| shard_capacity(self.capacity, n, i))
            .collect();
        let shards: Vec<Shard<K, V>> = self
            .policy
            .build_shards(&capacities)
            .map_err(|_| BuildError::OfflinePolicy(self.policy))?
            .into_iter()
            .map(Shard::new)
            .collect();
        let clock = self.clock.unwrap_or_else(SystemClock::shared);
        Ok(MemoryCache {
            inner: Arc::new(Inner {
                shards: shards.into_boxed_slice(),
                shard_bits: n.trailing_zeros(),
                hasher: self.hasher,
                weigher: self.weigher,
                ttl: self.ttl,
                tti: self.tti,
                timed: self.ttl.is_some() || self.tti.is_some(),
                base: clock.now(),
                clock,
                capacity: AtomicU64::new(self.capacity),
            }),
        })
    }
}

/// The default number of shards, a power of two: `32` per CPU without a weigher, `4` with
/// one, and no more than leave each shard 512 units of `capacity`.
fn default_shards(capacity: u64, weighted: bool, cpus: usize) -> usize {
    // Many small shards: a shard's lock is held for a few dozen nanoseconds, but with
    // skewed keys two threads meet on the hot shards' locks and lines. On Zipf 0.9 and 1.1
    // loops on two threads, 64 shards took 25-30 % less time per request than 8 (four per
    // CPU), with the same hit ratio within 0.5 points; 128 gained little more, and one
    // thread then paid for colder lock words. With a weigher the capacity is a weight
    // (bytes, say) and one entry may weigh hundreds of units; a shard must hold several,
    // so there are as few shards as before.
    let per_cpu = if weighted { 4 } else { 32 };
    let by_cpu = cpus
        .max(1)
        .saturating_mul(per_cpu)
        .checked_next_power_of_two()
        .unwrap_or(1 << 16);
    let by_size = usize::try_from(capacity / 512).unwrap_or(usize::MAX).max(1);
    // Rounded down, so that no shard holds less than 512 units.
    let by_size = 1usize << by_size.ilog2();
    by_cpu.min(by_size).min(1 << 16)
}

/// Shard `i`'s share of `total` among `n` shards (every shard holds at least one unit).
pub(super) fn shard_capacity(total: u64, n: usize, i: usize) -> u64 {
    let n = n as u64;
    let base = total / n;
    let extra = u64::from((i as u64) < total % n);
    (base + extra).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_shards_follow_the_cpus_and_leave_each_shard_512_units() {
        assert_eq!(default_shards(100_000, false, 2), 64);
        assert_eq!(default_shards(100_000, false, 3), 128);
        // 195 shards' worth of capacity: 128, not 256.
        assert_eq!(default_shards(100_000, false, 64), 128);
        assert_eq!(default_shards(10_000, false, 2), 16);
        assert_eq!(default_shards(100, false, 2), 1);
        // A weight: as few shards as four per CPU.
        assert_eq!(default_shards(10_000, true, 2), 8);
        assert_eq!(default_shards(10_000, true, 8), 16);
        assert_eq!(default_shards(u64::MAX, false, 1 << 20), 1 << 16);
        for (cap, weighted, cpus) in [(512, false, 1), (5_000, true, 16), (1 << 30, false, 7)] {
            let n = default_shards(cap, weighted, cpus);
            assert!(
                n.is_power_of_two() && cap / n as u64 >= 512,
                "{cap} {cpus}: {n}"
            );
        }
    }
}
