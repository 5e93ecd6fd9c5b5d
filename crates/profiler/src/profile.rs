//! Profiles: the versioned, saved form of what the profiler measured (statistics per call
//! path with their duration histograms, plus a uniform sample of whole traces), and the
//! summaries computed from them.
//!
//! # File format (version 1)
//!
//! A profile file is one JSON object:
//!
//! ```text
//! {
//!   "format": "perfkit-profile",        // always this string
//!   "version": 1,                        // bumped on incompatible changes
//!   "perfkit_version": "0.1.0",          // the library that wrote it
//!   "sample_rate": 0.1,                  // head-sampling rate of traces
//!   "started_unix_ns": 1700000000000000000,
//!   "duration_ns": 10000000000,          // how long the profiler ran
//!   "roots_seen": 1500,                  // root spans seen, sampled or not
//!   "traces_sampled": 150,
//!   "spans_sampled": 1800,
//!   "cpus": 2, "load_average": 0.4,      // optional: the machine when it was taken
//!   "paths": [                           // one entry per call path, sorted by path
//!     { "path": "checkout;fetch_inventory", "name": "fetch_inventory",
//!       "count": 22, "total_ns": 2420000000, "self_ns": 2420000000, "busy_ns": 90000,
//!       "histogram": { "sigfig": 2, "buckets": [[110100479, 22]] } }
//!   ],
//!   "traces": [                          // a uniform sample of sampled traces
//!     { "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "start_unix_ns": 1700000000000000000,
//!       "spans": [ { "name": "checkout", "parent": null, "span_id": 1234, "start_ns": 0,
//!                    "duration_ns": 221000000, "busy_ns": 600000,
//!                    "fields": [["id", "17"]] } ] }
//!   ]
//! }
//! ```
//!
//! Histograms are HDR histograms of durations in nanoseconds with 2 significant digits;
//! each bucket is `[highest equivalent value in ns, count]`. In a trace, `spans[0]` is the
//! root, every span's `parent` is an index into `spans` that comes before it, and times are
//! nanoseconds after the root's start. Unknown fields are ignored when reading, so later
//! minor versions can add fields.

use crate::hist::DurationHistogram;
use crate::trace::Trace;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The `format` field of every profile file.
pub const FORMAT: &str = "perfkit-profile";
/// The profile file version this library writes and reads.
pub const VERSION: u32 = 1;

/// Why a profile could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// Reading or writing the file failed.
    #[error("cannot access profile {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid profile JSON.
    #[error("{path}: not a valid perfkit profile")]
    Parse {
        /// The file (`<reader>` when read from a stream).
        path: PathBuf,
        /// The cause, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// The file is JSON but not a perfkit profile.
    #[error("{path}: not a perfkit profile (format field is {found:?}, expected {FORMAT:?})")]
    Format {
        /// The file.
        path: PathBuf,
        /// The format field found.
        found: String,
    },
    /// The profile's version is not supported.
    #[error(
        "{path}: profile version {found} is not supported (this perfkit reads version {VERSION})"
    )]
    Version {
        /// The file.
        path: PathBuf,
        /// The version found.
        found: u32,
    },
}

/// Statistics of one call path (`root;parent;span`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PathStats {
    /// The call path, span names joined with `;` from the root.
    pub path: String,
    /// The last span name of the path.
    pub name: String,
    /// Number of sampled spans on this path.
    pub count: u64,
    /// Sum of their durations (wall time), in nanoseconds.
    pub total_ns: u64,
    /// Sum of their self times (duration minus time covered by children), in nanoseconds.
    pub self_ns: u64,
    /// Sum of their busy (entered) time, in nanoseconds; idle is `total_ns - busy_ns`.
    pub busy_ns: u64,
    /// Histogram of their durations.
    pub histogram: DurationHistogram,
}

