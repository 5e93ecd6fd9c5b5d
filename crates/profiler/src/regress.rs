//! Regressions against a baseline: per call path, a one-sided Mann-Whitney U test computed
//! from the two duration histograms (ties within a bucket count as ties), a minimum effect
//! on p50 or p95, a minimum sample count on each side, and Benjamini-Hochberg control of the
//! false discovery rate across all paths tested.

use crate::hist::DurationHistogram;
use crate::profile::Profile;
use perfkit_core::Severity;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Thresholds of [`regressions`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegressionConfig {
    /// Minimum relative worsening of p50 or p95 (0.05 = 5 %).
    pub min_relative: f64,
    /// Minimum absolute worsening of the same quantile.
    pub min_absolute: Duration,
    /// Minimum sampled spans on each side for a path to be tested.
    pub min_samples: u64,
    /// False discovery rate for Benjamini-Hochberg across paths.
    pub fdr: f64,
}

impl Default for RegressionConfig {
    fn default() -> Self {
        RegressionConfig {
            min_relative: 0.05,
            min_absolute: Duration::from_micros(50),
            min_samples: 20,
            fdr: 0.01,
        }
    }
}

/// One call path that got slower.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Regression {
    /// The call path.
    pub path: String,
    /// Its span name.
    pub name: String,
    /// Sampled spans in the baseline.
    pub baseline_count: u64,
    /// Sampled spans now.
    pub current_count: u64,
    /// Baseline median, ns.
    pub baseline_p50_ns: u64,
    /// Baseline 95th percentile, ns.
    pub baseline_p95_ns: u64,
    /// Current median, ns.
    pub current_p50_ns: u64,
    /// Current 95th percentile, ns.
    pub current_p95_ns: u64,
    /// Relative change of the median (0.5 = 50 % slower).
    pub change_p50: f64,
    /// Relative change of the 95th percentile.
    pub change_p95: f64,
    /// One-sided Mann-Whitney p-value (current slower than baseline).
    pub p_value: f64,
    /// Benjamini-Hochberg adjusted p-value (q-value).
    pub q_value: f64,
    /// Change of the mean self time per span (duration minus children), ns: large where
    /// the time was added, small on ancestors that only wait for a slower child.
    pub self_change_ns: i64,
    /// The same change relative to the baseline's mean self time, or to a tenth of its mean
    /// duration when that is larger (0.5 = 50 % more); the list is sorted by it.
    pub self_change: f64,
    /// `critical` at 50 % or more, `warning` otherwise.
    pub severity: Severity,
}

/// The outcome of comparing a profile to a baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegressionReport {
    /// Paths present on both sides with enough samples, so tested.
    pub paths_tested: u64,
    /// Paths skipped for too few samples on one side.
    pub paths_skipped: u64,
    /// Regressions found, largest relative growth of self time first (the likely cause
    /// first).
    pub regressions: Vec<Regression>,
    /// The thresholds used.
    pub config: RegressionConfig,
    /// Caveats about the comparison itself (different machines or machine load): timing
    /// differences they cause are real but may not be the code's.
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// Warnings when the two profiles were taken on different machines or under clearly
/// different load (load average per CPU differing by more than 0.5).
fn environment_warnings(baseline: &Profile, current: &Profile) -> Vec<String> {
    let mut out = Vec::new();
    if let (Some(a), Some(b)) = (baseline.cpus, current.cpus)
        && a != b
    {
        out.push(format!(
            "the baseline ran with {a} CPUs and the current profile with {b}: timings may differ for that reason"
        ));
    }
    let per_cpu = |p: &Profile| Some(p.load_average? / f64::from(p.cpus?.max(1)));
    if let (Some(a), Some(b)) = (per_cpu(baseline), per_cpu(current))
        && (a - b).abs() > 0.5
    {
        out.push(format!(
            "the machine was {} loaded during the current profile (load average per CPU {b:.2}, \
             baseline {a:.2}): CPU-bound spans may be slower or faster for that reason alone",
            if b > a { "more" } else { "less" }
        ));
    }
    out
}

pub use perfkit_core::stats::normal_sf;

