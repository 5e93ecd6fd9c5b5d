//! perfkit-cache's default policy (adaptive W-TinyLFU, through its simulator, whose hit
//! counts equal `MemoryCache`'s by test) against the caches a user would pick instead:
//! moka 0.12 and quick_cache, and LRU, on the synthetic workloads of
//! `crates/cache/tests/adaptive.rs` and the shared traces of `../shared/data/README.md`.
//!
//! The bar, "within 0.5 points of the best of them everywhere", is checked as it
//! stands. The closest cases are a skewed working set twice the cache that shifts every 30k
//! requests (-0.40 against LRU: the window widens about 1000 requests after each shift) and
//! multi3 (-0.34 against quick_cache).
//!
//! moka is run single-threaded with its pending maintenance applied after every insert,
//! so that it decides as it would at rest, and counted as the median of three runs (it
//! seeds its hasher randomly, and one run in about ten on gli is 9 points above the
//! others); quick_cache through its unsync cache.

#![cfg(feature = "cache")]

use perfkit_cache::{PolicyKind, TraceFormat, read_trace, simulate, synth};

#[path = "../src/peer_hits.rs"]
mod peer_hits;

fn moka_pct(keys: &[u64], cap: u64) -> f64 {
    100.0 * peer_hits::moka_hits(keys, cap) as f64 / keys.len() as f64
}

fn quick_pct(keys: &[u64], cap: u64) -> f64 {
    100.0 * peer_hits::quick_hits(keys, cap) as f64 / keys.len() as f64
}

fn pct(kind: PolicyKind, cap: u64, keys: &[u64]) -> f64 {
    100.0 * simulate(kind, cap, keys, None).unwrap().hit_ratio()
}

/// Checks one workload; `allowed` is how far under the best peer the policy may be.
fn check(name: &str, keys: &[u64], cap: u64, allowed: f64) {
    let ours = pct(PolicyKind::WTinyLfu, cap, keys);
    let lru = pct(PolicyKind::Lru, cap, keys);
    let moka = moka_pct(keys, cap);
    let quick = quick_pct(keys, cap);
    let best = lru.max(moka).max(quick);
    eprintln!(
        "{name} @ {cap}: perfkit {ours:.2} lru {lru:.2} moka {moka:.2} quick_cache {quick:.2} ({:+.2})",
        ours - best
    );
    assert!(
        ours >= best - allowed,
        "{name} @ {cap}: perfkit {ours:.2}, best peer {best:.2} (allowed {allowed})"
    );
}

const N: usize = 300_000;

#[test]
fn synthetic_workloads() {
    check("zipf 0.9", &synth::zipf(N, 100_000, 0.9, 1), 1000, 0.5);
    check("zipf 1.1", &synth::zipf(N, 100_000, 1.1, 2), 1000, 0.5);
    let scans = synth::zipf_with_scans(N, 100_000, 0.9, 20_000, 5_000, 3);
    check("zipf with scans", &scans, 1000, 0.5);
    check(
        "shift 800",
        &synth::shifting(N, 800, 0.5, 20_000, 4),
        1000,
        0.5,
    );
    check(
        "shift 950",
        &synth::shifting(N, 950, 0.0, 10_000, 6),
        1000,
        0.5,
    );
    check("loop 1500", &synth::looping(N, 1500), 1000, 0.5);
    check(
        "shift 2000",
        &synth::shifting(N, 2000, 0.8, 30_000, 5),
        1000,
        0.5,
    );
}

#[test]
fn shared_traces() {
    for (file, cap) in [
        ("lirs/gli.trace.gz", 1000u64),
        ("lirs/multi3.trace.gz", 1000),
        ("arc/OLTP.lis.zst", 1000),
        ("cache2k/web12.trace.xz", 1000),
        ("misc/scarab-recs.trace.xz", 10_000),
    ] {
        let Some(path) = perfkit_testkit::data_file(&format!("cache-traces/{file}")) else {
            println!("skipped: the shared data is not here");
            return;
        };
        let keys = read_trace(&path, TraceFormat::Auto).unwrap().keys;
        check(file, &keys, cap, 0.5);
    }
}
