//! Preload hints for web front ends: from a bundler's output and an entry, the tags a
//! backend renders (stylesheets, the entry script, `modulepreload` for static imports,
//! `prefetch` for dynamic imports) and the HTTP `Link` header value for 103 Early Hints.
//!
//! - [`ViteManifest`]: `.vite/manifest.json`, following Vite's backend-integration guide.
//! - [`EsbuildMetafile`]: esbuild's `--metafile` output.
//! - [`WebpackStats`]: webpack's `--json` stats (entrypoint files; async chunks as prefetch).
//!
//! ```
//! use perfkit_lazy::hints::{HintOptions, ViteManifest};
//!
//! let manifest = ViteManifest::from_json(r#"{
//!   "main.js": {"file": "assets/main-1.js", "isEntry": true, "css": ["assets/main-2.css"],
//!               "imports": ["_shared.js"], "dynamicImports": ["page.js"]},
//!   "_shared.js": {"file": "assets/shared-3.js", "css": ["assets/shared-4.css"]},
//!   "page.js": {"file": "assets/page-5.js", "isDynamicEntry": true}
//! }"#).unwrap();
//! let hints = manifest.hints("main.js", &HintOptions::default()).unwrap();
//! assert_eq!(hints.css, ["/assets/main-2.css", "/assets/shared-4.css"]);
//! assert_eq!(hints.script, "/assets/main-1.js");
//! assert_eq!(hints.modulepreload, ["/assets/shared-3.js"]);
//! assert_eq!(hints.prefetch, ["/assets/page-5.js"]);
//! assert!(hints.link_header().starts_with("</assets/main-2.css>; rel=preload; as=style"));
//! ```

mod esbuild;
mod graph;
mod vite;
mod webpack;

pub use esbuild::EsbuildMetafile;
pub use vite::ViteManifest;
pub use webpack::WebpackStats;

use crate::error::HintError;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;

/// The `crossorigin` attribute put on module scripts, module preloads and module prefetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CrossOrigin {
    /// No attribute.
    None,
    /// `crossorigin` (anonymous: what Vite puts in its own HTML).
    #[default]
    Anonymous,
    /// `crossorigin="use-credentials"`.
    UseCredentials,
}

/// How hints are rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HintOptions {
    /// Prefix of every file (`/`, `/static/`, `https://cdn.example.com/app/`); a `/` is
    /// inserted when it does not end with one. Empty: files as in the bundler output.
    pub base: String,
    /// The `crossorigin` of module tags.
    pub crossorigin: CrossOrigin,
}

impl Default for HintOptions {
    /// Base `/`, anonymous `crossorigin` on module tags.
    fn default() -> Self {
        HintOptions {
            base: "/".to_owned(),
            crossorigin: CrossOrigin::Anonymous,
        }
    }
}

impl HintOptions {
    /// Options with base `base`.
    pub fn with_base(base: impl Into<String>) -> Self {
        HintOptions {
            base: base.into(),
            ..HintOptions::default()
        }
    }

    pub(crate) fn url(&self, file: &str) -> String {
        if self.base.is_empty() {
            file.to_owned()
        } else if self.base.ends_with('/') {
            format!("{}{}", self.base, file.trim_start_matches('/'))
        } else {
            format!("{}/{}", self.base, file.trim_start_matches('/'))
        }
    }
}

/// What kind of tag loads the entry's own file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScriptKind {
    /// `<script type="module">` (Vite, esbuild ESM output).
    Module,
    /// `<script defer>` (webpack).
    Classic,
    /// `<link rel="stylesheet">`: a CSS entry.
    Stylesheet,
}

/// The preload hints of one entry, files prefixed by the base, in render order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HintSet {
    /// The entry asked for.
    pub entry: String,
    /// The entry's own file.
    pub script: String,
    /// How `script` is loaded.
    pub script_kind: ScriptKind,
    /// Classic scripts to load before `script` (webpack entrypoints split in several files).
    pub classic_scripts: Vec<String>,
    /// Stylesheets: the entry's, then those of its static imports, each once.
    pub css: Vec<String>,
    /// Statically imported JS chunks, dependencies first, each once.
    pub modulepreload: Vec<String>,
    /// Dynamically imported chunks (and what they import that the entry does not), for later.
    pub prefetch: Vec<String>,
    /// The `crossorigin` of module tags.
    pub crossorigin: CrossOrigin,
}

