//! A multi-tier cache: a fast small memory tier, a larger embedded disk tier that survives
//! restarts, and a shared Redis tier, behind one [`Tier`] trait, coordinated by
//! [`TieredCache`] (feature `tiered`; the Redis tier needs feature `redis`).
//!
//! - **Read path**: tier by tier, then the loader, once per key under concurrency (single
//!   flight); lower-tier hits are promoted upwards with the time they have left; loads are
//!   written through to every tier; [`TieredCache::invalidate`] reaches every tier; TTL is
//!   respected in every tier.
//! - **Formats**: keys and values cross the disk and Redis tiers through serde in a compact,
//!   versioned, checksummed format ([`codec`]); a corrupt entry is detected, dropped and
//!   counted, never returned.
//! - **Faults**: a Redis that is down or slow is skipped after its timeout, and a circuit
//!   breaker stops trying until a probe succeeds; reads keep being served by other tiers.
//! - **Metrics**: per tier hits, misses, hit ratio, lookup latency p50/p99, evictions,
//!   entries, bytes, errors ([`TieredCache::metrics`], [`TieredCache::prometheus`]).
//! - **Warming**: [`TieredCache::warmer`] runs named strategies by priority in the
//!   background with bounded concurrency, progress, cancellation and a memory-pressure pause.
//! - **Advice**: [`TieredCache::recommendations`] simulates other policies and capacities on
//!   a sampled access trace; [`TieredCache::optimize_eviction_policy`] switches the memory
//!   tier's policy online when the simulation says another is better.
//! - **Memory pressure**: [`TieredCache::shrink_memory`] evicts a fraction of the memory
//!   tier; call it from a memory budget's cleanup hook (a closure), since this crate does
//!   not depend on perfkit-budget.
//!
//! Wiring to a memory budget (perfkit-budget) is two closures, in the application or the
//! facade:
//!
//! ```text
//! let l1 = cache.clone();
//! budgets.register_cleanup("tiered-cache-l1", move || { l1.shrink_memory(0.5); });
//! let b = budgets.clone();
//! let warming = cache
//!     .warmer()
//!     .pause_when(
//!         move || matches!(b.check(memory), Decision::Throttle { .. } | Decision::Reject { .. }),
//!         Duration::from_millis(100),
//!     )
//!     .strategy(WarmStrategy::new("top-products", 10, list_top_products, load_product))
//!     .warm();
//! ```
//!
//! ```
//! use perfkit_cache::policy::PolicyKind;
//! use perfkit_cache::tiered::{DiskTier, DiskTierConfig, MemoryTier, TieredCache};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let dir = std::env::temp_dir().join(format!("perfkit-doc-{}", std::process::id()));
//! let cache: TieredCache<u64, String> = TieredCache::builder()
//!     .tier(MemoryTier::new(1_000, PolicyKind::WTinyLfu).unwrap())
//!     .tier(DiskTier::open(DiskTierConfig::new(dir.join("cache.redb"), 64 << 20)).unwrap())
//!     .build()
//!     .unwrap();
//! let v = cache
//!     .get_with(&7, || async { Ok::<_, std::io::Error>("seven".to_owned()) })
//!     .await
//!     .unwrap();
//! assert_eq!(v, "seven");
//! assert_eq!(cache.get(&7).await.as_deref(), Some("seven"));
//! let m = cache.metrics();
//! assert_eq!(m.loads, 1);
//! assert_eq!(m.tiers[0].hits, 1);
//! // Memory pressure: a budget's cleanup hook can call this.
//! let shrink = { let c = cache.clone(); move || { c.shrink_memory(0.5); } };
//! shrink();
//! # drop(cache);
//! # let _ = std::fs::remove_dir_all(&dir);
//! # });
//! ```

mod advice;
#[cfg(feature = "redis")]
mod breaker;
mod cache;
pub mod codec;
mod disk;
mod evict;
mod memory;
mod metrics;
#[cfg(feature = "redis")]
mod redis_tier;
mod tier;
mod trace;
mod warm;

pub use advice::{CacheReport, Recommendation, TuningOutcome};
#[cfg(feature = "redis")]
pub use breaker::BreakerConfig;
pub use cache::{LoadError, TieredCache, TieredCacheBuilder, TieredError};
pub use disk::{DiskDurability, DiskTier, DiskTierConfig, Recovery};
pub use memory::MemoryTier;
pub use metrics::{CacheSnapshot, TierSnapshot};
#[cfg(feature = "redis")]
pub use redis_tier::{RedisTier, RedisTierConfig};
pub use tier::{
    BreakerState, Hit, PolicyControl, Tier, TierError, TierFuture, TierKind, TierUsage,
};
pub use warm::{WarmHandle, WarmProgress, WarmStrategy, Warmer};
