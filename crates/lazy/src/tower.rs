//! A tower layer feeding an [`IdleDetector`]: each request counts as in flight from `call`
//! until its response future completes (or is dropped).

use crate::idle::{ActivityGuard, IdleDetector};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Wraps services in [`IdleService`].
///
/// ```
/// use perfkit_lazy::{IdleDetector, IdleLayer};
/// use std::time::Duration;
/// use tower_layer::Layer;
///
/// let idle = IdleDetector::new(Duration::from_secs(30));
/// // Wrap the application's service (here a placeholder) so that its requests count.
/// let app = ();
/// let _service = IdleLayer::new(idle.clone()).layer(app);
/// assert_eq!(idle.in_flight(), 0);
/// ```
#[derive(Debug, Clone)]
pub struct IdleLayer {
    detector: IdleDetector,
}

impl IdleLayer {
    /// A layer reporting to `detector`.
    pub fn new(detector: IdleDetector) -> Self {
        IdleLayer { detector }
    }
}

impl<S> tower_layer::Layer<S> for IdleLayer {
    type Service = IdleService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        IdleService {
            inner,
            detector: self.detector.clone(),
        }
    }
}

/// A service that marks its requests in flight for an [`IdleDetector`].
#[derive(Debug, Clone)]
pub struct IdleService<S> {
    inner: S,
    detector: IdleDetector,
}

impl<S, Req> tower_service::Service<Req> for IdleService<S>
where
    S: tower_service::Service<Req>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = IdleFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let guard = self.detector.begin();
        IdleFuture {
            inner: self.inner.call(req),
            guard: Some(guard),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`IdleService`].
    #[derive(Debug)]
    pub struct IdleFuture<F> {
        #[pin]
        inner: F,
        guard: Option<ActivityGuard>,
    }
}

impl<F: Future> Future for IdleFuture<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let out = this.inner.poll(cx);
        if out.is_ready() {
            this.guard.take();
        }
        out
    }
}
