//! The demo's leak section names the leaking session store with its pattern and the time
//! until it reaches its limit.

#![cfg(feature = "leak")]

mod common;

#[test]
fn demo_names_the_session_store_leak_with_pattern_and_time_to_limit() {
    let doc = common::demo_json(&["--duration", "1500ms"]);
    let leak = common::component(&doc, "leak");
    let store = &leak["details"]["session_store"];
    assert_eq!(store["leak"], true, "{leak}");
    let pattern = store["pattern"].as_str().unwrap();
    assert!(
        ["linear", "no_cleanup", "step"].contains(&pattern),
        "{pattern}"
    );
    assert!(store["oom"]["eta_secs"].as_f64().unwrap() > 0.0);
    assert_eq!(store["oom"]["limit_source"], "budget");
    let finding = leak["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["message"].as_str().unwrap().contains("session_store"))
        .expect("a finding naming the session store");
    let message = finding["message"].as_str().unwrap();
    assert!(
        message.contains(pattern) && message.contains(" in ~"),
        "{message}"
    );
    assert_eq!(finding["kind"], format!("{pattern}_leak"));
    assert!(
        leak["summary"]
            .as_str()
            .unwrap()
            .contains("session_store leaks")
    );
}
