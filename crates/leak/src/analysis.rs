//! Classifying a memory series: the pattern, whether it is a leak, how sure, how fast it
//! grows and when it reaches the limit.
//!
//! The classifier looks, in order of preference, for
//! 1. **step**: two or more isolated upward jumps, no sharp drop, and plateaus that stay
//!    flat once the jumps are taken out;
//! 2. **no_cleanup**: the series never goes down and grows in many increments;
//! 3. **sawtooth**: two or more sharp drops (cleanups); a leak when the floors after the
//!    cleanups rise, healthy (`none`) when they do not;
//! 4. a significant monotone trend (Mann-Kendall) that is also material (the Theil-Sen
//!    rise over the window exceeds both a fraction of the level and a multiple of the
//!    noise): **exponential** when a parabola fit shows significant curvature and the rate
//!    at the end is several times the rate at the start, else **linear**;
//! 5. otherwise **none**.
//!
//! "Sharp" jumps and drops are differences between consecutive samples beyond six robust
//! standard deviations of those differences and beyond 5 % of the series' range.

use crate::classify::{self, Features, LocalModel, despike};
use crate::oom::{self, MemoryLimit, OomEstimate};
use crate::series::{self, PrepareOptions, Sample};
use crate::stats::MannKendall;
use perfkit_core::Severity;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// The shape of a memory series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pattern {
    /// No sustained growth (flat, noisy, or a healthy sawtooth).
    None,
    /// Steady growth at a roughly constant rate.
    Linear,
    /// Growth whose rate keeps increasing.
    Exponential,
    /// Allocate/cleanup cycles whose floor rises.
    Sawtooth,
    /// Flat plateaus separated by a few sudden jumps never given back.
    Step,
    /// Never goes down, grows in many small increments.
    NoCleanup,
}

impl Pattern {
    /// All patterns.
    pub const ALL: [Pattern; 6] = [
        Pattern::None,
        Pattern::Linear,
        Pattern::Exponential,
        Pattern::Sawtooth,
        Pattern::Step,
        Pattern::NoCleanup,
    ];

    /// Whether this pattern is a leak (everything but `none`).
    pub fn is_leak(self) -> bool {
        self != Pattern::None
    }

    /// The snake-case name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Pattern::None => "none",
            Pattern::Linear => "linear",
            Pattern::Exponential => "exponential",
            Pattern::Sawtooth => "sawtooth",
            Pattern::Step => "step",
            Pattern::NoCleanup => "no_cleanup",
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Thresholds of the analysis. The defaults suit memory series sampled every few hundred
/// milliseconds to minutes.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalysisConfig {
    /// Fewer points than this (after repairs) give "not enough data". Default 10.
    pub min_points: usize,
    /// The Mann-Kendall normal score a trend must reach. Default 3.0 (p ≈ 0.003).
    pub trend_z: f64,
    /// The rise over the window must be at least this fraction of the median level.
    /// Default 0.01.
    pub min_relative_growth: f64,
    /// ... and at least this many robust noise standard deviations. Default 3.0.
    pub noise_multiple: f64,
    /// A single fall to at most this fraction of the previous sample is a restart; the
    /// analysis starts there, unless fewer than `min_points` samples follow it and at
    /// least as many precede it: then it is the series' end (a process freeing its memory
    /// as it exits), and the analysis stops there. 0 disables. Default 0.25.
    pub restart_ratio: f64,
    /// Longer series are averaged into this many buckets first. Default 10,000.
    pub max_points: usize,
    /// A leak reaching the limit within this time is critical. Default 1 hour.
    pub critical_within: Duration,
    /// A leak reaching the limit only after this time (or never) is info. Default 30 days.
    pub info_beyond: Duration,
    /// Normal quantile of the confidence intervals. Default 1.96 (95 %).
    pub interval_z: f64,
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        AnalysisConfig {
            min_points: 10,
            trend_z: 3.0,
            min_relative_growth: 0.01,
            noise_multiple: 3.0,
            restart_ratio: 0.25,
            max_points: 10_000,
            critical_within: Duration::from_secs(3600),
            info_beyond: Duration::from_secs(30 * 86_400),
            interval_z: 1.96,
        }
    }
}

