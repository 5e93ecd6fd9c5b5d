//! The tower layers inside an axum router (feature `tower`).
#![cfg(feature = "tower")]

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use perfkit_budget::tower::{BudgetLayer, HttpBudgetLayer, Overloaded};
use perfkit_budget::{Budget, Budgets, Resource};
use perfkit_core::ManualClock;
use std::time::Duration;
use tower::{Service, ServiceBuilder, ServiceExt};

fn request() -> http::Request<Body> {
    http::Request::builder()
        .uri("/")
        .body(Body::empty())
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn axum_router_answers_503_with_retry_after_over_budget() {
    let clock = ManualClock::new();
    let budgets = Budgets::builder().clock(clock.shared()).build().unwrap();
    let mem = budgets
        .set_budget(
            Budget::memory(1000)
                .throttle_delay(Duration::from_millis(40))
                .retry_after(Duration::from_millis(2500)),
        )
        .unwrap();
    let app = Router::new()
        .route("/", get(|| async { "hello" }))
        .layer(HttpBudgetLayer::new(budgets.clone(), [mem]).max_delay(Duration::from_millis(30)));

    let res = app.clone().oneshot(request()).await.unwrap();
    assert_eq!(res.status(), 200);

    budgets.set_usage(mem, 1200);
    let res = app.clone().oneshot(request()).await.unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["retry-after"], "3");

    // Throttle: delayed by the decision's delay, capped by max_delay, then served.
    budgets.set_usage(mem, 920);
    let t0 = tokio::time::Instant::now();
    let res = app.clone().oneshot(request()).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(t0.elapsed(), Duration::from_millis(30));

    budgets.set_usage(mem, 100);
    let t0 = tokio::time::Instant::now();
    let res = app.oneshot(request()).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(t0.elapsed(), Duration::ZERO);
}

#[tokio::test]
async fn generic_services_get_a_typed_overload_error() {
    let budgets = Budgets::new();
    budgets.set_budget(Budget::memory(10)).unwrap();
    let mut svc = ServiceBuilder::new()
        .layer(BudgetLayer::new(budgets.clone(), [Resource::MEMORY]))
        .service_fn(|x: u32| async move { Ok::<_, std::convert::Infallible>(x * 2) });
    assert_eq!(svc.ready().await.unwrap().call(21).await.unwrap(), 42);
    budgets.set_usage(Resource::MEMORY, 10);
    let err = svc.ready().await.unwrap().call(1).await.unwrap_err();
    let overloaded = err.downcast_ref::<Overloaded>().expect("typed error");
    assert_eq!(overloaded.retry_after, Duration::from_secs(1));
}
