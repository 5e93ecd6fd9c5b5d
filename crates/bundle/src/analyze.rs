//! From an input path to an [`Analysis`]: detect the format, read the build, measure the
//! emitted files in parallel, attribute output bytes to modules, and derive findings.

use crate::build::{Build, ExportsInfo};
use crate::error::BundleError;
use crate::measure::{Measured, load, measure_all, with_trimmed_pages};
use crate::model::{Analysis, Asset, AssetSources, Chunk, Entry, Format, Module, PackageSize};
use crate::package::{normalize, package_of};
use serde::Deserialize;
use serde::de::IgnoredAny;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// How to analyze.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Where the emitted files are (for stats files and metafiles).
    pub dist: Option<PathBuf>,
    /// Also compute brotli (quality 11) sizes; slower.
    pub brotli: bool,
    /// The input format; detected when `None`.
    pub format: Option<Format>,
    /// Worker threads for compression and source maps; 0 means one per core.
    pub threads: usize,
}

/// Analyzes `input` (a stats file, metafile, Vite manifest or output directory).
///
/// ```no_run
/// let analysis = perfkit_bundle::analyze(
///     std::path::Path::new("stats.json"),
///     &perfkit_bundle::Options::default(),
/// )?;
/// println!("{} assets, {} findings", analysis.assets.len(), analysis.findings.len());
/// # Ok::<(), perfkit_bundle::BundleError>(())
/// ```
pub fn analyze(input: &Path, opts: &Options) -> Result<Analysis, BundleError> {
    analyze_with_progress(input, opts, &|_, _| {})
}

/// [`analyze`], calling `tick(done, total)` as files are measured.
pub fn analyze_with_progress(
    input: &Path,
    opts: &Options,
    tick: &(dyn Fn(usize, usize) + Sync),
) -> Result<Analysis, BundleError> {
    let threads = if opts.threads == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        opts.threads
    };
    // With a stats file and --dist, the emitted files are compressed while the stats are
    // parsed (the parser is single-threaded).
    let overlap = threads > 1 && input.is_file();
    let (build, gzipped) = std::thread::scope(|s| {
        let pre = opts
            .dist
            .as_deref()
            .filter(|_| overlap)
            .map(|dist| s.spawn(move || crate::measure::gzip_dir(dist)));
        let build = read_build(input, opts);
        let gzipped = pre.and_then(|h| h.join().ok()).unwrap_or_default();
        (build, gzipped)
    });
    let build = build?;
    let files: Vec<Option<PathBuf>> = build.assets.iter().map(|a| a.path.clone()).collect();
    let measured = measure_all(&files, opts.brotli, threads, tick, &gzipped);
    // The project's node_modules (for package versions) is beside the input or above it.
    let base = if input.is_dir() {
        Some(input)
    } else {
        input.parent()
    };
    let roots: Vec<PathBuf> = base
        .into_iter()
        .flat_map(|b| [Some(b), b.parent()])
        .flatten()
        .map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
            .to_path_buf()
        })
        .collect();
    Ok(assemble(build, measured, opts.brotli, &roots))
}

#[derive(Deserialize)]
struct Probe {
    #[serde(default)]
    inputs: Option<IgnoredAny>,
    #[serde(default)]
    outputs: Option<IgnoredAny>,
    #[serde(default)]
    modules: Option<IgnoredAny>,
    #[serde(default)]
    chunks: Option<IgnoredAny>,
    #[serde(default)]
    assets: Option<IgnoredAny>,
    #[serde(default)]
    children: Option<IgnoredAny>,
    #[serde(default)]
    entrypoints: Option<IgnoredAny>,
}

