//! [`LazyRegistry`]: lazy resources by name, each with a preload strategy, metrics, and
//! unloading of resources unused for a while or, least recently used first, on demand (the
//! hook a memory budget's cleanup callback calls).

use crate::clock::TokioClock;
use crate::error::RegistryError;
use crate::idle::IdleDetector;
use crate::lazy::{Handle, Lazy};
use crate::state::{LazyEvent, LazyMetrics, LoadState, LoadTrigger};
use crate::strategy::Preload;
use parking_lot::{Mutex, RwLock};
use perfkit_core::{Callbacks, Figure, Finding, Report, Severity, SharedClock};
use serde::Serialize;
use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// A lazy resource with its type erased.
trait ErasedLazy: Send + Sync {
    fn as_any(&self) -> &dyn Any;
    fn preload(&self) -> bool;
    fn state(&self) -> LoadState;
    fn metrics(&self) -> LazyMetrics;
    fn is_loaded(&self) -> bool;
    fn fresh(&self) -> Arc<dyn ErasedLazy>;
    fn emit(&self, event: &LazyEvent);
}

impl<T: Send + Sync + 'static> ErasedLazy for Lazy<T> {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn preload(&self) -> bool {
        Lazy::preload(self)
    }
    fn state(&self) -> LoadState {
        Lazy::state(self)
    }
    fn metrics(&self) -> LazyMetrics {
        Lazy::metrics(self)
    }
    fn is_loaded(&self) -> bool {
        Lazy::is_loaded(self)
    }
    fn fresh(&self) -> Arc<dyn ErasedLazy> {
        Arc::new(Lazy::fresh(self))
    }
    fn emit(&self, event: &LazyEvent) {
        Lazy::emit(self, event);
    }
}

struct Entry {
    strategy: Preload,
    current: RwLock<Arc<dyn ErasedLazy>>,
    /// Nanoseconds since the registry's epoch of the last `get` (or of registration).
    last_used: AtomicU64,
    gets: AtomicU64,
}

impl Entry {
    fn current(&self) -> Arc<dyn ErasedLazy> {
        Arc::clone(&self.current.read())
    }
}

struct RegInner {
    clock: SharedClock,
    epoch: Instant,
    entries: RwLock<BTreeMap<String, Arc<Entry>>>,
    idle: Option<IdleDetector>,
    unload_after: Option<Duration>,
    tick_every: Duration,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    events: Callbacks<LazyEvent>,
}

impl Drop for RegInner {
    fn drop(&mut self) {
        for task in self.tasks.get_mut().drain(..) {
            task.abort();
        }
    }
}

/// Lazy resources by name, each registered with a [`Preload`] strategy.
///
/// - `get::<T>(name)` loads on first use (single flight, retries: see [`Lazy`]).
/// - Strategies: [`Preload::Eager`] at registration, [`Preload::Delay`] after a duration,
///   [`Preload::OnSignal`] when [`LazyRegistry::signal`] fires its name, [`Preload::Idle`]
///   when the idle detector says so (checked by [`LazyRegistry::tick`], which
///   [`LazyRegistry::start`] calls periodically).
/// - Unloading: [`LazyRegistry::unload_unused`] (also done by `tick` with
///   [`LazyRegistryBuilder::unload_after`]) and [`LazyRegistry::unload_lru`], least recently
///   used first, for a memory budget's cleanup callback ([`LazyRegistry::unload_hook`]).
///
/// Cheap to clone. Background tasks stop when the last clone is dropped or on `stop`.
///
/// ```
/// use perfkit_lazy::{Lazy, LazyRegistry, Preload};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let registry = LazyRegistry::new();
/// registry.register(
///     "index",
///     Preload::on_signal("visible"),
///     Lazy::new("index", || async { Ok::<_, std::io::Error>(vec![1u32, 2, 3]) }),
/// )?;
/// assert!(!registry.is_preloaded("index"));
/// registry.signal("visible");
/// let index = registry.get::<Vec<u32>>("index").await?;
/// assert_eq!(index.len(), 3);
/// assert!(registry.is_preloaded("index"));
/// # Ok::<(), perfkit_lazy::RegistryError>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct LazyRegistry {
    inner: Arc<RegInner>,
}

impl fmt::Debug for LazyRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LazyRegistry")
            .field("resources", &self.names())
            .finish()
    }
}

impl Default for LazyRegistry {
    fn default() -> Self {
        Self::new()
    }
}

