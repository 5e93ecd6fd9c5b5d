//! Each detector on traces built for it, and on traces where it must stay silent.

use perfkit_profiler::suggest::suggest;
use perfkit_profiler::{SpanRecord, SuggestConfig, SuggestionKind, Trace};

const MS: u64 = 1_000_000;

fn span(name: &str, parent: Option<u32>, start_ms: u64, dur_ms: u64) -> SpanRecord {
    SpanRecord {
        name: name.to_owned(),
        parent,
        span_id: 0,
        start_ns: start_ms * MS,
        duration_ns: dur_ms * MS,
        busy_ns: dur_ms * MS,
        fields: Vec::new(),
    }
}

fn with_fields(mut s: SpanRecord, fields: &[(&str, &str)]) -> SpanRecord {
    s.fields = fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    s
}

fn waiting(mut s: SpanRecord) -> SpanRecord {
    s.busy_ns = s.duration_ns / 100;
    s
}

fn trace(i: u64, spans: Vec<SpanRecord>) -> Trace {
    Trace {
        trace_id: format!("{i:032x}"),
        remote_parent_span_id: None,
        start_unix_ns: i * 1_000 * MS,
        spans,
    }
}

fn kinds(traces: &[Trace]) -> Vec<SuggestionKind> {
    suggest(traces, &SuggestConfig::default())
        .iter()
        .map(|s| s.kind)
        .collect()
}

/// `n` queries of `each` ms under a root, with the item number as a field.
fn n_plus_one(i: u64, n: u64, each: u64) -> Trace {
    let mut spans = vec![span("list", None, 0, n * each + 1)];
    for k in 0..n {
        spans.push(waiting(with_fields(
            span("db.query", Some(0), k * each, each),
            &[("table", "items"), ("item", &format!("{}", k + 100 * i))],
        )));
    }
    trace(i, spans)
}

#[test]
fn batching_fires_on_n_plus_one() {
    let traces: Vec<Trace> = (0..4).map(|i| n_plus_one(i, 8, 7)).collect();
    let all = suggest(&traces, &SuggestConfig::default());
    let b = all
        .iter()
        .find(|s| s.kind == SuggestionKind::Batching)
        .expect("batching");
    assert_eq!(b.evidence.paths, vec!["list;db.query".to_owned()]);
    assert_eq!(b.evidence.traces, 4);
    assert_eq!(b.evidence.spans, 32);
    assert_eq!(b.saving_per_trace_ns, 49 * MS); // 56 ms minus one 7 ms query
    assert!(b.confidence > 0.8, "{}", b.confidence);
}

#[test]
fn batching_stays_silent_below_thresholds() {
    // Four siblings (< 5), or eight that together take 40 ms (< 50 ms).
    let few: Vec<Trace> = (0..4).map(|i| n_plus_one(i, 4, 20)).collect();
    assert!(!kinds(&few).contains(&SuggestionKind::Batching));
    let quick: Vec<Trace> = (0..4).map(|i| n_plus_one(i, 8, 5)).collect();
    assert!(!kinds(&quick).contains(&SuggestionKind::Batching));
    // Different field shapes under one parent are different calls.
    let mut spans = vec![span("list", None, 0, 100)];
    for k in 0..8u64 {
        let key = format!("f{k}");
        spans.push(with_fields(
            span("call", Some(0), k * 10, 10),
            &[(&key, "1")],
        ));
    }
    assert!(!kinds(&[trace(0, spans)]).contains(&SuggestionKind::Batching));
}

fn pricing(i: u64, repeats: u64, each: u64, sku: &str) -> Trace {
    let mut spans = vec![with_fields(
        span("report", None, 0, repeats * each),
        &[("id", &i.to_string())],
    )];
    for k in 0..repeats {
        spans.push(with_fields(
            span("compute_pricing", Some(0), k * each, each),
            &[("sku", sku)],
        ));
    }
    trace(i, spans)
}

#[test]
fn caching_fires_on_repeated_identical_computation() {
    let traces: Vec<Trace> = (0..10).map(|i| pricing(i, 4, 3, "42")).collect();
    let all = suggest(&traces, &SuggestConfig::default());
    let c = all
        .iter()
        .find(|s| s.kind == SuggestionKind::Caching)
        .expect("caching");
    assert_eq!(c.evidence.paths, vec!["report;compute_pricing".to_owned()]);
    assert_eq!(c.evidence.spans, 40);
    // 40 computations of one key: all but the first could be cached.
    assert_eq!(c.saving_total_ns, 120 * MS - 3 * MS);
    assert!(
        c.evidence.detail.contains("sku=42"),
        "{}",
        c.evidence.detail
    );
    // No caching suggestion for the root, whose id differs per request.
    assert!(
        all.iter()
            .all(|s| s.evidence.paths != vec!["report".to_owned()])
    );
}

