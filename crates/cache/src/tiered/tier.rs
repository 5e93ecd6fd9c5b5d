//! The one trait every tier implements, and what tiers report about themselves.

use super::codec::CodecError;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// The future a tier operation returns (boxed, so tiers can live in one list as trait objects).
pub type TierFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, TierError>> + Send + 'a>>;

/// Why a tier operation failed. The tiered cache treats a failed read as a miss of that tier
/// (and counts it); it never fails a read because one tier did.
#[derive(Debug, thiserror::Error)]
pub enum TierError {
    /// The operation did not finish within the tier's timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The tier's circuit breaker is open: the tier is skipped until a probe succeeds.
    #[error("circuit open: the tier is skipped until it recovers")]
    CircuitOpen,
    /// A stored entry failed its checksum or could not be decoded; it was dropped.
    #[error("corrupt entry dropped: {0}")]
    Corrupt(CodecError),
    /// A key or value could not be serialized.
    #[error("encoding: {0}")]
    Encode(CodecError),
    /// The embedded store failed.
    #[error("disk store: {0}")]
    Disk(String),
    /// The remote store failed.
    #[error("remote store: {0}")]
    Remote(String),
    /// A background task failed (panicked or was cancelled).
    #[error("background task: {0}")]
    Task(String),
}

/// What kind of storage a tier is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TierKind {
    /// In-process memory.
    Memory,
    /// An embedded store on local disk.
    Disk,
    /// A shared remote store (Redis).
    Remote,
    /// Anything else a user plugs in.
    Other,
}

/// A value found in a tier, with the time it has left to live.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit<V> {
    /// The value.
    pub value: V,
    /// Time left before it expires (`None`: no expiry). Promotion carries it upwards, so a
    /// promoted copy never outlives the original.
    pub ttl_left: Option<Duration>,
}

/// A tier's size and housekeeping counters, read without blocking.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierUsage {
    /// Entries stored (best known; a remote tier may not know).
    pub entries: u64,
    /// Bytes stored (memory tiers: 0 unless a weigher gives bytes).
    pub bytes: u64,
    /// The configured capacity, in the tier's own unit (entries or bytes).
    pub capacity: u64,
    /// Entries evicted to respect the capacity.
    pub evictions: u64,
    /// Entries dropped because their checksum or decoding failed.
    pub corrupt: u64,
    /// Entries found expired (and dropped) when read.
    pub expired: u64,
}

/// A tier's circuit breaker as seen from outside.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Requests flow (also: the tier has no breaker).
    #[default]
    Closed,
    /// Requests skip the tier until the next probe.
    Open,
    /// One probe request is being let through.
    HalfOpen,
}

/// One level of a [`TieredCache`](super::TieredCache): memory, disk, Redis or your own.
///
/// Implementations must be cheap to call concurrently (`&self` everywhere) and must bound
/// the time any call can take (a remote tier applies its own timeouts).
pub trait Tier<K, V>: Send + Sync + 'static {
    /// A short name used in metrics (`l1`, `disk`, `redis`).
    fn name(&self) -> &str;

    /// The kind of storage.
    fn kind(&self) -> TierKind;

    /// Looks `key` up. An expired entry is a miss (and is dropped).
    fn get<'a>(&'a self, key: &'a K) -> TierFuture<'a, Option<Hit<V>>>;

    /// Stores `value` under `key`, expiring after `ttl` when given.
    fn put<'a>(&'a self, key: &'a K, value: &'a V, ttl: Option<Duration>) -> TierFuture<'a, ()>;

    /// A synchronous lookup for tiers that can answer without waiting (memory): `Some` with
    /// the answer, or `None` when the tier needs [`get`](Self::get). Lets the tiered cache
    /// read its top tier without boxing a future.
    fn try_get_sync(&self, _key: &K) -> Option<Option<Hit<V>>> {
        None
    }

    /// Removes `key` (no error when absent).
    fn remove<'a>(&'a self, key: &'a K) -> TierFuture<'a, ()>;

    /// Size and housekeeping counters.
    fn usage(&self) -> TierUsage;

    /// The state of the tier's circuit breaker (`Closed` when it has none).
    fn breaker(&self) -> BreakerState {
        BreakerState::Closed
    }

    /// How many times the breaker opened.
    fn breaker_opens(&self) -> u64 {
        0
    }

    /// Evicts about `fraction` (0..=1) of the tier's entries to give memory back; returns
    /// how many it evicted. Tiers that hold no process memory do nothing.
    fn shrink(&self, _fraction: f64) -> u64 {
        0
    }

    /// The tier's eviction policy control, for tiers whose policy can be changed online.
    fn policy_control(&self) -> Option<&dyn PolicyControl> {
        None
    }
}

/// Online control of a tier's eviction policy (implemented by the memory tier).
pub trait PolicyControl: Send + Sync {
    /// The policy in use, by its CLI name (`lru`, `wtinylfu`, ...).
    fn policy_name(&self) -> String;

    /// The capacity, in entries.
    fn capacity_entries(&self) -> u64;

    /// Switches to the policy named `name`; entries are kept where the new policy admits
    /// them. Returns `false` when the name is unknown.
    fn switch_policy(&self, name: &str) -> bool;

    /// The policy names this tier can switch to.
    fn available_policies(&self) -> Vec<String>;
}
