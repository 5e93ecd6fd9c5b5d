//! # perfkit-profiler
//!
//! A production profiler for services that already use `tracing`: add one layer and get,
//! at an overhead you can leave on, where time goes (span statistics per name and per call
//! path, flame graphs), whether this release is slower than the last (regressions against a
//! saved baseline, with statistics that do not cry wolf), what to do about it
//! (suggestions: batching, caching, parallelization, lazy loading), and, with the `otlp`
//! feature, the sampled traces in your OpenTelemetry collector.
//!
//! Sampling is per trace: a root span is sampled with probability `sample_rate` (default
//! 0.1), and every descendant inherits the decision, so sampled traces are whole. Spans of
//! unsampled traces allocate nothing and take no lock shared between threads.
//!
//! ```
//! use perfkit_profiler::Profiler;
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! let profiler = Profiler::builder().sample_rate(1.0).build().unwrap();
//! let subscriber = tracing_subscriber::registry().with(profiler.layer());
//! tracing::subscriber::with_default(subscriber, || {
//!     let _request = tracing::info_span!("list_orders").entered();
//!     for item in 0..3 {
//!         let _query = tracing::info_span!("db.query", item).entered();
//!     }
//! });
//! let summary = profiler.summary();
//! assert_eq!(summary.traces_sampled, 1);
//! let query = summary.spans.iter().find(|s| s.name == "db.query").unwrap();
//! assert_eq!(query.count, 3);
//! assert!(profiler.folded().contains("list_orders;db.query"));
//! ```
//!
//! Crate features: `flamegraph` (SVG flame graphs through inferno), `otlp` (export of
//! sampled traces over OTLP HTTP/protobuf, and W3C `traceparent` helpers).

mod collector;
pub mod export;
mod hist;
mod layer;
#[cfg(feature = "otlp")]
pub mod otlp;
pub mod profile;
pub mod regress;
mod report;
pub mod suggest;
mod trace;

pub use collector::TraceSink;
pub use hist::DurationHistogram;
pub use layer::ProfilerLayer;
pub use profile::{Metrics, PathStats, Profile, ProfileError, SpanStats, Summary};
pub use regress::{Regression, RegressionConfig, RegressionReport};
pub use report::ProfilerReport;
pub use suggest::{Evidence, SuggestConfig, Suggestion, SuggestionKind};
pub use trace::{MAX_PATH_DEPTH, SpanRecord, Trace};

use collector::Shared;
use perfkit_core::{SharedClock, SystemClock};
use std::path::Path;
use std::sync::Arc;

/// Invalid profiler options.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BuildError {
    /// The sampling rate is not a number between 0 and 1.
    #[error("the sampling rate must be between 0 and 1, got {0}")]
    SampleRate(f64),
}

/// Options of a [`Profiler`]; start with [`Profiler::builder`].
#[derive(Debug, Clone)]
pub struct ProfilerBuilder {
    sample_rate: f64,
    sample_first: bool,
    retain_traces: usize,
    clock: Option<SharedClock>,
    suggest: SuggestConfig,
    regress: RegressionConfig,
}

impl ProfilerBuilder {
    /// Fraction of traces sampled, 0 to 1 (default 0.1).
    pub fn sample_rate(mut self, rate: f64) -> Self {
        self.sample_rate = rate;
        self
    }

    /// Whether the first trace of each root callsite is always sampled (default true), so
    /// one-time work on a first request is seen whatever the rate.
    pub fn sample_first_per_root(mut self, on: bool) -> Self {
        self.sample_first = on;
        self
    }

    /// How many whole traces are retained (a uniform sample) for exports and suggestions
    /// (default 1,000).
    pub fn retain_traces(mut self, n: usize) -> Self {
        self.retain_traces = n;
        self
    }

    /// The clock spans are timed with (a `ManualClock` in tests).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Thresholds of the suggestion detectors.
    pub fn suggest_config(mut self, config: SuggestConfig) -> Self {
        self.suggest = config;
        self
    }

    /// Thresholds of regression detection.
    pub fn regression_config(mut self, config: RegressionConfig) -> Self {
        self.regress = config;
        self
    }

