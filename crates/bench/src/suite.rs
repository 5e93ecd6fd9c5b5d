//! The suite abstraction: a named comparison that produces ratios.

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// How a suite should run.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Options {
    /// Fewer iterations, for smoke tests.
    #[allow(dead_code)] // read by suites that scale their iterations
    pub(crate) quick: bool,
}

/// A benchmark suite.
pub(crate) trait Suite {
    /// The name used on the command line and in JSON.
    fn name(&self) -> &'static str;
    /// One line saying what is compared with what.
    fn description(&self) -> &'static str;
    /// Runs the comparison.
    fn run(&self, opts: &Options) -> anyhow::Result<SuiteResult>;
}

/// One measurement row of the human table.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Row {
    /// What was measured (`check, 1 thread`).
    pub(crate) case: String,
    /// Who was measured (`perfkit`, `governor`).
    pub(crate) subject: String,
    /// The value.
    pub(crate) value: f64,
    /// Its unit (`ns/op`, `MB`, `%`).
    pub(crate) unit: String,
}

/// What a suite prints: `{"suite": NAME, "ratios": {...}, ...}`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SuiteResult {
    /// The suite's name.
    pub(crate) suite: String,
    /// perfkit-cost / peer-cost per comparison; below 1.0 means perfkit is better.
    pub(crate) ratios: BTreeMap<String, f64>,
    /// Suite-specific keys required by the suite's issue (`check_ns`, `hit_ratio`, ...).
    #[serde(flatten)]
    pub(crate) extra: BTreeMap<String, serde_json::Value>,
    /// Every measurement behind the ratios.
    pub(crate) rows: Vec<Row>,
}

impl SuiteResult {
    /// An empty result for `suite`.
    #[allow(dead_code)]
    pub(crate) fn new(suite: &str) -> Self {
        SuiteResult {
            suite: suite.to_owned(),
            ratios: BTreeMap::new(),
            extra: BTreeMap::new(),
            rows: Vec::new(),
        }
    }

    /// Adds a measurement row.
    #[allow(dead_code)]
    pub(crate) fn row(&mut self, case: &str, subject: &str, value: f64, unit: &str) {
        self.rows.push(Row {
            case: case.to_owned(),
            subject: subject.to_owned(),
            value,
            unit: unit.to_owned(),
        });
    }

    /// The result as a plain-text table.
    pub(crate) fn render_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "suite {}", self.suite);
        let cw = self
            .rows
            .iter()
            .map(|r| r.case.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let sw = self
            .rows
            .iter()
            .map(|r| r.subject.len())
            .max()
            .unwrap_or(7)
            .max(7);
        let _ = writeln!(out, "  {:cw$}  {:sw$}  {:>14}", "case", "subject", "value");
        for r in &self.rows {
            let _ = writeln!(
                out,
                "  {:cw$}  {:sw$}  {:>14.3} {}",
                r.case, r.subject, r.value, r.unit
            );
        }
        for (k, v) in &self.ratios {
            let _ = writeln!(out, "  ratio {k} = {v:.3}");
        }
        for (k, v) in &self.extra {
            let _ = writeln!(out, "  {k} = {v}");
        }
        out
    }
}

/// The median of `v` (the upper one of an even count; NaN when empty).
pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}
