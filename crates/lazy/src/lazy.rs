//! [`Lazy<T>`]: one asynchronously loaded value, loaded once by a single flight, retried
//! with exponential backoff and jitter when it fails, with a timeout per attempt.

use crate::clock::TokioClock;
use crate::error::{AttemptError, BoxError, LazyError, LazyErrorKind};
use crate::retry::RetryPolicy;
use crate::state::{LazyEvent, LazyMetrics, LoadState, LoadTrigger};
use parking_lot::Mutex;
use perfkit_core::{Callbacks, SharedClock};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::Waker;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

type LoadFuture<T> = Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send + 'static>>;
type LoaderFn<T> = Arc<dyn Fn() -> LoadFuture<T> + Send + Sync + 'static>;
type Weigher<T> = Arc<dyn Fn(&T) -> u64 + Send + Sync + 'static>;

/// Counters shared by every generation of a resource (a registry's unload makes a new one).
#[derive(Debug, Default)]
struct Stats {
    loads_started: AtomicU64,
    loads_succeeded: AtomicU64,
    loads_failed: AtomicU64,
    attempts: AtomicU64,
    failed_attempts: AtomicU64,
    timeouts: AtomicU64,
    /// Nanoseconds plus one; 0 is "none".
    last_load_nanos: AtomicU64,
    /// Bytes plus one; 0 is "none".
    size_bytes: AtomicU64,
    unloads: AtomicU64,
}

impl Stats {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> LazyMetrics {
        let opt = |v: u64| v.checked_sub(1);
        LazyMetrics {
            loads_started: self.loads_started.load(Ordering::Relaxed),
            loads_succeeded: self.loads_succeeded.load(Ordering::Relaxed),
            loads_failed: self.loads_failed.load(Ordering::Relaxed),
            attempts: self.attempts.load(Ordering::Relaxed),
            failed_attempts: self.failed_attempts.load(Ordering::Relaxed),
            timeouts: self.timeouts.load(Ordering::Relaxed),
            last_load_time: opt(self.last_load_nanos.load(Ordering::Relaxed))
                .map(Duration::from_nanos),
            size_bytes: opt(self.size_bytes.load(Ordering::Relaxed)),
            unloads: self.unloads.load(Ordering::Relaxed),
        }
    }
}

/// What every generation of a resource shares: name, loader, policy, clock, counters.
struct Shared<T> {
    name: String,
    loader: LoaderFn<T>,
    retry: RetryPolicy,
    attempt_timeout: Option<Duration>,
    clock: SharedClock,
    weigher: Option<Weigher<T>>,
    runtime: Option<tokio::runtime::Handle>,
    stats: Stats,
    events: Callbacks<LazyEvent>,
}

enum Slow {
    NotLoaded,
    Loading {
        started: Instant,
        attempt: u32,
        next_retry: Option<Instant>,
        trigger: LoadTrigger,
        /// Identifies this load (1, 2, ...), so that a waiter knows whether a failure it
        /// sees is the outcome of the load it waited for.
        id: u64,
        /// Wakers of the callers waiting for this load, woken when it ends.
        waiters: Vec<Waker>,
    },
    Loaded {
        load_time: Duration,
        attempts: u32,
        trigger: LoadTrigger,
    },
    Failed {
        error: LazyError,
        attempts: u32,
        next_retry: Instant,
        /// The load that failed.
        id: u64,
    },
}

impl Slow {
    /// Leaves the loading state for `next`, returning the waiters to wake (after unlocking).
    fn finish(&mut self, next: Slow) -> Vec<Waker> {
        match std::mem::replace(self, next) {
            Slow::Loading { waiters, .. } => waiters,
            _ => Vec::new(),
        }
    }

    fn load_id(&self) -> u64 {
        match self {
            Slow::Loading { id, .. } | Slow::Failed { id, .. } => *id,
            _ => 0,
        }
    }
}

fn wake_all(waiters: Vec<Waker>) {
    for waker in waiters {
        waker.wake();
    }
}

struct Inner<T> {
    /// The fast path: set once, read with one acquire load (as `tokio::sync::OnceCell`),
    /// the value inline (no further pointer to follow).
    value: OnceLock<T>,
    slow: Mutex<Slow>,
    /// Loads started on this generation (the id of the last one).
    loads: AtomicU64,
    shared: Arc<Shared<T>>,
}

