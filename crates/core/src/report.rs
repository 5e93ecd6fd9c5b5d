//! Reports: what every component says about itself, in one shape.
//!
//! Each component's `report()` returns its own serializable type implementing [`Report`]
//! (name, overall severity, key figures, findings). [`ComponentReport`] is the uniform,
//! serializable form that the demo, the CLI and a dashboard render the same way for every
//! component; [`ComponentReport::render_text`] is that rendering for a terminal.

use crate::Severity;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// Implemented by every component's report type.
pub trait Report {
    /// The component's name, such as `"budget"` or `"leak"`.
    fn name(&self) -> &str;

    /// The overall severity. By default the most severe finding's, or `ok` without findings.
    fn severity(&self) -> Severity {
        self.findings()
            .iter()
            .map(|f| f.severity)
            .max()
            .unwrap_or(Severity::Ok)
    }

    /// Key figures, in the order they should be shown.
    fn figures(&self) -> Vec<Figure>;

    /// Findings, most important first.
    fn findings(&self) -> Vec<Finding>;

    /// A one-line summary shown beside the name. Empty by default.
    fn summary(&self) -> String {
        String::new()
    }

    /// The uniform form of this report.
    fn to_component_report(&self) -> ComponentReport {
        ComponentReport {
            name: self.name().to_owned(),
            severity: self.severity(),
            summary: self.summary(),
            figures: self.figures(),
            findings: self.findings(),
            details: serde_json::Value::Null,
        }
    }
}

/// One key figure: a named number with its unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    /// What is measured, in snake case (`live_heap_bytes`, `hit_ratio`).
    pub name: String,
    /// The value.
    pub value: f64,
    /// The unit: `bytes`, `ratio`, `secs`, `ns`, `count`, `bytes_per_sec`, ...
    pub unit: String,
    /// The value formatted for humans (`1.50 GiB`, `61.2 %`).
    pub display: String,
}

impl Figure {
    /// A figure whose display text is derived from its unit.
    pub fn new(name: impl Into<String>, value: f64, unit: impl Into<String>) -> Self {
        let unit = unit.into();
        let display = display_value(value, &unit);
        Figure {
            name: name.into(),
            value,
            unit,
            display,
        }
    }

    /// A count.
    pub fn count(name: impl Into<String>, value: u64) -> Self {
        Figure::new(name, value as f64, "count")
    }

    /// A byte size.
    pub fn bytes(name: impl Into<String>, value: u64) -> Self {
        Figure::new(name, value as f64, "bytes")
    }

    /// A ratio between 0 and 1, displayed as a percentage.
    pub fn ratio(name: impl Into<String>, value: f64) -> Self {
        Figure::new(name, value, "ratio")
    }

    /// A duration in seconds.
    pub fn secs(name: impl Into<String>, value: f64) -> Self {
        Figure::new(name, value, "secs")
    }
}

fn display_value(value: f64, unit: &str) -> String {
    match unit {
        "bytes" if value >= 0.0 => crate::units::format_bytes(value.round() as u64),
        "bytes_per_sec" => format!("{}/s", signed_bytes(value)),
        "ratio" => format!("{:.1} %", value * 100.0),
        "secs" if value.is_finite() && value >= 0.0 => {
            crate::units::format_duration(std::time::Duration::from_secs_f64(value))
        }
        "ns" => format!("{value:.1} ns"),
        "count" => format!("{}", value.round() as i64),
        _ if value.fract() == 0.0 && value.abs() < 1e15 => format!("{} {unit}", value as i64),
        _ => format!("{value:.3} {unit}"),
    }
}

fn signed_bytes(value: f64) -> String {
    let magnitude = crate::units::format_bytes(value.abs().round() as u64);
    if value < 0.0 {
        format!("-{magnitude}")
    } else {
        magnitude
    }
}

/// Something a component found: a violation, a leak, a regression, a suggestion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// How much attention it deserves.
    pub severity: Severity,
    /// A short machine-friendly kind (`budget_violation`, `linear_leak`, `batching`).
    pub kind: String,
    /// One human sentence.
    pub message: String,
}