fn is_js(file: &str) -> bool {
    let path = file.split(['?', '#']).next().unwrap_or(file);
    path.ends_with(".js") || path.ends_with(".mjs") || path.ends_with(".cjs")
}

/// Escapes a value for a double-quoted HTML attribute.
fn attr(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ => out.push(c),
        }
    }
    out
}

/// Escapes a URL for a `Link` header's `<...>`: percent-encodes what could end it.
fn link_url(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'<' | b'>' | b'"' | b',' | b';' | b' ' | 0..=0x1f | 0x7f..=0xff => {
                let _ = write!(out, "%{b:02X}");
            }
            _ => out.push(b as char),
        }
    }
    out
}

impl HintSet {
    fn cross_attr(&self) -> &'static str {
        match self.crossorigin {
            CrossOrigin::None => "",
            CrossOrigin::Anonymous => " crossorigin",
            CrossOrigin::UseCredentials => " crossorigin=\"use-credentials\"",
        }
    }

    fn cross_param(&self) -> &'static str {
        match self.crossorigin {
            CrossOrigin::None => "",
            CrossOrigin::Anonymous => "; crossorigin",
            CrossOrigin::UseCredentials => "; crossorigin=use-credentials",
        }
    }

    fn module(&self) -> bool {
        self.script_kind == ScriptKind::Module
    }

    /// The tags, one a line, in the order Vite's guide recommends: stylesheets, the entry,
    /// module preloads, then prefetches.
    pub fn html(&self) -> String {
        let mut lines = Vec::new();
        let cross = self.cross_attr();
        for css in &self.css {
            lines.push(format!("<link rel=\"stylesheet\" href=\"{}\">", attr(css)));
        }
        for script in &self.classic_scripts {
            lines.push(format!("<script defer src=\"{}\"></script>", attr(script)));
        }
        lines.push(match self.script_kind {
            ScriptKind::Module => format!(
                "<script type=\"module\"{cross} src=\"{}\"></script>",
                attr(&self.script)
            ),
            ScriptKind::Classic => {
                format!("<script defer src=\"{}\"></script>", attr(&self.script))
            }
            ScriptKind::Stylesheet => {
                format!("<link rel=\"stylesheet\" href=\"{}\">", attr(&self.script))
            }
        });
        for file in &self.modulepreload {
            lines.push(format!(
                "<link rel=\"modulepreload\"{cross} href=\"{}\">",
                attr(file)
            ));
        }
        for file in &self.prefetch {
            let cross = if self.module() && is_js(file) {
                cross
            } else {
                ""
            };
            lines.push(format!(
                "<link rel=\"prefetch\"{cross} href=\"{}\">",
                attr(file)
            ));
        }
        lines.join("\n")
    }

    /// The `Link` header value preloading what the page needs at once (stylesheets, the entry
    /// and its static imports), for a 103 Early Hints response. Prefetches are left out:
    /// browsers act only on preloads in early hints.
    pub fn link_header(&self) -> String {
        let mut parts = Vec::new();
        let cross = self.cross_param();
        for css in &self.css {
            parts.push(format!("<{}>; rel=preload; as=style", link_url(css)));
        }
        for script in &self.classic_scripts {
            parts.push(format!("<{}>; rel=preload; as=script", link_url(script)));
        }
        parts.push(match self.script_kind {
            ScriptKind::Module => format!("<{}>; rel=modulepreload{cross}", link_url(&self.script)),
            ScriptKind::Classic => format!("<{}>; rel=preload; as=script", link_url(&self.script)),
            ScriptKind::Stylesheet => {
                format!("<{}>; rel=preload; as=style", link_url(&self.script))
            }
        });
        for file in &self.modulepreload {
            parts.push(format!("<{}>; rel=modulepreload{cross}", link_url(file)));
        }
        parts.join(", ")
    }
}

/// The bundler output formats hints are read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Vite's `.vite/manifest.json`.
    Vite,
    /// esbuild's metafile.
    Esbuild,
    /// webpack's `--json` stats.
    Webpack,
}

