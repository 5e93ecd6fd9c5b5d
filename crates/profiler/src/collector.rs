//! What the layer shares with the [`crate::Profiler`] handle: the sampling decision and the
//! aggregation of completed sampled traces (statistics per call path, retained traces).

use crate::hist::DurationHistogram;
use crate::profile::{Metrics, PathStats, Profile};
use crate::trace::Trace;
use parking_lot::{Mutex, RwLock};
use perfkit_core::SharedClock;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, UNIX_EPOCH};

/// Receives every completed sampled trace, outside the profiler's lock (the OTLP exporter).
pub trait TraceSink: Send + Sync {
    /// Called once per completed sampled trace, on the thread that closed its root span.
    fn on_trace(&self, trace: &Trace);
}

const FIRST_BITS_WORDS: usize = 16;

pub(crate) struct Shared {
    pub(crate) sample_rate: f64,
    threshold: u64,
    always: bool,
    sample_first: bool,
    first_bits: [AtomicU64; FIRST_BITS_WORDS],
    pub(crate) clock: SharedClock,
    roots_seen: AtomicU64,
    started: Instant,
    started_unix_ns: u64,
    pub(crate) state: Mutex<Collector>,
    pub(crate) sinks: RwLock<Vec<Arc<dyn TraceSink>>>,
    pub(crate) live: crate::layer::LiveSet,
}

