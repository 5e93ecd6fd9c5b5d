//! Tests of the multi-tier cache: memory and disk tiers, the read path, single flight,
//! crash safety, corruption, warming, recommendations and online tuning.

use perfkit_cache::policy::PolicyKind;
use perfkit_cache::tiered::{
    DiskDurability, DiskTier, DiskTierConfig, MemoryTier, Tier, TierKind, TieredCache, WarmStrategy,
};
use perfkit_core::ManualClock;
use redb::ReadableTable;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

type Err = std::io::Error;

fn ok<V>(v: V) -> std::future::Ready<Result<V, Err>> {
    std::future::ready(Ok(v))
}

fn disk(dir: &tempfile::TempDir, capacity: u64) -> DiskTier {
    DiskTier::open(DiskTierConfig::new(dir.path().join("c.redb"), capacity)).unwrap()
}

#[tokio::test]
async fn loads_once_then_serves_from_memory_and_promotes_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let d = disk(&dir, 1 << 20);
    let cache: TieredCache<u64, String> = TieredCache::builder()
        .tier(MemoryTier::new(100, PolicyKind::Lru).unwrap())
        .tier(d.clone())
        .build()
        .unwrap();
    let v = cache.get_with(&1, || ok("one".to_owned())).await.unwrap();
    assert_eq!(v, "one");
    assert_eq!(cache.get(&1).await.as_deref(), Some("one"));
    let m = cache.metrics();
    assert_eq!((m.loads, m.tiers[0].hits, m.tiers[1].hits), (1, 1, 0));
    assert_eq!(m.tiers[1].entries, 1, "written through to disk");

    // A fresh memory tier over the same disk: the value comes from disk and is promoted.
    let cache2: TieredCache<u64, String> = TieredCache::builder()
        .tier(MemoryTier::new(100, PolicyKind::Lru).unwrap())
        .tier(d)
        .build()
        .unwrap();
    assert_eq!(cache2.get(&1).await.as_deref(), Some("one"));
    assert_eq!(cache2.get(&1).await.as_deref(), Some("one"));
    let m = cache2.metrics();
    assert_eq!((m.tiers[0].hits, m.tiers[1].hits), (1, 1));
    assert_eq!(m.tiers[0].promotions, 1);

    // Invalidation reaches every tier.
    cache2.invalidate(&1).await;
    assert_eq!(cache2.get(&1).await, None);
    assert_eq!(
        cache.get(&1).await.as_deref(),
        Some("one"),
        "cache 1 memory still has it"
    );
    assert_eq!(cache2.metrics().tiers[1].entries, 0);
}

#[tokio::test]
async fn promotion_can_be_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let d = disk(&dir, 1 << 20);
    d.put_sync(&5u64, &"five".to_owned(), None).unwrap();
    let cache: TieredCache<u64, String> = TieredCache::builder()
        .tier_without_promotion(MemoryTier::new(100, PolicyKind::Lru).unwrap())
        .tier(d)
        .build()
        .unwrap();
    cache.get(&5).await.unwrap();
    cache.get(&5).await.unwrap();
    let m = cache.metrics();
    assert_eq!((m.tiers[0].hits, m.tiers[1].hits), (0, 2));
}

