//! `Lazy<T>` under tokio's paused time: single flight, retries with backoff, timeouts,
//! cooldown, dropped callers, panicking loaders. No real sleeps.

use perfkit_lazy::{AttemptError, Lazy, LazyErrorKind, LoadState, LoadTrigger, RetryPolicy};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// Tokio's timer has a resolution of 1 ms and rounds deadlines up, so a paused-time
/// duration built from sleeps can exceed its nominal value by a millisecond per sleep.
#[track_caller]
fn assert_about(actual: Duration, expected_ms: u64) {
    let expected = Duration::from_millis(expected_ms);
    assert!(
        actual + Duration::from_millis(3) >= expected
            && actual <= expected + Duration::from_millis(3),
        "{actual:?} is not about {expected:?}"
    );
}

fn counter() -> Arc<AtomicU32> {
    Arc::new(AtomicU32::new(0))
}

fn exact(max_attempts: u32, min_delay_ms: u64) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        min_delay: Duration::from_millis(min_delay_ms),
        jitter: false,
        ..RetryPolicy::default()
    }
}

#[tokio::test(start_paused = true)]
async fn a_thousand_concurrent_gets_run_the_loader_once() {
    let calls = counter();
    let c = calls.clone();
    let lazy = Lazy::new("model", move || {
        c.fetch_add(1, Ordering::SeqCst);
        async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok::<_, std::io::Error>(42u64)
        }
    });
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let lazy = lazy.clone();
            tokio::spawn(async move { *lazy.get().await.unwrap() })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 42);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(lazy.metrics().loads_started, 1);
    match lazy.state() {
        LoadState::Loaded {
            attempts,
            trigger,
            load_time,
        } => {
            assert_eq!((attempts, trigger), (1, LoadTrigger::FirstUse));
            assert_about(load_time, 50);
        }
        other => panic!("{other:?}"),
    }
    // Loaded: the fast path hands out the same shared value.
    let a = lazy.try_get().unwrap();
    let b = lazy.get().await.unwrap();
    assert!(std::ptr::eq(a, b));
}

#[tokio::test(start_paused = true)]
async fn a_loader_failing_twice_then_succeeding_is_retried_with_exponential_backoff() {
    let calls = counter();
    let c = calls.clone();
    let lazy = Lazy::builder("flaky").retry(exact(5, 100)).build(move || {
        let n = c.fetch_add(1, Ordering::SeqCst);
        async move {
            if n < 2 {
                Err(format!("transient failure {n}"))
            } else {
                Ok("ready")
            }
        }
    });
    let start = Instant::now();
    assert_eq!(*lazy.get().await.unwrap(), "ready");
    // 100 ms before the second attempt, 200 ms before the third.
    assert_about(start.elapsed(), 300);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let m = lazy.metrics();
    assert_eq!(
        (m.attempts, m.failed_attempts, m.loads_succeeded),
        (3, 2, 1)
    );
    assert_about(m.last_load_time.unwrap(), 300);
    assert!(matches!(
        lazy.state(),
        LoadState::Loaded { attempts: 3, .. }
    ));
}

#[tokio::test(start_paused = true)]
async fn the_state_shows_the_attempt_and_the_next_retry_while_loading() {
    let lazy = Lazy::builder("flaky")
        .retry(exact(3, 1000))
        .build(|| async { Err::<u8, _>("down") });
    assert!(lazy.preload());
    assert!(!lazy.preload(), "a second preload joins the first");
    tokio::time::sleep(Duration::from_millis(400)).await;
    match lazy.state() {
        LoadState::Loading {
            attempt,
            next_retry_in,
            trigger,
            elapsed,
        } => {
            assert_eq!(attempt, 1);
            assert_about(next_retry_in.unwrap(), 600);
            assert_eq!(trigger, LoadTrigger::Preload);
            assert_about(elapsed, 400);
        }
        other => panic!("{other:?}"),
    }
    let err = lazy.get().await.unwrap_err();
    assert!(
        matches!(err.kind(), LazyErrorKind::Failed { attempts: 3, .. }),
        "{err:?}"
    );
    assert_eq!(
        err.full_message(),
        "loading `flaky` failed after 3 attempt(s): down"
    );
}

#[test]
fn backoff_delays_grow_exponentially_are_capped_and_jittered() {
    let policy = RetryPolicy {
        max_attempts: 6,
        min_delay: Duration::from_millis(100),
        max_delay: Duration::from_millis(500),
        factor: 2.0,
        jitter: false,
        ..RetryPolicy::default()
    };
    let plain: Vec<u64> = policy.delays().map(|d| d.as_millis() as u64).collect();
    assert_eq!(plain, [100, 200, 400, 500, 500]);
    let jittered = RetryPolicy {
        jitter: true,
        jitter_seed: Some(7),
        ..policy
    };
    let delays: Vec<Duration> = jittered.delays().collect();
    assert_eq!(delays.len(), 5);
    for (d, base) in delays.iter().zip(plain) {
        let base = Duration::from_millis(base);
        assert!(*d >= base && *d < base * 2, "{d:?} vs {base:?}");
    }
    assert!(
        delays
            .iter()
            .zip([100, 200, 400, 500, 500])
            .any(|(d, b)| d.as_millis() != b)
    );
    assert_eq!(RetryPolicy::no_retry().delays().count(), 0);
}

