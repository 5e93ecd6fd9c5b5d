//! Exports in the formats the usual viewers open: folded stacks (self time, for
//! flamegraph.pl, inferno and speedscope), speedscope JSON, Chrome trace-event JSON
//! (chrome://tracing, Perfetto) and, with the `flamegraph` feature, SVG flame graphs.

use crate::profile::Profile;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Folded stacks: one line per call path, `root;parent;span SELF_MICROS`, where the count is
/// the path's total self time in microseconds (so widths in a flame graph are true time).
/// Paths with zero self time are left out. Sorted by path.
pub fn folded(profile: &Profile) -> String {
    let mut out = String::new();
    for p in &profile.paths {
        let micros = (p.self_ns as f64 / 1000.0).round() as u64;
        if micros > 0 {
            let _ = writeln!(out, "{} {micros}", p.path.replace(' ', "_"));
        }
    }
    out
}

/// Folded stacks with each path's self time divided by the number of sampled traces of its
/// root (microseconds per request of that route), so two profiles of different lengths or
/// request mixes compare in a differential flame graph.
pub fn folded_per_trace(profile: &Profile) -> String {
    let roots: std::collections::HashMap<&str, u64> = profile
        .paths
        .iter()
        .filter(|p| !p.path.contains(';'))
        .map(|p| (p.path.as_str(), p.count))
        .collect();
    let mut out = String::new();
    for p in &profile.paths {
        let root = p.path.split(';').next().unwrap_or("");
        let n = roots.get(root).copied().unwrap_or(1).max(1);
        let micros = (p.self_ns as f64 / 1000.0 / n as f64).round() as u64;
        if micros > 0 {
            let _ = writeln!(out, "{} {micros}", p.path.replace(' ', "_"));
        }
    }
    out
}

/// A speedscope document (<https://www.speedscope.app/file-format-schema.json>): a
/// `sampled` profile built from the folded self times (weights in microseconds), and one
/// `evented` profile per retained trace.
pub fn speedscope(profile: &Profile, name: &str) -> Value {
    let mut frames: Vec<Value> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    let mut frame = |name: &str| -> usize {
        if let Some(&i) = index.get(name) {
            return i;
        }
        frames.push(json!({ "name": name }));
        index.insert(name.to_owned(), frames.len() - 1);
        frames.len() - 1
    };
    let mut samples = Vec::new();
    let mut weights = Vec::new();
    for p in &profile.paths {
        let micros = (p.self_ns as f64 / 1000.0).round() as u64;
        if micros == 0 {
            continue;
        }
        samples.push(p.path.split(';').map(&mut frame).collect::<Vec<_>>());
        weights.push(micros);
    }
    let total: u64 = weights.iter().fold(0u64, |acc, w| acc.saturating_add(*w));
    let mut profiles = vec![json!({
        "type": "sampled",
        "name": format!("{name}: self time over {} sampled traces", profile.traces_sampled),
        "unit": "microseconds",
        "startValue": 0,
        "endValue": total,
        "samples": samples,
        "weights": weights,
    })];
    for t in profile.traces.iter().filter(|t| !t.spans.is_empty()) {
        // Evented profiles must nest: walk the tree depth first and keep a child only when
        // it lies inside its parent and after the previous kept sibling (overlapping async
        // siblings cannot be drawn as one stack; the Chrome export shows them all).
        let children = t.children();
        let mut out = Vec::new();
        let mut work: Vec<(usize, bool)> = vec![(0, true)];
        while let Some((i, opening)) = work.pop() {
            let s = &t.spans[i];
            let f = frame(&s.name);
            if !opening {
                out.push(json!({ "type": "C", "frame": f, "at": s.end_ns() as f64 / 1000.0 }));
                continue;
            }
            out.push(json!({ "type": "O", "frame": f, "at": s.start_ns as f64 / 1000.0 }));
            work.push((i, false));
            let mut kept = Vec::new();
            let mut cursor = s.start_ns;
            for &c in &children[i] {
                let cs = &t.spans[c];
                if cs.start_ns >= cursor && cs.end_ns() <= s.end_ns() {
                    kept.push(c);
                    cursor = cs.end_ns();
                }
            }
            for &c in kept.iter().rev() {
                work.push((c, true));
            }
        }
        profiles.push(json!({
            "type": "evented",
            "name": format!("{} {}", t.root_name(), t.trace_id),
            "unit": "microseconds",
            "startValue": 0,
            "endValue": t.duration_ns() as f64 / 1000.0,
            "events": out,
        }));
    }
    json!({
        "$schema": "https://www.speedscope.app/file-format-schema.json",
        "shared": { "frames": frames },
        "profiles": profiles,
        "name": name,
        "exporter": format!("perfkit-profiler {}", env!("CARGO_PKG_VERSION")),
    })
}

