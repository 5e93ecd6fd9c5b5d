//! `perfkit lazy hints`: the `--json` contract on the real Vite manifest, clear errors with
//! exit code 2 on bad input; and the demo's lazy section.
#![cfg(feature = "lazy")]

mod common;

use common::perfkit;
use std::path::PathBuf;

/// The real manifest, unpacked from `bundle/medium.tar.xz` into `dir`.
fn real_manifest(dir: &tempfile::TempDir) -> Option<PathBuf> {
    let archive = perfkit_testkit::data_file("bundle/medium.tar.xz")?;
    let status = std::process::Command::new("tar")
        .arg("-xJf")
        .arg(&archive)
        .arg("-C")
        .arg(dir.path())
        .arg("vite-dist/.vite/manifest.json")
        .status()
        .expect("running tar");
    assert!(status.success());
    Some(dir.path().join("vite-dist/.vite/manifest.json"))
}

#[test]
fn hints_json_for_the_real_vite_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let Some(manifest) = real_manifest(&dir) else {
        return;
    };
    let out = perfkit()
        .args([
            "lazy",
            "hints",
            "--entry",
            "src/index.js",
            "--base",
            "/static/",
            "--json",
        ])
        .arg("--manifest")
        .arg(&manifest)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "css",
            "entry",
            "html",
            "link_header",
            "modulepreload",
            "prefetch",
            "script"
        ]
    );
    // Printed in the issue's order.
    let text = String::from_utf8_lossy(&out.stdout);
    let pos = |k: &str| text.find(&format!("\"{k}\":")).unwrap();
    let order = [
        "entry",
        "script",
        "css",
        "modulepreload",
        "prefetch",
        "html",
        "link_header",
    ];
    assert!(order.windows(2).all(|w| pos(w[0]) < pos(w[1])), "{text}");
    assert_eq!(v["entry"], "src/index.js");
    assert_eq!(v["script"], "/static/assets/main-D7HsHoBh.js");
    assert_eq!(v["css"], serde_json::json!([]));
    assert_eq!(
        v["modulepreload"],
        serde_json::json!([
            "/static/assets/rolldown-runtime-COiEfhsA.js",
            "/static/assets/preload-helper-BnOMO_PX.js",
            "/static/assets/groupBy-CNW_E3Zc.js"
        ])
    );
    assert_eq!(
        v["prefetch"],
        serde_json::json!([
            "/static/assets/charts-BOrCyC12.js",
            "/static/assets/scene-RHqr5ofo.js",
            "/static/assets/locales-rJYXFVrD.js"
        ])
    );
    assert!(v["html"].as_str().unwrap().starts_with(
        "<script type=\"module\" crossorigin src=\"/static/assets/main-D7HsHoBh.js\"></script>\n"
    ));
    assert!(
        v["link_header"]
            .as_str()
            .unwrap()
            .starts_with("</static/assets/main-D7HsHoBh.js>; rel=modulepreload; crossorigin, ")
    );
}

#[test]
fn bad_input_exits_2_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("manifest.json");
    std::fs::write(&bad, r#"{"main.js": {"file": 3}}"#).unwrap();
    let cyclic = dir.path().join("cyclic.json");
    std::fs::write(
        &cyclic,
        r#"{"main.js": {"file": "main.js", "imports": ["_a.js"]}, "_a.js": {"file": "a.js", "imports": ["main.js", "_a.js"]}}"#,
    )
    .unwrap();
    for (path, entry, expected) in [
        (bad.clone(), "main.js", "line 1 column"),
        (
            cyclic.clone(),
            "nope.js",
            "entry `nope.js` is not in the Vite manifest",
        ),
        (dir.path().join("missing.json"), "main.js", "cannot read"),
    ] {
        let out = perfkit()
            .args(["lazy", "hints", "--entry", entry, "--json", "--manifest"])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert!(out.stdout.is_empty());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with("error: ") && err.contains(expected),
            "{err}"
        );
    }
    // An import cycle is handled: the entry is never preloaded, the chunk once.
    let out = perfkit()
        .args(["lazy", "hints", "--entry", "main.js", "--manifest"])
        .arg(&cyclic)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.matches("<link rel=\"modulepreload\"").count(),
        1,
        "{text}"
    );
    assert!(
        text.contains("href=\"/a.js\"") && !text.contains("href=\"/main.js\""),
        "{text}"
    );
}

#[test]
fn the_demo_reports_a_model_loaded_on_first_use_and_templates_preloaded_when_idle() {
    let v = common::demo_json(&["--duration", "1s"]);
    let lazy = common::component(&v, "lazy");
    let resource = |name: &str| {
        lazy["details"]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("no resource {name} in {lazy}"))
            .clone()
    };
    let model = resource("search-model");
    assert_eq!(model["state"]["state"], "loaded", "{model}");
    assert_eq!(model["state"]["trigger"], "first_use");
    assert_eq!(
        model["state"]["attempts"], 2,
        "the first attempt fails on purpose"
    );
    assert!(model["state"]["load_time_secs"].as_f64().unwrap() > 0.1);
    let templates = resource("report-templates");
    assert_eq!(templates["state"]["state"], "loaded", "{templates}");
    assert_eq!(templates["state"]["trigger"], "preload");
    assert_eq!(templates["strategy"], "idle");
}
