//! `perfkit cache simulate|tune`: hit ratios of eviction policies on a cache trace.

use crate::Outcome;
use crate::output;
use anyhow::{Context as _, bail};
use perfkit_cache::plot::{Series, hit_ratio_svg};
use perfkit_cache::trace::{Trace, TraceFormat, read_trace};
use perfkit_cache::tune::{TuneOptions, tune};
use perfkit_cache::{PolicyKind, SimResult, simulate_all};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Arguments of `perfkit cache`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, clap::Subcommand)]
enum Cmd {
    /// Hit ratio of each policy at each capacity over a trace (run in parallel).
    Simulate(SimulateArgs),
    /// Recommend a policy and show the miss-ratio curve around a capacity (sampled on
    /// large traces).
    Tune(TuneArgs),
}

#[derive(Debug, clap::Args)]
struct TraceArgs {
    /// The trace file (.gz, .xz and .zst are decompressed transparently).
    #[arg(long)]
    trace: PathBuf,
    /// Record format: auto, plain, lirs, arc, cache2k (i32be), i64be, u32be, csv, adaptsize.
    #[arg(long, default_value = "auto")]
    format: String,
}

#[derive(Debug, clap::Args)]
struct SimulateArgs {
    #[command(flatten)]
    input: TraceArgs,
    /// Capacities in entries, comma separated.
    #[arg(long, value_delimiter = ',', required = true)]
    capacity: Vec<u64>,
    /// Policies, comma separated, or `all`: lru, fifo, lfu, sieve, s3fifo, arc, wtinylfu,
    /// tinylfu-static, opt.
    #[arg(long, value_delimiter = ',', default_value = "all")]
    policy: Vec<String>,
    /// Weigh requests by the sizes the trace records (csv, adaptsize); capacity is then
    /// in size units.
    #[arg(long)]
    weighted: bool,
    /// Worker threads (default: one per CPU).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Print one JSON document on stdout.
    #[arg(long)]
    json: bool,
    /// Write an SVG chart of hit ratio against capacity per policy.
    #[arg(long, value_name = "OUT.svg")]
    plot: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct TuneArgs {
    #[command(flatten)]
    input: TraceArgs,
    /// The capacity you have in mind, in entries.
    #[arg(long)]
    capacity: u64,
    /// Share of keys simulated (0 < rate <= 1); default 1 under 1M requests, else 0.1
    /// (raised so the scaled cache keeps at least 1000 entries).
    #[arg(long)]
    sample_rate: Option<f64>,
    /// Print one JSON document on stdout.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: Args) -> anyhow::Result<Outcome> {
    match args.command {
        Cmd::Simulate(a) => simulate_cmd(a),
        Cmd::Tune(a) => tune_cmd(a),
    }
}

fn load(input: &TraceArgs) -> anyhow::Result<Trace> {
    let format: TraceFormat = input.format.parse()?;
    let bar = output::progress(0, "reading trace");
    let trace = read_trace(&input.trace, format)
        .with_context(|| format!("reading trace {}", input.trace.display()))?;
    bar.finish_and_clear();
    if trace.is_empty() {
        bail!("trace {} has no request", input.trace.display());
    }
    Ok(trace)
}

fn parse_policies(names: &[String]) -> anyhow::Result<Vec<PolicyKind>> {
    let mut out = Vec::new();
    for n in names {
        if n.trim().eq_ignore_ascii_case("all") {
            out.extend(PolicyKind::ALL);
        } else {
            out.push(n.parse::<PolicyKind>()?);
        }
    }
    out.dedup();
    let mut seen = Vec::new();
    out.retain(|p| {
        let fresh = !seen.contains(p);
        seen.push(*p);
        fresh
    });
    if out.is_empty() {
        bail!("no policy given");
    }
    Ok(out)
}

#[derive(Serialize)]
struct SimRow {
    policy: String,
    capacity: u64,
    hits: u64,
    misses: u64,
    hit_ratio: f64,
}

#[derive(Serialize)]
struct SimDoc {
    trace: String,
    requests: usize,
    distinct_keys: usize,
    results: Vec<SimRow>,
}

fn simulate_cmd(a: SimulateArgs) -> anyhow::Result<Outcome> {
    if a.capacity.contains(&0) {
        bail!("--capacity must be above 0");
    }
    let policies = parse_policies(&a.policy)?;
    let trace = load(&a.input)?;
    let weights = if a.weighted {
        Some(
            trace
                .sizes
                .as_deref()
                .with_context(|| format!("trace {} records no sizes", trace.name))?,
        )
    } else {
        None
    };
    let total = (policies.len() * a.capacity.len()) as u64;
    let bar = output::progress(total, "simulating");
    let results = simulate_all(
        &trace.keys,
        weights,
        &policies,
        &a.capacity,
        a.threads,
        &|d, _| bar.set_position(d as u64),
    )?;
    bar.finish_and_clear();
    if let Some(path) = &a.plot {
        write_plot(path, &trace.name, &results)?;
    }
    let doc = SimDoc {
        trace: trace.name.clone(),
        requests: trace.len(),
        distinct_keys: trace.distinct(),
        results: results
            .iter()
            .map(|r| SimRow {
                policy: r.policy.name().to_owned(),
                capacity: r.capacity,
                hits: r.hits,
                misses: r.misses,
                hit_ratio: r.hit_ratio(),
            })
            .collect(),
    };
    if a.json {
        output::print_json(&doc)?;
    } else {
        print!("{}", render_table(&doc, &policies, &a.capacity));
        if let Some(path) = &a.plot {
            println!("plot written to {}", path.display());
        }
    }
    Ok(Outcome::Success)
}

fn render_table(doc: &SimDoc, policies: &[PolicyKind], caps: &[u64]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "trace {}: {} requests, {} distinct keys; hit ratio %",
        doc.trace, doc.requests, doc.distinct_keys
    );
    let _ = write!(out, "{:16}", "policy");
    for c in caps {
        let _ = write!(out, "{c:>12}");
    }
    out.push('\n');
    for p in policies {
        let _ = write!(out, "{:16}", p.name());
        for c in caps {
            let r = doc
                .results
                .iter()
                .find(|r| r.policy == p.name() && r.capacity == *c)
                .map_or(f64::NAN, |r| r.hit_ratio * 100.0);
            let _ = write!(out, "{r:>12.2}");
        }
        out.push('\n');
    }
    out
}

