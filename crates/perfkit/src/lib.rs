//! # perfkit
//!
//! A performance toolkit for production Rust services. This is the facade crate: depend on
//! it and enable the capabilities you use, one cargo feature each (all are on by default).
//!
//! | feature | module | capability |
//! |---|---|---|
//! | `alloc` | [`alloc`] | a tracking global allocator and memory sources (RSS, cgroup, system) |
//! | `budget` | [`budget`] | memory, storage, bandwidth and CPU budgets with graduated enforcement |
//! | `leak` | [`leak`] | memory snapshots, trend and leak-pattern analysis, OOM prediction |
//! | `profiler` | [`profiler`] | a `tracing` layer: sampled traces, span statistics, flame graphs, regressions |
//! | `cache` | [`cache`] | eviction policies, a trace simulator, a concurrent and a multi-tier cache |
//! | `lazy` | [`lazy`] | async lazy resources with preload strategies; preload hints for front ends |
//! | `bundle` | [`bundle`] | analysis of JavaScript bundler output |
//!
//! Optional parts, each an additive feature: `budget-tower` (a tower layer shedding load),
//! `budget-redis` (a rate budget shared through Redis), `profiler-flamegraph` (SVG flame
//! graphs), `profiler-otlp` (OTLP export), `cache-tiered` (memory + disk tiers),
//! `cache-redis` (a Redis tier), `lazy-tower` (an idle detector fed by a tower layer).
//!
//! The shared vocabulary (severities, clocks, units, reports) is always available as
//! [`core`].
//!
//! # Architecture
//!
//! Each capability is its own crate under `crates/`, depending only on `perfkit-core` (and
//! `perfkit-alloc` for memory readings), never on each other. Cross-component wiring (a
//! budget's pressure shrinking a cache, the leak detector's cleanup hook flushing a tier) is
//! done through callbacks and small traits, composed here, in the CLI's demo or in your
//! code. `ARCHITECTURE.md` at the repository root has the full map.
//!
//! ```
//! use perfkit::core::{ByteSize, Severity};
//! let limit: ByteSize = "256MiB".parse().unwrap();
//! assert_eq!(limit.as_u64(), 256 << 20);
//! assert!(Severity::Warning < Severity::Critical);
//! ```

pub use perfkit_core as core;

#[cfg(feature = "alloc")]
pub use perfkit_alloc as alloc;
#[cfg(feature = "budget")]
pub use perfkit_budget as budget;
#[cfg(feature = "bundle")]
pub use perfkit_bundle as bundle;
#[cfg(feature = "cache")]
pub use perfkit_cache as cache;
#[cfg(feature = "lazy")]
pub use perfkit_lazy as lazy;
#[cfg(feature = "leak")]
pub use perfkit_leak as leak;
#[cfg(feature = "profiler")]
pub use perfkit_profiler as profiler;
