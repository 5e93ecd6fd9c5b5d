//! MemoryCache: basics, expiry with a manual clock, weights, single flight, and equality of
//! its hit counts with the simulator's.

use perfkit_cache::{MemoryCache, PolicyKind, simulate};
use perfkit_core::ManualClock;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Hashes a `u64` key to itself, so the policy sees the same keys the simulator does.
#[derive(Clone, Default)]
struct Identity;
struct IdentityHasher(u64);
impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("u64 keys only")
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = i;
    }
}
impl BuildHasher for Identity {
    type Hasher = IdentityHasher;
    fn build_hasher(&self) -> IdentityHasher {
        IdentityHasher(0)
    }
}

/// One shard, keys hashed to themselves: the cache's policy sees the simulator's keys.
fn one_shard(kind: PolicyKind, cap: u64) -> MemoryCache<u64, u64, Identity> {
    MemoryCache::builder()
        .capacity(cap)
        .shards(1)
        .policy(kind)
        .hasher(Identity)
        .build()
        .unwrap()
}

fn skewed_trace(n: usize, universe: u64, seed: u64) -> Vec<u64> {
    let mut rng = fastrand_like(seed);
    (0..n)
        .map(|_| {
            // Roughly Zipfian: squares of uniforms concentrate on small keys.
            let u = (rng() % 1_000_000) as f64 / 1_000_000.0;
            (u * u * u * universe as f64) as u64
        })
        .collect()
}

fn fastrand_like(seed: u64) -> impl FnMut() -> u64 {
    let mut s = seed | 1;
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    }
}

#[test]
fn get_insert_remove_and_stats() {
    let c: MemoryCache<String, u32> = MemoryCache::builder().capacity(100).build().unwrap();
    assert_eq!(c.get(&"a".into()), None);
    c.insert("a".into(), 1);
    assert_eq!(c.get(&"a".into()), Some(1));
    c.insert("a".into(), 2);
    assert_eq!(c.get(&"a".into()), Some(2));
    assert_eq!(c.len(), 1);
    assert_eq!(c.remove(&"a".into()), Some(2));
    assert_eq!(c.get(&"a".into()), None);
    let s = c.stats();
    assert_eq!((s.hits, s.misses), (2, 2));
    assert!(c.is_empty());
    assert!(MemoryCache::<u8, u8>::new(0).is_err());
    assert!(
        MemoryCache::<u8, u8>::builder()
            .capacity(5)
            .policy(PolicyKind::Opt)
            .build()
            .is_err()
    );
}

#[test]
fn capacity_is_respected_by_every_policy() {
    for kind in PolicyKind::online() {
        let c: MemoryCache<u64, u64> = MemoryCache::builder()
            .capacity(64)
            .shards(4)
            .policy(kind)
            .build()
            .unwrap();
        for k in 0..10_000u64 {
            c.get_or_insert_with(k % 500, || k);
        }
        assert!(c.len() <= 64, "{kind}: {}", c.len());
        assert!(c.stats().evictions > 0, "{kind}");
        assert_eq!(c.policy(), kind);
    }
}

#[test]
fn simulated_and_production_hits_are_equal() {
    let keys = skewed_trace(30_000, 5_000, 7);
    for kind in PolicyKind::online() {
        for cap in [50u64, 500] {
            let c = one_shard(kind, cap);
            for &k in &keys {
                c.get_or_insert_with(k, || k);
            }
            let sim = simulate(kind, cap, &keys, None).unwrap();
            assert_eq!(c.stats().hits, sim.hits, "{kind} @ {cap}");
            // The get-then-insert pattern gives the same counts.
            let c2 = one_shard(kind, cap);
            for &k in &keys {
                if c2.get(&k).is_none() {
                    c2.insert(k, k);
                }
            }
            assert_eq!(c2.stats().hits, sim.hits, "{kind} @ {cap} get+insert");
        }
    }
}

#[test]
fn time_to_live_and_idle_use_the_clock() {
    let clock = ManualClock::new();
    let c: MemoryCache<u32, u32> = MemoryCache::builder()
        .capacity(10)
        .time_to_live(Duration::from_secs(10))
        .clock(clock.shared())
        .build()
        .unwrap();
    c.insert(1, 1);
    clock.advance(Duration::from_secs(9));
    assert_eq!(c.get(&1), Some(1));
    clock.advance(Duration::from_secs(1));
    assert_eq!(c.get(&1), None);
    assert_eq!(c.stats().expirations, 1);

    let c: MemoryCache<u32, u32> = MemoryCache::builder()
        .capacity(10)
        .time_to_idle(Duration::from_secs(5))
        .clock(clock.shared())
        .build()
        .unwrap();
    c.insert(1, 1);
    c.insert(2, 2);
    for _ in 0..3 {
        clock.advance(Duration::from_secs(4));
        assert_eq!(c.get(&1), Some(1));
    }
    assert_eq!(c.purge_expired(), 1); // 2 idled out
    assert!(!c.contains_key(&2));
    assert!(c.contains_key(&1));
}

