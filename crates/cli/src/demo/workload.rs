//! The demo's sample service: a few request handlers doing real CPU work, allocations and
//! simulated I/O, instrumented with `tracing` spans.
//!
//! The handlers deliberately contain the patterns perfkit should find:
//! - `list_orders` issues one `db.query` per order item (an N+1 query pattern);
//! - `render_report` computes the same `compute_pricing` result several times;
//! - `checkout` makes two independent calls one after the other (`fetch_inventory`,
//!   `fetch_user_profile`) that could run in parallel;
//! - a `session_store` keeps a little memory for every request and never frees it (a leak);
//! - `search` does CPU-heavy tokenising and sorting with short-lived allocations.

use super::Args;
use super::section::{Admission, Section};
use perfkit_core::{ComponentReport, Figure, Finding, Severity};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tracing::{Instrument, info_span};

/// The routes of the sample service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Route {
    /// `GET /orders`: N+1 queries.
    ListOrders,
    /// `GET /report`: repeated identical computation.
    RenderReport,
    /// `POST /checkout`: sequential independent calls.
    Checkout,
    /// `GET /search`: CPU work and allocations.
    Search,
}

impl Route {
    /// All routes.
    #[allow(dead_code)]
    pub(crate) const ALL: [Route; 4] = [
        Route::ListOrders,
        Route::RenderReport,
        Route::Checkout,
        Route::Search,
    ];

    /// The root span's name for this route.
    pub(crate) fn span_name(self) -> &'static str {
        match self {
            Route::ListOrders => "list_orders",
            Route::RenderReport => "render_report",
            Route::Checkout => "checkout",
            Route::Search => "search",
        }
    }
}

/// One request to the sample service.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    /// Sequence number.
    pub(crate) id: u64,
    /// Which handler serves it.
    pub(crate) route: Route,
    /// The requesting user (skewed: a few users are very active).
    pub(crate) user: u64,
    /// A key for data lookups, Zipf-like skewed over 5,000 keys (what caches see).
    pub(crate) key: u64,
}

/// What the workload measured.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub(crate) struct RunSummary {
    /// Wall time of the run.
    pub(crate) elapsed: Duration,
    /// Requests handled, per route span name.
    pub(crate) handled: BTreeMap<&'static str, u64>,
    /// Requests refused by a section's admission.
    pub(crate) rejected: u64,
    /// Requests delayed by a section's admission.
    pub(crate) delayed: u64,
    /// Latency percentiles per route, in seconds: (p50, p99).
    pub(crate) latency_secs: BTreeMap<&'static str, (f64, f64)>,
    /// Bytes the deliberately leaking session store holds at the end.
    pub(crate) leaked_bytes: u64,
}

impl RunSummary {
    /// Total requests handled.
    pub(crate) fn total(&self) -> u64 {
        self.handled.values().sum()
    }

    /// The workload's own section of the report.
    pub(crate) fn report(&self) -> ComponentReport {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let mut report = ComponentReport::new("workload");
        report.summary = format!(
            "{} requests in {:.1} s ({:.0}/s)",
            self.total(),
            secs,
            self.total() as f64 / secs
        );
        report.figures.push(Figure::count("requests", self.total()));
        report.figures.push(Figure::new(
            "throughput",
            self.total() as f64 / secs,
            "req/s",
        ));
        for (route, (p50, p99)) in &self.latency_secs {
            report
                .figures
                .push(Figure::secs(format!("{route}_p50"), *p50));
            report
                .figures
                .push(Figure::secs(format!("{route}_p99"), *p99));
        }
        report
            .figures
            .push(Figure::count("rejected", self.rejected));
        report.figures.push(Figure::count("delayed", self.delayed));
        report
            .figures
            .push(Figure::bytes("session_store_bytes", self.leaked_bytes));
        if self.total() == 0 {
            report = report.with_finding(Finding::new(
                Severity::Warning,
                "no_requests",
                "the workload handled no request",
            ));
        }
        report
    }
}

