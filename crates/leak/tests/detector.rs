//! The detector: snapshots through a manual clock, a bounded window, alerts, cleanup with a
//! cooldown, the background sampler.

use perfkit_alloc::{MemoryError, MemoryReading, MemorySource};
use perfkit_core::{ManualClock, Report, Severity};
use perfkit_leak::{CleanupReason, LeakDetector, LeakError, LimitKind, LimitSource, Pattern};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Default)]
struct Fake {
    used: AtomicU64,
    broken: AtomicBool,
}

impl MemorySource for Fake {
    fn name(&self) -> &'static str {
        "fake"
    }
    fn read(&self) -> Result<MemoryReading, MemoryError> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(MemoryError::NotAvailable {
                source_name: "fake",
                reason: "broken on purpose".into(),
            });
        }
        Ok(MemoryReading {
            used_bytes: self.used.load(Ordering::SeqCst),
            limit_bytes: Some(1 << 40),
        })
    }
}

fn setup(limit: u64) -> (Arc<Fake>, ManualClock, LeakDetector) {
    let source = Arc::new(Fake::default());
    let clock = ManualClock::new();
    let detector = LeakDetector::builder(source.clone())
        .clock(clock.shared())
        .window(500)
        .cleanup_cooldown(Duration::from_secs(60))
        .limit(LimitSource::Explicit(limit))
        .build()
        .unwrap();
    (source, clock, detector)
}

/// Feeds `n` one-second snapshots of `f(i)`.
fn feed(source: &Fake, clock: &ManualClock, d: &LeakDetector, n: u64, f: impl Fn(u64) -> u64) {
    for i in 0..n {
        source.used.store(f(i), Ordering::SeqCst);
        d.take_snapshot().unwrap();
        clock.advance(Duration::from_secs(1));
    }
}

#[test]
fn snapshots_use_the_clock_and_the_window_is_bounded() {
    let source = Arc::new(Fake::default());
    let clock = ManualClock::new();
    let d = LeakDetector::builder(source.clone())
        .clock(clock.shared())
        .window(5)
        .build()
        .unwrap();
    feed(&source, &clock, &d, 8, |i| 100 + i);
    let snaps = d.snapshots();
    assert_eq!(snaps.len(), 5);
    assert_eq!(snaps[0].t_secs, 3.0);
    assert_eq!(snaps[4].bytes, 107);
    assert_eq!(snaps[4].limit_bytes, Some(1 << 40));
    assert!(matches!(
        LeakDetector::builder(source.clone()).window(2).build(),
        Err(LeakError::Config(_))
    ));
    assert!(
        LeakDetector::builder(source)
            .interval(Duration::ZERO)
            .build()
            .is_err()
    );
}

#[test]
fn trend_needs_data_then_measures_the_slope() {
    let (source, clock, d) = setup(1 << 30);
    assert!(matches!(
        d.calculate_trend(),
        Err(LeakError::NotEnoughData { .. })
    ));
    feed(&source, &clock, &d, 60, |i| {
        1_000_000 + 2_000 * i + (i % 3) * 500
    });
    let trend = d.calculate_trend().unwrap();
    assert!(
        (trend.slope_bytes_per_sec - 2_000.0).abs() < 100.0,
        "{trend:?}"
    );
    assert!(trend.mann_kendall.z > 5.0);
    assert!(trend.r_squared > 0.99);
    assert!(trend.confidence > 0.999 && trend.confidence <= 1.0);
}

