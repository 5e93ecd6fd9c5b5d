//! esbuild's metafile (`--metafile=meta.json`), for ESM output with code splitting.

use super::graph::{Graph, Node};
use super::{HintOptions, HintSet};
use crate::error::HintError;
use serde::Deserialize;
use std::collections::BTreeMap;

const FORMAT: &str = "esbuild metafile";

#[derive(Debug, Clone, Deserialize)]
struct Import {
    path: String,
    kind: String,
    #[serde(default)]
    external: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Output {
    #[serde(default)]
    imports: Vec<Import>,
    #[serde(default)]
    entry_point: Option<String>,
    #[serde(default)]
    css_bundle: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct Metafile {
    outputs: BTreeMap<String, Output>,
}

/// A parsed esbuild metafile (only `outputs`: imports, entry points, CSS bundles).
#[derive(Debug, Clone)]
pub struct EsbuildMetafile {
    outputs: BTreeMap<String, Output>,
}

impl EsbuildMetafile {
    /// Parses a metafile.
    pub fn from_json(json: &str) -> Result<Self, HintError> {
        Self::from_slice(json.as_bytes())
    }

    /// Parses a metafile from bytes.
    pub fn from_slice(json: &[u8]) -> Result<Self, HintError> {
        let meta: Metafile = serde_json::from_slice(json).map_err(|source| HintError::Json {
            format: FORMAT,
            source,
        })?;
        Ok(EsbuildMetafile {
            outputs: meta.outputs,
        })
    }

    /// The entry points (source paths such as `src/index.js`) with their output files.
    pub fn entries(&self) -> Vec<(&str, &str)> {
        self.outputs
            .iter()
            .filter_map(|(out, o)| Some((o.entry_point.as_deref()?, out.as_str())))
            .filter(|(_, out)| !out.ends_with(".map"))
            .collect()
    }

    /// The hints of `entry`: an entry point (`src/index.js`) or an output path
    /// (`out/index.js`). Static imports (`import-statement`) become `modulepreload`
    /// (dependencies first, each once), dynamic imports `prefetch`, and the entry's CSS
    /// bundle a stylesheet. Files are the output paths as esbuild wrote them, prefixed by
    /// the base. External imports are skipped.
    pub fn hints(&self, entry: &str, options: &HintOptions) -> Result<HintSet, HintError> {
        let key = if self.outputs.contains_key(entry) {
            Some(entry)
        } else {
            // Prefer the JavaScript output of an entry point over its CSS output.
            let mut candidates: Vec<&str> = self
                .outputs
                .iter()
                .filter(|(out, o)| {
                    o.entry_point.as_deref() == Some(entry) && !out.ends_with(".map")
                })
                .map(|(out, _)| out.as_str())
                .collect();
            candidates.sort_by_key(|out| out.ends_with(".css"));
            candidates.first().copied()
        };
        let Some(key) = key else {
            let mut available: Vec<String> = self
                .entries()
                .iter()
                .map(|(e, _)| (*e).to_owned())
                .collect();
            available.truncate(20);
            return Err(HintError::UnknownEntry {
                entry: entry.to_owned(),
                format: FORMAT,
                available,
            });
        };
        let graph = Graph {
            format: FORMAT,
            nodes: self
                .outputs
                .iter()
                .map(|(path, o)| {
                    let of_kind = |kind: &str| -> Vec<String> {
                        o.imports
                            .iter()
                            .filter(|i| i.kind == kind && !i.external)
                            .map(|i| i.path.clone())
                            .collect()
                    };
                    (
                        path.clone(),
                        Node {
                            file: path.clone(),
                            css: o.css_bundle.iter().cloned().collect(),
                            imports: of_kind("import-statement"),
                            dynamic_imports: of_kind("dynamic-import"),
                        },
                    )
                })
                .collect(),
        };
        let mut hints = graph.hints(key, options)?;
        hints.entry = entry.to_owned();
        Ok(hints)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const META: &str = r#"{
      "inputs": {"src/a.js": {"bytes": 1, "imports": []}},
      "outputs": {
        "out/a.js": {"bytes": 10, "entryPoint": "src/a.js", "cssBundle": "out/a.css", "exports": [],
          "imports": [{"path": "out/chunk-1.js", "kind": "import-statement"},
                      {"path": "react", "kind": "import-statement", "external": true},
                      {"path": "out/lazy.js", "kind": "dynamic-import"}]},
        "out/a.css": {"bytes": 5, "entryPoint": "src/a.js", "imports": []},
        "out/chunk-1.js": {"bytes": 3, "imports": [{"path": "out/chunk-2.js", "kind": "import-statement"}]},
        "out/chunk-2.js": {"bytes": 3, "imports": []},
        "out/lazy.js": {"bytes": 3, "entryPoint": "src/lazy.js", "imports": [{"path": "out/chunk-2.js", "kind": "import-statement"}]},
        "out/a.js.map": {"bytes": 99, "imports": []}
      }
    }"#;

    #[test]
    fn entry_point_or_output_path() {
        let m = EsbuildMetafile::from_json(META).unwrap();
        for entry in ["src/a.js", "out/a.js"] {
            let h = m.hints(entry, &HintOptions::default()).unwrap();
            assert_eq!(h.entry, entry);
            assert_eq!(h.script, "/out/a.js");
            assert_eq!(h.css, ["/out/a.css"]);
            assert_eq!(h.modulepreload, ["/out/chunk-2.js", "/out/chunk-1.js"]);
            assert_eq!(h.prefetch, ["/out/lazy.js"]);
        }
        let err = m.hints("src/nope.js", &HintOptions::default()).unwrap_err();
        assert!(err.to_string().contains("src/a.js"), "{err}");
    }

    #[test]
    fn a_missing_output_is_an_error() {
        let m = EsbuildMetafile::from_json(
            r#"{"inputs": {}, "outputs": {"o.js": {"entryPoint": "e.js", "imports": [{"path": "gone.js", "kind": "import-statement"}]}}}"#,
        )
        .unwrap();
        assert!(matches!(
            m.hints("e.js", &HintOptions::default()),
            Err(HintError::MissingChunk { .. })
        ));
        assert!(EsbuildMetafile::from_json("{}").is_err());
    }
}