#[test]
fn a_key_that_outgrows_the_cache_leaves_no_expiry_behind() {
    for kind in PolicyKind::online() {
        let clock = ManualClock::new();
        let c: MemoryCache<u32, String> = MemoryCache::builder()
            .capacity(100)
            .shards(1)
            .policy(kind)
            .weigher(|_, v: &String| v.len() as u32)
            .time_to_live(Duration::from_secs(10))
            .clock(clock.shared())
            .build()
            .unwrap();
        c.insert(1, "a".repeat(10));
        c.insert(1, "a".repeat(200));
        assert!(!c.contains_key(&1), "{kind}");
        clock.advance(Duration::from_secs(11));
        assert_eq!(c.purge_expired(), 0, "{kind}");
        assert_eq!(c.stats().expirations, 0, "{kind}");
    }
}

#[test]
fn weigher_counts_weight() {
    let c: MemoryCache<u32, Vec<u8>> = MemoryCache::builder()
        .capacity(100)
        .shards(1)
        .policy(PolicyKind::Lru)
        .weigher(|_, v: &Vec<u8>| v.len() as u32)
        .build()
        .unwrap();
    for k in 0..10 {
        c.insert(k, vec![0; 30]);
    }
    assert!(c.weight() <= 100);
    assert_eq!(c.len(), 3);
    c.insert(100, vec![0; 101]); // heavier than the cache: dropped
    assert!(!c.contains_key(&100));
    // Growing an entry's weight evicts others.
    c.insert(9, vec![0; 90]);
    assert!(c.weight() <= 100);
    assert_eq!(c.get(&9).map(|v| v.len()), Some(90));
}

#[test]
fn resize_and_switch_policy_online() {
    let c: MemoryCache<u64, u64> = MemoryCache::builder()
        .capacity(1000)
        .shards(2)
        .build()
        .unwrap();
    for k in 0..1000 {
        c.insert(k, k);
    }
    c.resize(100);
    assert!(c.len() <= 100);
    assert_eq!(c.capacity(), 100);
    c.set_policy(PolicyKind::Lru).unwrap();
    assert_eq!(c.policy(), PolicyKind::Lru);
    assert!(c.len() <= 100 && !c.is_empty());
    assert!(c.set_policy(PolicyKind::Opt).is_err());
    c.clear();
    assert!(c.is_empty());
}

#[test]
fn switching_to_and_from_wtinylfu_keeps_entries_reachable() {
    // W-TinyLfu in a MemoryCache keeps no key index of its own (the entries hold its
    // handles): after a switch every handle must be the new policy's.
    let c: MemoryCache<u64, u64> = MemoryCache::builder()
        .capacity(200)
        .shards(2)
        .policy(PolicyKind::Lru)
        .build()
        .unwrap();
    for k in 0..150 {
        c.insert(k, k * 10);
    }
    for kind in [
        PolicyKind::WTinyLfu,
        PolicyKind::S3Fifo,
        PolicyKind::WTinyLfu,
    ] {
        c.set_policy(kind).unwrap();
        assert_eq!(c.weight(), c.len() as u64, "{kind}");
        let value = |k: u64| if k < 1000 { k * 10 } else { k };
        let resident: Vec<u64> = (0..150)
            .chain(1000..1400)
            .filter(|k| c.contains_key(k))
            .collect();
        assert_eq!(resident.len(), c.len(), "{kind}");
        for &k in &resident {
            assert_eq!(c.get(&k), Some(value(k)), "{kind}");
        }
        // Removing through the new handles leaves the policy and the map agreeing.
        for &k in resident.iter().step_by(3) {
            assert_eq!(c.remove(&k), Some(value(k)));
        }
        assert_eq!(c.weight(), c.len() as u64, "{kind}");
        for k in 1000..1400 {
            c.insert(k, k);
            c.get(&(k - 3));
        }
        assert!(c.len() <= 200);
        assert_eq!(c.weight(), c.len() as u64, "{kind}");
        for k in 0..150 {
            c.insert(k, k * 10);
        }
    }
}