/// Options of a [`LazyRegistry`].
pub struct LazyRegistryBuilder {
    clock: Option<SharedClock>,
    idle: Option<IdleDetector>,
    unload_after: Option<Duration>,
    tick_every: Duration,
}

impl fmt::Debug for LazyRegistryBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LazyRegistryBuilder")
            .field("idle", &self.idle)
            .field("unload_after", &self.unload_after)
            .field("tick_every", &self.tick_every)
            .finish()
    }
}

impl LazyRegistryBuilder {
    /// The clock for usage times (default: [`TokioClock`]).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The idle detector that decides [`Preload::Idle`] preloads. Without one, idle
    /// resources load only on first use or through [`LazyRegistry::preload_on`].
    pub fn idle_detector(mut self, detector: IdleDetector) -> Self {
        self.idle = Some(detector);
        self
    }

    /// Unloads resources not used for this long (checked by [`LazyRegistry::tick`]).
    pub fn unload_after(mut self, unused_for: Duration) -> Self {
        self.unload_after = Some(unused_for);
        self
    }

    /// How often the background task started by [`LazyRegistry::start`] ticks (default 250 ms).
    pub fn tick_every(mut self, every: Duration) -> Self {
        self.tick_every = every.max(Duration::from_millis(1));
        self
    }

    /// The registry.
    pub fn build(self) -> LazyRegistry {
        let clock = self.clock.unwrap_or_else(TokioClock::shared);
        LazyRegistry {
            inner: Arc::new(RegInner {
                epoch: clock.now(),
                clock,
                entries: RwLock::new(BTreeMap::new()),
                idle: self.idle,
                unload_after: self.unload_after,
                tick_every: self.tick_every,
                tasks: Mutex::new(Vec::new()),
                events: Callbacks::new(),
            }),
        }
    }
}

/// What [`LazyRegistry::unload_lru`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UnloadOutcome {
    /// The resources unloaded, least recently used first.
    pub unloaded: Vec<String>,
    /// Their sizes added up, by their weighers (resources without one count 0).
    pub freed_bytes: u64,
}

impl LazyRegistry {
    /// A registry with tokio's clock, no idle detector and no automatic unloading.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder.
    pub fn builder() -> LazyRegistryBuilder {
        LazyRegistryBuilder {
            clock: None,
            idle: None,
            unload_after: None,
            tick_every: Duration::from_millis(250),
        }
    }

    fn now_nanos(&self) -> u64 {
        let since = self
            .inner
            .clock
            .now()
            .saturating_duration_since(self.inner.epoch);
        u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
    }

