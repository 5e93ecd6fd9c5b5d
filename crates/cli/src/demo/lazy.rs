//! The demo's lazy-loading section: a model-like resource loaded on first use by the search
//! route (its first attempt fails, as a flaky model store would, and is retried), a set of
//! report templates preloaded when the service goes idle, and fraud rules that the checkout
//! uses, preloaded on the "interaction" signal fired when a user lists orders. The report shows their states, load
//! times, attempts and sizes.

use super::Args;
use super::section::{RequestFuture, Section};
use super::workload::{Request, Route, RunSummary};
use perfkit_core::{ComponentReport, Figure};
use perfkit_lazy::{
    IdleDetector, Lazy, LazyRegistry, LoadState, Preload, ProcessCpuProbe, RetryPolicy,
};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const MODEL: &str = "search-model";
const TEMPLATES: &str = "report-templates";
const RULES: &str = "fraud-rules";

/// How long the service must see no request before idle preloads run. The demo's clients
/// keep it busy, so this happens once the traffic stops.
const IDLE_AFTER: Duration = Duration::from_millis(300);

/// A model-like resource: a few MiB of weights.
struct Model {
    weights: Vec<f32>,
}

impl Model {
    /// Builds 2 Mi weights deterministically (CPU work, run off the async workers).
    fn build() -> Model {
        let mut x: u32 = 0x9E37_79B9;
        let weights = (0..(1 << 21))
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x as f32 / u32::MAX as f32) - 0.5
            })
            .collect();
        Model { weights }
    }

    /// A relevance score for a key: a dot product over a slice of the weights.
    fn score(&self, key: u64) -> f32 {
        let start = (key as usize * 64) % (self.weights.len() - 64);
        self.weights[start..start + 64]
            .iter()
            .enumerate()
            .map(|(i, w)| w * i as f32)
            .sum()
    }
}

pub(crate) struct LazySection {
    registry: LazyRegistry,
    idle: IdleDetector,
    model_requests: AtomicU64,
    model_waits: AtomicU64,
    signalled: AtomicBool,
}

fn model() -> Lazy<Model> {
    let attempts = AtomicU64::new(0);
    Lazy::builder(MODEL)
        .retry(RetryPolicy {
            max_attempts: 3,
            min_delay: Duration::from_millis(50),
            ..RetryPolicy::default()
        })
        .attempt_timeout(Duration::from_secs(5))
        .weigher(|m: &Model| (m.weights.len() * size_of::<f32>()) as u64)
        .build(move || {
            let attempt = attempts.fetch_add(1, Ordering::Relaxed);
            async move {
                // Fetching the model file: the store is flaky on the first attempt.
                tokio::time::sleep(Duration::from_millis(120)).await;
                if attempt == 0 {
                    return Err(anyhow::anyhow!("model store answered 503 (simulated)"));
                }
                Ok(tokio::task::spawn_blocking(Model::build).await?)
            }
        })
}

fn templates() -> Lazy<Vec<String>> {
    Lazy::builder(TEMPLATES)
        .weigher(|t: &Vec<String>| t.iter().map(|s| s.len() as u64).sum())
        .build(|| async {
            tokio::time::sleep(Duration::from_millis(80)).await;
            let templates = (0..200)
                .map(|i| format!("<section id=\"t{i}\">{}</section>", "{{row}}".repeat(500)))
                .collect();
            Ok::<_, std::io::Error>(templates)
        })
}

fn rules() -> Lazy<Vec<(u64, u64)>> {
    Lazy::builder(RULES)
        .weigher(|r: &Vec<(u64, u64)>| (r.len() * size_of::<(u64, u64)>()) as u64)
        .build(|| async {
            tokio::time::sleep(Duration::from_millis(40)).await;
            Ok::<_, std::io::Error>((0..10_000).map(|i| (i, i * 31 % 997)).collect())
        })
}

impl LazySection {
    pub(crate) fn new() -> Self {
        let idle = IdleDetector::builder(IDLE_AFTER)
            .cpu_probe(ProcessCpuProbe::new(), 0.5)
            .build();
        let registry = LazyRegistry::builder()
            .idle_detector(idle.clone())
            .tick_every(Duration::from_millis(100))
            .build();
        // These strategies need no runtime and the names are distinct: registering cannot
        // fail, but a failure would only leave the resource out of the report.
        for result in [
            registry.register(MODEL, Preload::OnFirstUse, model()),
            registry.register(TEMPLATES, Preload::Idle, templates()),
            registry.register(RULES, Preload::on_signal("interaction"), rules()),
        ] {
            if let Err(err) = result {
                tracing::warn!("demo lazy section: {err}");
            }
        }
        LazySection {
            registry,
            idle,
            model_requests: AtomicU64::new(0),
            model_waits: AtomicU64::new(0),
            signalled: AtomicBool::new(false),
        }
    }

    async fn use_resources(&self, request: &Request) {
        let _in_flight = self.idle.begin();
        match request.route {
            Route::Search => {
                self.model_requests.fetch_add(1, Ordering::Relaxed);
                if !self.registry.is_loaded(MODEL) {
                    self.model_waits.fetch_add(1, Ordering::Relaxed);
                }
                if let Ok(model) = self.registry.get::<Model>(MODEL).await {
                    std::hint::black_box(model.score(request.key));
                }
            }
            Route::ListOrders => {
                // A user browsing orders is likely to check out: the application fires
                // "interaction", which preloads the rules the checkout needs.
                if !self.signalled.swap(true, Ordering::Relaxed) {
                    self.registry.signal("interaction");
                }
            }
            Route::Checkout => {
                if let Ok(rules) = self.registry.get::<Vec<(u64, u64)>>(RULES).await {
                    std::hint::black_box(rules.get(request.user as usize));
                }
            }
            Route::RenderReport => {}
        }
    }
}

impl Section for LazySection {
    fn name(&self) -> &'static str {
        "lazy"
    }

    fn start(&self, _args: &Args) -> anyhow::Result<()> {
        self.registry.start()?;
        Ok(())
    }

    fn in_request<'a>(&'a self, request: &'a Request) -> RequestFuture<'a> {
        Box::pin(self.use_resources(request))
    }

    fn finish(&mut self, _args: &Args, _run: &RunSummary) -> anyhow::Result<ComponentReport> {
        // The traffic has stopped: the registry's background task (still running on the
        // demo's runtime) sees the service idle and preloads the templates. Wait for it.
        let quiet_since = Instant::now();
        let deadline = quiet_since + Duration::from_secs(3);
        while !self.registry.is_loaded(TEMPLATES) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let idle_preload_after = quiet_since.elapsed();
        self.registry.stop();

        let report = self.registry.report();
        let mut out = ComponentReport::from_report(&report);
        let state = |name: &str| {
            self.registry
                .loading_state(name)
                .map_or("unknown", |s| s.name())
        };
        out.summary = format!(
            "{MODEL} {} on first use, {TEMPLATES} {} when idle, {RULES} {} on signal",
            state(MODEL),
            state(TEMPLATES),
            state(RULES)
        );
        out.figures.push(Figure::count(
            "model_requests",
            self.model_requests.load(Ordering::Relaxed),
        ));
        out.figures.push(Figure::count(
            "requests_that_waited_for_the_model",
            self.model_waits.load(Ordering::Relaxed),
        ));
        if matches!(
            self.registry.loading_state(TEMPLATES),
            Some(LoadState::Loaded { .. })
        ) {
            out.figures.push(Figure::secs(
                "idle_preload_done_after_traffic_stopped",
                idle_preload_after.as_secs_f64(),
            ));
        }
        Ok(out)
    }
}
