//! Snapshots of a lazy resource: its [`LoadState`], [`LazyMetrics`] and [`LazyEvent`]s.

use serde::{Serialize, Serializer};
use std::time::Duration;

/// What started a load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadTrigger {
    /// A `get` found the resource not loaded.
    FirstUse,
    /// A preload (a strategy or an explicit `preload`).
    Preload,
}

/// The state of a lazy resource, as a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LoadState {
    /// Never loaded (or unloaded).
    NotLoaded,
    /// A load is running.
    Loading {
        /// The attempt under way or next (1-based).
        attempt: u32,
        /// Since when the load runs.
        #[serde(rename = "elapsed_secs", serialize_with = "secs")]
        elapsed: Duration,
        /// When the previous attempt failed: time until the next attempt.
        #[serde(rename = "next_retry_in_secs", serialize_with = "opt_secs")]
        next_retry_in: Option<Duration>,
        /// What started the load.
        trigger: LoadTrigger,
    },
    /// Loaded.
    Loaded {
        /// How long the load took, retries included.
        #[serde(rename = "load_time_secs", serialize_with = "secs")]
        load_time: Duration,
        /// Attempts the load needed.
        attempts: u32,
        /// What started the load.
        trigger: LoadTrigger,
    },
    /// The last load failed.
    Failed {
        /// The error, with its cause.
        error: String,
        /// Attempts the failed load made.
        attempts: u32,
        /// Time until a `get` or a preload starts a new load (zero: the next one does).
        #[serde(rename = "next_retry_in_secs", serialize_with = "secs")]
        next_retry_in: Duration,
    },
}

impl LoadState {
    /// The state's name: `not_loaded`, `loading`, `loaded` or `failed`.
    pub fn name(&self) -> &'static str {
        match self {
            LoadState::NotLoaded => "not_loaded",
            LoadState::Loading { .. } => "loading",
            LoadState::Loaded { .. } => "loaded",
            LoadState::Failed { .. } => "failed",
        }
    }
}

pub(crate) fn secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

pub(crate) fn opt_secs<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_f64(d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

/// What happened to a lazy resource, for callbacks ([`crate::Lazy::on_event`],
/// [`crate::LazyRegistry::on_event`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum LazyEvent {
    /// A load succeeded.
    Loaded {
        /// The resource.
        name: String,
        /// How long it took, retries included.
        #[serde(rename = "load_time_secs", serialize_with = "secs")]
        load_time: Duration,
        /// Attempts it needed.
        attempts: u32,
        /// The weigher's size, if any.
        size_bytes: Option<u64>,
    },
    /// An attempt failed and will be retried.
    Retrying {
        /// The resource.
        name: String,
        /// The failed attempt (1-based).
        attempt: u32,
        /// Its error.
        error: String,
        /// The delay before the next attempt.
        #[serde(rename = "delay_secs", serialize_with = "secs")]
        delay: Duration,
    },
    /// A load failed after all its attempts.
    Failed {
        /// The resource.
        name: String,
        /// The error, with its cause.
        error: String,
    },
    /// A registry unloaded the resource.
    Unloaded {
        /// The resource.
        name: String,
        /// The weigher's size of what was unloaded (0 without a weigher).
        size_bytes: u64,
    },
}

/// Counters of a lazy resource, kept across unloads.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LazyMetrics {
    /// Loads started.
    pub loads_started: u64,
    /// Loads that succeeded.
    pub loads_succeeded: u64,
    /// Loads that failed after all their attempts.
    pub loads_failed: u64,
    /// Attempts made (first attempts and retries).
    pub attempts: u64,
    /// Attempts that failed (errors and timeouts).
    pub failed_attempts: u64,
    /// Attempts abandoned at the per-attempt timeout.
    pub timeouts: u64,
    /// Duration of the last successful load, retries included.
    #[serde(rename = "last_load_time_secs", serialize_with = "opt_secs")]
    pub last_load_time: Option<Duration>,
    /// Size of the loaded value according to the weigher, if one is set and a load succeeded.
    pub size_bytes: Option<u64>,
    /// Times the value was unloaded.
    pub unloads: u64,
}
