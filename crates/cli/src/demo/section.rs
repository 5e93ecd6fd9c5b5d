//! The plug-in point of the demo: each capability contributes a [`Section`] that hooks into
//! the sample service and reports on it at the end.

use super::Args;
use super::workload::{Request, RunSummary};
use perfkit_core::ComponentReport;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use tracing_subscriber::{Layer, Registry};

/// A boxed future borrowed for the duration of a request.
pub(crate) type RequestFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// A tracing layer a section adds to the demo's subscriber.
pub(crate) type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// What a section decides before a request is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Handle it now.
    Go,
    /// Handle it after this delay (throttling).
    Delay(Duration),
    /// Refuse it (load shedding).
    Reject,
}

/// One capability's part of the demo. Every hook has a no-op default.
pub(crate) trait Section: Send + Sync {
    /// The capability's name, as in the report (`budget`, `leak`, ...).
    fn name(&self) -> &'static str;

    /// A tracing layer to install for the whole run (the profiler's).
    fn tracing_layer(&mut self) -> Option<BoxedLayer> {
        None
    }

    /// Called once before the workload starts, inside the demo's tokio runtime.
    fn start(&self, _args: &Args) -> anyhow::Result<()> {
        Ok(())
    }

    /// Decides whether a request may run.
    fn admit(&self, _request: &Request) -> Admission {
        Admission::Go
    }

    /// Extra work inside a request, in the request's span (cache reads, lazy resources).
    fn in_request<'a>(&'a self, _request: &'a Request) -> RequestFuture<'a> {
        Box::pin(std::future::ready(()))
    }

    /// Called about every 100 ms while the workload runs.
    fn tick(&self, _elapsed: Duration) {}

    /// Called once after the workload: the section's report.
    fn finish(&mut self, args: &Args, run: &RunSummary) -> anyhow::Result<ComponentReport>;
}

/// The placeholder for a capability whose demo section is not built yet, so the report
/// always lists all six and says honestly which ones are planned.
pub(crate) struct Planned(pub(crate) &'static str);

impl Section for Planned {
    fn name(&self) -> &'static str {
        self.0
    }

    fn finish(&mut self, _args: &Args, _run: &RunSummary) -> anyhow::Result<ComponentReport> {
        let mut report = ComponentReport::new(self.0);
        report.summary = "planned: not yet part of this build's demo".to_owned();
        Ok(report)
    }
}
