//! webpack's `--json` stats: entrypoint files and, as prefetch, the async chunks of the
//! entrypoint's chunks. Only the fields used are read (`modules` and the rest are skipped).

use super::{HintOptions, HintSet, ScriptKind};
use crate::error::HintError;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap, HashSet};

const FORMAT: &str = "webpack stats";

/// A chunk id: a number or a string, depending on `optimization.chunkIds`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq, Hash)]
#[serde(untagged)]
enum ChunkId {
    Num(u64),
    Str(String),
}

/// An asset reference: a name (webpack 4) or `{name, size}` (webpack 5).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum AssetRef {
    Name(String),
    Object { name: String },
}

impl AssetRef {
    fn name(&self) -> &str {
        match self {
            AssetRef::Name(n) | AssetRef::Object { name: n } => n,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
struct Entrypoint {
    #[serde(default)]
    chunks: Vec<ChunkId>,
    #[serde(default)]
    assets: Vec<AssetRef>,
}

#[derive(Debug, Clone, Deserialize)]
struct Chunk {
    id: ChunkId,
    #[serde(default)]
    files: Vec<String>,
    #[serde(default)]
    children: Vec<ChunkId>,
}

#[derive(Debug, Clone, Deserialize)]
struct Stats {
    #[serde(default)]
    entrypoints: BTreeMap<String, Entrypoint>,
    #[serde(default)]
    chunks: Vec<Chunk>,
}

/// Parsed webpack stats (entrypoints and chunks only).
#[derive(Debug, Clone)]
pub struct WebpackStats {
    stats: Stats,
}

impl WebpackStats {
    /// Parses stats.
    pub fn from_json(json: &str) -> Result<Self, HintError> {
        Self::from_slice(json.as_bytes())
    }

    /// Parses stats from bytes.
    pub fn from_slice(json: &[u8]) -> Result<Self, HintError> {
        let stats = serde_json::from_slice(json).map_err(|source| HintError::Json {
            format: FORMAT,
            source,
        })?;
        Ok(WebpackStats { stats })
    }

    /// The entrypoint names.
    pub fn entries(&self) -> Vec<&str> {
        self.stats.entrypoints.keys().map(String::as_str).collect()
    }

    /// The hints of entrypoint `entry`: its CSS assets as stylesheets, its JS assets as
    /// classic deferred scripts (the last one is `script`), and the files of the async
    /// chunks its chunks load (their `children`) as prefetch, each once. Source maps and
    /// hot-update files are skipped.
    pub fn hints(&self, entry: &str, options: &HintOptions) -> Result<HintSet, HintError> {
        let ep = self
            .stats
            .entrypoints
            .get(entry)
            .ok_or_else(|| HintError::UnknownEntry {
                entry: entry.to_owned(),
                format: FORMAT,
                available: self
                    .entries()
                    .iter()
                    .take(20)
                    .map(|e| (*e).to_owned())
                    .collect(),
            })?;
        let wanted = |f: &str| !f.ends_with(".map") && !f.contains(".hot-update.");
        let mut loaded: HashSet<&str> = HashSet::new();
        let mut css = Vec::new();
        let mut scripts = Vec::new();
        for asset in &ep.assets {
            let name = asset.name();
            if !wanted(name) || !loaded.insert(name) {
                continue;
            }
            if name.ends_with(".css") {
                css.push(options.url(name));
            } else if super::is_js(name) {
                scripts.push(options.url(name));
            }
        }
        let Some(script) = scripts.pop() else {
            return Err(HintError::UnknownEntry {
                entry: format!("{entry} (it has no JavaScript asset)"),
                format: FORMAT,
                available: self
                    .entries()
                    .iter()
                    .take(20)
                    .map(|e| (*e).to_owned())
                    .collect(),
            });
        };
        let by_id: HashMap<&ChunkId, &Chunk> =
            self.stats.chunks.iter().map(|c| (&c.id, c)).collect();
        let entry_chunks: HashSet<&ChunkId> = ep.chunks.iter().collect();
        let mut prefetch = Vec::new();
        let mut seen: HashSet<&ChunkId> = HashSet::new();
        for id in &ep.chunks {
            let Some(chunk) = by_id.get(id) else { continue };
            for child in &chunk.children {
                if entry_chunks.contains(child) || !seen.insert(child) {
                    continue;
                }
                let Some(child) = by_id.get(child) else {
                    continue;
                };
                for file in &child.files {
                    if wanted(file) && loaded.insert(file.as_str()) {
                        prefetch.push(options.url(file));
                    }
                }
            }
        }
        Ok(HintSet {
            entry: entry.to_owned(),
            script,
            script_kind: ScriptKind::Classic,
            classic_scripts: scripts,
            css,
            modulepreload: Vec::new(),
            prefetch,
            crossorigin: options.crossorigin,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_assets_and_async_children() {
        let s = WebpackStats::from_json(
            r#"{"modules": [{"huge": true}], "entrypoints": {"main": {"chunks": [1, "vendors"],
                 "assets": [{"name": "vendors.js", "size": 1}, {"name": "main.css"}, "main.js", "main.js.map"]}},
               "chunks": [{"id": 1, "files": ["main.js"], "children": [7, "vendors", 7]},
                          {"id": "vendors", "files": ["vendors.js"], "children": [8]},
                          {"id": 7, "files": ["7.js", "7.css", "7.js.map"]},
                          {"id": 8, "files": ["8.js"]}]}"#,
        )
        .unwrap();
        let h = s.hints("main", &HintOptions::default()).unwrap();
        assert_eq!(h.css, ["/main.css"]);
        assert_eq!(h.classic_scripts, ["/vendors.js"]);
        assert_eq!(h.script, "/main.js");
        assert_eq!(h.prefetch, ["/7.js", "/7.css", "/8.js"]);
        assert!(h.html().contains(
            "<script defer src=\"/vendors.js\"></script>\n<script defer src=\"/main.js\"></script>"
        ));
        assert!(
            h.link_header()
                .ends_with("</main.js>; rel=preload; as=script")
        );
        assert!(s.hints("admin", &HintOptions::default()).is_err());
        assert!(WebpackStats::from_json("{\"entrypoints\": 3}").is_err());
    }
}