/// The robust trend of a series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Trend {
    /// The Theil-Sen slope, bytes per second.
    pub slope_bytes_per_sec: f64,
    /// The slope's confidence interval, low end.
    pub slope_low_bytes_per_sec: f64,
    /// The slope's confidence interval, high end.
    pub slope_high_bytes_per_sec: f64,
    /// The fitted level at the first analysed sample.
    pub start_bytes: f64,
    /// The fitted level at the last analysed sample.
    pub end_bytes: f64,
    /// The Mann-Kendall test.
    pub mann_kendall: MannKendall,
    /// Confidence that the series has a monotone trend, 0..=1 (one minus the
    /// Mann-Kendall p-value).
    pub confidence: f64,
    /// R² of a least-squares line (goodness of a linear fit).
    pub r_squared: f64,
    /// Robust standard deviation of the residuals: the noise.
    pub noise_bytes: f64,
}

/// The fitted model, for drawing the trend next to the series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Model {
    /// `intercept + slope * (t - origin)`.
    Line {
        /// Time origin (the caller's seconds).
        origin: f64,
        /// Level at the origin.
        intercept: f64,
        /// Bytes per second.
        slope: f64,
    },
    /// `a + b u + c u²` with `u = (t - mid) / half_span`.
    Parabola {
        /// Centre (the caller's seconds).
        mid: f64,
        /// Half the window, seconds.
        half_span: f64,
        /// Constant term.
        a: f64,
        /// Linear term.
        b: f64,
        /// Quadratic term.
        c: f64,
    },
}

impl Model {
    /// The model's value at the caller's time `t`.
    pub fn at(&self, t: f64) -> f64 {
        match *self {
            Model::Line {
                origin,
                intercept,
                slope,
            } => intercept + slope * (t - origin),
            Model::Parabola {
                mid,
                half_span,
                a,
                b,
                c,
            } => {
                let u = (t - mid) / half_span;
                a + b * u + c * u * u
            }
        }
    }
}

/// The verdict on a series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// The pattern.
    pub pattern: Pattern,
    /// Whether the pattern is a leak.
    pub leak: bool,
    /// Confidence in the verdict, 0..=1 (0 when there is not enough data).
    pub confidence: f64,
    /// The leak's growth rate, bytes per second (for a sawtooth, the floor's; for an
    /// exponential leak, the current rate; for `none`, the trend's slope).
    pub growth_bytes_per_sec: f64,
    /// How urgent it is.
    pub severity: Severity,
    /// Samples given.
    pub points: usize,
    /// Samples analysed (after a restart cut and downsampling).
    pub analyzed_points: usize,
    /// Whether there were too few samples to say anything.
    pub insufficient_data: bool,
    /// When memory is expected to reach the limit (when a limit is known).
    pub oom: Option<OomEstimate>,
    /// The robust trend of the analysed window.
    pub trend: Option<Trend>,
    /// The fitted model of the pattern.
    pub model: Option<Model>,
    /// The analysed window, the caller's seconds.
    pub window_secs: Option<(f64, f64)>,
    /// The time of the restart the analysis started from.
    pub restart_at_secs: Option<f64>,
    /// What the verdict rests on, in sentences.
    pub evidence: Vec<String>,
    /// Repairs applied to the input, in sentences.
    pub notes: Vec<String>,
}

impl Analysis {
    /// Seconds until the limit, if a limit is known and memory leaks.
    pub fn oom_eta_secs(&self) -> Option<f64> {
        self.oom.and_then(|o| o.eta_secs)
    }

    /// One human sentence.
    pub fn summary(&self) -> String {
        if self.insufficient_data {
            return format!(
                "not enough data: {} samples to analyse",
                self.analyzed_points
            );
        }
        if !self.leak {
            return format!("no leak (confidence {:.0} %)", self.confidence * 100.0);
        }
        let mut s = format!(
            "{} leak growing {}/s (confidence {:.0} %)",
            self.pattern,
            signed_bytes(self.growth_bytes_per_sec),
            self.confidence * 100.0
        );
        if let Some(oom) = self.oom {
            match oom.eta_secs {
                Some(eta) => s.push_str(&format!(
                    ", reaches the {} limit of {} in ~{} ({})",
                    oom.limit_source,
                    perfkit_core::units::format_bytes(oom.limit_bytes),
                    format_secs(eta),
                    format_range(oom.eta_low_secs, oom.eta_high_secs)
                )),
                None => s.push_str(", no estimate of when it reaches the limit"),
            }
        }
        s
    }
}

pub(crate) fn signed_bytes(v: f64) -> String {
    let m = perfkit_core::units::format_bytes(v.abs().round() as u64);
    if v < 0.0 { format!("-{m}") } else { m }
}

/// Formats seconds for humans.
pub fn format_secs(secs: f64) -> String {
    if (0.0..1e15).contains(&secs) {
        perfkit_core::units::format_duration(Duration::from_secs_f64(secs))
    } else {
        "never".to_owned()
    }
}

