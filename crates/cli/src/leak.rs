//! `perfkit leak analyze FILE`: classifies a memory series (CSV or JSON lines with `t` and
//! `bytes`), estimates when it reaches the limit, and draws it with its fitted trend.

use crate::{Outcome, output};
use anyhow::{Context as _, bail};
use perfkit_alloc::{MemorySource, SystemMemorySource};
use perfkit_core::ByteSize;
use perfkit_core::units::format_bytes;
use perfkit_leak::{Analysis, AnalysisConfig, LimitKind, MemoryLimit, Sample, format_secs};
use std::path::{Path, PathBuf};

/// Arguments of `perfkit leak`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: LeakCommand,
}

#[derive(Debug, clap::Subcommand)]
enum LeakCommand {
    /// Classify a memory series (none, linear, exponential, sawtooth, step, no_cleanup) and
    /// estimate when it reaches the memory limit.
    Analyze(AnalyzeArgs),
}

/// Arguments of `perfkit leak analyze`.
#[derive(Debug, clap::Args)]
struct AnalyzeArgs {
    /// CSV with a header naming the columns `t` (seconds) and `bytes` (in any order, other
    /// columns ignored), or JSON lines with the same keys (`.jsonl`, or lines starting with
    /// `{`).
    file: PathBuf,
    /// The memory limit for the OOM estimate, in bytes or as a size (`2GiB`, `512M`).
    /// Default: this machine's memory.
    #[arg(long, value_name = "BYTES")]
    limit: Option<ByteSize>,
    /// Print one JSON document on stdout.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: Args) -> anyhow::Result<Outcome> {
    match args.command {
        LeakCommand::Analyze(a) => analyze(a),
    }
}

fn analyze(args: AnalyzeArgs) -> anyhow::Result<Outcome> {
    let series = read_series(&args.file)?;
    let limit = match args.limit {
        Some(b) if b.as_u64() == 0 => bail!("--limit must be greater than zero"),
        Some(b) => Some(MemoryLimit::new(b.as_u64(), LimitKind::Explicit)),
        None => SystemMemorySource::new()
            .read()
            .ok()
            .and_then(|r| r.limit_bytes)
            .map(|b| MemoryLimit::new(b, LimitKind::System)),
    };
    let mut analysis = perfkit_leak::analyze(&series.samples, &AnalysisConfig::default(), limit);
    analysis.notes.splice(0..0, series.notes.iter().cloned());
    if args.json {
        output::print_json(&json_document(&analysis, limit))?;
    } else {
        print!("{}", render(&args.file, &analysis, &series.samples));
    }
    Ok(Outcome::Success)
}

/// The `--json` document: the keys first, then the details.
pub(crate) fn json_document(a: &Analysis, limit: Option<MemoryLimit>) -> serde_json::Value {
    let oom = a.oom.filter(|_| a.leak);
    serde_json::json!({
        "pattern": a.pattern,
        "leak": a.leak,
        "confidence": round(a.confidence, 4),
        "growth_bytes_per_sec": round(a.growth_bytes_per_sec, 3),
        "oom_eta_secs": oom.and_then(|o| o.eta_secs).map(|v| round(v, 1)),
        "severity": a.severity,
        "points": a.points,
        "oom_eta_low_secs": oom.and_then(|o| o.eta_low_secs).map(|v| round(v, 1)),
        "oom_eta_high_secs": oom.and_then(|o| o.eta_high_secs).map(|v| round(v, 1)),
        "limit_bytes": limit.map(|l| l.bytes),
        "limit_source": limit.map(|l| l.kind),
        "analyzed_points": a.analyzed_points,
        "insufficient_data": a.insufficient_data,
        "window_secs": a.window_secs,
        "restart_at_secs": a.restart_at_secs,
        "trend": a.trend,
        "model": a.model,
        "evidence": a.evidence,
        "notes": a.notes,
    })
}

fn round(v: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    if v.is_finite() {
        (v * m).round() / m
    } else {
        v
    }
}

/// A series read from a file, with what was repaired on the way.
#[derive(Debug)]
pub(crate) struct Series {
    pub(crate) samples: Vec<Sample>,
    pub(crate) notes: Vec<String>,
}

/// Reads CSV or JSON lines. Errors name the file and the line.
pub(crate) fn read_series(path: &Path) -> anyhow::Result<Series> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_series(&text, is_jsonl(path, &text))
        .with_context(|| format!("{} is not a usable memory series", path.display()))
}