impl Format {
    /// Guesses the format of a JSON document from its top-level keys: `inputs` and
    /// `outputs` is an esbuild metafile, `entrypoints` or `chunks` webpack stats, anything
    /// else a Vite manifest.
    pub fn detect(json: &[u8]) -> Format {
        #[derive(serde::Deserialize)]
        struct Probe {
            inputs: Option<serde::de::IgnoredAny>,
            outputs: Option<serde::de::IgnoredAny>,
            entrypoints: Option<serde::de::IgnoredAny>,
            chunks: Option<serde::de::IgnoredAny>,
        }
        match serde_json::from_slice::<Probe>(json) {
            Ok(p) if p.inputs.is_some() && p.outputs.is_some() => Format::Esbuild,
            Ok(p) if p.entrypoints.is_some() || p.chunks.is_some() => Format::Webpack,
            _ => Format::Vite,
        }
    }
}

/// Reads the bundler output at `path` (format detected, or `format`), and computes the hints
/// of `entry`.
pub fn hints_from_path(
    path: &Path,
    entry: &str,
    format: Option<Format>,
    options: &HintOptions,
) -> Result<HintSet, HintError> {
    let bytes = std::fs::read(path).map_err(|source| HintError::Io {
        path: path.to_owned(),
        source,
    })?;
    match format.unwrap_or_else(|| Format::detect(&bytes)) {
        Format::Vite => ViteManifest::from_slice(&bytes)?.hints(entry, options),
        Format::Esbuild => EsbuildMetafile::from_slice(&bytes)?.hints(entry, options),
        Format::Webpack => WebpackStats::from_slice(&bytes)?.hints(entry, options),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> HintSet {
        HintSet {
            entry: "e".into(),
            script: "/a.js".into(),
            script_kind: ScriptKind::Module,
            classic_scripts: vec![],
            css: vec!["/a.css".into()],
            modulepreload: vec!["/b.js".into()],
            prefetch: vec!["/c.js".into(), "/c.css".into()],
            crossorigin: CrossOrigin::Anonymous,
        }
    }

    #[test]
    fn html_follows_the_guide_order_and_marks_modules_crossorigin() {
        assert_eq!(
            set().html(),
            "<link rel=\"stylesheet\" href=\"/a.css\">\n\
             <script type=\"module\" crossorigin src=\"/a.js\"></script>\n\
             <link rel=\"modulepreload\" crossorigin href=\"/b.js\">\n\
             <link rel=\"prefetch\" crossorigin href=\"/c.js\">\n\
             <link rel=\"prefetch\" href=\"/c.css\">"
        );
        assert_eq!(
            set().link_header(),
            "</a.css>; rel=preload; as=style, </a.js>; rel=modulepreload; crossorigin, \
             </b.js>; rel=modulepreload; crossorigin"
        );
    }

    #[test]
    fn escaping_and_base_joining() {
        let mut s = set();
        s.script = "/x\"y<z>.js".into();
        s.crossorigin = CrossOrigin::UseCredentials;
        assert!(
            s.html().contains("src=\"/x&quot;y&lt;z&gt;.js\""),
            "{}",
            s.html()
        );
        assert!(s.html().contains("crossorigin=\"use-credentials\""));
        assert!(
            s.link_header()
                .contains("</x%22y%3Cz%3E.js>; rel=modulepreload; crossorigin=use-credentials")
        );
        assert_eq!(
            HintOptions::with_base("/static").url("a.js"),
            "/static/a.js"
        );
        assert_eq!(
            HintOptions::with_base("https://cdn/x/").url("/a.js"),
            "https://cdn/x/a.js"
        );
        assert_eq!(HintOptions::with_base("").url("a.js"), "a.js");
    }

    #[test]
    fn formats_are_detected_by_top_level_keys() {
        assert_eq!(
            Format::detect(br#"{"inputs":{},"outputs":{}}"#),
            Format::Esbuild
        );
        assert_eq!(
            Format::detect(br#"{"entrypoints":{},"modules":[]}"#),
            Format::Webpack
        );
        assert_eq!(
            Format::detect(br#"{"main.js":{"file":"a.js"}}"#),
            Format::Vite
        );
        assert_eq!(Format::detect(b"not json"), Format::Vite);
    }
}
