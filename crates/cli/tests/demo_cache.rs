//! The demo's cache section: per-tier metrics in the JSON report, a Redis tier with
//! `--redis URL` (against a real redis-server), and a bad URL rejected with exit code 2.
#![cfg(feature = "cache")]

mod common;

use common::perfkit;

/// The cache component of `perfkit demo --json ARGS...`.
fn cache_component(args: &[&str]) -> serde_json::Value {
    common::component(&common::demo_json(args), "cache").clone()
}

fn figure(c: &serde_json::Value, name: &str) -> Option<f64> {
    c["figures"]
        .as_array()?
        .iter()
        .find(|f| f["name"] == name)?["value"]
        .as_f64()
}

#[test]
fn the_demo_reads_through_memory_and_disk_tiers() {
    let c = cache_component(&["--duration", "2s"]);
    assert!(figure(&c, "requests").unwrap() > 0.0, "{c:#}");
    for name in [
        "l1_hit_ratio",
        "l1_lookup_p99",
        "disk_hit_ratio",
        "disk_entries",
    ] {
        assert!(figure(&c, name).is_some(), "{name} missing: {c:#}");
    }
    let tiers = c["details"]["metrics"]["tiers"].as_array().unwrap();
    assert_eq!(tiers.len(), 2);
}

#[test]
fn with_redis_the_demo_has_a_third_tier() {
    let server = perfkit_testkit::RedisServer::start();
    let url = server.url();
    let c = cache_component(&["--duration", "2s", "--redis", &url]);
    let tiers = c["details"]["metrics"]["tiers"].as_array().unwrap();
    assert_eq!(tiers.len(), 3);
    assert_eq!(tiers[2]["name"], "redis");
    assert_eq!(tiers[2]["errors"], 0, "{:#}", tiers[2]);
    assert!(tiers[2]["writes"].as_u64().unwrap() > 0);
}

#[test]
fn a_bad_redis_url_is_bad_input() {
    let out = perfkit()
        .args(["demo", "--duration", "1s", "--redis", "not a url"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--redis"));
}