fn is_jsonl(path: &Path, text: &str) -> bool {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "jsonl" | "ndjson" | "json" => true,
        "csv" => false,
        _ => text.trim_start().starts_with('{'),
    }
}

/// Parses a series; `jsonl` picks JSON lines over CSV.
pub(crate) fn parse_series(text: &str, jsonl: bool) -> anyhow::Result<Series> {
    let samples = if jsonl {
        parse_jsonl(text)?
    } else {
        parse_csv(text)?
    };
    let rows: Vec<&(usize, Sample)> = samples.iter().collect();
    match rows.len() {
        0 => bail!("no samples: the file has no data rows"),
        1 => bail!(
            "only one sample (line {}): a trend needs at least 10 samples over time",
            rows[0].0
        ),
        _ => {}
    }
    let mut notes = Vec::new();
    if let Some(w) = samples.windows(2).find(|w| w[1].1.t_secs < w[0].1.t_secs) {
        let out_of_order = samples
            .windows(2)
            .filter(|w| w[1].1.t_secs < w[0].1.t_secs)
            .count();
        notes.push(format!(
            "line {}: t={} is earlier than the previous sample's t={} ({out_of_order} such rows); the samples were sorted by time",
            w[1].0, w[1].1.t_secs, w[0].1.t_secs
        ));
    }
    Ok(Series {
        samples: samples.into_iter().map(|(_, s)| s).collect(),
        notes,
    })
}

fn parse_csv(text: &str) -> anyhow::Result<Vec<(usize, Sample)>> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
    let Some((header_line, header)) = lines.next() else {
        bail!("the file is empty");
    };
    let names: Vec<String> = split_csv(header).map(|c| c.to_ascii_lowercase()).collect();
    let find = |want: &str| names.iter().position(|n| n == want);
    let (Some(ti), Some(bi)) = (find("t"), find("bytes")) else {
        let looks_numeric = names.first().is_some_and(|n| n.parse::<f64>().is_ok());
        if looks_numeric {
            bail!(
                "line {header_line}: no header; the first line must name the columns, such as `t,bytes`"
            );
        }
        bail!(
            "line {header_line}: the header must name the columns `t` and `bytes` (found: {})",
            names.join(", ")
        );
    };
    let mut out = Vec::new();
    for (line, row) in lines {
        let fields: Vec<String> = split_csv(row).collect();
        let field = |i: usize, name: &str| {
            fields.get(i).map(String::as_str).ok_or_else(|| {
                anyhow::anyhow!(
                    "line {line}: has {} columns, the header has {}; `{name}` is missing",
                    fields.len(),
                    names.len()
                )
            })
        };
        let t = parse_t(field(ti, "t")?, line)?;
        let bytes = parse_bytes(field(bi, "bytes")?, line)?;
        out.push((line, Sample::new(t, bytes)));
    }
    Ok(out)
}

fn split_csv(line: &str) -> impl Iterator<Item = String> + '_ {
    line.split(',')
        .map(|f| f.trim().trim_matches('"').trim().to_owned())
}

fn parse_t(s: &str, line: usize) -> anyhow::Result<f64> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => bail!("line {line}: t={s:?} is not a number of seconds"),
    }
}

fn parse_bytes(s: &str, line: usize) -> anyhow::Result<u64> {
    if let Ok(v) = s.parse::<u64>() {
        return Ok(v);
    }
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 && v < u64::MAX as f64 => Ok(v.round() as u64),
        Ok(_) => bail!("line {line}: bytes={s:?} is not a non-negative byte count"),
        Err(_) => bail!("line {line}: bytes={s:?} is not a number"),
    }
}

fn parse_jsonl(text: &str) -> anyhow::Result<Vec<(usize, Sample)>> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let l = raw.trim();
        if l.is_empty() {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(l).with_context(|| format!("line {line}: not a JSON object"))?;
        let get = |key: &str| {
            v.get(key)
                .ok_or_else(|| anyhow::anyhow!("line {line}: the key `{key}` is missing"))
        };
        let t = match get("t")? {
            serde_json::Value::Number(n) => n.as_f64().filter(|v| v.is_finite()),
            _ => None,
        }
        .ok_or_else(|| anyhow::anyhow!("line {line}: `t` is not a number of seconds"))?;
        let bytes = match get("bytes")? {
            serde_json::Value::Number(n) => n
                .as_u64()
                .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f.round() as u64)),
            _ => None,
        }
        .ok_or_else(|| anyhow::anyhow!("line {line}: `bytes` is not a non-negative number"))?;
        out.push((line, Sample::new(t, bytes)));
    }
    Ok(out)
}

const SPARKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// Two sparklines on one scale: the series (bucket means over time) and the fitted trend.
pub(crate) fn sparklines(
    samples: &[Sample],
    a: &Analysis,
    width: usize,
) -> Option<(String, String, f64, f64)> {
    let (t0, t1) = a.window_secs?;
    if t1 <= t0 || width == 0 {
        return None;
    }
    let mut sums = vec![(0.0f64, 0usize); width];
    for s in samples.iter().filter(|s| s.t_secs >= t0 && s.t_secs <= t1) {
        let k = (((s.t_secs - t0) / (t1 - t0)) * width as f64) as usize;
        let slot = &mut sums[k.min(width - 1)];
        slot.0 += s.bytes as f64;
        slot.1 += 1;
    }
    let series: Vec<Option<f64>> = sums
        .iter()
        .map(|&(s, n)| (n > 0).then(|| s / n as f64))
        .collect();
    let trend: Vec<Option<f64>> = (0..width)
        .map(|k| {
            let t = t0 + (k as f64 + 0.5) / width as f64 * (t1 - t0);
            a.model.map(|m| m.at(t))
        })
        .collect();
    let values = series.iter().chain(&trend).flatten().copied();
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !lo.is_finite() || !hi.is_finite() {
        return None;
    }
    let draw = |vals: &[Option<f64>]| -> String {
        vals.iter()
            .map(|v| match v {
                None => ' ',
                Some(v) => {
                    let x = if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
                    SPARKS[((x.clamp(0.0, 1.0)) * 7.0).round() as usize]
                }
            })
            .collect()
    };
    Some((draw(&series), draw(&trend), lo, hi))
}

