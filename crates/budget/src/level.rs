//! Enforcement levels, thresholds with hysteresis, and the decision `check` returns.

use perfkit_core::Severity;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// How close a budget is to its limit, from least to most severe.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Below the warn threshold.
    #[default]
    Allow,
    /// At or above the warn threshold: go on, but someone should know.
    Warn,
    /// At or above the throttle threshold: slow down.
    Throttle,
    /// At or above the reject threshold: refuse new work.
    Reject,
}

impl Level {
    /// All levels, least severe first.
    pub const ALL: [Level; 4] = [Level::Allow, Level::Warn, Level::Throttle, Level::Reject];

    /// The lower-case name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Allow => "allow",
            Level::Warn => "warn",
            Level::Throttle => "throttle",
            Level::Reject => "reject",
        }
    }

    /// The severity a report shows for this level.
    pub fn severity(self) -> Severity {
        match self {
            Level::Allow => Severity::Ok,
            Level::Warn | Level::Throttle => Severity::Warning,
            Level::Reject => Severity::Critical,
        }
    }

    #[inline]
    pub(crate) fn from_bits(bits: u64) -> Level {
        match bits & 3 {
            0 => Level::Allow,
            1 => Level::Warn,
            2 => Level::Throttle,
            _ => Level::Reject,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// The thresholds of a budget, as fractions of its limit, and the hysteresis below each
/// threshold that usage must fall under before the level is left.
///
/// Defaults: warn at 0.80, throttle at 0.90, reject at 1.00, hysteresis 0.05 (so a budget at
/// throttle goes back to warn only below 0.85 of its limit).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Usage ratio at which the level becomes warn.
    pub warn: f64,
    /// Usage ratio at which the level becomes throttle.
    pub throttle: f64,
    /// Usage ratio at which the level becomes reject.
    pub reject: f64,
    /// How far below a level's threshold usage must fall before that level is left.
    pub hysteresis: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            warn: 0.80,
            throttle: 0.90,
            reject: 1.00,
            hysteresis: 0.05,
        }
    }
}

impl Thresholds {
    /// Checks that `0 < warn <= throttle <= reject` and `0 <= hysteresis < warn`.
    pub fn validate(&self) -> Result<(), String> {
        let all = [self.warn, self.throttle, self.reject, self.hysteresis];
        if all.iter().any(|v| !v.is_finite()) {
            return Err("thresholds must be finite numbers".to_owned());
        }
        if !(0.0 < self.warn && self.warn <= self.throttle && self.throttle <= self.reject) {
            return Err(format!(
                "thresholds must satisfy 0 < warn <= throttle <= reject (got {}, {}, {})",
                self.warn, self.throttle, self.reject
            ));
        }
        if !(0.0..self.warn).contains(&self.hysteresis) {
            return Err(format!(
                "hysteresis must be at least 0 and below the warn threshold (got {})",
                self.hysteresis
            ));
        }
        Ok(())
    }

    /// The ratio at which `level` is entered (0 for allow).
    pub fn enter(&self, level: Level) -> f64 {
        [0.0, self.warn, self.throttle, self.reject][level.index()]
    }

    /// The next level given the current one and the usage ratio: up as soon as a threshold
    /// is reached, down only once the ratio is below the current level's threshold minus
    /// the hysteresis.
    pub fn next(&self, current: Level, ratio: f64) -> Level {
        let mut level = current;
        while level < Level::Reject && ratio >= self.enter(Level::ALL[level.index() + 1]) {
            level = Level::ALL[level.index() + 1];
        }
        if level == current {
            while level > Level::Allow && ratio < self.enter(level) - self.hysteresis {
                level = Level::ALL[level.index() - 1];
            }
        }
        level
    }
}

/// What [`Budgets::check`](crate::Budgets::check) says about a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "lowercase")]
pub enum Decision {
    /// Go on.
    Allow,
    /// Go on; the budget is at its warn level.
    Warn,
    /// Go on after waiting `delay`.
    Throttle {
        /// How long to wait first.
        delay: Duration,
    },
    /// Refuse the work; try again after `retry_after`.
    Reject {
        /// When trying again makes sense.
        retry_after: Duration,
    },
}

impl Decision {
    /// The level this decision stands for.
    pub fn level(&self) -> Level {
        match self {
            Decision::Allow => Level::Allow,
            Decision::Warn => Level::Warn,
            Decision::Throttle { .. } => Level::Throttle,
            Decision::Reject { .. } => Level::Reject,
        }
    }

    /// Whether the work may go ahead (possibly after a delay).
    pub fn is_admitted(&self) -> bool {
        !matches!(self, Decision::Reject { .. })
    }

    /// The stricter of two decisions (longer delays win among throttles).
    pub fn strictest(self, other: Decision) -> Decision {
        match (self, other) {
            (Decision::Throttle { delay: a }, Decision::Throttle { delay: b }) => {
                Decision::Throttle { delay: a.max(b) }
            }
            (Decision::Reject { retry_after: a }, Decision::Reject { retry_after: b }) => {
                Decision::Reject {
                    retry_after: a.max(b),
                }
            }
            (a, b) if b.level() > a.level() => b,
            (a, _) => a,
        }
    }

    /// Packs the decision in one word: the level in the top two bits, the delay or
    /// retry-after in microseconds below.
    pub(crate) fn encode(self) -> u64 {
        const MAX_MICROS: u64 = (1 << 62) - 1;
        let (level, d) = match self {
            Decision::Allow => (Level::Allow, Duration::ZERO),
            Decision::Warn => (Level::Warn, Duration::ZERO),
            Decision::Throttle { delay } => (Level::Throttle, delay),
            Decision::Reject { retry_after } => (Level::Reject, retry_after),
        };
        let micros = u64::try_from(d.as_micros())
            .unwrap_or(MAX_MICROS)
            .min(MAX_MICROS);
        ((level as u64) << 62) | micros
    }

