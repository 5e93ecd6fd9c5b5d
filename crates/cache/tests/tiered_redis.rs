//! Tests of the Redis tier against a real `redis-server` on a free loopback port, including
//! one where the server is killed mid-test and comes back.

use perfkit_cache::policy::PolicyKind;
use perfkit_cache::tiered::{
    BreakerConfig, BreakerState, DiskTier, DiskTierConfig, MemoryTier, RedisTier, RedisTierConfig,
    Tier, TieredCache,
};
use perfkit_core::ManualClock;
use perfkit_testkit::RedisServer;
use std::time::{Duration, Instant};

type Err = std::io::Error;

fn config(server_url: &str, prefix: &str) -> RedisTierConfig {
    let mut c = RedisTierConfig::new(server_url);
    c.prefix = prefix.to_owned();
    c.timeout = Duration::from_millis(200);
    c.breaker = BreakerConfig {
        failure_threshold: 2,
        open_for: Duration::from_secs(1),
    };
    c
}

async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_ttl_with_set_ex_and_corrupt_values_dropped() {
    let server = RedisServer::start();
    let tier = RedisTier::new(config(&server.url(), "t1:")).unwrap();
    let cache: TieredCache<String, Vec<u32>> =
        TieredCache::builder().tier(tier.clone()).build().unwrap();
    cache
        .insert_with_ttl("a".to_owned(), vec![1, 2, 3], Duration::from_secs(30))
        .await;
    cache.insert("b".to_owned(), vec![4]).await;
    assert_eq!(cache.get(&"a".to_owned()).await, Some(vec![1, 2, 3]));

    // The TTL is set on the server with SET ... EX.
    let mut conn = raw(&server.url()).await;
    let key_a = [
        b"t1:".as_slice(),
        &perfkit_cache::tiered::codec::encode_key("a").unwrap(),
    ]
    .concat();
    let key_b = [
        b"t1:".as_slice(),
        &perfkit_cache::tiered::codec::encode_key("b").unwrap(),
    ]
    .concat();
    let ttl: i64 = redis::cmd("TTL")
        .arg(&key_a)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!((29..=30).contains(&ttl), "{ttl}");
    let ttl: i64 = redis::cmd("TTL")
        .arg(&key_b)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(ttl, -1, "no TTL without one");

    // A value changed behind the tier's back fails its checksum: dropped, counted.
    let mut bytes: Vec<u8> = redis::cmd("GET")
        .arg(&key_b)
        .query_async(&mut conn)
        .await
        .unwrap();
    let last = bytes.len() - 5;
    bytes[last] ^= 0xFF;
    let _: () = redis::cmd("SET")
        .arg(&key_b)
        .arg(bytes)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(cache.get(&"b".to_owned()).await, None);
    let exists: i64 = redis::cmd("EXISTS")
        .arg(&key_b)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(exists, 0, "the corrupt value was deleted");
    let m = cache.metrics();
    assert_eq!((m.tiers[0].corrupt, m.tiers[0].errors), (1, 1));

    cache.invalidate(&"a".to_owned()).await;
    assert_eq!(cache.get(&"a".to_owned()).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_is_skipped_and_the_breaker_recovers_when_it_returns() {
    let mut server = RedisServer::start();
    let port = server.port();
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let redis_tier = RedisTier::with_clock(config(&server.url(), "t2:"), clock.shared()).unwrap();
    let disk = DiskTier::open(DiskTierConfig::new(dir.path().join("c.redb"), 1 << 20)).unwrap();
    let cache: TieredCache<u64, String> = TieredCache::builder()
        .tier(MemoryTier::new(10, PolicyKind::Lru).unwrap())
        .tier(disk)
        .tier(redis_tier.clone())
        .build()
        .unwrap();
    for k in 0..50u64 {
        cache
            .get_with(&k, || async move { Ok::<_, Err>(format!("v{k}")) })
            .await
            .unwrap();
    }
    assert_eq!(cache.metrics().tiers[2].errors, 0);

    server.kill();
    // Reads keep working from the memory and disk tiers.
    let mut worst = Duration::ZERO;
    for k in 0..50u64 {
        let t0 = Instant::now();
        assert_eq!(cache.get(&k).await, Some(format!("v{k}")));
        worst = worst.max(t0.elapsed());
    }
    // Misses of every tier go to Redis, fail (or time out), then the loader runs.
    for k in 100..110u64 {
        let t0 = Instant::now();
        let v = cache
            .get_with(&k, || async move { Ok::<_, Err>(format!("v{k}")) })
            .await
            .unwrap();
        assert_eq!(v, format!("v{k}"));
        worst = worst.max(t0.elapsed());
    }
    // Not a timing claim: only that nothing waits anywhere near a stall.
    assert!(worst < Duration::from_secs(3), "{worst:?}");
    assert_eq!(
        Tier::<u64, String>::breaker(&redis_tier),
        BreakerState::Open
    );
    let m = cache.metrics();
    let r = &m.tiers[2];
    assert!(
        r.breaker_opens >= 1 && r.skipped >= 1 && r.errors >= 2,
        "{r:?}"
    );
    assert_eq!(r.breaker, BreakerState::Open);

    // The server comes back on the same port; after the open period a probe closes it.
    let _server = RedisServer::start_on(port);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        clock.advance(Duration::from_secs(1));
        if redis_tier.ping().await.is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "the breaker never closed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        Tier::<u64, String>::breaker(&redis_tier),
        BreakerState::Closed
    );
    // Writes reach Redis again, and another cache reading only Redis sees them.
    cache
        .get_with(&500, || async { Ok::<_, Err>("back".to_owned()) })
        .await
        .unwrap();
    let only_redis: TieredCache<u64, String> = TieredCache::builder()
        .tier(RedisTier::new(config(&format!("redis://127.0.0.1:{port}/"), "t2:")).unwrap())
        .build()
        .unwrap();
    assert_eq!(only_redis.get(&500).await.as_deref(), Some("back"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_costs_at_most_the_timeout() {
    // A listener that accepts connections and never replies: a hung Redis.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let _accept = std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
            if held.len() > 16 {
                break;
            }
        }
    });
    let mut c = config(&format!("redis://127.0.0.1:{port}/"), "t3:");
    c.timeout = Duration::from_millis(100);
    let clock = ManualClock::new();
    let tier = RedisTier::with_clock(c, clock.shared()).unwrap();
    let cache: TieredCache<u64, u64> = TieredCache::builder()
        .tier(MemoryTier::new(10, PolicyKind::Lru).unwrap())
        .tier(tier)
        .build()
        .unwrap();
    let t0 = Instant::now();
    for k in 0..5u64 {
        assert_eq!(
            cache
                .get_with(&k, || async move { Ok::<_, Err>(k) })
                .await
                .unwrap(),
            k
        );
    }
    // Two failed lookups open the breaker; the rest skip Redis without waiting.
    let m = cache.metrics();
    assert!(m.tiers[1].skipped >= 3, "{:?}", m.tiers[1]);
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_values_expire_at_their_exact_ttl_and_promotion_keeps_it() {
    let server = RedisServer::start();
    let clock = ManualClock::new();
    let redis = RedisTier::with_clock(config(&server.url(), "t4:"), clock.shared()).unwrap();
    let memory = MemoryTier::with_clock(10, PolicyKind::Lru, clock.shared()).unwrap();
    let cache: TieredCache<u64, u64> = TieredCache::builder()
        .tier(memory.clone())
        .tier(redis)
        .clock(clock.shared())
        .build()
        .unwrap();
    cache
        .insert_with_ttl(1, 10, Duration::from_millis(1500))
        .await;
    memory.remove_now(&1);
    clock.advance(Duration::from_millis(500));
    assert_eq!(cache.get(&1).await, Some(10), "from Redis");
    let left = memory.get_now(&1).unwrap().ttl_left.unwrap();
    assert!(
        left <= Duration::from_secs(1),
        "promoted with the time left: {left:?}"
    );
    memory.remove_now(&1);
    // Redis itself keeps it for 2 s (EX rounds up); the record's own expiry says 1.5 s.
    clock.advance(Duration::from_millis(1000));
    assert_eq!(cache.get(&1).await, None);
    assert_eq!(cache.metrics().tiers[1].expired, 1);
}
