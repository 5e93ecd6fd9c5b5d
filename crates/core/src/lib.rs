//! # perfkit-core
//!
//! The small, stable vocabulary that every perfkit component shares:
//!
//! - [`Severity`]: one ordered scale (ok, info, warning, critical) used by budgets, leak
//!   verdicts, regressions and suggestions, so a dashboard can colour them all alike.
//! - [`Clock`]: time is read through a clock so that windows, rates and trends are tested
//!   with a [`ManualClock`] rather than with sleeps. [`SystemClock`] is the production one.
//! - [`units`]: byte sizes (`512MiB`), rates (`10MB/s`) and durations (`30s`) parsed and
//!   formatted for the CLI and for human-readable reports.
//! - [`report`]: the [`Report`] trait every component's `report()` implements, and the
//!   uniform [`ComponentReport`] the demo, the CLI and a dashboard render the same way.
//! - [`callbacks`]: callback lists whose members are isolated: a panicking callback is
//!   logged and cannot break the component that calls it.
//!
//! ```
//! use perfkit_core::{units::ByteSize, Clock, ManualClock, Severity};
//! use std::time::Duration;
//!
//! let limit: ByteSize = "512MiB".parse().unwrap();
//! assert_eq!(limit.as_u64(), 512 * 1024 * 1024);
//!
//! let clock = ManualClock::new();
//! let start = clock.now();
//! clock.advance(Duration::from_secs(2));
//! assert_eq!(clock.now() - start, Duration::from_secs(2));
//!
//! assert!(Severity::Critical > Severity::Warning);
//! ```

pub mod callbacks;
mod clock;
pub mod report;
mod severity;
pub mod stats;
pub mod units;

pub use callbacks::Callbacks;
pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use report::{ComponentReport, Figure, Finding, Report};
pub use severity::Severity;
pub use units::{ByteSize, ParseUnitError, Rate};