/// A saved or live profile. See the [module docs](self) for the file format.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Profile {
    /// Always [`FORMAT`].
    pub format: String,
    /// The file version, [`VERSION`].
    pub version: u32,
    /// The perfkit version that wrote it.
    #[serde(default)]
    pub perfkit_version: String,
    /// Head-sampling rate of traces.
    pub sample_rate: f64,
    /// When profiling started, nanoseconds since the Unix epoch.
    #[serde(default)]
    pub started_unix_ns: u64,
    /// How long the profiler ran, in nanoseconds.
    #[serde(default)]
    pub duration_ns: u64,
    /// Root spans seen, sampled or not.
    #[serde(default)]
    pub roots_seen: u64,
    /// Traces sampled.
    pub traces_sampled: u64,
    /// Spans in sampled traces.
    pub spans_sampled: u64,
    /// CPUs available to the process when the profile was taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<u32>,
    /// The machine's one-minute load average when the profile was taken (Linux), so a diff
    /// can say when two profiles ran under different load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_average: Option<f64>,
    /// Statistics per call path, sorted by path.
    pub paths: Vec<PathStats>,
    /// A uniform sample of whole sampled traces (plus the first of each root), by start.
    #[serde(default)]
    pub traces: Vec<Trace>,
}

/// Statistics of one span name or call path, as in [`Summary`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpanStats {
    /// The span name.
    pub name: String,
    /// The call path (for per-path statistics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Sampled spans.
    pub count: u64,
    /// Total wall time, ns.
    pub total_ns: u64,
    /// Total self time, ns.
    pub self_ns: u64,
    /// Total busy (entered) time, ns.
    pub busy_ns: u64,
    /// Total idle time (alive but not entered: an async span waiting), ns.
    pub idle_ns: u64,
    /// Mean duration, ns.
    pub mean_ns: u64,
    /// Median duration, ns.
    pub p50_ns: u64,
    /// 90th percentile duration, ns.
    pub p90_ns: u64,
    /// 99th percentile duration, ns.
    pub p99_ns: u64,
    /// Maximum duration, ns.
    pub max_ns: u64,
}

impl SpanStats {
    fn from_parts(name: &str, path: Option<&str>, agg: &PathStats) -> Self {
        let h = &agg.histogram;
        SpanStats {
            name: name.to_owned(),
            path: path.map(str::to_owned),
            count: agg.count,
            total_ns: agg.total_ns,
            self_ns: agg.self_ns,
            busy_ns: agg.busy_ns.min(agg.total_ns),
            idle_ns: agg.total_ns.saturating_sub(agg.busy_ns),
            mean_ns: agg.total_ns.checked_div(agg.count).unwrap_or(0),
            p50_ns: h.quantile(0.5),
            p90_ns: h.quantile(0.9),
            p99_ns: h.quantile(0.99),
            max_ns: h.max(),
        }
    }
}

/// Span statistics per name and per call path, sorted by total time, largest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Head-sampling rate.
    pub sample_rate: f64,
    /// How long the profiler ran, in seconds.
    pub duration_secs: f64,
    /// Root spans seen, sampled or not.
    pub roots_seen: u64,
    /// Traces sampled.
    pub traces_sampled: u64,
    /// Spans in sampled traces.
    pub spans_sampled: u64,
    /// Per span name (a name on several paths is merged).
    pub spans: Vec<SpanStats>,
    /// Per call path.
    pub paths: Vec<SpanStats>,
}

/// The machine's CPU count and one-minute load average (Linux `/proc/loadavg`), if known.
pub fn machine_load() -> (Option<u32>, Option<f64>) {
    let cpus = std::thread::available_parallelism()
        .ok()
        .and_then(|n| u32::try_from(n.get()).ok());
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .filter(|l| l.is_finite() && *l >= 0.0);
    (cpus, load)
}

/// Counters describing the profiler itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Head-sampling rate.
    pub sample_rate: f64,
    /// Root spans seen, sampled or not.
    pub roots_seen: u64,
    /// Traces sampled.
    pub traces_sampled: u64,
    /// Spans in sampled traces.
    pub spans_sampled: u64,
    /// Sampled traces over roots seen.
    pub sampled_ratio: f64,
    /// Distinct call paths tracked.
    pub paths_tracked: u64,
    /// Whole traces retained for exports and suggestions.
    pub traces_retained: u64,
}

impl Profile {
    /// An empty profile (no paths, no traces) at `sample_rate`.
    pub fn empty(sample_rate: f64) -> Self {
        Profile {
            format: FORMAT.to_owned(),
            version: VERSION,
            perfkit_version: env!("CARGO_PKG_VERSION").to_owned(),
            sample_rate,
            started_unix_ns: 0,
            duration_ns: 0,
            roots_seen: 0,
            traces_sampled: 0,
            spans_sampled: 0,
            cpus: None,
            load_average: None,
            paths: Vec::new(),
            traces: Vec::new(),
        }
    }

