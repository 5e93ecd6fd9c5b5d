//! `perfkit bundle analyze|splitchunks|check|diff`: analysis of JavaScript bundler output.

use crate::Outcome;
use crate::output;
use anyhow::Context as _;
use perfkit_bundle::{Analysis, Format, Options};
use perfkit_core::units::format_bytes;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Arguments of `perfkit bundle`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, clap::Subcommand)]
enum Cmd {
    /// Sizes (raw, gzip, brotli) per asset, chunk, package and module, and findings.
    Analyze(AnalyzeArgs),
    /// Propose a webpack `optimization.splitChunks` configuration from the findings.
    Splitchunks(SplitArgs),
    /// Check size budgets (size-limit style); exit 1 when one is exceeded.
    Check(CheckArgs),
    /// Size deltas per entry, chunk and package between two builds.
    Diff(DiffArgs),
}

/// What every subcommand needs to read a build.
#[derive(Debug, clap::Args)]
struct InputArgs {
    /// A webpack/rspack stats file, esbuild metafile, Vite manifest, or a directory of
    /// bundles with source maps (or a Vite output directory).
    input: PathBuf,
    /// Where the emitted files are (for a stats file or metafile).
    #[arg(long)]
    dist: Option<PathBuf>,
    /// The input format, instead of detecting it: webpack, rspack, esbuild, vite, sourcemaps.
    #[arg(long)]
    format: Option<Format>,
    /// Also compute brotli (quality 11) sizes; slower.
    #[arg(long)]
    brotli: bool,
}

#[derive(Debug, clap::Args)]
struct AnalyzeArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Print one JSON document on stdout.
    #[arg(long)]
    json: bool,
    /// Write a self-contained HTML treemap report to this file.
    #[arg(long, value_name = "OUT")]
    html: Option<PathBuf>,
    /// How many rows per table in the text report.
    #[arg(long, default_value_t = 15)]
    top: usize,
}

#[derive(Debug, clap::Args)]
struct SplitArgs {
    #[command(flatten)]
    input: InputArgs,
    /// `js` prints a webpack config snippet, `json` one JSON document.
    #[arg(long = "output-format", alias = "emit", default_value = "js", value_parser = ["js", "json"])]
    output_format: String,
    /// The same as `--output-format json`.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct CheckArgs {
    #[command(flatten)]
    input: InputArgs,
    /// The budget file (JSON, size-limit style: `[{"path": "*.js", "limit": "200 kB", "gzip": true}]`).
    #[arg(long)]
    budget: PathBuf,
    /// Print one JSON document on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct DiffArgs {
    /// The old build (any analyze input, or a saved `analyze --json` document).
    old: PathBuf,
    /// The new build.
    new: PathBuf,
    /// Where the old build's emitted files are.
    #[arg(long)]
    old_dist: Option<PathBuf>,
    /// Where the new build's emitted files are.
    #[arg(long)]
    new_dist: Option<PathBuf>,
    /// Print one JSON document on stdout.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: Args) -> anyhow::Result<Outcome> {
    match args.command {
        Cmd::Analyze(a) => analyze_cmd(a),
        Cmd::Splitchunks(a) => splitchunks_cmd(a),
        Cmd::Check(a) => check_cmd(a),
        Cmd::Diff(a) => diff_cmd(a),
    }
}

fn load(input: &InputArgs) -> anyhow::Result<Analysis> {
    let opts = Options {
        dist: input.dist.clone(),
        brotli: input.brotli,
        format: input.format,
        threads: 0,
    };
    analyze_path(&input.input, &opts)
}

fn analyze_path(path: &Path, opts: &Options) -> anyhow::Result<Analysis> {
    // A saved `analyze --json` document is read back as is.
    if path.is_file()
        && let Some(a) = perfkit_bundle::diff::read_saved(path)
    {
        return Ok(a);
    }
    let bar = output::progress(0, "measuring bundles");
    let tick = |done: usize, total: usize| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    };
    let result = perfkit_bundle::analyze_with_progress(path, opts, &tick)
        .with_context(|| format!("analyzing {}", path.display()));
    bar.finish_and_clear();
    result
}

fn analyze_cmd(args: AnalyzeArgs) -> anyhow::Result<Outcome> {
    let analysis = load(&args.input)?;
    if let Some(out) = &args.html {
        let html = perfkit_bundle::html::render(&analysis);
        std::fs::write(out, html).with_context(|| format!("writing {}", out.display()))?;
        if !args.json {
            eprintln!("wrote {}", out.display());
        }
    }
    if args.json {
        output::print_json(&analysis)?;
    } else {
        print!("{}", render_text(&analysis, args.top));
    }
    Ok(Outcome::Success)
}

