//! The `cache` suite's tiered rows: lookup latency of perfkit-cache's `TieredCache` per tier,
//! a hit in the memory tier, in the disk tier (redb; reads on tokio's blocking pool, the
//! default, and inline), and in the Redis tier (a real `redis-server` on a loopback port,
//! when one is installed).
//!
//! Each tier is measured alone: the tiers above it are present but never hold the keys
//! (promotion into them is disabled), so every read is a miss above and a hit in the tier
//! measured, as a service sees it. Reads run in a loop in a current-thread tokio runtime
//! over 1,000 keys (256-byte values) written beforehand; figures are the wall time per
//! `get` (the median of 5 rounds: the whole read path, metrics and sampling included) and
//! the tier's own lookup p50/p99 from the cache's HdrHistogram, in ns.

use crate::suite::{Options, SuiteResult};
use perfkit_cache::PolicyKind;
use perfkit_cache::tiered::{
    DiskTier, DiskTierConfig, MemoryTier, RedisTier, RedisTierConfig, Tier, TieredCache,
};
use std::hint::black_box;
use std::time::Instant;

const KEYS: u64 = 1_000;

fn value(k: u64) -> Vec<u8> {
    vec![(k & 0xff) as u8; 256]
}

const ROUNDS: u64 = 5;

/// Reads the keys round-robin `reads` times (after a warm-up round over every key) in
/// [`ROUNDS`] rounds; returns (median round's mean, p50, p99) in ns of the lookups in tier
/// `tier_index`, checking that this tier served every read.
async fn measure(
    cache: &TieredCache<u64, Vec<u8>>,
    tier_index: usize,
    reads: u64,
) -> anyhow::Result<(f64, f64, f64)> {
    // Warm-up (thread pools, page cache, connections), not measured.
    for k in 0..KEYS {
        black_box(cache.get(&k).await);
    }
    let before = cache.metrics().tiers[tier_index].hits;
    let per_round = (reads / ROUNDS).max(1);
    let mut means = Vec::new();
    for round in 0..ROUNDS {
        let start = Instant::now();
        for i in round * per_round..(round + 1) * per_round {
            black_box(cache.get(&black_box(i % KEYS)).await);
        }
        means.push(start.elapsed().as_nanos() as f64 / per_round as f64);
    }
    means.sort_by(f64::total_cmp);
    let m = cache.metrics();
    let t = &m.tiers[tier_index];
    let served = t.hits - before;
    anyhow::ensure!(
        served == per_round * ROUNDS,
        "tier {} served {served} of {} reads",
        t.name,
        per_round * ROUNDS
    );
    Ok((
        means[means.len() / 2],
        t.latency_p50_ns as f64,
        t.latency_p99_ns as f64,
    ))
}

fn memory(capacity: u64) -> anyhow::Result<MemoryTier<u64, Vec<u8>>> {
    Ok(MemoryTier::new(capacity, PolicyKind::WTinyLfu)?.named("memory"))
}