#[tokio::test]
async fn ttl_is_respected_in_every_tier_and_promotion_keeps_the_time_left() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let d = DiskTier::open_with_clock(
        DiskTierConfig::new(dir.path().join("c.redb"), 1 << 20),
        clock.shared(),
    )
    .unwrap();
    let mem = MemoryTier::with_clock(100, PolicyKind::Lru, clock.shared()).unwrap();
    let cache: TieredCache<u64, u64> = TieredCache::builder()
        .tier(mem.clone())
        .tier(d.clone())
        .default_ttl(Duration::from_secs(10))
        .clock(clock.shared())
        .build()
        .unwrap();
    cache.get_with(&1, || ok(100)).await.unwrap();
    clock.advance(Duration::from_secs(6));
    // Drop it from memory only: the disk copy has 4 s left and the promoted copy too.
    mem.remove_now(&1);
    assert_eq!(cache.get(&1).await, Some(100));
    let left = mem.get_now(&1).unwrap().ttl_left.unwrap();
    // The disk keeps expiry in wall-clock milliseconds.
    assert!(
        left <= Duration::from_secs(4) && left > Duration::from_millis(3998),
        "{left:?}"
    );
    clock.advance(Duration::from_secs(4));
    assert_eq!(cache.get(&1).await, None, "expired everywhere");
    let m = cache.metrics();
    assert_eq!(m.tiers[0].expired, 1);
    assert_eq!(m.tiers[1].expired, 1);
    // And an explicit TTL.
    cache.insert_with_ttl(2, 200, Duration::from_secs(1)).await;
    assert_eq!(cache.get(&2).await, Some(200));
    clock.advance(Duration::from_secs(1));
    assert_eq!(cache.get(&2).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_gets_of_a_missing_key_run_the_loader_once() {
    let dir = tempfile::tempdir().unwrap();
    let cache: TieredCache<String, Vec<u8>> = TieredCache::builder()
        .tier(MemoryTier::new(100, PolicyKind::WTinyLfu).unwrap())
        .tier(disk(&dir, 1 << 20))
        .build()
        .unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(tokio::sync::Barrier::new(1000));
    let mut tasks = Vec::new();
    for _ in 0..1000 {
        let (cache, runs, gate) = (cache.clone(), runs.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            gate.wait().await;
            cache
                .get_with(&"hot".to_owned(), || async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Ok::<_, Err>(vec![7u8; 32])
                })
                .await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), vec![7u8; 32]);
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let m = cache.metrics();
    assert_eq!(m.loads, 1);
    assert_eq!(m.requests, 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loader_errors_are_shared_and_not_cached() {
    let cache: TieredCache<u64, u64> = TieredCache::builder()
        .tier(MemoryTier::new(10, PolicyKind::Lru).unwrap())
        .build()
        .unwrap();
    let r = cache
        .get_with(&1, || async {
            Err::<u64, _>(std::io::Error::other("db down"))
        })
        .await;
    assert!(r.unwrap_err().to_string().contains("db down"));
    assert_eq!(cache.get_with(&1, || ok(5)).await.unwrap(), 5);
    assert_eq!(cache.metrics().load_errors, 1);
}

#[tokio::test]
async fn disk_tier_persists_respects_its_byte_capacity_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.redb");
    let mut cfg = DiskTierConfig::new(&path, 20_000);
    cfg.durability = DiskDurability::Immediate;
    {
        let d = DiskTier::open(cfg.clone()).unwrap();
        for k in 0..100u64 {
            d.put_sync(&k, &vec![k as u8; 1000], None).unwrap();
        }
        let u = Tier::<u64, Vec<u8>>::usage(&d);
        assert!(u.bytes <= 20_000, "{u:?}");
        assert!(u.entries >= 15 && u.entries <= 19, "{u:?}");
        assert_eq!(u.evictions, 100 - u.entries);
        // LRU by bytes: the newest are kept.
        assert!(d.get_sync::<u64, Vec<u8>>(&99).unwrap().is_some());
        assert!(d.get_sync::<u64, Vec<u8>>(&0).unwrap().is_none());
    }
    let d = DiskTier::open(cfg).unwrap();
    let r = d.recovery();
    assert!(r.kept >= 15 && r.corrupt == 0, "{r:?}");
    let hit = d.get_sync::<u64, Vec<u8>>(&99).unwrap().unwrap();
    assert_eq!(hit.value, vec![99u8; 1000]);
}

#[tokio::test]
async fn a_corrupt_disk_entry_is_detected_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.redb");
    {
        let d = DiskTier::open(DiskTierConfig::new(&path, 1 << 20)).unwrap();
        for k in 0..10u64 {
            d.put_sync(&k, &format!("value-{k}"), None).unwrap();
        }
        d.flush().unwrap();
    }
    // Flip a byte inside two stored records, behind the tier's back.
    {
        let db = redb::Database::create(&path).unwrap();
        let table: redb::TableDefinition<&[u8], &[u8]> =
            redb::TableDefinition::new("perfkit_cache_entries_v1");
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(table).unwrap();
            for k in [3u64, 4] {
                let key = perfkit_cache::tiered::codec::encode_key(&k).unwrap();
                let mut v = t.get(key.as_slice()).unwrap().unwrap().value().to_vec();
                v[12] ^= 0x40;
                t.insert(key.as_slice(), v.as_slice()).unwrap();
            }
        }
        txn.commit().unwrap();
    }
    // Opening verifies every record: the two corrupt ones are dropped and counted.
    let d = DiskTier::open(DiskTierConfig::new(&path, 1 << 20)).unwrap();
    assert_eq!(d.recovery().corrupt, 2);
    assert_eq!(d.recovery().kept, 8);
    assert!(d.get_sync::<u64, String>(&3).unwrap().is_none());
    assert_eq!(
        d.get_sync::<u64, String>(&5).unwrap().unwrap().value,
        "value-5"
    );
    assert_eq!(Tier::<u64, String>::usage(&d).corrupt, 2);

    // Corruption found at read time (a record of another type) is dropped, never returned.
    let cache: TieredCache<u64, u64> = TieredCache::builder().tier(d).build().unwrap();
    assert_eq!(cache.get(&5).await, None, "a String record is not a u64");
    let m = cache.metrics();
    assert_eq!((m.tiers[0].errors, m.tiers[0].corrupt), (1, 3));
}

