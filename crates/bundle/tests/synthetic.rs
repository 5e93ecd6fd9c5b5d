//! Tests on small builds written by the tests themselves (no outside data): bundle
//! directories with external and inline maps, webpack stats with dist, budgets, diffs,
//! the splitChunks proposal and the HTML report in headless Chromium.

use perfkit_bundle::budget::{check, parse};
use perfkit_bundle::sourcemap::encode_vlq;
use perfkit_bundle::{Analysis, Options, analyze};
use std::path::Path;

/// A generated file of `parts` (source index, text) on one line, and its map.
fn bundle(parts: &[(usize, &str)], sources: &[&str]) -> (String, String) {
    let mut code = String::new();
    let mut mappings = String::new();
    let (mut col, mut src) = (0i64, 0i64);
    for (i, (s, text)) in parts.iter().enumerate() {
        if i > 0 {
            mappings.push(',');
        }
        encode_vlq(code.len() as i64 - col, &mut mappings);
        encode_vlq(*s as i64 - src, &mut mappings);
        mappings.push_str("AA");
        col = code.len() as i64;
        src = *s as i64;
        code.push_str(text);
    }
    let srcs: Vec<String> = sources.iter().map(|s| format!("{s:?}")).collect();
    let map = format!(
        r#"{{"version":3,"sources":[{}],"mappings":"{mappings}"}}"#,
        srcs.join(",")
    );
    (code, map)
}

fn write_webpack_build(dir: &Path, lodash_in_admin: bool) {
    let dist = dir.join("dist");
    std::fs::create_dir_all(&dist).unwrap();
    let lodash = "l".repeat(40_000);
    let app = "a".repeat(3_000);
    let lazy = "z".repeat(20_000);
    let sources = [
        "webpack://app/./src/main.js",
        "webpack://app/./node_modules/lodash/lodash.js",
        "webpack://app/./src/lazy.js",
    ];
    let (main, main_map) = bundle(&[(0, &app), (1, &lodash)], &sources);
    let admin_parts: Vec<(usize, &str)> = if lodash_in_admin {
        vec![(0, &app), (1, &lodash)]
    } else {
        vec![(0, &app)]
    };
    let (admin, admin_map) = bundle(&admin_parts, &sources);
    let (chunk, chunk_map) = bundle(&[(2, &lazy)], &sources);
    for (name, code, map) in [
        ("main.js", main, main_map),
        ("admin.js", admin, admin_map),
        ("1.chunk.js", chunk, chunk_map),
    ] {
        std::fs::write(
            dist.join(name),
            format!("{code}\n//# sourceMappingURL={name}.map"),
        )
        .unwrap();
        std::fs::write(dist.join(format!("{name}.map")), map).unwrap();
    }
    let admin_chunks = if lodash_in_admin { "[10, 20]" } else { "[10]" };
    let stats = format!(
        r#"{{"assets":[{{"name":"main.js","size":1}},{{"name":"admin.js","size":1}},{{"name":"1.chunk.js","size":1}},{{"name":"main.js.map","size":1}}],
        "chunks":[{{"id":10,"names":["main"],"initial":true,"files":["main.js"]}},{{"id":20,"names":["admin"],"initial":true,"files":["admin.js"]}},
                  {{"id":1,"names":[],"initial":false,"files":["1.chunk.js"]}}],
        "entrypoints":{{"main":{{"chunks":[10]}},"admin":{{"chunks":[20]}}}},
        "modules":[{{"name":"./src/main.js","size":9000,"chunks":[10,20]}},
                   {{"name":"./node_modules/lodash/lodash.js","size":540000,"chunks":{admin_chunks},"moduleType":"javascript/dynamic"}},
                   {{"name":"./src/lazy.js","size":30000,"chunks":[1]}}]}}"#
    );
    std::fs::write(dir.join("stats.json"), stats).unwrap();
}

fn webpack_analysis(dir: &Path) -> Analysis {
    analyze(
        &dir.join("stats.json"),
        &Options {
            brotli: true,
            ..Options::default()
        },
    )
    .unwrap()
}

#[test]
fn webpack_stats_with_dist_attribute_every_chunk() {
    let dir = tempfile::tempdir().unwrap();
    write_webpack_build(dir.path(), true);
    let a = webpack_analysis(dir.path());
    let lazy = a
        .modules
        .iter()
        .find(|m| m.name == "./src/lazy.js")
        .unwrap();
    assert_eq!(
        lazy.output_size,
        Some(20_000),
        "async chunk module has its output size"
    );
    let lodash = a
        .modules
        .iter()
        .find(|m| m.name.contains("lodash"))
        .unwrap();
    assert_eq!(lodash.output_size, Some(80_000));
    assert_eq!(lodash.package.as_deref(), Some("lodash"));
    for asset in &a.assets {
        let gz: u64 = a
            .modules
            .iter()
            .filter(|m| m.chunks == asset.chunks)
            .filter_map(|m| m.gzip)
            .sum();
        assert!(gz <= asset.gzip.unwrap());
        assert!(asset.brotli.unwrap() > 0);
    }
    assert!(
        a.findings
            .iter()
            .any(|f| f.kind == "duplicate_module" && f.bytes >= 40_000)
    );
    let plan = perfkit_bundle::splitchunks::propose(&a);
    assert_eq!(plan.cache_groups[0].members, vec!["lodash"]);
    assert!(plan.initial_total_after < plan.initial_total_before);
    assert!(plan.to_js().contains("splitChunks"));
}

