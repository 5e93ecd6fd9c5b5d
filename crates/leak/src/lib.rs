//! # perfkit-leak
//!
//! Memory leak detection: snapshots of a memory source, robust trend statistics, the shape
//! of growth (linear, exponential, sawtooth, step, no cleanup), and when memory will reach
//! its limit, with a range.
//!
//! - [`analyze`] classifies any series of `(seconds, bytes)` [`Sample`]s: the offline path
//!   (`perfkit leak analyze`).
//! - [`LeakDetector`] takes [`Snapshot`]s of any [`perfkit_alloc::MemorySource`] (the
//!   tracking allocator's live heap, RSS, a cgroup, another process through
//!   [`process::ProcessRssSource`]), on demand or from a background sampler, and runs the
//!   same analysis with alert and cleanup callbacks.
//! - [`LimitResolver`] picks the limit: explicit, then a memory budget, then the cgroup,
//!   then system memory.
//! - [`stats`]: Theil-Sen, Mann-Kendall and least-squares fits, bounded in time.
//!
//! ```
//! use perfkit_leak::{analyze, AnalysisConfig, LimitKind, MemoryLimit, Pattern, Sample};
//!
//! // A cache that is cleaned every 20 s, but keeps 40 KiB more each time.
//! let samples: Vec<Sample> = (0..200)
//!     .map(|i| {
//!         let t = i as f64;
//!         let floor = 10_000_000.0 + 2_000.0 * t;
//!         let tooth = (i % 20) as f64 * 50_000.0;
//!         Sample::new(t, (floor + tooth) as u64)
//!     })
//!     .collect();
//! let limit = MemoryLimit::new(100_000_000, LimitKind::Explicit);
//! let verdict = analyze(&samples, &AnalysisConfig::default(), Some(limit));
//! assert_eq!(verdict.pattern, Pattern::Sawtooth);
//! assert!(verdict.leak);
//! assert!((verdict.growth_bytes_per_sec - 2_000.0).abs() < 100.0);
//! println!("{}", verdict.summary());
//! ```

mod analysis;
mod classify;
mod detector;
mod error;
mod oom;
pub mod process;
mod report;
mod series;
pub mod stats;

pub use analysis::{Analysis, AnalysisConfig, Model, Pattern, Trend, analyze, format_secs};
pub use detector::{
    CleanupEvent, CleanupReason, LeakAlert, LeakDetector, LeakDetectorBuilder, Snapshot,
};
pub use error::LeakError;
pub use oom::{LimitKind, LimitResolver, LimitSource, MemoryLimit, OomEstimate};
pub use report::{LeakReport, verdict_figures, verdict_findings};
pub use series::Sample;