#[test]
fn alerts_fire_on_new_and_changed_verdicts_only() {
    let (source, clock, d) = setup(1 << 30);
    let alerts = Arc::new(Mutex::new(Vec::new()));
    let a = alerts.clone();
    d.on_alert(move |alert| {
        a.lock()
            .unwrap()
            .push((alert.previous, alert.analysis.pattern));
    });
    feed(&source, &clock, &d, 40, |i| 5_000_000 + (i % 4) * 1_000);
    assert_eq!(d.detect_leaks().pattern, Pattern::None);
    assert_eq!(d.detect_leaks().pattern, Pattern::None);
    feed(&source, &clock, &d, 200, |i| {
        5_000_000 + 50_000 * i + (i % 4) * 30_000
    });
    d.clear();
    feed(&source, &clock, &d, 100, |i| {
        5_000_000 + 50_000 * i + (i % 4) * 30_000
    });
    let v = d.detect_leaks();
    assert_eq!(v.pattern, Pattern::Linear, "{:?}", v.evidence);
    let seen = alerts.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0], (None, Pattern::None));
    assert_eq!(seen[1].1, Pattern::Linear);
    assert_eq!(d.report().severity(), v.severity);
    assert!(!d.report().findings().is_empty());
}

#[test]
fn critical_leaks_trigger_cleanup_with_a_cooldown() {
    // 1 MB/s towards a 200 MB limit: critical (well within an hour).
    let (source, clock, d) = setup(200_000_000);
    let calls = Arc::new(AtomicUsize::new(0));
    let reasons = Arc::new(Mutex::new(Vec::new()));
    let (c, r) = (calls.clone(), reasons.clone());
    d.register_cleanup(move |e| {
        c.fetch_add(1, Ordering::SeqCst);
        r.lock().unwrap().push(e.reason);
    });
    d.register_cleanup(|_| panic!("a broken cleanup hook"));
    feed(&source, &clock, &d, 30, |i| {
        10_000_000 + 1_000_000 * i + (i % 2) * 200_000
    });
    let v = d.detect_leaks();
    assert!(v.leak && v.severity == Severity::Critical, "{v:?}");
    assert_eq!(v.oom.unwrap().limit_source, LimitKind::Explicit);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // Within the cooldown: no second automatic cleanup.
    clock.advance(Duration::from_secs(30));
    d.detect_leaks();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    clock.advance(Duration::from_secs(31));
    d.detect_leaks();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // Manual cleanup: one hook ran, the panicking one was isolated.
    assert_eq!(d.trigger_cleanup(), 1);
    assert_eq!(
        *reasons.lock().unwrap(),
        vec![
            CleanupReason::CriticalLeak,
            CleanupReason::CriticalLeak,
            CleanupReason::Manual
        ]
    );
    assert_eq!(d.report().cleanups_triggered, 3);
}

#[test]
fn the_source_limit_is_used_when_no_limit_is_configured() {
    let source = Arc::new(Fake::default());
    let clock = ManualClock::new();
    let d = LeakDetector::builder(source.clone())
        .clock(clock.shared())
        .build()
        .unwrap();
    feed(&source, &clock, &d, 20, |i| 1000 + i);
    assert_eq!(d.limit().unwrap().bytes, 1 << 40);
    assert_eq!(d.limit().unwrap().kind, LimitKind::System);
}

#[test]
fn source_errors_are_reported_and_counted() {
    let (source, _clock, d) = setup(1 << 30);
    source.broken.store(true, Ordering::SeqCst);
    let err = d.take_snapshot().unwrap_err();
    assert!(err.to_string().contains("fake"), "{err}");
    assert_eq!(d.report().read_errors, 1);
    assert!(d.snapshots().is_empty());
}

#[test]
fn background_sampler_starts_and_stops() {
    let source = Arc::new(Fake::default());
    source.used.store(42, Ordering::SeqCst);
    let d = LeakDetector::builder(source)
        .interval(Duration::from_millis(2))
        .analyze_every(2)
        .build()
        .unwrap();
    d.start().unwrap();
    d.start().unwrap();
    assert!(d.is_running());
    // Wait (bounded) for the sampler to take a few snapshots.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while d.snapshots().len() < 5 && std::time::Instant::now() < deadline {
        std::thread::yield_now();
    }
    d.stop();
    assert!(!d.is_running());
    let n = d.snapshots().len();
    assert!(n >= 5, "{n}");
    assert_eq!(d.snapshots().len(), n, "no snapshot after stop");
    // Dropping a running detector stops its thread too.
    let d2 = LeakDetector::new(Arc::new(Fake::default()));
    d2.start().unwrap();
    drop(d2);
}
