//! A multi-tier cache: memory, embedded disk and Redis tiers behind one [`Tier`] trait.

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

pub use breaker::BreakerConfig;
pub use cache::{LoadError, TieredCache, TieredCacheBuilder, TieredError};
pub use disk::{DiskDurability, DiskTier, DiskTierConfig, Recovery};
pub use evict::EvictorKind;
pub use memory::MemoryTier;
pub use metrics::{CacheSnapshot, TierSnapshot};
#[cfg(feature = "redis")]
pub use redis_tier::{RedisTier, RedisTierConfig};
pub use tier::{BreakerState, Hit, PolicyControl, Tier, TierError, TierFuture, TierKind, TierUsage};