#[test]
fn directory_with_external_and_inline_maps() {
    let dir = tempfile::tempdir().unwrap();
    let (code, map) = bundle(
        &[(0, "xxxx"), (1, "yyyyyy")],
        &["src/a.js", "node_modules/p/i.js"],
    );
    std::fs::write(
        dir.path().join("ext.js"),
        format!("{code}\n//# sourceMappingURL=ext.js.map\n"),
    )
    .unwrap();
    std::fs::write(dir.path().join("ext.js.map"), &map).unwrap();
    let b64 = base64(map.as_bytes());
    std::fs::write(
        dir.path().join("inline.mjs"),
        format!("{code}\n//# sourceMappingURL=data:application/json;base64,{b64}\n"),
    )
    .unwrap();
    let a = analyze(dir.path(), &Options::default()).unwrap();
    assert_eq!(a.sources.len(), 2);
    for s in &a.sources {
        assert_eq!(s.files["src/a.js"], 4);
        assert_eq!(s.files["node_modules/p/i.js"], 6);
        assert_eq!(s.files.values().sum::<u64>() + s.unmapped, s.total);
    }
    let m = a
        .modules
        .iter()
        .find(|m| m.name == "node_modules/p/i.js")
        .unwrap();
    assert_eq!(m.package.as_deref(), Some("p"));
    assert_eq!(m.output_size, Some(12));
    assert_eq!(m.chunks.len(), 2);
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn budgets_pass_and_fail() {
    let dir = tempfile::tempdir().unwrap();
    write_webpack_build(dir.path(), true);
    let a = webpack_analysis(dir.path());
    let ok = parse(r#"[{"path":"*.js","limit":"1 MB","gzip":false},{"entry":"main","limit":"100 kB","brotli":true}]"#).unwrap();
    let r = check(&a, &ok);
    assert!(r.passed, "{}", r.render_table());
    let bad = parse(
        r#"[{"name":"main","path":"main.js","limit":"10 B"},{"path":"nothing-*.css","limit":1}]"#,
    )
    .unwrap();
    let r = check(&a, &bad);
    assert!(!r.passed);
    let table = r.render_table();
    assert!(
        table.contains("EXCEEDED") && table.contains("matches no asset"),
        "{table}"
    );
}

#[test]
fn diff_reports_entry_chunk_and_package_deltas() {
    let old_dir = tempfile::tempdir().unwrap();
    let new_dir = tempfile::tempdir().unwrap();
    write_webpack_build(old_dir.path(), true);
    write_webpack_build(new_dir.path(), false);
    let d = perfkit_bundle::diff::diff(
        &webpack_analysis(old_dir.path()),
        &webpack_analysis(new_dir.path()),
    );
    let admin = d.entries.iter().find(|e| e.name == "admin").unwrap();
    assert_eq!(admin.delta, -40_000);
    let lodash = d.packages.iter().find(|p| p.name == "lodash").unwrap();
    assert_eq!(lodash.delta, -40_000);
    assert!(
        d.chunks
            .iter()
            .any(|c| c.name == "admin" && c.delta == -40_000)
    );
    assert!(d.render_text().contains("admin"));
}

#[test]
fn html_report_renders_its_treemap_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    write_webpack_build(dir.path(), true);
    let a = webpack_analysis(dir.path());
    let html = perfkit_bundle::html::render(&a);
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "self-contained, offline"
    );
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let Some(chromium) = chromium else {
        eprintln!("skipped: chromium not installed (scripts/test.sh installs it)");
        return;
    };
    let page = dir.path().join("report.html");
    std::fs::write(&page, html).unwrap();
    let dom = dump_dom(chromium, &format!("file://{}", page.display()));
    let rects = dom.matches("class=\"node").count();
    assert!(rects >= 5, "treemap rectangles in the DOM: {rects}");
    assert!(dom.contains("lodash"), "package names are drawn");
    assert!(dom.contains("data-rendered="), "the script ran");
    // Search over the whole tree, opened from the URL.
    let dom = dump_dom(chromium, &format!("file://{}#search=lazy", page.display()));
    assert!(dom.contains("1 match(es)"), "search results listed");
    assert!(dom.contains("node hit"), "the match is highlighted");
}

