//! [`CacheReport`]: what a [`MemoryCache`](crate::MemoryCache) says about itself, in the
//! shape every perfkit component reports (`perfkit_core::Report`).

use perfkit_core::{Figure, Finding, Report, Severity};

use crate::memory::CacheStats;
use crate::policy::PolicyKind;

/// A snapshot of a memory cache.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheReport {
    /// The eviction policy.
    pub policy: PolicyKind,
    /// Capacity (entries, or weight with a weigher).
    pub capacity: u64,
    /// Entries cached.
    pub entries: usize,
    /// Their total weight.
    pub weight: u64,
    /// Counters.
    pub stats: CacheStats,
}

impl Report for CacheReport {
    fn name(&self) -> &str {
        "cache"
    }

    fn figures(&self) -> Vec<Figure> {
        vec![
            Figure::ratio("hit_ratio", self.stats.hit_ratio()),
            Figure::count("hits", self.stats.hits),
            Figure::count("misses", self.stats.misses),
            Figure::count("evictions", self.stats.evictions),
            Figure::count("expirations", self.stats.expirations),
            Figure::count("entries", self.entries as u64),
            Figure::count("capacity", self.capacity),
        ]
    }

    fn findings(&self) -> Vec<Finding> {
        let mut out = Vec::new();
        let lookups = self.stats.hits + self.stats.misses;
        if lookups >= 1000 && self.stats.hit_ratio() < 0.2 {
            out.push(Finding::new(
                Severity::Info,
                "low_hit_ratio",
                format!(
                    "hit ratio {:.1} % over {lookups} lookups: the capacity may be too small for \
                     the working set (try `perfkit cache tune` on a trace of the keys)",
                    self.stats.hit_ratio() * 100.0
                ),
            ));
        }
        out
    }

    fn summary(&self) -> String {
        format!(
            "{} entries of {} ({}), hit ratio {:.1} %",
            self.entries,
            self.capacity,
            self.policy,
            self.stats.hit_ratio() * 100.0
        )
    }
}
