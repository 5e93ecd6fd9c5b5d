//! Async bandwidth enforcement on a paused tokio clock.

use perfkit_budget::{Budget, BudgetError, Budgets, TokioClock};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn budgets() -> Budgets {
    Budgets::builder()
        .clock(Arc::new(TokioClock))
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn acquire_waits_while_throttled_and_fails_fast_when_rejected() {
    let b = budgets();
    let ch = b
        .set_budget(
            Budget::bandwidth("egress", 1000.0)
                .burst(100)
                .max_wait(Duration::from_secs(2)),
        )
        .unwrap();
    let t0 = tokio::time::Instant::now();
    b.acquire(ch, 100).await.unwrap();
    assert_eq!(t0.elapsed(), Duration::ZERO);
    b.acquire(ch, 1000).await.unwrap();
    assert_eq!(t0.elapsed(), Duration::from_secs(1));
    b.acquire(ch, 1500).await.unwrap();
    assert_eq!(t0.elapsed(), Duration::from_millis(2500));
    // Now in debt by 1500 (paid off by the wait above); 2500 more would need 2.5 s > 2 s.
    let t1 = tokio::time::Instant::now();
    let err = b.acquire(ch, 2500).await.unwrap_err();
    assert!(matches!(err, BudgetError::Rejected { .. }), "{err}");
    assert_eq!(t1.elapsed(), Duration::ZERO, "rejection is immediate");
}

#[tokio::test(start_paused = true)]
async fn streams_are_paced_to_the_channel_rate() {
    let b = budgets();
    let ch = b
        .set_budget(Budget::bandwidth("copy", 100_000.0).burst(10_000))
        .unwrap();
    let (client, mut server) = tokio::io::duplex(1 << 20);
    let mut writer = b.limit_stream(ch, client);
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.unwrap();
        got.len()
    });
    let t0 = tokio::time::Instant::now();
    let chunk = vec![7u8; 8192];
    for _ in 0..122 {
        writer.write_all(&chunk).await.unwrap(); // ~1 MB in total
    }
    writer.shutdown().await.unwrap();
    drop(writer);
    assert_eq!(reader.await.unwrap(), 122 * 8192);
    let secs = t0.elapsed().as_secs_f64();
    let expected = (122.0 * 8192.0 - 10_000.0) / 100_000.0;
    assert!(
        (secs - expected).abs() < 0.2,
        "took {secs:.2} s, expected about {expected:.2} s"
    );
}

#[tokio::test(start_paused = true)]
async fn reads_are_paced_too() {
    let b = budgets();
    let ch = b
        .set_budget(Budget::bandwidth("ingress", 50_000.0).burst(5_000))
        .unwrap();
    let data = vec![1u8; 100_000];
    let mut reader = b.limit_stream(ch, &data[..]);
    let t0 = tokio::time::Instant::now();
    let mut out = Vec::new();
    reader.read_to_end(&mut out).await.unwrap();
    assert_eq!(out.len(), 100_000);
    let secs = t0.elapsed().as_secs_f64();
    assert!((1.5..2.5).contains(&secs), "took {secs:.2} s");
}

#[tokio::test(start_paused = true)]
async fn one_huge_write_is_paced_not_failed() {
    let b = budgets();
    let ch = b
        .set_budget(Budget::bandwidth("bulk", 10_000.0).burst(1_000))
        .unwrap();
    let (client, _server) = tokio::io::duplex(1 << 20);
    let mut writer = b.limit_stream(ch, client);
    let t0 = tokio::time::Instant::now();
    writer.write_all(&vec![0u8; 100_000]).await.unwrap();
    assert_eq!(
        t0.elapsed(),
        Duration::ZERO,
        "the first write goes out at once"
    );
    writer.write_all(b"next").await.unwrap();
    let secs = t0.elapsed().as_secs_f64();
    assert!(
        (secs - 9.9).abs() < 0.01,
        "the next write waited {secs:.3} s"
    );
}
