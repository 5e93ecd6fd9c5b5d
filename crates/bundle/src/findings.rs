//! Findings: what to change, each with the output bytes at stake.
//!
//! Sizes are output bytes (through the source map or the bundler) where known, else the
//! bundler's stat size.

use crate::model::{Analysis, BundleFinding, Duplicate, Module, PackageCopy};
use crate::package::install_path;
use perfkit_core::Severity;
use perfkit_core::units::format_bytes;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

/// The bytes a module costs: output size when known, else stat size.
pub(crate) fn cost(m: &Module) -> u64 {
    m.output_size.unwrap_or(m.stat_size)
}

fn severity(bytes: u64) -> Severity {
    match bytes {
        b if b >= 100 * 1024 => Severity::Critical,
        b if b >= 10 * 1024 => Severity::Warning,
        _ => Severity::Info,
    }
}

fn finding(kind: &str, bytes: u64, subject: &str, message: String) -> BundleFinding {
    BundleFinding {
        kind: kind.to_owned(),
        severity: severity(bytes),
        message,
        bytes,
        subject: Some(subject.to_owned()),
    }
}

/// Fills `duplicates` and `findings` of an analysis from its modules, chunks and entries.
/// `roots` are where a project's `node_modules` may be (to read the duplicates' versions).
pub(crate) fn derive(a: &mut Analysis, roots: &[PathBuf]) {
    let mut findings = Vec::new();
    let mut duplicates = Vec::new();
    duplicate_packages(a, roots, &mut duplicates, &mut findings);
    duplicate_modules(a, &mut duplicates, &mut findings);
    whole_library_imports(a, &mut findings);
    heavy_initial(a, &mut findings);
    locale_packs(a, &mut findings);
    equivalent_packages(a, &mut findings);
    findings.sort_by(|x, y| y.bytes.cmp(&x.bytes).then_with(|| x.kind.cmp(&y.kind)));
    duplicates.sort_by(|x: &Duplicate, y| y.bytes.cmp(&x.bytes).then_with(|| x.name.cmp(&y.name)));
    a.findings = findings;
    a.duplicates = duplicates;
}

#[derive(serde::Deserialize)]
struct PackageJson {
    #[serde(default)]
    version: Option<String>,
}

/// The version in `<root>/<install path>/package.json`, for the first root that has it.
fn version_of(roots: &[PathBuf], install: &str) -> Option<String> {
    roots.iter().find_map(|root| {
        let bytes = std::fs::read(root.join(install).join("package.json")).ok()?;
        let pj: PackageJson = serde_json::from_slice(&bytes).ok()?;
        pj.version.filter(|v| v.len() < 64)
    })
}

fn duplicate_packages(
    a: &Analysis,
    roots: &[PathBuf],
    dups: &mut Vec<Duplicate>,
    out: &mut Vec<BundleFinding>,
) {
    // package -> install path -> bytes
    let mut copies: BTreeMap<&str, BTreeMap<&str, u64>> = BTreeMap::new();
    for m in &a.modules {
        if let Some((path, name)) = install_path(&m.name) {
            *copies.entry(name).or_default().entry(path).or_insert(0) += cost(m);
        }
    }
    for (name, paths) in copies {
        if paths.len() < 2 {
            continue;
        }
        let total: u64 = paths.values().sum();
        let largest = paths.values().copied().max().unwrap_or(0);
        let bytes = total - largest;
        let list: Vec<PackageCopy> = paths
            .iter()
            .map(|(p, b)| PackageCopy {
                path: (*p).to_owned(),
                bytes: *b,
                version: version_of(roots, p),
            })
            .collect();
        let where_: Vec<String> = list
            .iter()
            .map(|c| match &c.version {
                Some(v) => format!("{} {v}", c.path),
                None => c.path.clone(),
            })
            .collect();
        let versions: BTreeSet<&str> = list.iter().filter_map(|c| c.version.as_deref()).collect();
        let what = if versions.len() > 1 {
            format!("{} versions", versions.len())
        } else {
            format!("{} copies", paths.len())
        };
        out.push(finding(
            "duplicate_package",
            bytes,
            name,
            format!(
                "{name} is bundled in {what} ({}): align the versions (npm dedupe, overrides or resolutions) to save {}",
                where_.join(", "),
                format_bytes(bytes)
            ),
        ));
        dups.push(Duplicate {
            kind: "package".into(),
            name: name.to_owned(),
            copies: list,
            bytes,
        });
    }
}

