//! [`LeakDetector`]: snapshots of a memory source, on demand or from a background
//! sampler, analysed for leaks, with alert and cleanup callbacks.

use crate::analysis::{self, Analysis, AnalysisConfig, Pattern, Trend};
use crate::error::LeakError;
use crate::oom::{LimitResolver, LimitSource};
use crate::report::LeakReport;
use crate::series::Sample;
use perfkit_alloc::MemorySource;
use perfkit_core::{Callbacks, Severity, SharedClock, SystemClock};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One reading of the detector's memory source.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Seconds since the detector was built (by its clock).
    pub t_secs: f64,
    /// Bytes in use.
    pub bytes: u64,
    /// The limit the source reported, if any.
    pub limit_bytes: Option<u64>,
}

/// Sent to alert callbacks when the verdict is new or changes (pattern or severity).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeakAlert {
    /// The previous verdict's pattern and severity, if there was one.
    pub previous: Option<(Pattern, Severity)>,
    /// The new verdict.
    pub analysis: Analysis,
}

/// Why cleanup callbacks were called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CleanupReason {
    /// [`LeakDetector::trigger_cleanup`] was called.
    Manual,
    /// A critical leak was detected (at most once per cooldown).
    CriticalLeak,
}

/// Sent to cleanup callbacks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CleanupEvent {
    /// Why.
    pub reason: CleanupReason,
    /// Bytes in use at the latest snapshot.
    pub bytes: Option<u64>,
    /// The verdict that triggered it, for automatic cleanups.
    pub analysis: Option<Analysis>,
}

/// Builds a [`LeakDetector`].
#[derive(Debug)]
pub struct LeakDetectorBuilder {
    source: Arc<dyn MemorySource>,
    clock: SharedClock,
    interval: Duration,
    window: usize,
    analyze_every: usize,
    cooldown: Duration,
    limits: LimitResolver,
    config: AnalysisConfig,
}

impl LeakDetectorBuilder {
    /// The clock snapshots are timed with (a `ManualClock` in tests). Default: the system
    /// clock.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The background sampler's interval. Default 1 s.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// How many snapshots the window keeps (the oldest are dropped). Default 3,600.
    pub fn window(mut self, snapshots: usize) -> Self {
        self.window = snapshots;
        self
    }

    /// The background sampler runs [`LeakDetector::detect_leaks`] every this many
    /// snapshots. Default 10.
    pub fn analyze_every(mut self, snapshots: usize) -> Self {
        self.analyze_every = snapshots;
        self
    }

    /// The least time between two automatic cleanups. Default 5 minutes.
    pub fn cleanup_cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// Adds a source of the memory limit (explicit > budget > cgroup > system).
    pub fn limit(mut self, source: LimitSource) -> Self {
        self.limits.push(source);
        self
    }

    /// The analysis thresholds.
    pub fn analysis(mut self, config: AnalysisConfig) -> Self {
        self.config = config;
        self
    }

    /// Builds the detector. Fails on a zero interval or a window under three snapshots.
    pub fn build(self) -> Result<LeakDetector, LeakError> {
        if self.interval.is_zero() {
            return Err(LeakError::Config("the interval must be positive".into()));
        }
        if self.window < 3 {
            return Err(LeakError::Config(format!(
                "the window must hold at least 3 snapshots, not {}",
                self.window
            )));
        }
        let origin = self.clock.now();
        Ok(LeakDetector {
            inner: Arc::new(Inner {
                source: self.source,
                clock: self.clock,
                origin,
                interval: self.interval,
                window_cap: self.window,
                analyze_every: self.analyze_every.max(1),
                cooldown: self.cooldown,
                limits: self.limits,
                config: self.config,
                state: Mutex::new(State::default()),
                alerts: Callbacks::new(),
                cleanups: Callbacks::new(),
                sampler: Mutex::new(None),
            }),
        })
    }
}

/// Watches a memory source for leaks.
///
/// Cheap to clone (clones share the detector). The background sampler started by
/// [`start`](Self::start) stops on [`stop`](Self::stop) or when the last handle is dropped.
///
/// ```
/// use perfkit_alloc::{MemoryError, MemoryReading, MemorySource};
/// use perfkit_core::ManualClock;
/// use perfkit_leak::{LeakDetector, LimitSource, Pattern};
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// #[derive(Debug, Default)]
/// struct Counter(AtomicU64);
/// impl MemorySource for Counter {
///     fn name(&self) -> &'static str { "counter" }
///     fn read(&self) -> Result<MemoryReading, MemoryError> {
///         Ok(MemoryReading { used_bytes: self.0.load(Ordering::SeqCst), limit_bytes: None })
///     }
/// }
///
/// let source = Arc::new(Counter::default());
/// let clock = ManualClock::new();
/// let detector = LeakDetector::builder(source.clone())
///     .clock(clock.shared())
///     .limit(LimitSource::Explicit(64 << 20))
///     .build()
///     .unwrap();
/// for i in 0..60u64 {
///     // 10 KiB a second, with ups and downs.
///     source.0.store((1 << 20) + i * 10_240 - (i % 3) * 15_000, Ordering::SeqCst);
///     detector.take_snapshot().unwrap();
///     clock.advance(Duration::from_secs(1));
/// }
/// let verdict = detector.detect_leaks();
/// assert_eq!(verdict.pattern, Pattern::Linear);
/// assert!(verdict.oom_eta_secs().unwrap() > 3600.0);
/// ```
#[derive(Debug, Clone)]
pub struct LeakDetector {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    source: Arc<dyn MemorySource>,
    clock: SharedClock,
    origin: Instant,
    interval: Duration,
    window_cap: usize,
    analyze_every: usize,
    cooldown: Duration,
    limits: LimitResolver,
    config: AnalysisConfig,
    state: Mutex<State>,
    alerts: Callbacks<LeakAlert>,
    cleanups: Callbacks<CleanupEvent>,
    sampler: Mutex<Option<Sampler>>,
}

