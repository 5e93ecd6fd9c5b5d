//! Size budgets in the manner of size-limit: per asset glob or per entry, with a limit on
//! the raw, gzip or brotli size.
//!
//! The budget file is JSON: a list (or `{"budgets": [...]}`) of
//! `{"name"?, "path"? (glob or list of globs), "entry"?, "limit", "gzip"?, "brotli"?,
//! "compression"?}`. `limit` is a number of bytes or a size such as `"200 kB"` (kB = 1000
//! bytes, KiB = 1024). Compression is gzip unless `"brotli": true`, `"gzip": false` (raw) or
//! `"compression": "raw"|"gzip"|"brotli"` says otherwise.
//!
//! ```
//! use perfkit_bundle::budget::{parse, Compression};
//! let b = parse(r#"[{"path": "main.*.js", "limit": "300 kB"}, {"entry": "admin", "limit": 1000, "brotli": true}]"#).unwrap();
//! assert_eq!(b[0].limit, 300_000);
//! assert_eq!(b[0].compression, Compression::Gzip);
//! assert_eq!(b[1].compression, Compression::Brotli);
//! ```

use crate::error::BundleError;
use crate::model::Analysis;
use perfkit_core::ByteSize;
use perfkit_core::units::format_bytes;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// Which size a budget limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// The file size.
    Raw,
    /// gzip level 9.
    Gzip,
    /// brotli quality 11.
    Brotli,
}

/// One budget.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Budget {
    /// A label for the table.
    pub name: String,
    /// Asset globs (`*` within a path segment, `**` across, `?` one character).
    pub paths: Vec<String>,
    /// An entry whose initial assets are measured.
    pub entry: Option<String>,
    /// The limit in bytes.
    pub limit: u64,
    /// Which size is limited.
    pub compression: Compression,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum File {
    List(Vec<RawBudget>),
    Wrapped { budgets: Vec<RawBudget> },
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Limit {
    Bytes(u64),
    Text(String),
}

#[derive(Debug, Deserialize)]
struct RawBudget {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    path: Option<OneOrMany>,
    #[serde(default)]
    entry: Option<String>,
    limit: Limit,
    #[serde(default)]
    gzip: Option<bool>,
    #[serde(default)]
    brotli: Option<bool>,
    #[serde(default)]
    compression: Option<Compression>,
}

/// Parses a size such as `200 kB`, `1.5 MB`, `300KiB` or `1024`.
pub fn parse_limit(text: &str) -> Result<u64, BundleError> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    // size-limit writes `KB` for 1000 bytes.
    let compact = compact
        .replace("KB", "kB")
        .replace("Kb", "kB")
        .replace("kb", "kB");
    compact
        .parse::<ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|e| BundleError::Budget(format!("limit {text:?}: {e}")))
}

/// Parses a budget file.
pub fn parse(text: &str) -> Result<Vec<Budget>, BundleError> {
    let file: File = serde_json::from_str(text).map_err(|e| {
        BundleError::Budget(format!(
            "expected a JSON list of {{\"path\" or \"entry\", \"limit\"}} objects: {e}"
        ))
    })?;
    let raw = match file {
        File::List(v) | File::Wrapped { budgets: v } => v,
    };
    raw.into_iter()
        .enumerate()
        .map(|(i, r)| {
            let paths = match r.path {
                None => Vec::new(),
                Some(OneOrMany::One(p)) => vec![p],
                Some(OneOrMany::Many(v)) => v,
            };
            // Backtracking globs are exponential in their stars: keep them human-sized.
            if let Some(p) = paths.iter().find(|p| p.matches('*').count() > 12) {
                return Err(BundleError::Budget(format!(
                    "glob {p:?} has more than 12 '*'"
                )));
            }
            if paths.is_empty() && r.entry.is_none() {
                return Err(BundleError::Budget(format!(
                    "budget #{} has neither \"path\" nor \"entry\"",
                    i + 1
                )));
            }
            let limit = match r.limit {
                Limit::Bytes(b) => b,
                Limit::Text(t) => parse_limit(&t)?,
            };
            let compression = r.compression.unwrap_or(if r.brotli == Some(true) {
                Compression::Brotli
            } else if r.gzip == Some(false) {
                Compression::Raw
            } else {
                Compression::Gzip
            });
            let name = r.name.unwrap_or_else(|| match &r.entry {
                Some(e) => format!("entry {e}"),
                None => paths.join(", "),
            });
            Ok(Budget {
                name,
                paths,
                entry: r.entry,
                limit,
                compression,
            })
        })
        .collect()
}

/// Glob matching: `*` any run within a segment, `**` any run, `?` one character.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8], depth: usize) -> bool {
        if depth > 64 {
            return false;
        }
        match p.first() {
            None => t.is_empty(),
            Some(b'*') if p.get(1) == Some(&b'*') => {
                let rest = p[2..].strip_prefix(b"/").unwrap_or(&p[2..]);
                (0..=t.len()).any(|i| go(rest, &t[i..], depth + 1))
            }
            Some(b'*') => {
                let mut i = 0;
                loop {
                    if go(&p[1..], &t[i..], depth + 1) {
                        return true;
                    }
                    if i >= t.len() || t[i] == b'/' {
                        return false;
                    }
                    i += 1;
                }
            }
            Some(b'?') => !t.is_empty() && t[0] != b'/' && go(&p[1..], &t[1..], depth + 1),
            Some(&c) => t.first() == Some(&c) && go(&p[1..], &t[1..], depth + 1),
        }
    }
    go(pattern.as_bytes(), text.as_bytes(), 0)
}