    fn entry(&self, name: &str) -> Result<Arc<Entry>, RegistryError> {
        self.inner
            .entries
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| RegistryError::Unknown(name.to_owned()))
    }

    /// Registers `lazy` under `name` with `strategy`, and applies an eager or delayed
    /// strategy at once (those need a tokio runtime).
    pub fn register<T: Send + Sync + 'static>(
        &self,
        name: impl Into<String>,
        strategy: Preload,
        lazy: Lazy<T>,
    ) -> Result<(), RegistryError> {
        let name = name.into();
        let events = self.inner.events.clone();
        lazy.on_event(move |event| {
            events.emit(event);
        });
        let needs_runtime = matches!(strategy, Preload::Eager | Preload::Delay(_));
        let runtime = tokio::runtime::Handle::try_current().ok();
        if needs_runtime && runtime.is_none() {
            return Err(RegistryError::NoRuntime(name));
        }
        let entry = Arc::new(Entry {
            strategy: strategy.clone(),
            current: RwLock::new(Arc::new(lazy)),
            last_used: AtomicU64::new(self.now_nanos()),
            gets: AtomicU64::new(0),
        });
        {
            let mut entries = self.inner.entries.write();
            if entries.contains_key(&name) {
                return Err(RegistryError::Duplicate(name));
            }
            entries.insert(name.clone(), Arc::clone(&entry));
        }
        match (strategy, runtime) {
            (Preload::Eager, _) => {
                entry.current().preload();
            }
            (Preload::Delay(delay), Some(runtime)) => {
                let weak: Weak<Entry> = Arc::downgrade(&entry);
                let task = runtime.spawn(async move {
                    tokio::time::sleep(delay).await;
                    if let Some(entry) = weak.upgrade() {
                        entry.current().preload();
                    }
                });
                self.inner.tasks.lock().push(task);
            }
            _ => {}
        }
        Ok(())
    }

    /// Calls `f` on every [`LazyEvent`] of every resource (loads, retries, failures,
    /// unloads). A panicking callback is isolated.
    pub fn on_event(&self, f: impl Fn(&LazyEvent) + Send + Sync + 'static) {
        self.inner.events.register(f);
    }

    /// The value of resource `name` as a shared [`Handle`], loading it if needed.
    pub async fn get<T: Send + Sync + 'static>(
        &self,
        name: &str,
    ) -> Result<Handle<T>, RegistryError> {
        let lazy = self.lazy::<T>(name)?;
        Ok(lazy.handle().await?)
    }

    /// The current generation of resource `name` as a [`Lazy`] handle, for repeated fast
    /// access. Counts as a use. An unload replaces the generation: the handle keeps the old
    /// value alive while held, and the registry's next `lazy`/`get` loads a new one.
    pub fn lazy<T: Send + Sync + 'static>(&self, name: &str) -> Result<Lazy<T>, RegistryError> {
        let entry = self.entry(name)?;
        let current = entry.current();
        let now = self.now_nanos();
        if entry.last_used.load(Ordering::Relaxed) < now {
            entry.last_used.fetch_max(now, Ordering::Relaxed);
        }
        entry.gets.fetch_add(1, Ordering::Relaxed);
        current
            .as_any()
            .downcast_ref::<Lazy<T>>()
            .cloned()
            .ok_or_else(|| RegistryError::WrongType {
                name: name.to_owned(),
                expected: std::any::type_name::<T>(),
            })
    }

    /// Starts loading resource `name` in the background. Returns whether a load started.
    pub fn preload(&self, name: &str) -> Result<bool, RegistryError> {
        Ok(self.entry(name)?.current().preload())
    }

    /// Starts loading every resource registered with `strategy` (for
    /// [`Preload::OnSignal`], those waiting for that signal). Returns how many started.
    pub fn preload_on(&self, strategy: &Preload) -> usize {
        self.matching(|s| s == strategy)
            .into_iter()
            .filter(|e| e.current().preload())
            .count()
    }

    /// Fires the signal `name` (`"interaction"`, `"visible"`): preloads the resources
    /// waiting for it. Returns how many loads started.
    pub fn signal(&self, name: &str) -> usize {
        self.matching(|s| matches!(s, Preload::OnSignal(n) if n == name))
            .into_iter()
            .filter(|e| e.current().preload())
            .count()
    }

    fn matching(&self, pred: impl Fn(&Preload) -> bool) -> Vec<Arc<Entry>> {
        self.inner
            .entries
            .read()
            .values()
            .filter(|e| pred(&e.strategy))
            .cloned()
            .collect()
    }

    /// The state of resource `name`.
    pub fn loading_state(&self, name: &str) -> Option<LoadState> {
        self.entry(name).ok().map(|e| e.current().state())
    }

    /// Whether resource `name` is loaded by a preload (rather than by its first use).
    pub fn is_preloaded(&self, name: &str) -> bool {
        matches!(
            self.loading_state(name),
            Some(LoadState::Loaded {
                trigger: LoadTrigger::Preload,
                ..
            })
        )
    }

    /// Whether resource `name` is loaded.
    pub fn is_loaded(&self, name: &str) -> bool {
        self.entry(name).is_ok_and(|e| e.current().is_loaded())
    }

    /// The counters of resource `name`.
    pub fn metrics(&self, name: &str) -> Option<LazyMetrics> {
        self.entry(name).ok().map(|e| e.current().metrics())
    }

    /// The registered names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.inner.entries.read().keys().cloned().collect()
    }

    /// Unloads resource `name` if it is loaded (or failed). Its memory is freed when the last
    /// handle to the value is dropped; the next `get` loads it again. Returns whether a
    /// loaded value was dropped from the registry.
    pub fn unload(&self, name: &str) -> Result<bool, RegistryError> {
        let entry = self.entry(name)?;
        Ok(unload_entry(name, &entry).is_some())
    }

    /// Unloads the loaded resources whose last use is at least `unused_for` ago. Returns
    /// their names.
    pub fn unload_unused(&self, unused_for: Duration) -> Vec<String> {
        let now = self.now_nanos();
        let limit = u64::try_from(unused_for.as_nanos()).unwrap_or(u64::MAX);
        let entries: Vec<(String, Arc<Entry>)> = self
            .inner
            .entries
            .read()
            .iter()
            .map(|(n, e)| (n.clone(), Arc::clone(e)))
            .collect();
        entries
            .into_iter()
            .filter(|(_, e)| now.saturating_sub(e.last_used.load(Ordering::Relaxed)) >= limit)
            .filter(|(n, e)| unload_entry(n, e).is_some())
            .map(|(n, _)| n)
            .collect()
    }

    /// Unloads loaded resources, least recently used first, until their sizes (by their
    /// weighers) add up to at least `bytes_to_free`, or none is left. With `bytes_to_free`
    /// of 0 it unloads the least recently used one. For a memory budget's cleanup callback.
    pub fn unload_lru(&self, bytes_to_free: u64) -> UnloadOutcome {
        let mut loaded: Vec<(u64, String, Arc<Entry>)> = self
            .inner
            .entries
            .read()
            .iter()
            .filter(|(_, e)| e.current().is_loaded())
            .map(|(n, e)| {
                (
                    e.last_used.load(Ordering::Relaxed),
                    n.clone(),
                    Arc::clone(e),
                )
            })
            .collect();
        loaded.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        let mut outcome = UnloadOutcome::default();
        for (_, name, entry) in loaded {
            if !outcome.unloaded.is_empty() && outcome.freed_bytes >= bytes_to_free {
                break;
            }
            if let Some(size) = unload_entry(&name, &entry) {
                outcome.freed_bytes = outcome.freed_bytes.saturating_add(size);
                outcome.unloaded.push(name);
            }
        }
        outcome
    }

    /// A callback for a memory budget's cleanup (perfkit-budget or any other): called with
    /// the bytes to free, it runs [`LazyRegistry::unload_lru`] and returns the bytes freed.
    /// It holds the registry weakly.
    pub fn unload_hook(&self) -> impl Fn(u64) -> u64 + Send + Sync + 'static + use<> {
        let weak = Arc::downgrade(&self.inner);
        move |bytes| {
            weak.upgrade().map_or(0, |inner| {
                LazyRegistry { inner }.unload_lru(bytes).freed_bytes
            })
        }
    }

    /// One round of background work: preloads [`Preload::Idle`] resources when the idle
    /// detector says the service is idle, and unloads resources unused for
    /// [`LazyRegistryBuilder::unload_after`]. Returns how many idle preloads started.
    pub fn tick(&self) -> usize {
        let started = match &self.inner.idle {
            Some(idle) => {
                let waiting = self.matching(|s| *s == Preload::Idle);
                let pending = waiting.iter().any(|e| !e.current().is_loaded());
                if pending && idle.is_idle() {
                    waiting.iter().filter(|e| e.current().preload()).count()
                } else {
                    0
                }
            }
            None => 0,
        };
        if let Some(after) = self.inner.unload_after {
            self.unload_unused(after);
        }
        started
    }

    /// Starts the background task calling [`LazyRegistry::tick`] periodically (needs a
    /// tokio runtime). It ends on [`LazyRegistry::stop`] or when the registry is dropped.
    pub fn start(&self) -> Result<(), RegistryError> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| RegistryError::NoRuntime("the registry's background task".into()))?;
        let weak = Arc::downgrade(&self.inner);
        let every = self.inner.tick_every;
        let task = runtime.spawn(async move {
            let mut interval = tokio::time::interval(every);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                match weak.upgrade() {
                    Some(inner) => {
                        LazyRegistry { inner }.tick();
                    }
                    None => return,
                }
            }
        });
        self.inner.tasks.lock().push(task);
        Ok(())
    }

    /// Stops the background tasks (the periodic tick and pending delayed preloads).
    pub fn stop(&self) {
        for task in self.inner.tasks.lock().drain(..) {
            task.abort();
        }
    }

    /// The registry's report: per resource its strategy, state, metrics and use.
    pub fn report(&self) -> RegistryReport {
        let now = self.now_nanos();
        let resources = self
            .inner
            .entries
            .read()
            .iter()
            .map(|(name, e)| {
                let current = e.current();
                ResourceReport {
                    name: name.clone(),
                    strategy: e.strategy.to_string(),
                    state: current.state(),
                    metrics: current.metrics(),
                    gets: e.gets.load(Ordering::Relaxed),
                    unused_for: Duration::from_nanos(
                        now.saturating_sub(e.last_used.load(Ordering::Relaxed)),
                    ),
                }
            })
            .collect();
        RegistryReport { resources }
    }
}