/// A span slowed down with `--slow SPAN=PERCENT`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SlowSpan {
    /// The span's name.
    pub(crate) span: String,
    /// How much slower its own work becomes, in percent.
    pub(crate) percent: f64,
}

/// Parses `SPAN=PERCENT` (`db.query=30`, `compute_pricing=50%`).
pub(crate) fn parse_slow(s: &str) -> Result<SlowSpan, String> {
    let (span, pct) = s
        .split_once('=')
        .ok_or_else(|| format!("expected SPAN=PERCENT, got {s:?}"))?;
    let percent: f64 = pct
        .trim()
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("{pct:?} is not a percentage"))?;
    if span.trim().is_empty() || !percent.is_finite() || percent < 0.0 {
        return Err(format!(
            "expected SPAN=PERCENT with a span name and a percentage >= 0, got {s:?}"
        ));
    }
    Ok(SlowSpan {
        span: span.trim().to_owned(),
        percent,
    })
}

/// The deliberately leaking component: it keeps a session record per request, forever.
static SESSION_STORE: Mutex<Vec<Box<[u8]>>> = Mutex::new(Vec::new());
static SESSION_BYTES: AtomicU64 = AtomicU64::new(0);
const SESSION_RECORD_BYTES: usize = 8 * 1024;

/// Bytes currently held by the leaking session store.
pub(crate) fn session_store_bytes() -> u64 {
    SESSION_BYTES.load(Ordering::Relaxed)
}

/// Shared state of the running service.
struct Service {
    slow: Vec<SlowSpan>,
    sections: Vec<Box<dyn Section>>,
}

impl Service {
    /// Burns CPU for `base` (scaled up when `--slow` names `span`), returning a checksum.
    fn cpu(&self, span: &str, base: Duration) -> u64 {
        let factor = self
            .slow
            .iter()
            .find(|s| s.span == span)
            .map_or(1.0, |s| 1.0 + s.percent / 100.0);
        burn_cpu(base.mul_f64(factor))
    }

    /// Simulated I/O latency for `span`, scaled like `cpu`.
    async fn io(&self, span: &str, base: Duration) {
        let factor = self
            .slow
            .iter()
            .find(|s| s.span == span)
            .map_or(1.0, |s| 1.0 + s.percent / 100.0);
        tokio::time::sleep(base.mul_f64(factor)).await;
    }
}

/// Real CPU work (hashing and arithmetic) for about `d`.
fn burn_cpu(d: Duration) -> u64 {
    let start = Instant::now();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    loop {
        for _ in 0..256 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        if start.elapsed() >= d {
            return black_box(x);
        }
    }
}

async fn list_orders(svc: &Service, req: &Request) {
    {
        let _g = info_span!("load_user", user = req.user).entered();
        black_box(svc.cpu("load_user", Duration::from_micros(300)));
    }
    // N+1: one query per item instead of one query for all of them.
    let mut rows = Vec::new();
    for item in 0..8u64 {
        async {
            svc.io("db.query", Duration::from_millis(7)).await;
            rows.push(format!("order-{}-item-{item}", req.user));
        }
        .instrument(info_span!("db.query", table = "order_items", item))
        .await;
    }
    let _g = info_span!("render_orders").entered();
    let page: String = rows.join("\n");
    black_box(svc.cpu("render_orders", Duration::from_micros(400)) ^ page.len() as u64);
}

async fn render_report(svc: &Service, req: &Request) {
    let mut total = 0u64;
    // The same pricing is computed four times per report, with the same inputs.
    for _ in 0..4 {
        let _g = info_span!("compute_pricing", sku = 42u64).entered();
        total ^= svc.cpu("compute_pricing", Duration::from_millis(3));
    }
    svc.io("load_template", Duration::from_millis(2))
        .instrument(info_span!("load_template"))
        .await;
    let _g = info_span!("render_pdf", user = req.user).entered();
    let doc: Vec<u8> = vec![(total & 0xff) as u8; 64 * 1024];
    black_box(svc.cpu("render_pdf", Duration::from_millis(1)) ^ doc.len() as u64);
}

