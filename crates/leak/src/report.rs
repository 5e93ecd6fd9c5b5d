//! The leak detector's report, in perfkit's uniform shape.

use crate::analysis::{Analysis, format_secs, signed_bytes};
use perfkit_core::{Figure, Finding, Report, Severity};
use serde::Serialize;

/// What a [`LeakDetector`](crate::LeakDetector) says about itself.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeakReport {
    /// The memory source's name.
    pub source: String,
    /// Snapshots in the window.
    pub snapshots: usize,
    /// Bytes at the latest snapshot.
    pub latest_bytes: Option<u64>,
    /// Failed reads of the source.
    pub read_errors: u64,
    /// Cleanups triggered (manual and automatic).
    pub cleanups_triggered: u64,
    /// The last verdict.
    pub verdict: Option<Analysis>,
}

impl Report for LeakReport {
    fn name(&self) -> &str {
        "leak"
    }

    fn severity(&self) -> Severity {
        self.verdict.as_ref().map_or(Severity::Ok, |v| v.severity)
    }

    fn summary(&self) -> String {
        self.verdict
            .as_ref()
            .map_or_else(|| "no verdict yet".to_owned(), Analysis::summary)
    }

    fn figures(&self) -> Vec<Figure> {
        let mut out = vec![Figure::count("snapshots", self.snapshots as u64)];
        if let Some(b) = self.latest_bytes {
            out.push(Figure::bytes(format!("{}_bytes", self.source), b));
        }
        if let Some(v) = &self.verdict {
            out.extend(verdict_figures(v));
        }
        out
    }

    fn findings(&self) -> Vec<Finding> {
        self.verdict
            .as_ref()
            .map(|v| verdict_findings(v, &self.source))
            .unwrap_or_default()
    }
}

/// Key figures of a verdict: growth, confidence, time to the limit.
pub fn verdict_figures(v: &Analysis) -> Vec<Figure> {
    let mut out = vec![
        Figure::new(
            "growth_bytes_per_sec",
            v.growth_bytes_per_sec,
            "bytes_per_sec",
        ),
        Figure::ratio("confidence", v.confidence),
    ];
    if let Some(oom) = v.oom {
        out.push(Figure::bytes("limit_bytes", oom.limit_bytes));
        if let Some(eta) = oom.eta_secs.filter(|_| v.leak) {
            out.push(Figure::secs("oom_eta_secs", eta));
        }
    }
    out
}

/// A finding naming the leak in `what` (a component or source), with its pattern and time
/// to the limit; none when there is no leak.
pub fn verdict_findings(v: &Analysis, what: &str) -> Vec<Finding> {
    if !v.leak {
        return Vec::new();
    }
    let mut message = format!(
        "{what} leaks: {} pattern, growing {}/s",
        v.pattern,
        signed_bytes(v.growth_bytes_per_sec)
    );
    if let Some(oom) = v.oom {
        match oom.eta_secs {
            Some(eta) => message.push_str(&format!(
                ", reaches the {} limit ({}) in ~{} (between {} and {})",
                oom.limit_source,
                perfkit_core::units::format_bytes(oom.limit_bytes),
                format_secs(eta),
                oom.eta_low_secs.map_or("?".into(), format_secs),
                oom.eta_high_secs.map_or("never".into(), format_secs),
            )),
            None => message.push_str(", time to the limit unknown"),
        }
    }
    if let Some(e) = v.evidence.first() {
        message.push_str("; ");
        message.push_str(e);
    }
    vec![Finding::new(
        v.severity,
        format!("{}_leak", v.pattern),
        message,
    )]
}