#[test]
fn weights_change_through_the_handles() {
    for kind in PolicyKind::online() {
        let c: MemoryCache<u64, String> = MemoryCache::builder()
            .capacity(100)
            .shards(1)
            .policy(kind)
            .weigher(|_, v: &String| v.len() as u32)
            .build()
            .unwrap();
        c.insert(1, "a".repeat(10));
        c.insert(2, "b".repeat(10));
        // W-TinyLFU's filter may decline a newcomer only when the cache is full.
        assert_eq!(c.weight(), 20, "{kind}");
        c.insert(1, "a".repeat(30));
        assert_eq!(c.weight(), 40, "{kind}");
        assert_eq!(c.get(&1).map(|v| v.len()), Some(30), "{kind}");
        // Heavier than the whole cache: dropped, and the policy forgets it too.
        c.insert(2, "b".repeat(200));
        assert_eq!(c.get(&2), None, "{kind}");
        assert_eq!(c.weight(), 30, "{kind}");
        assert_eq!(c.remove(&1).map(|v| v.len()), Some(30), "{kind}");
        assert_eq!(c.weight(), 0, "{kind}");
        assert!(c.is_empty(), "{kind}");
    }
}

#[test]
fn removes_and_inserts_reach_the_policy_in_request_order() {
    // One shard, keys hashed to themselves: the cache's policy must end every request in
    // the state of a policy driven directly with the same calls (queued hits applied
    // before each removal, insert and miss), for every online policy.
    for kind in PolicyKind::online() {
        let cap = 300u64;
        let c = one_shard(kind, cap);
        let mut model = kind.build(cap).unwrap();
        let mut evicted = Vec::new();
        let mut next = fastrand_like(kind as u64 + 11);
        let keys = skewed_trace(40_000, 3_000, kind as u64 + 5);
        let mut hits = 0u64;
        for (i, &k) in keys.iter().enumerate() {
            evicted.clear();
            match next() % 20 {
                0 => {
                    // The cache removes only what it holds (ARC would also drop a ghost).
                    let resident = model.contains(k);
                    if resident {
                        model.remove(k);
                    }
                    assert_eq!(c.remove(&k).is_some(), resident, "{kind} #{i}");
                }
                1 => {
                    c.insert(k, k);
                    if !model.contains(k) {
                        model.admit(k, 1, &mut evicted);
                    }
                }
                _ => {
                    let hit = model.lookup(k);
                    assert_eq!(c.get(&k).is_some(), hit, "{kind} #{i}");
                    if hit {
                        hits += 1;
                    } else {
                        c.insert(k, k);
                        model.admit(k, 1, &mut evicted);
                    }
                }
            }
            assert_eq!(c.contains_key(&k), model.contains(k), "{kind} #{i}");
            for &e in &evicted {
                assert!(!c.contains_key(&e), "{kind} #{i}: {e} evicted");
            }
        }
        assert_eq!(c.stats().hits, hits, "{kind}");
        assert_eq!(c.len(), model.len(), "{kind}");
        assert_eq!(c.weight(), model.weight(), "{kind}");
        for k in 0..3_000 {
            assert_eq!(c.contains_key(&k), model.contains(k), "{kind}: key {k}");
        }
    }
}

#[test]
fn single_flight_loads_once() {
    let c: MemoryCache<u32, u32> = MemoryCache::builder().capacity(100).build().unwrap();
    let loads = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(std::sync::Barrier::new(8));
    std::thread::scope(|s| {
        for _ in 0..8 {
            let (c, loads, barrier) = (c.clone(), loads.clone(), barrier.clone());
            s.spawn(move || {
                barrier.wait();
                let v = c.get_or_insert_with(7, || {
                    loads.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(50));
                    70
                });
                assert_eq!(v, 70);
            });
        }
    });
    assert_eq!(loads.load(Ordering::SeqCst), 1);
}

#[test]
fn a_panicking_loader_lets_another_load() {
    let c: MemoryCache<u32, u32> = MemoryCache::builder().capacity(100).build().unwrap();
    let c2 = c.clone();
    let r = std::thread::spawn(move || c2.get_or_insert_with(1, || panic!("loader failed"))).join();
    assert!(r.is_err());
    assert_eq!(c.get_or_insert_with(1, || 5), 5);
}

