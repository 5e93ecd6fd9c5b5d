//! esbuild metafiles (`--metafile`): inputs with their sizes, outputs with the bytes each
//! input contributes (`bytesInOutput`), imports between outputs and entry points.

use crate::build::{Build, BuildAsset, BuildChunk, BuildEntry, BuildModule, Bytes, ExportsInfo};
use crate::error::BundleError;
use crate::model::Format;
use serde::Deserialize;
use serde::de::IgnoredAny;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[derive(Debug, Deserialize)]
struct Metafile {
    inputs: BTreeMap<String, Input>,
    outputs: BTreeMap<String, Output>,
}

#[derive(Debug, Deserialize)]
struct Input {
    #[serde(default)]
    bytes: Bytes,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    imports: Option<IgnoredAny>,
}

#[derive(Debug, Deserialize)]
struct Output {
    #[serde(default)]
    imports: Vec<Import>,
    #[serde(default, rename = "entryPoint")]
    entry_point: Option<String>,
    #[serde(default, rename = "cssBundle")]
    css_bundle: Option<String>,
    #[serde(default)]
    inputs: BTreeMap<String, OutputInput>,
    #[serde(default)]
    bytes: Bytes,
}

#[derive(Debug, Deserialize)]
struct Import {
    path: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    external: bool,
}

#[derive(Debug, Deserialize)]
struct OutputInput {
    #[serde(default, rename = "bytesInOutput")]
    bytes_in_output: Bytes,
}

/// Reads an esbuild metafile. Output paths are resolved against the metafile's directory,
/// else against `dist`.
pub(crate) fn read(
    bytes: &[u8],
    meta_path: &Path,
    dist: Option<&Path>,
) -> Result<Build, BundleError> {
    let meta: Metafile = serde_json::from_slice(bytes)
        .map_err(|e| BundleError::json("esbuild metafile", e).in_file(meta_path))?;
    let base = meta_path.parent().unwrap_or(Path::new("."));
    let mut build = Build::new(Format::Esbuild);
    let code: Vec<&String> = meta
        .outputs
        .keys()
        .filter(|k| !k.ends_with(".map"))
        .collect();
    let mut missing = 0usize;
    for name in &code {
        let path = resolve(name, base, dist);
        if path.is_none() {
            missing += 1;
        }
        let size_hint = meta.outputs.get(*name).map_or(0, |o| o.bytes.0);
        build.assets.push(BuildAsset {
            name: (*name).clone(),
            path,
            size_hint,
        });
    }
    if missing > 0 {
        build.warnings.push(format!(
            "{missing} output file(s) of the metafile not found (pass --dist DIR): their sizes are esbuild's, without gzip"
        ));
    }
    // Entry outputs have an entry point and are no other output's dynamic import (esbuild
    // also sets `entryPoint` on the outputs of dynamic imports). Initial outputs: the entry
    // outputs and everything they import statically.
    let dynamic: BTreeSet<&str> = meta
        .outputs
        .values()
        .flat_map(|o| o.imports.iter())
        .filter(|i| i.kind == "dynamic-import")
        .map(|i| i.path.as_str())
        .collect();
    let mut initial: BTreeSet<&str> = BTreeSet::new();
    for (name, out) in &meta.outputs {
        if dynamic.contains(name.as_str()) {
            continue;
        }
        if let Some(ep) = &out.entry_point {
            let mut chunks = Vec::new();
            let mut stack = vec![name.as_str()];
            let mut seen = BTreeSet::new();
            while let Some(n) = stack.pop() {
                if !seen.insert(n) {
                    continue;
                }
                chunks.push(n.to_owned());
                if let Some(o) = meta.outputs.get(n) {
                    if let Some(css) = &o.css_bundle {
                        chunks.push(css.clone());
                    }
                    for imp in &o.imports {
                        if imp.kind == "import-statement" && !imp.external {
                            stack.push(imp.path.as_str());
                        }
                    }
                }
            }
            initial.extend(seen.iter().copied());
            build.entries.push(BuildEntry {
                name: stem(ep),
                chunks,
            });
        }
    }
    for name in &code {
        let out = &meta.outputs[*name];
        let mut files = vec![(*name).clone()];
        if let Some(css) = &out.css_bundle {
            files.push(css.clone());
        }
        let names = out.entry_point.as_deref().map(stem).into_iter().collect();
        build.chunks.push(BuildChunk {
            id: (*name).clone(),
            names,
            initial: initial.contains(name.as_str()),
            files,
        });
    }
    let mut modules: BTreeMap<&str, BuildModule> = BTreeMap::new();
    for (path, input) in &meta.inputs {
        let _ = &input.imports;
        modules.insert(
            path.as_str(),
            BuildModule {
                name: path.clone(),
                stat_size: input.bytes.0,
                esm: input.format.as_deref() == Some("esm"),
                provided: ExportsInfo::Unknown,
                used: ExportsInfo::Unknown,
                ..BuildModule::default()
            },
        );
    }
    for (out_name, out) in &meta.outputs {
        for (path, oi) in &out.inputs {
            let m = modules.entry(path.as_str()).or_insert_with(|| BuildModule {
                name: path.clone(),
                ..BuildModule::default()
            });
            m.chunks.push(out_name.clone());
            m.output.push((out_name.clone(), oi.bytes_in_output.0));
        }
    }
    build.modules = modules.into_values().collect();
    build.outputs_from_bundler = true;
    Ok(build)
}

fn stem(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.split('.').next().unwrap_or(file).to_owned()
}

fn resolve(name: &str, base: &Path, dist: Option<&Path>) -> Option<PathBuf> {
    let mut candidates = vec![base.join(name)];
    if let Some(d) = dist {
        candidates.push(d.join(name));
        if let Some(file) = Path::new(name).file_name() {
            candidates.push(d.join(file));
        }
    }
    candidates.into_iter().find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_and_async_outputs() {
        let json = br#"{"inputs":{"src/a.js":{"bytes":100,"format":"esm"},"node_modules/x/i.js":{"bytes":50}},
          "outputs":{"out/a.js":{"imports":[{"path":"out/chunk.js","kind":"import-statement"},{"path":"out/lazy.js","kind":"dynamic-import"}],
             "entryPoint":"src/a.js","inputs":{"src/a.js":{"bytesInOutput":40}},"bytes":60},
           "out/chunk.js":{"imports":[],"inputs":{"node_modules/x/i.js":{"bytesInOutput":30}},"bytes":30},
           "out/lazy.js":{"imports":[],"inputs":{},"bytes":5},
           "out/a.js.map":{"imports":[],"inputs":{},"bytes":500}}}"#;
        let b = read(json, Path::new("/nonexistent/meta.json"), None).unwrap();
        assert_eq!(b.assets.len(), 3);
        assert_eq!(b.entries[0].name, "a");
        let initial: Vec<_> = b
            .chunks
            .iter()
            .filter(|c| c.initial)
            .map(|c| c.id.as_str())
            .collect();
        assert_eq!(initial, vec!["out/a.js", "out/chunk.js"]);
        let x = b
            .modules
            .iter()
            .find(|m| m.name == "node_modules/x/i.js")
            .unwrap();
        assert_eq!(x.output, vec![("out/chunk.js".to_owned(), 30)]);
    }

    #[test]
    fn missing_outputs_is_an_error() {
        assert!(read(br#"{"inputs":{}}"#, Path::new("m.json"), None).is_err());
    }
}
