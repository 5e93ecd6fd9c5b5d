//! # perfkit-cache
//!
//! Which entries to keep: eviction policies (LRU, FIFO, LFU, SIEVE, S3-FIFO, ARC and an
//! adaptive W-TinyLFU, perfkit's default), a trace simulator with Belady's optimum, a tuner,
//! and [`MemoryCache`], a concurrent cache that runs the very same policy code, so the hit
//! ratio the simulator shows is the one production gets.
//!
//! ```
//! use perfkit_cache::{MemoryCache, PolicyKind};
//!
//! let cache: MemoryCache<u64, String> = MemoryCache::builder()
//!     .capacity(10_000)
//!     .policy(PolicyKind::WTinyLfu)
//!     .build()
//!     .unwrap();
//! let v = cache.get_or_insert_with(42, || "answer".to_owned());
//! assert_eq!(v, "answer");
//! assert_eq!(cache.get(&42).as_deref(), Some("answer"));
//! ```

pub mod hash;
mod memory;
pub mod plot;
pub mod policy;
pub mod sim;
pub mod synth;
pub mod trace;
pub mod tune;

pub use memory::{BuildError, CacheStats, MemoryCache, MemoryCacheBuilder};
pub use policy::{Access, Policy, PolicyError, PolicyKind};
pub use sim::{SimResult, simulate, simulate_all};
pub use trace::{Trace, TraceError, TraceFormat, read_trace};

#[cfg(feature = "tiered")]
pub mod tiered;
