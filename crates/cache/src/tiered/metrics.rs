//! Per-tier metrics: counters, a lookup latency histogram (HdrHistogram, p50/p99), a
//! serializable snapshot, and Prometheus text exposition.
//!
//! Counters are relaxed atomics; the histogram is striped over a few mutexes picked by
//! thread, so concurrent lookups rarely share a lock.

use super::tier::{BreakerState, TierKind, TierUsage};
use hdrhistogram::Histogram;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

const STRIPES: usize = 8;

/// A latency histogram in nanoseconds (1 ns .. 60 s, 2 significant digits), striped.
#[derive(Debug)]
pub(crate) struct LatencyHistogram {
    stripes: Vec<Mutex<Histogram<u64>>>,
}

fn stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static MINE: usize = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
    }
    MINE.with(|m| *m)
}

impl LatencyHistogram {
    pub(crate) fn new() -> Self {
        LatencyHistogram {
            stripes: (0..STRIPES).map(|_| Mutex::new(new_histogram())).collect(),
        }
    }

    pub(crate) fn record(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1);
        let _ = self.stripes[stripe()].lock().record(ns.min(MAX_NS));
    }

    /// (count, p50, p99, mean) in nanoseconds.
    pub(crate) fn summary(&self) -> (u64, u64, u64, f64) {
        let mut all = new_histogram();
        for s in &self.stripes {
            let _ = all.add(&*s.lock());
        }
        if all.is_empty() {
            return (0, 0, 0, 0.0);
        }
        (
            all.len(),
            all.value_at_quantile(0.5),
            all.value_at_quantile(0.99),
            all.mean(),
        )
    }
}

const MAX_NS: u64 = 60_000_000_000;

fn new_histogram() -> Histogram<u64> {
    // Constant, valid bounds: this cannot fail.
    Histogram::new_with_bounds(1, MAX_NS, 2).expect("valid histogram bounds")
}

/// The live counters of one tier as seen by the tiered cache.
#[derive(Debug)]
pub(crate) struct TierMetrics {
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) skipped: AtomicU64,
    pub(crate) promotions: AtomicU64,
    pub(crate) writes: AtomicU64,
    pub(crate) latency: LatencyHistogram,
}

impl TierMetrics {
    pub(crate) fn new() -> Self {
        TierMetrics {
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            promotions: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            latency: LatencyHistogram::new(),
        }
    }
}

/// One tier's metrics at a point in time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TierSnapshot {
    /// The tier's name.
    pub name: String,
    /// Its kind.
    pub kind: TierKind,
    /// Lookups that found the key.
    pub hits: u64,
    /// Lookups that did not (errors and skips included).
    pub misses: u64,
    /// hits / (hits + misses), 0 without lookups.
    pub hit_ratio: f64,
    /// Lookups or writes that failed (timeouts, corrupt entries, store errors).
    pub errors: u64,
    /// Lookups skipped because the breaker was open.
    pub skipped: u64,
    /// Values copied into this tier from a lower tier.
    pub promotions: u64,
    /// Writes into this tier (loads written through and promotions).
    pub writes: u64,
    /// Entries evicted for capacity.
    pub evictions: u64,
    /// Entries stored.
    pub entries: u64,
    /// Bytes stored.
    pub bytes: u64,
    /// Capacity, in the tier's unit (entries for memory, bytes for disk).
    pub capacity: u64,
    /// Corrupt entries dropped.
    pub corrupt: u64,
    /// Entries found expired when read.
    pub expired: u64,
    /// The circuit breaker.
    pub breaker: BreakerState,
    /// Times the breaker opened.
    pub breaker_opens: u64,
    /// Lookup latency, median, nanoseconds.
    pub latency_p50_ns: u64,
    /// Lookup latency, 99th percentile, nanoseconds.
    pub latency_p99_ns: u64,
    /// Lookup latency, mean, nanoseconds.
    pub latency_mean_ns: f64,
}

impl TierSnapshot {
    pub(crate) fn build(
        name: &str,
        kind: TierKind,
        m: &TierMetrics,
        usage: TierUsage,
        breaker: BreakerState,
        breaker_opens: u64,
    ) -> Self {
        let hits = m.hits.load(Ordering::Relaxed);
        let misses = m.misses.load(Ordering::Relaxed);
        let (_, p50, p99, mean) = m.latency.summary();
        TierSnapshot {
            name: name.to_owned(),
            kind,
            hits,
            misses,
            hit_ratio: ratio(hits, hits + misses),
            errors: m.errors.load(Ordering::Relaxed),
            skipped: m.skipped.load(Ordering::Relaxed),
            promotions: m.promotions.load(Ordering::Relaxed),
            writes: m.writes.load(Ordering::Relaxed),
            evictions: usage.evictions,
            entries: usage.entries,
            bytes: usage.bytes,
            capacity: usage.capacity,
            corrupt: usage.corrupt,
            expired: usage.expired,
            breaker,
            breaker_opens,
            latency_p50_ns: p50,
            latency_p99_ns: p99,
            latency_mean_ns: mean,
        }
    }
}

