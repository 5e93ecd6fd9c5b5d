//! Cache warming: named strategies with a priority, a source of keys and a loader, run in
//! the background by priority with bounded concurrency; progress, cancellation, and a pause
//! while a caller-given predicate says memory is under pressure (wire it to a memory
//! budget's throttling state: this crate does not depend on perfkit-budget).

use super::cache::TieredCache;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;
type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
type KeySource<K> = Arc<dyn Fn() -> BoxFuture<Vec<K>> + Send + Sync>;
type Loader<K, V> = Arc<dyn Fn(K) -> BoxFuture<Result<V, BoxError>> + Send + Sync>;
type Predicate = Arc<dyn Fn() -> bool + Send + Sync>;

/// One warming strategy.
pub struct WarmStrategy<K, V> {
    name: String,
    priority: i32,
    keys: KeySource<K>,
    loader: Loader<K, V>,
}

impl<K, V> WarmStrategy<K, V> {
    /// A strategy named `name`; higher `priority` runs first. `keys` lists the keys to
    /// warm; `loader` loads one (it runs only for keys no tier has).
    pub fn new<KF, KFut, LF, LFut, E>(name: &str, priority: i32, keys: KF, loader: LF) -> Self
    where
        KF: Fn() -> KFut + Send + Sync + 'static,
        KFut: Future<Output = Vec<K>> + Send + 'static,
        LF: Fn(K) -> LFut + Send + Sync + 'static,
        LFut: Future<Output = Result<V, E>> + Send + 'static,
        E: Into<BoxError> + 'static,
    {
        let loader = Arc::new(loader);
        WarmStrategy {
            name: name.to_owned(),
            priority,
            keys: Arc::new(move || Box::pin(keys())),
            loader: Arc::new(move |k| {
                let fut = loader(k);
                Box::pin(async move { fut.await.map_err(Into::into) })
            }),
        }
    }
}

/// Where warming stands.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WarmProgress {
    /// The strategy running now (empty before the first and after the last).
    pub strategy: String,
    /// Strategies finished.
    pub strategies_done: u64,
    /// Keys listed so far by the strategies started.
    pub keys_total: u64,
    /// Keys warmed (loaded, or already present).
    pub keys_done: u64,
    /// Keys whose loader failed.
    pub keys_failed: u64,
    /// Whether warming is paused by memory pressure right now.
    pub paused: bool,
    /// Whether it was cancelled.
    pub cancelled: bool,
    /// Whether it finished (completed or cancelled).
    pub finished: bool,
}

#[derive(Debug, Default)]
struct Shared {
    strategy: Mutex<String>,
    strategies_done: AtomicU64,
    total: AtomicU64,
    done: AtomicU64,
    failed: AtomicU64,
    paused: AtomicBool,
    cancelled: AtomicBool,
    finished: AtomicBool,
    cancel: tokio::sync::Notify,
}

/// Configures and starts warming of a [`TieredCache`].
pub struct Warmer<K, V> {
    cache: TieredCache<K, V>,
    strategies: Vec<WarmStrategy<K, V>>,
    concurrency: usize,
    pause_when: Option<Predicate>,
    pause_poll: Duration,
}

impl<K, V> TieredCache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// A warmer for this cache (4 keys at a time, no pause predicate).
    pub fn warmer(&self) -> Warmer<K, V> {
        Warmer {
            cache: self.clone(),
            strategies: Vec::new(),
            concurrency: 4,
            pause_when: None,
            pause_poll: Duration::from_millis(50),
        }
    }
}

impl<K, V> Warmer<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Adds a strategy.
    pub fn strategy(mut self, strategy: WarmStrategy<K, V>) -> Self {
        self.strategies.push(strategy);
        self
    }

    /// How many keys load at the same time (at least 1).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Pauses warming while `under_pressure()` is true, checking every `poll`. Wire it to
    /// a memory budget: `move || budget.is_throttling()`.
    pub fn pause_when(
        mut self,
        under_pressure: impl Fn() -> bool + Send + Sync + 'static,
        poll: Duration,
    ) -> Self {
        self.pause_when = Some(Arc::new(under_pressure));
        self.pause_poll = poll.max(Duration::from_millis(1));
        self
    }

    /// Starts warming in the background (on the current tokio runtime), strategies by
    /// descending priority. Dropping the handle cancels it; see [`WarmHandle::detach`].
    pub fn warm(mut self) -> WarmHandle {
        self.strategies
            .sort_by_key(|s| std::cmp::Reverse(s.priority));
        let shared = Arc::new(Shared::default());
        let task = tokio::spawn(run(self, Arc::clone(&shared)));
        WarmHandle {
            shared,
            task: Some(task),
            cancel_on_drop: true,
        }
    }
}

