//! Memory limits and out-of-memory prediction.
//!
//! The limit a series is measured against is resolved from several sources, in a fixed
//! order of precedence: an explicit limit, a memory budget (perfkit-budget's, or any the
//! caller supplies as a number), the cgroup's `memory.max`, and the system's memory.

use perfkit_alloc::MemorySource;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// Where a memory limit came from, in order of precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    /// Given explicitly (`--limit`, the builder).
    Explicit,
    /// A memory budget's limit.
    Budget,
    /// The cgroup's `memory.max` (or v1 `memory.limit_in_bytes`).
    Cgroup,
    /// The machine's total memory.
    System,
}

impl LimitKind {
    /// The lower-case name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitKind::Explicit => "explicit",
            LimitKind::Budget => "budget",
            LimitKind::Cgroup => "cgroup",
            LimitKind::System => "system",
        }
    }
}

impl fmt::Display for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A resolved memory limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryLimit {
    /// The limit in bytes.
    pub bytes: u64,
    /// Where it came from.
    pub kind: LimitKind,
}

impl MemoryLimit {
    /// A limit of `bytes` from `kind`.
    pub fn new(bytes: u64, kind: LimitKind) -> Self {
        MemoryLimit { bytes, kind }
    }
}

/// One place a limit may come from.
#[derive(Debug, Clone)]
pub enum LimitSource {
    /// A fixed limit given by the caller.
    Explicit(u64),
    /// A memory budget's limit, supplied by the caller (perfkit-leak does not depend on
    /// perfkit-budget; the application passes the number).
    Budget(u64),
    /// A cgroup memory source; its reading's `limit_bytes` is the limit (none when the
    /// cgroup is unlimited).
    Cgroup(Arc<dyn MemorySource>),
    /// A system memory source; its reading's `limit_bytes` (the total) is the limit.
    System(Arc<dyn MemorySource>),
}

impl LimitSource {
    fn kind(&self) -> LimitKind {
        match self {
            LimitSource::Explicit(_) => LimitKind::Explicit,
            LimitSource::Budget(_) => LimitKind::Budget,
            LimitSource::Cgroup(_) => LimitKind::Cgroup,
            LimitSource::System(_) => LimitKind::System,
        }
    }

    fn read(&self) -> Option<u64> {
        match self {
            LimitSource::Explicit(b) | LimitSource::Budget(b) => Some(*b).filter(|&b| b > 0),
            LimitSource::Cgroup(s) | LimitSource::System(s) => {
                s.read().ok().and_then(|r| r.limit_bytes).filter(|&b| b > 0)
            }
        }
    }
}

/// Resolves the limit from the sources it holds: explicit, then budget, then cgroup, then
/// system, whatever order they were added in. A source that cannot be read, or that has
/// no limit (an unlimited cgroup), is skipped.
///
/// ```
/// use perfkit_leak::{LimitKind, LimitResolver, LimitSource};
/// let limits = LimitResolver::new()
///     .with(LimitSource::Budget(512 << 20))
///     .with(LimitSource::Explicit(1 << 30));
/// let limit = limits.resolve().unwrap();
/// assert_eq!((limit.bytes, limit.kind), (1 << 30, LimitKind::Explicit));
/// assert!(LimitResolver::new().resolve().is_none());
/// ```
#[derive(Debug, Clone, Default)]
pub struct LimitResolver {
    sources: Vec<LimitSource>,
}

impl LimitResolver {
    /// No sources: no limit.
    pub fn new() -> Self {
        LimitResolver::default()
    }

    /// Adds a source (builder style).
    pub fn with(mut self, source: LimitSource) -> Self {
        self.sources.push(source);
        self
    }

    /// Adds a source.
    pub fn push(&mut self, source: LimitSource) {
        self.sources.push(source);
    }

    /// Whether no source was added.
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// The limit of the highest-precedence source that gives one.
    pub fn resolve(&self) -> Option<MemoryLimit> {
        let mut sources: Vec<&LimitSource> = self.sources.iter().collect();
        sources.sort_by_key(|s| s.kind());
        sources
            .into_iter()
            .find_map(|s| s.read().map(|b| MemoryLimit::new(b, s.kind())))
    }
}

/// When memory is expected to reach the limit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OomEstimate {
    /// The limit measured against.
    pub limit_bytes: u64,
    /// Where the limit came from.
    pub limit_source: LimitKind,
    /// The memory level the projection starts from (the fitted level at the last sample;
    /// for a sawtooth, the level its peaks reach).
    pub level_bytes: f64,
    /// The best estimate of the seconds until the limit is reached; `None` when memory is
    /// not growing.
    pub eta_secs: Option<f64>,
    /// The early end of the range (growth at the fast end of its confidence interval).
    pub eta_low_secs: Option<f64>,
    /// The late end of the range; `None` when the slow end of the growth's interval is not
    /// growth at all.
    pub eta_high_secs: Option<f64>,
}