/// Swaps in a fresh generation if the entry is loaded or failed; returns the unloaded size.
fn unload_entry(name: &str, entry: &Entry) -> Option<u64> {
    let (old, size) = {
        let mut current = entry.current.write();
        match current.state() {
            LoadState::Loaded { .. } | LoadState::Failed { .. } => {
                let size = current.metrics().size_bytes.unwrap_or(0);
                let was_loaded = current.is_loaded();
                let fresh = current.fresh();
                let old = std::mem::replace(&mut *current, fresh);
                (was_loaded.then_some(old), size)
            }
            LoadState::NotLoaded | LoadState::Loading { .. } => (None, 0),
        }
    };
    let old = old?;
    old.emit(&LazyEvent::Unloaded {
        name: name.to_owned(),
        size_bytes: size,
    });
    Some(size)
}

/// One resource in a [`RegistryReport`].
#[derive(Debug, Clone, Serialize)]
pub struct ResourceReport {
    /// The resource's name.
    pub name: String,
    /// Its preload strategy.
    pub strategy: String,
    /// Its state.
    pub state: LoadState,
    /// Its counters.
    pub metrics: LazyMetrics,
    /// Uses through the registry (`get` and `lazy`).
    pub gets: u64,
    /// Time since its last use (or its registration).
    #[serde(rename = "unused_for_secs", serialize_with = "crate::state::secs")]
    pub unused_for: Duration,
}