const CRASH_ENV: &str = "PERFKIT_TIERED_CRASH_CHILD";

fn crash_value(k: u64, generation: u64) -> Vec<u8> {
    let len = 200 + (k * 7919 + generation * 31) % 3000;
    let mut v = Vec::with_capacity(len as usize + 16);
    v.extend_from_slice(&k.to_le_bytes());
    v.extend_from_slice(&generation.to_le_bytes());
    v.extend((0..len).map(|i| (k ^ generation ^ i) as u8));
    v
}

fn crash_value_is_whole(k: u64, v: &[u8]) -> bool {
    if v.len() < 16 || v[..8] != k.to_le_bytes() {
        return false;
    }
    let generation = u64::from_le_bytes(v[8..16].try_into().unwrap_or_default());
    v == crash_value(k, generation).as_slice()
}

/// The child of the crash test: writes to the disk tier until it is killed. A no-op when
/// run as an ordinary test.
#[test]
fn crash_child_writer() {
    let Some(path) = std::env::var_os(CRASH_ENV) else {
        return;
    };
    let mut cfg = DiskTierConfig::new(std::path::PathBuf::from(path), 256 * 1024);
    cfg.sync_every = 16;
    let d = DiskTier::open(cfg).unwrap();
    for generation in 0.. {
        for k in 0..200u64 {
            d.put_sync(&k, &crash_value(k, generation), None).unwrap();
            if generation == 0 && k == 50 {
                println!("ready");
            }
        }
    }
}