fn dump_dom(chromium: &str, url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1200,900",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(url)
        .output()
        .expect("running chromium");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn multi_compiler_children_with_the_same_file_names() {
    let dir = tempfile::tempdir().unwrap();
    for (child, size) in [("client", 3000), ("server", 5000)] {
        let out = dir.path().join("dist").join(child);
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join("main.js"), "x".repeat(size)).unwrap();
    }
    let child = |name: &str| {
        format!(
            r#"{{"name":"{name}","assets":[{{"name":"main.js","size":1}}],
            "chunks":[{{"id":0,"names":["main"],"initial":true,"files":["main.js"]}}],
            "entrypoints":{{"main":{{"chunks":[0]}}}},
            "modules":[{{"name":"./src/{name}.js","size":10,"chunks":[0]}}]}}"#
        )
    };
    let stats = format!(
        r#"{{"children":[{},{}]}}"#,
        child("client"),
        child("server")
    );
    std::fs::write(dir.path().join("stats.json"), stats).unwrap();
    let opts = Options {
        dist: Some(dir.path().join("dist")),
        ..Options::default()
    };
    let a = analyze(&dir.path().join("stats.json"), &opts).unwrap();
    let sizes: Vec<(&str, u64)> = a.assets.iter().map(|x| (x.name.as_str(), x.raw)).collect();
    assert_eq!(
        sizes,
        vec![("client:main.js", 3000), ("server:main.js", 5000)]
    );
    let entries: Vec<(&str, u64)> = a.entries.iter().map(|e| (e.name.as_str(), e.raw)).collect();
    assert_eq!(entries, vec![("client:main", 3000), ("server:main", 5000)]);
    assert!(a.assets.iter().all(|x| x.gzip.is_some()));
}

#[test]
fn vite_manifest_with_its_output_directory() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dist");
    std::fs::create_dir_all(out.join(".vite")).unwrap();
    std::fs::create_dir_all(out.join("assets")).unwrap();
    let (code, map) = bundle(
        &[(0, "mmmm"), (1, "vvvvvvvv")],
        &["../../src/main.js", "../../node_modules/vue/index.js"],
    );
    std::fs::write(
        out.join("assets/main-1.js"),
        format!("{code}\n//# sourceMappingURL=main-1.js.map\n"),
    )
    .unwrap();
    std::fs::write(out.join("assets/main-1.js.map"), map).unwrap();
    let (code, map) = bundle(&[(0, "llllll")], &["../../src/lazy.js"]);
    std::fs::write(
        out.join("assets/lazy-2.js"),
        format!("{code}\n//# sourceMappingURL=lazy-2.js.map\n"),
    )
    .unwrap();
    std::fs::write(out.join("assets/lazy-2.js.map"), map).unwrap();
    std::fs::write(out.join("assets/main-3.css"), "body{color:red}").unwrap();
    std::fs::write(
        out.join(".vite/manifest.json"),
        r#"{"src/main.js":{"file":"assets/main-1.js","name":"main","src":"src/main.js","isEntry":true,"css":["assets/main-3.css"],"dynamicImports":["src/lazy.js"]},
            "src/lazy.js":{"file":"assets/lazy-2.js","name":"lazy","src":"src/lazy.js","isDynamicEntry":true}}"#,
    )
    .unwrap();
    let a = analyze(&out, &Options::default()).unwrap();
    assert_eq!(a.format, perfkit_bundle::Format::Vite);
    assert_eq!(a.entries[0].name, "main");
    assert_eq!(
        a.entries[0].assets,
        vec!["assets/main-1.js", "assets/main-3.css"]
    );
    let lazy = a.chunks.iter().find(|c| c.id == "src/lazy.js").unwrap();
    assert!(!lazy.initial);
    let vue = a
        .modules
        .iter()
        .find(|m| m.package.as_deref() == Some("vue"))
        .unwrap();
    assert_eq!(vue.output_size, Some(8));
    let lazy_mod = a.modules.iter().find(|m| m.name == "src/lazy.js").unwrap();
    assert_eq!(lazy_mod.output_size, Some(6));
    assert_eq!(lazy_mod.chunks, vec!["src/lazy.js"]);
}

#[test]
fn duplicate_packages_report_their_versions() {
    let dir = tempfile::tempdir().unwrap();
    let sources = [
        "node_modules/react-is/index.js",
        "node_modules/hoist/node_modules/react-is/index.js",
    ];
    let (code, map) = bundle(&[(0, &"a".repeat(3000)), (1, &"b".repeat(2000))], &sources);
    std::fs::write(
        dir.path().join("app.js"),
        format!("{code}\n//# sourceMappingURL=app.js.map\n"),
    )
    .unwrap();
    std::fs::write(dir.path().join("app.js.map"), map).unwrap();
    for (path, version) in [
        ("node_modules/react-is", "19.1.0"),
        ("node_modules/hoist/node_modules/react-is", "16.13.1"),
    ] {
        let p = dir.path().join(path);
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(
            p.join("package.json"),
            format!(r#"{{"name":"react-is","version":"{version}"}}"#),
        )
        .unwrap();
    }
    let a = analyze(dir.path(), &Options::default()).unwrap();
    let d = a.duplicates.iter().find(|d| d.kind == "package").unwrap();
    let versions: Vec<_> = d.copies.iter().map(|c| c.version.as_deref()).collect();
    assert_eq!(versions, vec![Some("16.13.1"), Some("19.1.0")]);
    assert_eq!(d.bytes, 2000);
    let f = a
        .findings
        .iter()
        .find(|f| f.kind == "duplicate_package")
        .unwrap();
    assert!(
        f.message.contains("2 versions") && f.message.contains("16.13.1"),
        "{}",
        f.message
    );
}
