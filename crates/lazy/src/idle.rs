//! Idle detection: a service is idle when it has had no request in flight for a while and
//! (optionally) the CPU is not busy. Fed by explicit activity calls, by [`ActivityGuard`]s
//! held for the duration of a request, or by the tower layer (feature `tower`).

use crate::clock::TokioClock;
use parking_lot::Mutex;
use perfkit_core::SharedClock;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Tells how busy the CPU is, as a fraction between 0 and 1; `None` when unknown (an
/// unknown load does not prevent idleness). Implemented for closures.
pub trait CpuProbe: Send + Sync {
    /// The current CPU load, 0 to 1.
    fn cpu_load(&self) -> Option<f64>;
}

impl<F: Fn() -> Option<f64> + Send + Sync> CpuProbe for F {
    fn cpu_load(&self) -> Option<f64> {
        self()
    }
}

/// This process's CPU use since the previous call, as a fraction of all cores, read from
/// `/proc/self/stat` (Linux; `None` elsewhere and on the first call).
#[derive(Debug, Default)]
pub struct ProcessCpuProbe {
    last: Mutex<Option<(Instant, f64)>>,
}

impl ProcessCpuProbe {
    /// A probe; its first reading is `None` (it needs two samples).
    pub fn new() -> Self {
        Self::default()
    }

    /// CPU seconds (user + system) this process has used, if readable.
    fn cpu_secs() -> Option<f64> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name, which is in parentheses and may contain spaces.
        let rest = &stat[stat.rfind(')')? + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
        let utime: f64 = fields.get(11)?.parse().ok()?;
        let stime: f64 = fields.get(12)?.parse().ok()?;
        // USER_HZ is 100 on every Linux configuration user space sees.
        Some((utime + stime) / 100.0)
    }
}

impl CpuProbe for ProcessCpuProbe {
    fn cpu_load(&self) -> Option<f64> {
        let now = Instant::now();
        let cpu = Self::cpu_secs()?;
        let mut last = self.last.lock();
        let previous = last.replace((now, cpu));
        let (then, cpu_then) = previous?;
        let wall = now.duration_since(then).as_secs_f64();
        if wall <= 0.0 {
            return None;
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        Some(((cpu - cpu_then) / wall / cores).clamp(0.0, 1.0))
    }
}

struct IdleInner {
    clock: SharedClock,
    epoch: Instant,
    idle_after: Duration,
    in_flight: AtomicU64,
    /// Nanoseconds since `epoch` of the last activity.
    last_activity: AtomicU64,
    cpu: Option<(Arc<dyn CpuProbe>, f64)>,
}

/// Decides whether a service is idle: no request in flight, no activity for `idle_after`,
/// and, with a CPU probe, a CPU load at most the given threshold.
///
/// Cheap to clone: clones share the state.
///
/// ```
/// use perfkit_core::ManualClock;
/// use perfkit_lazy::IdleDetector;
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// let idle = IdleDetector::builder(Duration::from_secs(5)).clock(clock.shared()).build();
/// {
///     let _request = idle.begin(); // a request in flight
///     clock.advance(Duration::from_secs(10));
///     assert!(!idle.is_idle());
/// }
/// assert!(!idle.is_idle()); // it just ended
/// clock.advance(Duration::from_secs(5));
/// assert!(idle.is_idle());
/// ```
#[derive(Clone)]
pub struct IdleDetector {
    inner: Arc<IdleInner>,
}

impl fmt::Debug for IdleDetector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdleDetector")
            .field("idle_after", &self.inner.idle_after)
            .field("in_flight", &self.in_flight())
            .field("cpu_probe", &self.inner.cpu.is_some())
            .finish()
    }
}

/// Options of an [`IdleDetector`].
pub struct IdleDetectorBuilder {
    idle_after: Duration,
    clock: Option<SharedClock>,
    cpu: Option<(Arc<dyn CpuProbe>, f64)>,
}

impl fmt::Debug for IdleDetectorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdleDetectorBuilder")
            .field("idle_after", &self.idle_after)
            .finish()
    }
}

impl IdleDetectorBuilder {
    /// The clock (default: [`TokioClock`]).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Requires `probe` to report a CPU load of at most `max_load` (0 to 1) to be idle.
    pub fn cpu_probe(mut self, probe: impl CpuProbe + 'static, max_load: f64) -> Self {
        self.cpu = Some((Arc::new(probe), max_load));
        self
    }

    /// The detector. It starts as if an activity had just happened.
    pub fn build(self) -> IdleDetector {
        let clock = self.clock.unwrap_or_else(TokioClock::shared);
        IdleDetector {
            inner: Arc::new(IdleInner {
                epoch: clock.now(),
                clock,
                idle_after: self.idle_after,
                in_flight: AtomicU64::new(0),
                last_activity: AtomicU64::new(0),
                cpu: self.cpu,
            }),
        }
    }
}

impl IdleDetector {
    /// Idle after `idle_after` without activity, no CPU condition, tokio's clock.
    pub fn new(idle_after: Duration) -> Self {
        Self::builder(idle_after).build()
    }

    /// A builder.
    pub fn builder(idle_after: Duration) -> IdleDetectorBuilder {
        IdleDetectorBuilder {
            idle_after,
            clock: None,
            cpu: None,
        }
    }

    fn now_nanos(&self) -> u64 {
        let since = self
            .inner
            .clock
            .now()
            .saturating_duration_since(self.inner.epoch);
        u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
    }

    /// Records an activity now (a request, a user action).
    pub fn record_activity(&self) {
        self.inner
            .last_activity
            .fetch_max(self.now_nanos(), Ordering::Relaxed);
    }

    /// Marks a request in flight until the guard is dropped.
    pub fn begin(&self) -> ActivityGuard {
        self.inner.in_flight.fetch_add(1, Ordering::AcqRel);
        self.record_activity();
        ActivityGuard {
            detector: self.clone(),
        }
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> u64 {
        self.inner.in_flight.load(Ordering::Acquire)
    }

    /// Time since the last activity (zero while a request is in flight).
    pub fn idle_for(&self) -> Duration {
        if self.in_flight() > 0 {
            return Duration::ZERO;
        }
        let last = self.inner.last_activity.load(Ordering::Relaxed);
        Duration::from_nanos(self.now_nanos().saturating_sub(last))
    }

    /// Whether the service is idle now. Reads the CPU probe, if any (a probe measuring
    /// between calls sees the interval since the previous `is_idle`).
    pub fn is_idle(&self) -> bool {
        if self.idle_for() < self.inner.idle_after || self.in_flight() > 0 {
            return false;
        }
        match &self.inner.cpu {
            Some((probe, max)) => probe.cpu_load().is_none_or(|load| load <= *max),
            None => true,
        }
    }
}

/// A request in flight; see [`IdleDetector::begin`].
#[derive(Debug)]
#[must_use = "the request counts as in flight only while the guard lives"]
pub struct ActivityGuard {
    detector: IdleDetector,
}

impl Drop for ActivityGuard {
    fn drop(&mut self) {
        self.detector.record_activity();
        self.detector.inner.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}
