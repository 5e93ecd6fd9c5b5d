//! Vite's `.vite/manifest.json` (`build.manifest: true`).

use super::graph::{Graph, Node};
use super::{HintOptions, HintSet};
use crate::error::HintError;
use serde::Deserialize;
use std::collections::BTreeMap;

const FORMAT: &str = "Vite manifest";

/// One chunk of a Vite manifest (only the fields hints use).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ViteChunk {
    /// The output file, relative to the output directory.
    pub file: String,
    /// The CSS files of this chunk.
    #[serde(default)]
    pub css: Vec<String>,
    /// Keys of the chunks it imports statically.
    #[serde(default)]
    pub imports: Vec<String>,
    /// Keys of the chunks it imports dynamically.
    #[serde(default)]
    pub dynamic_imports: Vec<String>,
    /// Whether it is an entry (`build.rollupOptions.input`).
    #[serde(default)]
    pub is_entry: bool,
}

/// A parsed Vite manifest: chunks by key.
#[derive(Debug, Clone)]
pub struct ViteManifest {
    chunks: BTreeMap<String, ViteChunk>,
}

impl ViteManifest {
    /// Parses a manifest.
    pub fn from_json(json: &str) -> Result<Self, HintError> {
        Self::from_slice(json.as_bytes())
    }

    /// Parses a manifest from bytes.
    pub fn from_slice(json: &[u8]) -> Result<Self, HintError> {
        let chunks = serde_json::from_slice(json).map_err(|source| HintError::Json {
            format: FORMAT,
            source,
        })?;
        Ok(ViteManifest { chunks })
    }

    /// The chunks by key.
    pub fn chunks(&self) -> &BTreeMap<String, ViteChunk> {
        &self.chunks
    }

    /// The keys of the entry chunks.
    pub fn entries(&self) -> Vec<&str> {
        self.chunks
            .iter()
            .filter(|(_, c)| c.is_entry)
            .map(|(k, _)| k.as_str())
            .collect()
    }

    /// The hints of entry `entry` (a manifest key such as `src/main.js`), as Vite's
    /// backend-integration guide prescribes: stylesheets for the entry's CSS and for the CSS
    /// of every statically imported chunk (recursively, each once), the module script, a
    /// `modulepreload` for every statically imported chunk (dependencies first), then
    /// `prefetch` for dynamic imports. Import cycles end; a missing entry or an import of a
    /// key the manifest lacks is an error.
    pub fn hints(&self, entry: &str, options: &HintOptions) -> Result<HintSet, HintError> {
        let graph = Graph {
            format: FORMAT,
            nodes: self
                .chunks
                .iter()
                .map(|(key, c)| {
                    (
                        key.clone(),
                        Node {
                            file: c.file.clone(),
                            css: c.css.clone(),
                            imports: c.imports.clone(),
                            dynamic_imports: c.dynamic_imports.clone(),
                        },
                    )
                })
                .collect(),
        };
        graph.hints(entry, options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hints::ScriptKind;

    /// The example manifest of Vite's backend-integration guide.
    const GUIDE: &str = r#"{
      "_shared-B7PI925R.js": {"file": "assets/shared-B7PI925R.js", "name": "shared", "css": ["assets/shared-ChJ_j-JJ.css"]},
      "_shared-ChJ_j-JJ.css": {"file": "assets/shared-ChJ_j-JJ.css", "src": "_shared-ChJ_j-JJ.css"},
      "logo.svg": {"file": "assets/logo-BuPIv-2h.svg", "src": "logo.svg"},
      "baz.js": {"file": "assets/baz-B2H3sXNv.js", "name": "baz", "src": "baz.js", "isDynamicEntry": true},
      "views/bar.js": {"file": "assets/bar-gkvgaI9m.js", "name": "bar", "src": "views/bar.js", "isEntry": true,
                       "imports": ["_shared-B7PI925R.js"], "dynamicImports": ["baz.js"]},
      "views/foo.js": {"file": "assets/foo-BRBmoGS9.js", "name": "foo", "src": "views/foo.js", "isEntry": true,
                       "imports": ["_shared-B7PI925R.js"], "css": ["assets/foo-5UjPuW-k.css"]}
    }"#;

    fn opts() -> HintOptions {
        HintOptions::with_base("")
    }

    #[test]
    fn the_guides_own_example() {
        let m = ViteManifest::from_json(GUIDE).unwrap();
        let foo = m.hints("views/foo.js", &opts()).unwrap();
        assert_eq!(
            foo.css,
            ["assets/foo-5UjPuW-k.css", "assets/shared-ChJ_j-JJ.css"]
        );
        assert_eq!(foo.script, "assets/foo-BRBmoGS9.js");
        assert_eq!(foo.script_kind, ScriptKind::Module);
        assert_eq!(foo.modulepreload, ["assets/shared-B7PI925R.js"]);
        assert!(foo.prefetch.is_empty());
        let bar = m.hints("views/bar.js", &opts()).unwrap();
        assert_eq!(bar.css, ["assets/shared-ChJ_j-JJ.css"]);
        assert_eq!(bar.script, "assets/bar-gkvgaI9m.js");
        assert_eq!(bar.modulepreload, ["assets/shared-B7PI925R.js"]);
        assert_eq!(bar.prefetch, ["assets/baz-B2H3sXNv.js"]);
        let mut entries = m.entries();
        entries.sort();
        assert_eq!(entries, ["views/bar.js", "views/foo.js"]);
    }

    #[test]
    fn deep_imports_come_dependencies_first_each_once_with_their_css() {
        let m = ViteManifest::from_json(
            r#"{
            "e.js": {"file": "e.js", "imports": ["_a.js", "_b.js"], "css": ["e.css"]},
            "_a.js": {"file": "a.js", "imports": ["_c.js"], "css": ["a.css", "shared.css"]},
            "_b.js": {"file": "b.js", "imports": ["_c.js"], "css": ["shared.css"]},
            "_c.js": {"file": "c.js", "css": ["c.css"]}
        }"#,
        )
        .unwrap();
        let h = m.hints("e.js", &HintOptions::default()).unwrap();
        assert_eq!(h.css, ["/e.css", "/c.css", "/a.css", "/shared.css"]);
        assert_eq!(h.modulepreload, ["/c.js", "/a.js", "/b.js"]);
    }

