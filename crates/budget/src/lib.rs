//! # perfkit-budget
//!
//! Resource budgets with graduated enforcement: a service declares what it may use (memory,
//! storage, network bandwidth, CPU) and asks, on every request and cheaply, whether to go
//! on, slow down or refuse, before the kernel's OOM killer or a full disk decides for it.
//!
//! - [`Budget`]: one budget (memory bytes, a storage quota, bytes per second on a named
//!   channel, CPU milliseconds per second) with warn, throttle and reject [`Thresholds`]
//!   (80 %, 90 %, 100 % by default) and hysteresis.
//! - [`Budgets`]: the set. [`Budgets::check`] returns a [`Decision`] by reading one atomic
//!   word: no lock, no allocation, no system call. [`Budgets::record_usage`], the memory
//!   sources of `perfkit-alloc` and the background [`Sampler`] keep that word current.
//! - Transition callbacks ([`Budgets::on_transition`]), a bounded history of violations,
//!   [`Budgets::health`], [`Budgets::report`] (a [`perfkit_core::Report`]), cleanup hooks
//!   called at throttle with a cooldown ([`Budgets::register_cleanup`]).
//! - Bandwidth: [`Budgets::acquire`] and stream wrappers ([`Budgets::limit_stream`]).
//! - Feature `tower`: a tower layer answering 503 with `Retry-After`. Feature `redis`: a
//!   GCRA rate limit shared by many processes through Redis.
//!
//! ```
//! use perfkit_budget::{Budget, Budgets, Decision, Level, Resource};
//! use perfkit_core::ManualClock;
//!
//! let clock = ManualClock::new();
//! let budgets = Budgets::builder().clock(clock.shared()).build().unwrap();
//! budgets.set_budget(Budget::memory(1000)).unwrap();
//!
//! budgets.set_usage(Resource::MEMORY, 500);
//! assert_eq!(budgets.check(Resource::MEMORY), Decision::Allow);
//! budgets.set_usage(Resource::MEMORY, 850);
//! assert_eq!(budgets.check(Resource::MEMORY), Decision::Warn);
//! budgets.set_usage(Resource::MEMORY, 1200);
//! assert!(!budgets.check(Resource::MEMORY).is_admitted());
//! // Hysteresis: back to warn only below 85 %, to allow only below 75 %.
//! budgets.set_usage(Resource::MEMORY, 800);
//! assert_eq!(budgets.check(Resource::MEMORY).level(), Level::Warn);
//! assert_eq!(budgets.health().budgets[0].violations, 1);
//! ```

mod bandwidth;
mod budgets;
mod cleanup;
mod events;
mod health;
mod level;
mod rate;
mod sampler;
mod spec;
mod storage;

#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "tower")]
pub mod tower;

pub use bandwidth::{Budgeted, TokioClock};
pub use budgets::{Budgets, BudgetsBuilder, Resource};
pub use events::{CleanupOutcome, CleanupStats, Transition};
pub use health::{BudgetHealth, BudgetReport, BudgetUsage, Health};
pub use level::{Decision, Level, Thresholds};
pub use sampler::Sampler;
pub use spec::{Budget, ResourceKind, ThreadCpuClock, process_cpu_time, thread_cpu_time};

use std::time::Duration;

/// Errors of budget configuration and enforcement.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BudgetError {
    /// A budget or option is invalid.
    #[error("invalid budget: {0}")]
    Invalid(String),
    /// The set has no room for another named budget.
    #[error("the budget set is full ({capacity} named budgets); raise its capacity")]
    TooMany {
        /// The configured capacity.
        capacity: usize,
    },
    /// The resource has no budget.
    #[error("no budget is set for {0:?}")]
    NotConfigured(Resource),
    /// The budget rejected the work.
    #[error("the {budget} budget rejected the request; retry after {retry_after:?}")]
    Rejected {
        /// The budget's name.
        budget: String,
        /// When trying again makes sense.
        retry_after: Duration,
    },
}