/// Reads the build description of `input` without measuring anything.
pub(crate) fn read_build(input: &Path, opts: &Options) -> Result<Build, BundleError> {
    let meta = std::fs::metadata(input).map_err(|e| BundleError::io(input, e))?;
    let dist = opts.dist.as_deref();
    if meta.is_dir() {
        let manifest = input.join(".vite").join("manifest.json");
        if opts.format == Some(Format::Vite) || (opts.format.is_none() && manifest.is_file()) {
            let bytes = load(&manifest)?;
            return crate::vite::read_manifest(&bytes, &manifest, Some(dist.unwrap_or(input)));
        }
        return crate::vite::read_dir(input);
    }
    let bytes = load(input)?;
    let format = match opts.format {
        Some(f) => f,
        None => detect(&bytes, input)?,
    };
    match format {
        Format::Webpack => with_trimmed_pages(&bytes, |b| crate::webpack::read(b, input, dist)),
        Format::Esbuild => with_trimmed_pages(&bytes, |b| crate::esbuild::read(b, input, dist)),
        Format::Vite => crate::vite::read_manifest(&bytes, input, dist),
        Format::Sourcemaps => Err(BundleError::Unsupported(format!(
            "{}: the sourcemaps format takes a directory",
            input.display()
        ))),
    }
}

/// The keys of the top-level object among the first `limit` bytes, read with a small
/// tokenizer (strings and nesting only), so that detection does not scan a 600 MB file.
fn leading_keys(bytes: &[u8], limit: usize) -> Vec<String> {
    let bytes = &bytes[..bytes.len().min(limit)];
    let mut keys = Vec::new();
    let mut depth = 0usize;
    let mut i = 0usize;
    let mut expect_key = false;
    while i < bytes.len() {
        match bytes[i] {
            b'{' => {
                depth += 1;
                expect_key = depth == 1;
            }
            b'[' => depth += 1,
            b'}' | b']' => depth = depth.saturating_sub(1),
            b',' if depth == 1 => expect_key = true,
            b'"' => {
                let start = i + 1;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                if depth == 1 && expect_key {
                    if let Some(k) = bytes.get(start..i) {
                        keys.push(String::from_utf8_lossy(k).into_owned());
                    }
                    expect_key = false;
                }
            }
            _ => {}
        }
        i += 1;
    }
    keys
}

fn detect(bytes: &[u8], path: &Path) -> Result<Format, BundleError> {
    const WEBPACK: [&str; 12] = [
        "hash",
        "version",
        "rspackVersion",
        "time",
        "builtAt",
        "publicPath",
        "outputPath",
        "assets",
        "chunks",
        "modules",
        "children",
        "entrypoints",
    ];
    for key in leading_keys(bytes, 1 << 16) {
        if key == "inputs" || key == "outputs" {
            return Ok(Format::Esbuild);
        }
        if WEBPACK.contains(&key.as_str()) {
            return Ok(Format::Webpack);
        }
    }
    let probe: Probe = serde_json::from_slice(bytes).map_err(|e| BundleError::UnknownFormat {
        path: path.to_path_buf(),
        reason: format!("not a JSON object: {e}"),
    })?;
    if probe.inputs.is_some() && probe.outputs.is_some() {
        return Ok(Format::Esbuild);
    }
    if probe.modules.is_some()
        || probe.chunks.is_some()
        || probe.assets.is_some()
        || probe.children.is_some()
        || probe.entrypoints.is_some()
    {
        return Ok(Format::Webpack);
    }
    if path.file_name().is_some_and(|n| n == "manifest.json") {
        return Ok(Format::Vite);
    }
    Err(BundleError::UnknownFormat {
        path: path.to_path_buf(),
        reason: "no webpack stats keys (modules, chunks, assets, children), no esbuild \
                 metafile keys (inputs, outputs), and not named manifest.json; use --format"
            .into(),
    })
}

fn share(bytes: u64, part: Option<u64>, raw: u64) -> Option<u64> {
    let part = part?;
    if raw == 0 {
        return Some(0);
    }
    Some(((bytes as u128 * part as u128 + raw as u128 / 2) / raw as u128) as u64)
}