async fn run<K, V>(warmer: Warmer<K, V>, shared: Arc<Shared>)
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    let semaphore = Arc::new(tokio::sync::Semaphore::new(warmer.concurrency));
    let mut stop = false;
    for strategy in &warmer.strategies {
        *shared.strategy.lock() = strategy.name.clone();
        let keys = (strategy.keys)().await;
        shared.total.fetch_add(keys.len() as u64, Ordering::Relaxed);
        let mut tasks = tokio::task::JoinSet::new();
        for key in keys {
            if !wait_while_paused(&warmer, &shared).await {
                stop = true;
                break;
            }
            let permit = tokio::select! {
                p = Arc::clone(&semaphore).acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => { stop = true; break; }
                },
                () = shared.cancel.notified() => { stop = true; break; }
            };
            let (cache, loader, shared) = (
                warmer.cache.clone(),
                Arc::clone(&strategy.loader),
                Arc::clone(&shared),
            );
            tasks.spawn(async move {
                let k = key.clone();
                let result = cache.get_with(&key, move || loader(k)).await;
                match result {
                    Ok(_) => shared.done.fetch_add(1, Ordering::Relaxed),
                    Err(_) => shared.failed.fetch_add(1, Ordering::Relaxed),
                };
                drop(permit);
            });
            while tasks.try_join_next().is_some() {}
        }
        // Loads in flight finish (also after a cancel): their callers may be waiting too.
        while tasks.join_next().await.is_some() {}
        if stop {
            break;
        }
        shared.strategies_done.fetch_add(1, Ordering::Relaxed);
    }
    shared.strategy.lock().clear();
    shared.paused.store(false, Ordering::Relaxed);
    shared.finished.store(true, Ordering::Release);
}

/// Waits while the pause predicate holds; `false` when cancelled.
async fn wait_while_paused<K, V>(warmer: &Warmer<K, V>, shared: &Shared) -> bool {
    loop {
        if shared.cancelled.load(Ordering::Acquire) {
            return false;
        }
        let paused = warmer.pause_when.as_ref().is_some_and(|p| p());
        shared.paused.store(paused, Ordering::Relaxed);
        if !paused {
            return true;
        }
        tokio::select! {
            () = tokio::time::sleep(warmer.pause_poll) => {}
            () = shared.cancel.notified() => return false,
        }
    }
}

/// A running warm-up.
#[derive(Debug)]
pub struct WarmHandle {
    shared: Arc<Shared>,
    task: Option<tokio::task::JoinHandle<()>>,
    cancel_on_drop: bool,
}

impl WarmHandle {
    /// Where it stands.
    pub fn progress(&self) -> WarmProgress {
        let s = &self.shared;
        WarmProgress {
            strategy: s.strategy.lock().clone(),
            strategies_done: s.strategies_done.load(Ordering::Relaxed),
            keys_total: s.total.load(Ordering::Relaxed),
            keys_done: s.done.load(Ordering::Relaxed),
            keys_failed: s.failed.load(Ordering::Relaxed),
            paused: s.paused.load(Ordering::Relaxed),
            cancelled: s.cancelled.load(Ordering::Relaxed),
            finished: s.finished.load(Ordering::Acquire),
        }
    }

    /// Stops starting new keys (loads in flight finish).
    pub fn cancel(&self) {
        self.shared.cancelled.store(true, Ordering::Release);
        self.shared.cancel.notify_waiters();
        self.shared.cancel.notify_one();
    }

    /// Waits until warming finished (or was cancelled) and returns the final progress.
    pub async fn wait(mut self) -> WarmProgress {
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.progress()
    }

    /// Lets warming run to completion even when the handle is dropped.
    pub fn detach(mut self) {
        self.cancel_on_drop = false;
    }
}

impl Drop for WarmHandle {
    fn drop(&mut self) {
        if self.cancel_on_drop && self.task.is_some() {
            self.cancel();
        }
    }
}
