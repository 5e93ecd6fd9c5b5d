//! A circuit breaker: after consecutive failures a tier is skipped (open) for a while, then
//! one probe request is let through (half-open); its success closes the breaker, its failure
//! opens it again.

use super::tier::BreakerState;
use parking_lot::Mutex;
use perfkit_core::SharedClock;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// When a breaker opens and how long it stays open.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker.
    pub failure_threshold: u32,
    /// How long the breaker stays open before a probe.
    pub open_for: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 3,
            open_for: Duration::from_millis(500),
        }
    }
}

/// What [`Breaker::acquire`] grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Permit {
    /// A normal request (breaker closed).
    Normal,
    /// The single probe of a half-open breaker.
    Probe,
}

#[derive(Debug)]
struct Inner {
    open_until: Option<Instant>,
    probing: bool,
}

/// The breaker. The closed state is checked with one atomic load.
#[derive(Debug)]
pub(crate) struct Breaker {
    config: BreakerConfig,
    clock: SharedClock,
    state: AtomicU8,
    failures: AtomicU32,
    inner: Mutex<Inner>,
    opens: AtomicU64,
}

const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const HALF_OPEN: u8 = 2;

impl Breaker {
    pub(crate) fn new(config: BreakerConfig, clock: SharedClock) -> Self {
        Breaker {
            config,
            clock,
            state: AtomicU8::new(CLOSED),
            failures: AtomicU32::new(0),
            inner: Mutex::new(Inner {
                open_until: None,
                probing: false,
            }),
            opens: AtomicU64::new(0),
        }
    }

    /// Whether a request may go to the tier now.
    pub(crate) fn acquire(&self) -> Option<Permit> {
        if self.state.load(Ordering::Acquire) == CLOSED {
            return Some(Permit::Normal);
        }
        let mut inner = self.inner.lock();
        match inner.open_until {
            None => Some(Permit::Normal),
            Some(until) if !inner.probing && self.clock.now() >= until => {
                inner.probing = true;
                self.state.store(HALF_OPEN, Ordering::Release);
                Some(Permit::Probe)
            }
            Some(_) => None,
        }
    }

    /// Records the outcome of a request made under `permit`.
    pub(crate) fn record(&self, permit: Permit, ok: bool) {
        if ok && permit == Permit::Normal && self.state.load(Ordering::Acquire) == CLOSED {
            // The common case: no lock.
            if self.failures.load(Ordering::Relaxed) != 0 {
                self.failures.store(0, Ordering::Relaxed);
            }
            return;
        }
        let mut inner = self.inner.lock();
        if permit == Permit::Probe {
            inner.probing = false;
        }
        if ok {
            self.failures.store(0, Ordering::Relaxed);
            inner.open_until = None;
            self.state.store(CLOSED, Ordering::Release);
            return;
        }
        let failures = self
            .failures
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        let should_open = permit == Permit::Probe
            || (inner.open_until.is_none() && failures >= self.config.failure_threshold);
        if should_open {
            inner.open_until = Some(self.clock.now() + self.config.open_for);
            self.state.store(OPEN, Ordering::Release);
            self.opens.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The current state.
    pub(crate) fn state(&self) -> BreakerState {
        match self.state.load(Ordering::Acquire) {
            CLOSED => BreakerState::Closed,
            OPEN => BreakerState::Open,
            _ => BreakerState::HalfOpen,
        }
    }

    /// How many times it opened.
    pub(crate) fn opens(&self) -> u64 {
        self.opens.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use perfkit_core::ManualClock;

    #[test]
    fn opens_after_threshold_probes_and_recovers() {
        let clock = ManualClock::new();
        let b = Breaker::new(
            BreakerConfig {
                failure_threshold: 2,
                open_for: Duration::from_secs(1),
            },
            clock.shared(),
        );
        let p = b.acquire().unwrap();
        b.record(p, false);
        assert_eq!(b.state(), BreakerState::Closed);
        let p = b.acquire().unwrap();
        b.record(p, false);
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.acquire(), None);
        clock.advance(Duration::from_secs(1));
        assert_eq!(b.acquire(), Some(Permit::Probe));
        assert_eq!(b.acquire(), None, "one probe at a time");
        b.record(Permit::Probe, false);
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.opens(), 2);
        clock.advance(Duration::from_secs(1));
        let p = b.acquire().unwrap();
        b.record(p, true);
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.acquire(), Some(Permit::Normal));
    }

    #[test]
    fn a_success_resets_the_failure_count() {
        let b = Breaker::new(BreakerConfig::default(), ManualClock::new().shared());
        for _ in 0..10 {
            b.record(Permit::Normal, false);
            b.record(Permit::Normal, false);
            b.record(Permit::Normal, true);
        }
        assert_eq!(b.state(), BreakerState::Closed);
    }
}