/// Chrome trace-event JSON (`{"traceEvents": [...]}`, complete `X` events in microseconds)
/// of the retained traces, one thread lane per trace, for chrome://tracing and Perfetto.
pub fn chrome_trace(profile: &Profile) -> Value {
    let base = profile
        .traces
        .iter()
        .map(|t| t.start_unix_ns)
        .min()
        .unwrap_or(0);
    let mut events = Vec::new();
    for (lane, t) in profile.traces.iter().enumerate() {
        events.push(json!({
            "name": "thread_name", "ph": "M", "pid": 1, "tid": lane,
            "args": { "name": format!("{} {}", t.root_name(), &t.trace_id) },
        }));
        let offset = t.start_unix_ns.saturating_sub(base);
        for s in &t.spans {
            let args: serde_json::Map<String, Value> = s
                .fields
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            events.push(json!({
                "name": s.name,
                "cat": "span",
                "ph": "X",
                "ts": offset.saturating_add(s.start_ns) as f64 / 1000.0,
                "dur": s.duration_ns as f64 / 1000.0,
                "pid": 1,
                "tid": lane,
                "args": args,
            }));
        }
    }
    json!({ "traceEvents": events, "displayTimeUnit": "ms" })
}

/// Errors of the SVG renderers.
#[cfg(feature = "flamegraph")]
#[derive(Debug, thiserror::Error)]
#[error("cannot render the flame graph: {0}")]
pub struct FlamegraphError(String);

/// A flame graph SVG of the profile's self times (inferno).
#[cfg(feature = "flamegraph")]
pub fn flamegraph_svg(profile: &Profile, title: &str) -> Result<Vec<u8>, FlamegraphError> {
    let folded = folded(profile);
    let mut opts = inferno::flamegraph::Options::default();
    opts.title = title.to_owned();
    opts.count_name = "µs".to_owned();
    opts.subtitle = Some(format!(
        "self time of {} sampled traces, summed",
        profile.traces_sampled
    ));
    let mut svg = Vec::new();
    if folded.is_empty() {
        return Err(FlamegraphError("the profile holds no span time".to_owned()));
    }
    inferno::flamegraph::from_lines(&mut opts, folded.lines(), &mut svg)
        .map_err(|e| FlamegraphError(e.to_string()))?;
    Ok(svg)
}

/// A differential flame graph SVG: the current profile's shape, coloured by how each
/// path's self time per request moved from the baseline (red: slower, blue: faster).
#[cfg(feature = "flamegraph")]
pub fn differential_flamegraph_svg(
    baseline: &Profile,
    current: &Profile,
    title: &str,
) -> Result<Vec<u8>, FlamegraphError> {
    let before = folded_per_trace(baseline);
    let after = folded_per_trace(current);
    let mut diff = Vec::new();
    inferno::differential::from_readers(
        inferno::differential::Options::default(),
        before.as_bytes(),
        after.as_bytes(),
        &mut diff,
    )
    .map_err(|e| FlamegraphError(e.to_string()))?;
    if diff.is_empty() {
        return Err(FlamegraphError("the profiles hold no span time".to_owned()));
    }
    let mut opts = inferno::flamegraph::Options::default();
    opts.title = title.to_owned();
    opts.count_name = "µs/request".to_owned();
    opts.subtitle = Some(
        "self time per request of its route; red: slower than the baseline, blue: faster"
            .to_owned(),
    );
    let mut svg = Vec::new();
    inferno::flamegraph::from_reader(&mut opts, diff.as_slice(), &mut svg)
        .map_err(|e| FlamegraphError(e.to_string()))?;
    Ok(svg)
}

/// Prometheus text exposition of the profiler's counters and, per span name, a summary of
/// durations (quantiles 0.5, 0.9, 0.99 in seconds, `_sum` and `_count` over sampled spans).
pub fn prometheus(summary: &crate::Summary, metrics: &crate::Metrics) -> String {
    let mut out = String::new();
    let mut counter = |name: &str, help: &str, kind: &str, v: f64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
        );
    };
    counter(
        "perfkit_profiler_roots_seen_total",
        "Root spans seen, sampled or not.",
        "counter",
        metrics.roots_seen as f64,
    );
    counter(
        "perfkit_profiler_traces_sampled_total",
        "Traces sampled.",
        "counter",
        metrics.traces_sampled as f64,
    );
    counter(
        "perfkit_profiler_spans_sampled_total",
        "Spans in sampled traces.",
        "counter",
        metrics.spans_sampled as f64,
    );
    counter(
        "perfkit_profiler_sample_rate",
        "Head-sampling rate of traces.",
        "gauge",
        metrics.sample_rate,
    );
    let name = "perfkit_span_duration_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Durations of sampled spans, by span name.\n# TYPE {name} summary"
    );
    for s in &summary.spans {
        let label = s.name.replace('\\', "\\\\").replace('"', "\\\"");
        for (q, v) in [("0.5", s.p50_ns), ("0.9", s.p90_ns), ("0.99", s.p99_ns)] {
            let _ = writeln!(
                out,
                "{name}{{span=\"{label}\",quantile=\"{q}\"}} {}",
                v as f64 / 1e9
            );
        }
        let _ = writeln!(
            out,
            "{name}_sum{{span=\"{label}\"}} {}",
            s.total_ns as f64 / 1e9
        );
        let _ = writeln!(out, "{name}_count{{span=\"{label}\"}} {}", s.count);
    }
    out
}
