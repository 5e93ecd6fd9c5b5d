//! The demo's leak section: two leak detectors sample memory on every tick. One watches the
//! whole process (the tracking allocator's live heap when it is installed, else RSS), the
//! other the workload's session store, which keeps 8 KiB per request and never frees them.
//! The report names the leaking component with its pattern, growth and time to its limit.

use super::Args;
use super::section::Section;
use super::workload::{self, RunSummary};
use perfkit_alloc::{
    CgroupSource, HeapSource, MemoryError, MemoryReading, MemorySource, RssSource,
    SystemMemorySource,
};
use perfkit_core::{ComponentReport, Figure, Finding, Severity};
use perfkit_leak::{LeakDetector, LimitSource, Snapshot, verdict_figures, verdict_findings};
use std::sync::Arc;
use std::time::Duration;

/// The session store's memory budget in the demo: the limit its leak is measured against.
const SESSION_STORE_BUDGET: u64 = 256 << 20;

/// The session store's size, as a memory source.
#[derive(Debug)]
struct SessionStore;

impl MemorySource for SessionStore {
    fn name(&self) -> &'static str {
        "session_store"
    }

    fn read(&self) -> Result<MemoryReading, MemoryError> {
        Ok(MemoryReading {
            used_bytes: workload::session_store_bytes(),
            limit_bytes: None,
        })
    }
}

pub(crate) struct LeakSection {
    process: LeakDetector,
    process_source: Arc<dyn MemorySource>,
    process_label: &'static str,
    store: LeakDetector,
}

impl LeakSection {
    pub(crate) fn new() -> anyhow::Result<Self> {
        let (process_source, process_label): (Arc<dyn MemorySource>, &'static str) =
            if perfkit_alloc::is_installed() {
                (Arc::new(HeapSource), "live heap (tracking allocator)")
            } else {
                (Arc::new(RssSource::new()), "process RSS")
            };
        let process = LeakDetector::builder(Arc::clone(&process_source))
            .limit(LimitSource::Cgroup(Arc::new(CgroupSource::new())))
            .limit(LimitSource::System(Arc::new(SystemMemorySource::new())))
            .build()?;
        let store = LeakDetector::builder(Arc::new(SessionStore))
            .limit(LimitSource::Budget(SESSION_STORE_BUDGET))
            .build()?;
        Ok(LeakSection {
            process,
            process_source,
            process_label,
            store,
        })
    }
}

impl Section for LeakSection {
    fn name(&self) -> &'static str {
        "leak"
    }

    fn tick(&self, elapsed: Duration) {
        let t_secs = elapsed.as_secs_f64();
        if let Ok(r) = self.process_source.read() {
            self.process.record(Snapshot {
                t_secs,
                bytes: r.used_bytes,
                limit_bytes: r.limit_bytes,
            });
        }
        self.store.record(Snapshot {
            t_secs,
            bytes: workload::session_store_bytes(),
            limit_bytes: None,
        });
    }

    fn finish(&mut self, _args: &Args, _run: &RunSummary) -> anyhow::Result<ComponentReport> {
        let store = self.store.detect_leaks();
        let process = self.process.detect_leaks();
        let mut report = ComponentReport::new("leak");
        report.summary = if store.insufficient_data {
            "too few samples for a verdict (run the demo longer)".to_owned()
        } else if store.leak {
            format!("session_store leaks ({} pattern)", store.pattern)
        } else {
            "no leak found".to_owned()
        };
        report.figures.push(Figure::count(
            "snapshots",
            self.store.snapshots().len() as u64,
        ));
        report.figures.push(Figure::bytes(
            "session_store_bytes",
            workload::session_store_bytes(),
        ));
        for mut f in verdict_figures(&store) {
            f.name = format!("session_store_{}", f.name);
            report.figures.push(f);
        }
        if let Some(last) = self.process.snapshots().last() {
            report
                .figures
                .push(Figure::bytes("process_bytes", last.bytes));
        }
        for mut f in verdict_figures(&process) {
            f.name = format!("process_{}", f.name);
            report.figures.push(f);
        }
        for finding in verdict_findings(&store, "session_store (demo workload)") {
            report = report.with_finding(finding);
        }
        for finding in verdict_findings(&process, &format!("the process ({})", self.process_label))
        {
            report = report.with_finding(finding);
        }
        if store.insufficient_data {
            report = report.with_finding(Finding::new(
                Severity::Info,
                "not_enough_data",
                format!(
                    "{} samples: a verdict needs at least 10 (one per 100 ms tick)",
                    store.analyzed_points
                ),
            ));
        }
        report.details = serde_json::json!({
            "process_source": self.process_label,
            "session_store": store,
            "process": process,
        });
        Ok(report)
    }
}
