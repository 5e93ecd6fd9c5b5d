//! Tower middleware applying budget decisions per request (feature `tower`).
//!
//! - [`HttpBudgetLayer`]: for HTTP services (axum, hyper): a reject answers
//!   `503 Service Unavailable` with a `Retry-After` header, without calling the service.
//! - [`BudgetLayer`]: for any service: a reject fails with the typed [`Overloaded`] error.
//!
//! Both delay a throttled request by the decision's delay, capped by `max_delay`, before
//! passing it on, and let warn and allow through at once. Checking costs one atomic load per
//! resource.
//!
//! ```
//! use perfkit_budget::tower::HttpBudgetLayer;
//! use perfkit_budget::{Budget, Budgets, Resource};
//! use std::time::Duration;
//!
//! let budgets = Budgets::new();
//! budgets.set_budget(Budget::memory(512 << 20)).unwrap();
//! let layer = HttpBudgetLayer::new(budgets, [Resource::MEMORY])
//!     .max_delay(Duration::from_millis(50));
//! // axum: Router::new().route(...).layer(layer)
//! # let _ = layer;
//! ```

use crate::{Budgets, Decision, Resource};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tower_layer::Layer;
use tower_service::Service;

/// A boxed error, as tower middleware use.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

#[derive(Clone)]
struct Policy {
    budgets: Budgets,
    resources: Arc<[Resource]>,
    max_delay: Duration,
}

impl Policy {
    fn new(budgets: Budgets, resources: impl IntoIterator<Item = Resource>) -> Policy {
        Policy {
            budgets,
            resources: resources.into_iter().collect(),
            max_delay: Duration::from_millis(100),
        }
    }

    fn decide(&self) -> Decision {
        self.budgets.check_all(&self.resources)
    }
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("resources", &self.resources)
            .field("max_delay", &self.max_delay)
            .finish()
    }
}

/// The error of a request a budget refused ([`BudgetLayer`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("overloaded: a resource budget refused the request; retry after {retry_after:?}")]
pub struct Overloaded {
    /// When trying again makes sense.
    pub retry_after: Duration,
}

/// Applies budget decisions to any service; rejects fail with [`Overloaded`].
#[derive(Debug, Clone)]
pub struct BudgetLayer {
    policy: Policy,
}

impl BudgetLayer {
    /// A layer checking `resources` (the strictest decision wins).
    pub fn new(budgets: Budgets, resources: impl IntoIterator<Item = Resource>) -> Self {
        BudgetLayer {
            policy: Policy::new(budgets, resources),
        }
    }

    /// The longest a throttled request is delayed. Default 100 ms.
    pub fn max_delay(mut self, max: Duration) -> Self {
        self.policy.max_delay = max;
        self
    }
}

impl<S> Layer<S> for BudgetLayer {
    type Service = BudgetService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BudgetService {
            inner,
            policy: self.policy.clone(),
        }
    }
}

/// The service of [`BudgetLayer`].
#[derive(Debug, Clone)]
pub struct BudgetService<S> {
    inner: S,
    policy: Policy,
}

impl<S, Req> Service<Req> for BudgetService<S>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    Req: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxFuture<Result<S::Response, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let decision = self.policy.decide();
        let max_delay = self.policy.max_delay;
        // Take the service that was made ready, leave a clone for the next call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            match decision {
                Decision::Reject { retry_after } => {
                    return Err(Box::new(Overloaded { retry_after }) as BoxError);
                }
                Decision::Throttle { delay } => tokio::time::sleep(delay.min(max_delay)).await,
                Decision::Allow | Decision::Warn => {}
            }
            inner.call(req).await.map_err(Into::into)
        })
    }
}

/// Applies budget decisions to an HTTP service; rejects answer 503 with `Retry-After`.
#[derive(Debug, Clone)]
pub struct HttpBudgetLayer {
    policy: Policy,
}

impl HttpBudgetLayer {
    /// A layer checking `resources` (the strictest decision wins).
    pub fn new(budgets: Budgets, resources: impl IntoIterator<Item = Resource>) -> Self {
        HttpBudgetLayer {
            policy: Policy::new(budgets, resources),
        }
    }

    /// The longest a throttled request is delayed. Default 100 ms.
    pub fn max_delay(mut self, max: Duration) -> Self {
        self.policy.max_delay = max;
        self
    }
}

impl<S> Layer<S> for HttpBudgetLayer {
    type Service = HttpBudgetService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpBudgetService {
            inner,
            policy: self.policy.clone(),
        }
    }
}

/// The service of [`HttpBudgetLayer`].
#[derive(Debug, Clone)]
pub struct HttpBudgetService<S> {
    inner: S,
    policy: Policy,
}

/// The `503 Service Unavailable` answer to a rejected request, with `Retry-After` in whole
/// seconds (at least 1).
pub fn overloaded_response<B: Default>(retry_after: Duration) -> http::Response<B> {
    let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    let mut res = http::Response::new(B::default());
    *res.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
    res.headers_mut().insert(
        http::header::RETRY_AFTER,
        http::HeaderValue::from(secs.max(1)),
    );
    res
}

impl<S, ReqB, ResB> Service<http::Request<ReqB>> for HttpBudgetService<S>
where
    S: Service<http::Request<ReqB>, Response = http::Response<ResB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqB: Send + 'static,
    ResB: Default + Send + 'static,
{
    type Response = http::Response<ResB>;
    type Error = S::Error;
    type Future = BoxFuture<Result<http::Response<ResB>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqB>) -> Self::Future {
        let decision = self.policy.decide();
        let max_delay = self.policy.max_delay;
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            match decision {
                Decision::Reject { retry_after } => return Ok(overloaded_response(retry_after)),
                Decision::Throttle { delay } => tokio::time::sleep(delay.min(max_delay)).await,
                Decision::Allow | Decision::Warn => {}
            }
            inner.call(req).await
        })
    }
}