/// Adds the tiered rows to the `cache` suite's result (rows `tiered lookup, <tier> hit`,
/// and `extra.tiered_lookup_ns.<tier>.{mean,p50,p99}`).
pub(crate) fn tiered_rows(result: &mut SuiteResult, opts: &Options) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (mem_reads, io_reads) = if opts.quick {
        (20_000, 2_000)
    } else {
        (1_000_000, 20_000)
    };
    let dir = std::env::temp_dir().join(format!("perfkit-bench-tiered-{}", std::process::id()));
    let mut figures = serde_json::Map::new();
    let outcome = runtime.block_on(async {
        let mut rows: Vec<(&str, (f64, f64, f64))> = Vec::new();

        let cache = TieredCache::builder().tier(memory(2 * KEYS)?).build()?;
        for k in 0..KEYS {
            cache.insert(k, value(k)).await;
        }
        rows.push(("memory", measure(&cache, 0, mem_reads).await?));

        let disk = DiskTier::open(DiskTierConfig::new(dir.join("l2.redb"), 64 << 20))?;
        let cache = TieredCache::builder()
            .tier_without_promotion(memory(16)?)
            .tier(disk.clone())
            .build()?;
        measure_lower(&cache, &disk, io_reads, &mut rows, "disk").await?;

        let mut config = DiskTierConfig::new(dir.join("l2-inline.redb"), 64 << 20);
        config.inline_reads = true;
        let disk = DiskTier::open(config)?;
        let cache = TieredCache::builder()
            .tier_without_promotion(memory(16)?)
            .tier(disk.clone())
            .build()?;
        measure_lower(&cache, &disk, io_reads, &mut rows, "disk (inline reads)").await?;

        if perfkit_testkit::have_program("redis-server") {
            let server = perfkit_testkit::RedisServer::start();
            let mut config = RedisTierConfig::new(server.url());
            config.timeout = std::time::Duration::from_secs(1);
            let redis = RedisTier::new(config)?;
            let cache = TieredCache::builder()
                .tier_without_promotion(memory(16)?)
                .tier(redis.clone())
                .build()?;
            measure_lower(&cache, &redis, io_reads, &mut rows, "redis").await?;
        } else {
            eprintln!("cache suite: redis-server not installed, no Redis tier row");
        }
        anyhow::Ok(rows)
    });
    let _ = std::fs::remove_dir_all(&dir);
    for (tier, (mean, p50, p99)) in outcome? {
        let case = format!("tiered lookup, {tier} hit");
        result.row(&case, "perfkit TieredCache (mean)", mean, "ns/op");
        result.row(&case, "perfkit TieredCache (p50)", p50, "ns/op");
        result.row(&case, "perfkit TieredCache (p99)", p99, "ns/op");
        figures.insert(
            tier.to_owned(),
            serde_json::json!({ "mean": mean, "p50": p50, "p99": p99 }),
        );
    }
    result.extra.insert(
        "tiered_lookup_ns".to_owned(),
        serde_json::Value::Object(figures),
    );
    Ok(())
}

/// Measures `lower`, tier 1 of a two-tier cache whose tier 0 (no promotion into it) never
/// holds the keys: the keys are written to `lower` only.
async fn measure_lower(
    cache: &TieredCache<u64, Vec<u8>>,
    lower: &impl Tier<u64, Vec<u8>>,
    reads: u64,
    rows: &mut Vec<(&'static str, (f64, f64, f64))>,
    name: &'static str,
) -> anyhow::Result<()> {
    for k in 0..KEYS {
        lower.put(&k, &value(k), None).await?;
    }
    rows.push((name, measure(cache, 1, reads).await?));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_rows_cover_every_tier() {
        let mut result = SuiteResult::new("cache");
        tiered_rows(&mut result, &Options { quick: true }).unwrap();
        let cases: Vec<&str> = result.rows.iter().map(|r| r.case.as_str()).collect();
        assert!(cases.contains(&"tiered lookup, memory hit"), "{cases:?}");
        assert!(cases.contains(&"tiered lookup, disk hit"), "{cases:?}");
        assert!(
            result.rows.iter().all(|r| r.value > 0.0),
            "{:?}",
            result.rows
        );
        assert!(
            result.extra["tiered_lookup_ns"]["disk"]["p99"]
                .as_f64()
                .unwrap()
                > 0.0
        );
        eprint!("{}", result.render_table());
    }

    /// The full-size rows, for a look without the rest of the suite:
    /// `cargo test --release -p perfkit-bench --no-default-features --features cache full_rows -- --ignored --nocapture`.
    #[test]
    #[ignore = "a benchmark, not a test"]
    fn full_rows() {
        let mut result = SuiteResult::new("cache");
        tiered_rows(&mut result, &Options { quick: false }).unwrap();
        eprint!("{}", result.render_table());
    }
}
