//! Budgets driven by a manual clock: levels, hysteresis, transitions, rates, cleanup.

use perfkit_alloc::ManualSource;
use perfkit_budget::{
    Budget, BudgetError, Budgets, Decision, Level, Resource, ResourceKind, Thresholds, Transition,
};
use perfkit_core::{ManualClock, Report, Severity};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn budgets(clock: &ManualClock) -> Budgets {
    Budgets::builder()
        .clock(clock.shared())
        .cleanup_cooldown(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn levels(t: &[Transition]) -> Vec<(Level, Level)> {
    t.iter().map(|t| (t.from, t.to)).collect()
}

#[test]
fn memory_levels_with_hysteresis_and_transition_callbacks() {
    let clock = ManualClock::new();
    let b = budgets(&clock);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    b.on_transition(move |t| s.lock().unwrap().push(t.clone()));
    b.on_transition(|_| panic!("a broken callback must not break budgets"));
    let mem = b
        .set_budget(Budget::memory(1000).throttle_delay(Duration::from_millis(10)))
        .unwrap();
    assert_eq!(mem, Resource::MEMORY);

    let steps: [(u64, Level); 9] = [
        (500, Level::Allow),
        (800, Level::Warn),
        (760, Level::Warn), // above 75 %: stays
        (900, Level::Throttle),
        (860, Level::Throttle), // above 85 %: stays
        (1000, Level::Reject),
        (960, Level::Reject), // above 95 %: stays
        (940, Level::Throttle),
        (100, Level::Allow),
    ];
    for (usage, want) in steps {
        clock.advance(Duration::from_secs(2));
        b.set_usage(mem, usage);
        assert_eq!(b.check(mem).level(), want, "at {usage}");
    }
    match b.check(Resource::MEMORY) {
        Decision::Allow => {}
        other => panic!("{other:?}"),
    }
    let t = seen.lock().unwrap().clone();
    assert_eq!(
        levels(&t),
        vec![
            (Level::Allow, Level::Warn),
            (Level::Warn, Level::Throttle),
            (Level::Throttle, Level::Reject),
            (Level::Reject, Level::Throttle),
            (Level::Throttle, Level::Allow),
        ]
    );
    assert_eq!(t[1].time_in_previous_secs, 4.0);
    assert_eq!(b.transitions().len(), 5);
    let v = b.violations();
    assert_eq!(
        levels(&v),
        vec![
            (Level::Warn, Level::Throttle),
            (Level::Throttle, Level::Reject)
        ]
    );
    let h = b.health();
    assert_eq!(h.budgets[0].violations, 2);
    assert_eq!(h.budgets[0].transitions, 5);
    assert_eq!(h.level, Level::Allow);
    clock.advance(Duration::from_secs(7));
    assert_eq!(b.health().budgets[0].time_in_level_secs, 7.0);
}

#[test]
fn throttle_delay_grows_through_the_band_and_reject_carries_retry_after() {
    let clock = ManualClock::new();
    let b = budgets(&clock);
    let mem = b
        .set_budget(
            Budget::memory(1000)
                .throttle_delay(Duration::from_millis(10))
                .max_throttle_delay(Duration::from_millis(110))
                .retry_after(Duration::from_secs(5)),
        )
        .unwrap();
    b.set_usage(mem, 900);
    assert_eq!(
        b.check(mem),
        Decision::Throttle {
            delay: Duration::from_millis(10)
        }
    );
    b.set_usage(mem, 950);
    assert_eq!(
        b.check(mem),
        Decision::Throttle {
            delay: Duration::from_millis(60)
        }
    );
    b.set_usage(mem, 2000);
    assert_eq!(
        b.check(mem),
        Decision::Reject {
            retry_after: Duration::from_secs(5)
        }
    );
    assert!(matches!(
        b.check_all(&[Resource::CPU, mem]),
        Decision::Reject { .. }
    ));
    assert_eq!(
        b.check(Resource::CPU),
        Decision::Allow,
        "no CPU budget: allowed"
    );
}

#[test]
fn record_and_release_memory_and_custom_thresholds() {
    let clock = ManualClock::new();
    let b = budgets(&clock);
    let t = Thresholds {
        warn: 0.5,
        throttle: 0.6,
        reject: 0.7,
        hysteresis: 0.1,
    };
    let mem = b.set_budget(Budget::memory(100).thresholds(t)).unwrap();
    b.record_usage(mem, 55);
    assert_eq!(b.check(mem), Decision::Warn);
    b.record_usage(mem, 20);
    assert!(matches!(b.check(mem), Decision::Reject { .. }));
    b.release(mem, 10); // 65: above 0.7 - 0.1
    assert!(matches!(b.check(mem), Decision::Reject { .. }));
    b.release(mem, 10); // 55
    assert!(matches!(b.check(mem), Decision::Throttle { .. }));
    b.release(mem, 1000);
    assert_eq!(b.usage()[0].usage, 0.0);
    assert_eq!(b.check(mem), Decision::Allow);
}

#[test]
fn violation_history_is_bounded() {
    let clock = ManualClock::new();
    let b = Budgets::builder()
        .clock(clock.shared())
        .history(3)
        .build()
        .unwrap();
    let mem = b.set_budget(Budget::memory(100)).unwrap();
    for i in 0..10 {
        b.set_usage(mem, 100 + i);
        b.set_usage(mem, 0);
    }
    assert_eq!(b.violations().len(), 3);
    assert_eq!(b.transitions().len(), 3);
    assert_eq!(b.health().budgets[0].violations, 10);
    assert_eq!(b.violations()[2].usage, 109.0);
}

#[test]
fn cleanup_hooks_run_at_throttle_with_cooldown_and_their_effect_is_visible() {
    let clock = ManualClock::new();
    let b = budgets(&clock);
    let source = ManualSource::new("manual");
    let mem = b
        .set_budget(Budget::memory(1000).source(source.clone()))
        .unwrap();
    let runs = Arc::new(AtomicU64::new(0));
    let (src, r) = (source.clone(), Arc::clone(&runs));
    b.register_cleanup("drop-cache", move || {
        r.fetch_add(1, Ordering::SeqCst);
        src.set(500); // the cache held 450 bytes
        450u64
    });
    b.register_cleanup("broken", || -> () { panic!("isolated") });

    source.set(850);
    b.sample_now();
    assert_eq!(b.check(mem), Decision::Warn);
    assert_eq!(runs.load(Ordering::SeqCst), 0, "warn does not clean up");

    source.set(950);
    b.sample_now();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    // The hook's effect shows at once: the source was re-read after the hooks ran.
    assert_eq!(b.check(mem), Decision::Allow);
    assert_eq!(b.usage()[0].usage, 500.0);

    // Pressure again within the cooldown: no second run.
    clock.advance(Duration::from_secs(10));
    source.set(950);
    b.sample_now();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(matches!(b.check(mem), Decision::Throttle { .. }));

    clock.advance(Duration::from_secs(21));
    b.sample_now();
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert_eq!(b.check(mem), Decision::Allow);

    let stats = b.cleanup_stats();
    assert_eq!(stats[0].runs, 2);
    assert_eq!(stats[0].freed_bytes, 900);
    assert_eq!(stats[1].panics, 2);
    assert_eq!(b.cleanup_now(), 450);
}

#[test]
fn unavailable_memory_source_is_reported_not_guessed() {
    let clock = ManualClock::new();
    let b = budgets(&clock);
    b.set_budget(Budget::memory(1000).source(perfkit_alloc::HeapSource))
        .unwrap();
    b.sample_now();
    let h = b.health();
    let err = h.budgets[0].error.as_deref().unwrap();
    assert!(err.contains("not available"), "{err}");
    assert_eq!(b.check(Resource::MEMORY), Decision::Allow);
}

#[test]
fn storage_quota_by_directory_scan_and_recorded_writes() {
    let clock = ManualClock::new();
    let b = budgets(&clock);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("a"), vec![0u8; 600]).unwrap();
    std::fs::write(dir.path().join("sub/b"), vec![0u8; 250]).unwrap();
    let disk = b
        .set_budget(
            Budget::storage(1000)
                .directory(dir.path())
                .scan_every(Duration::from_secs(10)),
        )
        .unwrap();
    b.sample_now();
    assert_eq!(b.usage()[0].usage, 850.0);
    assert_eq!(b.check(disk), Decision::Warn);
    b.record_usage(disk, 150); // a write the app made
    assert!(matches!(b.check(disk), Decision::Reject { .. }));
    std::fs::remove_file(dir.path().join("a")).unwrap();
    b.sample_now(); // rescan not due yet
    assert!(matches!(b.check(disk), Decision::Reject { .. }));
    clock.advance(Duration::from_secs(10));
    b.sample_now();
    assert_eq!(b.usage()[0].usage, 250.0);
    assert_eq!(b.check(disk), Decision::Allow);

    let missing = Budgets::new();
    missing
        .set_budget(Budget::storage(10).directory("/nonexistent/perfkit"))
        .unwrap();
    missing.sample_now();
    assert!(missing.health().budgets[0].error.is_some());
}

#[test]
fn bandwidth_rate_window_levels() {
    let clock = ManualClock::new();
    let b = budgets(&clock);
    let up = b
        .set_budget(Budget::bandwidth("uploads", 1000.0).window(Duration::from_secs(1)))
        .unwrap();
    assert_eq!(b.resource("uploads"), Some(up));
    b.record_usage(up, 500);
    assert_eq!(b.check(up), Decision::Allow);
    clock.advance(Duration::from_millis(300));
    b.record_usage(up, 350);
    assert_eq!(b.check(up), Decision::Warn);
    clock.advance(Duration::from_millis(300));
    b.record_usage(up, 200);
    assert!(matches!(b.check(up), Decision::Reject { .. }));
    // Nothing sent for a while: the sampler sees the window empty out.
    clock.advance(Duration::from_secs(2));
    b.sample_now();
    assert_eq!(b.check(up), Decision::Allow);
    assert_eq!(b.usage()[0].kind, ResourceKind::Bandwidth);
}

#[test]
fn acquire_paces_to_within_one_percent_over_a_simulated_minute() {
    let clock = ManualClock::new();
    let b = budgets(&clock);
    let rate = 2_000_000.0;
    let ch = b
        .set_budget(Budget::bandwidth("egress", rate).burst(64 * 1024))
        .unwrap();
    let start = clock.elapsed();
    let mut sent = 0u64;
    while clock.elapsed() - start < Duration::from_secs(60) {
        let wait = b.try_acquire(ch, 32 * 1024).unwrap();
        clock.advance(wait);
        sent += 32 * 1024;
    }
    let achieved = sent as f64 / (clock.elapsed() - start).as_secs_f64();
    assert!(
        (achieved - rate).abs() / rate < 0.01,
        "achieved {achieved:.0} B/s, limit {rate:.0} B/s"
    );
}

#[test]
fn acquire_rejects_when_the_wait_would_be_too_long() {
    let clock = ManualClock::new();
    let b = budgets(&clock);
    let ch = b
        .set_budget(
            Budget::bandwidth("egress", 1000.0)
                .burst(100)
                .max_wait(Duration::from_millis(500)),
        )
        .unwrap();
    assert_eq!(b.try_acquire(ch, 100).unwrap(), Duration::ZERO);
    assert_eq!(b.try_acquire(ch, 400).unwrap(), Duration::from_millis(400));
    match b.try_acquire(ch, 200) {
        Err(BudgetError::Rejected {
            budget,
            retry_after,
        }) => {
            assert_eq!(budget, "egress");
            assert_eq!(retry_after, Duration::from_millis(100));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        b.try_acquire(Resource::MEMORY, 1),
        Err(BudgetError::NotConfigured(_))
    ));
    b.set_budget(Budget::memory(10)).unwrap();
    assert!(matches!(
        b.try_acquire(Resource::MEMORY, 1),
        Err(BudgetError::Invalid(_))
    ));
}

#[test]
fn recorded_cpu_per_wall_second() {
    let clock = ManualClock::new();
    let b = budgets(&clock);
    let cpu = b.set_budget(Budget::recorded_cpu(500.0)).unwrap();
    assert_eq!(cpu, Resource::CPU);
    for _ in 0..10 {
        clock.advance(Duration::from_millis(100));
        b.record_usage(cpu, 45); // 450 ms per second
    }
    assert_eq!(b.check(cpu).level(), Level::Throttle);
    clock.advance(Duration::from_secs(5));
    b.sample_now();
    assert_eq!(b.check(cpu), Decision::Allow);
}

#[test]
fn process_and_thread_cpu_are_sampled() {
    let b = Budgets::new();
    b.set_budget(Budget::cpu(1.0)).unwrap(); // 1 ms per second: any work exceeds it
    let clock = perfkit_budget::ThreadCpuClock::current().unwrap();
    let t = b
        .set_budget(Budget::thread_cpu("main-thread", 1.0, clock))
        .unwrap();
    b.sample_now();
    // Burn 20 ms of this thread's CPU (CPU time, not wall time: robust on a busy machine).
    let start = perfkit_budget::thread_cpu_time().unwrap();
    let mut x = 1u64;
    while perfkit_budget::thread_cpu_time().unwrap() - start < Duration::from_millis(20) {
        for _ in 0..1000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
    }
    std::hint::black_box(x);
    b.sample_now();
    assert!(matches!(b.check(Resource::CPU), Decision::Reject { .. }));
    assert!(matches!(b.check(t), Decision::Reject { .. }));
    assert!(perfkit_budget::thread_cpu_time().unwrap() > Duration::ZERO);
}

#[test]
fn configuration_errors_are_clear() {
    let b = Budgets::builder().capacity(1).build().unwrap();
    assert!(matches!(
        b.set_budget(Budget::memory(0)),
        Err(BudgetError::Invalid(_))
    ));
    let bad = Budget::memory(10).thresholds(Thresholds {
        warn: 2.0,
        throttle: 1.0,
        reject: 1.5,
        hysteresis: 0.1,
    });
    assert!(b.set_budget(bad).unwrap_err().to_string().contains("warn"));
    assert!(b.set_budget(Budget::bandwidth("memory", 10.0)).is_err());
    b.set_budget(Budget::bandwidth("a", 10.0)).unwrap();
    assert!(matches!(
        b.set_budget(Budget::bandwidth("b", 10.0)),
        Err(BudgetError::TooMany { capacity: 1 })
    ));
    // Replacing keeps the handle and the usage.
    let a = b.set_budget(Budget::bandwidth("a", 20.0)).unwrap();
    assert_eq!(b.resource("a"), Some(a));
    b.remove_budget(a);
    assert_eq!(b.resource("a"), None);
    assert_eq!(b.check(a), Decision::Allow);
}

#[test]
fn health_serializes_and_report_follows_the_levels() {
    let clock = ManualClock::new();
    let b = budgets(&clock);
    let mem = b.set_budget(Budget::memory(1 << 20)).unwrap();
    let up = b.set_budget(Budget::bandwidth("uploads", 1e6)).unwrap();
    b.record_usage(up, 1000);
    let r = b.report();
    assert_eq!(r.severity(), Severity::Ok);
    b.set_usage(mem, 1 << 20);
    let r = b.report();
    assert_eq!(r.name(), "budget");
    assert_eq!(r.severity(), Severity::Critical);
    assert!(r.summary().contains("memory reject"), "{}", r.summary());
    assert!(r.findings().iter().any(|f| f.kind == "budget_violation"));
    let c = perfkit_core::ComponentReport::from_report(&r);
    assert!(c.render_text().contains("memory_usage"));
    let json = serde_json::to_value(b.health()).unwrap();
    assert_eq!(json["level"], "reject");
    assert_eq!(json["budgets"][0]["name"], "memory");
    assert_eq!(json["budgets"][0]["unit"], "bytes");
    assert!(json["budgets"][0]["time_in_level_secs"].is_number());
    let d = serde_json::to_value(b.check(mem)).unwrap();
    assert_eq!(d["decision"], "reject");
}

#[test]
fn the_sampler_thread_starts_and_stops() {
    let b = Budgets::new();
    let source = ManualSource::new("m");
    source.set(990);
    b.set_budget(Budget::memory(1000).source(source)).unwrap();
    let sampler = b.start_sampler(Duration::from_millis(5)).unwrap();
    // The first sample happens as the thread starts; wait for it without a fixed sleep.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while b.check(Resource::MEMORY) == Decision::Allow && std::time::Instant::now() < deadline {
        std::thread::yield_now();
    }
    sampler.stop();
    assert!(matches!(
        b.check(Resource::MEMORY),
        Decision::Throttle { .. }
    ));
}