#[tokio::test(start_paused = true)]
async fn each_attempt_has_a_timeout() {
    let calls = counter();
    let c = calls.clone();
    let lazy = Lazy::builder("slow")
        .retry(exact(2, 100))
        .attempt_timeout(Duration::from_secs(1))
        .build(move || {
            c.fetch_add(1, Ordering::SeqCst);
            async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                Ok::<_, std::io::Error>(1u8)
            }
        });
    let start = Instant::now();
    let err = lazy.get().await.unwrap_err();
    assert_about(start.elapsed(), 2100);
    match err.kind() {
        LazyErrorKind::Failed {
            attempts: 2,
            last: AttemptError::TimedOut(t),
            ..
        } => assert_eq!(*t, Duration::from_secs(1)),
        other => panic!("{other:?}"),
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(lazy.metrics().timeouts, 2);
}

#[tokio::test(start_paused = true)]
async fn a_failure_is_kept_for_the_cooldown_only() {
    let calls = counter();
    let c = calls.clone();
    let lazy = Lazy::builder("db")
        .retry(RetryPolicy {
            cooldown: Duration::from_secs(5),
            ..RetryPolicy::no_retry()
        })
        .build(move || {
            let n = c.fetch_add(1, Ordering::SeqCst);
            async move { if n == 0 { Err("refused") } else { Ok(n) } }
        });
    assert!(lazy.get().await.is_err());
    tokio::time::advance(Duration::from_secs(4)).await;
    // Within the cooldown: the cached failure, no new attempt.
    assert!(lazy.get().await.is_err());
    assert!(!lazy.preload());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    match lazy.state() {
        LoadState::Failed {
            attempts,
            next_retry_in,
            error,
        } => {
            assert_eq!(attempts, 1);
            assert_about(next_retry_in, 1000);
            assert!(error.contains("refused"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(*lazy.get().await.unwrap(), 1);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(lazy.metrics().loads_failed, 1);
}

#[tokio::test(start_paused = true)]
async fn a_caller_dropping_its_future_does_not_cancel_the_load() {
    let calls = counter();
    let c = calls.clone();
    let lazy = Lazy::new("index", move || {
        c.fetch_add(1, Ordering::SeqCst);
        async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok::<_, std::io::Error>(vec![1, 2, 3])
        }
    });
    // The first caller gives up after 10 ms (its future is dropped).
    assert!(
        tokio::time::timeout(Duration::from_millis(10), lazy.get())
            .await
            .is_err()
    );
    // A spawned caller aborted mid-wait.
    let l = lazy.clone();
    let task = tokio::spawn(async move { l.get().await.map(|v| v.len()) });
    tokio::time::sleep(Duration::from_millis(10)).await;
    task.abort();
    assert!(matches!(lazy.state(), LoadState::Loading { .. }));
    let start = Instant::now();
    assert_eq!(lazy.get().await.unwrap().len(), 3);
    assert_about(start.elapsed(), 980);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_loader_aborts_the_load_and_the_next_get_retries() {
    let calls = counter();
    let c = calls.clone();
    let lazy = Lazy::builder("boom")
        .retry(RetryPolicy::no_retry())
        .build(move || {
            let n = c.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    panic!("loader bug");
                }
                Ok::<_, std::io::Error>(n)
            }
        });
    let err = lazy.get().await.unwrap_err();
    assert!(
        matches!(err.kind(), LazyErrorKind::Aborted { .. }),
        "{err:?}"
    );
    assert!(matches!(lazy.state(), LoadState::Failed { .. }));
    assert_eq!(*lazy.get().await.unwrap(), 1);
}

#[test]
fn without_a_runtime_nothing_starts() {
    let lazy = Lazy::new("x", || async { Ok::<_, std::io::Error>(1) });
    assert!(!lazy.preload());
    assert_eq!(lazy.state(), LoadState::NotLoaded);
    assert!(lazy.try_get().is_none());
    // A runtime handle given to the builder is used from any thread.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let lazy = Lazy::builder("y")
        .runtime(rt.handle().clone())
        .build(|| async { Ok::<_, std::io::Error>(2) });
    assert!(lazy.preload());
    let v = rt.block_on(async { *lazy.get().await.unwrap() });
    assert_eq!(v, 2);
}

#[tokio::test(start_paused = true)]
async fn with_no_cooldown_each_waiter_gets_the_failure_of_its_own_load() {
    let calls = counter();
    let c = calls.clone();
    let lazy = Lazy::builder("flaky")
        .retry(RetryPolicy {
            cooldown: Duration::ZERO,
            ..RetryPolicy::no_retry()
        })
        .build(move || {
            c.fetch_add(1, Ordering::SeqCst);
            async {
                tokio::time::sleep(Duration::from_millis(10)).await;
                Err::<u8, _>("down")
            }
        });
    let waiters: Vec<_> = (0..50)
        .map(|_| {
            let lazy = lazy.clone();
            tokio::spawn(async move { lazy.get().await.copied() })
        })
        .collect();
    for w in waiters {
        assert!(w.await.unwrap().is_err());
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "one load for all waiters");
    // The next caller starts a new load at once (no cooldown).
    assert!(lazy.get().await.is_err());
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_gets_on_a_multi_thread_runtime_share_one_load() {
    let calls = counter();
    let c = calls.clone();
    let (release, wait) = tokio::sync::watch::channel(false);
    let lazy = Lazy::new("index", move || {
        c.fetch_add(1, Ordering::SeqCst);
        let mut wait = wait.clone();
        async move {
            // Held until every caller has been started.
            let _ = wait.wait_for(|go| *go).await;
            Ok::<_, std::io::Error>(7u32)
        }
    });
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let lazy = lazy.clone();
            tokio::spawn(async move { *lazy.get().await.unwrap() })
        })
        .collect();
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    release.send(true).unwrap();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 7);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}
