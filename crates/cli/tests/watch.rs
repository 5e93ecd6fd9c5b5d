//! `perfkit watch` on python3 children: a leak is reported with its OOM estimate, CPU is
//! held near the asked fraction, memory limits are enforced, the child's status is kept and
//! the CSV is readable by `leak analyze`. Each test runs a few seconds at most.

#![cfg(feature = "leak")]

mod common;

use common::perfkit;

fn have_python() -> bool {
    let ok = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        println!("skipped: python3 is not installed");
    }
    ok
}

/// Allocates and keeps 2 MiB (touched) every 100 ms, 30 times.
const LEAKER: &str = "import time\na = []\nfor i in range(30):\n    a.append(b'x' * (2 << 20))\n    time.sleep(0.1)\n";

#[test]
fn a_leaking_child_is_reported_with_an_oom_estimate_and_csv() {
    if !have_python() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("mem.csv");
    let out = perfkit()
        .args(["watch", "--interval", "100ms", "--memory", "4GiB", "--csv"])
        .arg(&csv)
        .args(["--", "python3", "-c", LEAKER])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("leak detected"), "{err}");
    assert!(
        err.contains("OOM: reaches the explicit limit of 4.00 GiB in"),
        "{err}"
    );
    // The CSV is what `leak analyze` reads, and it sees the leak too.
    let out = perfkit()
        .args(["leak", "analyze"])
        .arg(&csv)
        .args(["--limit", "4GiB", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["leak"], true, "{v}");
    let g = v["growth_bytes_per_sec"].as_f64().unwrap();
    // About 20 MiB/s.
    assert!(g > 8e6 && g < 40e6, "{g}");
    assert!(v["oom_eta_secs"].as_f64().unwrap() > 0.0);
}

#[test]
fn json_reports_the_verdict_levels_and_status_and_keeps_stdout_clean() {
    if !have_python() {
        return;
    }
    // The leaker, saying hello on stdout first: that line must go to stderr.
    let script = format!("print('hello from the child', flush=True)\n{LEAKER}");
    let out = perfkit()
        .args([
            "watch",
            "--json",
            "--interval",
            "100ms",
            "--memory",
            "80MiB",
        ])
        // A signal the child ignores, should it reach the throttle level.
        .args(["--memory-signal", "WINCH", "--", "python3", "-c", &script])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("hello from the child"), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {err}"));
    assert_eq!(v["exit_status"], 0, "{v}");
    assert_eq!(v["memory_limit_bytes"], 80 << 20);
    assert!(v["samples"].as_u64().unwrap() >= 10, "{v}");
    // 60 MiB kept by the child, on top of the interpreter.
    assert!(v["peak_rss_bytes"].as_u64().unwrap() > 60 << 20, "{v}");
    assert_eq!(v["verdict"]["leak"], true, "{v}");
    assert_eq!(v["verdict"]["limit_bytes"], 80 << 20, "{v}");
    let events = v["events"].as_array().unwrap();
    assert!(events.iter().any(|e| e["event"] == "leak"), "{v}");
    let warn = events
        .iter()
        .find(|e| e["event"] == "level" && e["level"] == "warn")
        .unwrap_or_else(|| panic!("no warn level event: {v}"));
    assert!(warn["rss_bytes"].as_u64().unwrap() >= (80 << 20) * 8 / 10);
}

#[test]
fn cpu_is_held_near_the_fraction_measured_from_proc() {
    if !have_python() {
        return;
    }
    // A busy loop for 3 s of wall time that reports its own CPU use from /proc/self/stat.
    let script = "import os, time\nt0 = time.monotonic()\nwhile time.monotonic() - t0 < 3.0:\n    pass\nf = open('/proc/self/stat').read().rsplit(')', 1)[1].split()\nprint((int(f[11]) + int(f[12])) / os.sysconf('SC_CLK_TCK') / (time.monotonic() - t0))\n";
    let out = perfkit()
        .args([
            "watch",
            "--cpu",
            "0.25",
            "--interval",
            "200ms",
            "--",
            "python3",
            "-c",
            script,
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let used: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(
        (0.15..=0.35).contains(&used),
        "the busy loop used {used} of a core"
    );
}

#[test]
fn memory_levels_warn_signal_then_terminate() {
    if !have_python() {
        return;
    }
    // Handles SIGUSR1 (the throttle signal) by saying so; grows until it is stopped.
    let script = "import signal, sys, time\nsignal.signal(signal.SIGUSR1, lambda *a: print('got USR1', flush=True))\na = []\nfor i in range(200):\n    a.append(b'x' * (2 << 20))\n    time.sleep(0.03)\n";
    let out = perfkit()
        .args([
            "watch",
            "--interval",
            "50ms",
            "--memory",
            "60MiB",
            "--grace",
            "1s",
        ])
        .args(["--", "python3", "-c", script])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("warn: memory"), "{err}");
    assert!(err.contains("throttle: memory"), "{err}");
    assert!(
        err.contains("reject: memory") && err.contains("SIGTERM"),
        "{err}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("got USR1"));
    // Ended by SIGTERM: 128 + 15.
    assert_eq!(out.status.code(), Some(143), "{err}");
}

#[test]
fn exits_with_the_child_status() {
    if !have_python() {
        return;
    }
    let out = perfkit()
        .args(["watch", "--", "python3", "-c", "import sys; sys.exit(3)"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        vec!["watch"],
        vec!["watch", "--cpu", "0", "--", "true"],
        vec!["watch", "--cpu", "2", "--", "true"],
        vec!["watch", "--pid", "1", "--", "true"],
        vec!["watch", "--pid", "4294967000"],
        vec!["watch", "--memory-signal", "NOPE", "--", "true"],
        vec!["watch", "--", "/no/such/program"],
    ] {
        let out = perfkit().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty());
    }
}

#[test]
fn watches_a_running_process_by_pid() {
    let mut child = std::process::Command::new("sleep")
        .arg("1")
        .spawn()
        .unwrap();
    let out = perfkit()
        .args([
            "watch",
            "--interval",
            "100ms",
            "--pid",
            &child.id().to_string(),
        ])
        .output()
        .unwrap();
    let _ = child.wait();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("samples over"));
}