    /// Builds a profile from whole traces (statistics computed from them): for tests,
    /// imports and tools.
    pub fn from_traces(sample_rate: f64, traces: Vec<Trace>) -> Self {
        let mut paths: BTreeMap<String, PathStats> = BTreeMap::new();
        let mut spans = 0u64;
        for t in &traces {
            spans += t.spans.len() as u64;
            for ((s, path), self_ns) in t.spans.iter().zip(t.paths()).zip(t.self_times()) {
                let e = paths
                    .entry(path.clone())
                    .or_insert_with(|| PathStats::new(&path, &s.name));
                e.count += 1;
                e.total_ns = e.total_ns.saturating_add(s.duration_ns);
                e.self_ns = e.self_ns.saturating_add(self_ns);
                e.busy_ns = e.busy_ns.saturating_add(s.busy_ns);
                e.histogram.record(s.duration_ns);
            }
        }
        let mut p = Profile::empty(sample_rate);
        p.roots_seen = traces.len() as u64;
        p.traces_sampled = traces.len() as u64;
        p.spans_sampled = spans;
        p.paths = paths.into_values().collect();
        p.traces = traces;
        p
    }

    /// Writes the profile as JSON.
    pub fn to_writer(&self, w: impl Write) -> Result<(), serde_json::Error> {
        serde_json::to_writer(w, self)
    }

