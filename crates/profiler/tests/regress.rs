//! Regressions between profiles: real slowdowns are named, noise, tiny effects and thin
//! samples are not.

use perfkit_core::Severity;
use perfkit_profiler::regress::regressions;
use perfkit_profiler::{Profile, RegressionConfig, SpanRecord, Trace};

const US: u64 = 1_000;

/// `n` traces of `root` (with `a` and `b` children) whose `b` takes `b_us` plus jitter.
fn profile(seed: u64, n: usize, b_us: u64, jitter_us: u64) -> Profile {
    let mut rng = fastrand_like(seed);
    let traces = (0..n)
        .map(|i| {
            let a = 2_000 * US + rng() % (jitter_us * US + 1);
            let b = b_us * US + rng() % (jitter_us * US + 1);
            let mk = |name: &str, parent, start, dur| SpanRecord {
                name: name.to_owned(),
                parent,
                span_id: 0,
                start_ns: start,
                duration_ns: dur,
                busy_ns: dur,
                fields: Vec::new(),
            };
            Trace {
                trace_id: format!("{i:032x}"),
                remote_parent_span_id: None,
                start_unix_ns: i as u64,
                spans: vec![
                    mk("root", None, 0, a + b + 10 * US),
                    mk("a", Some(0), 0, a),
                    mk("b", Some(0), a, b),
                ],
            }
        })
        .collect();
    Profile::from_traces(1.0, traces)
}

/// A small deterministic generator (splitmix64), so the test needs no extra dependency.
fn fastrand_like(seed: u64) -> impl FnMut() -> u64 {
    let mut s = seed;
    move || {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[test]
fn same_distribution_is_clean_across_many_seeds() {
    let config = RegressionConfig::default();
    for seed in 0..30 {
        let base = profile(seed, 300, 3_000, 500);
        let cur = profile(seed + 1_000, 300, 3_000, 500);
        let r = regressions(&base, &cur, &config);
        assert_eq!(r.paths_tested, 3);
        assert!(r.regressions.is_empty(), "seed {seed}: {:?}", r.regressions);
    }
}

#[test]
fn a_slower_span_is_named_first() {
    let base = profile(1, 300, 3_000, 500);
    let cur = profile(2, 300, 4_500, 500);
    let r = regressions(&base, &cur, &RegressionConfig::default());
    assert!(!r.regressions.is_empty());
    let top = &r.regressions[0];
    assert_eq!(top.path, "root;b");
    assert!(
        top.change_p50 > 0.4 && top.change_p50 < 0.6,
        "{}",
        top.change_p50
    );
    assert!(top.p_value < 1e-10 && top.q_value < 1e-10);
    assert!(top.severity >= Severity::Warning);
    assert!(r.regressions.iter().all(|x| x.path != "root;a"));
}

#[test]
fn tiny_effects_and_thin_samples_are_not_reported() {
    // +30 us on 3 ms (1 %): significant with 5,000 samples but below the minimum effect.
    let base = profile(1, 5_000, 3_000, 10);
    let cur = profile(2, 5_000, 3_030, 10);
    let r = regressions(&base, &cur, &RegressionConfig::default());
    assert!(r.regressions.is_empty(), "{:?}", r.regressions);
    // A real 50 % slowdown, but only 10 samples a side (< 20).
    let base = profile(1, 10, 3_000, 100);
    let cur = profile(2, 10, 4_500, 100);
    let r = regressions(&base, &cur, &RegressionConfig::default());
    assert!(r.regressions.is_empty());
    assert_eq!(r.paths_skipped, 3);
    assert_eq!(r.paths_tested, 0);
}

#[test]
fn faster_is_not_a_regression() {
    let base = profile(1, 300, 4_500, 500);
    let cur = profile(2, 300, 3_000, 500);
    assert!(
        regressions(&base, &cur, &RegressionConfig::default())
            .regressions
            .is_empty()
    );
}

#[test]
fn different_machine_load_is_called_out() {
    let mut base = profile(1, 50, 3_000, 500);
    let mut cur = profile(2, 50, 3_000, 500);
    let r = regressions(&base, &cur, &RegressionConfig::default());
    assert!(r.warnings.is_empty(), "unknown load: no warning");
    base.cpus = Some(2);
    cur.cpus = Some(2);
    base.load_average = Some(0.4);
    cur.load_average = Some(0.9);
    assert!(
        regressions(&base, &cur, &RegressionConfig::default())
            .warnings
            .is_empty()
    );
    cur.load_average = Some(6.0);
    let w = regressions(&base, &cur, &RegressionConfig::default()).warnings;
    assert_eq!(w.len(), 1);
    assert!(w[0].contains("more loaded"), "{}", w[0]);
    cur.cpus = Some(8);
    let w = regressions(&base, &cur, &RegressionConfig::default()).warnings;
    assert!(w[0].contains("2 CPUs"), "{w:?}");
}