fn duplicate_modules(a: &Analysis, dups: &mut Vec<Duplicate>, out: &mut Vec<BundleFinding>) {
    let mut per_group: BTreeMap<String, (u64, BTreeSet<String>, usize)> = BTreeMap::new();
    let mut module_dups = Vec::new();
    for m in &a.modules {
        let n = m.chunks.len() as u64;
        if n < 2 {
            continue;
        }
        let c = cost(m);
        let per_copy = c / n;
        let bytes = c - per_copy;
        if bytes == 0 {
            continue;
        }
        module_dups.push(Duplicate {
            kind: "module".into(),
            name: m.name.clone(),
            copies: m
                .chunks
                .iter()
                .map(|ch| PackageCopy {
                    path: ch.clone(),
                    bytes: per_copy,
                    version: None,
                })
                .collect(),
            bytes,
        });
        let group = m
            .package
            .clone()
            .unwrap_or_else(|| "(application code)".into());
        let g = per_group.entry(group).or_default();
        g.0 += bytes;
        g.1.extend(m.chunks.iter().cloned());
        g.2 += 1;
    }
    module_dups.sort_by_key(|d| std::cmp::Reverse(d.bytes));
    module_dups.truncate(500);
    dups.extend(module_dups);
    let names: HashMap<&str, String> = a
        .chunks
        .iter()
        .map(|c| {
            let label = c
                .names
                .first()
                .map_or_else(|| c.id.clone(), |n| format!("{n} ({})", c.id));
            (c.id.as_str(), label)
        })
        .collect();
    let mut groups: Vec<_> = per_group
        .into_iter()
        .filter(|(_, g)| g.0 >= 4 * 1024)
        .collect();
    groups.sort_by_key(|g| std::cmp::Reverse(g.1.0));
    for (group, (bytes, chunks, count)) in groups.into_iter().take(15) {
        let labels: Vec<String> = chunks
            .iter()
            .map(|c| names.get(c.as_str()).cloned().unwrap_or_else(|| c.clone()))
            .collect();
        out.push(finding(
            "duplicate_module",
            bytes,
            &group,
            format!(
                "{count} module(s) of {group} are emitted in several chunks ({}): a shared chunk \
                 (optimization.splitChunks.chunks = 'all') would ship them once and save {}",
                labels.join(", "),
                format_bytes(bytes)
            ),
        ));
    }
}

fn whole_library_imports(a: &Analysis, out: &mut Vec<BundleFinding>) {
    #[derive(Default)]
    struct Pkg {
        bytes: u64,
        unused: f64,
        esm: bool,
        namespace_all: bool,
        provided: u64,
        used: u64,
        cjs_whole: u64,
    }
    let mut pkgs: BTreeMap<&str, Pkg> = BTreeMap::new();
    for m in &a.modules {
        let Some(pkg) = m.package.as_deref() else {
            continue;
        };
        let p = pkgs.entry(pkg).or_default();
        let c = cost(m);
        p.bytes += c;
        p.esm |= m.esm;
        if let (Some(provided), Some(used)) = (m.provided_exports, m.used_exports)
            && provided >= 5
        {
            {
                let used = used.min(provided);
                p.provided += provided;
                p.used += used;
                p.unused += c as f64 * (provided - used) as f64 / provided as f64;
                if provided >= 50 && used >= provided {
                    p.namespace_all = true;
                }
            }
        }
        if pkg == "lodash" && !m.esm && m.name.ends_with("lodash/lodash.js") {
            p.cjs_whole += c;
        }
    }
    for (name, p) in pkgs {
        let unused = p.unused.round() as u64;
        if p.cjs_whole >= 20 * 1024 {
            out.push(finding(
                "whole_library_import",
                p.cjs_whole,
                name,
                format!(
                    "the whole of lodash ({}, CommonJS, not tree-shakeable) is bundled: import \
                     functions from lodash-es (or lodash/<function>) instead",
                    format_bytes(p.cjs_whole)
                ),
            ));
        } else if p.esm && p.namespace_all && p.bytes >= 20 * 1024 {
            out.push(finding(
                "whole_library_import",
                p.bytes,
                name,
                format!(
                    "every export of {name} is kept ({} exports, {}): a namespace import \
                     (import * as ...) or Object.keys/spread over it defeats tree shaking; import \
                     the functions you use by name",
                    p.provided,
                    format_bytes(p.bytes)
                ),
            ));
        } else if p.esm && unused >= 20 * 1024 && unused * 2 >= p.bytes {
            out.push(finding(
                "whole_library_import",
                unused,
                name,
                format!(
                    "{name} is bundled at {} but only {} of its {} exports are used: up to {} \
                     could go with named imports and sideEffects-free entry points",
                    format_bytes(p.bytes),
                    p.used,
                    p.provided,
                    format_bytes(unused)
                ),
            ));
        }
    }
}

