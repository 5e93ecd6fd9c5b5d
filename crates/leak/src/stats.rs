//! Robust trend statistics: the Theil-Sen slope with Sen's confidence interval, the
//! Mann-Kendall trend test, and least-squares line and parabola fits.
//!
//! Everything here is bounded in time: Theil-Sen is exact up to [`EXACT_PAIRS_MAX_N`]
//! points and above that uses a fixed-size, deterministic random sample of pairs; the
//! Mann-Kendall statistic is counted in O(n log n) with a Fenwick tree.

use serde::{Deserialize, Serialize};

/// Up to this many points, Theil-Sen uses every pair of points.
pub const EXACT_PAIRS_MAX_N: usize = 300;
/// Above [`EXACT_PAIRS_MAX_N`] points, Theil-Sen uses this many sampled pairs.
pub const SAMPLED_PAIRS: usize = 20_000;

/// A small deterministic pseudo-random generator (SplitMix64), so that sampled statistics
/// give the same answer for the same series.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix(u64);

impl SplitMix {
    pub(crate) fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * n as f64) as usize % n.max(1)
    }

    /// Standard normal (Box-Muller).
    #[cfg(test)]
    pub(crate) fn normal(&mut self) -> f64 {
        let u1 = ((self.next_u64() >> 11) as f64 + 1.0) / ((1u64 << 53) as f64 + 1.0);
        let u2 = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// The `q`-quantile (0..=1) of `values`, reordering them. `None` when empty.
pub(crate) fn quantile_in_place(values: &mut [f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let idx = ((values.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
    let (_, v, _) = values.select_nth_unstable_by(idx, f64::total_cmp);
    Some(*v)
}

/// The median of `values` (copied). `None` when empty.
pub(crate) fn median(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    quantile_in_place(&mut v, 0.5)
}

/// The median absolute deviation from the median, scaled by 1.4826 to estimate a normal
/// standard deviation. 0 when empty.
pub(crate) fn robust_sd(values: &[f64]) -> f64 {
    let Some(m) = median(values) else {
        return 0.0;
    };
    let dev: Vec<f64> = values.iter().map(|v| (v - m).abs()).collect();
    1.4826 * median(&dev).unwrap_or(0.0)
}

/// A Theil-Sen line fit with Sen's confidence interval for the slope.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TheilSen {
    /// The median of the pairwise slopes (units of y per unit of t).
    pub slope: f64,
    /// The median of `y - slope * t`.
    pub intercept: f64,
    /// The lower end of the slope's confidence interval.
    pub slope_low: f64,
    /// The upper end of the slope's confidence interval.
    pub slope_high: f64,
    /// How many pairwise slopes were used (all pairs, or a sample).
    pub pairs: usize,
}

impl TheilSen {
    /// The fitted value at `t`.
    pub fn at(&self, t: f64) -> f64 {
        self.intercept + self.slope * t
    }
}

/// Fits a Theil-Sen line through `(t[i], y[i])`, with a confidence interval at two-sided
/// normal quantile `z` (1.96 for 95 %). `None` with fewer than two distinct times.
///
/// ```
/// use perfkit_leak::stats::theil_sen;
/// let t: Vec<f64> = (0..50).map(f64::from).collect();
/// let mut y: Vec<f64> = t.iter().map(|t| 100.0 + 3.0 * t).collect();
/// y[10] = 1e9; // one wild outlier does not move a robust fit
/// let fit = theil_sen(&t, &y, 1.96).unwrap();
/// assert!((fit.slope - 3.0).abs() < 1e-9);
/// ```
pub fn theil_sen(t: &[f64], y: &[f64], z: f64) -> Option<TheilSen> {
    let n = t.len().min(y.len());
    if n < 2 {
        return None;
    }
    let mut slopes = Vec::new();
    let total_pairs = n * (n - 1) / 2;
    if n <= EXACT_PAIRS_MAX_N {
        slopes.reserve(total_pairs);
        for i in 0..n {
            for j in (i + 1)..n {
                let dt = t[j] - t[i];
                if dt != 0.0 {
                    slopes.push((y[j] - y[i]) / dt);
                }
            }
        }
    } else {
        slopes.reserve(SAMPLED_PAIRS);
        let mut rng = SplitMix::new(0x5EED ^ n as u64);
        let mut attempts = 0;
        while slopes.len() < SAMPLED_PAIRS && attempts < SAMPLED_PAIRS * 4 {
            attempts += 1;
            let a = rng.below(n);
            let b = rng.below(n);
            let (i, j) = if a < b { (a, b) } else { (b, a) };
            let dt = t[j] - t[i];
            if i != j && dt != 0.0 {
                slopes.push((y[j] - y[i]) / dt);
            }
        }
    }
    if slopes.is_empty() {
        return None;
    }
    let slope = quantile_in_place(&mut slopes, 0.5)?;
    // Sen's interval: ranks (N -/+ C) / 2 with C = z * sqrt(Var S), as fractions of N.
    let nf = n as f64;
    let var_s = nf * (nf - 1.0) * (2.0 * nf + 5.0) / 18.0;
    let c = z * var_s.sqrt();
    let np = total_pairs as f64;
    let q_low = ((np - c) / 2.0 / np).clamp(0.0, 1.0);
    let q_high = ((np + c) / 2.0 / np).clamp(0.0, 1.0);
    let slope_low = quantile_in_place(&mut slopes, q_low)?;
    let slope_high = quantile_in_place(&mut slopes, q_high)?;
    let mut residual: Vec<f64> = (0..n).map(|i| y[i] - slope * t[i]).collect();
    let intercept = quantile_in_place(&mut residual, 0.5)?;
    Some(TheilSen {
        slope,
        intercept,
        slope_low,
        slope_high,
        pairs: slopes.len(),
    })
}

/// The Mann-Kendall trend test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MannKendall {
    /// S: concordant minus discordant pairs (positive for a rising series).
    pub s: f64,
    /// Kendall's tau: S over the number of pairs, in -1..=1.
    pub tau: f64,
    /// The normal score of S (with the tie and continuity corrections).
    pub z: f64,
    /// The two-sided p-value of "no monotone trend".
    pub p_value: f64,
}

/// Runs the Mann-Kendall test on `y`, assumed to be in time order. O(n log n).
///
/// ```
/// use perfkit_leak::stats::mann_kendall;
/// let rising: Vec<f64> = (0..30).map(f64::from).collect();
/// let mk = mann_kendall(&rising);
/// assert!(mk.z > 5.0 && mk.p_value < 1e-6 && (mk.tau - 1.0).abs() < 1e-12);
/// ```
pub fn mann_kendall(y: &[f64]) -> MannKendall {
    let n = y.len();
    if n < 3 {
        return MannKendall {
            s: 0.0,
            tau: 0.0,
            z: 0.0,
            p_value: 1.0,
        };
    }
    // Ranks of y with ties sharing a rank.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| y[a].total_cmp(&y[b]));
    let mut rank = vec![0usize; n];
    let mut tie_term = 0.0;
    let mut r = 0;
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && y[order[j + 1]] == y[order[i]] {
            j += 1;
        }
        for &k in &order[i..=j] {
            rank[k] = r;
        }
        let g = (j - i + 1) as f64;
        tie_term += g * (g - 1.0) * (2.0 * g + 5.0);
        r += 1;
        i = j + 1;
    }
    // Fenwick tree over ranks: for each point, count earlier points below and above it.
    let mut tree = vec![0u32; r + 1];
    let mut s: i128 = 0;
    for (seen, &rk) in rank.iter().enumerate() {
        let below = fenwick_sum(&tree, rk); // ranks < rk
        let at_or_below = fenwick_sum(&tree, rk + 1);
        let above = seen as i128 - at_or_below as i128;
        s += below as i128 - above;
        let mut idx = rk + 1;
        while idx <= r {
            tree[idx] += 1;
            idx += idx & idx.wrapping_neg();
        }
    }
    let nf = n as f64;
    let s = s as f64;
    let var = ((nf * (nf - 1.0) * (2.0 * nf + 5.0)) - tie_term) / 18.0;
    let z = if var <= 0.0 {
        0.0
    } else if s > 0.0 {
        (s - 1.0) / var.sqrt()
    } else if s < 0.0 {
        (s + 1.0) / var.sqrt()
    } else {
        0.0
    };
    MannKendall {
        s,
        tau: s / (nf * (nf - 1.0) / 2.0),
        z,
        p_value: (2.0 * normal_sf(z.abs())).min(1.0),
    }
}

/// Sum of the first `count` ranks (ranks `0..count`).
fn fenwick_sum(tree: &[u32], count: usize) -> u64 {
    let mut idx = count;
    let mut total = 0u64;
    while idx > 0 {
        total += u64::from(tree[idx]);
        idx -= idx & idx.wrapping_neg();
    }
    total
}

pub(crate) use perfkit_core::stats::normal_sf;

/// An ordinary least-squares line with its coefficient of determination.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LinearFit {
    /// Slope.
    pub slope: f64,
    /// Intercept.
    pub intercept: f64,
    /// R², 0..=1 (0 when y is constant).
    pub r_squared: f64,
}