#[test]
fn a_writer_killed_mid_write_leaves_only_whole_values() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.redb");
    for round in 0..3 {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "crash_child_writer",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CRASH_ENV, &path)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = std::io::BufReader::new(stdout).lines();
        assert!(
            lines.any(|l| l.is_ok_and(|l| l.contains("ready"))),
            "the child never got going"
        );
        // Let it write for a moment, at a different point each round, then SIGKILL it.
        std::thread::sleep(Duration::from_millis(30 + 40 * round));
        child.kill().unwrap();
        child.wait().unwrap();

        let d = DiskTier::open(DiskTierConfig::new(&path, 256 * 1024)).unwrap();
        assert_eq!(d.recovery().corrupt, 0, "round {round}");
        let mut found = 0;
        for k in 0..200u64 {
            if let Some(hit) = d.get_sync::<u64, Vec<u8>>(&k).unwrap() {
                assert!(crash_value_is_whole(k, &hit.value), "key {k} round {round}");
                found += 1;
            }
        }
        assert!(found > 0, "round {round}: nothing survived");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warming_runs_by_priority_reports_progress_pauses_and_cancels() {
    let cache: TieredCache<u64, u64> = TieredCache::builder()
        .tier(MemoryTier::new(10_000, PolicyKind::Lru).unwrap())
        .build()
        .unwrap();
    let order = Arc::new(parking_lot_free_log());
    let (o1, o2) = (order.clone(), order.clone());
    let handle = cache
        .warmer()
        .concurrency(8)
        .strategy(WarmStrategy::new(
            "low",
            1,
            || async { (1000..1100u64).collect() },
            move |k| {
                o1.lock().unwrap().push(("low", k));
                ok(k)
            },
        ))
        .strategy(WarmStrategy::new(
            "high",
            10,
            || async { (0..100u64).collect() },
            move |k| {
                o2.lock().unwrap().push(("high", k));
                ok(k * 2)
            },
        ))
        .warm();
    let p = handle.wait().await;
    assert!(p.finished && !p.cancelled);
    assert_eq!((p.keys_total, p.keys_done, p.keys_failed), (200, 200, 0));
    assert_eq!(p.strategies_done, 2);
    let high_first = order.lock().unwrap()[..100]
        .iter()
        .all(|(s, _)| *s == "high");
    assert!(high_first, "high priority first");
    assert_eq!(cache.get(&7).await, Some(14));

    // Pause while "under memory pressure", then resume; then cancel another run.
    let pressure = Arc::new(AtomicBool::new(true));
    let p2 = pressure.clone();
    let handle = cache
        .warmer()
        .pause_when(move || p2.load(Ordering::SeqCst), Duration::from_millis(5))
        .strategy(WarmStrategy::new(
            "paused",
            0,
            || async { (5000..5010u64).collect() },
            ok,
        ))
        .warm();
    let mut seen_paused = false;
    for _ in 0..200 {
        if handle.progress().paused {
            seen_paused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(seen_paused);
    assert_eq!(
        handle.progress().keys_done,
        0,
        "nothing warmed while paused"
    );
    pressure.store(false, Ordering::SeqCst);
    let p = handle.wait().await;
    assert_eq!(p.keys_done, 10);

    let handle = cache
        .warmer()
        .concurrency(1)
        .strategy(WarmStrategy::new(
            "slow",
            0,
            || async { (9000..9100u64).collect() },
            |k| async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                Ok::<_, Err>(k)
            },
        ))
        .warm();
    tokio::time::sleep(Duration::from_millis(20)).await;
    handle.cancel();
    let p = handle.wait().await;
    assert!(p.cancelled || p.keys_done < 100);
    assert!(p.keys_done < 100, "{p:?}");
}

fn parking_lot_free_log() -> std::sync::Mutex<Vec<(&'static str, u64)>> {
    std::sync::Mutex::new(Vec::new())
}

/// A deterministic generator (xorshift) for workloads.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Runs `n` requests of a workload through the cache; returns the memory tier's hit ratio
/// over them.
async fn run_phase(
    cache: &TieredCache<u64, u64>,
    n: usize,
    mut next_key: impl FnMut() -> u64,
) -> f64 {
    let before = cache.metrics().tiers[0].clone();
    for _ in 0..n {
        let k = next_key();
        cache.get_with(&k, || ok(k)).await.unwrap();
    }
    let after = cache.metrics().tiers[0].clone();
    let hits = after.hits - before.hits;
    let misses = after.misses - before.misses;
    hits as f64 / (hits + misses) as f64
}

#[tokio::test]
async fn the_memory_tier_adapts_when_the_workload_shifts() {
    let cache: TieredCache<u64, u64> = TieredCache::builder()
        .tier(MemoryTier::new(200, PolicyKind::Lru).unwrap().named("l1"))
        .sample_rate(1.0)
        .trace_capacity(20_000)
        .build()
        .unwrap();
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);

    // Phase 1, recency-friendly: a working set of 150 keys that slides forward.
    let mut step = 0u64;
    let r1 = run_phase(&cache, 20_000, || {
        step += 1;
        step / 20 + rng.next() % 150
    })
    .await;
    let t1 = cache.optimize_eviction_policy("l1").unwrap();
    assert!(r1 > 0.75, "LRU suits a sliding working set: {r1}");
    assert!(!t1.switched, "LRU is already the best here: {t1:?}");

    // Phase 2, frequency-friendly: 150 hot keys half the time, a scan of new keys the other
    // half. LRU lets the scan flush the hot keys.
    let mut scan = 1u64 << 40;
    let mut rng2 = Rng(0x9E37_79B9_7F4A_7C15);
    let mut phase2 = move || {
        if rng2.next().is_multiple_of(2) {
            rng2.next() % 150
        } else {
            scan += 1;
            scan
        }
    };
    let before = run_phase(&cache, 20_000, &mut phase2).await;
    let t2 = cache.optimize_eviction_policy("l1").unwrap();
    assert!(t2.switched, "{t2:?}");
    assert_ne!(t2.to, "lru");
    assert!(t2.best_hit_ratio > t2.current_hit_ratio + 0.1, "{t2:?}");
    let after = run_phase(&cache, 20_000, &mut phase2).await;
    eprintln!(
        "workload shift: phase 1 lru {r1:.3}; phase 2 lru {before:.3}, switched to {} (simulated {:.3} -> {:.3}), then {after:.3}",
        t2.to, t2.current_hit_ratio, t2.best_hit_ratio
    );
    assert!(
        after > before + 0.2,
        "hit ratio recovers after the switch: {before:.3} -> {after:.3} ({t2:?})"
    );
}

