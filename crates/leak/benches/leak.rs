//! Costs of leak detection: a snapshot from the tracking allocator and from `/proc`, and
//! the analysis of 10,000 points.
//!
//! `cargo bench -p perfkit-leak`

use criterion::{Criterion, criterion_group, criterion_main};
use perfkit_alloc::{HeapSource, MemorySource, RssSource, TrackingAllocator};
use perfkit_leak::process::ProcessRssSource;
use perfkit_leak::{AnalysisConfig, LeakDetector, Sample, analyze};
use std::alloc::System;
use std::hint::black_box;
use std::sync::Arc;

#[global_allocator]
static GLOBAL: TrackingAllocator<System> = TrackingAllocator::new(System);

fn snapshots(c: &mut Criterion) {
    let mut g = c.benchmark_group("snapshot");
    let heap: Arc<dyn MemorySource> = Arc::new(HeapSource);
    let rss: Arc<dyn MemorySource> = Arc::new(RssSource::new());
    let process: Arc<dyn MemorySource> = Arc::new(ProcessRssSource::new(std::process::id()));
    g.bench_function("heap_read", |b| b.iter(|| black_box(heap.read())));
    for (name, source) in [
        ("heap", heap),
        ("proc_self_rss", rss),
        ("proc_pid_rss", process),
    ] {
        let detector = LeakDetector::builder(source).window(1024).build().unwrap();
        g.bench_function(format!("detector_{name}"), |b| {
            b.iter(|| black_box(detector.take_snapshot()))
        });
    }
    g.finish();
}

fn series(kind: &str, n: usize) -> Vec<Sample> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut noise = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % 2_000_000) as f64 - 1_000_000.0
    };
    (0..n)
        .map(|i| {
            let t = i as f64;
            let y = match kind {
                "linear" => 1e9 + 5_000.0 * t,
                "sawtooth" => 1e9 + 2_000.0 * t + (i % 500) as f64 * 200_000.0,
                "exponential" => 1e9 + 1e7 * ((t / 2_500.0).exp() - 1.0),
                _ => 1e9,
            };
            Sample::new(t, (y + noise()) as u64)
        })
        .collect()
}

fn analysis(c: &mut Criterion) {
    let mut g = c.benchmark_group("analyze_10k");
    let config = AnalysisConfig::default();
    for kind in ["linear", "exponential", "sawtooth", "flat"] {
        let s = series(kind, 10_000);
        let want = if kind == "flat" { "none" } else { kind };
        assert_eq!(analyze(&s, &config, None).pattern.as_str(), want, "{kind}");
        g.bench_function(kind, |b| b.iter(|| black_box(analyze(&s, &config, None))));
    }
    g.finish();
}

criterion_group!(benches, snapshots, analysis);
criterion_main!(benches);
