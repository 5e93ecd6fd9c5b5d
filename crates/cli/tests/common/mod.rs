//! Helpers shared by the CLI's integration tests (each test binary uses a subset).
#![allow(dead_code)]

use assert_cmd::Command;

/// The built `perfkit` binary.
pub(crate) fn perfkit() -> Command {
    Command::cargo_bin("perfkit").expect("the perfkit binary is built")
}

/// Runs `perfkit demo --json ARGS...`, asserts it succeeded, and returns the report.
pub(crate) fn demo_json(args: &[&str]) -> serde_json::Value {
    let out = perfkit()
        .args(["demo", "--json"])
        .args(args)
        .output()
        .expect("running perfkit demo");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON document")
}

/// The demo report's component called `name`.
pub(crate) fn component<'a>(doc: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    doc["components"]
        .as_array()
        .expect("a components array")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} component in {doc}"))
}