async fn checkout(svc: &Service, req: &Request) {
    // Two independent calls made one after the other.
    svc.io("fetch_inventory", Duration::from_millis(110))
        .instrument(info_span!("fetch_inventory"))
        .await;
    svc.io("fetch_user_profile", Duration::from_millis(110))
        .instrument(info_span!("fetch_user_profile", user = req.user))
        .await;
    let _g = info_span!("charge_card").entered();
    black_box(svc.cpu("charge_card", Duration::from_micros(500)));
}

async fn search(svc: &Service, req: &Request) {
    let _g = info_span!("tokenize", key = req.key).entered();
    let text: String = (0..2_000)
        .map(|i| format!("w{} ", (i * 7919 + req.key) % 997))
        .collect();
    let mut words: Vec<&str> = text.split_whitespace().collect();
    drop(_g);
    let _g = info_span!("rank").entered();
    words.sort_unstable();
    words.dedup();
    black_box(svc.cpu("rank", Duration::from_micros(800)) ^ words.len() as u64);
}

async fn handle(svc: &Service, req: &Request) {
    let root = match req.route {
        Route::ListOrders => info_span!("list_orders", id = req.id),
        Route::RenderReport => info_span!("render_report", id = req.id),
        Route::Checkout => info_span!("checkout", id = req.id),
        Route::Search => info_span!("search", id = req.id),
    };
    async {
        match req.route {
            Route::ListOrders => list_orders(svc, req).await,
            Route::RenderReport => render_report(svc, req).await,
            Route::Checkout => checkout(svc, req).await,
            Route::Search => search(svc, req).await,
        }
        for section in &svc.sections {
            section.in_request(req).await;
        }
        // The leak: a session record per request, never released.
        let record = vec![(req.id & 0xff) as u8; SESSION_RECORD_BYTES].into_boxed_slice();
        SESSION_STORE
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(record);
        SESSION_BYTES.fetch_add(SESSION_RECORD_BYTES as u64, Ordering::Relaxed);
    }
    .instrument(root)
    .await;
}

fn next_request(rng: &mut fastrand::Rng, id: u64) -> Request {
    let route = match rng.u32(0..100) {
        0..=34 => Route::Search,
        35..=64 => Route::ListOrders,
        65..=84 => Route::RenderReport,
        _ => Route::Checkout,
    };
    // Cubing a uniform number skews towards small keys: a few hot keys, a long tail.
    let mut skew = |n: f64| (rng.f64().powi(3) * n) as u64;
    Request {
        id,
        route,
        user: skew(500.0),
        key: skew(5_000.0),
    }
}

