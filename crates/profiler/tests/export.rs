//! Exports: folded stacks carry self time, speedscope and Chrome documents have the shape
//! their viewers expect, and the flame graph SVGs render.

use perfkit_profiler::export;
use perfkit_profiler::{Profile, SpanRecord, Trace};

const MS: u64 = 1_000_000;

fn span(name: &str, parent: Option<u32>, start_ms: u64, dur_ms: u64) -> SpanRecord {
    SpanRecord {
        name: name.to_owned(),
        parent,
        span_id: 0,
        start_ns: start_ms * MS,
        duration_ns: dur_ms * MS,
        busy_ns: dur_ms * MS,
        fields: vec![("k".to_owned(), "v".to_owned())],
    }
}

fn profile(query_ms: u64) -> Profile {
    let traces = (0..3)
        .map(|i| Trace {
            trace_id: format!("{i:032x}"),
            remote_parent_span_id: None,
            start_unix_ns: i * 1000 * MS,
            spans: vec![
                span("request", None, 0, 20),
                span("db.query", Some(0), 2, query_ms),
                span("render", Some(0), 12, 5),
                span("template", Some(2), 13, 2),
                // Overlaps db.query: async siblings; not drawable as one stack.
                span("prefetch", Some(0), 3, 4),
            ],
        })
        .collect();
    Profile::from_traces(1.0, traces)
}

#[test]
fn folded_stacks_are_self_time_in_microseconds() {
    let folded = export::folded(&profile(8));
    let lines: Vec<&str> = folded.lines().collect();
    // request: 20 - union(2..10, 3..7, 12..17) = 20 - 13 = 7 ms, times 3 traces.
    assert!(lines.contains(&"request 21000"), "{folded}");
    assert!(lines.contains(&"request;db.query 24000"), "{folded}");
    assert!(lines.contains(&"request;render 9000"), "{folded}");
    assert!(lines.contains(&"request;render;template 6000"), "{folded}");
    // Widths add up to the root's total time.
    let total: u64 = lines
        .iter()
        .filter(|l| !l.starts_with("request;prefetch"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert!(total <= 60_000);
    let per = export::folded_per_trace(&profile(8));
    assert!(per.contains("request;db.query 8000"), "{per}");
}

#[test]
fn speedscope_document_is_well_formed() {
    let doc = export::speedscope(&profile(8), "test");
    assert_eq!(
        doc["$schema"],
        "https://www.speedscope.app/file-format-schema.json"
    );
    let frames = doc["shared"]["frames"].as_array().unwrap();
    let profiles = doc["profiles"].as_array().unwrap();
    assert_eq!(profiles[0]["type"], "sampled");
    let samples = profiles[0]["samples"].as_array().unwrap();
    let weights = profiles[0]["weights"].as_array().unwrap();
    assert_eq!(samples.len(), weights.len());
    for s in samples {
        for f in s.as_array().unwrap() {
            assert!((f.as_u64().unwrap() as usize) < frames.len());
        }
    }
    // Evented profiles: opens and closes balance and nest, times never go back.
    assert_eq!(profiles.len(), 4);
    for p in &profiles[1..] {
        assert_eq!(p["type"], "evented");
        let mut stack = Vec::new();
        let mut last = 0.0;
        for e in p["events"].as_array().unwrap() {
            let at = e["at"].as_f64().unwrap();
            assert!(at >= last, "events in time order");
            last = at;
            match e["type"].as_str().unwrap() {
                "O" => stack.push(e["frame"].as_u64().unwrap()),
                "C" => assert_eq!(stack.pop(), Some(e["frame"].as_u64().unwrap())),
                other => panic!("unexpected event {other}"),
            }
        }
        assert!(stack.is_empty());
    }
}

#[test]
fn chrome_trace_has_complete_events() {
    let doc = export::chrome_trace(&profile(8));
    let events = doc["traceEvents"].as_array().unwrap();
    let complete: Vec<_> = events.iter().filter(|e| e["ph"] == "X").collect();
    assert_eq!(complete.len(), 15);
    let q = complete.iter().find(|e| e["name"] == "db.query").unwrap();
    assert_eq!(q["dur"].as_f64().unwrap(), 8000.0);
    assert_eq!(q["ts"].as_f64().unwrap(), 2000.0);
    assert_eq!(q["args"]["k"], "v");
}

#[test]
fn flame_graphs_render() {
    let svg = export::flamegraph_svg(&profile(8), "t").unwrap();
    let text = String::from_utf8(svg).unwrap();
    assert!(text.starts_with("<?xml") && text.contains("db.query"));
    let diff = export::differential_flamegraph_svg(&profile(8), &profile(16), "d").unwrap();
    let text = String::from_utf8(diff).unwrap();
    assert!(text.contains("db.query"));
    assert!(export::flamegraph_svg(&Profile::empty(1.0), "t").is_err());
}

#[test]
fn prometheus_text_has_counters_and_summaries() {
    let p = profile(8);
    let text = export::prometheus(&p.summary(), &p.metrics());
    assert!(text.contains("# TYPE perfkit_profiler_traces_sampled_total counter"));
    assert!(
        text.contains("perfkit_profiler_traces_sampled_total 3\n"),
        "{text}"
    );
    assert!(text.contains("perfkit_span_duration_seconds_count{span=\"db.query\"} 3\n"));
    assert!(
        text.contains("perfkit_span_duration_seconds{span=\"db.query\",quantile=\"0.5\"} 0.008")
    );
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let value = line.rsplit(' ').next().unwrap();
        assert!(value.parse::<f64>().is_ok(), "{line}");
    }
}