fn format_range(low: Option<f64>, high: Option<f64>) -> String {
    let low = low.map_or("?".to_owned(), format_secs);
    let high = high.map_or("never".to_owned(), format_secs);
    format!("range {low} to {high}")
}

/// Analyses a series against an optional limit.
///
/// ```
/// use perfkit_leak::{analyze, AnalysisConfig, LimitKind, MemoryLimit, Pattern, Sample};
/// // 1 KiB a second on top of 1 MiB, with a wobble.
/// let samples: Vec<Sample> = (0..120)
///     .map(|i| Sample::new(i as f64, (1 << 20) + 1024 * i + [0, 3000, 500, 2500][i as usize % 4]))
///     .collect();
/// let limit = MemoryLimit::new(2 << 20, LimitKind::Explicit);
/// let a = analyze(&samples, &AnalysisConfig::default(), Some(limit));
/// assert_eq!(a.pattern, Pattern::Linear);
/// assert!(a.leak && a.confidence > 0.9);
/// let eta = a.oom_eta_secs().unwrap();
/// assert!((eta - 905.0).abs() < 60.0, "{eta}");
/// ```
pub fn analyze(
    samples: &[Sample],
    config: &AnalysisConfig,
    limit: Option<MemoryLimit>,
) -> Analysis {
    let prepared = series::prepare(
        samples,
        PrepareOptions {
            restart_ratio: config.restart_ratio,
            max_points: config.max_points.max(config.min_points.max(3)),
            min_points: config.min_points.max(3),
        },
    );
    let mut out = Analysis {
        pattern: Pattern::None,
        leak: false,
        confidence: 0.0,
        growth_bytes_per_sec: 0.0,
        severity: Severity::Ok,
        points: samples.len(),
        analyzed_points: prepared.t.len(),
        insufficient_data: false,
        oom: None,
        trend: None,
        model: None,
        window_secs: None,
        restart_at_secs: prepared.restart_at,
        evidence: Vec::new(),
        notes: prepared.notes.clone(),
    };
    let (t, y) = (&prepared.t, &prepared.y);
    let n = t.len();
    let span = t.last().copied().unwrap_or(0.0);
    let needed = config.min_points.max(3);
    if n < needed || span <= 0.0 {
        out.insufficient_data = true;
        out.evidence.push(format!(
            "not enough data: {n} samples over {}; at least {needed} samples over a non-zero time span are needed",
            format_secs(span)
        ));
        return out;
    }
    out.window_secs = Some((prepared.origin, prepared.origin + span));
    let (y, spikes) = despike(t, y);
    if spikes > 0 {
        out.notes.push(format!(
            "{spikes} one-sample spikes (a sharp move straight back) were ignored"
        ));
    }
    let f = Features::new(t, &y, config);
    out.trend = Some(f.trend());
    out.model = Some(Model::Line {
        origin: prepared.origin,
        intercept: f.ts.intercept,
        slope: f.ts.slope,
    });
    out.growth_bytes_per_sec = f.ts.slope;
    let data_factor = (n as f64 / 30.0).min(1.0);

    let verdict = classify::classify(&f, config);
    out.pattern = verdict.pattern;
    out.leak = verdict.pattern.is_leak();
    out.confidence = (verdict.fit * data_factor).clamp(0.0, 1.0);
    out.evidence = verdict.evidence;
    if let Some(rate) = verdict.rate {
        out.growth_bytes_per_sec = rate;
    }
    if let Some(model) = verdict.model {
        out.model = Some(match model {
            LocalModel::Line { intercept, slope } => Model::Line {
                origin: prepared.origin,
                intercept,
                slope,
            },
            LocalModel::Parabola(q) => Model::Parabola {
                mid: q.mid + prepared.origin,
                half_span: q.half_span,
                a: q.a,
                b: q.b,
                c: q.c,
            },
        });
    }
    if out.leak {
        if let Some(limit) = limit {
            out.oom = Some(verdict.projection.estimate(limit));
        }
        out.severity = severity(out.oom.as_ref(), config);
    } else if let Some(limit) = limit {
        out.oom = Some(oom::estimate(limit, f.ts.at(span), None, None, None));
    }
    out
}

fn severity(oom: Option<&OomEstimate>, config: &AnalysisConfig) -> Severity {
    match oom.and_then(|o| o.eta_secs) {
        Some(eta) if eta <= config.critical_within.as_secs_f64() => Severity::Critical,
        Some(eta) if eta > config.info_beyond.as_secs_f64() => Severity::Info,
        _ => Severity::Warning,
    }
}
