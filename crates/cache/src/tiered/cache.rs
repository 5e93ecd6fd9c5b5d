//! [`TieredCache`]: the read path over an ordered list of tiers, single-flight loading,
//! promotion, write-through, invalidation and TTL.

use super::metrics::{CacheSnapshot, LatencyHistogram, TierMetrics, TierSnapshot, ratio};
use super::tier::{Hit, Tier, TierError};
use super::trace::AccessTrace;
use parking_lot::Mutex;
use perfkit_core::{SharedClock, SystemClock};
use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A loader's error, shared by every caller that waited for the same load.
pub type LoadError = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// Errors of the tiered cache.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TieredError {
    /// The loader failed (every caller waiting for that load gets the same error).
    #[error("loading the value failed: {0}")]
    Load(LoadError),
    /// The builder was given no tier.
    #[error("a tiered cache needs at least one tier")]
    NoTier,
    /// An option is out of range.
    #[error("invalid option: {0}")]
    Invalid(String),
    /// No tier has that name.
    #[error("no tier named {0:?}")]
    UnknownTier(String),
    /// The tier cannot change its eviction policy.
    #[error("tier {0:?} has no adjustable eviction policy")]
    NotTunable(String),
}

pub(crate) struct Slot<K, V> {
    pub(crate) tier: Arc<dyn Tier<K, V>>,
    pub(crate) metrics: TierMetrics,
    /// Whether hits in lower tiers are copied into this one.
    pub(crate) promote_into: bool,
}

type Flight<V> = Arc<tokio::sync::OnceCell<Result<V, LoadError>>>;

pub(crate) struct Shared<K, V> {
    pub(crate) slots: Vec<Slot<K, V>>,
    pub(crate) default_ttl: Option<Duration>,
    write_behind: bool,
    pub(crate) clock: SharedClock,
    inflight: Mutex<HashMap<K, Flight<V>>>,
    pub(crate) trace: AccessTrace,
    pub(crate) hasher: std::hash::RandomState,
    requests: AtomicU64,
    hits: AtomicU64,
    loads: AtomicU64,
    load_errors: AtomicU64,
    coalesced: AtomicU64,
    invalidations: AtomicU64,
    stale_loads: AtomicU64,
    pub(crate) load_latency: LatencyHistogram,
}

/// A cache over an ordered list of tiers (fastest first): memory, disk, Redis, or your own
/// [`Tier`]s.
///
/// - Reads go tier by tier; a hit in a lower tier is promoted into the tiers above it
///   (unless disabled per tier), with the time it has left to live.
/// - [`get_with`](Self::get_with) runs the loader on a miss of every tier, once per key
///   however many callers ask at the same time (single flight), and writes the value
///   through to every tier.
/// - A failing or slow tier is a miss of that tier (counted), never an error of the read.
/// - [`invalidate`](Self::invalidate) removes a key from every tier.
///
/// Cheap to clone (an `Arc` inside), `Send + Sync`.
pub struct TieredCache<K, V> {
    pub(crate) shared: Arc<Shared<K, V>>,
}

impl<K, V> Clone for TieredCache<K, V> {
    fn clone(&self) -> Self {
        TieredCache {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<K: 'static, V: 'static> std::fmt::Debug for TieredCache<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.shared.slots.iter().map(|s| s.tier.name()).collect();
        f.debug_struct("TieredCache")
            .field("tiers", &names)
            .finish()
    }
}

/// Builds a [`TieredCache`].
pub struct TieredCacheBuilder<K, V> {
    tiers: Vec<(Arc<dyn Tier<K, V>>, bool)>,
    default_ttl: Option<Duration>,
    promotion: bool,
    write_behind: bool,
    sample_rate: f64,
    trace_capacity: usize,
    clock: SharedClock,
}

impl<K, V> TieredCacheBuilder<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Appends a tier below the ones added so far.
    pub fn tier(mut self, tier: impl Tier<K, V>) -> Self {
        self.tiers.push((Arc::new(tier), true));
        self
    }

    /// Appends a tier that lower-tier hits are not promoted into.
    pub fn tier_without_promotion(mut self, tier: impl Tier<K, V>) -> Self {
        self.tiers.push((Arc::new(tier), false));
        self
    }