#[test]
fn caching_stays_silent_for_distinct_inputs_or_little_time() {
    // Distinct inputs every time.
    let distinct: Vec<Trace> = (0..10)
        .map(|i| {
            let mut spans = vec![span("report", None, 0, 40)];
            for k in 0..4u64 {
                spans.push(with_fields(
                    span("compute_pricing", Some(0), k * 10, 10),
                    &[("sku", &format!("{}", i * 10 + k))],
                ));
            }
            trace(i, spans)
        })
        .collect();
    assert!(!kinds(&distinct).contains(&SuggestionKind::Caching));
    // Same inputs but 2 traces x 4 x 3 ms = 24 ms cumulative, below 100 ms.
    let small: Vec<Trace> = (0..2).map(|i| pricing(i, 4, 3, "42")).collect();
    assert!(!kinds(&small).contains(&SuggestionKind::Caching));
}

fn checkout(i: u64, a_ms: u64, b_ms: u64, busy: bool) -> Trace {
    let mk = |s: SpanRecord| if busy { s } else { waiting(s) };
    trace(
        i,
        vec![
            waiting(span("checkout", None, 0, a_ms + b_ms + 1)),
            mk(span("fetch_inventory", Some(0), 0, a_ms)),
            mk(span("fetch_user_profile", Some(0), a_ms, b_ms)),
            span("charge_card", Some(0), a_ms + b_ms, 1),
        ],
    )
}

#[test]
fn parallelization_fires_on_sequential_independent_waits() {
    let traces: Vec<Trace> = (0..5).map(|i| checkout(i, 110, 110, false)).collect();
    let all = suggest(&traces, &SuggestConfig::default());
    let p = all
        .iter()
        .find(|s| s.kind == SuggestionKind::Parallelization)
        .expect("parallelization");
    assert_eq!(
        p.evidence.paths,
        vec![
            "checkout;fetch_inventory".to_owned(),
            "checkout;fetch_user_profile".to_owned()
        ]
    );
    assert_eq!(p.saving_per_trace_ns, 110 * MS);
    assert_eq!(p.evidence.traces, 5);
}

#[test]
fn parallelization_stays_silent_when_it_would_not_pay() {
    // Saving 60 ms < 100 ms.
    let short: Vec<Trace> = (0..5).map(|i| checkout(i, 60, 200, false)).collect();
    assert!(!kinds(&short).contains(&SuggestionKind::Parallelization));
    // CPU-bound spans (busy the whole time) are not waits to overlap.
    let cpu: Vec<Trace> = (0..5).map(|i| checkout(i, 110, 110, true)).collect();
    assert!(!kinds(&cpu).contains(&SuggestionKind::Parallelization));
    // Overlapping siblings already run concurrently.
    let concurrent = trace(
        0,
        vec![
            waiting(span("checkout", None, 0, 111)),
            waiting(span("fetch_inventory", Some(0), 0, 110)),
            waiting(span("fetch_user_profile", Some(0), 1, 110)),
        ],
    );
    assert!(!kinds(&[concurrent]).contains(&SuggestionKind::Parallelization));
}

fn request(i: u64, init: Option<u64>) -> Trace {
    let mut spans = vec![span("handle", None, 0, 300), span("work", Some(0), 0, 5)];
    if let Some(ms) = init {
        spans.push(waiting(span("load_config", Some(0), 5, ms)));
        spans.push(span("parse", Some(2), 5, 10));
    }
    trace(i, spans)
}

#[test]
fn lazy_loading_fires_on_first_request_initialisation() {
    let mut traces = vec![request(0, Some(250))];
    traces.extend((1..6).map(|i| request(i, None)));
    let all = suggest(&traces, &SuggestConfig::default());
    let l: Vec<_> = all
        .iter()
        .filter(|s| s.kind == SuggestionKind::LazyLoading)
        .collect();
    assert_eq!(l.len(), 1, "only the outermost one-time span: {l:?}");
    assert_eq!(l[0].evidence.paths, vec!["handle;load_config".to_owned()]);
    assert_eq!(l[0].saving_per_trace_ns, 250 * MS);
}

#[test]
fn lazy_loading_stays_silent_for_recurring_or_cheap_work() {
    // Runs on every request: not one-time.
    let every: Vec<Trace> = (0..6).map(|i| request(i, Some(250))).collect();
    assert!(!kinds(&every).contains(&SuggestionKind::LazyLoading));
    // One-time but cheap.
    let mut cheap = vec![request(0, Some(50))];
    cheap.extend((1..6).map(|i| request(i, None)));
    assert!(!kinds(&cheap).contains(&SuggestionKind::LazyLoading));
    // A single request says nothing about "one-time".
    assert!(!kinds(&[request(0, Some(250))]).contains(&SuggestionKind::LazyLoading));
}

#[test]
fn empty_input_gives_nothing() {
    assert!(suggest(&[], &SuggestConfig::default()).is_empty());
    let empty = Trace {
        trace_id: String::new(),
        remote_parent_span_id: None,
        start_unix_ns: 0,
        spans: Vec::new(),
    };
    assert!(suggest(&[empty], &SuggestConfig::default()).is_empty());
}