#[tokio::test]
async fn recommendations_carry_numbers() {
    let clock = ManualClock::new();
    let dir = tempfile::tempdir().unwrap();
    let cache: TieredCache<u64, u64> = TieredCache::builder()
        .tier(
            MemoryTier::with_clock(50, PolicyKind::Lru, clock.shared())
                .unwrap()
                .named("l1"),
        )
        .tier(disk(&dir, 1 << 20))
        .sample_rate(1.0)
        .build()
        .unwrap();
    let mut rng = Rng(42);
    // 400 keys looping: L1 at 50 entries under LRU gets nothing; more capacity helps.
    for i in 0..4_000u64 {
        let k = if rng.next().is_multiple_of(4) {
            rng.next() % 400
        } else {
            i % 150
        };
        cache.get_with(&k, || ok(k)).await.unwrap();
    }
    let recs = cache.recommendations();
    let kinds: Vec<&str> = recs.iter().map(|r| r.kind.as_str()).collect();
    assert!(kinds.contains(&"capacity"), "{recs:#?}");
    let cap = recs.iter().find(|r| r.kind == "capacity").unwrap();
    assert!(cap.projected > cap.current + 0.05);
    assert!(cap.message.starts_with("l1 at "), "{}", cap.message);
    assert!(cap.message.contains("would raise its hit ratio from"));
    let report = cache.report().to_component();
    assert_eq!(report.name, "cache");
    assert!(report.figures.iter().any(|f| f.name == "l1_hit_ratio"));
    assert!(!report.findings.is_empty());
}

#[tokio::test]
async fn ttl_advice_when_entries_expire_before_reuse() {
    let clock = ManualClock::new();
    let cache: TieredCache<u64, u64> = TieredCache::builder()
        .tier(MemoryTier::with_clock(1000, PolicyKind::Lru, clock.shared()).unwrap())
        .default_ttl(Duration::from_secs(1))
        .clock(clock.shared())
        .build()
        .unwrap();
    for round in 0..4 {
        for k in 0..50u64 {
            cache.get_with(&k, || ok(k)).await.unwrap();
        }
        if round % 2 == 1 {
            clock.advance(Duration::from_secs(2));
        }
    }
    let recs = cache.recommendations();
    let ttl = recs.iter().find(|r| r.kind == "ttl").expect("ttl advice");
    assert!(
        ttl.message
            .contains("expire before their next use: raise TTL")
    );
    // 150 reuses of a cached key, 50 of which found it expired.
    assert!((ttl.current - 1.0 / 3.0).abs() < 0.01, "{ttl:?}");
}

