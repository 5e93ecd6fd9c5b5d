//! The pattern classifier behind [`analyze`](crate::analyze): the features of a prepared
//! series and the rules that turn them into a verdict (see the `analysis` module docs for
//! the order of the rules).

use crate::analysis::{AnalysisConfig, Pattern, Trend, signed_bytes};
use crate::oom::{self, MemoryLimit, OomEstimate};
use crate::stats::{self, LinearFit, MannKendall, TheilSen};

/// Consecutive differences, and their excess over the typical growth for their time
/// step (so that irregular intervals and gaps do not look like jumps). Also returns the
/// typical growth of one sample interval.
pub(crate) fn differences(t: &[f64], y: &[f64]) -> (Vec<f64>, Vec<f64>, f64) {
    let d: Vec<f64> = y.windows(2).map(|w| w[1] - w[0]).collect();
    let dt: Vec<f64> = t.windows(2).map(|w| w[1] - w[0]).collect();
    let rates: Vec<f64> = d
        .iter()
        .zip(&dt)
        .filter(|(_, dt)| **dt > 0.0)
        .map(|(d, dt)| d / dt)
        .collect();
    let rate = stats::median(&rates).unwrap_or(0.0);
    let e: Vec<f64> = d.iter().zip(&dt).map(|(d, dt)| d - rate * dt).collect();
    let step = rate * stats::median(&dt).unwrap_or(0.0);
    (d, e, step)
}

/// The sharp-move threshold of a series' excess differences: six robust standard
/// deviations, at least 5 % of the range, at least one byte. Returns (threshold, median,
/// robust sd).
pub(crate) fn sharp_threshold(y: &[f64], e: &[f64]) -> (f64, f64, f64) {
    let (min, max) = y
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let med = stats::median(e).unwrap_or(0.0);
    let sd = stats::robust_sd(e);
    ((6.0 * sd).max(0.05 * (max - min)).max(1.0), med, sd)
}

/// Replaces one-sample spikes (a sharp move immediately undone) by the mean of their
/// neighbours. Returns the series and how many spikes were replaced.
pub(crate) fn despike(t: &[f64], y: &[f64]) -> (Vec<f64>, usize) {
    let mut out = y.to_vec();
    if y.len() < 5 {
        return (out, 0);
    }
    let (_, d, _) = differences(t, y);
    let (sharp, med_d, _) = sharp_threshold(y, &d);
    let mut count = 0;
    for i in 1..y.len() - 1 {
        let (a, b) = (d[i - 1] - med_d, d[i] - med_d);
        let spike = (a > sharp && b < -sharp) || (a < -sharp && b > sharp);
        if spike && (a + b).abs() < 0.5 * a.abs().min(b.abs()) {
            out[i] = (y[i - 1] + y[i + 1]) / 2.0;
            count += 1;
        }
    }
    (out, count)
}

/// Everything the classifier measures once.
pub(crate) struct Features<'a> {
    pub(crate) t: &'a [f64],
    pub(crate) y: &'a [f64],
    pub(crate) n: usize,
    pub(crate) span: f64,
    pub(crate) level: f64,
    /// Consecutive differences.
    pub(crate) d: Vec<f64>,
    /// Their excess over the typical growth for their time step.
    pub(crate) e: Vec<f64>,
    pub(crate) med_e: f64,
    /// The typical growth over one sample interval.
    pub(crate) step: f64,
    /// The threshold of a sharp jump or drop in consecutive differences.
    pub(crate) sharp: f64,
    pub(crate) ts: TheilSen,
    pub(crate) mk: MannKendall,
    pub(crate) lin: Option<LinearFit>,
    pub(crate) quad: Option<stats::QuadraticFit>,
    /// Robust sd of the residuals around a parabola (around the line without one).
    pub(crate) noise: f64,
    /// Point noise estimated from consecutive differences.
    pub(crate) diff_noise: f64,
}

