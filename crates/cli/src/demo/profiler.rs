//! The demo's profiler section: perfkit-profiler's layer on the sample service, its top
//! spans and suggestions in the report, and `--save-profile`.

use super::Args;
use super::section::{BoxedLayer, Section};
use super::workload::RunSummary;
use anyhow::Context as _;
use perfkit_core::ComponentReport;
use perfkit_profiler::Profiler;

/// The demo samples every trace: a run of a few seconds then has enough traces for stable
/// statistics and for `perfkit profile diff`. Production services keep the default, 0.1.
const DEMO_SAMPLE_RATE: f64 = 1.0;

pub(crate) struct ProfilerSection {
    profiler: Profiler,
}

impl ProfilerSection {
    pub(crate) fn new() -> Self {
        let profiler = Profiler::builder()
            .sample_rate(DEMO_SAMPLE_RATE)
            .build()
            .unwrap_or_default();
        ProfilerSection { profiler }
    }
}

impl Section for ProfilerSection {
    fn name(&self) -> &'static str {
        "profiler"
    }

    fn tracing_layer(&mut self) -> Option<BoxedLayer> {
        Some(Box::new(self.profiler.layer()))
    }

    fn finish(&mut self, args: &Args, _run: &RunSummary) -> anyhow::Result<ComponentReport> {
        if let Some(path) = &args.save_profile {
            self.profiler
                .save(path)
                .with_context(|| format!("cannot save the profile to {}", path.display()))?;
        }
        let report = self.profiler.report();
        let mut out = ComponentReport::from_report(&report);
        out.summary = format!(
            "{} (demo sampling {:.0} %; production default 10 %)",
            out.summary,
            DEMO_SAMPLE_RATE * 100.0
        );
        if let Some(path) = &args.save_profile {
            out.summary = format!("{}; profile saved to {}", out.summary, path.display());
        }
        Ok(out)
    }
}