/// What a [`LazyRegistry`] reports: each resource's state and metrics.
#[derive(Debug, Clone, Serialize)]
pub struct RegistryReport {
    /// The resources, by name.
    pub resources: Vec<ResourceReport>,
}

impl Report for RegistryReport {
    fn name(&self) -> &str {
        "lazy"
    }

    fn summary(&self) -> String {
        let loaded = self
            .resources
            .iter()
            .filter(|r| matches!(r.state, LoadState::Loaded { .. }))
            .count();
        format!("{loaded} of {} resources loaded", self.resources.len())
    }

    fn figures(&self) -> Vec<Figure> {
        let mut figures = vec![Figure::count("resources", self.resources.len() as u64)];
        let loaded_bytes: u64 = self
            .resources
            .iter()
            .filter(|r| matches!(r.state, LoadState::Loaded { .. }))
            .filter_map(|r| r.metrics.size_bytes)
            .sum();
        figures.push(Figure::bytes("loaded_bytes", loaded_bytes));
        for r in &self.resources {
            // Figure names are snake case: `search-model` gives `search_model_load_time`.
            let key: String = r
                .name
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            if let Some(t) = r.metrics.last_load_time {
                figures.push(Figure::secs(format!("{key}_load_time"), t.as_secs_f64()));
            }
            figures.push(Figure::count(format!("{key}_attempts"), r.metrics.attempts));
        }
        figures
    }

    fn findings(&self) -> Vec<Finding> {
        let mut out = Vec::new();
        for r in &self.resources {
            let message = match &r.state {
                LoadState::NotLoaded => {
                    format!("{}: not loaded (strategy: {})", r.name, r.strategy)
                }
                LoadState::Loading { attempt, .. } => {
                    format!(
                        "{}: loading, attempt {attempt} (strategy: {})",
                        r.name, r.strategy
                    )
                }
                LoadState::Loaded {
                    load_time,
                    attempts,
                    trigger,
                } => format!(
                    "{}: loaded {} in {} after {attempts} attempt(s) (strategy: {}), {}",
                    r.name,
                    match trigger {
                        LoadTrigger::FirstUse => "on first use",
                        LoadTrigger::Preload => "by preload",
                    },
                    perfkit_core::units::format_duration(*load_time),
                    r.strategy,
                    match r.gets {
                        0 => "not used yet".to_owned(),
                        n => format!("used {n} time(s)"),
                    }
                ),
                LoadState::Failed { error, .. } => {
                    out.push(Finding::new(
                        Severity::Warning,
                        "load_failed",
                        format!("{}: {error}", r.name),
                    ));
                    continue;
                }
            };
            // Preloaded but never used: the preload cost memory for nothing (so far).
            let severity = if r.gets == 0
                && matches!(
                    r.state,
                    LoadState::Loaded {
                        trigger: LoadTrigger::Preload,
                        ..
                    }
                ) {
                Severity::Info
            } else {
                Severity::Ok
            };
            out.push(Finding::new(severity, "resource", message));
        }
        out
    }
}
