//! Size deltas between two builds, per entry, chunk and package, for CI.
//!
//! Chunks are matched by name (hashed file names and numeric ids change between builds),
//! falling back to the id for unnamed chunks.

use crate::model::Analysis;
use perfkit_core::units::format_bytes;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// One compared item.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delta {
    /// The entry, chunk or package.
    pub name: String,
    /// Old size (raw bytes for entries and chunks, output bytes for packages); `None` when new.
    pub old: Option<u64>,
    /// New size; `None` when removed.
    pub new: Option<u64>,
    /// new - old.
    pub delta: i64,
    /// Old gzip size, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_gzip: Option<u64>,
    /// New gzip size, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_gzip: Option<u64>,
    /// new gzip - old gzip, when both are known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gzip_delta: Option<i64>,
}

/// The difference between two builds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BundleDiff {
    /// Total raw bytes, old and new.
    pub total: Delta,
    /// Per entry (initial load).
    pub entries: Vec<Delta>,
    /// Per chunk (matched by name).
    pub chunks: Vec<Delta>,
    /// Per package (output bytes, else stat bytes).
    pub packages: Vec<Delta>,
}

/// Reads a document written by `analyze --json`, or `None` if the file is not one.
pub fn read_saved(path: &Path) -> Option<Analysis> {
    use std::io::Read as _;
    let mut head = [0u8; 256];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .ok()?;
    let head = String::from_utf8_lossy(&head[..n]);
    if !head.trim_start().starts_with('{') || !head.contains("\"format\"") {
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

type Sizes = BTreeMap<String, (u64, Option<u64>)>;

fn compare(old: &Sizes, new: &Sizes) -> Vec<Delta> {
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out: Vec<Delta> = keys
        .into_iter()
        .map(|k| make(k, old.get(k).copied(), new.get(k).copied()))
        .filter(|d| {
            d.delta != 0 || d.old.is_none() || d.new.is_none() || d.gzip_delta.unwrap_or(0) != 0
        })
        .collect();
    out.sort_by(|a, b| {
        b.delta
            .unsigned_abs()
            .cmp(&a.delta.unsigned_abs())
            .then_with(|| a.name.cmp(&b.name))
    });
    out
}

fn make(name: &str, old: Option<(u64, Option<u64>)>, new: Option<(u64, Option<u64>)>) -> Delta {
    let o = old.map(|x| x.0);
    let n = new.map(|x| x.0);
    let og = old.and_then(|x| x.1);
    let ng = new.and_then(|x| x.1);
    let gzip_delta = match (old, new) {
        (Some((_, Some(a))), Some((_, Some(b)))) => Some(b as i64 - a as i64),
        (None, Some((_, Some(b)))) => Some(b as i64),
        (Some((_, Some(a))), None) => Some(-(a as i64)),
        _ => None,
    };
    Delta {
        name: name.to_owned(),
        old: o,
        new: n,
        delta: n.unwrap_or(0) as i64 - o.unwrap_or(0) as i64,
        old_gzip: og,
        new_gzip: ng,
        gzip_delta,
    }
}

fn chunk_sizes(a: &Analysis) -> Sizes {
    let mut m = Sizes::new();
    for c in &a.chunks {
        let key = if c.names.is_empty() {
            format!("#{}", c.id)
        } else {
            c.names.join("+")
        };
        let e = m.entry(key).or_insert((0, Some(0)));
        e.0 += c.raw;
        e.1 = e.1.zip(c.gzip).map(|(x, y)| x + y);
    }
    m
}

/// Compares two analyses.
pub fn diff(old: &Analysis, new: &Analysis) -> BundleDiff {
    let entries = |a: &Analysis| -> Sizes {
        a.entries
            .iter()
            .map(|e| (e.name.clone(), (e.raw, e.gzip)))
            .collect()
    };
    let packages = |a: &Analysis| -> Sizes {
        a.packages
            .iter()
            .map(|p| {
                (
                    p.name.clone(),
                    (p.output_size.unwrap_or(p.stat_size), p.gzip),
                )
            })
            .collect()
    };
    let total = |a: &Analysis| -> (u64, Option<u64>) {
        let gz = a
            .assets
            .iter()
            .try_fold(0u64, |acc, x| x.gzip.map(|g| acc + g));
        (a.total_raw(), gz)
    };
    BundleDiff {
        total: make("total", Some(total(old)), Some(total(new))),
        entries: compare(&entries(old), &entries(new)),
        chunks: compare(&chunk_sizes(old), &chunk_sizes(new)),
        packages: compare(&packages(old), &packages(new)),
    }
}

fn signed(v: i64) -> String {
    let s = format_bytes(v.unsigned_abs());
    match v {
        v if v > 0 => format!("+{s}"),
        v if v < 0 => format!("-{s}"),
        _ => "0".into(),
    }
}

impl BundleDiff {
    /// The diff as text tables.
    pub fn render_text(&self) -> String {
        let mut s = String::new();
        let t = &self.total;
        let _ = writeln!(
            s,
            "total: {} -> {} ({}{})",
            format_bytes(t.old.unwrap_or(0)),
            format_bytes(t.new.unwrap_or(0)),
            signed(t.delta),
            t.gzip_delta
                .map(|g| format!(", gzip {}", signed(g)))
                .unwrap_or_default()
        );
        for (title, rows) in [
            ("entries", &self.entries),
            ("chunks", &self.chunks),
            ("packages", &self.packages),
        ] {
            if rows.is_empty() {
                continue;
            }
            let _ = writeln!(s, "\n{title}");
            for d in rows.iter().take(30) {
                let show = |v: Option<u64>| v.map_or_else(|| "(none)".to_owned(), format_bytes);
                let _ = writeln!(
                    s,
                    "  {:40} {:>12} -> {:>12}  {:>12}{}",
                    d.name,
                    show(d.old),
                    show(d.new),
                    signed(d.delta),
                    d.gzip_delta
                        .map(|g| format!("  gzip {}", signed(g)))
                        .unwrap_or_default()
                );
            }
        }
        s
    }
}
