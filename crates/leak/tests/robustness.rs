//! What real series contain: irregular intervals, gaps, restarts, a handful of points, a
//! million points, unsorted or repeated times.

mod common;

use common::{Gen, generate};
use perfkit_leak::{AnalysisConfig, LimitKind, MemoryLimit, Pattern, Sample, analyze};
use proptest::prelude::*;

fn linear(n: usize, t0: f64, dt: f64, base: f64, rate: f64) -> Vec<Sample> {
    let mut rng = common::Rng::new(n as u64);
    (0..n)
        .map(|i| {
            let t = t0 + i as f64 * dt;
            // Ups and downs around the trend (larger than one step's growth).
            let wobble = 1.5 * rate * dt * rng.normal();
            Sample::new(t, (base + rate * (t - t0) + wobble) as u64)
        })
        .collect()
}

#[test]
fn a_handful_of_points_is_not_enough_data() {
    let cfg = AnalysisConfig::default();
    for n in [0, 1, 2, 5, 9] {
        let a = analyze(&linear(n, 0.0, 1.0, 1e6, 1e4), &cfg, None);
        assert!(a.insufficient_data, "{n}");
        assert!(!a.leak && a.pattern == Pattern::None && a.confidence == 0.0);
        assert!(a.summary().contains("not enough data"), "{}", a.summary());
    }
    // Ten points at one instant span no time.
    let same: Vec<Sample> = (0..10).map(|i| Sample::new(5.0, 1000 + i)).collect();
    assert!(analyze(&same, &cfg, None).insufficient_data);
    assert!(!analyze(&linear(10, 0.0, 1.0, 1e6, 1e4), &cfg, None).insufficient_data);
}

#[test]
fn analysis_starts_from_a_restart() {
    // A leak up to 200 MB, a restart to 20 MB, then flat: no leak since the restart.
    let mut s = linear(100, 0.0, 1.0, 100e6, 1e6);
    s.extend((100..160).map(|i| Sample::new(i as f64, 20_000_000 + (i % 3) * 10_000)));
    let a = analyze(&s, &AnalysisConfig::default(), None);
    assert_eq!(a.restart_at_secs, Some(100.0));
    assert_eq!(a.pattern, Pattern::None, "{:?}", a.evidence);
    assert!(
        a.notes.iter().any(|n| n.contains("restart")),
        "{:?}",
        a.notes
    );
    // Flat, a restart, then a leak: the leak is found.
    let mut s: Vec<Sample> = (0..100)
        .map(|i| Sample::new(i as f64, 300_000_000))
        .collect();
    s.extend(linear(80, 100.0, 1.0, 30e6, 2e5));
    let a = analyze(&s, &AnalysisConfig::default(), None);
    assert_eq!(a.pattern, Pattern::Linear, "{:?}", a.evidence);
    assert_eq!(a.analyzed_points, 80);
}

#[test]
fn irregular_intervals_and_gaps_keep_the_rate() {
    // Intervals from 0.2 s to 5 s, and a 10-minute gap.
    let mut t = 0.0;
    let mut s = Vec::new();
    for i in 0..300 {
        t += [0.2, 1.0, 5.0, 0.7][i % 4];
        if i == 150 {
            t += 600.0;
        }
        let wobble = [0.0, 40_000.0, -25_000.0, 10_000.0][i % 4];
        s.push(Sample::new(t, (50e6 + 5_000.0 * t + wobble) as u64));
    }
    let a = analyze(&s, &AnalysisConfig::default(), None);
    assert_eq!(a.pattern, Pattern::Linear, "{:?}", a.evidence);
    assert!(
        (a.growth_bytes_per_sec - 5_000.0).abs() < 250.0,
        "{}",
        a.growth_bytes_per_sec
    );
}

#[test]
fn unsorted_and_repeated_times_are_repaired_and_said() {
    let mut s = linear(120, 0.0, 1.0, 1e7, 5e4);
    s.swap(10, 40);
    s.swap(70, 71);
    s.push(s[5]);
    let a = analyze(&s, &AnalysisConfig::default(), None);
    assert_eq!(a.pattern, Pattern::Linear);
    assert!(
        a.notes.iter().any(|n| n.contains("sorted")),
        "{:?}",
        a.notes
    );
    assert!(
        a.notes.iter().any(|n| n.contains("repeated")),
        "{:?}",
        a.notes
    );
    let nan = [Sample::new(f64::NAN, 1), Sample::new(f64::INFINITY, 2)];
    assert!(analyze(&nan, &AnalysisConfig::default(), None).insufficient_data);
}

#[test]
fn degenerate_values_do_not_panic() {
    let cfg = AnalysisConfig::default();
    let zeros: Vec<Sample> = (0..50).map(|i| Sample::new(i as f64, 0)).collect();
    assert_eq!(analyze(&zeros, &cfg, None).pattern, Pattern::None);
    let flat: Vec<Sample> = (0..50).map(|i| Sample::new(i as f64, 7)).collect();
    assert_eq!(analyze(&flat, &cfg, None).pattern, Pattern::None);
    let huge: Vec<Sample> = (0..50)
        .map(|i| Sample::new(i as f64, u64::MAX - 1000 + i))
        .collect();
    let _ = analyze(
        &huge,
        &cfg,
        Some(MemoryLimit::new(u64::MAX, LimitKind::System)),
    );
    let wild: Vec<Sample> = (0..50)
        .map(|i| Sample::new(i as f64 * 1e-9, if i % 2 == 0 { 0 } else { u64::MAX }))
        .collect();
    let _ = analyze(&wild, &cfg, None);
}