impl<'a> Features<'a> {
    pub(crate) fn new(t: &'a [f64], y: &'a [f64], config: &AnalysisConfig) -> Self {
        let n = t.len();
        let span = t[n - 1] - t[0];
        let level = stats::median(y).unwrap_or(0.0);
        let (d, e, step) = differences(t, y);
        let (sharp, med_e, sd_d) = sharp_threshold(y, &e);
        let ts = stats::theil_sen(t, y, config.interval_z).unwrap_or(TheilSen {
            slope: 0.0,
            intercept: level,
            slope_low: 0.0,
            slope_high: 0.0,
            pairs: 0,
        });
        let mk = stats::mann_kendall(y);
        let lin = stats::linear_fit(t, y);
        let quad = stats::quadratic_fit(t, y);
        let residuals: Vec<f64> = match &quad {
            Some(q) => t
                .iter()
                .zip(y)
                .map(|(&ti, &yi)| {
                    let u = (ti - q.mid) / q.half_span;
                    yi - (q.a + q.b * u + q.c * u * u)
                })
                .collect(),
            None => t.iter().zip(y).map(|(&ti, &yi)| yi - ts.at(ti)).collect(),
        };
        let noise = stats::robust_sd(&residuals);
        Features {
            t,
            y,
            n,
            span,
            level,
            d,
            e,
            med_e,
            step,
            sharp,
            ts,
            mk,
            lin,
            quad,
            noise,
            diff_noise: sd_d / std::f64::consts::SQRT_2,
        }
    }

    pub(crate) fn trend(&self) -> Trend {
        Trend {
            slope_bytes_per_sec: self.ts.slope,
            slope_low_bytes_per_sec: self.ts.slope_low,
            slope_high_bytes_per_sec: self.ts.slope_high,
            start_bytes: self.ts.at(0.0),
            end_bytes: self.ts.at(self.span),
            mann_kendall: self.mk,
            confidence: (1.0 - self.mk.p_value).clamp(0.0, 1.0),
            r_squared: self.lin.map_or(0.0, |l| l.r_squared),
            noise_bytes: self.noise,
        }
    }

    /// The rise a leak must exceed over the window.
    fn material(&self, config: &AnalysisConfig, noise: f64) -> f64 {
        (config.min_relative_growth * self.level.abs()).max(config.noise_multiple * noise)
    }

    fn jumps(&self) -> Vec<usize> {
        (0..self.e.len())
            .filter(|&i| self.e[i] - self.med_e > self.sharp)
            .collect()
    }

    /// Drops, with a cleanup spread over consecutive samples counted once (its last index).
    fn drops(&self) -> Vec<usize> {
        let raw: Vec<usize> = (0..self.e.len())
            .filter(|&i| self.e[i] - self.med_e < -self.sharp)
            .collect();
        let mut out: Vec<usize> = Vec::new();
        for i in raw {
            match out.last_mut() {
                Some(last) if i <= *last + 2 => *last = i,
                _ => out.push(i),
            }
        }
        out
    }
}

pub(crate) enum LocalModel {
    Line { intercept: f64, slope: f64 },
    Parabola(stats::QuadraticFit),
}

/// How to project the series to the limit.
pub(crate) enum Projection {
    None,
    Linear {
        level: f64,
        rate: f64,
        rate_low: f64,
        rate_high: f64,
    },
    Exponential {
        level: f64,
        rate: f64,
        k: f64,
    },
}

impl Projection {
    pub(crate) fn estimate(&self, limit: MemoryLimit) -> OomEstimate {
        let lim = limit.bytes as f64;
        match *self {
            Projection::None => oom::estimate(limit, 0.0, None, None, None),
            Projection::Linear {
                level,
                rate,
                rate_low,
                rate_high,
            } => oom::estimate(
                limit,
                level,
                oom::linear_eta(lim - level, rate),
                oom::linear_eta(lim - level, rate_high),
                oom::linear_eta(lim - level, rate_low),
            ),
            Projection::Exponential { level, rate, k } => oom::estimate(
                limit,
                level,
                oom::exponential_eta(lim - level, rate, k),
                oom::exponential_eta(lim - level, rate, 1.5 * k),
                oom::linear_eta(lim - level, rate),
            ),
        }
    }
}

pub(crate) struct Verdict {
    pub(crate) pattern: Pattern,
    pub(crate) fit: f64,
    pub(crate) rate: Option<f64>,
    pub(crate) model: Option<LocalModel>,
    pub(crate) projection: Projection,
    pub(crate) evidence: Vec<String>,
}

impl Verdict {
    fn none(fit: f64, evidence: Vec<String>) -> Self {
        Verdict {
            pattern: Pattern::None,
            fit,
            rate: None,
            model: None,
            projection: Projection::None,
            evidence,
        }
    }
}

fn bytes(v: f64) -> String {
    signed_bytes(v)
}

pub(crate) fn classify(f: &Features<'_>, config: &AnalysisConfig) -> Verdict {
    let jumps = f.jumps();
    let drops = f.drops();
    if drops.is_empty()
        && let Some(v) = step(f, config, &jumps)
    {
        return v;
    }
    if let Some(v) = no_cleanup(f, config) {
        return v;
    }
    // Three or more cleanups make a sawtooth; with fewer, the floors say too little and
    // the trend of the whole series decides.
    if drops.len() >= 3 {
        return sawtooth(f, config, &drops);
    }
    trend(f, config)
}

