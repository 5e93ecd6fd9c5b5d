//! The analysis result: what `perfkit bundle analyze --json` prints.

use perfkit_core::Severity;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The input formats this crate reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// webpack or rspack `--json` stats (including multi-compiler `children`).
    Webpack,
    /// An esbuild metafile.
    Esbuild,
    /// A Vite `.vite/manifest.json` with its output directory.
    Vite,
    /// A directory of `.js`/`.mjs`/`.css` files with source maps.
    Sourcemaps,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "webpack" | "rspack" | "stats" => Ok(Format::Webpack),
            "esbuild" | "metafile" => Ok(Format::Esbuild),
            "vite" | "manifest" => Ok(Format::Vite),
            "sourcemaps" | "dir" | "source-map" => Ok(Format::Sourcemaps),
            other => Err(format!(
                "unknown format {other:?} (expected webpack, rspack, esbuild, vite or sourcemaps)"
            )),
        }
    }
}

/// One emitted file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Asset {
    /// File name relative to the output directory.
    pub name: String,
    /// Size of the file in bytes.
    pub raw: u64,
    /// Size after gzip at level 9; `null` when the file was not found.
    pub gzip: Option<u64>,
    /// Size after brotli at quality 11, with `--brotli`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brotli: Option<u64>,
    /// Ids of the chunks the file belongs to.
    #[serde(default)]
    pub chunks: Vec<String>,
    /// Whether the file is loaded on page load by some entry.
    #[serde(default)]
    pub initial: bool,
}

/// One chunk: a unit of loading (an entry's initial chunk or an async chunk).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    /// The bundler's chunk id (prefixed with the compiler name for multi-compiler stats).
    pub id: String,
    /// Chunk names.
    pub names: Vec<String>,
    /// Whether the chunk is loaded on page load (else it is loaded on demand).
    pub initial: bool,
    /// The chunk's files.
    pub files: Vec<String>,
    /// Sum of the raw sizes of the chunk's code files.
    pub raw: u64,
    /// Sum of their gzip sizes.
    pub gzip: Option<u64>,
    /// Sum of their brotli sizes, with `--brotli`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brotli: Option<u64>,
}

/// One source module.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Module {
    /// The module's name (its path as the bundler names it).
    pub name: String,
    /// The npm package it belongs to, from its `node_modules` path.
    pub package: Option<String>,
    /// Ids of the chunks that contain it.
    pub chunks: Vec<String>,
    /// Size of the module's source as the bundler reports it (0 when unknown).
    pub stat_size: u64,
    /// Bytes of emitted code attributed to the module (summed over the assets holding it),
    /// through the source map or the bundler's own figure; `null` when no map was found.
    pub output_size: Option<u64>,
    /// The module's share of its assets' real gzip size.
    pub gzip: Option<u64>,
    /// The module's share of its assets' real brotli size, with `--brotli`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brotli: Option<u64>,
    /// Whether the module is an ES module (webpack and esbuild say so).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub esm: bool,
    /// How many exports the module provides, when the bundler says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provided_exports: Option<u64>,
    /// How many of them are used (all of them when the bundler says "all").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_exports: Option<u64>,
}

/// Bytes per source of one asset, read from its source map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssetSources {
    /// The asset.
    pub asset: String,
    /// The asset's size.
    pub total: u64,
    /// Bytes per source path, as written in the map (after `sourceRoot`).
    pub files: BTreeMap<String, u64>,
    /// Bytes attributed to no source (runtime glue, line ends, the map comment).
    pub unmapped: u64,
}

/// One copy of a package found in the build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackageCopy {
    /// The install path (`node_modules/a/node_modules/b`).
    pub path: String,
    /// Output bytes of its modules (stat bytes when no output size is known).
    pub bytes: u64,
    /// The copy's version, from its `package.json` when the project's `node_modules` is
    /// beside the input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// A package bundled more than once, or a module present in several chunks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Duplicate {
    /// `package` (several copies of one package) or `module` (one module in several chunks).
    pub kind: String,
    /// The package or module name.
    pub name: String,
    /// The copies (install paths) for `package`; the chunk ids for `module`.
    pub copies: Vec<PackageCopy>,
    /// Bytes that would be saved by keeping one copy.
    pub bytes: u64,
}

/// Something worth changing, with the bytes at stake.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BundleFinding {
    /// `duplicate_package`, `duplicate_module`, `whole_library_import`,
    /// `heavy_initial_module`, `locale_pack`, `lodash_both`.
    pub kind: String,
    /// How much attention it deserves.
    pub severity: Severity,
    /// One human sentence saying what to change.
    pub message: String,
    /// Output bytes at stake (what could be saved or deferred).
    pub bytes: u64,
    /// The package or module concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

/// An entry point and what it loads on page load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The entry's name.
    pub name: String,
    /// Ids of its initial chunks.
    pub chunks: Vec<String>,
    /// Its initial code files.
    pub assets: Vec<String>,
    /// Raw bytes loaded initially.
    pub raw: u64,
    /// Gzip bytes loaded initially.
    pub gzip: Option<u64>,
    /// Brotli bytes loaded initially, with `--brotli`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brotli: Option<u64>,
}

/// Size of one package over the whole build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackageSize {
    /// Package name (`@mui/material`).
    pub name: String,
    /// Number of modules.
    pub modules: usize,
    /// Sum of the modules' stat sizes.
    pub stat_size: u64,
    /// Sum of the modules' output sizes, when known.
    pub output_size: Option<u64>,
    /// Sum of the modules' gzip shares, when known.
    pub gzip: Option<u64>,
}

/// The whole analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// The input format.
    pub format: Format,
    /// Emitted files (source maps excluded).
    pub assets: Vec<Asset>,
    /// Chunks.
    pub chunks: Vec<Chunk>,
    /// Modules (concatenated modules are listed one by one).
    pub modules: Vec<Module>,
    /// Per asset, bytes per source from the source maps.
    pub sources: Vec<AssetSources>,
    /// Packages with several copies and modules in several chunks.
    pub duplicates: Vec<Duplicate>,
    /// What to change, largest bytes at stake first.
    pub findings: Vec<BundleFinding>,
    /// Entry points and their initial sizes.
    #[serde(default)]
    pub entries: Vec<Entry>,
    /// Sizes per package, largest first.
    #[serde(default)]
    pub packages: Vec<PackageSize>,
    /// Problems in the input that did not stop the analysis.
    #[serde(default)]
    pub warnings: Vec<String>,
}

impl Analysis {
    /// The asset named `name`.
    pub fn asset(&self, name: &str) -> Option<&Asset> {
        self.assets.iter().find(|a| a.name == name)
    }

    /// Total raw bytes of all assets.
    pub fn total_raw(&self) -> u64 {
        self.assets.iter().map(|a| a.raw).sum()
    }

    /// Total gzip bytes of all assets whose gzip size is known.
    pub fn total_gzip(&self) -> u64 {
        self.assets.iter().filter_map(|a| a.gzip).sum()
    }
}