/// Least-squares line through the points. `None` with fewer than two distinct times.
pub fn linear_fit(t: &[f64], y: &[f64]) -> Option<LinearFit> {
    let n = t.len().min(y.len());
    if n < 2 {
        return None;
    }
    let nf = n as f64;
    let mt = t[..n].iter().sum::<f64>() / nf;
    let my = y[..n].iter().sum::<f64>() / nf;
    let (mut stt, mut sty, mut syy) = (0.0, 0.0, 0.0);
    for i in 0..n {
        let (dt, dy) = (t[i] - mt, y[i] - my);
        stt += dt * dt;
        sty += dt * dy;
        syy += dy * dy;
    }
    if stt <= 0.0 {
        return None;
    }
    let slope = sty / stt;
    let r_squared = if syy > 0.0 {
        (sty * sty / (stt * syy)).clamp(0.0, 1.0)
    } else {
        0.0
    };
    Some(LinearFit {
        slope,
        intercept: my - slope * mt,
        r_squared,
    })
}

/// A least-squares parabola `a + b u + c u²` on `u = (t - mid) / half_span` in -1..=1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct QuadraticFit {
    pub(crate) a: f64,
    pub(crate) b: f64,
    pub(crate) c: f64,
    /// The t-statistic of `c`.
    pub(crate) c_t: f64,
    pub(crate) mid: f64,
    pub(crate) half_span: f64,
}

