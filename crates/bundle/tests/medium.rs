//! Tests on the real medium build in `../shared/data/bundle/medium.tar.xz` (webpack 5
//! stats + dist with maps, esbuild metafile + out/, Vite manifest). Skipped, with a printed
//! line, when the data is absent.

use perfkit_bundle::{Analysis, Format, Options, analyze};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The unpacked archive, shared by the tests of this binary.
fn medium() -> Option<&'static Path> {
    static DIR: OnceLock<Option<tempfile::TempDir>> = OnceLock::new();
    DIR.get_or_init(|| {
        let archive = perfkit_testkit::data_file("bundle/medium.tar.xz")?;
        let dir = tempfile::tempdir().expect("tempdir");
        let status = Command::new("tar")
            .arg("-xJf")
            .arg(&archive)
            .arg("-C")
            .arg(dir.path())
            .status()
            .expect("running tar");
        assert!(status.success(), "tar -xJf {} failed", archive.display());
        Some(dir)
    })
    .as_ref()
    .map(|d| d.path())
}

fn webpack() -> Option<&'static Analysis> {
    static A: OnceLock<Option<Analysis>> = OnceLock::new();
    A.get_or_init(|| {
        let dir = medium()?;
        let opts = Options {
            dist: Some(dir.join("dist")),
            ..Options::default()
        };
        Some(analyze(&dir.join("stats.json"), &opts).expect("analyzing the medium stats"))
    })
    .as_ref()
}

#[test]
fn asset_sizes_are_the_files_and_gzip_is_real_gzip_9() {
    let (Some(dir), Some(a)) = (medium(), webpack()) else {
        return;
    };
    assert_eq!(a.format, Format::Webpack);
    assert_eq!(a.assets.len(), 8);
    for asset in &a.assets {
        let path = dir.join("dist").join(&asset.name);
        let len = std::fs::metadata(&path).unwrap().len();
        assert_eq!(asset.raw, len, "{}", asset.name);
        // An independent gzip: the gzip program at level 9, no name in the header.
        let out = Command::new("gzip")
            .args(["-9", "-n", "-c"])
            .arg(&path)
            .output();
        let Ok(out) = out else {
            eprintln!("skipped gzip comparison: no gzip program");
            continue;
        };
        let reference = out.stdout.len() as f64;
        let ours = asset.gzip.expect("gzip size") as f64;
        assert!(
            (ours - reference).abs() <= reference * 0.01,
            "{}: gzip {ours} vs gzip -9 {reference}",
            asset.name
        );
    }
}

#[test]
fn async_chunks_have_module_sizes_and_modules_add_up() {
    let Some(a) = webpack() else { return };
    let async_chunks: Vec<_> = a.chunks.iter().filter(|c| !c.initial).collect();
    assert!(async_chunks.len() >= 6);
    for c in async_chunks.iter().filter(|c| c.raw > 10_000) {
        let mods: Vec<_> = a
            .modules
            .iter()
            .filter(|m| m.chunks.contains(&c.id))
            .collect();
        assert!(!mods.is_empty(), "async chunk {} has modules", c.id);
        let out: u64 = mods
            .iter()
            .map(|m| m.output_size.expect("output size in async chunk"))
            .sum();
        assert!(
            out > c.raw / 2,
            "chunk {}: modules {out} of {}",
            c.id,
            c.raw
        );
    }
    // Per asset: sources + unmapped == file size; module gzip shares never exceed the asset.
    for s in &a.sources {
        let sum: u64 = s.files.values().sum::<u64>() + s.unmapped;
        assert_eq!(sum, s.total, "{}", s.asset);
    }
    // Module gzip sizes are shares of the real gzip sizes: they add up to at most the
    // assets' total and to most of it (the rest is runtime glue without a source).
    let modules_gz: u64 = a.modules.iter().filter_map(|m| m.gzip).sum();
    let assets_gz = a.total_gzip();
    assert!(
        modules_gz <= assets_gz && modules_gz > assets_gz * 9 / 10,
        "{modules_gz} vs {assets_gz}"
    );
}

#[test]
fn findings_name_the_known_problems_with_bytes() {
    let Some(a) = webpack() else { return };
    let has = |kind: &str, subject: &str| {
        a.findings
            .iter()
            .any(|f| f.kind == kind && f.subject.as_deref() == Some(subject) && f.bytes > 0)
    };
    assert!(has("locale_pack", "moment"));
    assert!(has("locale_pack", "date-fns"));
    assert!(has("duplicate_package", "react-is"));
    assert!(has("duplicate_module", "moment"));
    assert!(has("whole_library_import", "lodash"));
    assert!(has("heavy_initial_module", "@mui/material"));
    assert!(
        a.duplicates
            .iter()
            .any(|d| d.kind == "package" && d.name == "react-is")
    );
    let json = serde_json::to_value(a).unwrap();
    for key in [
        "assets",
        "chunks",
        "modules",
        "sources",
        "duplicates",
        "findings",
    ] {
        assert!(json.get(key).is_some(), "{key}");
    }
    for key in [
        "name",
        "package",
        "chunks",
        "stat_size",
        "output_size",
        "gzip",
    ] {
        assert!(json["modules"][0].get(key).is_some(), "modules[].{key}");
    }
}

