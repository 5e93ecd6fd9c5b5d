//! The labelled corpus: at least 95 % classified right, no leak reported on a `none`
//! series, and OOM estimates within 20 % for linear and sawtooth leaks.

mod common;

use common::{Gen, corpus, generate};
use perfkit_leak::{AnalysisConfig, LimitKind, MemoryLimit, Pattern, analyze};
use std::collections::BTreeMap;

/// PERFKIT_CORPUS_SEEDS widens the corpus for a deeper check (the defaults keep these
/// tests around a second).
fn seeds(default: u64) -> u64 {
    std::env::var("PERFKIT_CORPUS_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

#[test]
fn corpus_is_classified_at_least_95_percent_right_with_no_false_leaks() {
    let cases = corpus(seeds(3));
    let config = AnalysisConfig::default();
    let mut right = 0;
    let mut false_leaks = Vec::new();
    let mut wrong = Vec::new();
    let mut confusion: BTreeMap<(String, String), usize> = BTreeMap::new();
    for case in &cases {
        let a = analyze(&case.samples, &config, None);
        let want = case.kind.label();
        *confusion
            .entry((format!("{:?}", case.kind), a.pattern.to_string()))
            .or_default() += 1;
        if a.pattern == want {
            right += 1;
        } else {
            wrong.push(format!(
                "{:?} n={} noise={} seed={} -> {} ({:?})",
                case.kind, case.n, case.noise, case.seed, a.pattern, a.evidence
            ));
        }
        if want == Pattern::None && a.leak {
            false_leaks.push(format!("{:?} n={} seed={}", case.kind, case.n, case.seed));
        }
    }
    let score = right as f64 / cases.len() as f64;
    println!(
        "corpus: {right}/{} right ({:.1} %)",
        cases.len(),
        score * 100.0
    );
    for ((kind, got), count) in &confusion {
        println!("  {kind:>16} -> {got:<12} {count}");
    }
    for w in &wrong {
        println!("  wrong: {w}");
    }
    assert!(
        false_leaks.is_empty(),
        "leaks reported on none: {false_leaks:?}"
    );
    assert!(score >= 0.95, "only {:.1} % right", score * 100.0);
}

#[test]
fn oom_eta_is_within_20_percent_for_linear_and_sawtooth() {
    let config = AnalysisConfig::default();
    let mut checked = 0;
    let mut skipped = 0;
    let mut worst: f64 = 0.0;
    for kind in [Gen::Linear, Gen::Sawtooth] {
        for n in common::LENGTHS {
            for noise in common::NOISES {
                for seed in 0..seeds(2) {
                    let case = generate(kind, n, noise, seed);
                    let span = case.samples[n - 1].t_secs - case.samples[0].t_secs;
                    for horizon in [1.0, 3.0, 10.0] {
                        let truth = horizon * span;
                        let limit = (case.end_level + case.rate * truth).round() as u64;
                        let a = analyze(
                            &case.samples,
                            &config,
                            Some(MemoryLimit::new(limit, LimitKind::Explicit)),
                        );
                        if a.pattern != kind.label() {
                            // Counted against the classification score, not here.
                            skipped += 1;
                            continue;
                        }
                        let oom = a.oom.expect("a limit was given");
                        let eta = oom.eta_secs.expect("a leak has an eta");
                        let err = (eta - truth).abs() / truth;
                        worst = worst.max(err);
                        assert!(
                            err <= 0.2,
                            "{kind:?} n={n} noise={noise} seed={seed} horizon={horizon}: eta {eta:.0} vs truth {truth:.0} ({:.0} % off)",
                            err * 100.0
                        );
                        let (lo, hi) = (oom.eta_low_secs.unwrap(), oom.eta_high_secs);
                        assert!(lo <= eta && hi.is_none_or(|h| h >= eta));
                        checked += 1;
                    }
                }
            }
        }
    }
    println!(
        "oom: {checked} estimates, worst error {:.1} % ({skipped} misclassified series skipped)",
        worst * 100.0
    );
    assert!(
        skipped * 20 <= checked,
        "{skipped} misclassified of {checked}"
    );
}

#[test]
fn oom_eta_of_exponential_leaks_is_within_35_percent() {
    let config = AnalysisConfig::default();
    let (mut checked, mut skipped) = (0, 0);
    let mut worst: f64 = 0.0;
    for n in common::LENGTHS {
        for noise in common::NOISES {
            for seed in 0..seeds(2) {
                let case = generate(Gen::Exponential, n, noise, seed);
                let (base, a, k) = case.exp.unwrap();
                let span = case.samples[n - 1].t_secs - case.samples[0].t_secs;
                for horizon in [0.1, 0.3] {
                    // The limit the curve reaches `horizon * span` after the last sample.
                    let limit = base + a * ((k * span * (1.0 + horizon)).exp() - 1.0);
                    let truth = horizon * span;
                    let r = analyze(
                        &case.samples,
                        &config,
                        Some(MemoryLimit::new(limit as u64, LimitKind::Explicit)),
                    );
                    if r.pattern != Pattern::Exponential {
                        skipped += 1;
                        continue;
                    }
                    let eta = r.oom_eta_secs().unwrap();
                    let err = (eta - truth).abs() / truth;
                    worst = worst.max(err);
                    assert!(
                        err <= 0.35,
                        "n={n} noise={noise} seed={seed} horizon={horizon}: eta {eta:.0} vs {truth:.0}"
                    );
                    checked += 1;
                }
            }
        }
    }
    println!(
        "exponential oom: {checked} estimates, worst error {:.1} %",
        worst * 100.0
    );
    assert!(skipped * 20 <= checked);
}