impl QuadraticFit {
    /// The slope dy/dt at `u` (-1 is the start, 1 the end).
    pub(crate) fn slope_at_u(&self, u: f64) -> f64 {
        (self.b + 2.0 * self.c * u) / self.half_span
    }
}

pub(crate) fn quadratic_fit(t: &[f64], y: &[f64]) -> Option<QuadraticFit> {
    let n = t.len().min(y.len());
    if n < 5 {
        return None;
    }
    let (t0, t1) = (t[0], t[n - 1]);
    let half_span = (t1 - t0) / 2.0;
    if half_span <= 0.0 {
        return None;
    }
    let mid = (t0 + t1) / 2.0;
    let ymean = y[..n].iter().sum::<f64>() / n as f64;
    // Normal equations X'X beta = X'y with columns 1, u, u².
    let mut m = [[0.0f64; 3]; 3];
    let mut v = [0.0f64; 3];
    for i in 0..n {
        let u = (t[i] - mid) / half_span;
        let row = [1.0, u, u * u];
        let yy = y[i] - ymean;
        for r in 0..3 {
            v[r] += row[r] * yy;
            for c in 0..3 {
                m[r][c] += row[r] * row[c];
            }
        }
    }
    let inv = invert3(&m)?;
    let beta: Vec<f64> = (0..3)
        .map(|r| (0..3).map(|c| inv[r][c] * v[c]).sum())
        .collect();
    let mut rss = 0.0;
    for i in 0..n {
        let u = (t[i] - mid) / half_span;
        let e = y[i] - ymean - (beta[0] + beta[1] * u + beta[2] * u * u);
        rss += e * e;
    }
    let sigma2 = rss / (n as f64 - 3.0);
    let se_c = (sigma2 * inv[2][2]).max(0.0).sqrt();
    let c_t = if se_c > 0.0 {
        beta[2] / se_c
    } else if beta[2] > 0.0 {
        f64::INFINITY
    } else {
        0.0
    };
    Some(QuadraticFit {
        a: beta[0] + ymean,
        b: beta[1],
        c: beta[2],
        c_t,
        mid,
        half_span,
    })
}

/// A fit of `y = a + c e^(k t)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ExpFit {
    pub(crate) a: f64,
    pub(crate) c: f64,
    /// Per second.
    pub(crate) k: f64,
}

impl ExpFit {
    pub(crate) fn at(&self, t: f64) -> f64 {
        self.a + self.c * (self.k * t).exp()
    }
}

