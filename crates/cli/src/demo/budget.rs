//! The demo's budget section: the sample service runs under a memory budget (the tracking
//! allocator's live heap, which the leaking session store keeps growing), a bandwidth
//! budget on the responses it sends (report PDFs are paced through the channel's token
//! bucket) and a process CPU budget (getrusage, sampled). Every request is admitted through
//! `check()`: throttle delays it, reject refuses it. The report shows each budget's health
//! and the transitions seen.
//!
//! Limits are calibrated three tenths into the run, from what the service used since the
//! first tenth, so that on any machine and for any `--duration` the memory budget ends between
//! its warn and throttle marks (the leak gets close, a warn transition shows) and bandwidth
//! stays comfortably within its limit. Before that, the limits are generous.

use super::Args;
use super::section::{Admission, RequestFuture, Section};
use super::workload::{Request, Route, RunSummary};
use perfkit_alloc::{HeapSource, MemorySource, RssSource};
use perfkit_budget::{Budget, Budgets, Decision, Resource, Sampler, Thresholds};
use perfkit_core::{ComponentReport, Figure, Finding, Severity};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Where the memory budget should stand at the end of the run, as a share of its limit:
/// past warn (80 %), short of throttle (90 %).
const TARGET_END_RATIO: f64 = 0.86;
/// The share of its limit the response bandwidth should use.
const TARGET_BANDWIDTH_RATIO: f64 = 0.5;

/// Bytes each route's response carries.
fn response_bytes(route: Route) -> u64 {
    match route {
        Route::ListOrders => 6 * 1024,
        Route::RenderReport => 64 * 1024, // the PDF
        Route::Checkout => 1024,
        Route::Search => 12 * 1024,
    }
}

pub(crate) struct BudgetSection {
    budgets: Budgets,
    responses: Resource,
    sampler: Mutex<Option<Sampler>>,
    memory_source: &'static str,
    calibrated: AtomicBool,
    /// Elapsed time, heap bytes and response bytes at the first calibration mark.
    mark: Mutex<Option<(Duration, f64, u64)>>,
    sent_bytes: AtomicU64,
    delayed: AtomicU64,
    rejected: AtomicU64,
    calibration: Mutex<Option<String>>,
    /// The run's duration, known at `start`.
    total_nanos: AtomicU64,
}

fn memory_source() -> (Box<dyn MemorySource>, &'static str) {
    if perfkit_alloc::is_installed() {
        (Box::new(HeapSource), "tracking allocator live heap")
    } else {
        (Box::new(RssSource::new()), "process RSS")
    }
}

impl BudgetSection {
    /// The budgets the demo enforces, for wiring other components' cleanup hooks.
    #[cfg_attr(not(feature = "cache"), allow(dead_code))]
    pub(crate) fn budgets(&self) -> &Budgets {
        &self.budgets
    }

    pub(crate) fn new() -> anyhow::Result<BudgetSection> {
        let budgets = Budgets::new();
        let (source, memory_source) = memory_source();
        let start = source.read().map(|r| r.used_bytes).unwrap_or(0);
        // Generous until calibrated: 1 GiB above the start.
        budgets.set_budget(
            Budget::memory(start + (1 << 30))
                .shared_source(source.into())
                .throttle_delay(Duration::from_millis(5))
                .max_throttle_delay(Duration::from_millis(50)),
        )?;
        let responses = budgets.set_budget(
            Budget::bandwidth("responses", 256.0 * 1024.0 * 1024.0)
                .burst(4 << 20)
                .max_wait(Duration::from_millis(500)),
        )?;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        budgets.set_budget(
            Budget::cpu(cores * 1000.0)
                .window(Duration::from_secs(2))
                .throttle_delay(Duration::from_millis(5))
                .max_throttle_delay(Duration::from_millis(40)),
        )?;
        Ok(BudgetSection {
            budgets,
            responses,
            sampler: Mutex::new(None),
            memory_source,
            calibrated: AtomicBool::new(false),
            mark: Mutex::new(None),
            sent_bytes: AtomicU64::new(0),
            delayed: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            calibration: Mutex::new(None),
            total_nanos: AtomicU64::new(30_000_000_000),
        })
    }