#[tokio::test]
async fn shrink_metrics_and_prometheus_names() {
    let cache: TieredCache<u64, u64> = TieredCache::builder()
        .tier(
            MemoryTier::new(1000, PolicyKind::S3Fifo)
                .unwrap()
                .named("l1"),
        )
        .build()
        .unwrap();
    for k in 0..500u64 {
        cache.insert(k, k).await;
    }
    assert_eq!(cache.metrics().tiers[0].entries, 500);
    let evicted = cache.shrink_memory(0.5);
    assert!((240..=260).contains(&evicted), "{evicted}");
    assert_eq!(cache.metrics().tiers[0].entries, 500 - evicted);
    assert_eq!(cache.metrics().tiers[0].kind, TierKind::Memory);
    let text = cache.prometheus();
    assert!(text.contains("# TYPE perfkit_cache_tier_hits_total counter"));
    assert!(text.contains("perfkit_cache_tier_entries{tier=\"l1\"}"));
    assert!(text.contains("perfkit_cache_tier_lookup_p99_seconds{tier=\"l1\"}"));
    let json = serde_json::to_value(cache.metrics()).unwrap();
    assert!(json["tiers"][0]["latency_p50_ns"].is_u64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_overtaken_by_an_invalidation_is_not_cached() {
    let cache: TieredCache<u64, u64> = TieredCache::builder()
        .tier(MemoryTier::new(10, PolicyKind::Lru).unwrap())
        .build()
        .unwrap();
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let c = cache.clone();
    let slow = tokio::spawn(async move {
        c.get_with(&1, || async move {
            let _ = started_tx.send(());
            let _ = release_rx.await;
            Ok::<_, Err>(1)
        })
        .await
    });
    started_rx.await.unwrap();
    // The source changed while the old value was being loaded.
    cache.invalidate(&1).await;
    let _ = release_tx.send(());
    assert_eq!(
        slow.await.unwrap().unwrap(),
        1,
        "its caller still gets an answer"
    );
    assert_eq!(
        cache.get(&1).await,
        None,
        "but the stale value was not cached"
    );
    assert_eq!(cache.get_with(&1, || ok(2)).await.unwrap(), 2);
    assert_eq!(cache.get(&1).await, Some(2));
    assert_eq!(cache.metrics().stale_loads, 1);
}

#[tokio::test]
async fn expired_disk_entries_are_dropped_when_the_file_is_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let cfg = DiskTierConfig::new(dir.path().join("c.redb"), 1 << 20);
    {
        let d = DiskTier::open_with_clock(cfg.clone(), clock.shared()).unwrap();
        d.put_sync(&1u64, &1u64, Some(Duration::from_secs(1)))
            .unwrap();
        d.put_sync(&2u64, &2u64, Some(Duration::from_secs(60)))
            .unwrap();
        d.put_sync(&3u64, &3u64, None).unwrap();
    }
    clock.advance(Duration::from_secs(2));
    let d = DiskTier::open_with_clock(cfg, clock.shared()).unwrap();
    assert_eq!(d.recovery().expired, 1);
    assert_eq!(d.recovery().kept, 2);
    assert!(d.get_sync::<u64, u64>(&1).unwrap().is_none());
    let hit = d.get_sync::<u64, u64>(&2).unwrap().unwrap();
    assert!(hit.ttl_left.unwrap() <= Duration::from_secs(58));
    assert_eq!(d.get_sync::<u64, u64>(&3).unwrap().unwrap().ttl_left, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_disk_writers_keep_the_byte_accounting_exact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.redb");
    let d = DiskTier::open(DiskTierConfig::new(&path, 40_000)).unwrap();
    let mut tasks = Vec::new();
    for t in 0..8u64 {
        let d = d.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(t + 1);
            for _ in 0..150 {
                let k = rng.next() % 120;
                let v = vec![t as u8; 100 + (rng.next() % 900) as usize];
                match rng.next() % 5 {
                    0 => Tier::<u64, Vec<u8>>::remove(&d, &k).await.unwrap(),
                    1 | 2 => {
                        let _ = Tier::<u64, Vec<u8>>::get(&d, &k).await.unwrap();
                    }
                    _ => Tier::<u64, Vec<u8>>::put(&d, &k, &v, None).await.unwrap(),
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let live = Tier::<u64, Vec<u8>>::usage(&d);
    assert!(live.bytes <= 40_000, "{live:?}");
    d.flush().unwrap();
    drop(d);
    // Reopening recounts from the file: the live counters were exact.
    let d = DiskTier::open(DiskTierConfig::new(&path, 40_000)).unwrap();
    let reopened = Tier::<u64, Vec<u8>>::usage(&d);
    assert_eq!(
        (reopened.entries, reopened.bytes),
        (live.entries, live.bytes)
    );
}

#[tokio::test]
async fn a_lower_tier_that_serves_almost_nothing_is_called_out() {
    let dir = tempfile::tempdir().unwrap();
    let cache: TieredCache<u64, u64> = TieredCache::builder()
        .tier(MemoryTier::new(1_000, PolicyKind::Lru).unwrap())
        .tier(disk(&dir, 1 << 20))
        .build()
        .unwrap();
    // Everything fits in memory: the disk tier only ever sees first-time misses.
    for round in 0..3 {
        for k in 0..100u64 {
            cache
                .get_with(&k, || async move {
                    tokio::time::sleep(Duration::from_micros(50 * round)).await;
                    Ok::<_, Err>(k)
                })
                .await
                .unwrap();
        }
    }
    let recs = cache.recommendations();
    let cost = recs
        .iter()
        .find(|r| r.kind == "tier_cost")
        .expect("tier_cost advice");
    assert_eq!(cost.tier, "disk");
    assert!(
        cost.message
            .starts_with("disk serves 0 % of reads: it costs more than it saves"),
        "{}",
        cost.message
    );
}

#[tokio::test]
async fn policy_advice_names_the_better_policy_with_its_margin() {
    let cache: TieredCache<u64, u64> = TieredCache::builder()
        .tier(MemoryTier::new(200, PolicyKind::Lru).unwrap().named("l1"))
        .sample_rate(1.0)
        .build()
        .unwrap();
    let mut rng = Rng(7);
    let mut scan = 1u64 << 40;
    for _ in 0..10_000 {
        let k = if rng.next().is_multiple_of(2) {
            rng.next() % 150
        } else {
            scan += 1;
            scan
        };
        cache.get_with(&k, || ok(k)).await.unwrap();
    }
    let recs = cache.recommendations();
    let p = recs
        .iter()
        .find(|r| r.kind == "policy")
        .expect("policy advice");
    assert!(p.message.contains(" would beat lru by "), "{}", p.message);
    assert!(p.projected > p.current + 0.1, "{p:?}");
}

#[tokio::test]
async fn a_weighted_memory_tier_reports_bytes_and_stays_within_them() {
    let clock = ManualClock::new();
    let tier = MemoryTier::weighted(
        10_000,
        PolicyKind::Lru,
        clock.shared(),
        |_: &u64, v: &Vec<u8>| v.len() as u32,
    )
    .unwrap();
    let cache: TieredCache<u64, Vec<u8>> =
        TieredCache::builder().tier(tier.clone()).build().unwrap();
    for k in 0..100u64 {
        cache.insert(k, vec![0u8; 500]).await;
    }
    let t = &cache.metrics().tiers[0];
    // Within the capacity (per-shard capacities may leave some of it unused).
    assert!(t.bytes <= 10_000 && t.bytes >= 5_000, "{t:?}");
    assert_eq!(t.bytes, t.entries * 500);
    assert!(
        (18..=20).contains(&tier.capacity_in_entries()),
        "{}",
        tier.capacity_in_entries()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_disk_reads_behave_like_pooled_ones() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let mut cfg = DiskTierConfig::new(dir.path().join("c.redb"), 1 << 20);
    cfg.inline_reads = true;
    let d = DiskTier::open_with_clock(cfg, clock.shared()).unwrap();
    let cache: TieredCache<u64, String> = TieredCache::builder()
        .tier_without_promotion(MemoryTier::new(10, PolicyKind::Lru).unwrap())
        .tier(d.clone())
        .build()
        .unwrap();
    d.put_sync(&1u64, &"one".to_owned(), Some(Duration::from_secs(1)))
        .unwrap();
    d.put_sync(&2u64, &"two".to_owned(), None).unwrap();
    assert_eq!(cache.get(&1).await.as_deref(), Some("one"));
    clock.advance(Duration::from_secs(2));
    assert_eq!(cache.get(&1).await, None);
    assert_eq!(cache.get(&2).await.as_deref(), Some("two"));
    // The expired entry is removed in the background.
    for _ in 0..500 {
        if Tier::<u64, String>::usage(&d).entries == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let u = Tier::<u64, String>::usage(&d);
    assert_eq!((u.entries, u.expired), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_behind_fills_the_lower_tiers_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let d = disk(&dir, 1 << 20);
    let cache: TieredCache<u64, u64> = TieredCache::builder()
        .tier(MemoryTier::new(100, PolicyKind::Lru).unwrap())
        .tier(d.clone())
        .write_behind(true)
        .build()
        .unwrap();
    for k in 0..20u64 {
        assert_eq!(cache.get_with(&k, || ok(k * 3)).await.unwrap(), k * 3);
    }
    assert_eq!(
        cache.metrics().tiers[0].entries,
        20,
        "the top tier before returning"
    );
    for _ in 0..500 {
        if Tier::<u64, u64>::usage(&d).entries == 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(Tier::<u64, u64>::usage(&d).entries, 20);
    assert_eq!(d.get_sync::<u64, u64>(&7).unwrap().unwrap().value, 21);
}

mod model {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u8, u32),
        Get(u8),
        Load(u8, u32),
        Invalidate(u8),
        DropMemory(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..16u8, any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
            (0..16u8).prop_map(Op::Get),
            (0..16u8, any::<u32>()).prop_map(|(k, v)| Op::Load(k, v)),
            (0..16u8).prop_map(Op::Invalidate),
            (0..16u8).prop_map(Op::DropMemory),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// Without capacity pressure or expiry, memory + disk behave like one map, whatever
        /// the memory tier forgets (the disk answers and the value is promoted back).
        #[test]
        fn memory_and_disk_behave_like_a_map(ops in proptest::collection::vec(op(), 1..60)) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let dir = tempfile::tempdir().unwrap();
                let mem = MemoryTier::new(1_000, PolicyKind::Lru).unwrap();
                let cache: TieredCache<u8, u32> = TieredCache::builder()
                    .tier(mem.clone())
                    .tier(disk(&dir, 1 << 20))
                    .build()
                    .unwrap();
                let mut model: HashMap<u8, u32> = HashMap::new();
                for op in ops {
                    match op {
                        Op::Insert(k, v) => {
                            cache.insert(k, v).await;
                            model.insert(k, v);
                        }
                        Op::Get(k) => prop_assert_eq!(cache.get(&k).await, model.get(&k).copied()),
                        Op::Load(k, v) => {
                            let got = cache.get_with(&k, || ok(v)).await.unwrap();
                            let want = *model.entry(k).or_insert(v);
                            prop_assert_eq!(got, want);
                        }
                        Op::Invalidate(k) => {
                            cache.invalidate(&k).await;
                            model.remove(&k);
                        }
                        Op::DropMemory(k) => mem.remove_now(&k),
                    }
                }
                Ok(())
            })?;
        }
    }
}