/// Fits `y = a + c e^(k t)` with `c, k > 0` by least squares: for each `k` on a log grid
/// (then a finer one around the best) `a` and `c` are a linear regression. Above 1,000
/// points an evenly strided 1,000 are used, so the cost is bounded (60 grid points of at
/// most 1,000 points each).
pub(crate) fn exponential_fit(t: &[f64], y: &[f64]) -> Option<ExpFit> {
    let n = t.len().min(y.len());
    if n > 1000 {
        let stride = n.div_ceil(1000);
        let ts: Vec<f64> = t[..n].iter().step_by(stride).copied().collect();
        let ys: Vec<f64> = y[..n].iter().step_by(stride).copied().collect();
        return exponential_fit(&ts, &ys);
    }
    let span = t.get(n.checked_sub(1)?)? - t.first()?;
    if n < 5 || span <= 0.0 {
        return None;
    }
    let fit_k = |kk: f64| -> Option<(f64, ExpFit)> {
        let k = kk / span;
        let x: Vec<f64> = t[..n].iter().map(|&ti| (k * (ti - t[0])).exp()).collect();
        let l = linear_fit(&x, &y[..n])?;
        if l.slope <= 0.0 {
            return None;
        }
        let rss: f64 = (0..n)
            .map(|i| (y[i] - l.intercept - l.slope * x[i]).powi(2))
            .sum();
        let c = l.slope * (-k * t[0]).exp();
        Some((
            rss,
            ExpFit {
                a: l.intercept,
                c,
                k,
            },
        ))
    };
    let grid = |lo: f64, hi: f64, steps: usize| -> Option<(f64, f64, ExpFit)> {
        (0..=steps)
            .filter_map(|i| {
                let kk = lo * (hi / lo).powf(i as f64 / steps as f64);
                fit_k(kk).map(|(rss, f)| (kk, rss, f))
            })
            .min_by(|a, b| a.1.total_cmp(&b.1))
    };
    let (kk, _, coarse) = grid(0.05, 30.0, 40)?;
    let (_, _, fine) = grid(kk / 1.2, kk * 1.2, 20).unwrap_or((kk, 0.0, coarse));
    Some(fine)
}

/// Least squares `y = b0 + b1 x1 + b2 x2`: the coefficients and their standard errors.
pub(crate) fn ols2(x1: &[f64], x2: &[f64], y: &[f64]) -> Option<([f64; 3], [f64; 3])> {
    let n = y.len().min(x1.len()).min(x2.len());
    if n < 4 {
        return None;
    }
    // Centre the regressors for conditioning.
    let nf = n as f64;
    let m1 = x1[..n].iter().sum::<f64>() / nf;
    let m2 = x2[..n].iter().sum::<f64>() / nf;
    let my = y[..n].iter().sum::<f64>() / nf;
    let mut m = [[0.0f64; 3]; 3];
    let mut v = [0.0f64; 3];
    for i in 0..n {
        let row = [1.0, x1[i] - m1, x2[i] - m2];
        for r in 0..3 {
            v[r] += row[r] * (y[i] - my);
            for c in 0..3 {
                m[r][c] += row[r] * row[c];
            }
        }
    }
    let inv = invert3(&m)?;
    let beta: Vec<f64> = (0..3)
        .map(|r| (0..3).map(|c| inv[r][c] * v[c]).sum())
        .collect();
    let mut rss = 0.0;
    for i in 0..n {
        let e = y[i] - my - (beta[0] + beta[1] * (x1[i] - m1) + beta[2] * (x2[i] - m2));
        rss += e * e;
    }
    let sigma2 = rss / (nf - 3.0);
    let se = |k: usize| (sigma2 * inv[k][k]).max(0.0).sqrt();
    let b0 = beta[0] + my - beta[1] * m1 - beta[2] * m2;
    Some(([b0, beta[1], beta[2]], [se(0), se(1), se(2)]))
}

