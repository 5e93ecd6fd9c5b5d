//! Profile files a user hands the CLI: malformed ones give a clear error, never a panic,
//! and whatever loads can be analysed and exported without panicking.

use perfkit_profiler::export;
use perfkit_profiler::regress::regressions;
use perfkit_profiler::suggest::suggest;
use perfkit_profiler::{Profile, RegressionConfig, SpanRecord, SuggestConfig, Trace};
use std::path::Path;

fn valid() -> Profile {
    let ms = 1_000_000;
    let traces = (0..4u64)
        .map(|i| Trace {
            trace_id: format!("{i:032x}"),
            remote_parent_span_id: None,
            start_unix_ns: i * 1000 * ms,
            spans: vec![
                SpanRecord {
                    name: "root".into(),
                    parent: None,
                    span_id: 1,
                    start_ns: 0,
                    duration_ns: 300 * ms,
                    busy_ns: ms,
                    fields: vec![("id".into(), i.to_string())],
                },
                SpanRecord {
                    name: "q".into(),
                    parent: Some(0),
                    span_id: 2,
                    start_ns: 0,
                    duration_ns: 120 * ms,
                    busy_ns: 0,
                    fields: vec![("k".into(), "1".into())],
                },
                SpanRecord {
                    name: "r".into(),
                    parent: Some(0),
                    span_id: 3,
                    start_ns: 120 * ms,
                    duration_ns: 120 * ms,
                    busy_ns: 0,
                    fields: vec![],
                },
            ],
        })
        .collect();
    Profile::from_traces(0.5, traces)
}

/// Runs every analysis and export; the point is that none panics.
fn exercise(p: &Profile) {
    let _ = p.summary();
    let _ = p.metrics();
    let _ = suggest(&p.traces, &SuggestConfig::default());
    let _ = regressions(p, p, &RegressionConfig::default());
    let _ = export::folded(p);
    let _ = export::folded_per_trace(p);
    let _ = export::speedscope(p, "x");
    let _ = export::chrome_trace(p);
    let _ = export::prometheus(&p.summary(), &p.metrics());
    let _ = export::flamegraph_svg(p, "x");
    let _ = export::differential_flamegraph_svg(p, p, "x");
}

/// The error and its causes, as the CLI prints them: the file in the error, the reason (with
/// its position) in the cause.
fn chain(err: &dyn std::error::Error) -> String {
    std::iter::successors(Some(err), |e| e.source())
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}

#[test]
fn malformed_files_are_errors_naming_the_problem() {
    let path = Path::new("bad.json");
    let cases = [
        ("", "not a valid"),
        ("[]", "not a valid"),
        ("{\"format\": \"perfkit-profile\"}", "version"),
        (
            "{\"format\": \"perfkit-profile\", \"version\": 1}",
            "missing field",
        ),
        (
            "{\"format\": \"perfkit-profile\", \"version\": 1, \"sample_rate\": \"high\"}",
            "invalid type",
        ),
        (
            "{\"format\": \"perfkit-profile\", \"version\": 1, \"sample_rate\": 0.1, \"traces_sampled\": -3}",
            "invalid value",
        ),
    ];
    for (text, expected) in cases {
        let err = chain(&Profile::from_json(text, path).unwrap_err());
        assert!(err.contains("bad.json"), "{err}");
        assert!(err.contains(expected), "{text:?}: {err}");
    }
    let mut truncated = serde_json::to_string(&valid()).unwrap();
    truncated.truncate(truncated.len() / 2);
    let err = chain(&Profile::from_json(&truncated, path).unwrap_err());
    assert!(err.contains("line 1 column"), "{err}");
}

#[test]
fn extreme_but_valid_values_do_not_panic() {
    let mut p = valid();
    for s in &mut p.paths {
        s.count = u64::MAX;
        s.total_ns = u64::MAX;
        s.self_ns = u64::MAX;
        s.busy_ns = u64::MAX;
    }
    for t in &mut p.traces {
        for s in &mut t.spans {
            s.start_ns = u64::MAX - 5;
            s.duration_ns = u64::MAX;
            s.busy_ns = u64::MAX;
        }
    }
    let text = serde_json::to_string(&p).unwrap();
    let text = text.replacen(
        "\"buckets\":[",
        "\"buckets\":[[18446744073709551615,18446744073709551615],",
        1,
    );
    let back = Profile::from_json(&text, Path::new("x.json")).unwrap();
    exercise(&back);
    exercise(&Profile::empty(0.1));
}

#[test]
fn mutated_files_never_panic() {
    let text = serde_json::to_string(&valid()).unwrap();
    let bytes = text.as_bytes();
    let mut rng = fastrand::Rng::with_seed(5);
    let digits = b"0123456789";
    let mut loaded = 0;
    for _ in 0..400 {
        let mut b = bytes.to_vec();
        for _ in 0..rng.usize(1..4) {
            let i = rng.usize(0..b.len());
            // Digit-for-digit swaps keep the JSON valid and reach the analyses.
            if b[i].is_ascii_digit() {
                b[i] = digits[rng.usize(0..10)];
            } else if rng.bool() {
                b[i] = rng.u8(32..127);
            } else {
                b.remove(i);
            }
        }
        let Ok(s) = std::str::from_utf8(&b) else {
            continue;
        };
        if let Ok(p) = Profile::from_json(s, Path::new("m.json")) {
            loaded += 1;
            exercise(&p);
        }
    }
    assert!(loaded > 50, "only {loaded} mutants loaded");
}
