//! perfkit-profiler in an axum service: one layer in the subscriber, a root span per
//! request that continues the caller's W3C `traceparent`, and endpoints that serve the
//! profiler's statistics, suggestions and folded stacks.
//!
//! ```text
//! cargo run -p perfkit-profiler --example axum_service
//! curl localhost:3000/orders; curl localhost:3000/profile/summary
//! curl localhost:3000/profile/suggestions; curl localhost:3000/profile/folded
//! ```
//!
//! With `--requests N` it serves on a free loopback port, sends itself N requests, prints
//! the summary and saves `axum-profile.json` (usable with `perfkit profile`), then exits.

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use perfkit_profiler::Profiler;
use std::time::Duration;
use tracing::{Instrument, info_span};
use tracing_subscriber::layer::SubscriberExt;

/// Wraps every request in a root span; the decision to sample is made there.
async fn trace_requests(request: Request, next: Next) -> Response {
    let traceparent = request
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let span = info_span!(
        "request",
        method = %request.method(),
        route = %request.uri().path(),
        traceparent = traceparent.as_deref(),
    );
    next.run(request).instrument(span).await
}

/// An N+1 handler, as found in the wild: one query per item.
async fn orders() -> impl IntoResponse {
    let mut rows = Vec::new();
    for item in 0..6u32 {
        async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            rows.push(format!("item {item}"));
        }
        .instrument(info_span!("db.query", table = "order_items", item))
        .await;
    }
    rows.join("\n")
}

async fn summary(State(p): State<Profiler>) -> impl IntoResponse {
    Json(p.summary())
}

async fn suggestions(State(p): State<Profiler>) -> impl IntoResponse {
    Json(p.suggestions())
}

async fn folded(State(p): State<Profiler>) -> impl IntoResponse {
    p.folded()
}

fn app(profiler: Profiler) -> Router {
    Router::new()
        .route("/orders", get(orders))
        .route("/profile/summary", get(summary))
        .route("/profile/suggestions", get(suggestions))
        .route("/profile/folded", get(folded))
        .layer(middleware::from_fn(trace_requests))
        .with_state(profiler)
}

/// Sends `n` plain HTTP/1.1 GETs to `addr` (enough for a self-contained demo run).
async fn drive(addr: std::net::SocketAddr, n: u32) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    for _ in 0..n {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(b"GET /orders HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await?;
        let mut sink = Vec::new();
        s.read_to_end(&mut sink).await?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Sample every request in this example; a production service keeps the default 0.1.
    let profiler = Profiler::builder().sample_rate(1.0).build()?;
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(profiler.layer()))?;
    let requests: Option<u32> = std::env::args()
        .skip_while(|a| a != "--requests")
        .nth(1)
        .and_then(|n| n.parse().ok());
    let bind = if requests.is_some() {
        "127.0.0.1:0"
    } else {
        "127.0.0.1:3000"
    };
    let listener = tokio::net::TcpListener::bind(bind).await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(axum::serve(listener, app(profiler.clone())).into_future());
    match requests {
        None => {
            println!("listening on http://{addr}");
            server.await??;
        }
        Some(n) => {
            drive(addr, n).await?;
            server.abort();
            for s in profiler.summary().spans.iter().take(5) {
                println!(
                    "{:12} n={:5} p50={:>8.3} ms",
                    s.name,
                    s.count,
                    s.p50_ns as f64 / 1e6
                );
            }
            for s in profiler.suggestions() {
                println!("suggestion [{}]: {}", s.kind.as_str(), s.message);
            }
            profiler.save("axum-profile.json")?;
        }
    }
    Ok(())
}
