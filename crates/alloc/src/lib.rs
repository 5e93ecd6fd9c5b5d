//! # perfkit-alloc
//!
//! Memory accounting for perfkit: a tracking global allocator and the other memory sources
//! (process RSS, cgroup, system memory) that budgets and leak detection read.
//!
//! - [`TrackingAllocator`]: wraps any `GlobalAlloc` (the system allocator, jemalloc,
//!   mimalloc) and counts live and peak heap bytes, bytes allocated and freed, and calls,
//!   in per-thread counter slots folded on read ([`stats`]); see [`tracking`] for the
//!   staleness bounds.
//! - [`MemorySource`] implementations, each returning [`MemoryError::NotAvailable`] where the
//!   platform lacks them: [`HeapSource`] (the tracking allocator), [`RssSource`]
//!   (`/proc/self/statm`), [`CgroupSource`] (cgroup v2 `memory.current`/`high`/`max`, v1
//!   fallback), [`SystemMemorySource`] (`/proc/meminfo`), and [`ManualSource`] for tests.
//!
//! ```
//! use perfkit_alloc::{MemorySource, ManualSource, RssSource, SystemMemorySource};
//!
//! // Every source answers the same question; on Linux these two are available.
//! if cfg!(target_os = "linux") {
//!     let rss = RssSource::new().read().unwrap();
//!     assert!(rss.used_bytes > 0);
//!     let system = SystemMemorySource::new().read().unwrap();
//!     assert!(system.limit_bytes.unwrap() >= system.used_bytes);
//! }
//!
//! let manual = ManualSource::new("manual");
//! manual.set(42);
//! assert_eq!(manual.read().unwrap().used_bytes, 42);
//! ```

pub mod sources;
pub mod tracking;

pub use sources::{
    CgroupMemory, CgroupSource, CgroupVersion, HeapSource, ManualSource, MemInfo, RssSource,
    SystemMemorySource,
};
pub use tracking::{AllocStats, TrackingAllocator, is_installed, stats};

use std::fmt;

/// Why a memory source could not give a reading.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MemoryError {
    /// The platform or environment does not offer this source (no `/proc`, no cgroup, the
    /// tracking allocator is not installed).
    #[error("{source_name} is not available: {reason}")]
    NotAvailable {
        /// The source's name.
        source_name: &'static str,
        /// Why.
        reason: String,
    },
    /// Reading the source failed.
    #[error("reading {path}")]
    Io {
        /// The file that was read.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The source's contents could not be parsed.
    #[error("parsing {path}: {reason}")]
    Parse {
        /// The file that was parsed.
        path: String,
        /// What was wrong.
        reason: String,
    },
}

/// One reading of a memory source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MemoryReading {
    /// Bytes in use, as the source counts them.
    pub used_bytes: u64,
    /// The limit the source knows of, if any (a cgroup's `memory.max`, the system total).
    pub limit_bytes: Option<u64>,
}

/// Something that can say how much memory is in use: the tracking allocator's live heap,
/// process RSS, a cgroup, the whole system.
///
/// Implementations must be cheap enough to call from a background sampler several times a
/// second, and must return [`MemoryError::NotAvailable`] rather than a wrong number where the
/// platform lacks the source.
pub trait MemorySource: Send + Sync + fmt::Debug {
    /// A short stable name (`heap`, `rss`, `cgroup`, `system`).
    fn name(&self) -> &'static str;

    /// Reads the current usage.
    fn read(&self) -> Result<MemoryReading, MemoryError>;
}

impl<S: MemorySource + ?Sized> MemorySource for std::sync::Arc<S> {
    fn name(&self) -> &'static str {
        (**self).name()
    }

    fn read(&self) -> Result<MemoryReading, MemoryError> {
        (**self).read()
    }
}

impl<S: MemorySource + ?Sized> MemorySource for Box<S> {
    fn name(&self) -> &'static str {
        (**self).name()
    }

    fn read(&self) -> Result<MemoryReading, MemoryError> {
        (**self).read()
    }
}
