//! Duration histograms: HDR histograms of nanoseconds with a documented, stable
//! serialized form (sparse `[value_ns, count]` pairs).

use hdrhistogram::Histogram;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Highest trackable duration: one hour, in nanoseconds. Longer spans are clamped.
pub(crate) const HIGHEST_NS: u64 = 3_600_000_000_000;
/// The largest total count a histogram holds; more is dropped.
pub(crate) const MAX_TOTAL: u64 = 1 << 56;
/// Significant decimal digits kept (relative error at most 1 %).
pub(crate) const SIGFIG: u8 = 2;

/// A histogram of span durations in nanoseconds (HDR, 2 significant digits, 1 ns to 1 h).
///
/// Serialized as `{"sigfig": 2, "buckets": [[value_ns, count], ...]}` where each `value_ns`
/// is the highest value equivalent to its bucket, in ascending order.
#[derive(Clone)]
pub struct DurationHistogram {
    inner: Histogram<u64>,
}

impl std::fmt::Debug for DurationHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurationHistogram")
            .field("count", &self.count())
            .field("p50_ns", &self.quantile(0.5))
            .field("max_ns", &self.max())
            .finish()
    }
}

impl Default for DurationHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl DurationHistogram {
    /// An empty histogram.
    pub fn new() -> Self {
        #[allow(clippy::expect_used)] // constant bounds, checked by the tests
        let inner = Histogram::new_with_bounds(1, HIGHEST_NS, SIGFIG)
            .expect("constant histogram bounds are valid");
        DurationHistogram { inner }
    }

    /// Records one duration in nanoseconds (clamped to 1 ns ..= 1 h).
    pub fn record(&mut self, ns: u64) {
        self.record_n(ns, 1);
    }

    /// Records `n` durations of `ns` nanoseconds. The total count saturates at 2^56 (the
    /// quantile arithmetic must not overflow on counts read from a hostile file).
    pub fn record_n(&mut self, ns: u64, n: u64) {
        let v = ns.clamp(1, HIGHEST_NS);
        let n = n.min(MAX_TOTAL.saturating_sub(self.inner.len()));
        if n > 0 {
            let _ = self.inner.record_n(v, n);
        }
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &DurationHistogram) {
        for (v, n) in other.buckets() {
            self.record_n(v, n);
        }
    }

    /// Number of recorded values.
    pub fn count(&self) -> u64 {
        self.inner.len()
    }

    /// The value at quantile `q` (0..=1), in nanoseconds; 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count() == 0 {
            return 0;
        }
        self.inner.value_at_quantile(q.clamp(0.0, 1.0))
    }

    /// The largest recorded value (bucket precision), in nanoseconds.
    pub fn max(&self) -> u64 {
        if self.count() == 0 {
            0
        } else {
            self.inner.max()
        }
    }

    /// The mean, in nanoseconds.
    pub fn mean(&self) -> f64 {
        if self.count() == 0 {
            0.0
        } else {
            self.inner.mean()
        }
    }

    /// The non-empty buckets as `(highest equivalent value in ns, count)`, ascending.
    pub fn buckets(&self) -> Vec<(u64, u64)> {
        self.inner
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect()
    }
}

#[derive(Serialize, Deserialize)]
struct Wire {
    sigfig: u8,
    buckets: Vec<[u64; 2]>,
}

impl Serialize for DurationHistogram {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Wire {
            sigfig: SIGFIG,
            buckets: self.buckets().into_iter().map(|(v, n)| [v, n]).collect(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for DurationHistogram {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let wire = Wire::deserialize(d)?;
        let mut h = DurationHistogram::new();
        for [v, n] in wire.buckets {
            h.record_n(v, n);
        }
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_and_round_trip() {
        let mut h = DurationHistogram::new();
        for i in 1..=1000u64 {
            h.record(i * 1000);
        }
        let p50 = h.quantile(0.5) as f64;
        assert!((p50 - 500_000.0).abs() / 500_000.0 < 0.01, "{p50}");
        let json = serde_json::to_string(&h).unwrap();
        let back: DurationHistogram = serde_json::from_str(&json).unwrap();
        assert_eq!(back.count(), 1000);
        assert_eq!(back.quantile(0.5), h.quantile(0.5));
        assert_eq!(back.quantile(0.99), h.quantile(0.99));
        assert_eq!(back.buckets(), h.buckets());
    }

    #[test]
    fn clamps_out_of_range() {
        let mut h = DurationHistogram::new();
        h.record(0);
        h.record(u64::MAX);
        assert_eq!(h.count(), 2);
        assert!(h.max() >= HIGHEST_NS);
    }
}