fn opt_bytes(v: Option<u64>) -> String {
    v.map_or_else(|| "-".to_owned(), format_bytes)
}

fn render_text(a: &Analysis, top: usize) -> String {
    let mut s = String::new();
    let brotli = a.assets.iter().any(|x| x.brotli.is_some());
    let _ = writeln!(
        s,
        "{} build: {} assets, {} chunks, {} modules, {} packages; total {} raw, {} gzip",
        format!("{:?}", a.format).to_lowercase(),
        a.assets.len(),
        a.chunks.len(),
        a.modules.len(),
        a.packages.len(),
        format_bytes(a.total_raw()),
        format_bytes(a.total_gzip())
    );
    if !a.entries.is_empty() {
        let _ = writeln!(s, "\nentries (initial load)");
        for e in &a.entries {
            let _ = writeln!(
                s,
                "  {:30} {:>12} raw {:>12} gzip{}",
                e.name,
                format_bytes(e.raw),
                opt_bytes(e.gzip),
                e.brotli
                    .map(|b| format!(" {:>12} brotli", format_bytes(b)))
                    .unwrap_or_default()
            );
        }
    }
    let _ = writeln!(s, "\nassets");
    let mut assets: Vec<_> = a.assets.iter().collect();
    assets.sort_by_key(|x| std::cmp::Reverse(x.raw));
    for x in assets.iter().take(top) {
        let _ = writeln!(
            s,
            "  {:40} {:>12} raw {:>12} gzip{}  {}",
            x.name,
            format_bytes(x.raw),
            opt_bytes(x.gzip),
            if brotli {
                format!(" {:>12} brotli", opt_bytes(x.brotli))
            } else {
                String::new()
            },
            if x.initial { "initial" } else { "async" }
        );
    }
    let _ = writeln!(s, "\npackages (output bytes)");
    for p in a.packages.iter().take(top) {
        let _ = writeln!(
            s,
            "  {:40} {:>12} out {:>12} gzip {:>6} modules",
            p.name,
            opt_bytes(p.output_size),
            opt_bytes(p.gzip),
            p.modules
        );
    }
    if !a.findings.is_empty() {
        let _ = writeln!(s, "\nfindings");
        for f in a.findings.iter().take(top * 2) {
            let _ = writeln!(
                s,
                "  [{:8}] {:>11}  {}: {}",
                f.severity,
                format_bytes(f.bytes),
                f.kind,
                f.message
            );
        }
    }
    for w in a.warnings.iter().take(10) {
        let _ = writeln!(s, "warning: {w}");
    }
    s
}

fn splitchunks_cmd(args: SplitArgs) -> anyhow::Result<Outcome> {
    let analysis = load(&args.input)?;
    let plan = perfkit_bundle::splitchunks::propose(&analysis);
    if args.json || args.output_format == "json" {
        output::print_json(&plan)?;
    } else {
        print!("{}", plan.to_js());
    }
    Ok(Outcome::Success)
}

fn check_cmd(args: CheckArgs) -> anyhow::Result<Outcome> {
    let text = std::fs::read_to_string(&args.budget)
        .with_context(|| format!("reading budget file {}", args.budget.display()))?;
    let budgets = perfkit_bundle::budget::parse(&text)
        .with_context(|| format!("in budget file {}", args.budget.display()))?;
    let mut input = args.input;
    input.brotli |= budgets
        .iter()
        .any(|b| b.compression == perfkit_bundle::budget::Compression::Brotli);
    let analysis = load(&input)?;
    let report = perfkit_bundle::budget::check(&analysis, &budgets);
    if args.json {
        output::print_json(&report)?;
    } else {
        print!("{}", report.render_table());
    }
    Ok(if report.passed {
        Outcome::Success
    } else {
        Outcome::CheckFailed
    })
}

fn diff_cmd(args: DiffArgs) -> anyhow::Result<Outcome> {
    let old = analyze_path(
        &args.old,
        &Options {
            dist: args.old_dist.clone(),
            ..Options::default()
        },
    )?;
    let new = analyze_path(
        &args.new,
        &Options {
            dist: args.new_dist.clone(),
            ..Options::default()
        },
    )?;
    let d = perfkit_bundle::diff::diff(&old, &new);
    if args.json {
        output::print_json(&d)?;
    } else {
        print!("{}", d.render_text());
    }
    Ok(Outcome::Success)
}
