//! `perfkit profile` and the demo's profiler section: exit codes, JSON documents, files.
#![cfg(feature = "profiler")]

mod common;

use common::perfkit;
use perfkit_profiler::{Profile, SpanRecord, Trace};
use std::path::Path;

/// A profile of `n` checkout traces whose `fetch` span takes `fetch_ms` plus jitter.
fn write_profile(path: &Path, seed: u64, fetch_ms: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let traces = (0..60u64)
        .map(|i| {
            let ms = 1_000_000;
            let fetch = fetch_ms * ms + rng.u64(0..ms);
            let query = 7 * ms + rng.u64(0..ms / 2);
            let mut spans = vec![SpanRecord {
                name: "checkout".into(),
                parent: None,
                span_id: 1,
                start_ns: 0,
                duration_ns: fetch + 8 * query + ms,
                busy_ns: ms,
                fields: vec![("id".into(), i.to_string())],
            }];
            spans.push(SpanRecord {
                name: "fetch".into(),
                parent: Some(0),
                span_id: 2,
                start_ns: 0,
                duration_ns: fetch,
                busy_ns: 1000,
                fields: vec![],
            });
            for k in 0..8u64 {
                spans.push(SpanRecord {
                    name: "db.query".into(),
                    parent: Some(0),
                    span_id: 3 + k,
                    start_ns: fetch + k * query,
                    duration_ns: query,
                    busy_ns: 1000,
                    fields: vec![("item".into(), k.to_string())],
                });
            }
            Trace {
                trace_id: format!("{i:032x}"),
                remote_parent_span_id: None,
                start_unix_ns: i,
                spans,
            }
        })
        .collect();
    Profile::from_traces(1.0, traces).save(path).unwrap();
}

#[test]
fn diff_is_clean_for_the_same_behaviour_and_exits_1_on_a_regression() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, slow) = (
        dir.path().join("a.json"),
        dir.path().join("b.json"),
        dir.path().join("slow.json"),
    );
    write_profile(&a, 1, 20);
    write_profile(&b, 2, 20);
    write_profile(&slow, 3, 30);

    let out = perfkit()
        .args(["profile", "diff"])
        .arg(&a)
        .arg(&b)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let svg = dir.path().join("diff.svg");
    let out = perfkit()
        .args(["profile", "diff", "--json"])
        .arg(&a)
        .arg(&slow)
        .arg("--flamegraph")
        .arg(&svg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["regressions"][0]["path"], "checkout;fetch");
    assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));
}

#[test]
fn suggest_flamegraph_stats_and_export() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.json");
    write_profile(&p, 1, 20);

    let out = perfkit()
        .args(["profile", "suggest", "--json"])
        .arg(&p)
        .output()
        .unwrap();
    assert!(out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let kinds: Vec<&str> = doc["suggestions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"batching"), "{kinds:?}");

    let svg = dir.path().join("f.svg");
    let out = perfkit()
        .args(["profile", "flamegraph"])
        .arg(&p)
        .arg("-o")
        .arg(&svg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::read_to_string(&svg).unwrap().contains("checkout"));

    let out = perfkit()
        .args(["profile", "stats", "--json"])
        .arg(&p)
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["traces_sampled"], 60);

    for format in ["folded", "speedscope", "chrome"] {
        let out = perfkit()
            .args(["profile", "export", "--format", format])
            .arg(&p)
            .output()
            .unwrap();
        assert!(out.status.success());
        assert!(!out.stdout.is_empty());
    }
}

#[test]
fn bad_profiles_exit_2_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"format\": \"something-else\"}").unwrap();
    let out = perfkit()
        .args(["profile", "suggest"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.json") && err.contains("not a perfkit profile"),
        "{err}"
    );
    let out = perfkit()
        .args(["profile", "stats"])
        .arg(dir.path().join("missing.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn demo_reports_the_profiler_and_saves_a_profile() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("demo.json");
    let out = perfkit()
        .args(["demo", "--duration", "2500ms", "--json", "--save-profile"])
        .arg(&p)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let prof = common::component(&doc, "profiler");
    let kinds: Vec<&str> = prof["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    for kind in ["batching", "caching", "parallelization"] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    assert!(
        !prof["details"]["summary"]["spans"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let saved = Profile::load(&p).unwrap();
    assert!(saved.traces_sampled > 10);
}
