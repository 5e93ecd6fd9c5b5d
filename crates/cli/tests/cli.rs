//! The `perfkit` binary's contract: exit codes, `--json`, completions, the demo.

mod common;

use common::perfkit;

#[test]
fn unknown_subcommand_exits_2_with_a_message() {
    let out = perfkit().arg("no-such-command").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unrecognized subcommand"), "{err}");
}

#[test]
fn bad_duration_exits_2_naming_the_value() {
    let out = perfkit()
        .args(["demo", "--duration", "banana"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("banana") && err.contains("--duration"),
        "{err}"
    );
}

/// An error is printed with its cause chain, each cause once (an error that shows its source
/// in its own message as well would print it twice).
#[test]
fn errors_print_each_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.trace");
    let mut commands: Vec<Vec<std::ffi::OsString>> = Vec::new();
    #[cfg(feature = "cache")]
    commands.push(vec![
        "cache".into(),
        "simulate".into(),
        "--capacity".into(),
        "10".into(),
        "--trace".into(),
        missing.clone().into(),
    ]);
    #[cfg(feature = "profiler")]
    commands.push(vec![
        "profile".into(),
        "stats".into(),
        missing.clone().into(),
    ]);
    #[cfg(feature = "bundle")]
    commands.push(vec![
        "bundle".into(),
        "analyze".into(),
        missing.clone().into(),
    ]);
    for args in commands {
        let out = perfkit().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            err.matches("No such file or directory").count(),
            1,
            "{args:?}: {err}"
        );
    }
}

#[test]
fn version_and_help() {
    let out = perfkit().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("perfkit "));
    let out = perfkit().arg("--help").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("demo"));
}

#[test]
fn completions_for_bash() {
    let out = perfkit().args(["completions", "bash"]).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("_perfkit"));
}

#[test]
fn demo_json_is_one_document_with_every_capability() {
    let doc = common::demo_json(&["--duration", "1500ms"]);
    assert!(
        doc["workload"]["figures"]
            .as_array()
            .is_some_and(|f| !f.is_empty())
    );
    let names: Vec<&str> = doc["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for capability in ["budget", "leak", "profiler", "cache", "lazy"] {
        assert!(
            names.contains(&capability),
            "{capability} missing from {names:?}"
        );
    }
    let requests = doc["workload"]["figures"][0]["value"].as_f64().unwrap();
    assert!(requests > 0.0, "the workload handled requests");
}

#[test]
fn demo_text_report() {
    let out = perfkit()
        .args(["demo", "--duration", "1s"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("== workload") && text.contains("requests"),
        "{text}"
    );
}
