//! On the shared real traces (skipped when ../shared/data is absent): reader counts, LRU,
//! FIFO and opt against the figures in the data README, and the default adaptive policy
//! against the best of LRU, moka and quick_cache.

use perfkit_cache::{PolicyKind, TraceFormat, read_trace, simulate};
use perfkit_testkit::data_file;

fn load(rel: &str) -> Option<Vec<u64>> {
    let path = data_file(&format!("cache-traces/{rel}"))?;
    Some(read_trace(&path, TraceFormat::Auto).unwrap().keys)
}

fn ratio(kind: PolicyKind, cap: u64, keys: &[u64]) -> f64 {
    100.0 * simulate(kind, cap, keys, None).unwrap().hit_ratio()
}

/// (file, capacity, LRU, FIFO, moka, quick_cache, OPT) from the data README.
const TABLE: [(&str, u64, f64, f64, f64, f64, f64); 5] = [
    ("lirs/gli.trace.gz", 1000, 11.2, 11.1, 41.3, 48.9, 53.2),
    ("lirs/multi3.trace.gz", 1000, 37.7, 33.0, 50.7, 51.6, 56.3),
    ("arc/OLTP.lis.zst", 1000, 32.8, 28.5, 35.7, 35.2, 53.6),
    ("cache2k/web12.trace.xz", 1000, 64.7, 60.8, 66.4, 68.1, 77.8),
    (
        "misc/scarab-recs.trace.xz",
        10000,
        48.6,
        45.1,
        49.9,
        52.2,
        66.6,
    ),
];

#[test]
fn readme_table_lru_fifo_opt_and_adaptive() {
    let mut failures = Vec::new();
    for (file, cap, lru, fifo, moka, qc, opt) in TABLE {
        let Some(keys) = load(file) else { return };
        let got_lru = ratio(PolicyKind::Lru, cap, &keys);
        let got_fifo = ratio(PolicyKind::Fifo, cap, &keys);
        let got_opt = ratio(PolicyKind::Opt, cap, &keys);
        assert!(
            (got_lru - lru).abs() <= 0.051,
            "{file} lru {got_lru:.2} vs {lru}"
        );
        assert!(
            (got_fifo - fifo).abs() <= 0.051,
            "{file} fifo {got_fifo:.2} vs {fifo}"
        );
        assert!(
            (got_opt - opt).abs() <= 0.051,
            "{file} opt {got_opt:.2} vs {opt}"
        );
        let best = lru.max(moka).max(qc);
        let mut line = format!("{file} @ {cap}: best peer {best:.1}");
        for kind in PolicyKind::online() {
            let r = ratio(kind, cap, &keys);
            assert!(r <= got_opt + 1e-9, "{file} {kind} {r} above opt {got_opt}");
            line += &format!(" {kind} {r:.2}");
            if kind == PolicyKind::WTinyLfu && r < best - 0.5 {
                failures.push(format!("{file}: wtinylfu {r:.2} < best {best} - 0.5"));
            }
        }
        eprintln!("{line}");
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