/// Turns a build and its measurements into the analysis.
fn assemble(
    build: Build,
    measured: Vec<Measured>,
    with_brotli: bool,
    roots: &[PathBuf],
) -> Analysis {
    let Build {
        format,
        assets: build_assets,
        chunks: build_chunks,
        modules: build_modules,
        entries: build_entries,
        mut warnings,
        modules_from_maps,
        outputs_from_bundler,
    } = build;
    let mut asset_index: HashMap<String, usize> = HashMap::new();
    let mut assets: Vec<Asset> = Vec::with_capacity(build_assets.len());
    for (i, (a, m)) in build_assets.iter().zip(&measured).enumerate() {
        asset_index.insert(a.name.clone(), i);
        warnings.extend(m.warnings.iter().cloned());
        assets.push(Asset {
            name: a.name.clone(),
            raw: m.raw.unwrap_or(a.size_hint),
            gzip: m.gzip,
            brotli: if with_brotli { m.brotli } else { None },
            chunks: Vec::new(),
            initial: false,
        });
    }
    // Chunks and the chunk ids of each asset.
    let mut chunks: Vec<Chunk> = Vec::with_capacity(build_chunks.len());
    for c in &build_chunks {
        let mut raw = 0;
        let mut gzip = Some(0u64);
        let mut brotli = with_brotli.then_some(0u64);
        for f in &c.files {
            if let Some(&i) = asset_index.get(f) {
                let a = &mut assets[i];
                if !a.chunks.contains(&c.id) {
                    a.chunks.push(c.id.clone());
                }
                a.initial |= c.initial;
                raw += a.raw;
                gzip = gzip.zip(a.gzip).map(|(x, y)| x + y);
                brotli = brotli.zip(a.brotli).map(|(x, y)| x + y);
            }
        }
        chunks.push(Chunk {
            id: c.id.clone(),
            names: c.names.clone(),
            initial: c.initial,
            files: c.files.clone(),
            raw,
            gzip,
            brotli,
        });
    }
    // Per-asset sources from the maps.
    let mut sources = Vec::new();
    for (a, m) in assets.iter().zip(&measured) {
        if let Some(map) = &m.map {
            let mut files: BTreeMap<String, u64> = BTreeMap::new();
            for (s, &b) in map.sources.iter().zip(&map.per_source) {
                if b > 0 {
                    *files.entry(s.clone()).or_insert(0) += b;
                }
            }
            sources.push(AssetSources {
                asset: a.name.clone(),
                total: a.raw,
                files,
                unmapped: map.unmapped,
            });
        }
    }
    let modules = if modules_from_maps {
        modules_from_sources(&assets, &measured)
    } else {
        modules_from_build(
            build_modules,
            &assets,
            &asset_index,
            &measured,
            &chunks,
            outputs_from_bundler,
        )
    };
    let modules = with_shares(modules, &assets, &asset_index, &chunks, with_brotli);
    let entries = entries_of(build_entries, &chunks, &assets, &asset_index, with_brotli);
    let packages = packages_of(&modules);
    let mut analysis = Analysis {
        format,
        assets,
        chunks,
        modules,
        sources,
        duplicates: Vec::new(),
        findings: Vec::new(),
        entries,
        packages,
        warnings,
    };
    crate::findings::derive(&mut analysis, roots);
    analysis
}

/// A module with its output bytes per asset, before compressed shares are computed.
pub(crate) struct Pending {
    module: Module,
    per_asset: Vec<(usize, u64)>,
    known: bool,
}

fn modules_from_sources(assets: &[Asset], measured: &[Measured]) -> Vec<Pending> {
    let mut by_key: HashMap<String, usize> = HashMap::new();
    let mut out: Vec<Pending> = Vec::new();
    for (ai, m) in measured.iter().enumerate() {
        let Some(map) = &m.map else { continue };
        for (si, src) in map.sources.iter().enumerate() {
            let bytes = map.per_source.get(si).copied().unwrap_or(0);
            let key = normalize(src);
            let idx = *by_key.entry(key.clone()).or_insert_with(|| {
                out.push(Pending {
                    module: Module {
                        package: package_of(&key),
                        name: key,
                        chunks: Vec::new(),
                        stat_size: 0,
                        output_size: Some(0),
                        gzip: None,
                        brotli: None,
                        esm: false,
                        provided_exports: None,
                        used_exports: None,
                    },
                    per_asset: Vec::new(),
                    known: true,
                });
                out.len() - 1
            });
            let p = &mut out[idx];
            if let Some(Some(len)) = map.content_lengths.get(si) {
                p.module.stat_size = p.module.stat_size.max(*len);
            }
            for c in &assets[ai].chunks {
                if !p.module.chunks.contains(c) {
                    p.module.chunks.push(c.clone());
                }
            }
            p.per_asset.push((ai, bytes));
        }
    }
    out
}