/// One-sided Mann-Whitney U test that `current` tends to be larger than `baseline`,
/// computed from the histograms' buckets (values in one bucket are ties), with the normal
/// approximation, tie correction and continuity correction. Returns the p-value.
pub fn mann_whitney_greater(baseline: &DurationHistogram, current: &DurationHistogram) -> f64 {
    let a = baseline.buckets();
    let b = current.buckets();
    let (n1, n2) = (baseline.count() as f64, current.count() as f64);
    if n1 == 0.0 || n2 == 0.0 {
        return 1.0;
    }
    // Walk both bucket lists in value order.
    let (mut i, mut j) = (0, 0);
    let mut below_a = 0.0; // baseline values below the current bucket value
    let mut u = 0.0; // pairs (x in baseline, y in current) with y > x, ties counted 1/2
    let mut tie_term = 0.0;
    while i < a.len() || j < b.len() {
        let va = a.get(i).map_or(u64::MAX, |x| x.0);
        let vb = b.get(j).map_or(u64::MAX, |x| x.0);
        let v = va.min(vb);
        let ca = if va == v { a[i].1 as f64 } else { 0.0 };
        let cb = if vb == v { b[j].1 as f64 } else { 0.0 };
        u += cb * (below_a + 0.5 * ca);
        below_a += ca;
        let t = ca + cb;
        tie_term += t * t * t - t;
        if va == v {
            i += 1;
        }
        if vb == v {
            j += 1;
        }
    }
    let n = n1 + n2;
    let mean = n1 * n2 / 2.0;
    let var = n1 * n2 / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)));
    if var <= 0.0 {
        return 1.0;
    }
    let z = (u - mean - 0.5) / var.sqrt();
    normal_sf(z).clamp(0.0, 1.0)
}

/// Benjamini-Hochberg adjusted p-values (q-values), in the input order.
pub fn benjamini_hochberg(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&x, &y| p[x].total_cmp(&p[y]));
    let mut q = vec![1.0; m];
    let mut running = 1.0f64;
    for (rank, &idx) in order.iter().enumerate().rev() {
        let adj = (p[idx] * m as f64 / (rank + 1) as f64).min(1.0);
        running = running.min(adj);
        q[idx] = running;
    }
    q
}