/// A value loaded asynchronously on first use or by a preload, at most one load at a time.
///
/// - `get().await` returns a shared reference to the value (`&T`); [`Lazy::handle`] an owned,
///   shared [`Handle`]. Once loaded, `get` is one atomic load, as
///   `tokio::sync::OnceCell::get`, and the value is stored inline.
/// - Any number of concurrent callers cause one load (single flight). The load runs in a
///   spawned task: a caller that drops its future cancels nothing for the others.
/// - A failing attempt is retried with exponential backoff and jitter ([`RetryPolicy`]);
///   each attempt can have a timeout. After the last attempt the failure is returned, and
///   kept only for the policy's cooldown.
///
/// Cheap to clone: clones share the value.
///
/// ```
/// use perfkit_lazy::Lazy;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let model = Lazy::new("model", || async { Ok::<_, std::io::Error>(vec![0.5f32; 1024]) });
/// assert_eq!(model.state().name(), "not_loaded");
/// let weights = model.get().await.unwrap();
/// assert_eq!(weights.len(), 1024);
/// assert_eq!(model.state().name(), "loaded");
/// # });
/// ```
pub struct Lazy<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Clone for Lazy<T> {
    fn clone(&self) -> Self {
        Lazy {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T> fmt::Debug for Lazy<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lazy")
            .field("name", &self.inner.shared.name)
            .field("loaded", &self.inner.value.get().is_some())
            .finish()
    }
}

/// An owned, shared handle to a loaded value ([`Lazy::handle`], [`crate::LazyRegistry::get`]).
/// Derefs to the value; cheap to clone; keeps the value alive while held, even after a
/// registry has unloaded the resource.
pub struct Handle<T> {
    /// Always a loaded generation: handles are made only once the value is set, and a set
    /// value is never taken out.
    inner: Arc<Inner<T>>,
}

impl<T> Clone for Handle<T> {
    fn clone(&self) -> Self {
        Handle {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T> std::ops::Deref for Handle<T> {
    type Target = T;

    fn deref(&self) -> &T {
        match self.inner.value.get() {
            Some(value) => value,
            // Handles are created only for loaded generations, and `OnceLock` values are
            // never removed: this cannot happen.
            None => unreachable!("a lazy handle to an unloaded value"),
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Handle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// Options of a [`Lazy`]; see [`Lazy::builder`].
pub struct LazyBuilder<T> {
    name: String,
    retry: RetryPolicy,
    attempt_timeout: Option<Duration>,
    clock: Option<SharedClock>,
    weigher: Option<Weigher<T>>,
    runtime: Option<tokio::runtime::Handle>,
}

impl<T> fmt::Debug for LazyBuilder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LazyBuilder")
            .field("name", &self.name)
            .field("retry", &self.retry)
            .field("attempt_timeout", &self.attempt_timeout)
            .finish()
    }
}

impl<T: Send + Sync + 'static> LazyBuilder<T> {
    /// The retry policy (default: [`RetryPolicy::default`]).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// A timeout for each attempt (default: none). A timed-out attempt counts as failed.
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = Some(timeout);
        self
    }

    /// The clock for load times and retry instants (default: [`TokioClock`]).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Measures a loaded value's size in bytes, for metrics and for unloading by size.
    pub fn weigher(mut self, weigher: impl Fn(&T) -> u64 + Send + Sync + 'static) -> Self {
        self.weigher = Some(Arc::new(weigher));
        self
    }

    /// The runtime that runs loads (default: the current one at the time of the load).
    pub fn runtime(mut self, handle: tokio::runtime::Handle) -> Self {
        self.runtime = Some(handle);
        self
    }

    /// The resource, loaded by `loader` when needed.
    pub fn build<F, Fut, E>(self, loader: F) -> Lazy<T>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        E: Into<BoxError>,
    {
        let loader: LoaderFn<T> = Arc::new(move || {
            let fut = loader();
            Box::pin(async move { fut.await.map_err(Into::into) })
        });
        let shared = Arc::new(Shared {
            name: self.name,
            loader,
            retry: RetryPolicy {
                max_attempts: self.retry.max_attempts.max(1),
                ..self.retry
            },
            attempt_timeout: self.attempt_timeout,
            clock: self.clock.unwrap_or_else(TokioClock::shared),
            weigher: self.weigher,
            runtime: self.runtime,
            stats: Stats::default(),
            events: Callbacks::new(),
        });
        Lazy::from_shared(shared)
    }
}

impl<T: Send + Sync + 'static> Lazy<T> {
    /// A resource named `name` loaded by `loader`, with the default options.
    pub fn new<F, Fut, E>(name: impl Into<String>, loader: F) -> Lazy<T>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        E: Into<BoxError>,
    {
        Self::builder(name).build(loader)
    }

    /// A builder for a resource named `name`.
    pub fn builder(name: impl Into<String>) -> LazyBuilder<T> {
        LazyBuilder {
            name: name.into(),
            retry: RetryPolicy::default(),
            attempt_timeout: None,
            clock: None,
            weigher: None,
            runtime: None,
        }
    }

    fn from_shared(shared: Arc<Shared<T>>) -> Lazy<T> {
        Lazy {
            inner: Arc::new(Inner {
                value: OnceLock::new(),
                slow: Mutex::new(Slow::NotLoaded),
                loads: AtomicU64::new(0),
                shared,
            }),
        }
    }

    /// A new, unloaded generation sharing the loader, options and counters (for unloading:
    /// the old generation's value is freed when its last handle is dropped).
    pub(crate) fn fresh(&self) -> Lazy<T> {
        Stats::bump(&self.inner.shared.stats.unloads);
        Lazy::from_shared(Arc::clone(&self.inner.shared))
    }

    /// Calls `f` on every [`LazyEvent`] of this resource (from the load task, off the `get`
    /// path; a panicking callback is isolated). Kept across a registry's unloads.
    pub fn on_event(&self, f: impl Fn(&LazyEvent) + Send + Sync + 'static) {
        self.inner.shared.events.register(f);
    }

    pub(crate) fn emit(&self, event: &LazyEvent) {
        self.inner.shared.events.emit(event);
    }

    /// The resource's name.
    pub fn name(&self) -> &str {
        &self.inner.shared.name
    }

    /// The value, loading it first if needed (or waiting for the load under way).
    ///
    /// The returned future is two words and needs no drop: when the value is loaded its
    /// poll is one atomic load (as `tokio::sync::OnceCell::get`). A caller that has to wait
    /// leaves its waker with the load, which wakes it when it ends.
    #[inline]
    pub fn get(&self) -> Get<'_, T> {
        Get {
            lazy: self,
            waited: 0,
        }
    }

