//! webpack and rspack `--json` stats: typed structures holding only the fields used,
//! deserialized straight from the memory-mapped file (everything else is skipped).

use crate::build::{
    Build, BuildAsset, BuildChunk, BuildEntry, BuildModule, Bytes, ExportsInfo, Id,
};
use crate::error::BundleError;
use crate::model::Format;
use serde::Deserialize;
use serde::de::IgnoredAny;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Deserialize)]
#[serde(bound = "M: Deserialize<'de>")]
struct Stats<M> {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, rename = "outputPath")]
    output_path: Option<String>,
    #[serde(default)]
    assets: Vec<StatsAsset>,
    #[serde(default)]
    chunks: Vec<StatsChunk<M>>,
    #[serde(default)]
    modules: Vec<StatsModule>,
    #[serde(default)]
    entrypoints: BTreeMap<String, StatsEntrypoint>,
    #[serde(default)]
    children: Vec<Stats<M>>,
}

#[derive(Debug, Deserialize)]
struct StatsAsset {
    name: String,
    #[serde(default)]
    size: Bytes,
    #[serde(default)]
    chunks: Vec<Id>,
}

#[derive(Debug, Deserialize)]
#[serde(bound = "M: Deserialize<'de>")]
struct StatsChunk<M> {
    id: Id,
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    initial: bool,
    #[serde(default)]
    files: Vec<String>,
    /// Skipped (`IgnoredAny`) on the first reading; read in a second pass only when the
    /// top-level `modules` list is absent but chunks list their modules.
    #[serde(default = "none")]
    modules: Option<M>,
}

fn none<M>() -> Option<M> {
    None
}

/// What a chunk's `modules` field yields: nothing when skipped, the list when read.
trait ChunkModules {
    fn into_modules(self) -> Option<Vec<StatsModule>>;
}

impl ChunkModules for IgnoredAny {
    fn into_modules(self) -> Option<Vec<StatsModule>> {
        None
    }
}

impl ChunkModules for Vec<StatsModule> {
    fn into_modules(self) -> Option<Vec<StatsModule>> {
        Some(self)
    }
}

#[derive(Debug, Deserialize)]
struct StatsModule {
    #[serde(default)]
    name: String,
    #[serde(default)]
    size: Bytes,
    #[serde(default)]
    chunks: Vec<Id>,
    #[serde(default, rename = "moduleType")]
    module_type: Option<String>,
    #[serde(default, rename = "providedExports")]
    provided_exports: ExportsInfo,
    #[serde(default, rename = "usedExports")]
    used_exports: ExportsInfo,
    /// Inner modules of a concatenated module.
    #[serde(default)]
    modules: Option<Vec<StatsModule>>,
    #[serde(default)]
    orphan: bool,
}

#[derive(Debug, Deserialize)]
struct StatsEntrypoint {
    #[serde(default)]
    chunks: Vec<Id>,
    #[serde(default)]
    assets: Option<IgnoredAny>,
}

/// Reads webpack/rspack stats. `dist` is where the emitted files are; when `None`, the
/// stats' `outputPath`, then `dist/` and the directory beside the stats file are tried.
pub(crate) fn read(
    bytes: &[u8],
    stats_path: &Path,
    dist: Option<&Path>,
) -> Result<Build, BundleError> {
    let stats: Stats<IgnoredAny> = serde_json::from_slice(bytes)
        .map_err(|e| BundleError::json("webpack stats", e).in_file(stats_path))?;
    if needs_chunk_modules(&stats) {
        let full: Stats<Vec<StatsModule>> = serde_json::from_slice(bytes)
            .map_err(|e| BundleError::json("webpack stats", e).in_file(stats_path))?;
        return finish(full, stats_path, dist);
    }
    finish(stats, stats_path, dist)
}

fn needs_chunk_modules(stats: &Stats<IgnoredAny>) -> bool {
    (stats.modules.is_empty() && stats.chunks.iter().any(|c| c.modules.is_some()))
        || stats.children.iter().any(needs_chunk_modules)
}

fn finish<M: ChunkModules>(
    stats: Stats<M>,
    stats_path: &Path,
    dist: Option<&Path>,
) -> Result<Build, BundleError> {
    let mut build = Build::new(Format::Webpack);
    let base = stats_path.parent().unwrap_or(Path::new("."));
    let multi = !stats.children.is_empty() && stats.chunks.is_empty();
    add_compilation(&mut build, stats, base, dist, "", multi);
    if build.chunks.is_empty() && build.assets.is_empty() {
        return Err(BundleError::Unsupported(format!(
            "{} has no assets or chunks: was it written with `--json` (and not `--json=errors-only`)?",
            stats_path.display()
        )));
    }
    Ok(build)
}