#[test]
fn a_single_level_shift_is_not_a_leak() {
    let s: Vec<Sample> = (0..100)
        .map(|i| {
            Sample::new(
                i as f64,
                if i < 40 { 100_000_000 } else { 150_000_000 } + (i % 3) * 1000,
            )
        })
        .collect();
    let a = analyze(&s, &AnalysisConfig::default(), None);
    assert_eq!(a.pattern, Pattern::None, "{:?}", a.evidence);
    assert!(a.evidence[0].contains("level shift"), "{:?}", a.evidence);
}

#[test]
fn a_million_points_are_downsampled_and_still_classified() {
    // 1,000,000 samples of a noisy linear leak (every 10 ms for about 2.8 hours).
    let case = generate(Gen::Linear, 5000, 0.01, 1);
    let (first, last) = (case.samples[0], case.samples[4999]);
    let rate = (last.bytes as f64 - first.bytes as f64) / (last.t_secs - first.t_secs);
    let mut s = Vec::with_capacity(1_000_000);
    let mut rng = common::Rng::new(9);
    for i in 0..1_000_000u64 {
        let t = i as f64 * 0.01;
        let y = 1e9 + 2_000.0 * t + 3e6 * rng.normal();
        s.push(Sample::new(t, y as u64));
    }
    let a = analyze(&s, &AnalysisConfig::default(), None);
    assert_eq!(a.points, 1_000_000);
    assert!(a.analyzed_points <= 10_000);
    assert_eq!(a.pattern, Pattern::Linear, "{:?}", a.evidence);
    assert!((a.growth_bytes_per_sec - 2_000.0).abs() < 50.0);
    assert!(a.notes.iter().any(|n| n.contains("buckets")));
    assert!(rate.is_finite());
}

#[test]
fn json_has_the_contract_keys() {
    let a = analyze(
        &linear(60, 0.0, 1.0, 1e6, 1e4),
        &AnalysisConfig::default(),
        Some(MemoryLimit::new(1 << 30, LimitKind::Explicit)),
    );
    let v = serde_json::to_value(&a).unwrap();
    for key in [
        "pattern",
        "leak",
        "confidence",
        "growth_bytes_per_sec",
        "severity",
        "points",
    ] {
        assert!(v.get(key).is_some(), "{key} missing in {v}");
    }
    assert_eq!(v["pattern"], "linear");
    assert_eq!(v["oom"]["limit_source"], "explicit");
}

#[test]
fn step_and_exponential_leaks_have_sensible_oom_estimates() {
    let limit = |b: f64| Some(MemoryLimit::new(b as u64, LimitKind::Explicit));
    // Steps of 10 MB every 100 s on 100 MB: 0.1 MB/s on average; 160 MB left to 300 MB.
    let s: Vec<Sample> = (0..500)
        .map(|i| Sample::new(i as f64, 100_000_000 + (i / 100) * 10_000_000))
        .collect();
    let a = analyze(&s, &AnalysisConfig::default(), limit(300e6));
    assert_eq!(a.pattern, Pattern::Step, "{:?}", a.evidence);
    let eta = a.oom_eta_secs().unwrap();
    assert!((1_000.0..3_000.0).contains(&eta), "{eta}");
    let oom = a.oom.unwrap();
    assert!(oom.eta_low_secs.unwrap() <= eta && oom.eta_high_secs.is_none_or(|h| h >= eta));
    // Accelerating growth: the estimate is shorter than extrapolating the current rate.
    let mut rng = common::Rng::new(5);
    let s: Vec<Sample> = (0..300)
        .map(|i| {
            let t = i as f64;
            Sample::new(
                t,
                (1e8 + 1e6 * ((t / 100.0).exp() - 1.0) + 2e5 * rng.normal()) as u64,
            )
        })
        .collect();
    let a = analyze(&s, &AnalysisConfig::default(), limit(1e9));
    assert_eq!(a.pattern, Pattern::Exponential, "{:?}", a.evidence);
    let oom = a.oom.unwrap();
    let (eta, linear) = (oom.eta_secs.unwrap(), oom.eta_high_secs.unwrap());
    assert!(eta < linear, "{eta} vs {linear}");
    // Truth: 1e8 + 1e6 (e^(t/100) - 1) reaches 1e9 at t = 100 ln(901) = 680 s, 381 s after
    // the last sample.
    assert!((eta - 381.0).abs() < 0.35 * 381.0, "{eta}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn analysis_never_panics(
        points in proptest::collection::vec((-1e12f64..1e12, any::<u64>()), 0..80),
        special in proptest::collection::vec(
            prop_oneof![Just(f64::NAN), Just(f64::INFINITY), Just(0.0), Just(-0.0)], 0..3),
        limit in proptest::option::of(any::<u64>()),
    ) {
        let mut s: Vec<Sample> = points.into_iter().map(|(t, b)| Sample::new(t, b)).collect();
        s.extend(special.into_iter().map(|t| Sample::new(t, 1)));
        let a = analyze(&s, &AnalysisConfig::default(), limit.map(|b| MemoryLimit::new(b, LimitKind::System)));
        prop_assert!((0.0..=1.0).contains(&a.confidence));
        prop_assert_eq!(a.leak, a.pattern != Pattern::None);
        let _ = serde_json::to_string(&a);
    }
}