    /// The value if it is loaded, without waiting and without starting a load.
    #[inline]
    pub fn try_get(&self) -> Option<&T> {
        self.inner.value.get()
    }

    /// An owned handle to the value, if it is loaded.
    pub fn try_handle(&self) -> Option<Handle<T>> {
        self.is_loaded().then(|| Handle {
            inner: Arc::clone(&self.inner),
        })
    }

    /// The value as an owned, shared handle, loading it first if needed. The handle keeps
    /// the value alive after a registry unloads the resource.
    pub async fn handle(&self) -> Result<Handle<T>, LazyError> {
        self.get().await?;
        Ok(Handle {
            inner: Arc::clone(&self.inner),
        })
    }

    /// Whether the value is loaded.
    #[inline]
    pub fn is_loaded(&self) -> bool {
        self.inner.value.get().is_some()
    }

    /// The slow path of [`Get`]: starts or joins a load, or reports its failure.
    /// `waited` is the id of the load this caller waits for (0: none yet).
    #[cold]
    #[inline(never)]
    fn poll_slow(&self, waited: &mut u64, cx: &mut Context<'_>) -> Poll<Result<&T, LazyError>> {
        let mut slow = self.inner.slow.lock();
        if let Some(value) = self.inner.value.get() {
            return Poll::Ready(Ok(value));
        }
        match &mut *slow {
            Slow::Loading { id, waiters, .. } => {
                *waited = *id;
                if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
                    waiters.push(cx.waker().clone());
                }
                return Poll::Pending;
            }
            // The load this caller waited for (or a later one) failed: its outcome.
            Slow::Failed { error, id, .. } if *waited != 0 && *waited <= *id => {
                return Poll::Ready(Err(error.clone()));
            }
            // A recent failure: returned at once during the cooldown.
            Slow::Failed {
                error, next_retry, ..
            } if self.now() < *next_retry => return Poll::Ready(Err(error.clone())),
            _ => {}
        }
        match self.start_locked(&mut slow, LoadTrigger::FirstUse) {
            Ok(id) => {
                *waited = id;
                if let Slow::Loading { waiters, .. } = &mut *slow {
                    waiters.push(cx.waker().clone());
                }
                Poll::Pending
            }
            Err(error) => Poll::Ready(Err(error)),
        }
    }

