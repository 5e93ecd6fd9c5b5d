//! Cleanup hooks: application callbacks (drop caches, unload models) run when the memory
//! budget reaches throttle, at most once per cooldown, isolated from each other's panics.

use crate::budgets::{Budgets, lock};
use crate::events::{CleanupOutcome, CleanupStats};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Instant;

pub(crate) struct Hook {
    pub(crate) f: Arc<dyn Fn() -> CleanupOutcome + Send + Sync>,
    pub(crate) stats: CleanupStats,
}

#[derive(Default)]
pub(crate) struct Cleanup {
    pub(crate) hooks: Vec<Hook>,
    pub(crate) last_run: Option<Instant>,
}

impl Budgets {
    /// Registers a cleanup hook (drop caches, unload models), called when the memory budget
    /// reaches throttle, at most once per cooldown. Hooks run on the thread that observed
    /// the pressure (normally the sampler's), one after the other, each isolated from the
    /// others' panics; the memory source is read again right after them. A hook returns the
    /// bytes it freed (`u64`), `Option<u64>`, or `()`.
    pub fn register_cleanup<R, F>(&self, name: &str, f: F)
    where
        F: Fn() -> R + Send + Sync + 'static,
        R: Into<CleanupOutcome>,
    {
        lock(&self.inner.cleanup).hooks.push(Hook {
            f: Arc::new(move || f().into()),
            stats: CleanupStats {
                name: name.to_owned(),
                runs: 0,
                freed_bytes: 0,
                panics: 0,
            },
        });
    }

    /// Runs every cleanup hook now, regardless of cooldown, then re-samples memory so their
    /// effect shows. Returns the bytes they reported freed.
    pub fn cleanup_now(&self) -> u64 {
        let freed = self.run_cleanup(true).unwrap_or(0);
        self.sample_memory();
        freed
    }

    /// The cleanup hooks' records.
    pub fn cleanup_stats(&self) -> Vec<CleanupStats> {
        lock(&self.inner.cleanup)
            .hooks
            .iter()
            .map(|h| h.stats.clone())
            .collect()
    }

    /// Runs the hooks unless the cooldown forbids it; returns the bytes they reported, or
    /// `None` when they did not run.
    pub(crate) fn run_cleanup(&self, force: bool) -> Option<u64> {
        let now = self.inner.clock.now();
        let hooks: Vec<(usize, Arc<dyn Fn() -> CleanupOutcome + Send + Sync>)> = {
            let mut c = lock(&self.inner.cleanup);
            let cooled = c
                .last_run
                .is_none_or(|t| now.saturating_duration_since(t) >= self.inner.cleanup_cooldown);
            if c.hooks.is_empty() || !(force || cooled) {
                return None;
            }
            c.last_run = Some(now);
            c.hooks
                .iter()
                .enumerate()
                .map(|(i, h)| (i, Arc::clone(&h.f)))
                .collect()
        };
        let mut total = 0;
        let mut results = Vec::with_capacity(hooks.len());
        for (i, f) in hooks {
            let r = catch_unwind(AssertUnwindSafe(|| f()));
            if r.is_err() {
                tracing::error!(target: "perfkit", "a budget cleanup hook panicked; it was isolated");
            }
            results.push((i, r.ok()));
        }
        let mut c = lock(&self.inner.cleanup);
        for (i, r) in results {
            if let Some(h) = c.hooks.get_mut(i) {
                h.stats.runs += 1;
                match r {
                    Some(outcome) => {
                        let freed = outcome.freed_bytes.unwrap_or(0);
                        h.stats.freed_bytes += freed;
                        total += freed;
                    }
                    None => h.stats.panics += 1,
                }
            }
        }
        Some(total)
    }
}