    /// Builds the profiler.
    pub fn build(self) -> Result<Profiler, BuildError> {
        if !(0.0..=1.0).contains(&self.sample_rate) {
            return Err(BuildError::SampleRate(self.sample_rate));
        }
        let clock = self.clock.unwrap_or_else(SystemClock::shared);
        Ok(Profiler {
            shared: Arc::new(Shared::new(
                self.sample_rate,
                self.sample_first,
                self.retain_traces,
                clock,
            )),
            suggest: Arc::new(self.suggest),
            regress: Arc::new(self.regress),
        })
    }
}

/// The profiler handle: cheap to clone, `Send + Sync`. Install [`Profiler::layer`] in a
/// `tracing-subscriber` registry, then read statistics, exports, regressions and
/// suggestions from any clone.
#[derive(Clone)]
pub struct Profiler {
    shared: Arc<Shared>,
    suggest: Arc<SuggestConfig>,
    regress: Arc<RegressionConfig>,
}

impl std::fmt::Debug for Profiler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profiler")
            .field("sample_rate", &self.shared.sample_rate)
            .finish_non_exhaustive()
    }
}

impl Profiler {
    /// A profiler with the production defaults (sampling 0.1).
    pub fn new() -> Self {
        Profiler::builder()
            .build()
            .unwrap_or_else(|_| unreachable!("the default options are valid"))
    }

    /// Options, starting from the defaults.
    pub fn builder() -> ProfilerBuilder {
        ProfilerBuilder {
            sample_rate: 0.1,
            sample_first: true,
            retain_traces: 1000,
            clock: None,
            suggest: SuggestConfig::default(),
            regress: RegressionConfig::default(),
        }
    }

    /// The `tracing-subscriber` layer feeding this profiler.
    pub fn layer(&self) -> ProfilerLayer {
        ProfilerLayer {
            shared: Arc::clone(&self.shared),
        }
    }

    /// The sampling rate.
    pub fn sample_rate(&self) -> f64 {
        self.shared.sample_rate
    }

    /// Adds a receiver of every completed sampled trace.
    pub fn add_sink(&self, sink: Arc<dyn TraceSink>) {
        self.shared.sinks.write().push(sink);
    }

    /// A snapshot of everything measured so far, as saved to a file.
    pub fn profile(&self) -> Profile {
        self.shared.snapshot_with(true)
    }

    /// Span statistics per name and per call path.
    pub fn summary(&self) -> Summary {
        self.shared.snapshot_with(false).summary()
    }

    /// Counters describing the profiler itself.
    pub fn metrics(&self) -> Metrics {
        self.shared.metrics()
    }

    /// Folded stacks of self time (see [`export::folded`]).
    pub fn folded(&self) -> String {
        export::folded(&self.shared.snapshot_with(false))
    }

    /// Prometheus text exposition of the counters and per-span duration summaries (see
    /// [`export::prometheus`]).
    pub fn prometheus(&self) -> String {
        export::prometheus(&self.summary(), &self.metrics())
    }

    /// Saves the profile to `path` (the format is documented in [`profile`]).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), ProfileError> {
        self.profile().save(path)
    }

    /// Regressions of what was measured so far against `baseline`.
    pub fn regressions(&self, baseline: &Profile) -> RegressionReport {
        regress::regressions(baseline, &self.profile(), &self.regress)
    }

    /// Suggestions from the retained sampled traces.
    pub fn suggestions(&self) -> Vec<Suggestion> {
        suggest::suggest(&self.profile().traces, &self.suggest)
    }

    /// The profiler's report: top spans as figures, suggestions as findings.
    pub fn report(&self) -> ProfilerReport {
        let profile = self.profile();
        let suggestions = suggest::suggest(&profile.traces, &self.suggest);
        ProfilerReport::new(profile.summary(), suggestions)
    }

    /// The W3C `traceparent` of `span` when it is in a sampled trace (to inject into an
    /// outgoing request's headers).
    pub fn traceparent(span: &tracing::Span) -> Option<String> {
        layer::traceparent_of(span)
    }
}

impl Default for Profiler {
    fn default() -> Self {
        Self::new()
    }
}
