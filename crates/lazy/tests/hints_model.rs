//! Preload hints checked against a reference model: a direct transliteration of the
//! `importedChunks` walk in Vite's backend-integration guide, on random manifests (with
//! cycles, shared chunks and CSS); and the parsers on malformed input never panic.

use perfkit_lazy::hints::{EsbuildMetafile, HintOptions, ViteManifest, WebpackStats};
use proptest::prelude::*;
use std::collections::{BTreeMap, HashSet};

#[derive(Debug, Clone)]
struct Chunk {
    imports: Vec<usize>,
    dynamic: Vec<usize>,
    css: Vec<usize>,
}

fn key(i: usize) -> String {
    if i == 0 {
        "main.js".to_owned()
    } else {
        format!("_c{i}.js")
    }
}

fn manifest_json(chunks: &[Chunk]) -> String {
    let mut map = serde_json::Map::new();
    for (i, c) in chunks.iter().enumerate() {
        map.insert(
            key(i),
            serde_json::json!({
                "file": format!("assets/c{i}.js"),
                "imports": c.imports.iter().map(|&j| key(j)).collect::<Vec<_>>(),
                "dynamicImports": c.dynamic.iter().map(|&j| key(j)).collect::<Vec<_>>(),
                "css": c.css.iter().map(|&k| format!("assets/s{k}.css")).collect::<Vec<_>>(),
            }),
        );
    }
    serde_json::Value::Object(map).to_string()
}

/// The guide's pseudo implementation, recursive, as written there.
fn imported_chunks(chunks: &[Chunk], name: usize) -> Vec<usize> {
    fn walk(chunks: &[Chunk], chunk: usize, seen: &mut HashSet<usize>) -> Vec<usize> {
        let mut out = Vec::new();
        for &file in &chunks[chunk].imports {
            if seen.contains(&file) {
                continue;
            }
            seen.insert(file);
            out.extend(walk(chunks, file, seen));
            out.push(file);
        }
        out
    }
    walk(chunks, name, &mut HashSet::new())
}

fn chunks_strategy() -> impl Strategy<Value = Vec<Chunk>> {
    (1usize..12).prop_flat_map(|n| {
        let chunk = (
            prop::collection::vec(0..n, 0..4),
            prop::collection::vec(0..n, 0..3),
            prop::collection::vec(0usize..6, 0..3),
        )
            .prop_map(|(imports, dynamic, css)| Chunk {
                imports,
                dynamic,
                css,
            });
        prop::collection::vec(chunk, n)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn vite_hints_follow_the_guides_walk(chunks in chunks_strategy()) {
        let m = ViteManifest::from_json(&manifest_json(&chunks)).unwrap();
        let h = m.hints("main.js", &HintOptions::with_base("")).unwrap();

        // The guide's walk, less the entry itself when a cycle leads back to it (the entry
        // is already loaded by its script tag).
        let imported: Vec<usize> = imported_chunks(&chunks, 0).into_iter().filter(|&i| i != 0).collect();
        let expected_preload: Vec<String> = imported.iter().map(|i| format!("assets/c{i}.js")).collect();
        prop_assert_eq!(&h.modulepreload, &expected_preload);

        let mut expected_css: Vec<String> = Vec::new();
        for i in std::iter::once(0).chain(imported.iter().copied()) {
            for k in &chunks[i].css {
                let f = format!("assets/s{k}.css");
                if !expected_css.contains(&f) {
                    expected_css.push(f);
                }
            }
        }
        prop_assert_eq!(&h.css, &expected_css);
        prop_assert_eq!(&h.script, "assets/c0.js");

        // Prefetch: never something already loaded, each file once.
        let loaded: HashSet<&String> = h.modulepreload.iter().chain(std::iter::once(&h.script)).collect();
        let mut seen = HashSet::new();
        for f in &h.prefetch {
            prop_assert!(!loaded.contains(f), "{} is loaded and prefetched", f);
            prop_assert!(seen.insert(f), "{} prefetched twice", f);
        }
    }

    #[test]
    fn parsers_never_panic_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let opts = HintOptions::default();
        if let Ok(m) = ViteManifest::from_slice(&bytes) {
            let _ = m.hints("main.js", &opts);
        }
        if let Ok(m) = EsbuildMetafile::from_slice(&bytes) {
            let _ = m.hints("main.js", &opts);
        }
        if let Ok(m) = WebpackStats::from_slice(&bytes) {
            let _ = m.hints("main", &opts);
        }
    }

    #[test]
    fn parsers_never_panic_on_mangled_json(
        chunks in chunks_strategy(),
        cut in 0usize..400,
        junk in "[\\[\\]{}\",:0-9a-z ]{0,8}",
    ) {
        let json = manifest_json(&chunks);
        let cut = cut.min(json.len());
        let mangled = format!("{}{}{}", &json[..cut], junk, &json[cut..]);
        let opts = HintOptions::default();
        for text in [&json[..cut], mangled.as_str()] {
            if let Ok(m) = ViteManifest::from_json(text) {
                let _ = m.hints("main.js", &opts);
            }
            if let Ok(m) = EsbuildMetafile::from_json(text) {
                let _ = m.hints("main.js", &opts);
            }
            if let Ok(m) = WebpackStats::from_json(text) {
                let _ = m.hints("main", &opts);
            }
        }
    }
}

#[test]
fn malformed_corpus_gives_errors_not_panics() {
    let corpus: BTreeMap<&str, &str> = BTreeMap::from([
        ("empty", ""),
        ("null", "null"),
        ("array", "[]"),
        ("string chunk", r#"{"main.js": "assets/main.js"}"#),
        (
            "imports not a list",
            r#"{"main.js": {"file": "a.js", "imports": "b.js"}}"#,
        ),
        ("file missing", r#"{"main.js": {"imports": []}}"#),
        ("truncated", r#"{"main.js": {"file": "a.js""#),
        (
            "esbuild outputs not a map",
            r#"{"inputs": {}, "outputs": []}"#,
        ),
        (
            "webpack chunk id object",
            r#"{"entrypoints": {"main": {"chunks": [{}], "assets": []}}}"#,
        ),
    ]);
    for (name, text) in corpus {
        let vite =
            ViteManifest::from_json(text).map(|m| m.hints("main.js", &HintOptions::default()));
        let es =
            EsbuildMetafile::from_json(text).map(|m| m.hints("main.js", &HintOptions::default()));
        let wp = WebpackStats::from_json(text).map(|m| m.hints("main", &HintOptions::default()));
        assert!(
            !matches!(vite, Ok(Ok(_))) && !matches!(es, Ok(Ok(_))) && !matches!(wp, Ok(Ok(_))),
            "{name}: accepted"
        );
    }
}
