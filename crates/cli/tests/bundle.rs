//! `perfkit bundle analyze|check|diff|splitchunks`: the CLI contract (one JSON document on
//! stdout, exit codes 0/1/2), on small builds written here and on the real medium build.
#![cfg(feature = "bundle")]

mod common;

use common::perfkit;
use std::path::Path;

/// A directory with one bundle and its external map (two sources).
fn write_dir(dir: &Path, extra: usize) {
    let code = format!("{}{}", "a".repeat(100), "b".repeat(200 + extra));
    std::fs::write(
        dir.join("app.js"),
        format!("{code}\n//# sourceMappingURL=app.js.map\n"),
    )
    .unwrap();
    // "AAAA" = column 0, source 0; "oGCAA" = column +100, source +1.
    let map = r#"{"version":3,"sources":["src/app.js","node_modules/lib/index.js"],"mappings":"AAAA,oGCAA"}"#;
    std::fs::write(dir.join("app.js.map"), map).unwrap();
}

fn json_of(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON document")
}

#[test]
fn analyze_json_has_the_contract_fields() {
    let dir = tempfile::tempdir().unwrap();
    write_dir(dir.path(), 0);
    let out = perfkit()
        .args(["bundle", "analyze", "--json"])
        .arg(dir.path())
        .output()
        .unwrap();
    let v = json_of(&out);
    for key in [
        "assets",
        "chunks",
        "modules",
        "sources",
        "duplicates",
        "findings",
    ] {
        assert!(v.get(key).is_some(), "{key}");
    }
    assert_eq!(v["assets"][0]["raw"], 300 + 1 + 32);
    assert!(v["assets"][0]["gzip"].as_u64().unwrap() > 0);
    assert!(v["assets"][0].get("brotli").is_none());
    assert_eq!(v["sources"][0]["files"]["src/app.js"], 100);
    assert_eq!(v["sources"][0]["files"]["node_modules/lib/index.js"], 200);
    let lib = v["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["package"] == "lib")
        .unwrap();
    assert_eq!(lib["output_size"], 200);

    let out = perfkit()
        .args(["bundle", "analyze", "--brotli", "--json"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(json_of(&out)["assets"][0]["brotli"].as_u64().unwrap() > 0);
}

#[test]
fn check_exits_1_with_a_table_when_a_budget_is_exceeded() {
    let dir = tempfile::tempdir().unwrap();
    write_dir(dir.path(), 0);
    let budget = dir.path().join("budget.json");
    std::fs::write(&budget, r#"[{"path":"*.js","limit":"10 B","gzip":false}]"#).unwrap();
    let out = perfkit()
        .args(["bundle", "check"])
        .arg(dir.path())
        .arg("--budget")
        .arg(&budget)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("EXCEEDED") && table.contains("*.js"),
        "{table}"
    );

    std::fs::write(&budget, r#"[{"path":"*.js","limit":"10 kB"}]"#).unwrap();
    let out = perfkit()
        .args(["bundle", "check", "--json"])
        .arg(dir.path())
        .arg("--budget")
        .arg(&budget)
        .output()
        .unwrap();
    assert_eq!(json_of(&out)["passed"], true);

    std::fs::write(&budget, r#"[{"path":"*.js","limit":"ten"}]"#).unwrap();
    let out = perfkit()
        .args(["bundle", "check"])
        .arg(dir.path())
        .arg("--budget")
        .arg(&budget)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ten"));
}

#[test]
fn diff_and_splitchunks() {
    let old = tempfile::tempdir().unwrap();
    let new = tempfile::tempdir().unwrap();
    write_dir(old.path(), 0);
    write_dir(new.path(), 1000);
    let out = perfkit()
        .args(["bundle", "diff", "--json"])
        .arg(old.path())
        .arg(new.path())
        .output()
        .unwrap();
    let v = json_of(&out);
    assert_eq!(v["total"]["delta"], 1000);
    assert_eq!(v["packages"][0]["name"], "lib");
    // A saved analysis is accepted as either side.
    let saved = old.path().join("old.json");
    let out = perfkit()
        .args(["bundle", "analyze", "--json"])
        .arg(old.path())
        .output()
        .unwrap();
    std::fs::write(&saved, &out.stdout).unwrap();
    let out = perfkit()
        .args(["bundle", "diff"])
        .arg(&saved)
        .arg(new.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("total:"));

    let out = perfkit()
        .args(["bundle", "splitchunks"])
        .arg(new.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("splitChunks"));
}

#[test]
fn malformed_input_exits_2_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let stats = dir.path().join("stats.json");
    std::fs::write(&stats, r#"{"modules":[{"name":"x","size":"big"}]}"#).unwrap();
    let out = perfkit()
        .args(["bundle", "analyze"])
        .arg(&stats)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("stats.json") && err.contains("line 1"),
        "{err}"
    );
}

#[test]
fn medium_build_analyze_with_html() {
    let Some(archive) = perfkit_testkit::data_file("bundle/medium.tar.xz") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("tar")
        .arg("-xJf")
        .arg(&archive)
        .arg("-C")
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    let html = dir.path().join("report.html");
    let out = perfkit()
        .args(["bundle", "analyze", "--json", "--html"])
        .arg(&html)
        .arg(dir.path().join("stats.json"))
        .arg("--dist")
        .arg(dir.path().join("dist"))
        .output()
        .unwrap();
    let v = json_of(&out);
    assert_eq!(v["assets"].as_array().unwrap().len(), 8);
    let kinds: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["kind"].as_str())
        .collect();
    for kind in [
        "duplicate_package",
        "duplicate_module",
        "whole_library_import",
        "heavy_initial_module",
        "locale_pack",
    ] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    assert!(std::fs::metadata(&html).unwrap().len() > 10_000);
}
