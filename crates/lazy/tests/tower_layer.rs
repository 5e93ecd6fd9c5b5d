//! The tower layer feeds the idle detector (feature `tower`).
#![cfg(feature = "tower")]

use perfkit_lazy::{IdleDetector, IdleLayer};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tower_layer::Layer;
use tower_service::Service;

struct Slow;

impl Service<u64> for Slow {
    type Response = u64;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<u64, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, ms: u64) -> Self::Future {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(ms)
        })
    }
}

#[tokio::test(start_paused = true)]
async fn requests_count_as_in_flight_until_their_response() {
    let idle = IdleDetector::new(Duration::from_secs(1));
    let mut service = IdleLayer::new(idle.clone()).layer(Slow);
    let a = service.call(100);
    let b = service.call(300);
    assert_eq!(idle.in_flight(), 2);
    assert!(!idle.is_idle());
    let a = tokio::spawn(a);
    let b = tokio::spawn(b);
    assert_eq!(a.await.unwrap().unwrap(), 100);
    assert_eq!(idle.in_flight(), 1);
    drop(b); // a detached task still runs to completion
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(idle.in_flight(), 0);
    assert!(!idle.is_idle());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(idle.is_idle());
    // A dropped response future ends the request too.
    let dropped = service.call(10);
    assert_eq!(idle.in_flight(), 1);
    drop(dropped);
    assert_eq!(idle.in_flight(), 0);
}
