//! The profiler's [`perfkit_core::Report`]: top spans as figures, suggestions as findings.

use crate::profile::{SpanStats, Summary};
use crate::suggest::Suggestion;
use perfkit_core::{Figure, Finding, Report, Severity};
use serde::Serialize;

/// How many span names the report's figures list.
const TOP_SPANS: usize = 6;

/// What [`crate::Profiler::report`] returns; serializable, and convertible into a
/// `perfkit_core::ComponentReport`.
#[derive(Debug, Clone, Serialize)]
pub struct ProfilerReport {
    /// The span statistics.
    pub summary: Summary,
    /// The top span names by total time (the first entries of `summary.spans`).
    pub top_spans: Vec<SpanStats>,
    /// The suggestions, largest saving first.
    pub suggestions: Vec<Suggestion>,
}

impl ProfilerReport {
    /// A report from statistics and suggestions.
    pub fn new(summary: Summary, suggestions: Vec<Suggestion>) -> Self {
        let top_spans = summary.spans.iter().take(TOP_SPANS).cloned().collect();
        ProfilerReport {
            summary,
            top_spans,
            suggestions,
        }
    }
}

impl Report for ProfilerReport {
    fn name(&self) -> &str {
        "profiler"
    }

    fn severity(&self) -> Severity {
        self.suggestions
            .iter()
            .map(|s| s.severity)
            .max()
            .unwrap_or(Severity::Ok)
    }

    fn summary(&self) -> String {
        format!(
            "{} traces sampled of {} ({:.0} % sampling), {} spans, {} suggestions",
            self.summary.traces_sampled,
            self.summary.roots_seen,
            self.summary.sample_rate * 100.0,
            self.summary.spans_sampled,
            self.suggestions.len()
        )
    }

    fn figures(&self) -> Vec<Figure> {
        let mut out = vec![
            Figure::count("traces_sampled", self.summary.traces_sampled),
            Figure::count("spans_sampled", self.summary.spans_sampled),
            Figure::ratio("sample_rate", self.summary.sample_rate),
        ];
        for s in &self.top_spans {
            out.push(Figure::secs(
                format!("{}_total", s.name),
                s.total_ns as f64 / 1e9,
            ));
            out.push(Figure::secs(
                format!("{}_p50", s.name),
                s.p50_ns as f64 / 1e9,
            ));
            out.push(Figure::secs(
                format!("{}_p99", s.name),
                s.p99_ns as f64 / 1e9,
            ));
        }
        out
    }

    fn findings(&self) -> Vec<Finding> {
        self.suggestions
            .iter()
            .map(|s| {
                Finding::new(
                    s.severity,
                    s.kind.as_str(),
                    format!("{} (confidence {:.2})", s.message, s.confidence),
                )
            })
            .collect()
    }
}