fn modules_from_build(
    build_modules: Vec<crate::build::BuildModule>,
    assets: &[Asset],
    asset_index: &HashMap<String, usize>,
    measured: &[Measured],
    chunks: &[Chunk],
    outputs_from_bundler: bool,
) -> Vec<Pending> {
    let chunk_files: HashMap<&str, &Vec<String>> =
        chunks.iter().map(|c| (c.id.as_str(), &c.files)).collect();
    let mut out: Vec<Pending> = Vec::with_capacity(build_modules.len());
    let mut by_key: HashMap<String, Vec<usize>> = HashMap::new();
    for bm in build_modules {
        let from_bundler = outputs_from_bundler || !bm.output.is_empty();
        let per_asset: Vec<(usize, u64)> = bm
            .output
            .iter()
            .filter_map(|(a, b)| asset_index.get(a).map(|&i| (i, *b)))
            .collect();
        if !from_bundler {
            by_key
                .entry(normalize(&bm.name))
                .or_default()
                .push(out.len());
        }
        let provided = match bm.provided {
            ExportsInfo::Count(n) => Some(n as u64),
            _ => None,
        };
        let used = match (bm.used, provided) {
            (ExportsInfo::Count(n), _) => Some(n as u64),
            (ExportsInfo::All, p) => p,
            (ExportsInfo::Unknown, _) => None,
        };
        out.push(Pending {
            module: Module {
                package: package_of(&bm.name),
                name: bm.name,
                chunks: bm.chunks,
                stat_size: bm.stat_size,
                output_size: None,
                gzip: None,
                brotli: None,
                esm: bm.esm,
                provided_exports: provided,
                used_exports: used,
            },
            per_asset,
            known: from_bundler,
        });
    }
    // Attribute map bytes to the modules of the bundler's list.
    for (ai, m) in measured.iter().enumerate() {
        let Some(map) = &m.map else { continue };
        let asset = &assets[ai];
        for (si, src) in map.sources.iter().enumerate() {
            let bytes = map.per_source.get(si).copied().unwrap_or(0);
            if bytes == 0 {
                continue;
            }
            let Some(candidates) = by_key.get(&normalize(src)) else {
                continue;
            };
            let pick = candidates
                .iter()
                .copied()
                .find(|&i| {
                    out[i]
                        .module
                        .chunks
                        .iter()
                        .any(|c| asset.chunks.contains(c))
                })
                .or_else(|| candidates.first().copied());
            if let Some(i) = pick {
                out[i].per_asset.push((ai, bytes));
            }
        }
    }
    // A module whose chunk files all have maps but which got no bytes was tree-shaken
    // or emptied: its output size is a known 0.
    let mapped: Vec<bool> = measured.iter().map(|m| m.map.is_some()).collect();
    for p in &mut out {
        if p.known || !p.per_asset.is_empty() {
            p.known = true;
            continue;
        }
        let files: Vec<usize> = p
            .module
            .chunks
            .iter()
            .filter_map(|c| chunk_files.get(c.as_str()))
            .flat_map(|fs| fs.iter().filter_map(|f| asset_index.get(f).copied()))
            .collect();
        p.known = !files.is_empty() && files.iter().all(|&i| mapped[i]);
    }
    out
}

