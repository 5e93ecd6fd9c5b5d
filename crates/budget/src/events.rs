//! What budgets tell the application: level transitions (and violations, the transitions
//! up into throttle or reject), and cleanup hooks' outcomes.

use crate::{Level, ResourceKind};
use serde::{Deserialize, Serialize};

/// A budget changed level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    /// The budget's name.
    pub budget: String,
    /// Its resource kind.
    pub kind: ResourceKind,
    /// The level it left.
    pub from: Level,
    /// The level it entered.
    pub to: Level,
    /// Usage when it changed, in the kind's unit.
    pub usage: f64,
    /// The limit, in the kind's unit.
    pub limit: f64,
    /// `usage / limit`.
    pub ratio: f64,
    /// How long it had been at `from`, in seconds.
    pub time_in_previous_secs: f64,
    /// When it changed, seconds since the Unix epoch (from the budgets' clock).
    pub at_unix_secs: f64,
}

impl Transition {
    /// Whether this transition is a violation: a rise into throttle or reject.
    pub fn is_violation(&self) -> bool {
        self.to > self.from && self.to >= Level::Throttle
    }
}

/// What a cleanup hook reports after it ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CleanupOutcome {
    /// Bytes the hook believes it released, if it knows.
    pub freed_bytes: Option<u64>,
}

impl From<()> for CleanupOutcome {
    fn from(_: ()) -> Self {
        CleanupOutcome::default()
    }
}

impl From<u64> for CleanupOutcome {
    fn from(freed: u64) -> Self {
        CleanupOutcome {
            freed_bytes: Some(freed),
        }
    }
}

impl From<Option<u64>> for CleanupOutcome {
    fn from(freed_bytes: Option<u64>) -> Self {
        CleanupOutcome { freed_bytes }
    }
}

/// A cleanup hook's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleanupStats {
    /// The name it was registered under.
    pub name: String,
    /// How many times it ran.
    pub runs: u64,
    /// Bytes it reported freed, summed over its runs.
    pub freed_bytes: u64,
    /// How many of its runs panicked (the panic was isolated).
    pub panics: u64,
}