fn render(path: &Path, a: &Analysis, samples: &[Sample]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let span = a.window_secs.map_or(0.0, |(s, e)| e - s);
    let _ = writeln!(
        out,
        "{}: {} samples ({} analysed over {})",
        path.display(),
        a.points,
        a.analyzed_points,
        format_secs(span)
    );
    if a.insufficient_data {
        let _ = writeln!(out, "verdict: not enough data");
    } else if a.leak {
        let _ = writeln!(
            out,
            "verdict: {} leak, confidence {:.0} %, severity {}",
            a.pattern,
            a.confidence * 100.0,
            a.severity
        );
    } else {
        let _ = writeln!(
            out,
            "verdict: no leak (pattern none), confidence {:.0} %",
            a.confidence * 100.0
        );
    }
    let growth = a.growth_bytes_per_sec;
    let sign = if growth < 0.0 { "-" } else { "" };
    let _ = writeln!(
        out,
        "growth:  {sign}{}/s ({sign}{}/h)",
        format_bytes(growth.abs().round() as u64),
        format_bytes((growth.abs() * 3600.0).round() as u64)
    );
    match a.oom {
        Some(oom) if a.leak => {
            let _ = match oom.eta_secs {
                Some(eta) => writeln!(
                    out,
                    "OOM:     reaches the {} limit of {} in ~{} (range {} to {})",
                    oom.limit_source,
                    format_bytes(oom.limit_bytes),
                    format_secs(eta),
                    oom.eta_low_secs.map_or("?".to_owned(), format_secs),
                    oom.eta_high_secs.map_or("never".to_owned(), format_secs)
                ),
                None => writeln!(out, "OOM:     no estimate (memory is not growing now)"),
            };
        }
        Some(oom) => {
            let _ = writeln!(
                out,
                "OOM:     not expected (limit: {} of {})",
                oom.limit_source,
                format_bytes(oom.limit_bytes)
            );
        }
        None => {
            let _ = writeln!(out, "OOM:     no limit known (pass --limit)");
        }
    }
    let width = a.analyzed_points.clamp(1, 60);
    if let Some((series, trend, lo, hi)) = sparklines(samples, a, width) {
        let _ = writeln!(
            out,
            "\n  series {series}\n  trend  {trend}\n         {} .. {}",
            format_bytes(lo.max(0.0).round() as u64),
            format_bytes(hi.max(0.0).round() as u64)
        );
    }
    if !a.evidence.is_empty() {
        let _ = writeln!(out, "\nevidence:");
        for e in &a.evidence {
            let _ = writeln!(out, "  - {e}");
        }
    }
    if !a.notes.is_empty() {
        let _ = writeln!(out, "\nnotes:");
        for n in &a.notes {
            let _ = writeln!(out, "  - {n}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_columns_in_any_order_with_extra_columns() {
        let s = parse_series("bytes,cpu,t\n100,0.5,0\n200,0.1,1.5\n", false).unwrap();
        assert_eq!(
            s.samples,
            vec![Sample::new(0.0, 100), Sample::new(1.5, 200)]
        );
        let s = parse_series("# comment\n\"T\", \"Bytes\"\n0, 1e3\n1, 2000\n", false).unwrap();
        assert_eq!(s.samples[0].bytes, 1000);
    }

    #[test]
    fn malformed_input_names_the_line() {
        let cases = [
            ("", false, "empty"),
            ("0,100\n1,200\n", false, "no header"),
            ("time,mem\n0,1\n", false, "`t` and `bytes`"),
            ("t,bytes\n0,100\n1,abc\n", false, "line 3: bytes=\"abc\""),
            ("t,bytes\nx,100\n1,1\n", false, "line 2: t=\"x\""),
            ("t,bytes\n0,100\n1\n", false, "line 3: has 1 columns"),
            ("t,bytes\n0,-5\n1,1\n", false, "line 2"),
            ("t,bytes\n0,100\n", false, "only one sample"),
            ("t,bytes\n", false, "no samples"),
            (
                "{\"t\": 0, \"bytes\": 1}\n{\"t\": 1}\n",
                true,
                "line 2: the key `bytes`",
            ),
            (
                "{\"t\": 0, \"bytes\": 1}\nnot json\n",
                true,
                "line 2: not a JSON object",
            ),
            ("{\"t\": \"0\", \"bytes\": 1}\n", true, "line 1: `t`"),
        ];
        for (text, jsonl, want) in cases {
            let err = format!("{:#}", parse_series(text, jsonl).unwrap_err());
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn unsorted_times_are_sorted_with_a_note() {
        let s = parse_series("t,bytes\n0,1\n2,2\n1,3\n3,4\n", false).unwrap();
        assert!(
            s.notes[0].contains("line 4") && s.notes[0].contains("sorted"),
            "{:?}",
            s.notes
        );
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics(text in "[tbyes,{}\":0-9.\n #x-]{0,200}", jsonl in proptest::bool::ANY) {
            let _ = parse_series(&text, jsonl);
        }

        /// A second reading: rows written in either column order and either format parse
        /// back to the same samples.
        #[test]
        fn written_series_read_back(
            rows in proptest::collection::vec((0u32..1_000_000, 0u64..(1 << 50)), 2..40),
            bytes_first in proptest::bool::ANY,
        ) {
            let want: Vec<Sample> = rows.iter().map(|&(t, b)| Sample::new(f64::from(t) / 8.0, b)).collect();
            let mut csv = String::from(if bytes_first { "bytes,t\n" } else { "t,bytes\n" });
            let mut jsonl = String::new();
            for s in &want {
                if bytes_first {
                    csv.push_str(&format!("{},{}\n", s.bytes, s.t_secs));
                } else {
                    csv.push_str(&format!("{},{}\n", s.t_secs, s.bytes));
                }
                jsonl.push_str(&format!("{{\"t\": {}, \"bytes\": {}}}\n", s.t_secs, s.bytes));
            }
            proptest::prop_assert_eq!(&parse_series(&csv, false).unwrap().samples, &want);
            proptest::prop_assert_eq!(&parse_series(&jsonl, true).unwrap().samples, &want);
        }
    }

    #[test]
    fn sparkline_draws_series_and_trend() {
        let samples: Vec<Sample> = (0..100)
            .map(|i| Sample::new(i as f64, 1000 + 10 * i + (i % 3) * 15))
            .collect();
        let a = perfkit_leak::analyze(&samples, &AnalysisConfig::default(), None);
        let (series, trend, lo, hi) = sparklines(&samples, &a, 20).unwrap();
        assert_eq!(series.chars().count(), 20);
        assert!(trend.starts_with('▁') && trend.ends_with('█'), "{trend}");
        assert!(lo < hi);
    }
}