    /// The time to live of values written without an explicit one (default: none).
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = Some(ttl);
        self
    }

    /// Write-behind: loads and inserts are written to the top tier before returning, and to
    /// the lower tiers by a background task (default: off, write-through, every tier
    /// written before returning). Needs a tokio runtime; without one, writes go through.
    pub fn write_behind(mut self, on: bool) -> Self {
        self.write_behind = on;
        self
    }

    /// Whether lower-tier hits are promoted into upper tiers at all (default: yes).
    pub fn promotion(mut self, on: bool) -> Self {
        self.promotion = on;
        self
    }

    /// The fraction of keys (chosen by key hash) whose accesses are recorded for the
    /// recommendations and online tuning (default 0.1; 1.0 records every access).
    pub fn sample_rate(mut self, rate: f64) -> Self {
        self.sample_rate = rate;
        self
    }

    /// How many sampled accesses are kept (the most recent; default 100,000).
    pub fn trace_capacity(mut self, n: usize) -> Self {
        self.trace_capacity = n;
        self
    }

    /// The clock (tests use a manual clock).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Builds the cache.
    pub fn build(self) -> Result<TieredCache<K, V>, TieredError> {
        if self.tiers.is_empty() {
            return Err(TieredError::NoTier);
        }
        if !(self.sample_rate > 0.0 && self.sample_rate <= 1.0) {
            return Err(TieredError::Invalid(format!(
                "sample rate must be in (0, 1], got {}",
                self.sample_rate
            )));
        }
        let slots = self
            .tiers
            .into_iter()
            .map(|(tier, promote)| Slot {
                tier,
                metrics: TierMetrics::new(),
                promote_into: promote && self.promotion,
            })
            .collect();
        Ok(TieredCache {
            shared: Arc::new(Shared {
                slots,
                default_ttl: self.default_ttl,
                write_behind: self.write_behind,
                clock: self.clock,
                inflight: Mutex::new(HashMap::new()),
                trace: AccessTrace::new(self.sample_rate, self.trace_capacity.max(1)),
                hasher: std::hash::RandomState::new(),
                requests: AtomicU64::new(0),
                hits: AtomicU64::new(0),
                loads: AtomicU64::new(0),
                load_errors: AtomicU64::new(0),
                coalesced: AtomicU64::new(0),
                invalidations: AtomicU64::new(0),
                stale_loads: AtomicU64::new(0),
                load_latency: LatencyHistogram::new(),
            }),
        })
    }
}

