//! [`RetryPolicy`]: exponential backoff with jitter (delays computed by `backon`), a bounded
//! number of attempts per load, and a cooldown after a failed load.

use backon::BackoffBuilder;
use std::time::Duration;

/// How failed loads are retried: exponential backoff with jitter (computed by the `backon`
/// crate), a bounded number of attempts per load, then a cooldown before the next load.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts per load, the first included (at least 1).
    pub max_attempts: u32,
    /// Delay before the first retry.
    pub min_delay: Duration,
    /// Upper bound of the delay before jitter.
    pub max_delay: Duration,
    /// Growth of the delay between retries.
    pub factor: f32,
    /// Adds a random part in `[0, delay)` to each delay, so that many instances failing
    /// together do not retry together.
    pub jitter: bool,
    /// A fixed seed for the jitter (tests); random when `None`.
    pub jitter_seed: Option<u64>,
    /// After a load has used all its attempts, `get` returns the failure at once during this
    /// cooldown; the first `get` after it starts a new load. A failure is never cached forever.
    pub cooldown: Duration,
}

impl Default for RetryPolicy {
    /// Three attempts, 100 ms then 200 ms (plus jitter) between them, 30 s cooldown.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
            factor: 2.0,
            jitter: true,
            jitter_seed: None,
            cooldown: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// One attempt per load, no retry (the cooldown still applies).
    pub fn no_retry() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The delays between the attempts of one load, in order (`max_attempts - 1` of them).
    pub fn delays(&self) -> impl Iterator<Item = Duration> + use<> {
        let mut builder = backon::ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay.max(self.min_delay))
            .with_factor(self.factor.max(1.0))
            .with_max_times(self.max_attempts.saturating_sub(1) as usize);
        if self.jitter {
            builder = builder.with_jitter();
        }
        if let Some(seed) = self.jitter_seed {
            builder = builder.with_jitter_seed(seed);
        }
        builder.build()
    }
}
