//! # perfkit-cache
//!
//! Which entries to keep: eviction policies (LRU, FIFO, LFU, SIEVE, S3-FIFO, ARC and an
//! adaptive W-TinyLFU, perfkit's default), a trace simulator with Belady's optimum, a tuner,
//! and [`MemoryCache`], a concurrent cache that runs the very same policy code, so the hit
//! ratio the simulator shows is the one production gets.
//!
//! - [`policy`]: the [`Policy`] trait over `u64` keys with weights, and [`PolicyKind`]
//!   (`lru`, `fifo`, `lfu`, `sieve`, `s3fifo`, `arc`, `wtinylfu`, `tinylfu-static`, `opt`).
//! - [`MemoryCache`]: sharded, one lock per shard, weigher, time to live and to idle,
//!   single-flight `get_or_insert_with` (sync and async), statistics, online `resize` and
//!   `set_policy`.
//! - [`sim`] and [`trace`]: run policies over real traces (gzip, xz and zstd read
//!   transparently), in parallel over policy x capacity; [`tune`]: SHARDS-sampled
//!   miss-ratio curves and a recommendation; [`plot`]: an SVG chart; [`synth`]: synthetic
//!   workloads (Zipf, scans, loops, shifting working sets).
//!
//! ```
//! use perfkit_cache::{MemoryCache, PolicyKind, simulate, synth};
//!
//! let cache: MemoryCache<u64, String> = MemoryCache::builder()
//!     .capacity(10_000)
//!     .policy(PolicyKind::WTinyLfu)
//!     .build()
//!     .unwrap();
//! let v = cache.get_or_insert_with(42, || "answer".to_owned());
//! assert_eq!(v, "answer");
//! assert_eq!(cache.get(&42).as_deref(), Some("answer"));
//!
//! // What would each policy keep on a skewed workload with scans?
//! let keys = synth::zipf_with_scans(50_000, 20_000, 0.9, 5_000, 1_000, 7);
//! let lru = simulate(PolicyKind::Lru, 500, &keys, None).unwrap();
//! let adaptive = simulate(PolicyKind::WTinyLfu, 500, &keys, None).unwrap();
//! let opt = simulate(PolicyKind::Opt, 500, &keys, None).unwrap();
//! assert!(lru.hits <= adaptive.hits && adaptive.hits <= opt.hits);
//! ```

pub mod hash;
mod memory;
pub mod plot;
pub mod policy;
mod prefetch;
pub mod report;
pub mod sim;
pub mod synth;
pub mod trace;
pub mod tune;

pub use memory::{BuildError, CacheStats, MemoryCache, MemoryCacheBuilder};
pub use policy::{Access, Policy, PolicyError, PolicyKind};
pub use report::CacheReport;
pub use sim::{SimResult, simulate, simulate_all};
pub use trace::{Trace, TraceError, TraceFormat, read_trace};

#[cfg(feature = "tiered")]
pub mod tiered;
