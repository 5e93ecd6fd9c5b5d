//! Rates: a sliding window that measures one (bytes per second, CPU milliseconds per
//! second), and a token bucket that enforces one.

use std::time::{Duration, Instant};

/// Number of sub-intervals of a [`RateWindow`].
const BUCKETS: usize = 10;

/// Amounts recorded over the last `window`, in [`BUCKETS`] sub-intervals, so that the rate
/// slides smoothly as time passes.
#[derive(Debug, Clone)]
pub(crate) struct RateWindow {
    window: Duration,
    slice: Duration,
    amounts: [f64; BUCKETS],
    /// Start of the slice `head` stands for.
    head_start: Instant,
    head: usize,
}

impl RateWindow {
    pub(crate) fn new(window: Duration, now: Instant) -> Self {
        let window = window.max(Duration::from_millis(10));
        RateWindow {
            window,
            slice: window / BUCKETS as u32,
            amounts: [0.0; BUCKETS],
            head_start: now,
            head: 0,
        }
    }

    /// Moves the head to `now`, clearing slices that fell out of the window.
    fn advance(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.head_start);
        if elapsed < self.slice {
            return;
        }
        let steps = (elapsed.as_nanos() / self.slice.as_nanos().max(1)) as usize;
        for i in 1..=steps.min(BUCKETS) {
            self.amounts[(self.head + i) % BUCKETS] = 0.0;
        }
        self.head = (self.head + steps) % BUCKETS;
        self.head_start += self.slice * steps as u32;
    }

    pub(crate) fn add(&mut self, amount: f64, now: Instant) {
        self.advance(now);
        self.amounts[self.head] += amount;
    }

    /// Amount per second over the window ending now.
    pub(crate) fn rate(&mut self, now: Instant) -> f64 {
        self.advance(now);
        self.amounts.iter().sum::<f64>() / self.window.as_secs_f64()
    }
}

/// What a [`TokenBucket`] says about taking some tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Reservation {
    /// Taken; go on now.
    Ready,
    /// Taken on credit; go on after this wait.
    Wait(Duration),
    /// Not taken: the wait would exceed the bound. Try again after this.
    Rejected(Duration),
}

/// A token bucket of `burst` tokens refilled at `rate` per second. Tokens may be taken on
/// credit (the bucket goes negative) when the resulting wait stays within `max_wait`: the
/// caller then waits until the debt is repaid, which paces a sender at exactly `rate`.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
    max_wait: Duration,
}

impl TokenBucket {
    pub(crate) fn new(rate: f64, burst: f64, max_wait: Duration, now: Instant) -> Self {
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            last: now,
            max_wait,
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
    }

    /// Tokens available now (negative while in debt).
    pub(crate) fn tokens(&mut self, now: Instant) -> f64 {
        self.refill(now);
        self.tokens
    }

