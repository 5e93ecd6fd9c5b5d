//! Optimization suggestions from detectors over sampled traces: batching (N+1), caching
//! (repeated identical spans), parallelization (sequential independent waits) and lazy
//! loading (one-time initialisation on the first request).
//!
//! Every suggestion carries its evidence (paths, counts, times over the traces analysed),
//! an estimated saving and a confidence between 0 and 1.

use crate::trace::Trace;
use perfkit_core::Severity;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

/// Detector thresholds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuggestConfig {
    /// Batching: minimum sibling spans of one name and field shape under one parent.
    pub batch_min_siblings: usize,
    /// Batching: minimum time those siblings take together.
    pub batch_min_total: Duration,
    /// Caching: minimum cumulative time of the repeated computations.
    pub cache_min_total: Duration,
    /// Caching across traces: minimum occurrences of one span and field values.
    pub cache_min_repeats: u64,
    /// Parallelization: minimum time saved by running the sequence concurrently.
    pub parallel_min_saving: Duration,
    /// Parallelization: minimum saving as a fraction of the parent's duration.
    pub parallel_min_ratio: f64,
    /// Parallelization: a span counts as waiting (not computing) below this busy ratio.
    pub parallel_max_busy_ratio: f64,
    /// Lazy loading: minimum duration of the one-time span.
    pub lazy_min_duration: Duration,
}

impl Default for SuggestConfig {
    fn default() -> Self {
        SuggestConfig {
            batch_min_siblings: 5,
            batch_min_total: Duration::from_millis(50),
            cache_min_total: Duration::from_millis(100),
            cache_min_repeats: 3,
            parallel_min_saving: Duration::from_millis(100),
            parallel_min_ratio: 0.10,
            parallel_max_busy_ratio: 0.5,
            lazy_min_duration: Duration::from_millis(100),
        }
    }
}

/// What a suggestion proposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuggestionKind {
    /// Replace N sibling calls with one batched call (N+1 pattern).
    Batching,
    /// Cache a computation repeated with the same inputs.
    Caching,
    /// Run sequential independent waits concurrently.
    Parallelization,
    /// Move one-time initialisation off the first request (preload or lazy-load it).
    LazyLoading,
}

impl SuggestionKind {
    /// The snake-case name (`batching`, `caching`, `parallelization`, `lazy_loading`).
    pub fn as_str(self) -> &'static str {
        match self {
            SuggestionKind::Batching => "batching",
            SuggestionKind::Caching => "caching",
            SuggestionKind::Parallelization => "parallelization",
            SuggestionKind::LazyLoading => "lazy_loading",
        }
    }
}

/// The measurements behind a suggestion, over the traces analysed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// Call paths involved.
    pub paths: Vec<String>,
    /// Traces where the pattern occurred.
    pub traces: u64,
    /// Traces analysed that could show it (with the same parent path).
    pub traces_eligible: u64,
    /// Spans involved, summed over those traces.
    pub spans: u64,
    /// Time those spans took, summed, ns.
    pub total_ns: u64,
    /// A detail, such as the repeated field values or the sequence of span names.
    pub detail: String,
}

/// One suggestion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suggestion {
    /// What to do.
    pub kind: SuggestionKind,
    /// One human sentence.
    pub message: String,
    /// What was measured.
    pub evidence: Evidence,
    /// Estimated time saved per affected request (trace), ns.
    pub saving_per_trace_ns: u64,
    /// Estimated time saved over the traces analysed, ns.
    pub saving_total_ns: u64,
    /// Confidence between 0 and 1.
    pub confidence: f64,
    /// `warning` for high confidence and a large saving, `info` otherwise.
    pub severity: Severity,
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Runs every detector over `traces`; suggestions sorted by total saving, largest first.
pub fn suggest(traces: &[Trace], config: &SuggestConfig) -> Vec<Suggestion> {
    let prepared: Vec<Prepared<'_>> = traces
        .iter()
        .filter(|t| !t.spans.is_empty())
        .map(Prepared::new)
        .collect();
    let mut out = batching(&prepared, config);
    // Spans already flagged as N+1 get the batching advice, not a second one to cache them.
    let batched: BTreeSet<String> = out
        .iter()
        .flat_map(|s| s.evidence.paths.iter().cloned())
        .collect();
    out.extend(
        caching(&prepared, config)
            .into_iter()
            .filter(|s| !s.evidence.paths.iter().any(|p| batched.contains(p))),
    );
    out.extend(parallelization(&prepared, config));
    out.extend(lazy_loading(&prepared, config));
    for s in &mut out {
        s.confidence = s.confidence.clamp(0.0, 1.0);
        s.severity = if s.confidence >= 0.6 && s.saving_per_trace_ns >= 10_000_000 {
            Severity::Warning
        } else {
            Severity::Info
        };
    }
    out.sort_by(|a, b| {
        b.saving_total_ns
            .cmp(&a.saving_total_ns)
            .then(a.kind.cmp(&b.kind))
            .then(a.evidence.paths.cmp(&b.evidence.paths))
    });
    out
}