fn with_shares(
    pending: Vec<Pending>,
    assets: &[Asset],
    _asset_index: &HashMap<String, usize>,
    _chunks: &[Chunk],
    with_brotli: bool,
) -> Vec<Module> {
    pending
        .into_iter()
        .map(|p| {
            let mut m = p.module;
            if p.known {
                let mut out = 0u64;
                let mut gzip = Some(0u64);
                let mut brotli = with_brotli.then_some(0u64);
                for &(ai, bytes) in &p.per_asset {
                    let a = &assets[ai];
                    out += bytes;
                    gzip = gzip.zip(share(bytes, a.gzip, a.raw)).map(|(x, y)| x + y);
                    brotli = brotli
                        .zip(share(bytes, a.brotli, a.raw))
                        .map(|(x, y)| x + y);
                }
                m.output_size = Some(out);
                m.gzip = gzip;
                m.brotli = brotli;
            }
            m
        })
        .collect()
}

fn entries_of(
    build_entries: Vec<crate::build::BuildEntry>,
    chunks: &[Chunk],
    assets: &[Asset],
    asset_index: &HashMap<String, usize>,
    with_brotli: bool,
) -> Vec<Entry> {
    let by_id: HashMap<&str, &Chunk> = chunks.iter().map(|c| (c.id.as_str(), c)).collect();
    build_entries
        .into_iter()
        .map(|e| {
            let mut files: Vec<String> = Vec::new();
            for id in &e.chunks {
                if let Some(c) = by_id.get(id.as_str()) {
                    for f in &c.files {
                        if asset_index.contains_key(f) && !files.contains(f) {
                            files.push(f.clone());
                        }
                    }
                } else if asset_index.contains_key(id) && !files.contains(id) {
                    files.push(id.clone());
                }
            }
            let mut raw = 0;
            let mut gzip = Some(0u64);
            let mut brotli = with_brotli.then_some(0u64);
            for f in &files {
                let a = &assets[asset_index[f]];
                raw += a.raw;
                gzip = gzip.zip(a.gzip).map(|(x, y)| x + y);
                brotli = brotli.zip(a.brotli).map(|(x, y)| x + y);
            }
            Entry {
                name: e.name,
                chunks: e.chunks,
                assets: files,
                raw,
                gzip,
                brotli,
            }
        })
        .collect()
}

fn packages_of(modules: &[Module]) -> Vec<PackageSize> {
    let mut map: BTreeMap<&str, PackageSize> = BTreeMap::new();
    for m in modules {
        let Some(pkg) = m.package.as_deref() else {
            continue;
        };
        let p = map.entry(pkg).or_insert_with(|| PackageSize {
            name: pkg.to_owned(),
            modules: 0,
            stat_size: 0,
            output_size: Some(0),
            gzip: Some(0),
        });
        p.modules += 1;
        p.stat_size += m.stat_size;
        p.output_size = p.output_size.zip(m.output_size).map(|(a, b)| a + b);
        p.gzip = p.gzip.zip(m.gzip).map(|(a, b)| a + b);
    }
    let mut v: Vec<PackageSize> = map.into_values().collect();
    v.sort_by(|a, b| {
        let ka = a.output_size.unwrap_or(a.stat_size);
        let kb = b.output_size.unwrap_or(b.stat_size);
        kb.cmp(&ka).then_with(|| a.name.cmp(&b.name))
    });
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_reads_leading_keys_only() {
        let keys = leading_keys(
            br#"{"hash":"x","a\"b":{"inputs":1},"outputs":[{"modules":2}]}"#,
            1000,
        );
        assert_eq!(keys, vec!["hash", "a\\\"b", "outputs"]);
        assert_eq!(
            detect(br#"{"inputs":{},"outputs":{}}"#, Path::new("m.json")).unwrap(),
            Format::Esbuild
        );
        assert_eq!(
            detect(br#"{"version":"5","modules":[]}"#, Path::new("s.json")).unwrap(),
            Format::Webpack
        );
        assert_eq!(
            detect(
                br#"{"src/a.js":{"file":"a.js"}}"#,
                Path::new("manifest.json")
            )
            .unwrap(),
            Format::Vite
        );
        assert!(detect(br#"{"x":1}"#, Path::new("x.json")).is_err());
    }
}