/// Seconds to grow `headroom` bytes at `rate` bytes per second.
pub(crate) fn linear_eta(headroom: f64, rate: f64) -> Option<f64> {
    if headroom <= 0.0 {
        Some(0.0)
    } else if rate > 0.0 && rate.is_finite() {
        Some(headroom / rate)
    } else {
        None
    }
}

/// Seconds to grow `headroom` bytes starting at `rate` bytes per second and accelerating
/// with exponential rate constant `k` (per second).
pub(crate) fn exponential_eta(headroom: f64, rate: f64, k: f64) -> Option<f64> {
    if headroom <= 0.0 {
        return Some(0.0);
    }
    if rate.is_nan() || rate <= 0.0 || !rate.is_finite() {
        return None;
    }
    if k.is_nan() || k <= 0.0 || !k.is_finite() {
        return linear_eta(headroom, rate);
    }
    Some((1.0 + k * headroom / rate).ln() / k)
}

/// Builds an estimate from a level, a rate and its interval.
pub(crate) fn estimate(
    limit: MemoryLimit,
    level: f64,
    eta: Option<f64>,
    eta_low: Option<f64>,
    eta_high: Option<f64>,
) -> OomEstimate {
    // The range always contains the estimate.
    let eta_low = match (eta_low, eta) {
        (Some(l), Some(e)) => Some(l.min(e)),
        (l, _) => l,
    };
    let eta_high = match (eta_high, eta) {
        (Some(h), Some(e)) => Some(h.max(e)),
        (h, _) => h,
    };
    OomEstimate {
        limit_bytes: limit.bytes,
        limit_source: limit.kind,
        level_bytes: level,
        eta_secs: eta,
        eta_low_secs: eta_low,
        eta_high_secs: eta_high,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use perfkit_alloc::{MemoryError, MemoryReading};

    #[derive(Debug)]
    struct Fixed(Option<u64>, bool);

    impl MemorySource for Fixed {
        fn name(&self) -> &'static str {
            "fixed"
        }
        fn read(&self) -> Result<MemoryReading, MemoryError> {
            if self.1 {
                return Err(MemoryError::NotAvailable {
                    source_name: "fixed",
                    reason: "test".into(),
                });
            }
            Ok(MemoryReading {
                used_bytes: 1,
                limit_bytes: self.0,
            })
        }
    }

    #[test]
    fn precedence_is_explicit_budget_cgroup_system() {
        let system = LimitSource::System(Arc::new(Fixed(Some(16 << 30), false)));
        let cgroup_unlimited = LimitSource::Cgroup(Arc::new(Fixed(None, false)));
        let cgroup_broken = LimitSource::Cgroup(Arc::new(Fixed(Some(1), true)));
        let cgroup = LimitSource::Cgroup(Arc::new(Fixed(Some(2 << 30), false)));
        let r = LimitResolver::new()
            .with(system.clone())
            .with(cgroup_unlimited)
            .with(cgroup_broken);
        assert_eq!(
            r.resolve(),
            Some(MemoryLimit::new(16 << 30, LimitKind::System))
        );
        let r = r.with(cgroup);
        assert_eq!(r.resolve().unwrap().kind, LimitKind::Cgroup);
        let r = r.with(LimitSource::Budget(100));
        assert_eq!(
            r.resolve().unwrap(),
            MemoryLimit::new(100, LimitKind::Budget)
        );
        let r = r.with(LimitSource::Explicit(7));
        assert_eq!(
            r.resolve().unwrap(),
            MemoryLimit::new(7, LimitKind::Explicit)
        );
    }

    #[test]
    fn etas() {
        assert_eq!(linear_eta(100.0, 10.0), Some(10.0));
        assert_eq!(linear_eta(-1.0, 10.0), Some(0.0));
        assert_eq!(linear_eta(100.0, 0.0), None);
        let e = exponential_eta(100.0, 10.0, 0.1).unwrap();
        assert!(e < 10.0 && e > 5.0, "{e}");
        assert_eq!(exponential_eta(100.0, 10.0, 0.0), Some(10.0));
        let est = estimate(
            MemoryLimit::new(10, LimitKind::System),
            5.0,
            Some(10.0),
            Some(12.0),
            None,
        );
        assert_eq!(est.eta_low_secs, Some(10.0));
    }
}
