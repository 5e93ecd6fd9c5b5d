use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// How much attention something deserves, on one scale shared by every component.
///
/// Ordered from least to most severe, so `max()` over findings gives the overall severity.
/// Serialized in lower case (`"ok"`, `"info"`, `"warning"`, `"critical"`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Nothing to act on.
    #[default]
    Ok,
    /// Worth knowing, no action needed (for example an optimization opportunity).
    Info,
    /// Act soon: a budget's warn level, a probable leak, a regression.
    Warning,
    /// Act now: a budget rejecting work, a leak that will exhaust memory soon.
    Critical,
}

impl Severity {
    /// All severities, from least to most severe.
    pub const ALL: [Severity; 4] = [
        Severity::Ok,
        Severity::Info,
        Severity::Warning,
        Severity::Critical,
    ];

    /// The lower-case name used in JSON and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Ok => "ok",
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Error returned when a string names no [`Severity`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown severity {0:?} (expected ok, info, warning or critical)")]
pub struct ParseSeverityError(String);

impl FromStr for Severity {
    type Err = ParseSeverityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|sev| sev.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| ParseSeverityError(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_and_round_trips() {
        assert!(Severity::Ok < Severity::Info && Severity::Info < Severity::Warning);
        for sev in Severity::ALL {
            assert_eq!(sev.as_str().parse::<Severity>().unwrap(), sev);
            let json = serde_json::to_string(&sev).unwrap();
            assert_eq!(json, format!("\"{sev}\""));
        }
        assert!("bad".parse::<Severity>().is_err());
        assert_eq!(
            [Severity::Info, Severity::Critical, Severity::Ok]
                .into_iter()
                .max(),
            Some(Severity::Critical)
        );
    }
}
