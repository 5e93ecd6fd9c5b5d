//! # perfkit-bundle
//!
//! Fast, correct analysis of JavaScript bundler output: webpack and rspack stats
//! (including multi-compiler `children`), esbuild metafiles, Vite manifests, and plain
//! directories of bundles with source maps.
//!
//! - Sizes of the real files: raw, gzip level 9 and (optionally) brotli quality 11,
//!   compressed in parallel.
//! - Per module: the bundler's stat size, the output bytes attributed through the source
//!   map (our own VLQ decoder; async chunks included), and the module's share of its
//!   asset's real compressed size, so modules add up to their asset.
//! - Findings with the bytes at stake: duplicate packages, modules duplicated across
//!   chunks, whole-library imports, heavy single-entry modules, locale packs.
//! - Budgets ([`budget`]), diffs ([`diff`]), a `splitChunks` proposal ([`splitchunks`]) and a
//!   self-contained HTML treemap ([`html`]).
//!
//! ```
//! use perfkit_bundle::{analyze, Options};
//! # let dir = tempfile::tempdir()?;
//! // A bundle with an external source map: two sources on one line.
//! std::fs::write(dir.path().join("app.js"), "aaaabbbb\n//# sourceMappingURL=app.js.map\n")?;
//! std::fs::write(
//!     dir.path().join("app.js.map"),
//!     r#"{"version":3,"sources":["src/a.js","node_modules/b/index.js"],"mappings":"AAAA,ICAA"}"#,
//! )?;
//! let analysis = analyze(dir.path(), &Options::default())?;
//! let sources = &analysis.sources[0];
//! assert_eq!(sources.files["src/a.js"], 4);
//! assert_eq!(sources.files["node_modules/b/index.js"], 4);
//! assert_eq!(analysis.assets[0].raw, 41);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod analyze;
pub mod budget;
mod build;
pub mod diff;
mod error;
mod esbuild;
mod findings;
pub mod html;
mod measure;
mod model;
mod package;
pub mod sourcemap;
pub mod splitchunks;
mod vite;
mod webpack;

pub use analyze::{Options, analyze, analyze_with_progress};
pub use error::BundleError;
pub use measure::{brotli_size, gzip_size};
pub use model::{
    Analysis, Asset, AssetSources, BundleFinding, Chunk, Duplicate, Entry, Format, Module,
    PackageCopy, PackageSize,
};
pub use package::package_of;

/// Parses webpack/rspack stats from bytes (for fuzzing and tests); the file name is only
/// used in messages.
pub fn parse_webpack_stats(bytes: &[u8]) -> Result<usize, BundleError> {
    webpack::read(bytes, std::path::Path::new("stats.json"), None).map(|b| b.modules.len())
}

/// Parses an esbuild metafile from bytes (for fuzzing and tests).
pub fn parse_esbuild_metafile(bytes: &[u8]) -> Result<usize, BundleError> {
    esbuild::read(bytes, std::path::Path::new("meta.json"), None).map(|b| b.modules.len())
}
