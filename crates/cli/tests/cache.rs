//! `perfkit cache simulate|tune`: the `--json` contract, the SVG plot, and exit code 2
//! with a clear message on bad input. Real traces when ../shared/data is present.
#![cfg(feature = "cache")]

mod common;

use common::perfkit;
use std::path::PathBuf;

fn json(out: &[u8]) -> serde_json::Value {
    serde_json::from_slice(out).expect("stdout is one JSON document")
}

/// A small plain trace: a hot set and a scan.
fn synthetic(dir: &tempfile::TempDir) -> PathBuf {
    let mut text = String::new();
    for i in 0..3000u32 {
        let k = if i % 3 == 0 { 10_000 + i } else { i % 50 };
        text.push_str(&format!("key{k}\n"));
    }
    let p = dir.path().join("synthetic.txt");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn simulate_json_contract_and_plot() {
    let dir = tempfile::tempdir().unwrap();
    let trace = synthetic(&dir);
    let plot = dir.path().join("out.svg");
    let out = perfkit()
        .args([
            "cache",
            "simulate",
            "--format",
            "plain",
            "--capacity",
            "20,60",
        ])
        .args(["--policy", "lru,wtinylfu,opt", "--json", "--plot"])
        .arg(&plot)
        .arg("--trace")
        .arg(&trace)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json(&out.stdout);
    assert_eq!(doc["trace"], "synthetic");
    assert_eq!(doc["requests"], 3000);
    let results = doc["results"].as_array().unwrap();
    assert_eq!(results.len(), 6);
    for r in results {
        let hits = r["hits"].as_u64().unwrap();
        let misses = r["misses"].as_u64().unwrap();
        assert_eq!(hits + misses, 3000);
        let ratio = r["hit_ratio"].as_f64().unwrap();
        assert!((ratio - hits as f64 / 3000.0).abs() < 1e-12);
        assert!(r["policy"].is_string() && r["capacity"].is_u64());
    }
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("wtinylfu"));
}

#[test]
fn simulate_text_and_tune_json() {
    let dir = tempfile::tempdir().unwrap();
    let trace = synthetic(&dir);
    let out = perfkit()
        .args(["cache", "simulate", "--capacity", "40", "--trace"])
        .arg(&trace)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("wtinylfu") && text.contains("opt"), "{text}");

    let out = perfkit()
        .args(["cache", "tune", "--capacity", "40", "--json", "--trace"])
        .arg(&trace)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json(&out.stdout);
    assert_eq!(doc["capacity"], 40);
    assert_eq!(doc["sample_rate"], 1.0);
    assert!(doc["recommended"].is_string());
    assert!(!doc["curve"].as_array().unwrap().is_empty());
}

#[test]
fn bad_input_exits_2_with_the_position() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.trace");
    std::fs::write(&bad, "1\n2\nthree\n").unwrap();
    let out = perfkit()
        .args([
            "cache",
            "simulate",
            "--format",
            "lirs",
            "--capacity",
            "10",
            "--trace",
        ])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.trace:3"), "{err}");

    let out = perfkit()
        .args([
            "cache",
            "simulate",
            "--capacity",
            "10",
            "--policy",
            "nope",
            "--trace",
        ])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown policy"));

    let truncated = dir.path().join("t.bin");
    std::fs::write(&truncated, [0u8, 0, 0, 1, 0, 0]).unwrap();
    let out = perfkit()
        .args([
            "cache",
            "tune",
            "--format",
            "cache2k",
            "--capacity",
            "10",
            "--trace",
        ])
        .arg(&truncated)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("byte 4"));
}

#[test]
fn real_trace_matches_the_data_readme() {
    let Some(gli) = perfkit_testkit::data_file("cache-traces/lirs/gli.trace.gz") else {
        return;
    };
    let out = perfkit()
        .args([
            "cache",
            "simulate",
            "--capacity",
            "1000",
            "--policy",
            "lru,opt",
            "--json",
        ])
        .arg("--trace")
        .arg(&gli)
        .output()
        .unwrap();
    assert!(out.status.success());
    let doc = json(&out.stdout);
    assert_eq!(doc["requests"], 6015);
    let r = doc["results"].as_array().unwrap();
    let pct = |i: usize| 100.0 * r[i]["hit_ratio"].as_f64().unwrap();
    assert!((pct(0) - 11.2).abs() < 0.06, "lru {}", pct(0));
    assert!((pct(1) - 53.2).abs() < 0.06, "opt {}", pct(1));
}
