//! Suite `bundle`: `perfkit bundle analyze` against webpack-bundle-analyzer 5.4 (JSON
//! report mode, the same stats and dist) and source-map-explorer 2.5 (`--json
//! --no-border-checks`, the same bundles), wall time and peak RSS, on the real medium build
//! (`../shared/data/bundle/medium.tar.xz`) and on the large one (627 MB stats, 16k
//! modules) when `../shared/scripts/make-inputs.sh` has built it into
//! `$PERFKIT_BUNDLE_INPUTS` or `/tmp/perfkit-bundle-inputs`.
//!
//! perfkit runs as a child process of this binary (the same library code the CLI calls,
//! printing the same JSON document), so that its peak RSS is measured alone, with
//! `wait4`'s rusage, like the Node tools'. The JS tools are installed with npm into
//! `/tmp/perfkit-bench-js` when missing.
//!
//! Keys: `ratios.time_vs_webpack_bundle_analyzer`, `ratios.rss_vs_webpack_bundle_analyzer`,
//! `ratios.time_vs_source_map_explorer` (medium input; goals at most 0.1, 0.5, 0.5), and the
//! same with a `_large` suffix when the large input exists.

use crate::suite::{Options, Suite, SuiteResult};
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

pub(crate) struct BundleSuite;

const CHILD_ENV: &str = "PERFKIT_BENCH_BUNDLE_CHILD";
const JS_DIR: &str = "/tmp/perfkit-bench-js";
const INPUT_DIR: &str = "/tmp/perfkit-bench-bundle";
/// Where `make-inputs.sh` builds the large input (or `$PERFKIT_BUNDLE_INPUTS`).
const LARGE_DIR: &str = "/tmp/perfkit-bundle-inputs";

/// One measured run: wall seconds and peak RSS in bytes.
#[derive(Debug, Clone, Copy)]
struct Run {
    secs: f64,
    rss: u64,
}

/// Runs `cmd` to completion and returns its wall time and peak RSS (from `wait4`).
fn measure(mut cmd: Command) -> anyhow::Result<Run> {
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let start = Instant::now();
    let child = cmd.spawn().with_context(|| format!("spawning {cmd:?}"))?;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our child, not yet reaped; the pointers are valid for the call.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let secs = start.elapsed().as_secs_f64();
    if rc != pid {
        bail!("wait4 failed for {cmd:?}");
    }
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        bail!("{cmd:?} failed (status {status})");
    }
    // Linux reports ru_maxrss in KiB.
    Ok(Run {
        secs,
        rss: usage.ru_maxrss.max(0) as u64 * 1024,
    })
}

/// The median run (by time) of `n`, with the median RSS.
fn median(mut make: impl FnMut() -> Command, n: usize) -> anyhow::Result<Run> {
    let mut runs = Vec::with_capacity(n);
    for _ in 0..n {
        runs.push(measure(make())?);
    }
    let mut times: Vec<f64> = runs.iter().map(|r| r.secs).collect();
    let mut rss: Vec<u64> = runs.iter().map(|r| r.rss).collect();
    times.sort_by(f64::total_cmp);
    rss.sort_unstable();
    Ok(Run {
        secs: times[times.len() / 2],
        rss: rss[rss.len() / 2],
    })
}

fn ensure_js_tools() -> anyhow::Result<PathBuf> {
    let bin = Path::new(JS_DIR).join("node_modules/.bin");
    if bin.join("webpack-bundle-analyzer").exists() && bin.join("source-map-explorer").exists() {
        return Ok(bin);
    }
    eprintln!(
        "bundle suite: installing webpack-bundle-analyzer and source-map-explorer into {JS_DIR}"
    );
    std::fs::create_dir_all(JS_DIR)?;
    let pkg = Path::new(JS_DIR).join("package.json");
    if !pkg.exists() {
        std::fs::write(&pkg, r#"{"name":"perfkit-bench-js","private":true}"#)?;
    }
    let status = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--save-exact"])
        .args(["webpack-bundle-analyzer@5.4.0", "source-map-explorer@2.5.3"])
        .current_dir(JS_DIR)
        .stdout(Stdio::null())
        .status()
        .context("running npm (is Node.js installed?)")?;
    if !status.success() {
        bail!("npm install failed in {JS_DIR}");
    }
    Ok(bin)
}

fn ensure_inputs() -> anyhow::Result<PathBuf> {
    let dir = PathBuf::from(INPUT_DIR);
    if dir.join("stats.json").is_file() && dir.join("dist").is_dir() {
        return Ok(dir);
    }
    let data = std::env::var_os("PERFKIT_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    let archive = data.join("bundle/medium.tar.xz");
    if !archive.is_file() {
        bail!("{} not found (set PERFKIT_DATA)", archive.display());
    }
    std::fs::create_dir_all(&dir)?;
    let status = Command::new("tar")
        .arg("-xJf")
        .arg(&archive)
        .arg("-C")
        .arg(&dir)
        .status()?;
    if !status.success() {
        bail!("unpacking {} failed", archive.display());
    }
    Ok(dir)
}

fn js_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "js"))
        .collect();
    v.sort();
    Ok(v)
}