fn add_compilation<M: ChunkModules>(
    build: &mut Build,
    stats: Stats<M>,
    base: &Path,
    dist: Option<&Path>,
    prefix: &str,
    multi: bool,
) {
    let Stats {
        name,
        output_path,
        assets,
        chunks,
        modules,
        entrypoints,
        children,
    } = stats;
    if multi {
        for (i, child) in children.into_iter().enumerate() {
            let child_name = child.name.clone().unwrap_or_else(|| i.to_string());
            let child_prefix = format!("{prefix}{child_name}:");
            let nested = !child.children.is_empty() && child.chunks.is_empty();
            add_compilation(build, child, base, dist, &child_prefix, nested);
        }
        return;
    }
    let _ = name;
    let pid = |id: &Id| format!("{prefix}{}", id.0);
    let names: Vec<&str> = assets.iter().map(|a| a.name.as_str()).collect();
    // A child compilation's files may sit in `--dist/<child name>/`.
    let child_dist = (!prefix.is_empty())
        .then(|| dist.map(|d| d.join(prefix.trim_end_matches(':').replace(':', "/"))));
    let dir = child_dist
        .flatten()
        .and_then(|d| find_dist(Some(&d), None, base, &names))
        .or_else(|| find_dist(dist, output_path.as_deref(), base, &names));
    if dir.is_none() && !assets.is_empty() {
        build.warnings.push(format!(
            "emitted files not found (pass --dist DIR): sizes are the bundler's, without gzip{}",
            output_path
                .map(|p| format!("; outputPath {p} does not exist"))
                .unwrap_or_default()
        ));
    }
    for asset in &assets {
        if asset.name.ends_with(".map") {
            continue;
        }
        let path = dir
            .as_ref()
            .map(|d| d.join(&asset.name))
            .filter(|p| p.is_file());
        // Names are prefixed with the compiler's name in multi-compiler stats, where two
        // compilations may emit the same file name into different directories.
        build.assets.push(BuildAsset {
            name: format!("{prefix}{}", asset.name),
            path,
            size_hint: asset.size.0,
        });
        let _ = &asset.chunks;
    }
    let mut chunk_modules = Vec::new();
    for chunk in chunks {
        let id = pid(&chunk.id);
        if let Some(mods) = chunk.modules.and_then(ChunkModules::into_modules) {
            chunk_modules.push((id.clone(), mods));
        }
        build.chunks.push(BuildChunk {
            id,
            names: chunk.names,
            initial: chunk.initial,
            files: chunk
                .files
                .into_iter()
                .filter(|f| !f.ends_with(".map"))
                .map(|f| format!("{prefix}{f}"))
                .collect(),
        });
    }
    for (name, ep) in entrypoints {
        let _ = ep.assets;
        build.entries.push(BuildEntry {
            name: format!("{prefix}{name}"),
            chunks: ep.chunks.iter().map(pid).collect(),
        });
    }
    if !modules.is_empty() {
        let any_chunked = modules.iter().any(|m| !m.chunks.is_empty());
        let first = build.modules.len();
        for m in modules {
            if any_chunked && m.chunks.is_empty() {
                continue; // an orphan: it is listed inside the concatenated module holding it
            }
            let chunks: Vec<String> = m.chunks.iter().map(pid).collect();
            push_module(build, m, &chunks, false, 0);
        }
        merge_copies(build, first);
    } else {
        // No top-level module list: gather them from the chunks, merging chunk lists.
        let mut by_name: BTreeMap<String, usize> = BTreeMap::new();
        for (chunk_id, mods) in chunk_modules {
            for m in mods {
                let before = build.modules.len();
                push_module(build, m, std::slice::from_ref(&chunk_id), false, 0);
                let added: Vec<BuildModule> = build.modules.drain(before..).collect();
                for module in added {
                    match by_name.get(&module.name) {
                        Some(&i) => {
                            if !build.modules[i].chunks.contains(&chunk_id) {
                                build.modules[i].chunks.push(chunk_id.clone());
                            }
                        }
                        None => {
                            by_name.insert(module.name.clone(), build.modules.len());
                            build.modules.push(module);
                        }
                    }
                }
            }
        }
    }
    let _ = children;
}

/// One module concatenated into two entry modules (`./src/index.js + 799 modules` and
/// `./src/admin.js + 157 modules`) is listed once inside each: merge such copies (from
/// `first` on) into one module present in all their chunks, as webpack would list a module
/// that was not concatenated.
fn merge_copies(build: &mut Build, first: usize) {
    let mut by_name: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let added: Vec<BuildModule> = build.modules.drain(first..).collect();
    for m in added {
        match by_name.get(&m.name) {
            Some(&i) => {
                let kept = &mut build.modules[i];
                for c in m.chunks {
                    if !kept.chunks.contains(&c) {
                        kept.chunks.push(c);
                    }
                }
                kept.stat_size = kept.stat_size.max(m.stat_size);
                kept.esm |= m.esm;
                if kept.provided == ExportsInfo::Unknown {
                    kept.provided = m.provided;
                }
                // Exports used by either copy are kept in the output.
                kept.used = match (kept.used, m.used) {
                    (ExportsInfo::All, _) | (_, ExportsInfo::All) => ExportsInfo::All,
                    (ExportsInfo::Count(a), ExportsInfo::Count(b)) => ExportsInfo::Count(a.max(b)),
                    (ExportsInfo::Unknown, other) | (other, ExportsInfo::Unknown) => other,
                };
            }
            None => {
                by_name.insert(m.name.clone(), build.modules.len());
                build.modules.push(m);
            }
        }
    }
}