    /// Saves the profile to `path` (JSON, see the module docs).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), ProfileError> {
        let path = path.as_ref();
        let io = |source| ProfileError::Io {
            path: path.to_owned(),
            source,
        };
        let file = std::fs::File::create(path).map_err(io)?;
        let mut w = std::io::BufWriter::new(file);
        self.to_writer(&mut w).map_err(|e| ProfileError::Parse {
            path: path.to_owned(),
            source: e,
        })?;
        w.flush().map_err(io)
    }

    /// Reads a profile from JSON text, checking format and version.
    pub fn from_json(text: &str, path: &Path) -> Result<Self, ProfileError> {
        #[derive(Deserialize)]
        struct Header {
            format: Option<String>,
            version: Option<u32>,
        }
        let parse = |source| ProfileError::Parse {
            path: path.to_owned(),
            source,
        };
        let header: Header = serde_json::from_str(text).map_err(parse)?;
        match header.format.as_deref() {
            Some(FORMAT) => {}
            other => {
                return Err(ProfileError::Format {
                    path: path.to_owned(),
                    found: other.unwrap_or("<missing>").to_owned(),
                });
            }
        }
        match header.version {
            Some(VERSION) => {}
            other => {
                return Err(ProfileError::Version {
                    path: path.to_owned(),
                    found: other.unwrap_or(0),
                });
            }
        }
        let profile: Profile = serde_json::from_str(text).map_err(parse)?;
        profile.validate(path)?;
        Ok(profile)
    }

    /// Reads a profile from a reader.
    pub fn from_reader(mut r: impl Read) -> Result<Self, ProfileError> {
        let path = PathBuf::from("<reader>");
        let mut text = String::new();
        r.read_to_string(&mut text)
            .map_err(|source| ProfileError::Io {
                path: path.clone(),
                source,
            })?;
        Self::from_json(&text, &path)
    }

    /// Loads a profile saved with [`Profile::save`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ProfileError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_json(&text, path)
    }

    /// Checks the trace structure (parents before children) so analyses can index freely.
    fn validate(&self, path: &Path) -> Result<(), ProfileError> {
        for (ti, t) in self.traces.iter().enumerate() {
            for (i, s) in t.spans.iter().enumerate() {
                let ok = match s.parent {
                    None => i == 0,
                    Some(p) => (p as usize) < i,
                };
                if !ok {
                    let msg = format!(
                        "trace {ti}: span {i} ({:?}) must have a parent listed before it \
                         (only span 0 is the root)",
                        s.name
                    );
                    return Err(ProfileError::Parse {
                        path: path.to_owned(),
                        source: serde::de::Error::custom(msg),
                    });
                }
            }
        }
        Ok(())
    }

    /// Span statistics per name and per call path.
    pub fn summary(&self) -> Summary {
        let mut by_name: BTreeMap<&str, PathStats> = BTreeMap::new();
        let mut paths = Vec::with_capacity(self.paths.len());
        for p in &self.paths {
            paths.push(SpanStats::from_parts(&p.name, Some(&p.path), p));
            let e = by_name
                .entry(p.name.as_str())
                .or_insert_with(|| PathStats::new(&p.name, &p.name));
            e.count = e.count.saturating_add(p.count);
            e.total_ns = e.total_ns.saturating_add(p.total_ns);
            e.self_ns = e.self_ns.saturating_add(p.self_ns);
            e.busy_ns = e.busy_ns.saturating_add(p.busy_ns);
            e.histogram.merge(&p.histogram);
        }
        let mut spans: Vec<SpanStats> = by_name
            .iter()
            .map(|(name, agg)| SpanStats::from_parts(name, None, agg))
            .collect();
        spans.sort_by(|a, b| b.total_ns.cmp(&a.total_ns).then(a.name.cmp(&b.name)));
        paths.sort_by(|a, b| b.total_ns.cmp(&a.total_ns).then(a.path.cmp(&b.path)));
        Summary {
            sample_rate: self.sample_rate,
            duration_secs: self.duration_ns as f64 / 1e9,
            roots_seen: self.roots_seen,
            traces_sampled: self.traces_sampled,
            spans_sampled: self.spans_sampled,
            spans,
            paths,
        }
    }

    /// Counters describing the profiler.
    pub fn metrics(&self) -> Metrics {
        Metrics {
            sample_rate: self.sample_rate,
            roots_seen: self.roots_seen,
            traces_sampled: self.traces_sampled,
            spans_sampled: self.spans_sampled,
            sampled_ratio: if self.roots_seen == 0 {
                0.0
            } else {
                self.traces_sampled as f64 / self.roots_seen as f64
            },
            paths_tracked: self.paths.len() as u64,
            traces_retained: self.traces.len() as u64,
        }
    }

    /// The statistics of one call path.
    pub fn path(&self, path: &str) -> Option<&PathStats> {
        self.paths.iter().find(|p| p.path == path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::tests::span;

    fn sample() -> Profile {
        let t = Trace {
            trace_id: "1".repeat(32),
            remote_parent_span_id: None,
            start_unix_ns: 5,
            spans: vec![span("root", None, 0, 10), span("child", Some(0), 2, 4)],
        };
        Profile::from_traces(1.0, vec![t.clone(), t])
    }

    #[test]
    fn round_trips_and_summarises() {
        let p = sample();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.json");
        p.save(&file).unwrap();
        let back = Profile::load(&file).unwrap();
        assert_eq!(back.paths.len(), 2);
        assert_eq!(back.traces, p.traces);
        let s = back.summary();
        assert_eq!(s.spans[0].name, "root");
        assert_eq!(s.spans[0].count, 2);
        assert_eq!(s.spans[0].self_ns, 12_000_000);
        assert_eq!(s.paths[1].path.as_deref(), Some("root;child"));
        assert_eq!(back.metrics().paths_tracked, 2);
    }

    #[test]
    fn rejects_foreign_and_future_files() {
        let path = Path::new("x.json");
        assert!(matches!(
            Profile::from_json("{\"format\":\"other\",\"version\":1}", path),
            Err(ProfileError::Format { .. })
        ));
        assert!(matches!(
            Profile::from_json("{\"format\":\"perfkit-profile\",\"version\":9}", path),
            Err(ProfileError::Version { found: 9, .. })
        ));
        assert!(matches!(
            Profile::from_json("{not json", path),
            Err(ProfileError::Parse { .. })
        ));
        let mut p = sample();
        p.traces[0].spans[1].parent = Some(7);
        let text = serde_json::to_string(&p).unwrap();
        let err = Profile::from_json(&text, path).unwrap_err();
        // The reason is in the cause chain (the CLI prints it whole).
        let chain: Vec<String> =
            std::iter::successors(Some(&err as &dyn std::error::Error), |e| e.source())
                .map(ToString::to_string)
                .collect();
        assert!(chain.join(": ").contains("parent"), "{chain:?}");
    }
}
