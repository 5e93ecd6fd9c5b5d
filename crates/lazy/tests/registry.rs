//! `LazyRegistry`: every preload strategy, metrics, unloading; paused tokio time and a
//! manual clock, no real sleeps.

use perfkit_core::{ManualClock, Report};
use perfkit_lazy::{
    IdleDetector, Lazy, LazyRegistry, LoadState, LoadTrigger, Preload, RegistryError,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// A resource of `bytes` bytes taking 100 ms to load, counting its loads.
fn resource(name: &str, bytes: usize) -> (Lazy<Vec<u8>>, Arc<AtomicU32>) {
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    let lazy = Lazy::builder(name)
        .weigher(|v: &Vec<u8>| v.len() as u64)
        .build(move || {
            c.fetch_add(1, Ordering::SeqCst);
            async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                Ok::<_, std::io::Error>(vec![7u8; bytes])
            }
        });
    (lazy, calls)
}

/// Lets spawned loads finish (paused time auto-advances while the runtime is idle).
async fn settle() {
    tokio::time::sleep(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn eager_loads_at_registration() {
    let registry = LazyRegistry::new();
    let (lazy, calls) = resource("config", 10);
    registry.register("config", Preload::Eager, lazy).unwrap();
    assert!(matches!(
        registry.loading_state("config"),
        Some(LoadState::Loading { .. })
    ));
    settle().await;
    assert!(registry.is_preloaded("config"));
    assert_eq!(registry.get::<Vec<u8>>("config").await.unwrap().len(), 10);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn delay_loads_after_the_duration() {
    let registry = LazyRegistry::new();
    let (lazy, _) = resource("plugins", 1);
    registry
        .register("plugins", Preload::Delay(Duration::from_secs(5)), lazy)
        .unwrap();
    tokio::time::sleep(Duration::from_millis(4900)).await;
    assert_eq!(
        registry.loading_state("plugins"),
        Some(LoadState::NotLoaded)
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(matches!(
        registry.loading_state("plugins"),
        Some(LoadState::Loading { .. })
    ));
    settle().await;
    assert!(registry.is_preloaded("plugins"));
}

#[tokio::test(start_paused = true)]
async fn signals_load_only_the_resources_waiting_for_them() {
    let registry = LazyRegistry::new();
    let (editor, _) = resource("editor", 1);
    let (charts, _) = resource("charts", 1);
    registry
        .register("editor", Preload::on_signal("interaction"), editor)
        .unwrap();
    registry
        .register("charts", Preload::on_signal("visible"), charts)
        .unwrap();
    assert_eq!(registry.signal("scroll"), 0);
    assert_eq!(registry.signal("visible"), 1);
    assert_eq!(registry.signal("visible"), 0, "already loading");
    settle().await;
    assert!(registry.is_preloaded("charts"));
    assert!(!registry.is_loaded("editor"));
    assert_eq!(registry.preload_on(&Preload::on_signal("interaction")), 1);
    settle().await;
    assert!(registry.is_preloaded("editor"));
}

#[tokio::test(start_paused = true)]
async fn on_first_use_loads_on_the_first_get_only() {
    let registry = LazyRegistry::new();
    let (lazy, calls) = resource("model", 3);
    registry
        .register("model", Preload::OnFirstUse, lazy)
        .unwrap();
    assert_eq!(registry.tick(), 0);
    assert_eq!(registry.signal("visible"), 0);
    assert!(!registry.is_loaded("model"));
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    registry.get::<Vec<u8>>("model").await.unwrap();
    assert!(registry.is_loaded("model"));
    assert!(!registry.is_preloaded("model"));
    assert!(matches!(
        registry.loading_state("model"),
        Some(LoadState::Loaded {
            trigger: LoadTrigger::FirstUse,
            ..
        })
    ));
}

#[tokio::test(start_paused = true)]
async fn idle_preloads_when_no_request_is_in_flight_for_a_while_and_cpu_is_low() {
    let clock = ManualClock::new();
    let cpu = Arc::new(AtomicU32::new(90));
    let probe_cpu = cpu.clone();
    let idle = IdleDetector::builder(Duration::from_secs(10))
        .clock(clock.shared())
        .cpu_probe(
            move || Some(f64::from(probe_cpu.load(Ordering::SeqCst)) / 100.0),
            0.5,
        )
        .build();
    let registry = LazyRegistry::builder().idle_detector(idle.clone()).build();
    let (lazy, calls) = resource("index", 5);
    registry.register("index", Preload::Idle, lazy).unwrap();

    let request = idle.begin();
    clock.advance(Duration::from_secs(30));
    assert_eq!(registry.tick(), 0, "a request is in flight");
    drop(request);
    clock.advance(Duration::from_secs(9));
    assert_eq!(registry.tick(), 0, "idle for 9 s only");
    idle.record_activity();
    clock.advance(Duration::from_secs(10));
    assert_eq!(registry.tick(), 0, "idle long enough, but the CPU is busy");
    cpu.store(20, Ordering::SeqCst);
    assert_eq!(registry.tick(), 1);
    settle().await;
    assert!(registry.is_preloaded("index"));
    assert_eq!(registry.tick(), 0);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn the_background_task_ticks_and_stops() {
    let idle = IdleDetector::new(Duration::from_secs(2));
    let registry = LazyRegistry::builder()
        .idle_detector(idle.clone())
        .tick_every(Duration::from_millis(500))
        .build();
    let (lazy, _) = resource("index", 5);
    registry.register("index", Preload::Idle, lazy).unwrap();
    registry.start().unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!registry.is_loaded("index"));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    settle().await;
    assert!(registry.is_preloaded("index"));
    registry.stop();
}

#[tokio::test(start_paused = true)]
async fn without_an_idle_detector_idle_resources_wait_for_preload_on() {
    let registry = LazyRegistry::new();
    let (lazy, _) = resource("index", 5);
    registry.register("index", Preload::Idle, lazy).unwrap();
    assert_eq!(registry.tick(), 0);
    assert_eq!(registry.preload_on(&Preload::Idle), 1);
    settle().await;
    assert!(registry.is_preloaded("index"));
}

#[tokio::test(start_paused = true)]
async fn unused_resources_are_unloaded_and_reload_on_next_use() {
    let clock = ManualClock::new();
    let registry = LazyRegistry::builder()
        .clock(clock.shared())
        .unload_after(Duration::from_secs(60))
        .build();
    let (a, a_calls) = resource("a", 100);
    let (b, _) = resource("b", 200);
    registry.register("a", Preload::OnFirstUse, a).unwrap();
    registry.register("b", Preload::OnFirstUse, b).unwrap();
    let held = registry.get::<Vec<u8>>("a").await.unwrap();
    registry.get::<Vec<u8>>("b").await.unwrap();
    clock.advance(Duration::from_secs(50));
    registry.get::<Vec<u8>>("b").await.unwrap();
    clock.advance(Duration::from_secs(10));
    registry.tick();
    assert!(!registry.is_loaded("a"), "unused for 60 s");
    assert!(registry.is_loaded("b"), "used 10 s ago");
    // A handle taken before the unload stays valid.
    assert_eq!(held.len(), 100);
    assert_eq!(registry.get::<Vec<u8>>("a").await.unwrap().len(), 100);
    assert_eq!(a_calls.load(Ordering::SeqCst), 2);
    let m = registry.metrics("a").unwrap();
    assert_eq!((m.unloads, m.loads_succeeded), (1, 2));
    assert_eq!(
        registry.unload_unused(Duration::from_secs(3600)),
        Vec::<String>::new()
    );
}

#[tokio::test(start_paused = true)]
async fn unload_lru_frees_least_recently_used_first_for_a_budget_callback() {
    let clock = ManualClock::new();
    let registry = LazyRegistry::builder().clock(clock.shared()).build();
    for (name, bytes) in [("small", 100), ("large", 1000), ("medium", 500)] {
        let (lazy, _) = resource(name, bytes);
        registry.register(name, Preload::OnFirstUse, lazy).unwrap();
    }
    for name in ["large", "small", "medium"] {
        registry.get::<Vec<u8>>(name).await.unwrap();
        clock.advance(Duration::from_secs(1));
    }
    let out = registry.unload_lru(1050);
    assert_eq!(out.unloaded, ["large", "small"]);
    assert_eq!(out.freed_bytes, 1100);
    // The hook a memory budget's cleanup callback calls: bytes wanted in, bytes freed out.
    let hook = registry.unload_hook();
    assert_eq!(hook(0), 500);
    assert_eq!(hook(1), 0, "nothing left to unload");
    assert_eq!(registry.unload_lru(0).unloaded, Vec::<String>::new());
    assert!(!registry.unload("small").unwrap());
}

#[tokio::test(start_paused = true)]
async fn errors_name_the_resource() {
    let registry = LazyRegistry::new();
    let (lazy, _) = resource("a", 1);
    registry
        .register("a", Preload::OnFirstUse, lazy.clone())
        .unwrap();
    assert!(matches!(
        registry.register("a", Preload::OnFirstUse, lazy),
        Err(RegistryError::Duplicate(n)) if n == "a"
    ));
    assert!(matches!(
        registry.get::<String>("a").await,
        Err(RegistryError::WrongType { .. })
    ));
    let err = registry.get::<Vec<u8>>("nope").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "no lazy resource named `nope` is registered"
    );
    let failing = Lazy::builder("f")
        .retry(perfkit_lazy::RetryPolicy::no_retry())
        .build(|| async { Err::<u8, _>("no such file") });
    registry
        .register("f", Preload::OnFirstUse, failing)
        .unwrap();
    let err = registry.get::<u8>("f").await.unwrap_err();
    assert!(matches!(err, RegistryError::Load(_)), "{err:?}");
    let report = registry.report();
    assert_eq!(report.severity(), perfkit_core::Severity::Warning);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["resources"][1]["state"]["state"], "failed");
    assert_eq!(json["resources"][1]["state"]["attempts"], 1);
}

#[test]
fn eager_and_delay_need_a_runtime() {
    let registry = LazyRegistry::new();
    let (lazy, _) = resource("a", 1);
    assert!(matches!(
        registry.register("a", Preload::Eager, lazy),
        Err(RegistryError::NoRuntime(_))
    ));
    assert!(registry.start().is_err());
}

#[tokio::test(start_paused = true)]
async fn the_report_has_states_load_times_and_sizes() {
    let registry = LazyRegistry::new();
    let (a, _) = resource("model", 4096);
    let (b, _) = resource("index", 10);
    registry.register("model", Preload::OnFirstUse, a).unwrap();
    registry.register("index", Preload::Idle, b).unwrap();
    registry.get::<Vec<u8>>("model").await.unwrap();
    let report = registry.report().to_component_report();
    assert_eq!(report.name, "lazy");
    assert_eq!(report.summary, "1 of 2 resources loaded");
    let fig = |n: &str| report.figures.iter().find(|f| f.name == n).unwrap().value;
    assert_eq!(fig("loaded_bytes"), 4096.0);
    assert!((fig("model_load_time") - 0.1).abs() < 0.003);
    let text = report.render_text();
    assert!(
        text.contains("model: loaded on first use in 100.0"),
        "{text}"
    );
    assert!(
        text.contains("index: not loaded (strategy: idle)"),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn events_report_retries_loads_failures_and_unloads() {
    use perfkit_lazy::{LazyEvent, RetryPolicy};
    use std::sync::Mutex;

    let registry = LazyRegistry::new();
    let seen: Arc<Mutex<Vec<LazyEvent>>> = Arc::default();
    let s = seen.clone();
    registry.on_event(move |e| s.lock().unwrap().push(e.clone()));
    registry.on_event(|_| panic!("a broken callback is isolated"));

    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    let flaky = Lazy::builder("flaky")
        .retry(RetryPolicy {
            jitter: false,
            ..RetryPolicy::default()
        })
        .weigher(|v: &Vec<u8>| v.len() as u64)
        .build(move || {
            let n = c.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    Err("busy")
                } else {
                    Ok(vec![0u8; 64])
                }
            }
        });
    registry
        .register("flaky", Preload::OnFirstUse, flaky)
        .unwrap();
    let broken = Lazy::builder("broken")
        .retry(RetryPolicy::no_retry())
        .build(|| async { Err::<u8, _>("gone") });
    registry
        .register("broken", Preload::OnFirstUse, broken)
        .unwrap();

    registry.get::<Vec<u8>>("flaky").await.unwrap();
    assert!(registry.get::<u8>("broken").await.is_err());
    assert!(registry.unload("flaky").unwrap());

    let events = seen.lock().unwrap().clone();
    assert_eq!(events.len(), 4, "{events:?}");
    assert!(
        matches!(&events[0], LazyEvent::Retrying { name, attempt: 1, error, .. } if name == "flaky" && error == "busy")
    );
    assert!(
        matches!(&events[1], LazyEvent::Loaded { name, attempts: 2, size_bytes: Some(64), .. } if name == "flaky")
    );
    assert!(
        matches!(&events[2], LazyEvent::Failed { name, error } if name == "broken" && error.ends_with("gone"))
    );
    assert!(matches!(&events[3], LazyEvent::Unloaded { name, size_bytes: 64 } if name == "flaky"));
    let json = serde_json::to_value(&events[1]).unwrap();
    assert_eq!(json["event"], "loaded");
}

#[test]
fn the_process_cpu_probe_reads_proc_on_linux() {
    use perfkit_lazy::{CpuProbe, ProcessCpuProbe};
    let probe = ProcessCpuProbe::new();
    assert_eq!(probe.cpu_load(), None, "the first reading has no baseline");
    let mut x = 0u64;
    for i in 0..2_000_000u64 {
        x = x.wrapping_mul(31).wrapping_add(i);
    }
    std::hint::black_box(x);
    let load = probe.cpu_load();
    if cfg!(target_os = "linux") {
        let load = load.expect("a reading from /proc/self/stat");
        assert!((0.0..=1.0).contains(&load), "{load}");
    }
}
