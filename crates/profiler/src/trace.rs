//! Sampled traces as the profiler keeps and saves them: a root span and its descendants,
//! with start offsets, durations, busy time and recorded field values.

use serde::{Deserialize, Serialize};

/// Call paths keep at most this many span names (recursion cannot blow up their size).
pub const MAX_PATH_DEPTH: usize = 64;

/// One span of a sampled trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpanRecord {
    /// The span's name.
    pub name: String,
    /// Index of the parent span in [`Trace::spans`]; `None` for the root.
    pub parent: Option<u32>,
    /// The span id (random, non-zero; the OTLP span id).
    #[serde(default)]
    pub span_id: u64,
    /// Start, in nanoseconds after the trace's root started.
    pub start_ns: u64,
    /// Wall time from creation to close, in nanoseconds.
    pub duration_ns: u64,
    /// Time the span was entered (running), in nanoseconds; the rest of its duration it
    /// was idle (an async span waiting).
    pub busy_ns: u64,
    /// Recorded field values, in recording order, formatted as text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<(String, String)>,
}

impl SpanRecord {
    /// End offset in nanoseconds after the trace start.
    pub fn end_ns(&self) -> u64 {
        self.start_ns.saturating_add(self.duration_ns)
    }

    /// Idle time: duration minus busy time.
    pub fn idle_ns(&self) -> u64 {
        self.duration_ns.saturating_sub(self.busy_ns)
    }

    /// The names of the recorded fields joined with `,`: the span's "field shape".
    pub fn field_shape(&self) -> String {
        let mut names: Vec<&str> = self.fields.iter().map(|(k, _)| k.as_str()).collect();
        names.sort_unstable();
        names.join(",")
    }

    /// The recorded fields as `k=v` joined with `,`, sorted by field name.
    pub fn field_values(&self) -> String {
        let mut kv: Vec<String> = self
            .fields
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        kv.sort_unstable();
        kv.join(",")
    }
}

/// A whole sampled trace: the root span first, every parent before its children.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trace {
    /// The trace id (random, 128 bits, as 32 lowercase hex digits; the OTLP trace id).
    pub trace_id: String,
    /// The span id of the remote parent when the root continued a trace from a W3C
    /// `traceparent` (recorded as the root span's `traceparent` field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_parent_span_id: Option<u64>,
    /// Wall-clock start of the root span, nanoseconds since the Unix epoch.
    pub start_unix_ns: u64,
    /// The spans; `spans[0]` is the root.
    pub spans: Vec<SpanRecord>,
}

impl Trace {
    /// The root span's name (empty for an empty trace).
    pub fn root_name(&self) -> &str {
        self.spans.first().map_or("", |s| s.name.as_str())
    }

    /// The root span's duration in nanoseconds.
    pub fn duration_ns(&self) -> u64 {
        self.spans.first().map_or(0, |s| s.duration_ns)
    }

    /// Call paths (`root;parent;span`) of every span, by index. Paths deeper than
    /// [`MAX_PATH_DEPTH`] names end in `;[deeper]`, which then stands for everything below.
    pub fn paths(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::with_capacity(self.spans.len());
        let mut depth: Vec<usize> = Vec::with_capacity(self.spans.len());
        for s in &self.spans {
            let parent = s.parent.map(|p| p as usize).filter(|&p| p < out.len());
            let (path, d) = match parent {
                Some(p) => {
                    let d = depth[p] + 1;
                    let path = match d.cmp(&MAX_PATH_DEPTH) {
                        std::cmp::Ordering::Less => format!("{};{}", out[p], s.name),
                        std::cmp::Ordering::Equal => format!("{};[deeper]", out[p]),
                        std::cmp::Ordering::Greater => out[p].clone(),
                    };
                    (path, d)
                }
                None => (s.name.clone(), 0),
            };
            out.push(path);
            depth.push(d);
        }
        out
    }

    /// Children indices of every span, in start order.
    pub fn children(&self) -> Vec<Vec<usize>> {
        let mut out = vec![Vec::new(); self.spans.len()];
        for (i, s) in self.spans.iter().enumerate() {
            if let Some(c) = s.parent.and_then(|p| out.get_mut(p as usize)) {
                c.push(i);
            }
        }
        for c in &mut out {
            c.sort_by_key(|&i| self.spans[i].start_ns);
        }
        out
    }