/// Compares `current` with `baseline` path by path.
pub fn regressions(
    baseline: &Profile,
    current: &Profile,
    config: &RegressionConfig,
) -> RegressionReport {
    struct Tested<'a> {
        path: &'a str,
        name: &'a str,
        self_change_ns: i64,
        self_change: f64,
        base: &'a DurationHistogram,
        cur: &'a DurationHistogram,
        p: f64,
    }
    let mut tested = Vec::new();
    let mut skipped = 0u64;
    for cur in &current.paths {
        let Some(base) = baseline.path(&cur.path) else {
            continue;
        };
        if base.histogram.count() < config.min_samples || cur.histogram.count() < config.min_samples
        {
            skipped += 1;
            continue;
        }
        let mean_self = |p: &crate::profile::PathStats| p.self_ns as f64 / p.count.max(1) as f64;
        tested.push(Tested {
            path: &cur.path,
            name: &cur.name,
            self_change_ns: (mean_self(cur) - mean_self(base)) as i64,
            // Relative to the baseline's self time, but at least a tenth of its duration,
            // so a span that only waits for children does not rank high on crumbs.
            self_change: (mean_self(cur) - mean_self(base))
                / mean_self(base)
                    .max(0.1 * base.total_ns as f64 / base.count.max(1) as f64)
                    .max(1.0),
            base: &base.histogram,
            cur: &cur.histogram,
            p: mann_whitney_greater(&base.histogram, &cur.histogram),
        });
    }
    let q = benjamini_hochberg(&tested.iter().map(|t| t.p).collect::<Vec<_>>());
    let min_abs = u64::try_from(config.min_absolute.as_nanos()).unwrap_or(u64::MAX);
    let mut found = Vec::new();
    for (t, q) in tested.iter().zip(q) {
        if q > config.fdr {
            continue;
        }
        let (b50, b95) = (t.base.quantile(0.5), t.base.quantile(0.95));
        let (c50, c95) = (t.cur.quantile(0.5), t.cur.quantile(0.95));
        let worse = |b: u64, c: u64| {
            c > b && c - b >= min_abs && (c - b) as f64 >= config.min_relative * b as f64
        };
        if !worse(b50, c50) && !worse(b95, c95) {
            continue;
        }
        let rel = |b: u64, c: u64| {
            if b == 0 {
                0.0
            } else {
                (c as f64 - b as f64) / b as f64
            }
        };
        let (ch50, ch95) = (rel(b50, c50), rel(b95, c95));
        found.push(Regression {
            path: t.path.to_owned(),
            name: t.name.to_owned(),
            baseline_count: t.base.count(),
            current_count: t.cur.count(),
            baseline_p50_ns: b50,
            baseline_p95_ns: b95,
            current_p50_ns: c50,
            current_p95_ns: c95,
            change_p50: ch50,
            change_p95: ch95,
            p_value: t.p,
            q_value: q,
            self_change_ns: t.self_change_ns,
            self_change: t.self_change,
            severity: if ch50.max(ch95) >= 0.5 {
                Severity::Critical
            } else {
                Severity::Warning
            },
        });
    }
    // Where the time was added first: ancestors of a slower span regress too, but their
    // own (self) time barely moves.
    found.sort_by(|a, b| {
        b.self_change
            .total_cmp(&a.self_change)
            .then(a.path.cmp(&b.path))
    });
    RegressionReport {
        paths_tested: tested.len() as u64,
        paths_skipped: skipped,
        regressions: found,
        config: config.clone(),
        warnings: environment_warnings(baseline, current),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(values: impl IntoIterator<Item = u64>) -> DurationHistogram {
        let mut h = DurationHistogram::new();
        for v in values {
            h.record(v);
        }
        h
    }

    /// The exact U statistic by brute force, as the reference model.
    fn brute_u(a: &[u64], b: &[u64]) -> f64 {
        let mut u = 0.0;
        for &y in b {
            for &x in a {
                if y > x {
                    u += 1.0;
                } else if y == x {
                    u += 0.5;
                }
            }
        }
        u
    }

    #[test]
    fn normal_tail_matches_known_values() {
        assert!((normal_sf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_sf(1.959_964) - 0.025).abs() < 1e-6);
        assert!((normal_sf(-1.644_854) - 0.95).abs() < 1e-6);
        assert!((normal_sf(3.090_232) - 0.001).abs() < 1e-6);
    }

    /// The p-value from raw values: brute-force U, ties counted from the values.
    fn reference_p(a: &[u64], b: &[u64]) -> f64 {
        let (n1, n2) = (a.len() as f64, b.len() as f64);
        let n = n1 + n2;
        let mut counts = std::collections::BTreeMap::new();
        for v in a.iter().chain(b) {
            *counts.entry(*v).or_insert(0.0f64) += 1.0;
        }
        let ties: f64 = counts.values().map(|t| t * t * t - t).sum();
        let var = n1 * n2 / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)));
        normal_sf((brute_u(a, b) - n1 * n2 / 2.0 - 0.5) / var.sqrt())
    }

    #[test]
    fn u_test_matches_reference_model() {
        // Values below 256 are exact in the histogram, so buckets are the values.
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..50 {
            let a: Vec<u64> = (0..rng.usize(5..40)).map(|_| rng.u64(1..60)).collect();
            let b: Vec<u64> = (0..rng.usize(5..40)).map(|_| rng.u64(1..70)).collect();
            let p = mann_whitney_greater(&hist(a.clone()), &hist(b.clone()));
            let r = reference_p(&a, &b);
            assert!((p - r).abs() < 1e-9, "p={p} reference={r}");
        }
    }

    #[test]
    fn detects_shift_and_not_noise() {
        let mut rng = fastrand::Rng::with_seed(3);
        let base = hist((0..200).map(|_| 1_000_000 + rng.u64(0..200_000)));
        let same = hist((0..200).map(|_| 1_000_000 + rng.u64(0..200_000)));
        let slower = hist((0..200).map(|_| 1_300_000 + rng.u64(0..200_000)));
        assert!(mann_whitney_greater(&base, &slower) < 1e-6);
        assert!(mann_whitney_greater(&base, &same) > 0.001);
        assert!(mann_whitney_greater(&slower, &base) > 0.99);
    }

    #[test]
    fn bh_matches_hand_computation() {
        let q = benjamini_hochberg(&[0.01, 0.04, 0.03, 0.2]);
        // sorted: 0.01(1) 0.03(2) 0.04(3) 0.2(4); adj = .04, .06, .0533, .2 -> monotone
        assert!((q[0] - 0.04).abs() < 1e-12);
        assert!((q[2] - 0.053_333_333).abs() < 1e-6);
        assert!((q[1] - 0.053_333_333).abs() < 1e-6);
        assert!((q[3] - 0.2).abs() < 1e-12);
    }
}
