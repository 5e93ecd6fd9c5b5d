//! The chunk graph Vite manifests and esbuild metafiles reduce to, and the walk of Vite's
//! backend-integration guide over it.

use super::{HintOptions, HintSet, ScriptKind};
use crate::error::HintError;
use std::collections::{HashMap, HashSet};

/// One chunk: its file, its CSS, and the keys of what it imports.
#[derive(Debug, Default)]
pub(crate) struct Node {
    pub(crate) file: String,
    pub(crate) css: Vec<String>,
    pub(crate) imports: Vec<String>,
    pub(crate) dynamic_imports: Vec<String>,
}

/// Chunks by key.
#[derive(Debug, Default)]
pub(crate) struct Graph {
    pub(crate) format: &'static str,
    pub(crate) nodes: HashMap<String, Node>,
}

impl Graph {
    fn node(&self, from: &str, key: &str) -> Result<&Node, HintError> {
        self.nodes.get(key).ok_or_else(|| HintError::MissingChunk {
            format: self.format,
            from: from.to_owned(),
            missing: key.to_owned(),
        })
    }

    /// The chunks `root` statically imports, recursively, each once, dependencies first
    /// (the guide's `importedChunks`: a post-order walk). Keys in `seen` are skipped and
    /// every visited key is added to it, so import cycles end. Iterative: a long import
    /// chain cannot overflow the stack.
    pub(crate) fn imported_chunks<'g>(
        &'g self,
        root: &'g str,
        seen: &mut HashSet<&'g str>,
    ) -> Result<Vec<&'g str>, HintError> {
        let mut out = Vec::new();
        let mut stack: Vec<(&'g str, usize)> = vec![(root, 0)];
        while let Some(top) = stack.len().checked_sub(1) {
            let (key, next) = stack[top];
            let node = self.node(key, key)?;
            if let Some(import) = node.imports.get(next) {
                stack[top].1 += 1;
                if seen.insert(import.as_str()) {
                    self.node(key, import)?;
                    stack.push((import.as_str(), 0));
                }
            } else {
                stack.pop();
                if !stack.is_empty() {
                    out.push(key);
                }
            }
        }
        Ok(out)
    }

    /// The hints of entry `entry`, following the guide: the entry's CSS, the CSS of its
    /// imported chunks, the entry file, `modulepreload` for the imported chunks, then
    /// `prefetch` for dynamic imports (of the entry and of its imported chunks) and for what
    /// those import that is not loaded yet.
    pub(crate) fn hints(&self, entry: &str, options: &HintOptions) -> Result<HintSet, HintError> {
        let (entry_key, root) = self.nodes.get_key_value(entry).ok_or_else(|| {
            let mut available: Vec<String> = self.nodes.keys().cloned().collect();
            available.sort();
            available.truncate(20);
            HintError::UnknownEntry {
                entry: entry.to_owned(),
                format: self.format,
                available,
            }
        })?;
        // Exactly the guide's walk; then the entry itself is left out when an import cycle
        // leads back to it (its script tag loads it already).
        let mut seen: HashSet<&str> = HashSet::new();
        let imported: Vec<&str> = self
            .imported_chunks(entry_key, &mut seen)?
            .into_iter()
            .filter(|key| *key != entry_key.as_str())
            .collect();
        seen.insert(entry_key.as_str());

        let mut css: Vec<&str> = Vec::new();
        let mut css_seen: HashSet<&str> = HashSet::new();
        push_unique(&root.css, &mut css, &mut css_seen);
        for key in &imported {
            push_unique(&self.nodes[*key].css, &mut css, &mut css_seen);
        }
        let mut modulepreload: Vec<&str> = Vec::new();
        let mut loaded_files: HashSet<&str> = HashSet::from([root.file.as_str()]);
        for key in &imported {
            let node = &self.nodes[*key];
            if node.file.ends_with(".css") {
                push_unique(std::slice::from_ref(&node.file), &mut css, &mut css_seen);
            } else if loaded_files.insert(node.file.as_str()) {
                modulepreload.push(node.file.as_str());
            }
        }

        // Prefetch: dynamic imports of the entry and its imported chunks, in order, each
        // followed by what it imports that is not loaded yet; then their CSS.
        let mut prefetch: Vec<&str> = Vec::new();
        let mut prefetch_css: Vec<&str> = Vec::new();
        let mut sources: Vec<&str> = vec![entry_key.as_str()];
        sources.extend(imported.iter().copied());
        for source in sources {
            for dynamic in &self.nodes[source].dynamic_imports {
                if !seen.insert(dynamic.as_str()) {
                    continue;
                }
                self.node(source, dynamic)?;
                let deps = self.imported_chunks(dynamic, &mut seen)?;
                for key in std::iter::once(dynamic.as_str()).chain(deps) {
                    let node = &self.nodes[key];
                    if loaded_files.insert(node.file.as_str()) {
                        prefetch.push(node.file.as_str());
                    }
                    push_unique(&node.css, &mut prefetch_css, &mut css_seen);
                }
            }
        }
        prefetch.extend(prefetch_css);

        let script_kind = if root.file.ends_with(".css") {
            ScriptKind::Stylesheet
        } else {
            ScriptKind::Module
        };
        let urls = |files: &[&str]| files.iter().map(|f| options.url(f)).collect::<Vec<_>>();
        Ok(HintSet {
            entry: entry.to_owned(),
            script: options.url(&root.file),
            script_kind,
            classic_scripts: Vec::new(),
            css: urls(&css),
            modulepreload: urls(&modulepreload),
            prefetch: urls(&prefetch),
            crossorigin: options.crossorigin,
        })
    }
}

/// Appends the files not seen yet.
fn push_unique<'a>(files: &'a [String], out: &mut Vec<&'a str>, seen: &mut HashSet<&'a str>) {
    for file in files {
        if seen.insert(file.as_str()) {
            out.push(file.as_str());
        }
    }
}