const MAX_NESTING: usize = 32;

fn push_module(
    build: &mut Build,
    m: StatsModule,
    chunks: &[String],
    in_concat: bool,
    depth: usize,
) {
    if let Some(inner) = m.modules.filter(|v| !v.is_empty())
        && depth < MAX_NESTING
    {
        for child in inner {
            push_module(build, child, chunks, true, depth + 1);
        }
        return;
    }
    build.modules.push(BuildModule {
        name: m.name,
        chunks: chunks.to_vec(),
        stat_size: m.size.0,
        output: Vec::new(),
        esm: in_concat || m.module_type.as_deref() == Some("javascript/esm"),
        provided: m.provided_exports,
        used: m.used_exports,
    });
    let _ = m.orphan;
}

/// The directory holding the emitted files: the first candidate that contains one of them.
pub(crate) fn find_dist(
    dist: Option<&Path>,
    output_path: Option<&str>,
    base: &Path,
    names: &[&str],
) -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(d) = dist {
        candidates.push(d.to_path_buf());
    } else {
        if let Some(p) = output_path {
            candidates.push(PathBuf::from(p));
        }
        candidates.push(base.join("dist"));
        candidates.push(base.to_path_buf());
    }
    candidates.into_iter().find(|dir| {
        names
            .iter()
            .filter(|n| !n.ends_with(".map"))
            .any(|n| dir.join(n).is_file())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_concatenated_modules_and_children() {
        let json = br#"{"children":[{"name":"web","assets":[{"name":"a.js","size":10}],
            "chunks":[{"id":1,"names":["main"],"initial":true,"files":["a.js","a.js.map"]}],
            "entrypoints":{"main":{"chunks":[1],"assets":[{"name":"a.js"}]}},
            "modules":[{"name":"./src/a.js + 1 modules","size":30,"chunks":[1],
              "modules":[{"name":"./src/a.js","size":10},{"name":"./node_modules/x/i.js","size":20,"usedExports":["a"],"providedExports":["a","b"]}]},
              {"name":"./src/orphan.js","size":1,"chunks":[]}]}]}"#;
        let b = read(json, Path::new("/nonexistent/stats.json"), None).unwrap();
        assert_eq!(b.chunks[0].id, "web:1");
        assert_eq!(b.chunks[0].files, vec!["web:a.js"]);
        assert_eq!(b.assets[0].name, "web:a.js");
        assert_eq!(b.modules.len(), 2);
        assert_eq!(b.modules[1].provided, ExportsInfo::Count(2));
        assert_eq!(b.modules[1].chunks, vec!["web:1"]);
        assert!(b.modules[1].esm);
        assert_eq!(b.entries[0].chunks, vec!["web:1"]);
    }

    #[test]
    fn wrong_types_are_clear_errors() {
        let err = read(br#"{"assets":[{"name":5}]}"#, Path::new("s.json"), None).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("s.json") && msg.contains("line 1"), "{msg}");
        assert!(
            read(
                br#"{"modules":[{"size":1e400}]}"#,
                Path::new("s.json"),
                None
            )
            .is_err()
        );
        assert!(
            read(
                br#"{"chunks":[{"id":1,"names":"x"}]}"#,
                Path::new("s.json"),
                None
            )
            .is_err()
        );
    }

    #[test]
    fn copies_in_two_concatenations_are_one_module_in_two_chunks() {
        let json = br#"{"chunks":[{"id":1,"files":["a.js"]},{"id":2,"files":["b.js"]}],
            "modules":[{"name":"./src/a.js + 1 modules","chunks":[1],"modules":[{"name":"./src/a.js","size":1},{"name":"./node_modules/r/i.js","size":9,"usedExports":["x"]}]},
                       {"name":"./src/b.js + 1 modules","chunks":[2],"modules":[{"name":"./src/b.js","size":1},{"name":"./node_modules/r/i.js","size":9,"usedExports":true}]}]}"#;
        let b = read(json, Path::new("s.json"), None).unwrap();
        assert_eq!(b.modules.len(), 3);
        let r = b
            .modules
            .iter()
            .find(|m| m.name.ends_with("r/i.js"))
            .unwrap();
        assert_eq!(r.chunks, vec!["1", "2"]);
        assert_eq!(r.used, ExportsInfo::All);
    }
}