impl Shared {
    pub(crate) fn new(
        sample_rate: f64,
        sample_first: bool,
        retain: usize,
        clock: SharedClock,
    ) -> Self {
        let rate = if sample_rate.is_finite() {
            sample_rate.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let threshold = (rate * (u64::MAX as f64)) as u64;
        let started = clock.now();
        let started_unix_ns = unix_ns(&clock);
        Shared {
            sample_rate: rate,
            threshold,
            always: rate >= 1.0,
            sample_first,
            first_bits: Default::default(),
            clock,
            roots_seen: AtomicU64::new(0),
            started,
            started_unix_ns,
            state: Mutex::new(Collector::new(retain)),
            sinks: RwLock::new(Vec::new()),
            live: crate::layer::LiveSet::new(),
        }
    }

    pub(crate) fn wall_unix_ns(&self) -> u64 {
        unix_ns(&self.clock)
    }

    /// The head-sampling decision for a new root span. The first root of each callsite is
    /// always sampled (so one-time initialisation on the first request is seen).
    pub(crate) fn decide_root(&self, meta: &'static tracing::Metadata<'static>) -> bool {
        self.roots_seen.fetch_add(1, Ordering::Relaxed);
        if self.sample_first {
            let key =
                (meta as *const tracing::Metadata<'static> as usize >> 4) % (FIRST_BITS_WORDS * 64);
            let mask = 1u64 << (key % 64);
            let word = &self.first_bits[key / 64];
            if word.load(Ordering::Relaxed) & mask == 0
                && word.fetch_or(mask, Ordering::Relaxed) & mask == 0
            {
                return true;
            }
        }
        self.always || (self.threshold != 0 && fastrand::u64(..) < self.threshold)
    }

    pub(crate) fn complete(&self, trace: Trace) {
        if trace.spans.is_empty() {
            return;
        }
        {
            let sinks = self.sinks.read();
            for sink in sinks.iter() {
                sink.on_trace(&trace);
            }
        }
        let paths = trace.paths();
        let selfs = trace.self_times();
        self.state.lock().add(trace, &paths, &selfs);
    }

    pub(crate) fn roots_seen(&self) -> u64 {
        self.roots_seen.load(Ordering::Relaxed)
    }

    /// Counters, without copying statistics or traces.
    pub(crate) fn metrics(&self) -> Metrics {
        let state = self.state.lock();
        let roots_seen = self.roots_seen();
        let retained = state.reservoir.len()
            + state
                .firsts
                .values()
                .filter(|f| !state.reservoir.iter().any(|t| t.trace_id == f.trace_id))
                .count();
        Metrics {
            sample_rate: self.sample_rate,
            roots_seen,
            traces_sampled: state.traces_sampled,
            spans_sampled: state.spans_sampled,
            sampled_ratio: if roots_seen == 0 {
                0.0
            } else {
                state.traces_sampled as f64 / roots_seen as f64
            },
            paths_tracked: state.paths.len() as u64,
            traces_retained: retained as u64,
        }
    }

    /// Everything measured; `with_traces: false` leaves the retained traces out (cheaper,
    /// for statistics).
    pub(crate) fn snapshot_with(&self, with_traces: bool) -> Profile {
        let duration_ns = u64::try_from(
            self.clock
                .now()
                .saturating_duration_since(self.started)
                .as_nanos(),
        )
        .unwrap_or(u64::MAX);
        let (cpus, load_average) = crate::profile::machine_load();
        let state = self.state.lock();
        let mut paths: Vec<PathStats> = state.paths.values().cloned().collect();
        paths.sort_by(|a, b| a.path.cmp(&b.path));
        let mut traces: Vec<Trace> = Vec::new();
        if with_traces {
            traces.extend(state.firsts.values().cloned());
            for t in &state.reservoir {
                if !traces.iter().any(|f| f.trace_id == t.trace_id) {
                    traces.push(t.clone());
                }
            }
        }
        traces.sort_by_key(|t| t.start_unix_ns);
        Profile {
            format: crate::profile::FORMAT.to_owned(),
            version: crate::profile::VERSION,
            perfkit_version: env!("CARGO_PKG_VERSION").to_owned(),
            sample_rate: self.sample_rate,
            started_unix_ns: self.started_unix_ns,
            duration_ns,
            roots_seen: self.roots_seen(),
            traces_sampled: state.traces_sampled,
            spans_sampled: state.spans_sampled,
            cpus,
            load_average,
            paths,
            traces,
        }
    }
}

fn unix_ns(clock: &SharedClock) -> u64 {
    clock
        .wall()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Aggregated statistics and retained traces.
pub(crate) struct Collector {
    pub(crate) paths: HashMap<String, PathStats>,
    pub(crate) traces_sampled: u64,
    pub(crate) spans_sampled: u64,
    reservoir: Vec<Trace>,
    offered: u64,
    retain: usize,
    firsts: BTreeMap<String, Trace>,
}

impl Collector {
    fn new(retain: usize) -> Self {
        Collector {
            paths: HashMap::new(),
            traces_sampled: 0,
            spans_sampled: 0,
            reservoir: Vec::new(),
            offered: 0,
            retain,
            firsts: BTreeMap::new(),
        }
    }

    fn add(&mut self, trace: Trace, paths: &[String], selfs: &[u64]) {
        self.traces_sampled += 1;
        self.spans_sampled += trace.spans.len() as u64;
        for ((span, path), &self_ns) in trace.spans.iter().zip(paths).zip(selfs) {
            let stats = match self.paths.get_mut(path.as_str()) {
                Some(s) => s,
                None => self
                    .paths
                    .entry(path.clone())
                    .or_insert_with(|| PathStats::new(path, &span.name)),
            };
            stats.count += 1;
            stats.total_ns = stats.total_ns.saturating_add(span.duration_ns);
            stats.self_ns = stats.self_ns.saturating_add(self_ns);
            stats.busy_ns = stats.busy_ns.saturating_add(span.busy_ns);
            stats.histogram.record(span.duration_ns);
        }
        if self.retain == 0 {
            return;
        }
        if !self.firsts.contains_key(trace.root_name()) {
            self.firsts
                .insert(trace.root_name().to_owned(), trace.clone());
        }
        // Reservoir sampling (algorithm R): a uniform sample of all sampled traces.
        self.offered += 1;
        if self.reservoir.len() < self.retain {
            self.reservoir.push(trace);
        } else {
            let j = fastrand::u64(..self.offered) as usize;
            if j < self.retain {
                self.reservoir[j] = trace;
            }
        }
    }
}

impl PathStats {
    pub(crate) fn new(path: &str, name: &str) -> Self {
        PathStats {
            path: path.to_owned(),
            name: name.to_owned(),
            count: 0,
            total_ns: 0,
            self_ns: 0,
            busy_ns: 0,
            histogram: DurationHistogram::new(),
        }
    }
}