    /// Starts a load in the background unless the value is loaded, a load is under way, or
    /// the last failure's cooldown is running. Returns whether a load was started.
    /// Without a tokio runtime (and no runtime handle in the builder) nothing starts.
    pub fn preload(&self) -> bool {
        let mut slow = self.inner.slow.lock();
        if self.inner.value.get().is_some() {
            return false;
        }
        match &*slow {
            Slow::Loading { .. } | Slow::Loaded { .. } => false,
            Slow::Failed { next_retry, .. } if self.now() < *next_retry => false,
            _ => self.start_locked(&mut slow, LoadTrigger::Preload).is_ok(),
        }
    }

    /// The current state.
    pub fn state(&self) -> LoadState {
        let now = self.now();
        match &*self.inner.slow.lock() {
            Slow::NotLoaded => LoadState::NotLoaded,
            Slow::Loading {
                started,
                attempt,
                next_retry,
                trigger,
                ..
            } => LoadState::Loading {
                attempt: (*attempt).max(1),
                elapsed: now.saturating_duration_since(*started),
                next_retry_in: next_retry.map(|at| at.saturating_duration_since(now)),
                trigger: *trigger,
            },
            Slow::Loaded {
                load_time,
                attempts,
                trigger,
            } => LoadState::Loaded {
                load_time: *load_time,
                attempts: *attempts,
                trigger: *trigger,
            },
            Slow::Failed {
                error,
                attempts,
                next_retry,
                ..
            } => LoadState::Failed {
                error: error.full_message(),
                attempts: *attempts,
                next_retry_in: next_retry.saturating_duration_since(now),
            },
        }
    }

    /// Counters of this resource (kept across a registry's unloads).
    pub fn metrics(&self) -> LazyMetrics {
        self.inner.shared.stats.snapshot()
    }

    fn now(&self) -> Instant {
        self.inner.shared.clock.now()
    }

    fn start_locked(&self, slow: &mut Slow, trigger: LoadTrigger) -> Result<u64, LazyError> {
        let shared = &self.inner.shared;
        let handle = match &shared.runtime {
            Some(handle) => handle.clone(),
            None => tokio::runtime::Handle::try_current().map_err(|_| {
                LazyError::from(LazyErrorKind::NoRuntime {
                    name: shared.name.clone(),
                })
            })?,
        };
        let id = self.inner.loads.fetch_add(1, Ordering::Relaxed) + 1;
        *slow = Slow::Loading {
            started: self.now(),
            attempt: 0,
            next_retry: None,
            trigger,
            id,
            waiters: Vec::new(),
        };
        Stats::bump(&shared.stats.loads_started);
        handle.spawn(run_load(Arc::clone(&self.inner)));
        Ok(id)
    }
}

/// The future of [`Lazy::get`].
#[must_use = "futures do nothing unless awaited"]
pub struct Get<'a, T> {
    lazy: &'a Lazy<T>,
    /// The id of the load this caller waits for (0: none yet).
    waited: u64,
}

impl<T> fmt::Debug for Get<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Get")
            .field("resource", &self.lazy.inner.shared.name)
            .field("waited_load", &self.waited)
            .finish()
    }
}

impl<'a, T: Send + Sync + 'static> Future for Get<'a, T> {
    type Output = Result<&'a T, LazyError>;

    #[inline(always)]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let lazy: &'a Lazy<T> = self.lazy;
        match lazy.inner.value.get() {
            Some(value) => Poll::Ready(Ok(value)),
            None => {
                // `waited` goes by value and comes back, rather than by reference: the
                // future's address then does not escape on the fast path, so the compiler
                // keeps it in registers (no stores to make it at every call).
                let mut waited = self.waited;
                let poll = lazy.poll_slow(&mut waited, cx);
                self.waited = waited;
                poll
            }
        }
    }
}

/// Marks the load as aborted if its task ends without a result (panic, runtime shutdown).
struct LoadGuard<T> {
    inner: Arc<Inner<T>>,
    done: bool,
}

impl<T> Drop for LoadGuard<T> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let shared = &self.inner.shared;
        let mut slow = self.inner.slow.lock();
        if let Slow::Loading { attempt, id, .. } = &*slow {
            let next = Slow::Failed {
                error: LazyErrorKind::Aborted {
                    name: shared.name.clone(),
                }
                .into(),
                attempts: *attempt,
                next_retry: shared.clock.now(),
                id: *id,
            };
            let waiters = slow.finish(next);
            drop(slow);
            Stats::bump(&shared.stats.loads_failed);
            wake_all(waiters);
        }
    }
}