    fn heap(&self) -> f64 {
        self.budgets
            .usage()
            .iter()
            .find(|u| u.name == "memory")
            .map_or(0.0, |u| u.usage)
    }

    /// Sets the memory and bandwidth limits from the growth and traffic seen between the
    /// mark (a tenth into the run, past the warm-up) and now (three tenths in).
    fn calibrate(&self, elapsed: Duration, total: Duration) -> anyhow::Result<()> {
        let Some((t0, heap0, sent0)) = *self.mark.lock().unwrap_or_else(|e| e.into_inner()) else {
            return Ok(());
        };
        let heap = self.heap();
        let secs = (elapsed - t0).as_secs_f64().max(0.1);
        let growth_per_sec = ((heap - heap0) / secs).max(1024.0);
        // The run ends a little after its nominal duration (requests in flight).
        let remaining = total.saturating_sub(elapsed).as_secs_f64() + 0.3;
        let projected_end = heap + growth_per_sec * remaining;
        // Never below where the heap already is plus headroom (a flat heap stays at allow).
        let memory_limit = (projected_end / TARGET_END_RATIO).max(heap / 0.78);
        self.budgets.set_budget(
            Budget::memory(memory_limit as u64)
                .shared_source(memory_source().0.into())
                .throttle_delay(Duration::from_millis(5))
                .max_throttle_delay(Duration::from_millis(50)),
        )?;
        let sent = self
            .sent_bytes
            .load(Ordering::Relaxed)
            .saturating_sub(sent0);
        let rate = (sent as f64 / secs).max(64.0 * 1024.0);
        let bandwidth_limit = rate / TARGET_BANDWIDTH_RATIO;
        self.budgets.set_budget(
            Budget::bandwidth("responses", bandwidth_limit)
                .burst((bandwidth_limit / 4.0) as u64)
                .window(Duration::from_secs(2))
                .thresholds(Thresholds {
                    hysteresis: 0.1,
                    ..Thresholds::default()
                })
                .max_wait(Duration::from_millis(500)),
        )?;
        *self.calibration.lock().unwrap_or_else(|e| e.into_inner()) = Some(format!(
            "limits calibrated {:.1} s into the run: memory {} (the heap grew {}/s), responses {}",
            elapsed.as_secs_f64(),
            perfkit_core::units::format_bytes(memory_limit as u64),
            perfkit_core::units::format_bytes(growth_per_sec as u64),
            perfkit_core::Rate(bandwidth_limit),
        ));
        Ok(())
    }
}

fn admission(decision: Decision) -> Admission {
    match decision {
        Decision::Allow | Decision::Warn => Admission::Go,
        Decision::Throttle { delay } => Admission::Delay(delay),
        Decision::Reject { .. } => Admission::Reject,
    }
}