/// In the child: analyze and print the JSON document, as `perfkit bundle analyze --json`.
fn child(spec: &str) -> ! {
    let (input, dist) = match spec.split_once('\u{1f}') {
        Some((i, d)) => (PathBuf::from(i), Some(PathBuf::from(d))),
        None => (PathBuf::from(spec), None),
    };
    let opts = perfkit_bundle::Options {
        dist,
        ..perfkit_bundle::Options::default()
    };
    let code = match perfkit_bundle::analyze(&input, &opts) {
        Ok(a) => {
            let out = std::io::stdout().lock();
            match serde_json::to_writer_pretty(out, &a) {
                Ok(()) => 0,
                Err(_) => 2,
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    };
    std::process::exit(code)
}

fn perfkit_cmd(input: &Path, dist: Option<&Path>) -> anyhow::Result<Command> {
    let exe = std::env::current_exe()?;
    let mut spec = input.as_os_str().to_owned();
    if let Some(d) = dist {
        spec.push("\u{1f}");
        spec.push(d);
    }
    let mut cmd = Command::new(exe);
    cmd.arg("bundle").env(CHILD_ENV, spec);
    Ok(cmd)
}

fn compare(
    result: &mut SuiteResult,
    bin: &Path,
    dir: &Path,
    stats: &str,
    dist: &str,
    suffix: &str,
    runs: usize,
) -> anyhow::Result<()> {
    let stats = dir.join(stats);
    let dist = dir.join(dist);
    let out = std::env::temp_dir().join(format!("perfkit-bench-wba{suffix}.json"));
    let case = if suffix.is_empty() { "medium" } else { "large" };
    let pk = median(
        || perfkit_cmd(&stats, Some(&dist)).expect("current exe"),
        runs,
    )?;
    let wba = median(
        || {
            let mut c = Command::new(bin.join("webpack-bundle-analyzer"));
            c.arg(&stats)
                .arg(&dist)
                .args(["-m", "json", "-r"])
                .arg(&out)
                .arg("--no-open");
            c
        },
        runs,
    )?;
    let pk_dir = median(|| perfkit_cmd(&dist, None).expect("current exe"), runs)?;
    let files = js_files(&dist)?;
    let sme = median(
        || {
            let mut c = Command::new(bin.join("source-map-explorer"));
            c.args(&files).args(["--json", "--no-border-checks"]);
            c
        },
        runs,
    )?;
    let _ = std::fs::remove_file(&out);
    for (subject, case2, r) in [
        ("perfkit", "stats+dist", pk),
        ("webpack-bundle-analyzer", "stats+dist", wba),
        ("perfkit", "bundles+maps", pk_dir),
        ("source-map-explorer", "bundles+maps", sme),
    ] {
        result.row(&format!("{case} {case2} wall"), subject, r.secs, "s");
        result.row(
            &format!("{case} {case2} peak RSS"),
            subject,
            r.rss as f64 / 1e6,
            "MB",
        );
    }
    result.ratios.insert(
        format!("time_vs_webpack_bundle_analyzer{suffix}"),
        pk.secs / wba.secs,
    );
    result.ratios.insert(
        format!("rss_vs_webpack_bundle_analyzer{suffix}"),
        pk.rss as f64 / wba.rss as f64,
    );
    result.ratios.insert(
        format!("time_vs_source_map_explorer{suffix}"),
        pk_dir.secs / sme.secs,
    );
    result.ratios.insert(
        format!("rss_vs_source_map_explorer{suffix}"),
        pk_dir.rss as f64 / sme.rss as f64,
    );
    Ok(())
}

impl Suite for BundleSuite {
    fn name(&self) -> &'static str {
        "bundle"
    }

    fn description(&self) -> &'static str {
        "bundle analyze vs webpack-bundle-analyzer and source-map-explorer (wall, peak RSS)"
    }

    fn run(&self, opts: &Options) -> anyhow::Result<SuiteResult> {
        if let Some(spec) = std::env::var_os(CHILD_ENV) {
            child(&spec.to_string_lossy());
        }
        let bin = ensure_js_tools()?;
        let dir = ensure_inputs()?;
        let runs = if opts.quick { 1 } else { 3 };
        let mut result = SuiteResult::new("bundle");
        compare(&mut result, &bin, &dir, "stats.json", "dist", "", runs)?;
        let mut large_dirs = vec![dir.clone(), PathBuf::from(LARGE_DIR)];
        if let Some(d) = std::env::var_os("PERFKIT_BUNDLE_INPUTS") {
            large_dirs.insert(0, PathBuf::from(d));
        }
        let large = large_dirs
            .into_iter()
            .find(|d| d.join("stats-large.json").is_file() && d.join("dist-large").is_dir());
        if let Some(large) = large {
            compare(
                &mut result,
                &bin,
                &large,
                "stats-large.json",
                "dist-large",
                "_large",
                runs,
            )?;
        } else {
            result.extra.insert(
                "large".into(),
                serde_json::json!(format!(
                    "skipped: build it with `bash ../shared/scripts/make-inputs.sh {LARGE_DIR}`"
                )),
            );
        }
        result.extra.insert("runs".into(), serde_json::json!(runs));
        Ok(result)
    }
}
