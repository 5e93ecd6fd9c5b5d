//! A webpack `optimization.splitChunks` configuration derived from the analysis, with
//! initial bytes per entry before and after, estimated from the module graph.
//!
//! Packages (and application modules) that two or more entries load on page load go to a
//! shared chunk: each module is then downloaded and cached once for all entries. The
//! estimate uses each module's output bytes per copy; gzip is scaled by the entry's ratio.

use crate::findings::cost;
use crate::model::Analysis;
use perfkit_core::units::format_bytes;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

/// Initial bytes of one entry, now and with the proposed configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EntryEstimate {
    /// The entry.
    pub name: String,
    /// Raw initial bytes now (the real files).
    pub before: u64,
    /// Estimated raw initial bytes with the proposal.
    pub after: u64,
    /// Gzip initial bytes now.
    pub before_gzip: Option<u64>,
    /// Estimated gzip initial bytes with the proposal.
    pub after_gzip: Option<u64>,
}

/// One proposed cache group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CacheGroup {
    /// The key in `cacheGroups`.
    pub key: String,
    /// The chunk name.
    pub name: String,
    /// The `test` regular expression (JavaScript syntax, without slashes).
    pub test: String,
    /// `minChunks`.
    pub min_chunks: u32,
    /// `priority`.
    pub priority: i32,
    /// Packages or modules it captures.
    pub members: Vec<String>,
    /// Estimated raw bytes of the chunk.
    pub bytes: u64,
}

/// The proposal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SplitPlan {
    /// Cache groups for `optimization.splitChunks.cacheGroups`.
    pub cache_groups: Vec<CacheGroup>,
    /// Initial bytes per entry.
    pub entries: Vec<EntryEstimate>,
    /// Raw bytes of all initial files together (each counted once), now.
    pub initial_total_before: u64,
    /// The same, estimated with the proposal.
    pub initial_total_after: u64,
    /// Advice beyond splitChunks (lazy loading, locale plugins), from the findings.
    pub notes: Vec<String>,
    /// The configuration as a JSON object (regular expressions as strings).
    pub config: serde_json::Value,
}

fn regex_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '/' => out.push_str("[\\\\/]"),
            '.' | '+' | '*' | '?' | '(' | ')' | '[' | ']' | '{' | '}' | '|' | '^' | '$' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// Derives the proposal.
