//! The errors of perfkit-leak.

use perfkit_alloc::MemoryError;

/// Why a leak-detection operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LeakError {
    /// The memory source could not be read.
    #[error("reading the {source_name} memory source")]
    Source {
        /// The source's name.
        source_name: &'static str,
        /// The source's error.
        #[source]
        source: MemoryError,
    },
    /// Too few snapshots to compute a trend.
    #[error("not enough data: {points} snapshots, at least {needed} are needed")]
    NotEnoughData {
        /// Snapshots in the window.
        points: usize,
        /// Snapshots needed.
        needed: usize,
    },
    /// A builder option is invalid.
    #[error("invalid leak detector configuration: {0}")]
    Config(String),
    /// The background sampler could not be started.
    #[error("starting the background sampler")]
    Spawn(#[source] std::io::Error),
    /// A process could not be read or signalled.
    #[error("process {pid}: {reason}")]
    Process {
        /// The process id.
        pid: u32,
        /// What went wrong.
        reason: String,
    },
}