fn invert3(m: &[[f64; 3]; 3]) -> Option<[[f64; 3]; 3]> {
    let det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    if det.abs() < 1e-300 || !det.is_finite() {
        return None;
    }
    // The inverse is the adjugate over the determinant (cofactors, transposed).
    let cofactor = |r: usize, c: usize| {
        let (r1, r2) = ((c + 1) % 3, (c + 2) % 3);
        let (c1, c2) = ((r + 1) % 3, (r + 2) % 3);
        (m[r1][c1] * m[r2][c2] - m[r1][c2] * m[r2][c1]) / det
    };
    Some(std::array::from_fn(|r| {
        std::array::from_fn(|c| cofactor(r, c))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive_s(y: &[f64]) -> f64 {
        let mut s = 0.0;
        for i in 0..y.len() {
            for j in (i + 1)..y.len() {
                s += (y[j] - y[i]).signum() * f64::from(u8::from(y[j] != y[i]));
            }
        }
        s
    }

    proptest! {
        #[test]
        fn mann_kendall_s_matches_the_quadratic_definition(
            y in proptest::collection::vec(0u8..6, 3..80)
        ) {
            let y: Vec<f64> = y.into_iter().map(f64::from).collect();
            prop_assert_eq!(mann_kendall(&y).s, naive_s(&y));
        }

        #[test]
        fn exact_theil_sen_matches_a_sorted_reference(
            y in proptest::collection::vec(-1000i32..1000, 2..60)
        ) {
            let t: Vec<f64> = (0..y.len()).map(|i| i as f64 * 1.5).collect();
            let y: Vec<f64> = y.into_iter().map(f64::from).collect();
            let fit = theil_sen(&t, &y, 1.96).unwrap();
            // quantile_in_place rounds the middle index; compare with both middles.
            let mut s = Vec::new();
            for i in 0..t.len() { for j in (i+1)..t.len() { s.push((y[j]-y[i])/(t[j]-t[i])); } }
            s.sort_by(f64::total_cmp);
            let lo = s[(s.len() - 1) / 2];
            let hi = s[s.len() / 2];
            prop_assert!(fit.slope >= lo.min(hi) && fit.slope <= hi.max(lo), "{} not in [{lo}, {hi}]", fit.slope);
            prop_assert!(fit.slope_low <= fit.slope && fit.slope <= fit.slope_high);
        }
    }

    #[test]
    fn sampled_theil_sen_is_close_on_large_noisy_series() {
        let mut rng = SplitMix::new(7);
        let t: Vec<f64> = (0..5000).map(|i| i as f64 * 0.5).collect();
        let y: Vec<f64> = t
            .iter()
            .map(|t| 1e6 + 250.0 * t + 2e4 * rng.normal())
            .collect();
        let fit = theil_sen(&t, &y, 1.96).unwrap();
        assert_eq!(fit.pairs, SAMPLED_PAIRS);
        assert!((fit.slope - 250.0).abs() < 10.0, "{fit:?}");
        assert!(fit.slope_low < 250.0 && fit.slope_high > 250.0, "{fit:?}");
    }

    #[test]
    fn flat_noise_is_not_a_trend_and_normal_sf_is_sane() {
        let mut rng = SplitMix::new(3);
        let y: Vec<f64> = (0..500).map(|_| rng.normal()).collect();
        let mk = mann_kendall(&y);
        assert!(mk.z.abs() < 3.0 && mk.p_value > 0.003, "{mk:?}");
        assert!((normal_sf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_sf(1.96) - 0.025).abs() < 1e-4);
        assert!((normal_sf(-1.96) - 0.975).abs() < 1e-4);
    }

    #[test]
    fn exponential_fit_recovers_the_rate_constant() {
        let t: Vec<f64> = (0..200).map(f64::from).collect();
        let y: Vec<f64> = t.iter().map(|t| 1e6 + 500.0 * (0.02 * t).exp()).collect();
        let f = exponential_fit(&t, &y).unwrap();
        assert!((f.k - 0.02).abs() < 0.001, "{f:?}");
        assert!((f.at(150.0) - y[150]).abs() / y[150] < 1e-3);
        assert!(exponential_fit(&t[..3], &y[..3]).is_none());
        let falling: Vec<f64> = t.iter().map(|t| 1e6 - t).collect();
        assert!(exponential_fit(&t, &falling).is_none());
    }

    #[test]
    fn quadratic_sees_curvature_and_line_fit_r2() {
        let t: Vec<f64> = (0..100).map(f64::from).collect();
        let y: Vec<f64> = t.iter().map(|t| 5.0 + 0.5 * t * t).collect();
        let q = quadratic_fit(&t, &y).unwrap();
        assert!(q.c > 0.0 && q.c_t > 10.0);
        assert!(
            (q.slope_at_u(1.0) - 99.0).abs() < 1e-6,
            "{}",
            q.slope_at_u(1.0)
        );
        let l = linear_fit(&t, &t).unwrap();
        assert!((l.r_squared - 1.0).abs() < 1e-12 && (l.slope - 1.0).abs() < 1e-12);
        assert!(linear_fit(&[1.0, 1.0], &[1.0, 2.0]).is_none());
        assert!(theil_sen(&[1.0], &[1.0], 1.96).is_none());
        assert_eq!(mann_kendall(&[1.0, 2.0]).p_value, 1.0);
    }
}