struct Prepared<'a> {
    trace: &'a Trace,
    paths: Vec<String>,
    children: Vec<Vec<usize>>,
}

impl<'a> Prepared<'a> {
    fn new(trace: &'a Trace) -> Self {
        Prepared {
            trace,
            paths: trace.paths(),
            children: trace.children(),
        }
    }

    /// Traces per path: how many traces contain each path at least once.
    fn path_set(&self) -> BTreeSet<&str> {
        self.paths.iter().map(String::as_str).collect()
    }
}

fn traces_with_path(prepared: &[Prepared<'_>]) -> HashMap<String, u64> {
    let mut out: HashMap<String, u64> = HashMap::new();
    for p in prepared {
        for path in p.path_set() {
            *out.entry(path.to_owned()).or_default() += 1;
        }
    }
    out
}

#[derive(Default)]
struct Acc {
    traces: u64,
    spans: u64,
    total_ns: u64,
    saving_ns: u64,
}

fn batching(prepared: &[Prepared<'_>], c: &SuggestConfig) -> Vec<Suggestion> {
    let eligible = traces_with_path(prepared);
    let mut acc: BTreeMap<(String, String), Acc> = BTreeMap::new();
    for p in prepared {
        let mut seen_here: BTreeSet<(String, String)> = BTreeSet::new();
        for (parent, kids) in p.children.iter().enumerate() {
            let mut groups: BTreeMap<(&str, String), Vec<usize>> = BTreeMap::new();
            for &k in kids {
                let s = &p.trace.spans[k];
                groups
                    .entry((&s.name, s.field_shape()))
                    .or_default()
                    .push(k);
            }
            for ((name, shape), members) in groups {
                let total: u64 = members.iter().fold(0u64, |acc, &k| {
                    acc.saturating_add(p.trace.spans[k].duration_ns)
                });
                if members.len() < c.batch_min_siblings || total < nanos(c.batch_min_total) {
                    continue;
                }
                let longest = members
                    .iter()
                    .map(|&k| p.trace.spans[k].duration_ns)
                    .max()
                    .unwrap_or(0);
                let key = (format!("{};{name}", p.paths[parent]), shape.clone());
                let a = acc.entry(key.clone()).or_default();
                if seen_here.insert(key) {
                    a.traces = a.traces.saturating_add(1);
                }
                a.spans = a.spans.saturating_add(members.len() as u64);
                a.total_ns = a.total_ns.saturating_add(total);
                // One batched call is assumed to cost about as much as the longest single one.
                a.saving_ns = a.saving_ns.saturating_add(total - longest);
            }
        }
    }
    acc.into_iter()
        .map(|((path, shape), a)| {
            let parent = path.rsplit_once(';').map_or("", |(p, _)| p);
            let eligible = eligible
                .get(parent)
                .copied()
                .unwrap_or(a.traces)
                .max(a.traces);
            let per_trace = a.saving_ns / a.traces.max(1);
            let avg_n = a.spans as f64 / a.traces.max(1) as f64;
            let name = path.rsplit(';').next().unwrap_or("");
            Suggestion {
                kind: SuggestionKind::Batching,
                message: format!(
                    "{name} runs {avg_n:.1} times under one parent ({parent}) with the same \
                     fields ({shape}): batch it into one call to save about {:.1} ms per request",
                    ms(per_trace)
                ),
                evidence: Evidence {
                    paths: vec![path.clone()],
                    traces: a.traces,
                    traces_eligible: eligible,
                    spans: a.spans,
                    total_ns: a.total_ns,
                    detail: format!("field shape: {shape}"),
                },
                saving_per_trace_ns: per_trace,
                saving_total_ns: a.saving_ns,
                confidence: 0.5 + 0.4 * (a.traces as f64 / eligible.max(1) as f64),
                severity: Severity::Info,
            }
        })
        .collect()
}

fn caching(prepared: &[Prepared<'_>], c: &SuggestConfig) -> Vec<Suggestion> {
    // Key: (path, field values). Within a trace: repeats of the key in one trace. Across
    // traces: occurrences over all traces (only spans that record fields: a field-less span
    // repeating across requests is ordinary work, not evidently the same computation).
    #[derive(Default)]
    struct KeyAcc {
        count: u64,
        total_ns: u64,
        within_repeats: u64,
        within_ns: u64,
        traces: BTreeSet<usize>,
    }
    let mut keys: BTreeMap<(String, String), KeyAcc> = BTreeMap::new();
    for (ti, p) in prepared.iter().enumerate() {
        let mut here: HashMap<(&str, String), (u64, u64)> = HashMap::new();
        for (i, s) in p.trace.spans.iter().enumerate() {
            if i == 0 {
                continue; // roots carry request identity; never "the same computation"
            }
            let e = here.entry((&p.paths[i], s.field_values())).or_default();
            e.0 = e.0.saturating_add(1);
            e.1 = e.1.saturating_add(s.duration_ns);
        }
        for ((path, values), (n, total)) in here {
            let k = keys.entry((path.to_owned(), values)).or_default();
            k.count = k.count.saturating_add(n);
            k.total_ns = k.total_ns.saturating_add(total);
            k.traces.insert(ti);
            if n >= 2 {
                k.within_repeats = k.within_repeats.saturating_add(n - 1);
                k.within_ns = k.within_ns.saturating_add(total - total / n);
            }
        }
    }
    #[derive(Default)]
    struct PathAcc {
        keys: u64,
        repeats: u64,
        spans: u64,
        total_ns: u64,
        saving_ns: u64,
        within: u64,
        traces: BTreeSet<usize>,
        top: (u64, String),
    }
    let mut by_path: BTreeMap<String, PathAcc> = BTreeMap::new();
    for ((path, values), k) in keys {
        let across_ok = !values.is_empty() && k.count >= c.cache_min_repeats;
        let (repeats, saving) = if across_ok {
            // Everything but the first computation of each key could be served from a cache.
            (k.count - 1, k.total_ns - k.total_ns / k.count)
        } else if k.within_repeats > 0 {
            (k.within_repeats, k.within_ns)
        } else {
            continue;
        };
        let a = by_path.entry(path).or_default();
        a.keys = a.keys.saturating_add(1);
        a.repeats = a.repeats.saturating_add(repeats);
        a.spans = a.spans.saturating_add(k.count);
        a.total_ns = a.total_ns.saturating_add(k.total_ns);
        a.saving_ns = a.saving_ns.saturating_add(saving);
        a.within = a.within.saturating_add(k.within_repeats);
        a.traces.extend(k.traces.iter().copied());
        if k.count > a.top.0 {
            a.top = (k.count, values);
        }
    }
    by_path
        .into_iter()
        .filter(|(_, a)| a.saving_ns >= nanos(c.cache_min_total))
        .map(|(path, a)| {
            let traces = a.traces.len() as u64;
            let name = path.rsplit(';').next().unwrap_or("");
            let within_share = a.within as f64 / a.repeats.max(1) as f64;
            let top = if a.top.1.is_empty() {
                "no fields".to_owned()
            } else {
                a.top.1.clone()
            };
            Suggestion {
                kind: SuggestionKind::Caching,
                message: format!(
                    "{name} ran {} times with the same field values ({} distinct, most often \
                     {top}): cache its result to save about {:.1} ms over these traces",
                    a.spans,
                    a.keys,
                    ms(a.saving_ns)
                ),
                evidence: Evidence {
                    paths: vec![path.clone()],
                    traces,
                    traces_eligible: prepared.len() as u64,
                    spans: a.spans,
                    total_ns: a.total_ns,
                    detail: format!(
                        "{} repeated computations, {} of them within one trace; top key: {top}",
                        a.repeats, a.within
                    ),
                },
                saving_per_trace_ns: a.saving_ns / traces.max(1),
                saving_total_ns: a.saving_ns,
                // Repeats inside one request are certainly the same work; across requests
                // the inputs match but freshness requirements are unknown.
                confidence: 0.5 + 0.4 * within_share,
                severity: Severity::Info,
            }
        })
        .collect()
}

fn parallelization(prepared: &[Prepared<'_>], c: &SuggestConfig) -> Vec<Suggestion> {
    let eligible = traces_with_path(prepared);
    let mut acc: BTreeMap<(String, String), (Acc, u64)> = BTreeMap::new();
    for p in prepared {
        for (parent, kids) in p.children.iter().enumerate() {
            let waiting = |k: usize| {
                let s = &p.trace.spans[k];
                s.duration_ns > 0
                    && (s.busy_ns as f64) < c.parallel_max_busy_ratio * s.duration_ns as f64
            };
            // Maximal runs of consecutive, non-overlapping, waiting siblings with distinct
            // names (same-name repeats are the batching detector's business).
            let mut runs: Vec<Vec<usize>> = Vec::new();
            let mut run: Vec<usize> = Vec::new();
            for &k in kids {
                let s = &p.trace.spans[k];
                let fits = waiting(k)
                    && run
                        .last()
                        .is_none_or(|&l| s.start_ns >= p.trace.spans[l].end_ns())
                    && !run.iter().any(|&r| p.trace.spans[r].name == s.name);
                if !fits {
                    if run.len() >= 2 {
                        runs.push(std::mem::take(&mut run));
                    }
                    run.clear();
                    if waiting(k) {
                        run.push(k);
                    }
                    continue;
                }
                run.push(k);
            }
            if run.len() >= 2 {
                runs.push(run);
            }
            let parent_ns = p.trace.spans[parent].duration_ns;
            for run in runs {
                let durs: Vec<u64> = run.iter().map(|&k| p.trace.spans[k].duration_ns).collect();
                let sum: u64 = durs.iter().fold(0u64, |acc, d| acc.saturating_add(*d));
                let saving = sum - durs.iter().copied().max().unwrap_or(0);
                if saving < nanos(c.parallel_min_saving)
                    || (saving as f64) < c.parallel_min_ratio * parent_ns as f64
                {
                    continue;
                }
                let names: Vec<&str> = run
                    .iter()
                    .map(|&k| p.trace.spans[k].name.as_str())
                    .collect();
                let key = (p.paths[parent].clone(), names.join(" -> "));
                let (a, parent_total) = acc.entry(key).or_default();
                a.traces = a.traces.saturating_add(1);
                a.spans = a.spans.saturating_add(run.len() as u64);
                a.total_ns = a.total_ns.saturating_add(sum);
                a.saving_ns = a.saving_ns.saturating_add(saving);
                *parent_total = parent_total.saturating_add(parent_ns);
            }
        }
    }
    acc.into_iter()
        .map(|((parent, seq), (a, parent_total))| {
            let per = a.saving_ns / a.traces.max(1);
            let share = a.saving_ns as f64 / parent_total.max(1) as f64;
            let el = eligible
                .get(&parent)
                .copied()
                .unwrap_or(a.traces)
                .max(a.traces);
            let paths = seq.split(" -> ").map(|n| format!("{parent};{n}")).collect();
            Suggestion {
                kind: SuggestionKind::Parallelization,
                message: format!(
                    "{seq} run one after the other under {parent} and mostly wait: running them \
                     concurrently would save about {:.1} ms ({:.0} % of {parent}) per request",
                    ms(per),
                    share * 100.0
                ),
                evidence: Evidence {
                    paths,
                    traces: a.traces,
                    traces_eligible: el,
                    spans: a.spans,
                    total_ns: a.total_ns,
                    detail: format!("sequence: {seq}"),
                },
                saving_per_trace_ns: per,
                saving_total_ns: a.saving_ns,
                // Data dependencies between the calls cannot be seen in timings alone.
                confidence: 0.3 + 0.4 * (a.traces as f64 / el.max(1) as f64),
                severity: Severity::Info,
            }
        })
        .collect()
}

fn lazy_loading(prepared: &[Prepared<'_>], c: &SuggestConfig) -> Vec<Suggestion> {
    // The first trace of each root name, and the paths the later ones contain.
    let mut first: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, p) in prepared.iter().enumerate() {
        let root = p.trace.root_name();
        match first.get(root) {
            Some(&j) if prepared[j].trace.start_unix_ns <= p.trace.start_unix_ns => {}
            _ => {
                first.insert(root, i);
            }
        }
    }
    let mut out = Vec::new();
    for (root, fi) in first {
        let later: Vec<&Prepared<'_>> = prepared
            .iter()
            .enumerate()
            .filter(|(i, p)| *i != fi && p.trace.root_name() == root)
            .map(|(_, p)| p)
            .collect();
        if later.is_empty() {
            continue; // a single request says nothing about "one-time"
        }
        let seen_later: BTreeSet<&str> = later.iter().flat_map(|p| p.path_set()).collect();
        let p = &prepared[fi];
        for (i, s) in p.trace.spans.iter().enumerate().skip(1) {
            let path = &p.paths[i];
            if s.duration_ns < nanos(c.lazy_min_duration) || seen_later.contains(path.as_str()) {
                continue;
            }
            // Report the outermost one-time span only.
            let parent_one_time = s
                .parent
                .is_some_and(|q| q != 0 && !seen_later.contains(p.paths[q as usize].as_str()));
            if parent_one_time {
                continue;
            }
            out.push(Suggestion {
                kind: SuggestionKind::LazyLoading,
                message: format!(
                    "{} ran only on the first {root} request and took {:.1} ms: initialise it \
                     at startup or in the background (preload) instead of on a request",
                    s.name,
                    ms(s.duration_ns)
                ),
                evidence: Evidence {
                    paths: vec![path.clone()],
                    traces: 1,
                    traces_eligible: later.len() as u64 + 1,
                    spans: 1,
                    total_ns: s.duration_ns,
                    detail: format!("absent from {} later {root} traces", later.len()),
                },
                saving_per_trace_ns: s.duration_ns,
                saving_total_ns: s.duration_ns,
                confidence: 0.4 + 0.5 * (1.0 - 1.0 / (later.len() as f64 + 1.0)),
                severity: Severity::Info,
            });
        }
    }
    out
}
