//! Suite `alloc`: an allocation-heavy workload on 2 threads under `System`, under
//! `perfkit_alloc::TrackingAllocator<System>` and under `stats_alloc::StatsAlloc<System>`,
//! each in its own binary (one global allocator per process).
//!
//! The binaries are built by this suite through cargo when it runs under `cargo run`
//! (same profile as this binary), then run in interleaved rounds; the median of each is
//! compared. The figure is CPU time per operation per thread (`CLOCK_THREAD_CPUTIME_ID`),
//! so that other processes on a shared machine do not inflate it.

use crate::suite::{Options, Suite, SuiteResult, median};
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

pub(crate) struct AllocSuite;

const BINARIES: [(&str, &str); 3] = [
    ("system", "alloc-system"),
    ("tracking", "alloc-tracking"),
    ("stats_alloc", "alloc-stats-alloc"),
];

fn exe_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating perfkit-bench")?;
    exe.parent()
        .map(Path::to_path_buf)
        .context("perfkit-bench has no parent directory")
}

/// Builds the allocator binaries with cargo, in this binary's profile.
fn build(dir: &Path) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "--quiet",
        "-p",
        "perfkit-bench",
        "--no-default-features",
    ])
    .args(["--features", "alloc"]);
    for (_, bin) in BINARIES {
        cmd.args(["--bin", bin]);
    }
    if dir.ends_with("release") {
        cmd.arg("--release");
    }
    let status = cmd
        .status()
        .context("running cargo to build the allocator binaries")?;
    if !status.success() {
        bail!("building the allocator binaries failed ({status})");
    }
    Ok(())
}

fn run_once(path: &Path, ops: u64) -> anyhow::Result<f64> {
    let out = Command::new(path)
        .arg(ops.to_string())
        .output()
        .with_context(|| format!("running {}", path.display()))?;
    if !out.status.success() {
        bail!(
            "{} failed: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("reading the output of {}", path.display()))?;
    doc["ns_per_op"]
        .as_f64()
        .with_context(|| format!("{} printed no ns_per_op", path.display()))
}

impl Suite for AllocSuite {
    fn name(&self) -> &'static str {
        "alloc"
    }

    fn description(&self) -> &'static str {
        "allocation-heavy workload, 2 threads: TrackingAllocator<System> vs System vs stats_alloc"
    }

    fn run(&self, opts: &Options) -> anyhow::Result<SuiteResult> {
        let dir = exe_dir()?;
        if std::env::var_os("CARGO").is_some() {
            build(&dir)?;
        }
        let paths: Vec<PathBuf> = BINARIES.iter().map(|(_, b)| dir.join(b)).collect();
        for p in &paths {
            if !p.exists() {
                bail!(
                    "{} is missing: build it with `cargo build --release -p perfkit-bench --bins`",
                    p.display()
                );
            }
        }
        let (rounds, ops) = if opts.quick {
            (1, 200_000)
        } else {
            (11, 2_000_000)
        };
        let mut times = vec![Vec::new(); BINARIES.len()];
        for _ in 0..rounds {
            for (i, p) in paths.iter().enumerate() {
                times[i].push(run_once(p, ops)?);
            }
        }
        let medians: Vec<f64> = times.iter().cloned().map(median).collect();
        let mut result = SuiteResult::new("alloc");
        for ((name, _), m) in BINARIES.iter().zip(&medians) {
            result.row("2 threads, CPU ns per op (median)", name, *m, "ns/op");
        }
        result
            .ratios
            .insert("tracking_vs_system".into(), medians[1] / medians[0]);
        result
            .ratios
            .insert("tracking_vs_stats_alloc".into(), medians[1] / medians[2]);
        // The fastest round of each is the least disturbed by other processes: shown too.
        let mins: Vec<f64> = times
            .iter()
            .map(|t| t.iter().copied().fold(f64::INFINITY, f64::min))
            .collect();
        for ((name, _), m) in BINARIES.iter().zip(&mins) {
            result.row(
                "2 threads, CPU ns per op (fastest round)",
                name,
                *m,
                "ns/op",
            );
        }
        result.extra.insert(
            "fastest_round_ratios".into(),
            serde_json::json!({
                "tracking_vs_system": mins[1] / mins[0],
                "tracking_vs_stats_alloc": mins[1] / mins[2],
            }),
        );
        result.extra.insert("rounds".into(), rounds.into());
        result.extra.insert("ops_per_thread".into(), ops.into());
        Ok(result)
    }
}