fn matches(pattern: &str, name: &str) -> bool {
    if glob_match(pattern, name) {
        return true;
    }
    // `dist/*.js` against `main.js`: compare the last components.
    let base = |s: &str| s.rsplit('/').next().unwrap_or(s).to_owned();
    pattern.contains('/') && !pattern.contains("**") && glob_match(&base(pattern), &base(name))
}

/// The outcome of one budget.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetResult {
    /// The budget's label.
    pub name: String,
    /// Which size is limited.
    pub compression: Compression,
    /// The measured size (None when nothing matched or the size is unknown).
    pub size: Option<u64>,
    /// The limit.
    pub limit: u64,
    /// Whether the size is within the limit.
    pub passed: bool,
    /// The assets measured.
    pub assets: Vec<String>,
    /// Why the budget could not be measured, if so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// All budgets' outcomes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckReport {
    /// Whether every budget passed.
    pub passed: bool,
    /// One row per budget.
    pub results: Vec<BudgetResult>,
}

/// Measures every budget against the analysis.
pub fn check(a: &Analysis, budgets: &[Budget]) -> CheckReport {
    let results: Vec<BudgetResult> = budgets
        .iter()
        .map(|b| {
            let mut assets: Vec<String> = Vec::new();
            let mut error = None;
            if let Some(e) = &b.entry {
                match a.entries.iter().find(|x| &x.name == e) {
                    Some(entry) => assets.extend(entry.assets.iter().cloned()),
                    None => error = Some(format!("no entry named {e:?}")),
                }
            }
            for x in &a.assets {
                if b.paths.iter().any(|p| matches(p, &x.name)) && !assets.contains(&x.name) {
                    assets.push(x.name.clone());
                }
            }
            if assets.is_empty() && error.is_none() {
                error = Some("matches no asset".into());
            }
            let mut size = Some(0u64);
            for name in &assets {
                let s = a.asset(name).and_then(|x| match b.compression {
                    Compression::Raw => Some(x.raw),
                    Compression::Gzip => x.gzip,
                    Compression::Brotli => x.brotli,
                });
                size = size.zip(s).map(|(p, q)| p + q);
            }
            if size.is_none() && error.is_none() {
                error = Some("size unknown (emitted files not found; pass --dist)".into());
            }
            let size = if error.is_some() { None } else { size };
            BudgetResult {
                name: b.name.clone(),
                compression: b.compression,
                size,
                limit: b.limit,
                passed: size.is_some_and(|s| s <= b.limit),
                assets,
                error,
            }
        })
        .collect();
    CheckReport {
        passed: results.iter().all(|r| r.passed),
        results,
    }
}

impl CheckReport {
    /// A table for a terminal: one row per budget, failures marked.
    pub fn render_table(&self) -> String {
        let w = self
            .results
            .iter()
            .map(|r| r.name.len())
            .max()
            .unwrap_or(6)
            .max(6);
        let mut s = String::new();
        let _ = writeln!(
            s,
            "  {:w$}  {:>7}  {:>12}  {:>12}  {:>7}  status",
            "budget", "size of", "size", "limit", "used"
        );
        for r in &self.results {
            let comp = format!("{:?}", r.compression).to_lowercase();
            let size = r.size.map_or_else(|| "-".to_owned(), format_bytes);
            let used = r.size.map_or_else(
                || "-".to_owned(),
                |sz| format!("{:.0} %", sz as f64 * 100.0 / r.limit.max(1) as f64),
            );
            let status = match (&r.error, r.passed) {
                (Some(e), _) => format!("ERROR: {e}"),
                (None, true) => "ok".to_owned(),
                (None, false) => format!(
                    "EXCEEDED by {}",
                    format_bytes(r.size.unwrap_or(0).saturating_sub(r.limit))
                ),
            };
            let _ = writeln!(
                s,
                "  {:w$}  {comp:>7}  {size:>12}  {:>12}  {used:>7}  {status}",
                r.name,
                format_bytes(r.limit)
            );
        }
        let failed = self.results.iter().filter(|r| !r.passed).count();
        if failed == 0 {
            let _ = writeln!(s, "all {} budget(s) met", self.results.len());
        } else {
            let _ = writeln!(
                s,
                "{failed} of {} budget(s) exceeded or unmeasurable",
                self.results.len()
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*.js", "main.1234.js"));
        assert!(!glob_match("*.js", "js/main.js"));
        assert!(glob_match("**/*.js", "js/main.js"));
        assert!(glob_match("main.????.js", "main.1234.js"));
        assert!(matches("dist/*.chunk.js", "421.abc.chunk.js"));
        assert!(!glob_match("*.css", "main.js"));
    }

    #[test]
    fn limits() {
        assert_eq!(parse_limit("10 KB").unwrap(), 10_000);
        assert_eq!(parse_limit("1.5 MB").unwrap(), 1_500_000);
        assert_eq!(parse_limit("2 KiB").unwrap(), 2048);
        assert!(parse_limit("ten").is_err());
        assert!(parse(r#"[{"limit": "1 kB"}]"#).is_err());
        assert!(
            parse(r#"{"budgets": [{"path": "*.js", "limit": "1 kB", "gzip": false}]}"#).unwrap()[0]
                .compression
                == Compression::Raw
        );
    }
}