    /// Unpacks [`Decision::encode`]. Branch-light: this is on the `check` path.
    #[inline]
    pub(crate) fn decode(word: u64) -> Decision {
        let d = Duration::from_micros(word & ((1 << 62) - 1));
        match Level::from_bits(word >> 62) {
            Level::Allow => Decision::Allow,
            Level::Warn => Decision::Warn,
            Level::Throttle => Decision::Throttle { delay: d },
            Level::Reject => Decision::Reject { retry_after: d },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A second, deliberately different statement of the rule: the level is the highest
    /// one whose entry threshold is reached, unless the current level is higher and usage
    /// has not fallen below that level's exit mark, in which case it is the highest level
    /// not above the current one whose exit mark is still respected.
    fn reference(t: &Thresholds, current: Level, ratio: f64) -> Level {
        let reached = Level::ALL
            .into_iter()
            .filter(|l| ratio >= t.enter(*l))
            .max()
            .unwrap_or(Level::Allow);
        if reached >= current {
            return reached;
        }
        Level::ALL
            .into_iter()
            .filter(|l| {
                *l <= current && (*l == Level::Allow || ratio >= t.enter(*l) - t.hysteresis)
            })
            .max()
            .unwrap_or(Level::Allow)
    }

    fn thresholds() -> impl Strategy<Value = Thresholds> {
        (0.05f64..1.0, 0.0f64..0.5, 0.0f64..0.5, 0.0f64..1.0).prop_map(|(w, a, b, h)| Thresholds {
            warn: w,
            throttle: w + a,
            reject: w + a + b,
            hysteresis: h * w * 0.99,
        })
    }

    proptest! {
        #[test]
        fn next_level_matches_the_reference(
            t in thresholds(),
            ratios in proptest::collection::vec(0.0f64..2.0, 1..60),
        ) {
            let mut ours = Level::Allow;
            let mut theirs = Level::Allow;
            for r in ratios {
                ours = t.next(ours, r);
                theirs = reference(&t, theirs, r);
                prop_assert_eq!(ours, theirs, "ratio {}", r);
            }
        }

        #[test]
        fn a_level_is_kept_inside_its_hysteresis_band(
            t in thresholds(),
            start in 0usize..4,
            x in 0.0f64..1.0,
        ) {
            let current = Level::ALL[start];
            let next_enter = if start == 3 { f64::INFINITY } else { t.enter(Level::ALL[start + 1]) };
            let low = if start == 0 { 0.0 } else { t.enter(current) - t.hysteresis };
            let hi = next_enter.min(low + 5.0);
            prop_assume!(hi > low);
            let ratio = low + (hi - low) * x;
            prop_assume!(ratio < next_enter);
            prop_assert_eq!(t.next(current, ratio), current);
        }
    }

    #[test]
    fn defaults_and_validation() {
        let t = Thresholds::default();
        assert!(t.validate().is_ok());
        let bad = Thresholds {
            warn: 0.9,
            throttle: 0.8,
            ..t
        };
        assert!(bad.validate().is_err());
        let bad = Thresholds {
            hysteresis: 0.9,
            ..t
        };
        assert!(bad.validate().is_err());
        let bad = Thresholds {
            warn: f64::NAN,
            ..t
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn levels_rise_at_thresholds_and_fall_only_below_hysteresis() {
        let t = Thresholds::default();
        assert_eq!(t.next(Level::Allow, 0.79), Level::Allow);
        assert_eq!(t.next(Level::Allow, 0.80), Level::Warn);
        assert_eq!(t.next(Level::Allow, 0.95), Level::Throttle);
        assert_eq!(t.next(Level::Allow, 1.20), Level::Reject);
        // Hysteresis: leaving reject needs < 0.95, leaving throttle < 0.85, warn < 0.75.
        assert_eq!(t.next(Level::Reject, 0.96), Level::Reject);
        assert_eq!(t.next(Level::Reject, 0.94), Level::Throttle);
        assert_eq!(t.next(Level::Throttle, 0.86), Level::Throttle);
        assert_eq!(t.next(Level::Throttle, 0.84), Level::Warn);
        assert_eq!(t.next(Level::Warn, 0.76), Level::Warn);
        assert_eq!(t.next(Level::Warn, 0.74), Level::Allow);
        // A big drop leaves several levels at once.
        assert_eq!(t.next(Level::Reject, 0.10), Level::Allow);
        assert_eq!(t.next(Level::Reject, 0.80), Level::Warn);
    }

    #[test]
    fn decisions_round_trip_through_one_word() {
        let cases = [
            Decision::Allow,
            Decision::Warn,
            Decision::Throttle {
                delay: Duration::from_millis(15),
            },
            Decision::Reject {
                retry_after: Duration::from_secs(3),
            },
        ];
        for d in cases {
            assert_eq!(Decision::decode(d.encode()), d);
        }
        let huge = Decision::Reject {
            retry_after: Duration::MAX,
        };
        assert_eq!(Decision::decode(huge.encode()).level(), Level::Reject);
    }

    #[test]
    fn strictest_wins() {
        let th = |ms| Decision::Throttle {
            delay: Duration::from_millis(ms),
        };
        assert_eq!(Decision::Allow.strictest(Decision::Warn), Decision::Warn);
        assert_eq!(th(5).strictest(th(9)), th(9));
        assert_eq!(th(5).strictest(Decision::Warn), th(5));
        let rej = Decision::Reject {
            retry_after: Duration::from_secs(1),
        };
        assert_eq!(th(5).strictest(rej), rej);
        assert!(!rej.is_admitted() && th(1).is_admitted());
    }
}