    #[test]
    fn cycles_end_and_never_preload_the_entry() {
        let m = ViteManifest::from_json(
            r#"{
            "e.js": {"file": "e.js", "imports": ["_a.js"], "dynamicImports": ["d.js", "e.js"]},
            "_a.js": {"file": "a.js", "imports": ["_b.js", "_a.js"]},
            "_b.js": {"file": "b.js", "imports": ["_a.js", "e.js"]},
            "d.js": {"file": "d.js", "imports": ["d.js", "_x.js", "_a.js"], "dynamicImports": ["d.js"]},
            "_x.js": {"file": "x.js", "imports": ["d.js"], "css": ["x.css"]}
        }"#,
        )
        .unwrap();
        let h = m.hints("e.js", &opts()).unwrap();
        assert_eq!(h.modulepreload, ["b.js", "a.js"]);
        assert_eq!(h.prefetch, ["d.js", "x.js", "x.css"]);
    }

    #[test]
    fn bad_manifests_give_clear_errors() {
        let err = ViteManifest::from_json("{\"a\": {\"nofile\": 1}}").unwrap_err();
        assert!(
            err.to_string().contains("not a valid Vite manifest"),
            "{err}"
        );
        let err = ViteManifest::from_json("[1, 2]").unwrap_err();
        assert!(matches!(err, HintError::Json { .. }));
        let m = ViteManifest::from_json(r#"{"e.js": {"file": "e.js", "imports": ["_gone.js"]}}"#)
            .unwrap();
        let err = m.hints("e.js", &opts()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "bad Vite manifest: `e.js` imports `_gone.js`, which it does not contain"
        );
        let err = m.hints("nope.js", &opts()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "entry `nope.js` is not in the Vite manifest; entries: e.js"
        );
        let m = ViteManifest::from_json(
            r#"{"e.js": {"file": "e.js", "dynamicImports": ["_gone.js"]}}"#,
        )
        .unwrap();
        assert!(matches!(
            m.hints("e.js", &opts()),
            Err(HintError::MissingChunk { .. })
        ));
    }

    #[test]
    fn a_long_import_chain_does_not_overflow_the_stack() {
        let n = 100_000;
        let mut json = String::from("{");
        for i in 0..n {
            let next = if i + 1 < n {
                format!(r#", "imports": ["c{}"]"#, i + 1)
            } else {
                String::new()
            };
            json.push_str(&format!(r#""c{i}": {{"file": "f{i}.js"{next}}}"#));
            json.push(if i + 1 < n { ',' } else { '}' });
        }
        let m = ViteManifest::from_json(&json).unwrap();
        let h = m.hints("c0", &opts()).unwrap();
        assert_eq!(h.modulepreload.len(), n - 1);
        assert_eq!(h.modulepreload[0], format!("f{}.js", n - 1));
    }

    #[test]
    fn a_css_entry_is_a_stylesheet() {
        let m = ViteManifest::from_json(
            r#"{"style.css": {"file": "assets/style-1.css", "isEntry": true}}"#,
        )
        .unwrap();
        let h = m.hints("style.css", &HintOptions::default()).unwrap();
        assert_eq!(h.script_kind, ScriptKind::Stylesheet);
        assert_eq!(
            h.html(),
            "<link rel=\"stylesheet\" href=\"/assets/style-1.css\">"
        );
    }
}