fn step(f: &Features<'_>, config: &AnalysisConfig, jumps: &[usize]) -> Option<Verdict> {
    if jumps.is_empty() || jumps.len() > 10 || jumps.windows(2).any(|w| w[1] - w[0] < 3) {
        return None;
    }
    // Take the jumps out: what is left must be flat.
    let mut adjusted = Vec::with_capacity(f.n);
    let mut offset = 0.0;
    let mut next = 0;
    let mut total = 0.0;
    for i in 0..f.n {
        if next < jumps.len() && i == jumps[next] + 1 {
            offset += f.d[jumps[next]];
            total += f.d[jumps[next]];
            next += 1;
        }
        adjusted.push(f.y[i] - offset);
    }
    let flat = stats::theil_sen(f.t, &adjusted, config.interval_z)?;
    let drift = (flat.slope * f.span).abs();
    if drift > 0.2 * total {
        return None;
    }
    let plateau_noise = stats::robust_sd(&adjusted);
    if total < f.material(config, plateau_noise) {
        return None;
    }
    let when: Vec<String> = jumps
        .iter()
        .take(5)
        .map(|&i| format!("+{} at t={:.1}s", bytes(f.d[i]), f.t[i + 1]))
        .collect();
    if jumps.len() == 1 {
        return Some(Verdict::none(
            0.7,
            vec![format!(
                "one level shift ({}) between flat plateaus: a single step up is not a trend",
                when.join(", ")
            )],
        ));
    }
    let k = jumps.len() as f64;
    let rate = total / f.span;
    let mean_jump = total / k;
    let level =
        stats::median(&adjusted[jumps[jumps.len() - 1] + 1..]).map_or(f.y[f.n - 1], |m| m + total);
    let fit = 1.0 - drift / total.max(1.0);
    Some(Verdict {
        pattern: Pattern::Step,
        fit: fit.clamp(0.5, 1.0),
        rate: Some(rate),
        model: Some(LocalModel::Line {
            intercept: f.y[0],
            slope: rate,
        }),
        projection: Projection::Linear {
            level,
            rate,
            rate_low: mean_jump * (k - 2.0 * k.sqrt()).max(0.5) / f.span,
            rate_high: mean_jump * (k + 2.0 * k.sqrt()) / f.span,
        },
        evidence: vec![
            format!(
                "{} sudden jumps ({}) adding {} in all, never given back",
                jumps.len(),
                when.join(", "),
                bytes(total)
            ),
            format!(
                "between the jumps memory is flat (drift {} over the window)",
                bytes(drift)
            ),
        ],
    })
}

fn no_cleanup(f: &Features<'_>, config: &AnalysisConfig) -> Option<Verdict> {
    if f.d.iter().any(|&d| d < 0.0) {
        return None;
    }
    let increments = f.d.iter().filter(|&&d| d > 0.0).count();
    let rise = f.y[f.n - 1] - f.y[0];
    if increments < 8.max(f.d.len() / 10) || rise < f.material(config, 0.0) || rise <= 0.0 {
        return None;
    }
    let ts = &f.ts;
    Some(Verdict {
        pattern: Pattern::NoCleanup,
        fit: 0.8 + 0.2 * (increments as f64 / f.d.len() as f64),
        rate: Some(ts.slope),
        model: None,
        projection: Projection::Linear {
            level: ts.at(f.span).max(f.y[f.n - 1]),
            rate: ts.slope,
            rate_low: ts.slope_low,
            rate_high: ts.slope_high,
        },
        evidence: vec![format!(
            "memory never went down in {} samples; it grew {} times, by {} in all",
            f.n,
            increments,
            bytes(rise)
        )],
    })
}

