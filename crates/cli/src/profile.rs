//! `perfkit profile`: offline analysis of profiles saved by perfkit-profiler (or by
//! `perfkit demo --save-profile`): flame graphs, exports, regressions against a baseline and
//! optimization suggestions.

use crate::{Outcome, output};
use anyhow::Context as _;
use perfkit_profiler::export;
use perfkit_profiler::regress::regressions;
use perfkit_profiler::suggest::suggest;
use perfkit_profiler::{Profile, RegressionConfig, SuggestConfig};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Arguments of `perfkit profile`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Render a flame graph SVG of a profile's self time per call path.
    Flamegraph {
        /// The profile file.
        profile: PathBuf,
        /// Where to write the SVG.
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
        /// The graph's title.
        #[arg(long, default_value = "perfkit profile")]
        title: String,
    },
    /// Compare CURRENT with BASELINE per call path; exits 1 when a path regressed.
    Diff {
        /// The baseline profile.
        baseline: PathBuf,
        /// The profile to check.
        current: PathBuf,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
        /// Also write a differential flame graph SVG (red: slower, blue: faster).
        #[arg(long, value_name = "FILE")]
        flamegraph: Option<PathBuf>,
        /// Minimum worsening of p50 or p95, in percent.
        #[arg(long, default_value_t = 5.0, value_name = "PCT")]
        min_change_pct: f64,
        /// Minimum worsening of the same quantile, in microseconds.
        #[arg(long, default_value_t = 50, value_name = "US")]
        min_change_us: u64,
        /// Minimum sampled spans on each side for a path to be tested.
        #[arg(long, default_value_t = 20)]
        min_samples: u64,
        /// False discovery rate across paths (Benjamini-Hochberg).
        #[arg(long, default_value_t = 0.01)]
        fdr: f64,
    },
    /// Optimization suggestions (batching, caching, parallelization, lazy loading).
    Suggest {
        /// The profile file.
        profile: PathBuf,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Span statistics per name and per call path.
    Stats {
        /// The profile file.
        profile: PathBuf,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
        /// How many rows to print.
        #[arg(long, default_value_t = 15)]
        top: usize,
    },
    /// Export to folded stacks, speedscope JSON or Chrome trace-event JSON.
    Export {
        /// The profile file.
        profile: PathBuf,
        /// The format.
        #[arg(long, value_enum)]
        format: Format,
        /// Output file (stdout when absent).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    /// `root;child;span SELF_MICROS` lines (flamegraph.pl, inferno, speedscope).
    Folded,
    /// speedscope JSON.
    Speedscope,
    /// Chrome trace-event JSON (chrome://tracing, Perfetto).
    Chrome,
}

fn load(path: &Path) -> anyhow::Result<Profile> {
    // The error names the file and the problem already.
    Ok(Profile::load(path)?)
}

fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

pub(crate) fn run(args: Args) -> anyhow::Result<Outcome> {
    match args.command {
        Command::Flamegraph {
            profile,
            output,
            title,
        } => {
            let p = load(&profile)?;
            let svg = export::flamegraph_svg(&p, &title)
                .with_context(|| format!("cannot draw {}", profile.display()))?;
            write(&output, &svg)?;
            eprintln!("wrote {}", output.display());
            Ok(Outcome::Success)
        }
        Command::Diff {
            baseline,
            current,
            json,
            flamegraph,
            min_change_pct,
            min_change_us,
            min_samples,
            fdr,
        } => {
            anyhow::ensure!(
                min_change_pct.is_finite() && min_change_pct >= 0.0,
                "--min-change-pct must be a percentage >= 0"
            );
            anyhow::ensure!(fdr > 0.0 && fdr < 1.0, "--fdr must be between 0 and 1");
            let (b, c) = (load(&baseline)?, load(&current)?);
            let config = RegressionConfig {
                min_relative: min_change_pct / 100.0,
                min_absolute: Duration::from_micros(min_change_us),
                min_samples,
                fdr,
            };
            let report = regressions(&b, &c, &config);
            if let Some(svg_path) = flamegraph {
                let svg = export::differential_flamegraph_svg(&b, &c, "perfkit profile diff")
                    .context("cannot draw the differential flame graph")?;
                write(&svg_path, &svg)?;
            }
            if !json {
                for w in &report.warnings {
                    eprintln!("warning: {w}");
                }
            }
            if json {
                output::print_json(&report)?;
            } else if report.regressions.is_empty() {
                println!(
                    "no regression: {} call paths tested, {} skipped for fewer than {} samples",
                    report.paths_tested, report.paths_skipped, min_samples
                );
            } else {
                println!(
                    "{} regression(s) in {} call paths tested:",
                    report.regressions.len(),
                    report.paths_tested
                );
                for r in &report.regressions {
                    println!(
                        "  [{}] {}\n      p50 {:.3} -> {:.3} ms ({:+.1} %), p95 {:.3} -> {:.3} ms \
                         ({:+.1} %), self {:+.3} ms/span, n {} -> {}, p {:.2e}, q {:.2e}",
                        r.severity,
                        r.path,
                        ms(r.baseline_p50_ns),
                        ms(r.current_p50_ns),
                        r.change_p50 * 100.0,
                        ms(r.baseline_p95_ns),
                        ms(r.current_p95_ns),
                        r.change_p95 * 100.0,
                        r.self_change_ns as f64 / 1e6,
                        r.baseline_count,
                        r.current_count,
                        r.p_value,
                        r.q_value
                    );
                }
            }
            Ok(if report.regressions.is_empty() {
                Outcome::Success
            } else {
                Outcome::CheckFailed
            })
        }
        Command::Suggest { profile, json } => {
            let p = load(&profile)?;
            let suggestions = suggest(&p.traces, &SuggestConfig::default());
            if json {
                output::print_json(&serde_json::json!({
                    "traces_analysed": p.traces.len(),
                    "suggestions": suggestions,
                }))?;
            } else if suggestions.is_empty() {
                println!("no suggestion from {} traces", p.traces.len());
            } else {
                for s in &suggestions {
                    println!(
                        "[{}] {} (confidence {:.2})\n      {}",
                        s.kind.as_str(),
                        s.message,
                        s.confidence,
                        s.evidence.detail
                    );
                }
            }
            Ok(Outcome::Success)
        }
        Command::Stats { profile, json, top } => {
            let summary = load(&profile)?.summary();
            if json {
                output::print_json(&summary)?;
            } else {
                println!(
                    "{} traces sampled ({:.0} % of {} roots), {} spans",
                    summary.traces_sampled,
                    summary.sample_rate * 100.0,
                    summary.roots_seen,
                    summary.spans_sampled
                );
                println!(
                    "{:40} {:>8} {:>11} {:>11} {:>9} {:>9} {:>9}",
                    "span", "count", "total ms", "self ms", "p50 ms", "p99 ms", "idle %"
                );
                for s in summary.spans.iter().take(top) {
                    println!(
                        "{:40} {:>8} {:>11.1} {:>11.1} {:>9.3} {:>9.3} {:>9.0}",
                        s.name,
                        s.count,
                        ms(s.total_ns),
                        ms(s.self_ns),
                        ms(s.p50_ns),
                        ms(s.p99_ns),
                        s.idle_ns as f64 * 100.0 / s.total_ns.max(1) as f64
                    );
                }
            }
            Ok(Outcome::Success)
        }
        Command::Export {
            profile,
            format,
            output,
        } => {
            let p = load(&profile)?;
            let name = profile.display().to_string();
            let bytes = match format {
                Format::Folded => export::folded(&p).into_bytes(),
                Format::Speedscope => serde_json::to_vec(&export::speedscope(&p, &name))?,
                Format::Chrome => serde_json::to_vec(&export::chrome_trace(&p))?,
            };
            match output {
                Some(path) => write(&path, &bytes)?,
                None => {
                    use std::io::Write as _;
                    let mut out = std::io::stdout().lock();
                    out.write_all(&bytes)?;
                    out.flush()?;
                }
            }
            Ok(Outcome::Success)
        }
    }
}