#[tokio::test]
async fn async_single_flight() {
    let c: MemoryCache<u32, u32> = MemoryCache::builder().capacity(100).build().unwrap();
    let loads = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (c, loads) = (c.clone(), loads.clone());
        tasks.push(tokio::spawn(async move {
            c.get_or_insert_with_async(3, async {
                loads.fetch_add(1, Ordering::SeqCst);
                tokio::task::yield_now().await;
                30
            })
            .await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 30);
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);
}

#[test]
fn report_has_the_figures() {
    use perfkit_core::Report;
    let c: MemoryCache<u32, u32> = MemoryCache::builder().capacity(10).build().unwrap();
    for k in 0..2000 {
        c.get_or_insert_with(k, || k);
    }
    let r = c.report();
    assert_eq!(r.name(), "cache");
    assert_eq!(r.policy, PolicyKind::WTinyLfu);
    assert!(r.figures().iter().any(|f| f.name == "hit_ratio"));
    assert_eq!(r.findings().len(), 1); // every key distinct: low hit ratio
    assert!(r.summary().contains("wtinylfu"));
}

mod property {
    use super::one_shard;
    use perfkit_cache::{PolicyKind, simulate};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(40))]
        /// On any single-threaded trace the cache's hits are the simulator's.
        #[test]
        fn cache_hits_equal_simulated(
            keys in proptest::collection::vec(0u64..200, 0..2000),
            cap in 1u64..64,
        ) {
            for kind in PolicyKind::online() {
                let c = one_shard(kind, cap);
                for &k in &keys {
                    c.get_or_insert_with(k, || k);
                }
                let sim = simulate(kind, cap, &keys, None).unwrap();
                prop_assert_eq!(c.stats().hits, sim.hits, "{}", kind);
                prop_assert!(c.len() as u64 <= cap);
            }
        }
    }
}

#[test]
fn concurrent_use_keeps_entries_and_policy_consistent() {
    for kind in PolicyKind::online() {
        let c: MemoryCache<u64, u64> = MemoryCache::builder()
            .capacity(200)
            .shards(2)
            .policy(kind)
            .build()
            .unwrap();
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let c = c.clone();
                s.spawn(move || {
                    let keys = skewed_trace(20_000, 1_000, t + 1);
                    for (i, k) in keys.into_iter().enumerate() {
                        match i % 50 {
                            0 => {
                                c.remove(&k);
                            }
                            1 => {
                                c.insert(k, k);
                            }
                            _ => {
                                assert_eq!(c.get_or_insert_with(k, || k), k);
                            }
                        }
                    }
                });
            }
        });
        assert!(c.len() <= 200, "{kind}: {}", c.len());
        // Without a weigher the policy's weight is its number of residents.
        assert_eq!(c.weight(), c.len() as u64, "{kind}");
        let s = c.stats();
        assert!(s.hits + s.misses >= 4 * 19_000, "{kind}: {s:?}");
    }
}

/// Hashes a `u64` key to itself modulo 64: keys 64 apart share their hash.
#[derive(Clone, Default)]
struct Colliding;
impl BuildHasher for Colliding {
    type Hasher = IdentityHasher;
    fn build_hasher(&self) -> IdentityHasher {
        IdentityHasher(0)
    }
    fn hash_one<T: std::hash::Hash>(&self, x: T) -> u64 {
        let mut h = IdentityHasher(0);
        x.hash(&mut h);
        h.finish() % 64
    }
}

/// Values that count themselves alive (created or cloned, not yet dropped).
static ALIVE: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
#[derive(Debug, PartialEq)]
struct Counted(u64);
impl Counted {
    fn new(v: u64) -> Self {
        ALIVE.fetch_add(1, Ordering::SeqCst);
        Counted(v)
    }
}
impl Clone for Counted {
    fn clone(&self) -> Self {
        Counted::new(self.0)
    }
}
impl Drop for Counted {
    fn drop(&mut self) {
        ALIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

#[test]
fn keys_sharing_a_hash_keep_their_own_values_and_nothing_leaks() {
    // Every policy, keys whose hashes collide (the policy sees one key for each hash),
    // values with something to drop: a lookup returns its own key's value or nothing,
    // and every value the cache took is dropped by the time the cache is.
    for kind in PolicyKind::online() {
        {
            let c: MemoryCache<u64, Counted, Colliding> = MemoryCache::builder()
                .capacity(40)
                .shards(2)
                .policy(kind)
                .hasher(Colliding)
                .build()
                .unwrap();
            let mut rng = fastrand_like(kind as u64 + 7);
            for i in 0..20_000u64 {
                let k = rng() % 300;
                match i % 7 {
                    0 => {
                        c.remove(&k);
                    }
                    1 if i % 3_000 == 1 => c.clear(),
                    _ => {
                        if let Some(v) = c.get(&k) {
                            assert_eq!(v.0, k * 3, "{kind}: key {k}");
                        } else {
                            c.insert(k, Counted::new(k * 3));
                        }
                    }
                }
                if i == 10_000 {
                    c.set_policy(PolicyKind::Lru).unwrap();
                    c.set_policy(kind).unwrap();
                }
            }
            assert!(c.len() <= 40, "{kind}: {}", c.len());
            assert!(c.contains_key(&7) == c.get(&7).is_some());
        }
        assert_eq!(ALIVE.load(Ordering::SeqCst), 0, "{kind}: values left alive");
    }
}