fn heavy_initial(a: &Analysis, out: &mut Vec<BundleFinding>) {
    if a.entries.is_empty() {
        return;
    }
    // chunk id -> entries that load it initially
    let mut loaders: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    for e in &a.entries {
        for c in &e.chunks {
            loaders
                .entry(c.as_str())
                .or_default()
                .insert(e.name.as_str());
        }
    }
    // (package or module, entry) -> bytes of modules that only that entry loads initially
    let mut groups: BTreeMap<(String, &str), u64> = BTreeMap::new();
    for m in &a.modules {
        let initial_entries: BTreeSet<&str> = m
            .chunks
            .iter()
            .filter_map(|c| loaders.get(c.as_str()))
            .flatten()
            .copied()
            .collect();
        if initial_entries.len() != 1 {
            continue;
        }
        let Some(entry) = initial_entries.into_iter().next() else {
            continue;
        };
        let n_initial = m
            .chunks
            .iter()
            .filter(|c| loaders.contains_key(c.as_str()))
            .count() as u64;
        let share = cost(m) * n_initial / (m.chunks.len() as u64).max(1);
        let key = m.package.clone().unwrap_or_else(|| m.name.clone());
        *groups.entry((key, entry)).or_default() += share;
    }
    let mut single: Vec<((String, &str), u64)> = groups
        .into_iter()
        .filter(|(_, b)| *b >= 30 * 1024)
        .collect();
    single.sort_by_key(|s| std::cmp::Reverse(s.1));
    for ((subject, entry), bytes) in single.into_iter().take(8) {
        out.push(finding(
            "heavy_initial_module",
            bytes,
            &subject,
            format!(
                "{subject}: {} is loaded on page load only by entry {entry}: if the first render \
                 does not need it, load it with import() where it is used",
                format_bytes(bytes)
            ),
        ));
    }
}

fn locale_packs(a: &Analysis, out: &mut Vec<BundleFinding>) {
    // package -> (locales, bytes)
    let mut packs: BTreeMap<&str, (BTreeSet<&str>, u64)> = BTreeMap::new();
    for m in &a.modules {
        let Some(pkg) = m.package.as_deref() else {
            continue;
        };
        let Some((_, after)) = m.name.rsplit_once(&format!("{pkg}/")) else {
            continue;
        };
        let mut parts = after.split('/');
        let (Some(dir), Some(file)) = (parts.next(), parts.next()) else {
            continue;
        };
        if !matches!(dir, "locale" | "locales" | "i18n" | "lang") {
            continue;
        }
        let locale = file.trim_end_matches(".js").trim_end_matches(".mjs");
        let p = packs.entry(pkg).or_default();
        p.0.insert(locale);
        p.1 += cost(m);
    }
    for (pkg, (locales, bytes)) in packs {
        if locales.len() < 5 || bytes < 2 * 1024 {
            continue;
        }
        let advice = match pkg {
            "moment" => {
                "keep only the locales you use with webpack's IgnorePlugin or ContextReplacementPlugin (or moment-locales-webpack-plugin)"
            }
            "date-fns" => {
                "import the locales you use one by one (date-fns/locale/<code>) instead of the whole locale index"
            }
            _ => "import only the locales you use",
        };
        out.push(finding(
            "locale_pack",
            bytes,
            pkg,
            format!(
                "{pkg} ships {} locales in the bundle ({}): {advice}",
                locales.len(),
                format_bytes(bytes)
            ),
        ));
    }
}

fn equivalent_packages(a: &Analysis, out: &mut Vec<BundleFinding>) {
    const PAIRS: [(&str, &str); 3] = [
        ("lodash", "lodash-es"),
        ("moment", "dayjs"),
        ("underscore", "lodash"),
    ];
    let size = |name: &str| -> u64 {
        a.packages
            .iter()
            .find(|p| p.name == name)
            .map_or(0, |p| p.output_size.unwrap_or(p.stat_size))
    };
    for (x, y) in PAIRS {
        let (sx, sy) = (size(x), size(y));
        if sx == 0 || sy == 0 {
            continue;
        }
        let bytes = sx.min(sy);
        out.push(finding(
            "equivalent_packages",
            bytes,
            x,
            format!(
                "both {x} ({}) and {y} ({}) are bundled: settle on one to save up to {}",
                format_bytes(sx),
                format_bytes(sy),
                format_bytes(bytes)
            ),
        ));
    }
}
