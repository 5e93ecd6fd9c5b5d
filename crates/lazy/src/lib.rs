//! # perfkit-lazy
//!
//! Async lazy resources with preload strategies, retries and timeouts; and preload hints
//! for web front ends.
//!
//! - [`Lazy<T>`]: a value loaded once, on first use or by a preload. Single flight (any
//!   number of concurrent callers cause one load, run in a spawned task so that a caller
//!   dropping its future cancels nothing), retries with exponential backoff and jitter
//!   ([`RetryPolicy`], delays computed by `backon`), a timeout per attempt, a failure kept
//!   only for a cooldown, and states ([`LoadState`]). `get().await` gives `&T`,
//!   [`Lazy::handle`] an owned, shared [`Handle`]; once loaded, `get` checks one atomic, as
//!   `tokio::sync::OnceCell::get` does, and [`Lazy::try_get`] is the synchronous fast path.
//! - [`LazyRegistry`]: resources by name with a [`Preload`] strategy (eager, idle, delay, on
//!   signal, on first use), `get` by name returning a [`Handle`], metrics (load time,
//!   attempts, failures, size by a weigher), and
//!   unloading of unused resources or, least recently used first, from a memory budget's
//!   cleanup callback ([`LazyRegistry::unload_hook`]).
//! - [`IdleDetector`]: idle when no request is in flight for a while and the CPU is low
//!   ([`CpuProbe`]); fed by [`IdleDetector::begin`], [`IdleDetector::record_activity`], or the
//!   tower layer `IdleLayer` (feature `tower`).
//! - [`hints`]: the tags a backend renders for a page from a Vite manifest, an esbuild
//!   metafile or webpack stats, and the `Link` header for 103 Early Hints.
//!
//! Time is read through a [`perfkit_core::Clock`]; the default, [`TokioClock`], follows
//! tokio's clock so that tests run strategies, backoff and timeouts under paused time.
//!
//! ```
//! use perfkit_lazy::{Lazy, LazyRegistry, Preload, RetryPolicy};
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let calls = Arc::new(AtomicU32::new(0));
//! let c = calls.clone();
//! // Fails once, then loads: the retry is transparent to callers.
//! let model = Lazy::builder("model")
//!     .retry(RetryPolicy { min_delay: Duration::from_millis(1), ..RetryPolicy::default() })
//!     .attempt_timeout(Duration::from_secs(5))
//!     .weigher(|w: &Vec<f32>| (w.len() * 4) as u64)
//!     .build(move || {
//!         let n = c.fetch_add(1, Ordering::SeqCst);
//!         async move {
//!             if n == 0 { Err("model store unavailable") } else { Ok(vec![0.0f32; 256]) }
//!         }
//!     });
//! let registry = LazyRegistry::new();
//! registry.register("model", Preload::OnFirstUse, model)?;
//! let weights = registry.get::<Vec<f32>>("model").await?;
//! assert_eq!(weights.len(), 256);
//! let metrics = registry.metrics("model").unwrap();
//! assert_eq!((metrics.attempts, metrics.size_bytes), (2, Some(1024)));
//! # Ok::<(), perfkit_lazy::RegistryError>(())
//! # }).unwrap();
//! ```

mod clock;
mod error;
pub mod hints;
mod idle;
mod lazy;
mod registry;
mod retry;
mod state;
mod strategy;
#[cfg(feature = "tower")]
mod tower;

pub use clock::TokioClock;
pub use error::{AttemptError, BoxError, HintError, LazyError, LazyErrorKind, RegistryError};
pub use idle::{ActivityGuard, CpuProbe, IdleDetector, IdleDetectorBuilder, ProcessCpuProbe};
pub use lazy::{Get, Handle, Lazy, LazyBuilder};
pub use registry::{
    LazyRegistry, LazyRegistryBuilder, RegistryReport, ResourceReport, UnloadOutcome,
};
pub use retry::RetryPolicy;
pub use state::{LazyEvent, LazyMetrics, LoadState, LoadTrigger};
pub use strategy::Preload;
#[cfg(feature = "tower")]
pub use tower::{IdleFuture, IdleLayer, IdleService};