/// Runs the workload with `concurrency` clients for `args.duration`, calling the sections'
/// hooks, and returns the sections back with what was measured.
pub(crate) async fn run(
    args: &Args,
    sections: Vec<Box<dyn Section>>,
) -> (Vec<Box<dyn Section>>, RunSummary) {
    let svc = Arc::new(Service {
        slow: args.slow.clone(),
        sections,
    });
    let start = Instant::now();
    let deadline = start + args.duration;
    let ids = Arc::new(AtomicU64::new(0));
    let rejected = Arc::new(AtomicU64::new(0));
    let delayed = Arc::new(AtomicU64::new(0));

    let ticker = {
        let svc = Arc::clone(&svc);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(Duration::from_millis(100));
            while Instant::now() < deadline {
                interval.tick().await;
                for section in &svc.sections {
                    section.tick(start.elapsed());
                }
            }
        })
    };

    let mut clients = Vec::new();
    for client in 0..args.concurrency.max(1) {
        let (svc, ids, rejected, delayed) = (
            Arc::clone(&svc),
            Arc::clone(&ids),
            Arc::clone(&rejected),
            Arc::clone(&delayed),
        );
        clients.push(tokio::spawn(async move {
            let mut rng = fastrand::Rng::with_seed(args_seed(client));
            let mut latencies: Vec<(Route, Duration)> = Vec::new();
            while Instant::now() < deadline {
                let req = next_request(&mut rng, ids.fetch_add(1, Ordering::Relaxed));
                let admission = svc
                    .sections
                    .iter()
                    .map(|s| s.admit(&req))
                    .fold(Admission::Go, strictest);
                match admission {
                    Admission::Reject => {
                        rejected.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                    Admission::Delay(d) => {
                        delayed.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(d).await;
                    }
                    Admission::Go => {}
                }
                let t0 = Instant::now();
                handle(&svc, &req).await;
                latencies.push((req.route, t0.elapsed()));
            }
            latencies
        }));
    }

    let mut all: BTreeMap<&'static str, Vec<Duration>> = BTreeMap::new();
    for client in clients {
        if let Ok(latencies) = client.await {
            for (route, d) in latencies {
                all.entry(route.span_name()).or_default().push(d);
            }
        }
    }
    let _ = ticker.await;

    let mut summary = RunSummary {
        elapsed: start.elapsed(),
        rejected: rejected.load(Ordering::Relaxed),
        delayed: delayed.load(Ordering::Relaxed),
        leaked_bytes: session_store_bytes(),
        ..RunSummary::default()
    };
    for (route, mut ds) in all {
        ds.sort_unstable();
        let pick = |q: f64| ds[((ds.len() - 1) as f64 * q).round() as usize].as_secs_f64();
        summary.handled.insert(route, ds.len() as u64);
        summary.latency_secs.insert(route, (pick(0.5), pick(0.99)));
    }
    let sections = match Arc::try_unwrap(svc) {
        Ok(svc) => svc.sections,
        Err(_) => Vec::new(), // unreachable: every task holding it has finished
    };
    (sections, summary)
}

fn args_seed(client: u16) -> u64 {
    0x5EED_0000 + client as u64
}

fn strictest(a: Admission, b: Admission) -> Admission {
    match (a, b) {
        (Admission::Reject, _) | (_, Admission::Reject) => Admission::Reject,
        (Admission::Delay(x), Admission::Delay(y)) => Admission::Delay(x.max(y)),
        (Admission::Delay(x), _) | (_, Admission::Delay(x)) => Admission::Delay(x),
        _ => Admission::Go,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_slow_specs() {
        assert_eq!(
            parse_slow("db.query=30").unwrap(),
            SlowSpan {
                span: "db.query".into(),
                percent: 30.0
            }
        );
        assert_eq!(parse_slow("x=50%").unwrap().percent, 50.0);
        assert!(parse_slow("nospan").is_err());
        assert!(parse_slow("=5").is_err());
        assert!(parse_slow("a=-5").is_err());
        assert!(parse_slow("a=fast").is_err());
    }

    #[test]
    fn strictest_admission_wins() {
        let d = |ms| Admission::Delay(Duration::from_millis(ms));
        assert_eq!(strictest(Admission::Go, d(5)), d(5));
        assert_eq!(strictest(d(5), d(9)), d(9));
        assert_eq!(strictest(d(5), Admission::Reject), Admission::Reject);
        assert_eq!(strictest(Admission::Go, Admission::Go), Admission::Go);
    }

    #[test]
    fn routes_follow_the_mix() {
        let mut rng = fastrand::Rng::with_seed(1);
        let mut seen = std::collections::HashSet::new();
        for i in 0..1000 {
            let r = next_request(&mut rng, i);
            assert!(r.key < 5000 && r.user < 500);
            seen.insert(r.route);
        }
        assert_eq!(seen.len(), Route::ALL.len());
    }
}
