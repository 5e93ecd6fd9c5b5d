//! Vite (and Rollup/Rolldown) `.vite/manifest.json` with its output directory, and plain
//! directories of bundles with source maps. Neither lists modules: they come from the maps.

use crate::build::{Build, BuildAsset, BuildChunk, BuildEntry};
use crate::error::BundleError;
use crate::model::Format;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[derive(Debug, Deserialize)]
struct ManifestChunk {
    file: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    src: Option<String>,
    #[serde(default, rename = "isEntry")]
    is_entry: bool,
    #[serde(default)]
    imports: Vec<String>,
    #[serde(default)]
    css: Vec<String>,
}

/// Reads a Vite manifest. The output directory is `dist`, else the manifest's directory's
/// parent when the manifest sits in `.vite/`, else the manifest's directory.
pub(crate) fn read_manifest(
    bytes: &[u8],
    manifest: &Path,
    dist: Option<&Path>,
) -> Result<Build, BundleError> {
    let chunks: BTreeMap<String, ManifestChunk> = serde_json::from_slice(bytes)
        .map_err(|e| BundleError::json("Vite manifest", e).in_file(manifest))?;
    let dir = manifest.parent().unwrap_or(Path::new("."));
    let outdir: PathBuf = match dist {
        Some(d) => d.to_path_buf(),
        None if dir.file_name().is_some_and(|n| n == ".vite") => {
            dir.parent().unwrap_or(dir).to_path_buf()
        }
        None => dir.to_path_buf(),
    };
    let mut build = Build::new(Format::Vite);
    build.modules_from_maps = true;
    let mut seen_files = BTreeSet::new();
    let mut missing = 0usize;
    for c in chunks.values() {
        for f in std::iter::once(&c.file).chain(&c.css) {
            if seen_files.insert(f.clone()) {
                let path = Some(outdir.join(f)).filter(|p| p.is_file());
                missing += usize::from(path.is_none());
                build.assets.push(BuildAsset {
                    name: f.clone(),
                    path,
                    size_hint: 0,
                });
            }
        }
    }
    if missing > 0 {
        build.warnings.push(format!(
            "{missing} file(s) named by the manifest are missing under {} (pass --dist DIR): their sizes are unknown",
            outdir.display()
        ));
    }
    let mut initial = BTreeSet::new();
    for (key, c) in &chunks {
        if !c.is_entry {
            continue;
        }
        let mut stack = vec![key.as_str()];
        let mut seen = BTreeSet::new();
        while let Some(k) = stack.pop() {
            if seen.insert(k)
                && let Some(ch) = chunks.get(k)
            {
                stack.extend(ch.imports.iter().map(String::as_str));
            }
        }
        initial.extend(seen.iter().map(|s| (*s).to_owned()));
        let name = c
            .name
            .clone()
            .or_else(|| c.src.clone())
            .unwrap_or_else(|| key.clone());
        build.entries.push(BuildEntry {
            name,
            chunks: seen.iter().map(|s| (*s).to_owned()).collect(),
        });
    }
    for (key, c) in &chunks {
        build.chunks.push(BuildChunk {
            id: key.clone(),
            names: c.name.iter().cloned().collect(),
            initial: initial.contains(key),
            files: std::iter::once(c.file.clone())
                .chain(c.css.iter().cloned())
                .collect(),
        });
    }
    Ok(build)
}

const MAX_FILES: usize = 100_000;

/// Reads a directory of bundles: every `.js`, `.mjs`, `.cjs` and `.css` file below it
/// (outside `node_modules`) is an asset and a chunk of its own. A file named `*.chunk.*`
/// or under an `async`/`chunks` directory is taken as loaded on demand, any other as initial.
pub(crate) fn read_dir(dir: &Path) -> Result<Build, BundleError> {
    let mut files = Vec::new();
    walk(dir, dir, &mut files, 0)?;
    files.sort();
    if files.is_empty() {
        return Err(BundleError::UnknownFormat {
            path: dir.to_path_buf(),
            reason: "no .js, .mjs, .cjs or .css files and no .vite/manifest.json in it".into(),
        });
    }
    let mut build = Build::new(Format::Sourcemaps);
    build.modules_from_maps = true;
    for rel in files {
        let path = dir.join(&rel);
        let stem = rel
            .rsplit('/')
            .next()
            .unwrap_or(&rel)
            .split('.')
            .next()
            .unwrap_or("")
            .to_owned();
        let lazy = rel.contains(".chunk.") || rel.contains("/chunks/") || rel.contains("/async/");
        build.chunks.push(BuildChunk {
            id: rel.clone(),
            names: vec![stem],
            initial: !lazy,
            files: vec![rel.clone()],
        });
        build.assets.push(BuildAsset {
            name: rel,
            path: Some(path),
            size_hint: 0,
        });
    }
    Ok(build)
}

pub(crate) fn walk(
    root: &Path,
    dir: &Path,
    out: &mut Vec<String>,
    depth: usize,
) -> Result<(), BundleError> {
    if depth > 32 || out.len() >= MAX_FILES {
        return Ok(());
    }
    let entries = std::fs::read_dir(dir).map_err(|e| BundleError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| BundleError::io(dir, e))?;
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if kind.is_dir() {
            if name != "node_modules" && !name.starts_with('.') {
                walk(root, &path, out, depth + 1)?;
            }
        } else if kind.is_file()
            && [".js", ".mjs", ".cjs", ".css"]
                .iter()
                .any(|ext| name.ends_with(ext))
            && let Ok(rel) = path.strip_prefix(root)
        {
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}
