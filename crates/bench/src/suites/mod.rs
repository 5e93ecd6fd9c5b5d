//! The suites, one module each, compiled in by the cargo feature of the same name.

use crate::suite::Suite;

#[cfg(feature = "alloc")]
mod alloc;
#[cfg(feature = "budget")]
mod budget;
#[cfg(feature = "bundle")]
mod bundle;
#[cfg(feature = "cache")]
mod cache;
#[cfg(feature = "cache")]
mod cache_tiered;
#[cfg(feature = "lazy")]
mod lazy;
#[cfg(feature = "profiler")]
mod profiler;

/// Every suite built into this binary, in the order `all` runs them.
#[allow(clippy::vec_init_then_push)] // one cfg-gated push per suite feature
pub(crate) fn all() -> Vec<Box<dyn Suite>> {
    #[allow(unused_mut)]
    let mut suites: Vec<Box<dyn Suite>> = Vec::new();
    #[cfg(feature = "alloc")]
    suites.push(Box::new(alloc::AllocSuite));
    #[cfg(feature = "budget")]
    suites.push(Box::new(budget::BudgetSuite));
    #[cfg(feature = "profiler")]
    suites.push(Box::new(profiler::ProfilerSuite));
    #[cfg(feature = "bundle")]
    suites.push(Box::new(bundle::BundleSuite));
    #[cfg(feature = "lazy")]
    suites.push(Box::new(lazy::LazySuite));
    #[cfg(feature = "cache")]
    suites.push(Box::new(cache::CacheSuite));
    suites
}