async fn run_load<T: Send + Sync + 'static>(inner: Arc<Inner<T>>) {
    let mut guard = LoadGuard {
        inner: Arc::clone(&inner),
        done: false,
    };
    let shared = Arc::clone(&inner.shared);
    let stats = &shared.stats;
    let started = shared.clock.now();
    let mut delays = shared.retry.delays();
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        if let Slow::Loading {
            attempt: a,
            next_retry,
            ..
        } = &mut *inner.slow.lock()
        {
            *a = attempt;
            *next_retry = None;
        }
        Stats::bump(&stats.attempts);
        let load = (shared.loader)();
        let result = match shared.attempt_timeout {
            Some(limit) => match tokio::time::timeout(limit, load).await {
                Ok(r) => r.map_err(|e| AttemptError::Loader(Arc::from(e))),
                Err(_) => {
                    Stats::bump(&stats.timeouts);
                    Err(AttemptError::TimedOut(limit))
                }
            },
            None => load.await.map_err(|e| AttemptError::Loader(Arc::from(e))),
        };
        match result {
            Ok(value) => {
                let load_time = shared.clock.now().saturating_duration_since(started);
                if let Some(weigher) = &shared.weigher {
                    let size = weigher(&value);
                    stats
                        .size_bytes
                        .store(size.saturating_add(1), Ordering::Relaxed);
                }
                let waiters = {
                    let mut slow = inner.slow.lock();
                    let trigger = match &*slow {
                        Slow::Loading { trigger, .. } => *trigger,
                        _ => LoadTrigger::FirstUse,
                    };
                    let _ = inner.value.set(value);
                    slow.finish(Slow::Loaded {
                        load_time,
                        attempts: attempt,
                        trigger,
                    })
                };
                let nanos = u64::try_from(load_time.as_nanos()).unwrap_or(u64::MAX - 1);
                stats.last_load_nanos.store(nanos + 1, Ordering::Relaxed);
                Stats::bump(&stats.loads_succeeded);
                guard.done = true;
                shared.events.emit(&LazyEvent::Loaded {
                    name: shared.name.clone(),
                    load_time,
                    attempts: attempt,
                    size_bytes: shared
                        .weigher
                        .as_ref()
                        .and_then(|_| stats.size_bytes.load(Ordering::Relaxed).checked_sub(1)),
                });
                tracing::debug!(target: "perfkit::lazy", resource = %shared.name, attempts = attempt, load_secs = load_time.as_secs_f64(), "loaded");
                wake_all(waiters);
                return;
            }
            Err(err) => {
                Stats::bump(&stats.failed_attempts);
                match delays.next() {
                    Some(delay) if attempt < shared.retry.max_attempts => {
                        tracing::warn!(target: "perfkit::lazy", resource = %shared.name, attempt, error = %err, retry_in_secs = delay.as_secs_f64(), "load attempt failed; retrying");
                        if let Slow::Loading { next_retry, .. } = &mut *inner.slow.lock() {
                            *next_retry = Some(shared.clock.now() + delay);
                        }
                        shared.events.emit(&LazyEvent::Retrying {
                            name: shared.name.clone(),
                            attempt,
                            error: err.to_string(),
                            delay,
                        });
                        tokio::time::sleep(delay).await;
                    }
                    _ => {
                        tracing::warn!(target: "perfkit::lazy", resource = %shared.name, attempts = attempt, error = %err, "load failed");
                        let error = LazyError::from(LazyErrorKind::Failed {
                            name: shared.name.clone(),
                            attempts: attempt,
                            last: err,
                        });
                        let waiters = {
                            let mut slow = inner.slow.lock();
                            let id = slow.load_id();
                            slow.finish(Slow::Failed {
                                error: error.clone(),
                                attempts: attempt,
                                next_retry: shared.clock.now() + shared.retry.cooldown,
                                id,
                            })
                        };
                        Stats::bump(&stats.loads_failed);
                        guard.done = true;
                        shared.events.emit(&LazyEvent::Failed {
                            name: shared.name.clone(),
                            error: error.full_message(),
                        });
                        wake_all(waiters);
                        return;
                    }
                }
            }
        }
    }
}
