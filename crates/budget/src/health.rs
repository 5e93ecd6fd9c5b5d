//! The serializable views of a budget set: `usage()`, `health()` and `report()`.

use crate::budgets::Budgets;
use crate::events::{CleanupStats, Transition};
use crate::{Level, ResourceKind};
use perfkit_core::{Figure, Finding, Report, Severity};
use serde::{Deserialize, Serialize};

/// One budget's usage, as [`Budgets::usage`] returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetUsage {
    /// The budget's name.
    pub name: String,
    /// Its resource kind.
    pub kind: ResourceKind,
    /// Usage, in the kind's unit (bytes, bytes per second, CPU ms per second).
    pub usage: f64,
    /// The limit, in the same unit.
    pub limit: f64,
    /// `usage / limit`.
    pub ratio: f64,
    /// The current level.
    pub level: Level,
}

/// One budget's health.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetHealth {
    /// The budget's name.
    pub name: String,
    /// Its resource kind.
    pub kind: ResourceKind,
    /// The unit of `usage` and `limit` (`bytes`, `bytes_per_sec`, `cpu_ms_per_sec`).
    pub unit: String,
    /// Usage.
    pub usage: f64,
    /// The limit.
    pub limit: f64,
    /// `usage / limit`.
    pub ratio: f64,
    /// The current level.
    pub level: Level,
    /// How long it has been at that level.
    pub time_in_level_secs: f64,
    /// Level changes so far.
    pub transitions: u64,
    /// Rises into throttle or reject so far.
    pub violations: u64,
    /// Why the last sample failed, if it did (a memory source that is not available, an
    /// unreadable directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The health of a budget set: the worst level and each budget's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    /// The most severe level over all budgets.
    pub level: Level,
    /// Each budget.
    pub budgets: Vec<BudgetHealth>,
}

/// The budget component's report: health, recent transitions and violations, cleanup hooks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetReport {
    /// The health summary.
    pub health: Health,
    /// The most recent transitions, oldest first.
    pub transitions: Vec<Transition>,
    /// The most recent violations, oldest first.
    pub violations: Vec<Transition>,
    /// The cleanup hooks.
    pub cleanup: Vec<CleanupStats>,
}

impl Budgets {
    /// Each budget's current usage, limit and level.
    pub fn usage(&self) -> Vec<BudgetUsage> {
        self.snapshot(|_, s, _| BudgetUsage {
            name: s.spec.name.clone(),
            kind: s.spec.kind,
            usage: s.usage,
            limit: s.spec.limit,
            ratio: s.usage / s.spec.limit,
            level: s.level,
        })
    }

    /// The health summary: per budget usage, limit, level, time in level, violations.
    pub fn health(&self) -> Health {
        let budgets = self.snapshot(|_, s, now| BudgetHealth {
            name: s.spec.name.clone(),
            kind: s.spec.kind,
            unit: s.spec.kind.unit().to_owned(),
            usage: s.usage,
            limit: s.spec.limit,
            ratio: s.usage / s.spec.limit,
            level: s.level,
            time_in_level_secs: now.saturating_duration_since(s.since).as_secs_f64(),
            transitions: s.transitions,
            violations: s.violations,
            error: s.error.clone(),
        });
        Health {
            level: budgets
                .iter()
                .map(|b| b.level)
                .max()
                .unwrap_or(Level::Allow),
            budgets,
        }
    }

    /// The component report (implements [`perfkit_core::Report`]).
    pub fn report(&self) -> BudgetReport {
        BudgetReport {
            health: self.health(),
            transitions: self.transitions(),
            violations: self.violations(),
            cleanup: self.cleanup_stats(),
        }
    }
}

fn display(kind: ResourceKind, v: f64) -> String {
    match kind {
        ResourceKind::Memory | ResourceKind::Storage => {
            perfkit_core::units::format_bytes(v.max(0.0).round() as u64)
        }
        ResourceKind::Bandwidth => perfkit_core::Rate(v).to_string(),
        ResourceKind::Cpu => format!("{v:.0} CPU ms/s"),
    }
}

impl Report for BudgetReport {
    fn name(&self) -> &str {
        "budget"
    }

    fn summary(&self) -> String {
        let parts: Vec<String> = self
            .health
            .budgets
            .iter()
            .map(|b| format!("{} {} ({:.0} %)", b.name, b.level, b.ratio * 100.0))
            .collect();
        if parts.is_empty() {
            "no budgets".to_owned()
        } else {
            parts.join(", ")
        }
    }

    fn figures(&self) -> Vec<Figure> {
        let mut out = Vec::new();
        for b in &self.health.budgets {
            let mut f = Figure::new(format!("{}_usage", b.name), b.usage, b.unit.clone());
            f.display = format!(
                "{} of {} ({:.1} %), {} for {}",
                display(b.kind, b.usage),
                display(b.kind, b.limit),
                b.ratio * 100.0,
                b.level,
                perfkit_core::units::format_duration(std::time::Duration::from_secs_f64(
                    b.time_in_level_secs.max(0.0)
                ))
            );
            out.push(f);
        }
        out.push(Figure::count(
            "transitions",
            self.health.budgets.iter().map(|b| b.transitions).sum(),
        ));
        out.push(Figure::count(
            "violations",
            self.health.budgets.iter().map(|b| b.violations).sum(),
        ));
        for c in &self.cleanup {
            out.push(Figure::count(format!("cleanup_{}_runs", c.name), c.runs));
        }
        out
    }

    fn findings(&self) -> Vec<Finding> {
        let mut out = Vec::new();
        for b in &self.health.budgets {
            if b.level > Level::Allow {
                out.push(Finding::new(
                    b.level.severity(),
                    format!("budget_{}", b.level),
                    format!(
                        "the {} budget is at {} ({:.1} % of {})",
                        b.name,
                        b.level,
                        b.ratio * 100.0,
                        display(b.kind, b.limit)
                    ),
                ));
            }
            if b.violations > 0 {
                out.push(Finding::new(
                    Severity::Warning,
                    "budget_violation",
                    format!(
                        "the {} budget entered throttle or reject {} time(s)",
                        b.name, b.violations
                    ),
                ));
            }
            if let Some(e) = &b.error {
                out.push(Finding::new(
                    Severity::Info,
                    "budget_source_unavailable",
                    format!("the {} budget could not be sampled: {e}", b.name),
                ));
            }
        }
        for t in self.transitions.iter().rev().take(5) {
            out.push(Finding::new(
                Severity::Info,
                "budget_transition",
                format!(
                    "{}: {} -> {} at {:.1} % after {:.1} s",
                    t.budget,
                    t.from,
                    t.to,
                    t.ratio * 100.0,
                    t.time_in_previous_secs
                ),
            ));
        }
        out.sort_by_key(|f| std::cmp::Reverse(f.severity));
        out
    }
}