impl Finding {
    /// A finding.
    pub fn new(severity: Severity, kind: impl Into<String>, message: impl Into<String>) -> Self {
        Finding {
            severity,
            kind: kind.into(),
            message: message.into(),
        }
    }
}

/// The uniform, serializable report of one component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentReport {
    /// The component's name.
    pub name: String,
    /// The overall severity.
    pub severity: Severity,
    /// A one-line summary.
    pub summary: String,
    /// Key figures.
    pub figures: Vec<Figure>,
    /// Findings, most important first.
    pub findings: Vec<Finding>,
    /// The component's own report, serialized, for tools that want everything.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub details: serde_json::Value,
}

impl ComponentReport {
    /// An empty report for `name`, with severity `ok`.
    pub fn new(name: impl Into<String>) -> Self {
        ComponentReport {
            name: name.into(),
            severity: Severity::Ok,
            summary: String::new(),
            figures: Vec::new(),
            findings: Vec::new(),
            details: serde_json::Value::Null,
        }
    }

    /// Builds the uniform report from a component's own report, keeping the latter as
    /// `details`.
    pub fn from_report<R: Report + Serialize>(report: &R) -> Self {
        let mut out = report.to_component_report();
        out.details = serde_json::to_value(report).unwrap_or(serde_json::Value::Null);
        out
    }

    /// Adds a figure (builder style).
    pub fn with_figure(mut self, figure: Figure) -> Self {
        self.figures.push(figure);
        self
    }

    /// Adds a finding and raises the overall severity to at least the finding's.
    pub fn with_finding(mut self, finding: Finding) -> Self {
        self.severity = self.severity.max(finding.severity);
        self.findings.push(finding);
        self
    }

    /// Renders the report as indented text for a terminal.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let _ = write!(out, "== {} [{}]", self.name, self.severity);
        if !self.summary.is_empty() {
            let _ = write!(out, " {}", self.summary);
        }
        out.push('\n');
        let width = self.figures.iter().map(|f| f.name.len()).max().unwrap_or(0);
        for f in &self.figures {
            let _ = writeln!(out, "   {:width$}  {}", f.name, f.display);
        }
        for finding in &self.findings {
            let _ = writeln!(
                out,
                "   - {:<8} {}: {}",
                finding.severity, finding.kind, finding.message
            );
        }
        out
    }
}

impl Report for ComponentReport {
    fn name(&self) -> &str {
        &self.name
    }
    fn severity(&self) -> Severity {
        self.severity
    }
    fn figures(&self) -> Vec<Figure> {
        self.figures.clone()
    }
    fn findings(&self) -> Vec<Finding> {
        self.findings.clone()
    }
    fn summary(&self) -> String {
        self.summary.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Toy {
        live: u64,
    }

    impl Report for Toy {
        fn name(&self) -> &str {
            "toy"
        }
        fn severity(&self) -> Severity {
            Severity::Warning
        }
        fn figures(&self) -> Vec<Figure> {
            vec![
                Figure::bytes("live_bytes", self.live),
                Figure::ratio("hit_ratio", 0.612),
            ]
        }
        fn findings(&self) -> Vec<Finding> {
            vec![Finding::new(Severity::Warning, "demo", "something to see")]
        }
    }

    #[test]
    fn uniform_report_keeps_figures_findings_and_details() {
        let r = ComponentReport::from_report(&Toy { live: 3 << 20 });
        assert_eq!(r.name, "toy");
        assert_eq!(r.figures[0].display, "3.00 MiB");
        assert_eq!(r.figures[1].display, "61.2 %");
        assert_eq!(r.details["live"], 3 << 20);
        let text = r.render_text();
        assert!(
            text.contains("== toy [warning]") && text.contains("something to see"),
            "{text}"
        );
        let json = serde_json::to_string(&r).unwrap();
        let back: ComponentReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn findings_raise_severity() {
        let r = ComponentReport::new("x")
            .with_finding(Finding::new(Severity::Info, "a", "b"))
            .with_finding(Finding::new(Severity::Critical, "c", "d"));
        assert_eq!(r.severity, Severity::Critical);
    }
}
