//! `perfkit leak analyze`: the JSON contract, human output, limits, malformed input.

#![cfg(feature = "leak")]

mod common;

use common::perfkit;
use std::io::Write as _;
use tempfile::NamedTempFile;

fn file(suffix: &str, text: &str) -> NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(suffix).tempfile().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

/// A linear leak of 10 kB/s on 100 MB with ups and downs, as CSV (`bytes` first, an extra
/// column).
fn linear_csv() -> String {
    let mut s = String::from("bytes,t,note\n");
    for i in 0..200u64 {
        let wobble = [0i64, 25_000, -15_000, 8_000][(i % 4) as usize];
        let y = (100_000_000 + 10_000 * i) as i64 + wobble;
        s.push_str(&format!("{y},{}.0,x\n", i));
    }
    s
}

fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON document")
}

#[test]
fn json_has_exactly_the_contract_keys_and_types() {
    let f = file(".csv", &linear_csv());
    let out = perfkit()
        .args(["leak", "analyze"])
        .arg(f.path())
        .args(["--limit", "200MB", "--json"])
        .output()
        .unwrap();
    let v = json(&out);
    assert_eq!(v["pattern"], "linear");
    assert_eq!(v["leak"], true);
    let c = v["confidence"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&c));
    let g = v["growth_bytes_per_sec"].as_f64().unwrap();
    assert!((g - 10_000.0).abs() < 500.0, "{g}");
    // (200 MB - 101.99 MB) / 10 kB/s = 9,801 s
    let eta = v["oom_eta_secs"].as_f64().unwrap();
    assert!((eta - 9_801.0).abs() < 0.1 * 9_801.0, "{eta}");
    assert!(["ok", "info", "warning", "critical"].contains(&v["severity"].as_str().unwrap()));
    assert_eq!(v["points"], 200);
    assert_eq!(v["limit_bytes"], 200_000_000);
    assert_eq!(v["limit_source"], "explicit");
}

#[test]
fn without_a_limit_the_machine_memory_is_used_and_said() {
    let f = file(".csv", &linear_csv());
    let out = perfkit()
        .args(["leak", "analyze"])
        .arg(f.path())
        .arg("--json")
        .output()
        .unwrap();
    let v = json(&out);
    assert_eq!(v["limit_source"], "system");
    assert!(v["limit_bytes"].as_u64().unwrap() > 1 << 20);
}

#[test]
fn flat_series_as_json_lines_is_no_leak_with_null_eta() {
    let mut s = String::new();
    for i in 0..100u64 {
        s.push_str(&format!(
            "{{\"t\": {}, \"bytes\": {}}}\n",
            i * 5,
            50_000_000 + (i * 7919) % 100_000
        ));
    }
    let f = file(".jsonl", &s);
    let out = perfkit()
        .args(["leak", "analyze"])
        .arg(f.path())
        .arg("--json")
        .output()
        .unwrap();
    let v = json(&out);
    assert_eq!(v["pattern"], "none");
    assert_eq!(v["leak"], false);
    assert!(v["oom_eta_secs"].is_null());
    assert_eq!(v["severity"], "ok");
}

#[test]
fn human_output_has_verdict_growth_oom_and_sparkline() {
    let f = file(".csv", &linear_csv());
    let out = perfkit()
        .args(["leak", "analyze"])
        .arg(f.path())
        .args(["--limit", "1GiB"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "verdict: linear leak",
        "growth:",
        "OOM:",
        "explicit limit of 1.00 GiB",
        "series ",
        "trend  ",
        "evidence:",
    ] {
        assert!(text.contains(want), "{want} missing in\n{text}");
    }
    assert!(text.contains('▁') && text.contains('█'), "{text}");
}

#[test]
fn malformed_files_exit_2_with_the_line() {
    let cases = [
        ("0,100\n1,200\n", "no header"),
        ("t,bytes\n0,100\n1,lots\n", "line 3"),
        ("t,bytes\n0,100\n", "only one sample"),
        ("t,bytes\n0,100\n1\n", "line 3"),
    ];
    for (text, want) in cases {
        let f = file(".csv", text);
        let out = perfkit()
            .args(["leak", "analyze"])
            .arg(f.path())
            .arg("--json")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{text:?}");
        assert!(out.stdout.is_empty(), "nothing on stdout for an error");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(want) && err.contains("error:"),
            "{text:?}: {err}"
        );
    }
    let out = perfkit()
        .args(["leak", "analyze", "/no/such/file.csv"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = perfkit()
        .args(["leak", "analyze", "x.csv", "--limit", "lots"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn unsorted_times_are_repaired_and_the_repair_is_stated() {
    let mut rows: Vec<String> = linear_csv().lines().skip(1).map(str::to_owned).collect();
    rows.swap(20, 60);
    let text = format!("bytes,t,note\n{}\n", rows.join("\n"));
    let f = file(".csv", &text);
    let out = perfkit()
        .args(["leak", "analyze"])
        .arg(f.path())
        .arg("--json")
        .output()
        .unwrap();
    let v = json(&out);
    assert_eq!(v["pattern"], "linear");
    let notes = v["notes"].to_string();
    assert!(
        notes.contains("line 23") && notes.contains("sorted"),
        "{notes}"
    );
}