pub(crate) fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

/// The whole cache's metrics at a point in time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheSnapshot {
    /// Reads (`get` and `get_with`).
    pub requests: u64,
    /// Reads answered by some tier.
    pub hits: u64,
    /// hits / requests.
    pub hit_ratio: f64,
    /// Loader runs.
    pub loads: u64,
    /// Loader runs that failed.
    pub load_errors: u64,
    /// Reads that waited for another caller's load of the same key (single flight).
    pub coalesced: u64,
    /// Loader latency, median, nanoseconds.
    pub load_p50_ns: u64,
    /// Loader latency, 99th percentile, nanoseconds.
    pub load_p99_ns: u64,
    /// Keys invalidated.
    pub invalidations: u64,
    /// Loads not cached because an invalidation happened while they ran.
    pub stale_loads: u64,
    /// Per tier, top first.
    pub tiers: Vec<TierSnapshot>,
}

impl CacheSnapshot {
    /// The snapshot in Prometheus text exposition format. Metric names are prefixed with
    /// `prefix` (`perfkit_cache` by default in [`TieredCache::prometheus`](super::TieredCache::prometheus)),
    /// tiers are a `tier` label.
    pub fn to_prometheus(&self, prefix: &str) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP {prefix}_{name} {help}");
            let _ = writeln!(out, "# TYPE {prefix}_{name} counter");
            let _ = writeln!(out, "{prefix}_{name} {value}");
        };
        counter("requests_total", "Cache reads.", self.requests);
        counter("hits_total", "Cache reads answered by a tier.", self.hits);
        counter("loads_total", "Loader runs.", self.loads);
        counter(
            "load_errors_total",
            "Loader runs that failed.",
            self.load_errors,
        );
        counter(
            "coalesced_total",
            "Reads that waited for another caller's load.",
            self.coalesced,
        );
        counter(
            "invalidations_total",
            "Keys invalidated.",
            self.invalidations,
        );
        type Field = fn(&TierSnapshot) -> f64;
        let per_tier: [(&str, &str, &str, Field); 14] = [
            (
                "tier_hits_total",
                "counter",
                "Lookups that found the key.",
                |t| t.hits as f64,
            ),
            (
                "tier_misses_total",
                "counter",
                "Lookups that did not find the key.",
                |t| t.misses as f64,
            ),
            (
                "tier_errors_total",
                "counter",
                "Failed tier operations.",
                |t| t.errors as f64,
            ),
            (
                "tier_skipped_total",
                "counter",
                "Lookups skipped by an open breaker.",
                |t| t.skipped as f64,
            ),
            (
                "tier_promotions_total",
                "counter",
                "Values promoted into the tier.",
                |t| t.promotions as f64,
            ),
            (
                "tier_evictions_total",
                "counter",
                "Entries evicted for capacity.",
                |t| t.evictions as f64,
            ),
            (
                "tier_corrupt_total",
                "counter",
                "Corrupt entries dropped.",
                |t| t.corrupt as f64,
            ),
            (
                "tier_expired_total",
                "counter",
                "Entries found expired.",
                |t| t.expired as f64,
            ),
            ("tier_entries", "gauge", "Entries stored.", |t| {
                t.entries as f64
            }),
            ("tier_bytes", "gauge", "Bytes stored.", |t| t.bytes as f64),
            ("tier_hit_ratio", "gauge", "Hits over lookups.", |t| {
                t.hit_ratio
            }),
            (
                "tier_breaker_open",
                "gauge",
                "1 when the breaker is open or probing.",
                |t| f64::from(u8::from(t.breaker != BreakerState::Closed)),
            ),
            (
                "tier_lookup_p50_seconds",
                "gauge",
                "Median lookup latency.",
                |t| t.latency_p50_ns as f64 / 1e9,
            ),
            (
                "tier_lookup_p99_seconds",
                "gauge",
                "99th percentile lookup latency.",
                |t| t.latency_p99_ns as f64 / 1e9,
            ),
        ];
        for (name, kind, help, field) in per_tier {
            let _ = writeln!(out, "# HELP {prefix}_{name} {help}");
            let _ = writeln!(out, "# TYPE {prefix}_{name} {kind}");
            for t in &self.tiers {
                let _ = writeln!(
                    out,
                    "{prefix}_{name}{{tier=\"{}\"}} {}",
                    escape_label(&t.name),
                    field(t)
                );
            }
        }
        out
    }
}

fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_percentiles() {
        let h = LatencyHistogram::new();
        for i in 1..=100u64 {
            h.record(Duration::from_micros(i));
        }
        let (n, p50, p99, _) = h.summary();
        assert_eq!(n, 100);
        assert!((49_000..=51_000).contains(&p50), "{p50}");
        assert!((98_000..=100_500).contains(&p99), "{p99}");
    }
}