fn sawtooth(f: &Features<'_>, config: &AnalysisConfig, drops: &[usize]) -> Verdict {
    // Floors: the minimum after each cleanup, up to the next one.
    let mut ft = Vec::new();
    let mut fy = Vec::new();
    let mut peaks = Vec::new();
    let full: Vec<usize> = drops.windows(2).map(|w| w[1] - w[0]).collect();
    let typical =
        stats::median(&full.iter().map(|&l| l as f64).collect::<Vec<_>>()).unwrap_or(f.n as f64);
    let dts: Vec<f64> = f.t.windows(2).map(|w| w[1] - w[0]).collect();
    let typical_dt = stats::median(&dts).unwrap_or(0.0);
    for (k, &i) in drops.iter().enumerate() {
        let start = i + 1;
        let end = drops.get(k + 1).map_or(f.n, |&j| j + 1);
        // A cleanup inside a gap in the samples: neither peak nor floor was seen.
        if f.t[start] - f.t[i] > 3.0 * typical_dt {
            continue;
        }
        // The peak before this cleanup: the median of the last three samples before it.
        let from = i.saturating_sub(2);
        if let Some(peak) = stats::median(&f.y[from..=i]) {
            peaks.push((
                f.t[from..=i].iter().sum::<f64>() / (i + 1 - from) as f64,
                peak,
            ));
        }
        // A trailing partial cycle says little about its floor.
        if end == f.n && ((end - start) as f64) < typical / 2.0 {
            continue;
        }
        // The floor: the lowest of the first third of a typical cycle after the cleanup
        // (the same count for every cycle, so that every floor has the same noise bias).
        let first = ((typical / 3.0).ceil() as usize).clamp(1, end - start);
        if let Some((idx, &v)) = f.y[start..start + first]
            .iter()
            .enumerate()
            .min_by(|a, b| a.1.total_cmp(b.1))
        {
            ft.push(f.t[start + idx]);
            fy.push(v);
        }
    }
    let cycles = drops.len();
    let fallback = |why: String| {
        Verdict::none(
            0.8,
            vec![
                format!("{cycles} cleanups (sharp drops) seen: allocate/free cycles"),
                why,
            ],
        )
    };
    let Some(floor) = stats::theil_sen(&ft, &fy, config.interval_z) else {
        return fallback("the floors could not be fitted".to_owned());
    };
    // The rise the floors show between the first and the last, not extrapolated.
    let rise = floor.slope * (ft[ft.len() - 1] - ft[0]);
    // A floor is uncertain by the noise and by where the first sample after a cleanup
    // lands on the ramp (up to one step of the ramp).
    let needed = f.material(config, f.diff_noise + f.step.abs() / 2.0);
    let fmk = stats::mann_kendall(&fy);
    let rising = fy.len() >= 2 && floor.slope > 0.0 && rise >= needed && fmk.tau >= 0.5;
    if !rising {
        return fallback(format!(
            "the floor after each cleanup does not rise (it moves {} over the window): a healthy sawtooth",
            bytes(rise)
        ));
    }
    // Rate and level from all the samples after the first cleanup: a regression on time
    // and on the time since the last cleanup (the ramp). The floor rises at the time
    // coefficient; a typical cycle's ramp adds the peak on top.
    let (rate, rate_low, rate_high, level) = sawtooth_regression(f, drops, config.interval_z)
        // The regression must agree with the floors that decided the verdict.
        .filter(|r| r.0 > 0.0 && r.0 <= 3.0 * floor.slope && 3.0 * r.0 >= floor.slope)
        .unwrap_or_else(|| {
            let offsets: Vec<f64> = peaks.iter().map(|&(t, p)| p - floor.slope * t).collect();
            let level = stats::median(&offsets).map_or(f.y[f.n - 1], |o| o + floor.slope * f.span);
            (floor.slope, floor.slope_low, floor.slope_high, level)
        });
    let amplitude = level - floor.at(f.span);
    let fit = (0.6 + 0.1 * fy.len() as f64).min(1.0) * (0.5 + 0.5 * fmk.tau.max(0.0));
    Verdict {
        pattern: Pattern::Sawtooth,
        fit,
        rate: Some(rate),
        model: Some(LocalModel::Line {
            intercept: floor.intercept,
            slope: floor.slope,
        }),
        projection: Projection::Linear {
            level,
            rate,
            rate_low,
            rate_high,
        },
        evidence: vec![
            format!("{cycles} cleanups (sharp drops) seen: allocate/free cycles"),
            format!(
                "the floor after each cleanup rises {}/s ({} over the window); peaks reach {} above it",
                bytes(rate),
                bytes(rise),
                bytes(amplitude)
            ),
        ],
    }
}