pub fn propose(a: &Analysis) -> SplitPlan {
    let mut loaders: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    for e in &a.entries {
        for c in &e.chunks {
            loaders
                .entry(c.as_str())
                .or_default()
                .insert(e.name.as_str());
        }
    }
    let mut shared_pkgs: BTreeMap<&str, u64> = BTreeMap::new();
    let mut shared_app: BTreeMap<&str, u64> = BTreeMap::new();
    let mut removed: BTreeMap<&str, u64> = BTreeMap::new(); // entry -> bytes moved out
    let mut saved_total = 0u64;
    for m in &a.modules {
        let entries: BTreeSet<&str> = m
            .chunks
            .iter()
            .filter_map(|c| loaders.get(c.as_str()))
            .flatten()
            .copied()
            .collect();
        if entries.len() < 2 {
            continue;
        }
        let copy = cost(m) / (m.chunks.len() as u64).max(1);
        match m.package.as_deref() {
            Some(p) => *shared_pkgs.entry(p).or_insert(0) += copy,
            None => *shared_app.entry(m.name.as_str()).or_insert(0) += copy,
        }
        for e in &entries {
            *removed.entry(e).or_insert(0) += copy;
        }
        saved_total += copy * (entries.len() as u64 - 1);
    }
    let mut groups = Vec::new();
    if !shared_pkgs.is_empty() {
        let names: Vec<String> = shared_pkgs.keys().map(|s| (*s).to_owned()).collect();
        let alternation: Vec<String> = names.iter().map(|n| regex_escape(n)).collect();
        groups.push(CacheGroup {
            key: "sharedVendors".into(),
            name: "shared-vendors".into(),
            test: format!(
                "[\\\\/]node_modules[\\\\/]({})[\\\\/]",
                alternation.join("|")
            ),
            min_chunks: 2,
            priority: 20,
            members: names,
            bytes: shared_pkgs.values().sum(),
        });
    }
    // A shared-app group is worth a request only when it holds some code.
    if shared_app.values().sum::<u64>() >= 1024 {
        groups.push(CacheGroup {
            key: "sharedApp".into(),
            name: "shared-app".into(),
            test: "^(?!.*[\\\\/]node_modules[\\\\/])".into(),
            min_chunks: 2,
            priority: 10,
            members: shared_app.keys().map(|s| (*s).to_owned()).collect(),
            bytes: shared_app.values().sum(),
        });
    }
    let shared_bytes: u64 = groups.iter().map(|g| g.bytes).sum();
    let entries: Vec<EntryEstimate> = a
        .entries
        .iter()
        .map(|e| {
            let moved = removed.get(e.name.as_str()).copied().unwrap_or(0);
            let after = if moved > 0 {
                e.raw.saturating_sub(moved) + shared_bytes
            } else {
                e.raw
            };
            let after_gzip = e.gzip.map(|g| {
                if e.raw == 0 {
                    g
                } else {
                    (g as f64 * after as f64 / e.raw as f64).round() as u64
                }
            });
            EntryEstimate {
                name: e.name.clone(),
                before: e.raw,
                after,
                before_gzip: e.gzip,
                after_gzip,
            }
        })
        .collect();
    let initial_total_before: u64 = a.assets.iter().filter(|x| x.initial).map(|x| x.raw).sum();
    let mut notes = Vec::new();
    for f in &a.findings {
        match f.kind.as_str() {
            "heavy_initial_module"
            | "locale_pack"
            | "whole_library_import"
            | "duplicate_package" => {
                notes.push(f.message.clone());
            }
            _ => {}
        }
    }
    notes.truncate(12);
    let mut cache_groups = serde_json::Map::new();
    for g in &groups {
        cache_groups.insert(
            g.key.clone(),
            serde_json::json!({
                "test": g.test, "name": g.name, "chunks": "all", "minChunks": g.min_chunks,
                "priority": g.priority, "reuseExistingChunk": true, "enforce": true,
            }),
        );
    }
    let config = serde_json::json!({
        "optimization": { "splitChunks": { "chunks": "all", "cacheGroups": cache_groups } }
    });
    SplitPlan {
        cache_groups: groups,
        entries,
        initial_total_before,
        initial_total_after: initial_total_before.saturating_sub(saved_total),
        notes,
        config,
    }
}

impl SplitPlan {
    /// The proposal as a `webpack.config.js` fragment with the estimates as comments.
    pub fn to_js(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "// perfkit bundle splitchunks: proposed optimization.splitChunks"
        );
        let _ = writeln!(
            s,
            "// initial bytes per entry (raw, estimated from the module graph):"
        );
        for e in &self.entries {
            let _ = writeln!(
                s,
                "//   {:20} {:>12} -> {:>12}{}",
                e.name,
                format_bytes(e.before),
                format_bytes(e.after),
                match (e.before_gzip, e.after_gzip) {
                    (Some(b), Some(a)) =>
                        format!("   gzip {} -> {}", format_bytes(b), format_bytes(a)),
                    _ => String::new(),
                }
            );
        }
        let _ = writeln!(
            s,
            "// all initial files together: {} -> {} (each shared module downloaded and cached once)",
            format_bytes(self.initial_total_before),
            format_bytes(self.initial_total_after)
        );
        let _ = writeln!(
            s,
            "module.exports = {{\n  optimization: {{\n    splitChunks: {{\n      chunks: 'all',\n      cacheGroups: {{"
        );
        for g in &self.cache_groups {
            let _ = writeln!(
                s,
                "        // {} ({}): {}",
                g.name,
                format_bytes(g.bytes),
                summarize(&g.members)
            );
            let _ = writeln!(
                s,
                "        {}: {{ test: /{}/, name: '{}', chunks: 'all', minChunks: {}, priority: {}, reuseExistingChunk: true, enforce: true }},",
                g.key, g.test, g.name, g.min_chunks, g.priority
            );
        }
        let _ = writeln!(s, "      }},\n    }},\n  }},\n}};");
        if !self.notes.is_empty() {
            let _ = writeln!(s, "// beyond splitChunks:");
            for n in &self.notes {
                let _ = writeln!(s, "//   - {n}");
            }
        }
        s
    }
}

fn summarize(members: &[String]) -> String {
    if members.len() <= 8 {
        members.join(", ")
    } else {
        format!(
            "{}, ... ({} in all)",
            members[..8].join(", "),
            members.len()
        )
    }
}
