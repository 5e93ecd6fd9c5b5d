//! `perfkit demo`: runs a built-in, instrumented sample service under every perfkit
//! capability compiled into this binary, then prints a report per capability.
//!
//! Each capability contributes a [`section::Section`] (one module here each); the sample
//! service lives in [`workload`].

#[cfg(feature = "budget")]
mod budget;
#[cfg(feature = "cache")]
mod cache;
#[cfg(feature = "lazy")]
mod lazy;
#[cfg(feature = "leak")]
mod leak;
#[cfg(feature = "profiler")]
mod profiler;
mod section;
mod workload;

use crate::{Outcome, output};
use perfkit_core::ComponentReport;
use section::{Planned, Section};
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;
use tracing_subscriber::layer::SubscriberExt;
pub(crate) use workload::SlowSpan;

/// Arguments of `perfkit demo`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Args {
    /// How long the workload runs (`30s`, `2m`, `500ms`).
    #[arg(long, default_value = "30s", value_parser = parse_duration_arg)]
    pub(crate) duration: Duration,
    /// Print the report as one JSON document on stdout.
    #[arg(long)]
    pub(crate) json: bool,
    /// Number of concurrent simulated clients.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub(crate) concurrency: u16,
    /// Write the profiler's profile of the run to PATH (for `perfkit profile`).
    #[arg(long, value_name = "PATH")]
    pub(crate) save_profile: Option<PathBuf>,
    /// Slow down one span's own work by a percentage (`db.query=30`); repeatable.
    #[arg(long, value_name = "SPAN=PERCENT", value_parser = workload::parse_slow)]
    pub(crate) slow: Vec<SlowSpan>,
    /// Also use a Redis tier at URL in the cache section (`redis://127.0.0.1:6379/`).
    #[arg(long, value_name = "URL")]
    pub(crate) redis: Option<String>,
}

fn parse_duration_arg(s: &str) -> Result<Duration, String> {
    let d = perfkit_core::units::parse_duration(s).map_err(|e| e.to_string())?;
    if d.is_zero() {
        return Err("the duration must be greater than zero".to_owned());
    }
    Ok(d)
}

/// The capabilities, in report order, with the section each contributes.
fn sections() -> Vec<Box<dyn Section>> {
    #[cfg(feature = "budget")]
    let budget = budget_section();
    #[cfg(feature = "cache")]
    let cache = cache::CacheSection::new();
    // Cross-component wiring happens here, not in the crates: when the memory budget
    // throttles, its cleanup hooks shrink the cache's memory tier.
    #[cfg(all(feature = "budget", feature = "cache"))]
    if let Some(budget) = &budget {
        budget
            .budgets()
            .register_cleanup("cache memory tier", cache.memory_pressure_hook());
    }
    vec![
        #[cfg(feature = "budget")]
        match budget {
            Some(section) => Box::new(section) as Box<dyn Section>,
            None => Box::new(Planned("budget")),
        },
        #[cfg(not(feature = "budget"))]
        Box::new(Planned("budget")),
        #[cfg(feature = "leak")]
        leak_section(),
        #[cfg(not(feature = "leak"))]
        Box::new(Planned("leak")),
        #[cfg(feature = "profiler")]
        Box::new(profiler::ProfilerSection::new()),
        #[cfg(not(feature = "profiler"))]
        Box::new(Planned("profiler")),
        #[cfg(feature = "cache")]
        Box::new(cache),
        #[cfg(not(feature = "cache"))]
        Box::new(Planned("cache")),
        #[cfg(feature = "lazy")]
        Box::new(lazy::LazySection::new()),
        #[cfg(not(feature = "lazy"))]
        Box::new(Planned("lazy")),
    ]
}

#[cfg(feature = "leak")]
fn leak_section() -> Box<dyn Section> {
    match leak::LeakSection::new() {
        Ok(s) => Box::new(s),
        Err(e) => {
            tracing::warn!("the leak section could not start: {e:#}");
            Box::new(Planned("leak"))
        }
    }
}

#[cfg(feature = "budget")]
fn budget_section() -> Option<budget::BudgetSection> {
    budget::BudgetSection::new()
        .inspect_err(|e| tracing::warn!("the budget section could not start: {e:#}"))
        .ok()
}

/// The whole demo report, as printed with `--json`.
#[derive(Debug, Serialize)]
struct DemoReport {
    perfkit_version: &'static str,
    duration_secs: f64,
    workload: ComponentReport,
    components: Vec<ComponentReport>,
}

pub(crate) fn run(args: Args) -> anyhow::Result<Outcome> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut sections = sections();
    let layers: Vec<section::BoxedLayer> = sections
        .iter_mut()
        .filter_map(|s| s.tracing_layer())
        .collect();
    let subscriber = tracing_subscriber::registry().with(layers);
    let _guard = tracing::subscriber::set_global_default(subscriber);

    let progress = output::progress(0, "running the demo service");
    let (mut sections, summary) = runtime.block_on(async {
        for section in &sections {
            section.start(&args)?;
        }
        anyhow::Ok(workload::run(&args, sections).await)
    })?;
    progress.finish_and_clear();

    let mut components = Vec::new();
    for section in &mut sections {
        let report = section
            .finish(&args, &summary)
            .map_err(|e| e.context(format!("the {} section of the demo failed", section.name())))?;
        components.push(report);
    }
    let report = DemoReport {
        perfkit_version: env!("CARGO_PKG_VERSION"),
        duration_secs: summary.elapsed.as_secs_f64(),
        workload: summary.report(),
        components,
    };
    if args.json {
        output::print_json(&report)?;
    } else {
        println!(
            "perfkit {} demo: sample service ran for {:.1} s\n",
            report.perfkit_version, report.duration_secs
        );
        print!("{}", report.workload.render_text());
        for component in &report.components {
            println!();
            print!("{}", component.render_text());
        }
    }
    Ok(Outcome::Success)
}