#[derive(Debug, Default)]
struct State {
    window: VecDeque<Snapshot>,
    since_analysis: usize,
    last: Option<Analysis>,
    last_cleanup: Option<Instant>,
    cleanups_triggered: u64,
    errors: u64,
}

#[derive(Debug)]
struct Sampler {
    stop: Arc<(Mutex<bool>, Condvar)>,
    handle: Option<JoinHandle<()>>,
}

impl Sampler {
    fn shutdown(mut self) {
        let (lock, cvar) = &*self.stop;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cvar.notify_all();
        if let Some(h) = self.handle.take()
            && h.thread().id() != std::thread::current().id()
        {
            let _ = h.join();
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(s) = self
            .sampler
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            s.shutdown();
        }
    }
}

impl LeakDetector {
    /// A detector over `source` with the defaults (system clock, 1 s interval, 3,600
    /// snapshots, no limit).
    pub fn new(source: Arc<dyn MemorySource>) -> Self {
        match Self::builder(source).build() {
            Ok(detector) => detector,
            Err(_) => unreachable!("the default configuration is valid"),
        }
    }

    /// A builder over `source`.
    pub fn builder(source: Arc<dyn MemorySource>) -> LeakDetectorBuilder {
        LeakDetectorBuilder {
            source,
            clock: SystemClock::shared(),
            interval: Duration::from_secs(1),
            window: 3600,
            analyze_every: 10,
            cooldown: Duration::from_secs(300),
            limits: LimitResolver::new(),
            config: AnalysisConfig::default(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The memory source's name.
    pub fn source_name(&self) -> &'static str {
        self.inner.source.name()
    }

    /// Reads the source now and adds the snapshot to the window.
    pub fn take_snapshot(&self) -> Result<Snapshot, LeakError> {
        let reading = self.inner.source.read().map_err(|source| {
            self.state().errors += 1;
            LeakError::Source {
                source_name: self.inner.source.name(),
                source,
            }
        })?;
        let t = self
            .inner
            .clock
            .now()
            .saturating_duration_since(self.inner.origin)
            .as_secs_f64();
        let snap = Snapshot {
            t_secs: t,
            bytes: reading.used_bytes,
            limit_bytes: reading.limit_bytes,
        };
        self.record(snap);
        Ok(snap)
    }

    /// Adds a snapshot measured elsewhere (a process sampler, a replayed series).
    pub fn record(&self, snapshot: Snapshot) {
        let mut st = self.state();
        if st.window.len() >= self.inner.window_cap {
            st.window.pop_front();
        }
        st.window.push_back(snapshot);
        st.since_analysis += 1;
    }

    /// The snapshots in the window, oldest first.
    pub fn snapshots(&self) -> Vec<Snapshot> {
        self.state().window.iter().copied().collect()
    }

    /// Forgets every snapshot and the last verdict.
    pub fn clear(&self) {
        let mut st = self.state();
        st.window.clear();
        st.last = None;
        st.since_analysis = 0;
    }

    fn samples(&self) -> Vec<Sample> {
        self.state()
            .window
            .iter()
            .map(|s| Sample::new(s.t_secs, s.bytes))
            .collect()
    }

    /// The robust trend of the window (Theil-Sen slope and interval, Mann-Kendall test,
    /// R², noise).
    pub fn calculate_trend(&self) -> Result<Trend, LeakError> {
        let samples = self.samples();
        let a = analysis::analyze(&samples, &self.inner.config, None);
        a.trend.ok_or(LeakError::NotEnoughData {
            points: a.analyzed_points,
            needed: self.inner.config.min_points.max(3),
        })
    }

    /// The limit leaks are measured against: the configured sources, then the source's own
    /// reported limit.
    pub fn limit(&self) -> Option<crate::MemoryLimit> {
        self.inner.limits.resolve().or_else(|| {
            let last = self.state().window.back().and_then(|s| s.limit_bytes)?;
            let kind = match self.inner.source.name() {
                "cgroup" => crate::LimitKind::Cgroup,
                _ => crate::LimitKind::System,
            };
            Some(crate::MemoryLimit::new(last, kind))
        })
    }

    /// Analyses the window: the pattern, whether it leaks, confidence, growth, time to the
    /// limit and the evidence. Calls the alert callbacks when the verdict is new or has
    /// changed, and the cleanup callbacks on a critical leak (at most once per cooldown).
    pub fn detect_leaks(&self) -> Analysis {
        let samples = self.samples();
        let limit = self.limit();
        let verdict = analysis::analyze(&samples, &self.inner.config, limit);
        let now = self.inner.clock.now();
        let (alert, cleanup) = {
            let mut st = self.state();
            st.since_analysis = 0;
            let previous = st.last.as_ref().map(|a| (a.pattern, a.severity));
            let changed =
                !verdict.insufficient_data && previous != Some((verdict.pattern, verdict.severity));
            let cleanup = verdict.severity == Severity::Critical
                && st
                    .last_cleanup
                    .is_none_or(|t| now.saturating_duration_since(t) >= self.inner.cooldown);
            if cleanup {
                st.last_cleanup = Some(now);
                st.cleanups_triggered += 1;
            }
            if !verdict.insufficient_data {
                st.last = Some(verdict.clone());
            }
            (changed.then_some(previous), cleanup)
        };
        if let Some(previous) = alert {
            self.inner.alerts.emit(&LeakAlert {
                previous,
                analysis: verdict.clone(),
            });
        }
        if cleanup {
            self.inner.cleanups.emit(&CleanupEvent {
                reason: CleanupReason::CriticalLeak,
                bytes: samples.last().map(|s| s.bytes),
                analysis: Some(verdict.clone()),
            });
        }
        verdict
    }

    /// The last verdict of [`detect_leaks`](Self::detect_leaks), if any.
    pub fn last_verdict(&self) -> Option<Analysis> {
        self.state().last.clone()
    }

    /// Registers a callback called on every new or changed verdict.
    pub fn on_alert(&self, f: impl Fn(&LeakAlert) + Send + Sync + 'static) {
        self.inner.alerts.register(f);
    }

    /// Registers a cleanup callback (flush a cache, drop a pool), called by
    /// [`trigger_cleanup`](Self::trigger_cleanup) and on a critical leak.
    pub fn register_cleanup(&self, f: impl Fn(&CleanupEvent) + Send + Sync + 'static) {
        self.inner.cleanups.register(f);
    }

    /// Calls the cleanup callbacks now. Returns how many ran without panicking.
    pub fn trigger_cleanup(&self) -> usize {
        let bytes = {
            let mut st = self.state();
            st.cleanups_triggered += 1;
            st.window.back().map(|s| s.bytes)
        };
        let total = self.inner.cleanups.len();
        let failed = self.inner.cleanups.emit(&CleanupEvent {
            reason: CleanupReason::Manual,
            bytes,
            analysis: None,
        });
        total - failed.min(total)
    }

    /// Starts the background sampler: a snapshot every interval, an analysis every
    /// `analyze_every` snapshots. Starting twice is a no-op.
    pub fn start(&self) -> Result<(), LeakError> {
        let mut sampler = self.inner.sampler.lock().unwrap_or_else(|e| e.into_inner());
        if sampler.is_some() {
            return Ok(());
        }
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let interval = self.inner.interval;
        let thread_stop = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("perfkit-leak".into())
            .spawn(move || sampler_loop(weak, interval, thread_stop))
            .map_err(LeakError::Spawn)?;
        *sampler = Some(Sampler {
            stop,
            handle: Some(handle),
        });
        Ok(())
    }

    /// Stops the background sampler and waits for it to finish.
    pub fn stop(&self) {
        let taken = self
            .inner
            .sampler
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(s) = taken {
            s.shutdown();
        }
    }

    /// Whether the background sampler runs.
    pub fn is_running(&self) -> bool {
        self.inner
            .sampler
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// The detector's report: its source, window and last verdict.
    pub fn report(&self) -> LeakReport {
        let st = self.state();
        LeakReport {
            source: self.inner.source.name().to_owned(),
            snapshots: st.window.len(),
            latest_bytes: st.window.back().map(|s| s.bytes),
            read_errors: st.errors,
            cleanups_triggered: st.cleanups_triggered,
            verdict: st.last.clone(),
        }
    }
}

fn sampler_loop(weak: Weak<Inner>, interval: Duration, stop: Arc<(Mutex<bool>, Condvar)>) {
    let (lock, cvar) = &*stop;
    loop {
        {
            let guard = lock.lock().unwrap_or_else(|e| e.into_inner());
            let (guard, _) = cvar
                .wait_timeout_while(guard, interval, |stopped| !*stopped)
                .unwrap_or_else(|e| e.into_inner());
            if *guard {
                return;
            }
        }
        let Some(inner) = weak.upgrade() else {
            return;
        };
        let detector = LeakDetector { inner };
        if detector.take_snapshot().is_ok() {
            let due = detector.state().since_analysis >= detector.inner.analyze_every;
            if due {
                detector.detect_leaks();
            }
        }
    }
}
