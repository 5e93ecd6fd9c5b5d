//! Preload hints for the real bundles in `../shared/data/bundle/medium.tar.xz`: a Vite
//! manifest, an esbuild metafile and webpack stats of the same app. The expected lists were
//! derived by hand from the manifest following Vite's backend-integration guide.

use perfkit_lazy::hints::{Format, HintOptions, hints_from_path};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Unpacks the archive's three build outputs into a temporary directory.
fn unpack() -> Option<(tempfile::TempDir, PathBuf)> {
    let archive = perfkit_testkit::data_file("bundle/medium.tar.xz")?;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let status = Command::new("tar")
        .arg("-xJf")
        .arg(&archive)
        .arg("-C")
        .arg(dir.path())
        .args(["vite-dist/.vite/manifest.json", "meta.json", "stats.json"])
        .status()
        .expect("running tar");
    assert!(status.success(), "tar failed on {}", archive.display());
    let root = dir.path().to_owned();
    Some((dir, root))
}

fn vite(root: &Path) -> PathBuf {
    root.join("vite-dist/.vite/manifest.json")
}

#[test]
fn real_vite_manifest_entries_get_the_tags_the_guide_prescribes() {
    let Some((_dir, root)) = unpack() else { return };
    let opts = HintOptions::default();
    let main = hints_from_path(&vite(&root), "src/index.js", None, &opts).unwrap();
    // src/index.js has no CSS; it imports rolldown-runtime, preload-helper (which imports
    // rolldown-runtime again) and groupBy (which imports preload-helper): dependencies first,
    // each once. Its dynamic imports charts, scene and locales import nothing new (locales
    // imports src/index.js itself, already loaded).
    assert!(main.css.is_empty());
    assert_eq!(main.script, "/assets/main-D7HsHoBh.js");
    assert_eq!(
        main.modulepreload,
        [
            "/assets/rolldown-runtime-COiEfhsA.js",
            "/assets/preload-helper-BnOMO_PX.js",
            "/assets/groupBy-CNW_E3Zc.js",
        ]
    );
    assert_eq!(
        main.prefetch,
        [
            "/assets/charts-BOrCyC12.js",
            "/assets/scene-RHqr5ofo.js",
            "/assets/locales-rJYXFVrD.js",
        ]
    );
    assert_eq!(
        main.html(),
        "<script type=\"module\" crossorigin src=\"/assets/main-D7HsHoBh.js\"></script>\n\
         <link rel=\"modulepreload\" crossorigin href=\"/assets/rolldown-runtime-COiEfhsA.js\">\n\
         <link rel=\"modulepreload\" crossorigin href=\"/assets/preload-helper-BnOMO_PX.js\">\n\
         <link rel=\"modulepreload\" crossorigin href=\"/assets/groupBy-CNW_E3Zc.js\">\n\
         <link rel=\"prefetch\" crossorigin href=\"/assets/charts-BOrCyC12.js\">\n\
         <link rel=\"prefetch\" crossorigin href=\"/assets/scene-RHqr5ofo.js\">\n\
         <link rel=\"prefetch\" crossorigin href=\"/assets/locales-rJYXFVrD.js\">"
    );
    assert_eq!(
        main.link_header(),
        "</assets/main-D7HsHoBh.js>; rel=modulepreload; crossorigin, \
         </assets/rolldown-runtime-COiEfhsA.js>; rel=modulepreload; crossorigin, \
         </assets/preload-helper-BnOMO_PX.js>; rel=modulepreload; crossorigin, \
         </assets/groupBy-CNW_E3Zc.js>; rel=modulepreload; crossorigin"
    );

    // src/admin.js does not import groupBy statically; its dynamic import charts does, so
    // groupBy is prefetched with it.
    let admin = hints_from_path(&vite(&root), "src/admin.js", Some(Format::Vite), &opts).unwrap();
    assert_eq!(admin.script, "/assets/admin-CLyGplnV.js");
    assert_eq!(
        admin.modulepreload,
        [
            "/assets/rolldown-runtime-COiEfhsA.js",
            "/assets/preload-helper-BnOMO_PX.js",
        ]
    );
    assert_eq!(
        admin.prefetch,
        ["/assets/charts-BOrCyC12.js", "/assets/groupBy-CNW_E3Zc.js"]
    );

    let err = hints_from_path(&vite(&root), "src/nope.js", None, &opts).unwrap_err();
    assert!(err.to_string().contains("src/index.js"), "{err}");
}

#[test]
fn real_esbuild_metafile_and_webpack_stats() {
    let Some((_dir, root)) = unpack() else { return };
    let opts = HintOptions::with_base("/static/");
    let meta = root.join("meta.json");
    assert_eq!(
        Format::detect(&std::fs::read(&meta).unwrap()),
        Format::Esbuild
    );
    let es = hints_from_path(&meta, "src/index.js", None, &opts).unwrap();
    assert_eq!(es.script, "/static/out/index.js");
    assert_eq!(
        es.modulepreload,
        [
            "/static/out/chunk-QR2BR4LY.js",
            "/static/out/chunk-DOROB2AA.js",
            "/static/out/chunk-LG2D5B3C.js",
            "/static/out/chunk-NFDTQW3E.js",
            "/static/out/chunk-42OHEVLQ.js",
        ]
    );
    assert_eq!(
        es.prefetch,
        [
            "/static/out/charts-WWUONEEB.js",
            "/static/out/scene-C54JW5H6.js",
            "/static/out/locales-KMXFTW5Q.js",
        ]
    );

    let stats = root.join("stats.json");
    let wp = hints_from_path(&stats, "main", None, &opts).unwrap();
    assert_eq!(wp.script, "/static/main.992a2631.js");
    assert!(wp.css.is_empty() && wp.classic_scripts.is_empty());
    assert_eq!(
        wp.prefetch,
        [
            "/static/scene.fcff0b2d.chunk.js",
            "/static/locales.ddf1337f.chunk.js",
            "/static/charts.3c4c6172.chunk.js",
            "/static/421.63096761.chunk.js",
            "/static/507.2b347f17.chunk.js",
            "/static/879.22c7699e.chunk.js",
        ]
    );
    let admin = hints_from_path(&stats, "admin", None, &opts).unwrap();
    assert_eq!(admin.script, "/static/admin.9a073cdc.js");
    assert_eq!(
        admin.prefetch,
        [
            "/static/charts.3c4c6172.chunk.js",
            "/static/879.22c7699e.chunk.js"
        ]
    );
}