#[test]
fn storage_is_measured_incrementally_over_several_samples() {
    let clock = ManualClock::new();
    let b = budgets(&clock);
    let dir = tempfile::tempdir().unwrap();
    for d in 0..4 {
        let sub = dir.path().join(format!("part-{d}"));
        std::fs::create_dir(&sub).unwrap();
        for f in 0..10 {
            std::fs::write(sub.join(format!("{f}.log")), vec![0u8; 10]).unwrap();
        }
    }
    let disk = b
        .set_budget(Budget::storage(1000).directory(dir.path()).scan_batch(8))
        .unwrap();
    b.record_usage(disk, 100);
    let mut samples = 0;
    while b.usage()[0].usage != 400.0 {
        assert_eq!(
            b.usage()[0].usage,
            100.0,
            "a pass in progress changes nothing"
        );
        b.sample_now();
        samples += 1;
        assert!(samples < 50);
    }
    assert!(samples >= 3, "the walk took {samples} samples");
    assert!(b.health().budgets[0].error.is_none());
}

#[test]
fn replacing_a_budget_keeps_usage_and_level_and_applies_the_new_window() {
    let clock = ManualClock::new();
    let b = budgets(&clock);
    let ch = b.set_budget(Budget::bandwidth("up", 1000.0)).unwrap();
    b.record_usage(ch, 850);
    assert_eq!(b.check(ch), Decision::Warn);
    // Same window: the measured rate carries over, and the new limit applies at once.
    let again = b.set_budget(Budget::bandwidth("up", 2000.0)).unwrap();
    assert_eq!(again, ch);
    assert_eq!(b.check(ch).level(), Level::Allow);
    assert_eq!(b.usage()[0].limit, 2000.0);
    // A longer window starts measuring afresh over its own length.
    b.set_budget(Budget::bandwidth("up", 100.0).window(Duration::from_secs(4)))
        .unwrap();
    b.record_usage(ch, 400);
    assert_eq!(b.usage()[0].usage, 100.0);
    assert_eq!(b.check(ch).level(), Level::Reject);
    assert_eq!(b.health().budgets[0].transitions, 3);
}