    /// How long until the bucket is out of debt.
    pub(crate) fn debt_wait(&mut self, now: Instant) -> Duration {
        let t = self.tokens(now);
        if t >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-t / self.rate)
        }
    }

    pub(crate) fn reserve(&mut self, amount: f64, now: Instant) -> Reservation {
        self.refill(now);
        let after = self.tokens - amount;
        if after >= 0.0 {
            self.tokens = after;
            return Reservation::Ready;
        }
        let wait = Duration::from_secs_f64(-after / self.rate);
        if wait <= self.max_wait {
            self.tokens = after;
            Reservation::Wait(wait)
        } else {
            Reservation::Rejected(wait - self.max_wait)
        }
    }

    /// Takes tokens unconditionally (for transfers that already happened).
    pub(crate) fn consume(&mut self, amount: f64, now: Instant) {
        self.refill(now);
        self.tokens -= amount;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use perfkit_core::{Clock, ManualClock};

    #[test]
    fn window_slides() {
        let clock = ManualClock::new();
        let mut w = RateWindow::new(Duration::from_secs(1), clock.now());
        w.add(500.0, clock.now());
        assert!((w.rate(clock.now()) - 500.0).abs() < 1e-9);
        clock.advance(Duration::from_millis(500));
        w.add(500.0, clock.now());
        assert!((w.rate(clock.now()) - 1000.0).abs() < 1e-9);
        clock.advance(Duration::from_millis(600));
        assert!((w.rate(clock.now()) - 500.0).abs() < 1e-9);
        clock.advance(Duration::from_secs(10));
        assert_eq!(w.rate(clock.now()), 0.0);
    }

    #[test]
    fn token_bucket_rate_within_one_percent_over_a_simulated_minute() {
        let clock = ManualClock::new();
        let rate = 1_000_000.0; // 1 MB/s
        let start = clock.now();
        let mut bucket = TokenBucket::new(rate, rate / 10.0, Duration::from_secs(1), start);
        let mut sent = 0.0;
        // A greedy sender of 16 KiB chunks that waits exactly as told.
        while clock.now() - start < Duration::from_secs(60) {
            match bucket.reserve(16_384.0, clock.now()) {
                Reservation::Ready => {}
                Reservation::Wait(d) => clock.advance(d),
                Reservation::Rejected(d) => {
                    clock.advance(d);
                    continue;
                }
            }
            sent += 16_384.0;
            clock.advance(Duration::from_micros(50)); // the send itself
        }
        let achieved = sent / (clock.now() - start).as_secs_f64();
        assert!(
            (achieved - rate).abs() / rate < 0.01,
            "achieved {achieved:.0} B/s for a limit of {rate:.0} B/s"
        );
    }

    proptest::proptest! {
        /// Whatever the request sizes and idle gaps, a sender that waits as told never gets
        /// more than burst + rate x elapsed, and rejected requests take nothing.
        #[test]
        fn never_more_than_burst_plus_rate_times_time(
            steps in proptest::collection::vec((1u32..5_000, 0u32..200), 1..200),
        ) {
            let clock = ManualClock::new();
            let start = clock.now();
            let (rate, burst) = (10_000.0, 2_000.0);
            let mut b = TokenBucket::new(rate, burst, Duration::from_millis(300), start);
            let mut granted = 0.0;
            for (amount, gap_ms) in steps {
                clock.advance(Duration::from_millis(u64::from(gap_ms)));
                match b.reserve(f64::from(amount), clock.now()) {
                    Reservation::Ready => granted += f64::from(amount),
                    Reservation::Wait(d) => {
                        clock.advance(d);
                        granted += f64::from(amount);
                    }
                    Reservation::Rejected(d) => proptest::prop_assert!(d > Duration::ZERO),
                }
                let elapsed = (clock.now() - start).as_secs_f64();
                proptest::prop_assert!(granted <= burst + rate * elapsed + 1e-6);
            }
        }
    }

    #[test]
    fn bursts_are_free_then_debt_is_bounded() {
        let clock = ManualClock::new();
        let mut b = TokenBucket::new(100.0, 50.0, Duration::from_secs(1), clock.now());
        assert_eq!(b.reserve(50.0, clock.now()), Reservation::Ready);
        assert_eq!(
            b.reserve(50.0, clock.now()),
            Reservation::Wait(Duration::from_millis(500))
        );
        // 60 more would mean a wait of 1.1 s > 1 s.
        match b.reserve(60.0, clock.now()) {
            Reservation::Rejected(d) => assert!((d.as_secs_f64() - 0.1).abs() < 1e-9),
            other => panic!("{other:?}"),
        }
        assert_eq!(b.debt_wait(clock.now()), Duration::from_millis(500));
        clock.advance(Duration::from_millis(500));
        assert_eq!(b.debt_wait(clock.now()), Duration::ZERO);
        clock.advance(Duration::from_secs(10));
        assert_eq!(b.tokens(clock.now()), 50.0);
        b.consume(70.0, clock.now());
        assert_eq!(b.tokens(clock.now()), -20.0);
    }
}
