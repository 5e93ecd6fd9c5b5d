//! The demo's budget section, through the built binary's `--json` report.
#![cfg(feature = "budget")]

mod common;

#[test]
fn demo_reports_budget_health_as_json() {
    let doc = common::demo_json(&["--duration", "2s", "--concurrency", "4"]);
    let budget = common::component(&doc, "budget");
    let health = &budget["details"]["health"];
    let names: Vec<&str> = health["budgets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["memory", "cpu", "responses"]);
    for b in health["budgets"].as_array().unwrap() {
        assert!(b["limit"].as_f64().unwrap() > 0.0, "{b}");
        assert!(b["usage"].as_f64().unwrap() >= 0.0, "{b}");
        assert!(b["time_in_level_secs"].as_f64().is_some(), "{b}");
    }
    // The memory budget reads the tracking allocator installed in the binary.
    let memory = &health["budgets"][0];
    assert!(memory["error"].is_null(), "{memory}");
    assert!(memory["usage"].as_f64().unwrap() > 1e5);
    assert!(budget["findings"].as_array().unwrap().iter().any(|f| {
        f["kind"] == "budget_memory_source"
            && f["message"]
                .as_str()
                .unwrap()
                .contains("tracking allocator")
    }));
}