impl Section for BudgetSection {
    fn name(&self) -> &'static str {
        "budget"
    }

    fn start(&self, args: &Args) -> anyhow::Result<()> {
        self.total_nanos.store(
            u64::try_from(args.duration.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        let sampler = self.budgets.start_sampler(Duration::from_millis(100))?;
        *self.sampler.lock().unwrap_or_else(|e| e.into_inner()) = Some(sampler);
        Ok(())
    }

    fn admit(&self, request: &Request) -> Admission {
        let mut decision = self.budgets.check_all(&[Resource::MEMORY, Resource::CPU]);
        if decision.is_admitted() && request.route == Route::RenderReport {
            // The PDF goes through the response channel's token bucket.
            decision = match self
                .budgets
                .try_acquire(self.responses, response_bytes(request.route))
            {
                Ok(wait) if wait.is_zero() => decision,
                Ok(wait) => decision.strictest(Decision::Throttle { delay: wait }),
                Err(_) => Decision::Reject {
                    retry_after: Duration::from_millis(100),
                },
            };
            self.sent_bytes
                .fetch_add(response_bytes(request.route), Ordering::Relaxed);
        }
        let admission = admission(decision);
        match admission {
            Admission::Delay(_) => self.delayed.fetch_add(1, Ordering::Relaxed),
            Admission::Reject => self.rejected.fetch_add(1, Ordering::Relaxed),
            Admission::Go => 0,
        };
        admission
    }

    fn in_request<'a>(&'a self, request: &'a Request) -> RequestFuture<'a> {
        if request.route != Route::RenderReport {
            let bytes = response_bytes(request.route);
            self.budgets.record_usage(self.responses, bytes);
            self.sent_bytes.fetch_add(bytes, Ordering::Relaxed);
        }
        Box::pin(std::future::ready(()))
    }

    fn tick(&self, elapsed: Duration) {
        let total = self.total_duration();
        {
            let mut mark = self.mark.lock().unwrap_or_else(|e| e.into_inner());
            if mark.is_none() && elapsed >= total / 10 {
                *mark = Some((
                    elapsed,
                    self.heap(),
                    self.sent_bytes.load(Ordering::Relaxed),
                ));
            }
        }
        if elapsed >= total * 3 / 10
            && !self.calibrated.swap(true, Ordering::Relaxed)
            && let Err(e) = self.calibrate(elapsed, total)
        {
            tracing::warn!("budget calibration failed: {e:#}");
        }
    }

    fn finish(&mut self, _args: &Args, _run: &RunSummary) -> anyhow::Result<ComponentReport> {
        if let Some(s) = self
            .sampler
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            s.stop();
        }
        self.budgets.sample_now();
        let report = self.budgets.report();
        let mut out = ComponentReport::from_report(&report);
        out.figures.push(Figure::count(
            "requests_delayed",
            self.delayed.load(Ordering::Relaxed),
        ));
        out.figures.push(Figure::count(
            "requests_rejected",
            self.rejected.load(Ordering::Relaxed),
        ));
        out.findings.push(Finding::new(
            Severity::Info,
            "budget_memory_source",
            format!("the memory budget reads the {}", self.memory_source),
        ));
        if let Some(c) = self
            .calibration
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            out.findings
                .push(Finding::new(Severity::Info, "budget_calibration", c));
        }
        Ok(out)
    }
}

impl BudgetSection {
    fn total_duration(&self) -> Duration {
        Duration::from_nanos(self.total_nanos.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_map_to_admissions() {
        assert_eq!(admission(Decision::Allow), Admission::Go);
        assert_eq!(admission(Decision::Warn), Admission::Go);
        let d = Duration::from_millis(7);
        assert_eq!(
            admission(Decision::Throttle { delay: d }),
            Admission::Delay(d)
        );
        assert_eq!(
            admission(Decision::Reject { retry_after: d }),
            Admission::Reject
        );
    }

    #[test]
    fn calibration_aims_between_warn_and_throttle() {
        let section = BudgetSection::new().unwrap();
        *section.mark.lock().unwrap() = Some((Duration::from_secs(3), 0.0, 0));
        section
            .calibrate(Duration::from_secs(9), Duration::from_secs(30))
            .unwrap();
        let usage = section.budgets.usage();
        let memory = usage.iter().find(|u| u.name == "memory").unwrap();
        let heap = section.heap();
        // Growth since the mark was `heap` over 6 s; projected over the remaining 21.3 s.
        let projected = heap + heap / 6.0 * 21.3;
        let ratio = projected / memory.limit;
        assert!(
            (0.80..0.90).contains(&ratio) || memory.limit >= heap * 2.0,
            "{ratio}"
        );
        assert!(section.calibration.lock().unwrap().is_some());
    }
}