impl<K, V> TieredCache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// A builder with no tiers yet.
    pub fn builder() -> TieredCacheBuilder<K, V> {
        TieredCacheBuilder {
            tiers: Vec::new(),
            default_ttl: None,
            promotion: true,
            write_behind: false,
            sample_rate: 0.1,
            trace_capacity: 100_000,
            clock: SystemClock::shared(),
        }
    }

    /// Looks `key` up tier by tier (promoting a lower-tier hit). `None` when no tier has it.
    pub async fn get(&self, key: &K) -> Option<V> {
        self.shared.requests.fetch_add(1, Ordering::Relaxed);
        let found = self.lookup(key).await;
        self.record_access(key, found.as_ref().map(|(i, _)| *i));
        found.map(|(_, v)| v)
    }

    async fn lookup(&self, key: &K) -> Option<(usize, V)> {
        for (i, slot) in self.shared.slots.iter().enumerate() {
            let start = self.shared.clock.now();
            let result = match slot.tier.try_get_sync(key) {
                Some(answer) => Ok(answer),
                None => slot.tier.get(key).await,
            };
            let m = &slot.metrics;
            match result {
                Ok(Some(hit)) => {
                    m.latency.record(self.shared.clock.now() - start);
                    m.hits.fetch_add(1, Ordering::Relaxed);
                    self.shared.hits.fetch_add(1, Ordering::Relaxed);
                    self.promote(i, key, &hit).await;
                    return Some((i, hit.value));
                }
                Ok(None) => {
                    m.latency.record(self.shared.clock.now() - start);
                    m.misses.fetch_add(1, Ordering::Relaxed);
                }
                Err(TierError::CircuitOpen) => {
                    m.skipped.fetch_add(1, Ordering::Relaxed);
                    m.misses.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => {
                    m.latency.record(self.shared.clock.now() - start);
                    m.errors.fetch_add(1, Ordering::Relaxed);
                    m.misses.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        None
    }

    async fn promote(&self, found_at: usize, key: &K, hit: &Hit<V>) {
        for slot in self.shared.slots[..found_at]
            .iter()
            .filter(|s| s.promote_into)
        {
            slot.metrics.promotions.fetch_add(1, Ordering::Relaxed);
            self.write_slot(slot, key, &hit.value, hit.ttl_left).await;
        }
    }

    async fn write_slot(&self, slot: &Slot<K, V>, key: &K, value: &V, ttl: Option<Duration>) {
        slot.metrics.writes.fetch_add(1, Ordering::Relaxed);
        if slot.tier.put(key, value, ttl).await.is_err() {
            slot.metrics.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn record_access(&self, key: &K, served_by: Option<usize>) {
        let h = self.shared.hasher.hash_one(key);
        self.shared.trace.record(h, served_by);
    }

    /// Reads `key`, running `loader` when no tier has it, once per key across concurrent
    /// callers; the loaded value is written through to every tier with the default TTL.
    pub async fn get_with<F, Fut, E>(&self, key: &K, loader: F) -> Result<V, TieredError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
        E: Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    {
        self.get_with_ttl(key, self.shared.default_ttl, loader)
            .await
    }

    /// Like [`get_with`](Self::get_with), writing the loaded value with `ttl`.
    pub async fn get_with_ttl<F, Fut, E>(
        &self,
        key: &K,
        ttl: Option<Duration>,
        loader: F,
    ) -> Result<V, TieredError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
        E: Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    {
        self.shared.requests.fetch_add(1, Ordering::Relaxed);
        if let Some((i, v)) = self.lookup(key).await {
            self.record_access(key, Some(i));
            return Ok(v);
        }
        self.record_access(key, None);
        let flight = {
            let mut inflight = self.shared.inflight.lock();
            Arc::clone(inflight.entry(key.clone()).or_default())
        };
        let mut ran = false;
        let result = flight
            .get_or_init(|| {
                ran = true;
                async {
                    self.shared.loads.fetch_add(1, Ordering::Relaxed);
                    // An invalidation during the load may have made the value stale: it is
                    // still returned to the callers waiting for it, but not cached.
                    let epoch = self.shared.invalidations.load(Ordering::Acquire);
                    let start = self.shared.clock.now();
                    let loaded = loader().await;
                    self.shared
                        .load_latency
                        .record(self.shared.clock.now() - start);
                    match loaded {
                        Ok(v) => {
                            if self.shared.invalidations.load(Ordering::Acquire) == epoch {
                                self.write_all(key, &v, ttl).await;
                            } else {
                                self.shared.stale_loads.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(v)
                        }
                        Err(e) => {
                            self.shared.load_errors.fetch_add(1, Ordering::Relaxed);
                            let e: Box<dyn std::error::Error + Send + Sync> = e.into();
                            Err(LoadError::from(e))
                        }
                    }
                }
            })
            .await
            .clone();
        if !ran {
            self.shared.coalesced.fetch_add(1, Ordering::Relaxed);
        }
        {
            let mut inflight = self.shared.inflight.lock();
            if inflight.get(key).is_some_and(|f| Arc::ptr_eq(f, &flight)) {
                inflight.remove(key);
            }
        }
        result.map_err(TieredError::Load)
    }

    async fn write_all(&self, key: &K, value: &V, ttl: Option<Duration>) {
        let background = self.shared.write_behind
            && self.shared.slots.len() > 1
            && tokio::runtime::Handle::try_current().is_ok();
        if !background {
            for slot in &self.shared.slots {
                self.write_slot(slot, key, value, ttl).await;
            }
            return;
        }
        self.write_slot(&self.shared.slots[0], key, value, ttl)
            .await;
        let (this, key, value) = (self.clone(), key.clone(), value.clone());
        tokio::spawn(async move {
            for slot in &this.shared.slots[1..] {
                this.write_slot(slot, &key, &value, ttl).await;
            }
        });
    }

    /// Writes `value` to every tier with the default TTL.
    pub async fn insert(&self, key: K, value: V) {
        self.write_all(&key, &value, self.shared.default_ttl).await;
    }

    /// Writes `value` to every tier, expiring after `ttl`.
    pub async fn insert_with_ttl(&self, key: K, value: V, ttl: Duration) {
        self.write_all(&key, &value, Some(ttl)).await;
    }

    /// Removes `key` from every tier (a tier that fails is counted as an error).
    ///
    /// A load of any key in flight at that moment still answers its callers but is not
    /// written to the tiers (it may predate the change that caused the invalidation), and
    /// later callers of `key` start a new load.
    pub async fn invalidate(&self, key: &K) {
        self.shared.invalidations.fetch_add(1, Ordering::AcqRel);
        self.shared.inflight.lock().remove(key);
        for slot in &self.shared.slots {
            if slot.tier.remove(key).await.is_err() {
                slot.metrics.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Evicts about `fraction` of the entries of every memory tier (for memory pressure:
    /// call it from a memory budget's cleanup hook). Returns how many were evicted.
    pub fn shrink_memory(&self, fraction: f64) -> u64 {
        self.shared
            .slots
            .iter()
            .map(|s| s.tier.shrink(fraction))
            .sum()
    }

    /// The tiers' names, top first.
    pub fn tier_names(&self) -> Vec<String> {
        self.shared
            .slots
            .iter()
            .map(|s| s.tier.name().to_owned())
            .collect()
    }

    /// A snapshot of every metric.
    pub fn metrics(&self) -> CacheSnapshot {
        let s = &self.shared;
        let requests = s.requests.load(Ordering::Relaxed);
        let hits = s.hits.load(Ordering::Relaxed);
        let (_, load_p50, load_p99, _) = s.load_latency.summary();
        CacheSnapshot {
            requests,
            hits,
            hit_ratio: ratio(hits, requests),
            loads: s.loads.load(Ordering::Relaxed),
            load_errors: s.load_errors.load(Ordering::Relaxed),
            coalesced: s.coalesced.load(Ordering::Relaxed),
            load_p50_ns: load_p50,
            load_p99_ns: load_p99,
            invalidations: s.invalidations.load(Ordering::Relaxed),
            stale_loads: s.stale_loads.load(Ordering::Relaxed),
            tiers: s
                .slots
                .iter()
                .map(|slot| {
                    TierSnapshot::build(
                        slot.tier.name(),
                        slot.tier.kind(),
                        &slot.metrics,
                        slot.tier.usage(),
                        slot.tier.breaker(),
                        slot.tier.breaker_opens(),
                    )
                })
                .collect(),
        }
    }

    /// The metrics in Prometheus text format, names prefixed `perfkit_cache_`.
    pub fn prometheus(&self) -> String {
        self.metrics().to_prometheus("perfkit_cache")
    }
}
