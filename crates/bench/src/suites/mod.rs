//! The suites, one module each, compiled in by the cargo feature of the same name.

use crate::suite::Suite;

#[cfg(feature = "profiler")]
mod profiler;

/// Every suite built into this binary, in the order `all` runs them.
pub(crate) fn all() -> Vec<Box<dyn Suite>> {
    #[allow(unused_mut)]
    let mut suites: Vec<Box<dyn Suite>> = Vec::new();
    #[cfg(feature = "profiler")]
    suites.push(Box::new(profiler::ProfilerSuite));
    suites
}