#[test]
fn esbuild_metafile_and_vite_manifest() {
    let Some(dir) = medium() else { return };
    let e = analyze(&dir.join("meta.json"), &Options::default()).unwrap();
    assert_eq!(e.format, Format::Esbuild);
    let names: Vec<_> = e.entries.iter().map(|x| x.name.as_str()).collect();
    assert_eq!(names, vec!["admin", "index"]);
    for asset in &e.assets {
        let len = std::fs::metadata(dir.join(&asset.name)).unwrap().len();
        assert_eq!(asset.raw, len);
        assert!(asset.gzip.is_some());
    }
    // esbuild's bytesInOutput add up to most of the outputs.
    let out: u64 = e.modules.iter().filter_map(|m| m.output_size).sum();
    assert!(
        out <= e.total_raw() && out > e.total_raw() * 9 / 10,
        "{out} of {}",
        e.total_raw()
    );
    let v = analyze(&dir.join("vite-dist"), &Options::default()).unwrap();
    assert_eq!(v.format, Format::Vite);
    assert_eq!(v.entries.len(), 2);
    assert!(v.chunks.iter().any(|c| !c.initial));
}

// ---------------------------------------------------------------------------------------
// An independent second reading of source maps: a table-driven VLQ decoder and
// source-map-explorer's way of measuring (UTF-16 substrings re-encoded as UTF-8).

fn ref_decode(mappings: &str) -> Vec<Vec<(usize, Option<usize>)>> {
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut lines = Vec::new();
    let mut src: i64 = 0;
    for line in mappings.split(';') {
        let mut col: i64 = 0;
        let mut segs = Vec::new();
        for seg in line.split(',').filter(|s| !s.is_empty()) {
            let mut vals = Vec::new();
            let (mut acc, mut shift) = (0i64, 0);
            for ch in seg.chars() {
                let d = alphabet.find(ch).expect("base64 digit") as i64;
                acc += (d & 31) << shift;
                if d & 32 != 0 {
                    shift += 5;
                } else {
                    vals.push(if acc & 1 == 1 { -(acc >> 1) } else { acc >> 1 });
                    acc = 0;
                    shift = 0;
                }
            }
            col += vals[0];
            let s = if vals.len() >= 4 {
                src += vals[1];
                Some(src as usize)
            } else {
                None
            };
            segs.push((col as usize, s));
        }
        lines.push(segs);
    }
    lines
}

fn ref_sizes(code: &str, map: &serde_json::Value) -> BTreeMap<String, u64> {
    let sources: Vec<String> = map["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap_or("").to_owned())
        .collect();
    let mut out = BTreeMap::new();
    let decoded = ref_decode(map["mappings"].as_str().unwrap());
    for (line, segs) in code.split('\n').zip(decoded) {
        let units: Vec<u16> = line.encode_utf16().collect();
        let mut segs = segs;
        segs.sort_by_key(|s| s.0);
        for (i, &(col, src)) in segs.iter().enumerate() {
            let end = segs
                .get(i + 1)
                .map_or(units.len(), |s| s.0)
                .min(units.len());
            let start = col.min(end);
            let Some(src) = src else { continue };
            let bytes = String::from_utf16_lossy(&units[start..end]).len() as u64;
            *out.entry(sources[src].clone()).or_insert(0) += bytes;
        }
    }
    out
}

#[test]
fn per_source_bytes_match_a_second_reading_within_one_percent() {
    let (Some(dir), Some(a)) = (medium(), webpack()) else {
        return;
    };
    let mut compared = 0;
    for s in &a.sources {
        let code = std::fs::read_to_string(dir.join("dist").join(&s.asset)).unwrap();
        let map_path: PathBuf = dir.join("dist").join(format!("{}.map", s.asset));
        let map: serde_json::Value =
            serde_json::from_slice(&std::fs::read(map_path).unwrap()).unwrap();
        for (source, reference) in ref_sizes(&code, &map) {
            if reference <= 1024 {
                continue;
            }
            let ours = s.files.get(&source).copied().unwrap_or(0);
            let diff = (ours as f64 - reference as f64).abs();
            assert!(
                diff <= reference as f64 * 0.01,
                "{} {source}: {ours} vs {reference}",
                s.asset
            );
            compared += 1;
        }
    }
    assert!(compared > 500, "compared {compared} sources");
}