/// Regresses the samples after the first cleanup on time and on time since the last
/// cleanup. Returns (rate, rate low, rate high, peak level at the end).
fn sawtooth_regression(f: &Features<'_>, drops: &[usize], z: f64) -> Option<(f64, f64, f64, f64)> {
    let first = *drops.first()?;
    let cleanups: Vec<f64> = drops.iter().map(|&i| (f.t[i] + f.t[i + 1]) / 2.0).collect();
    let dts: Vec<f64> = f.t.windows(2).map(|w| w[1] - w[0]).collect();
    let typical_dt = stats::median(&dts)?;
    // A cleanup inside a gap happened at an unknown time: its cycle is left out.
    let seen: Vec<bool> = drops
        .iter()
        .map(|&i| f.t[i + 1] - f.t[i] <= 3.0 * typical_dt)
        .collect();
    let cycle = stats::median(&cleanups.windows(2).map(|w| w[1] - w[0]).collect::<Vec<_>>())?;
    let mut tt = Vec::with_capacity(f.n - first);
    let mut tau = Vec::with_capacity(f.n - first);
    let mut yy = Vec::with_capacity(f.n - first);
    let mut k = 0;
    for i in first + 1..f.n {
        while k + 1 < drops.len() && i > drops[k + 1] {
            k += 1;
        }
        // Far beyond a typical cycle since the last cleanup seen: a cleanup was missed
        // (inside a gap), and the time since it is unknown.
        let since = f.t[i] - cleanups[k];
        if seen[k] && since <= 1.5 * cycle {
            tt.push(f.t[i]);
            tau.push(since);
            yy.push(f.y[i]);
        }
    }
    let (b, se) = stats::ols2(&tt, &tau, &yy)?;
    let level = b[0] + b[1] * f.span + b[2].max(0.0) * cycle;
    (b[1].is_finite() && level.is_finite()).then_some((
        b[1],
        b[1] - z * se[1],
        b[1] + z * se[1],
        level,
    ))
}

fn trend(f: &Features<'_>, config: &AnalysisConfig) -> Verdict {
    let rise = f.ts.slope * f.span;
    let needed = f.material(config, f.noise);
    let z = f.mk.z;
    if z < config.trend_z || rise < needed || f.ts.slope <= 0.0 {
        let closeness =
            (z.max(0.0) / config.trend_z).min(1.0) * (rise.max(0.0) / needed.max(1.0)).min(1.0);
        return Verdict::none(
            1.0 - 0.5 * closeness,
            vec![format!(
                "no sustained growth: Mann-Kendall z = {z:.2} (needs {:.1}), rise {} over the window (needs {})",
                config.trend_z,
                bytes(rise),
                bytes(needed)
            )],
        );
    }
    let significance = 1.0 - f.mk.p_value;
    let magnitude = (rise / (2.0 * needed)).min(1.0);
    let fit = significance * (0.6 + 0.4 * magnitude);
    let trend_evidence = format!(
        "sustained growth: Mann-Kendall z = {z:.1} (p = {:.1e}), Theil-Sen {}/s, {} over the window (noise {})",
        f.mk.p_value,
        bytes(f.ts.slope),
        bytes(rise),
        bytes(f.noise)
    );
    if let Some(q) = f.quad {
        let s_start = q.slope_at_u(-1.0);
        let s_mid = q.slope_at_u(0.0);
        let s_end = q.slope_at_u(1.0);
        if q.c_t >= 4.0 && s_end > 0.0 && s_end >= 3.0 * s_start.max(0.0) && s_end > s_mid {
            // Project with an exponential fitted to the whole window; without one, with the
            // rate constant the parabola's slopes imply.
            let (level, rate, k) = match stats::exponential_fit(f.t, f.y) {
                Some(e) => (e.at(f.span), e.c * e.k * (e.k * f.span).exp(), e.k),
                None => {
                    let k = if s_mid > 0.0 {
                        (s_end / s_mid).ln() / q.half_span
                    } else {
                        (s_end / (s_end - s_mid).max(1e-9)).ln().max(1.0) / q.half_span
                    };
                    (q.a + q.b + q.c, s_end, k)
                }
            };
            return Verdict {
                pattern: Pattern::Exponential,
                fit,
                rate: Some(rate),
                model: Some(LocalModel::Parabola(q)),
                projection: Projection::Exponential { level, rate, k },
                evidence: vec![
                    trend_evidence,
                    format!(
                        "accelerating: the rate went from {}/s at the start to {}/s at the end (curvature t = {:.1})",
                        bytes(s_start),
                        bytes(s_end),
                        q.c_t
                    ),
                ],
            };
        }
    }
    Verdict {
        pattern: Pattern::Linear,
        fit,
        rate: Some(f.ts.slope),
        model: None,
        projection: Projection::Linear {
            level: f.ts.at(f.span),
            rate: f.ts.slope,
            rate_low: f.ts.slope_low,
            rate_high: f.ts.slope_high,
        },
        evidence: vec![
            trend_evidence,
            format!(
                "a straight line fits with R² = {:.2}",
                f.lin.map_or(0.0, |l| l.r_squared)
            ),
        ],
    }
}