    /// Self time of every span: its duration minus the union of its children's intervals
    /// (so concurrent async children are not subtracted twice).
    pub fn self_times(&self) -> Vec<u64> {
        let children = self.children();
        self.spans
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let mut covered = 0u64;
                let mut cur: Option<(u64, u64)> = None;
                for &c in &children[i] {
                    let cs = &self.spans[c];
                    let (a, b) = (cs.start_ns.max(s.start_ns), cs.end_ns().min(s.end_ns()));
                    if b <= a {
                        continue;
                    }
                    cur = match cur {
                        Some((x, y)) if a <= y => Some((x, y.max(b))),
                        Some((x, y)) => {
                            covered += y - x;
                            Some((a, b))
                        }
                        None => Some((a, b)),
                    };
                }
                if let Some((x, y)) = cur {
                    covered += y - x;
                }
                s.duration_ns.saturating_sub(covered)
            })
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A span for hand-built test traces.
    pub(crate) fn span(name: &str, parent: Option<u32>, start_ms: u64, dur_ms: u64) -> SpanRecord {
        SpanRecord {
            name: name.to_owned(),
            parent,
            span_id: 0,
            start_ns: start_ms * 1_000_000,
            duration_ns: dur_ms * 1_000_000,
            busy_ns: dur_ms * 1_000_000,
            fields: Vec::new(),
        }
    }

    /// Reference model: count the uncovered milliseconds of each span one by one.
    fn brute_self_ms(t: &Trace) -> Vec<u64> {
        let ms = 1_000_000;
        t.spans
            .iter()
            .enumerate()
            .map(|(i, s)| {
                (s.start_ns / ms..s.end_ns() / ms)
                    .filter(|&tick| {
                        !t.spans.iter().any(|c| {
                            c.parent == Some(i as u32)
                                && c.start_ns / ms <= tick
                                && tick < c.end_ns() / ms
                        })
                    })
                    .count() as u64
            })
            .collect()
    }

    #[test]
    fn self_time_matches_the_reference_model_on_random_trees() {
        let mut rng = fastrand::Rng::with_seed(11);
        for _ in 0..300 {
            let mut spans = vec![span("root", None, 0, rng.u64(1..60))];
            for _ in 0..rng.usize(0..12) {
                let p = rng.usize(0..spans.len());
                let (ps, pd) = (
                    spans[p].start_ns / 1_000_000,
                    spans[p].duration_ns / 1_000_000,
                );
                // Children may overlap each other and even outlive their parent.
                let start = ps + rng.u64(0..=pd);
                spans.push(span("c", Some(p as u32), start, rng.u64(0..30)));
            }
            let t = Trace {
                trace_id: String::new(),
                remote_parent_span_id: None,
                start_unix_ns: 0,
                spans,
            };
            let got: Vec<u64> = t.self_times().iter().map(|ns| ns / 1_000_000).collect();
            assert_eq!(got, brute_self_ms(&t), "{t:?}");
        }
    }

    #[test]
    fn deep_recursion_keeps_paths_bounded() {
        let mut spans = vec![span("root", None, 0, 10)];
        for i in 0..5_000u32 {
            spans.push(span("recurse", Some(i), 0, 10));
        }
        let t = Trace {
            trace_id: String::new(),
            remote_parent_span_id: None,
            start_unix_ns: 0,
            spans,
        };
        let paths = t.paths();
        let longest = paths.iter().map(|p| p.split(';').count()).max().unwrap();
        assert_eq!(longest, MAX_PATH_DEPTH + 1);
        assert!(paths[5_000].ends_with(";[deeper]"));
        assert_eq!(paths[5_000], paths[100]);
    }

    #[test]
    fn self_time_uses_the_union_of_children() {
        let t = Trace {
            trace_id: "0".repeat(32),
            remote_parent_span_id: None,
            start_unix_ns: 0,
            spans: vec![
                span("root", None, 0, 100),
                span("a", Some(0), 10, 30),
                span("b", Some(0), 20, 30), // overlaps a: union is 10..50
                span("c", Some(1), 10, 5),
            ],
        };
        assert_eq!(
            t.self_times(),
            vec![60_000_000, 25_000_000, 30_000_000, 5_000_000]
        );
        assert_eq!(t.paths()[3], "root;a;c");
        assert_eq!(t.children()[0], vec![1, 2]);
    }
}
