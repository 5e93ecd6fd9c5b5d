//! The shared GCRA limit against a real redis-server (feature `redis`).
#![cfg(feature = "redis")]

use perfkit_budget::redis::{FailMode, RedisBudgetError, RedisLimiter};
use perfkit_testkit::RedisServer;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_limiters_share_one_rate() {
    let server = RedisServer::start();
    let rate = 200.0;
    let burst = 10;
    let a = Arc::new(RedisLimiter::new(&server.url(), "test:shared", rate, burst).unwrap());
    let b = Arc::new(RedisLimiter::new(&server.url(), "test:shared", rate, burst).unwrap());
    let allowed = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    // Warm both connections so the measured window is only limiter traffic.
    a.check(0).await.unwrap();
    b.check(0).await.unwrap();
    let start = Instant::now();
    let run = Duration::from_millis(1500);
    let mut tasks = Vec::new();
    for limiter in [a, b] {
        for _ in 0..2 {
            let (limiter, allowed, refused) = (
                Arc::clone(&limiter),
                Arc::clone(&allowed),
                Arc::clone(&refused),
            );
            tasks.push(tokio::spawn(async move {
                let mut calls = 0;
                while start.elapsed() < run && calls < 20_000 {
                    calls += 1;
                    let d = limiter.check(1).await.unwrap();
                    if d.allowed {
                        allowed.fetch_add(1, Ordering::Relaxed);
                    } else {
                        refused.fetch_add(1, Ordering::Relaxed);
                        assert!(d.retry_after > Duration::ZERO);
                        tokio::time::sleep(d.retry_after.min(Duration::from_millis(5))).await;
                    }
                }
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    let allowed = allowed.load(Ordering::Relaxed) as f64;
    let ceiling = rate * secs + burst as f64 + 1.0;
    assert!(
        allowed <= ceiling,
        "{allowed} allowed in {secs:.2} s, more than rate x time + burst = {ceiling:.0}"
    );
    assert!(
        allowed >= 0.8 * rate * run.as_secs_f64(),
        "{allowed} allowed in {secs:.2} s: the limiter starves its clients"
    );
    assert!(refused.load(Ordering::Relaxed) > 0);
}

#[tokio::test]
async fn unreachable_redis_fails_open_or_closed_as_configured() {
    let mut server = RedisServer::start();
    let url = server.url();
    server.kill();
    let closed = RedisLimiter::new(&url, "k", 10.0, 1)
        .unwrap()
        .timeout(Duration::from_millis(200));
    let err = closed.check(1).await.unwrap_err();
    assert!(matches!(
        err,
        RedisBudgetError::Unavailable {
            mode: FailMode::Closed,
            ..
        }
    ));
    let msg = err.to_string();
    assert!(
        msg.contains("failing closed") && msg.contains(&url),
        "{msg}"
    );

    let open = RedisLimiter::new(&url, "k", 10.0, 1)
        .unwrap()
        .fail_mode(FailMode::Open)
        .timeout(Duration::from_millis(200));
    let d = open.check(1).await.unwrap();
    assert!(d.allowed);
    assert!(d.degraded.unwrap().contains("failing open"));

    // The server comes back on the same port: the limiter reconnects.
    let _server = RedisServer::start_on(server.port());
    let d = closed.check(1).await.unwrap();
    assert!(d.allowed && d.degraded.is_none());
}

#[test]
fn invalid_options_are_refused() {
    assert!(RedisLimiter::new("redis://127.0.0.1:1/", "k", 0.0, 1).is_err());
    assert!(RedisLimiter::new("redis://127.0.0.1:1/", "k", 1.0, 0).is_err());
    assert!(RedisLimiter::new("not a url", "k", 1.0, 1).is_err());
}
