//! A [`Clock`] that follows tokio's clock.

use perfkit_core::{Clock, SharedClock};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// The default clock of lazy resources: [`tokio::time::Instant::now`] as a std instant.
///
/// Outside tests it reads the same time as [`perfkit_core::SystemClock`]. Under tokio's
/// paused time (`tokio::time::pause`, `#[tokio::test(start_paused = true)]`) it moves with
/// the paused clock, so load times, retry instants and cooldowns agree with the backoff
/// sleeps, which go through `tokio::time`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioClock;

impl TokioClock {
    /// This clock as a [`SharedClock`].
    pub fn shared() -> SharedClock {
        Arc::new(TokioClock)
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }
}