fn write_plot(path: &Path, name: &str, results: &[SimResult]) -> anyhow::Result<()> {
    let mut series: Vec<Series> = Vec::new();
    for r in results {
        let label = r.policy.name();
        match series.iter_mut().find(|s| s.label == label) {
            Some(s) => s.points.push((r.capacity, r.hit_ratio())),
            None => series.push(Series {
                label: label.to_owned(),
                points: vec![(r.capacity, r.hit_ratio())],
            }),
        }
    }
    let svg = hit_ratio_svg(&format!("hit ratio on {name}"), &series);
    std::fs::write(path, svg).with_context(|| format!("writing {}", path.display()))
}

#[derive(Serialize)]
struct CurveRow {
    policy: String,
    capacity: u64,
    hit_ratio: f64,
    miss_ratio: f64,
}

#[derive(Serialize)]
struct TuneDoc {
    trace: String,
    requests: usize,
    sampled_requests: usize,
    sample_rate: f64,
    capacity: u64,
    recommended: String,
    recommended_hit_ratio: f64,
    curve: Vec<CurveRow>,
}

fn tune_cmd(a: TuneArgs) -> anyhow::Result<Outcome> {
    if a.capacity == 0 {
        bail!("--capacity must be above 0");
    }
    if let Some(r) = a.sample_rate
        && !(r > 0.0 && r <= 1.0)
    {
        bail!("--sample-rate must be in (0, 1], got {r}");
    }
    let trace = load(&a.input)?;
    let mut opts = TuneOptions::new(a.capacity);
    opts.sample_rate = a.sample_rate;
    let bar = output::progress(0, "simulating");
    let report = tune(&trace.keys, &opts, &|d, t| {
        bar.set_length(t as u64);
        bar.set_position(d as u64);
    })?;
    bar.finish_and_clear();
    let doc = TuneDoc {
        trace: trace.name.clone(),
        requests: report.requests,
        sampled_requests: report.sampled_requests,
        sample_rate: report.sample_rate,
        capacity: report.capacity,
        recommended: report.recommended.name().to_owned(),
        recommended_hit_ratio: report
            .hit_ratio(report.recommended, report.capacity)
            .unwrap_or(0.0),
        curve: report
            .curve
            .iter()
            .map(|p| CurveRow {
                policy: p.policy.name().to_owned(),
                capacity: p.capacity,
                hit_ratio: p.hit_ratio,
                miss_ratio: 1.0 - p.hit_ratio,
            })
            .collect(),
    };
    if a.json {
        output::print_json(&doc)?;
        return Ok(Outcome::Success);
    }
    let mut caps: Vec<u64> = doc.curve.iter().map(|p| p.capacity).collect();
    caps.sort_unstable();
    caps.dedup();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "trace {}: {} requests{}",
        doc.trace,
        doc.requests,
        if doc.sample_rate < 1.0 {
            format!(
                ", sampled {:.1} % of keys ({} requests)",
                doc.sample_rate * 100.0,
                doc.sampled_requests
            )
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        out,
        "recommended at capacity {}: {} (hit ratio {:.2} %)",
        doc.capacity,
        doc.recommended,
        doc.recommended_hit_ratio * 100.0
    );
    let _ = writeln!(out, "miss ratio % by capacity:");
    let _ = write!(out, "{:16}", "policy");
    for c in &caps {
        let _ = write!(out, "{c:>11}");
    }
    out.push('\n');
    let mut names: Vec<&str> = Vec::new();
    for p in &doc.curve {
        if !names.contains(&p.policy.as_str()) {
            names.push(&p.policy);
        }
    }
    for n in names {
        let _ = write!(out, "{n:16}");
        for c in &caps {
            let m = doc
                .curve
                .iter()
                .find(|p| p.policy == n && p.capacity == *c)
                .map_or(f64::NAN, |p| p.miss_ratio * 100.0);
            let _ = write!(out, "{m:>11.2}");
        }
        out.push('\n');
    }
    print!("{out}");
    Ok(Outcome::Success)
}
