//! The budget set: configuration, recording, the lock-free `check`, transitions, cleanup.

use crate::cleanup::Cleanup;
use crate::events::Transition;
use crate::rate::{RateWindow, Reservation, TokenBucket};
use crate::spec::{Budget, ResourceKind};
use crate::storage::DirScan;
use crate::{BudgetError, Decision, Level};
use perfkit_core::{Callbacks, SharedClock, SystemClock};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, UNIX_EPOCH};

/// A handle to one budget of a [`Budgets`] set: an index, so that [`Budgets::check`] is one
/// array access and one atomic load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Resource(u16);

impl Resource {
    /// The process's memory budget.
    pub const MEMORY: Resource = Resource(0);
    /// The storage quota.
    pub const STORAGE: Resource = Resource(1);
    /// The process's CPU budget.
    pub const CPU: Resource = Resource(2);

    const RESERVED: [(&'static str, Resource); 3] = [
        ("memory", Resource::MEMORY),
        ("storage", Resource::STORAGE),
        ("cpu", Resource::CPU),
    ];

    pub(crate) fn from_index(index: usize) -> Resource {
        Resource(index as u16)
    }

    pub(crate) fn index(self) -> usize {
        self.0 as usize
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One budget's mutable state, behind its slot's mutex (never touched by `check`).
pub(crate) struct State {
    pub(crate) spec: Budget,
    /// Memory and storage: bytes. Bandwidth and CPU: the windowed rate.
    pub(crate) usage: f64,
    /// Storage: bytes recorded since the last directory scan.
    pub(crate) recorded_since_scan: f64,
    pub(crate) scanned: f64,
    pub(crate) last_scan: Option<Instant>,
    pub(crate) scan: Option<DirScan>,
    pub(crate) level: Level,
    pub(crate) since: Instant,
    pub(crate) transitions: u64,
    pub(crate) violations: u64,
    pub(crate) window: RateWindow,
    pub(crate) bucket: Option<TokenBucket>,
    pub(crate) last_cpu: Option<Duration>,
    pub(crate) error: Option<String>,
}

impl State {
    fn new(spec: Budget, now: Instant) -> State {
        let bucket = (spec.kind == ResourceKind::Bandwidth).then(|| {
            let burst = spec.burst.unwrap_or(spec.limit / 10.0).max(1.0);
            TokenBucket::new(spec.limit, burst, spec.max_wait, now)
        });
        State {
            window: RateWindow::new(spec.window, now),
            spec,
            usage: 0.0,
            recorded_since_scan: 0.0,
            scanned: 0.0,
            last_scan: None,
            scan: None,
            level: Level::Allow,
            since: now,
            transitions: 0,
            violations: 0,
            bucket,
            last_cpu: None,
            error: None,
        }
    }

    fn is_rate(&self) -> bool {
        matches!(self.spec.kind, ResourceKind::Bandwidth | ResourceKind::Cpu)
    }

    fn refresh_usage(&mut self, now: Instant) {
        if self.is_rate() {
            self.usage = self.window.rate(now);
        }
    }

    fn ratio(&self) -> f64 {
        self.usage / self.spec.limit
    }

    fn decision(&mut self, now: Instant) -> Decision {
        let debt = self
            .bucket
            .as_mut()
            .map_or(Duration::ZERO, |b| b.debt_wait(now));
        match self.level {
            Level::Allow => Decision::Allow,
            Level::Warn => Decision::Warn,
            Level::Throttle => Decision::Throttle {
                delay: self.spec.delay_for(self.ratio()).max(debt),
            },
            Level::Reject => Decision::Reject {
                retry_after: self.spec.retry_after.max(debt),
            },
        }
    }
}

pub(crate) struct Slot {
    decision: AtomicU64,
    pub(crate) state: Mutex<Option<State>>,
}

pub(crate) struct Inner {
    pub(crate) clock: SharedClock,
    pub(crate) slots: Box<[Slot]>,
    names: Mutex<HashMap<String, Resource>>,
    callbacks: Callbacks<Transition>,
    history_cap: usize,
    transitions: Mutex<VecDeque<Transition>>,
    violations: Mutex<VecDeque<Transition>>,
    pub(crate) cleanup: Mutex<Cleanup>,
    pub(crate) cleanup_cooldown: Duration,
}

/// A set of budgets (memory, storage, CPU, and any number of bandwidth channels up to the
/// configured capacity) with graduated enforcement. Cheap to clone; clones share the set.
///
/// [`check`](Budgets::check) reads one precomputed atomic word: it allocates nothing, takes
/// no lock and makes no system call. Recording ([`record_usage`](Budgets::record_usage),
/// [`set_usage`](Budgets::set_usage)) and the sampler ([`sample_now`](Budgets::sample_now),
/// [`start_sampler`](Budgets::start_sampler)) keep that word current.
#[derive(Clone)]
pub struct Budgets {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Budgets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Budgets")
            .field("budgets", &lock(&self.inner.names).len())
            .finish_non_exhaustive()
    }
}

/// Options of a [`Budgets`] set.
#[derive(Debug)]
pub struct BudgetsBuilder {
    clock: SharedClock,
    capacity: usize,
    history: usize,
    cleanup_cooldown: Duration,
}

impl BudgetsBuilder {
    /// The clock used for windows, rates, time in level and timestamps (a
    /// [`ManualClock`](perfkit_core::ManualClock) in tests).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// How many budgets besides memory, storage and CPU (bandwidth channels, thread CPU
    /// budgets) the set can hold. Default 32.
    pub fn capacity(mut self, named: usize) -> Self {
        self.capacity = named;
        self
    }

    /// How many transitions and violations are kept. Default 256 each.
    pub fn history(mut self, entries: usize) -> Self {
        self.history = entries;
        self
    }

    /// The least time between two runs of the cleanup hooks. Default 30 s.
    pub fn cleanup_cooldown(mut self, cooldown: Duration) -> Self {
        self.cleanup_cooldown = cooldown;
        self
    }

    /// Builds the set. Fails when the capacity exceeds 65,000.
    pub fn build(self) -> Result<Budgets, BudgetError> {
        let total = self.capacity + Resource::RESERVED.len();
        if total > u16::MAX as usize {
            return Err(BudgetError::Invalid(format!(
                "a budget set holds at most {} budgets",
                u16::MAX as usize - Resource::RESERVED.len()
            )));
        }
        let slots = (0..total)
            .map(|_| Slot {
                decision: AtomicU64::new(Decision::Allow.encode()),
                state: Mutex::new(None),
            })
            .collect();
        Ok(Budgets {
            inner: Arc::new(Inner {
                clock: self.clock,
                slots,
                names: Mutex::new(HashMap::new()),
                callbacks: Callbacks::new(),
                history_cap: self.history.max(1),
                transitions: Mutex::new(VecDeque::new()),
                violations: Mutex::new(VecDeque::new()),
                cleanup: Mutex::new(Cleanup::default()),
                cleanup_cooldown: self.cleanup_cooldown,
            }),
        })
    }
}

impl Default for Budgets {
    fn default() -> Self {
        Self::new()
    }
}

impl Budgets {
    /// An empty set with the system clock and default options.
    pub fn new() -> Budgets {
        Budgets {
            inner: Budgets::builder()
                .build()
                .map(|b| b.inner)
                .unwrap_or_else(|_| unreachable!("the default capacity is valid")),
        }
    }

    /// Options: clock, capacity, history length, cleanup cooldown.
    pub fn builder() -> BudgetsBuilder {
        BudgetsBuilder {
            clock: SystemClock::shared(),
            capacity: 32,
            history: 256,
            cleanup_cooldown: Duration::from_secs(30),
        }
    }

    /// Adds a budget or replaces the one of the same name, keeping its usage. Returns the
    /// handle to check it with. Memory, storage and (process) CPU budgets always get
    /// [`Resource::MEMORY`], [`Resource::STORAGE`] and [`Resource::CPU`].
    pub fn set_budget(&self, budget: Budget) -> Result<Resource, BudgetError> {
        budget.validate().map_err(BudgetError::Invalid)?;
        let reserved = Resource::RESERVED
            .iter()
            .find(|(n, _)| *n == budget.name)
            .map(|(_, r)| *r);
        let expected = match budget.kind {
            ResourceKind::Memory => Some(Resource::MEMORY),
            ResourceKind::Storage => Some(Resource::STORAGE),
            ResourceKind::Cpu if budget.name == "cpu" => Some(Resource::CPU),
            _ => None,
        };
        if reserved != expected {
            return Err(BudgetError::Invalid(format!(
                "the name {:?} is reserved for the {} budget",
                budget.name, budget.name
            )));
        }
        let resource = {
            let mut names = lock(&self.inner.names);
            match names.get(&budget.name) {
                Some(r) => *r,
                None => {
                    let r = match expected {
                        Some(r) => r,
                        None => {
                            let used = names.values().filter(|r| r.0 >= 3).count();
                            let index = 3 + used;
                            if index >= self.inner.slots.len() {
                                return Err(BudgetError::TooMany {
                                    capacity: self.inner.slots.len() - 3,
                                });
                            }
                            Resource(index as u16)
                        }
                    };
                    names.insert(budget.name.clone(), r);
                    r
                }
            }
        };
        self.update(resource, true, |slot, now| match slot {
            Some(state) if state.spec.kind == budget.kind => {
                let mut fresh = State::new(budget, now);
                fresh.usage = state.usage;
                fresh.scanned = state.scanned;
                fresh.recorded_since_scan = state.recorded_since_scan;
                fresh.level = state.level;
                fresh.since = state.since;
                fresh.transitions = state.transitions;
                fresh.violations = state.violations;
                if fresh.spec.window == state.spec.window {
                    fresh.window = state.window.clone();
                }
                *state = fresh;
            }
            other => *other = Some(State::new(budget, now)),
        });
        Ok(resource)
    }

    /// Removes a budget: its checks allow everything again.
    pub fn remove_budget(&self, resource: Resource) {
        if let Some(slot) = self.inner.slots.get(resource.index()) {
            *lock(&slot.state) = None;
            slot.decision
                .store(Decision::Allow.encode(), Ordering::Release);
        }
    }

    /// The handle of the budget named `name`.
    pub fn resource(&self, name: &str) -> Option<Resource> {
        let r = lock(&self.inner.names).get(name).copied()?;
        self.configured(r).then_some(r)
    }

    fn configured(&self, r: Resource) -> bool {
        self.inner
            .slots
            .get(r.index())
            .is_some_and(|s| lock(&s.state).is_some())
    }

    /// The current decision for `resource`: allow, warn, throttle with a delay, or reject
    /// with a retry-after. A resource without a budget is always allowed.
    ///
    /// Costs one atomic load: the decision was computed when usage was last recorded or
    /// sampled, so it is as fresh as the last of those. For sampled resources (memory
    /// sources, storage directories, CPU clocks, and rates decaying while nothing is
    /// recorded) it is at most one sampler interval old while a [`Sampler`](crate::Sampler)
    /// runs.
    #[inline]
    pub fn check(&self, resource: Resource) -> Decision {
        match self.inner.slots.get(resource.index()) {
            Some(slot) => Decision::decode(slot.decision.load(Ordering::Acquire)),
            None => Decision::Allow,
        }
    }

    /// The strictest decision over several resources.
    pub fn check_all(&self, resources: &[Resource]) -> Decision {
        resources
            .iter()
            .fold(Decision::Allow, |d, r| d.strictest(self.check(*r)))
    }

    /// Records consumption: bytes allocated (memory), bytes written (storage), bytes
    /// transferred (bandwidth), CPU milliseconds used (CPU).
    pub fn record_usage(&self, resource: Resource, amount: u64) {
        let amount = amount as f64;
        self.update_configured(resource, |state, now| match state.spec.kind {
            ResourceKind::Memory => state.usage += amount,
            ResourceKind::Storage => {
                state.recorded_since_scan += amount;
                state.usage = state.scanned + state.recorded_since_scan;
            }
            ResourceKind::Bandwidth => {
                state.window.add(amount, now);
                if let Some(b) = state.bucket.as_mut() {
                    b.consume(amount, now);
                }
            }
            ResourceKind::Cpu => state.window.add(amount, now),
        });
    }

    /// Records a release: bytes freed (memory) or deleted (storage). No effect on rates.
    pub fn release(&self, resource: Resource, amount: u64) {
        let amount = amount as f64;
        self.update_configured(resource, |state, _| match state.spec.kind {
            ResourceKind::Memory => state.usage = (state.usage - amount).max(0.0),
            ResourceKind::Storage => {
                state.recorded_since_scan -= amount;
                state.usage = (state.scanned + state.recorded_since_scan).max(0.0);
            }
            _ => {}
        });
    }

    /// Sets the current usage of a memory or storage budget to `value` bytes (a gauge). For
    /// rate budgets it has no effect: record consumption instead.
    pub fn set_usage(&self, resource: Resource, value: u64) {
        self.update_configured(resource, |state, now| match state.spec.kind {
            ResourceKind::Memory => state.usage = value as f64,
            ResourceKind::Storage => {
                state.scanned = value as f64;
                state.recorded_since_scan = 0.0;
                state.last_scan = Some(now);
                state.usage = value as f64;
            }
            _ => {}
        });
    }

    /// Takes `bytes` from a bandwidth channel's token bucket without waiting. `Ok(delay)`
    /// means "taken; send after `delay`" (zero when tokens were there);
    /// [`BudgetError::Rejected`] means the wait would exceed the channel's `max_wait`, and
    /// nothing was taken.
    pub fn try_acquire(&self, channel: Resource, bytes: u64) -> Result<Duration, BudgetError> {
        let mut outcome = Ok(Duration::ZERO);
        let configured = self.update_configured(channel, |state, now| {
            let Some(bucket) = state.bucket.as_mut() else {
                outcome = Err(BudgetError::Invalid(format!(
                    "{} is not a bandwidth budget",
                    state.spec.name
                )));
                return;
            };
            outcome = match bucket.reserve(bytes as f64, now) {
                Reservation::Ready => Ok(Duration::ZERO),
                Reservation::Wait(d) => Ok(d),
                Reservation::Rejected(retry_after) => Err(BudgetError::Rejected {
                    budget: state.spec.name.clone(),
                    retry_after,
                }),
            };
            if outcome.is_ok() {
                state.window.add(bytes as f64, now);
            }
        });
        if !configured {
            return Err(BudgetError::NotConfigured(channel));
        }
        outcome
    }

    /// Accounts `bytes` that already moved through a bandwidth channel (taken from its
    /// bucket whatever the debt) and returns how long the sender should pause so that the
    /// channel's rate holds. Zero for a resource that is not a bandwidth budget.
    pub(crate) fn account_transfer(&self, channel: Resource, bytes: u64) -> Duration {
        let mut wait = Duration::ZERO;
        self.update_configured(channel, |state, now| {
            if let Some(bucket) = state.bucket.as_mut() {
                bucket.consume(bytes as f64, now);
                wait = bucket.debt_wait(now);
                state.window.add(bytes as f64, now);
            }
        });
        wait
    }

    /// Registers a callback called on every level transition (off the `check` path, after
    /// internal locks are released; panics are isolated).
    pub fn on_transition(&self, f: impl Fn(&Transition) + Send + Sync + 'static) {
        self.inner.callbacks.register(f);
    }

    /// The most recent transitions (oldest first), at most the history length.
    pub fn transitions(&self) -> Vec<Transition> {
        lock(&self.inner.transitions).iter().cloned().collect()
    }

    /// The most recent violations: transitions up into throttle or reject.
    pub fn violations(&self) -> Vec<Transition> {
        lock(&self.inner.violations).iter().cloned().collect()
    }

    /// Reads a configured budget's state.
    pub(crate) fn peek<T>(&self, r: Resource, f: impl FnOnce(&State, Instant) -> T) -> Option<T> {
        let slot = self.inner.slots.get(r.index())?;
        let now = self.inner.clock.now();
        lock(&slot.state).as_ref().map(|s| f(s, now))
    }

    pub(crate) fn snapshot<T>(&self, mut f: impl FnMut(Resource, &State, Instant) -> T) -> Vec<T> {
        let now = self.inner.clock.now();
        let mut out = Vec::new();
        for (i, slot) in self.inner.slots.iter().enumerate() {
            if let Some(state) = lock(&slot.state).as_mut() {
                state.refresh_usage(now);
                out.push(f(Resource(i as u16), state, now));
            }
        }
        out
    }

    /// Applies `f` to a configured budget, then recomputes its level and decision. Returns
    /// whether the resource has a budget.
    pub(crate) fn update_configured(
        &self,
        r: Resource,
        f: impl FnOnce(&mut State, Instant),
    ) -> bool {
        self.update_with(r, true, f)
    }

    pub(crate) fn update_with(
        &self,
        r: Resource,
        cleanup: bool,
        f: impl FnOnce(&mut State, Instant),
    ) -> bool {
        let mut configured = false;
        self.update(r, cleanup, |slot, now| {
            if let Some(state) = slot.as_mut() {
                configured = true;
                f(state, now);
            }
        });
        configured
    }

    /// Applies `f` (given the current time, read once) to a slot's state, then recomputes
    /// its level and decision, records and announces a transition, and runs the cleanup
    /// hooks when they are due.
    fn update(&self, r: Resource, cleanup: bool, f: impl FnOnce(&mut Option<State>, Instant)) {
        let Some(slot) = self.inner.slots.get(r.index()) else {
            return;
        };
        let now = self.inner.clock.now();
        let (transition, cleanup_due) = {
            let mut guard = lock(&slot.state);
            f(&mut guard, now);
            let Some(state) = guard.as_mut() else {
                slot.decision
                    .store(Decision::Allow.encode(), Ordering::Release);
                return;
            };
            state.refresh_usage(now);
            let ratio = state.ratio();
            let next = state.spec.thresholds.next(state.level, ratio);
            let mut transition = None;
            if next != state.level {
                let t = Transition {
                    budget: state.spec.name.clone(),
                    kind: state.spec.kind,
                    from: state.level,
                    to: next,
                    usage: state.usage,
                    limit: state.spec.limit,
                    ratio,
                    time_in_previous_secs: now.saturating_duration_since(state.since).as_secs_f64(),
                    at_unix_secs: self
                        .inner
                        .clock
                        .wall()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0.0, |d| d.as_secs_f64()),
                };
                state.level = next;
                state.since = now;
                state.transitions += 1;
                if t.is_violation() {
                    state.violations += 1;
                }
                transition = Some(t);
            }
            slot.decision
                .store(state.decision(now).encode(), Ordering::Release);
            let cleanup_due = cleanup
                && state.spec.kind == ResourceKind::Memory
                && state.level >= Level::Throttle;
            (transition, cleanup_due)
        };
        if let Some(t) = transition {
            let cap = self.inner.history_cap;
            if t.is_violation() {
                push_bounded(&mut lock(&self.inner.violations), t.clone(), cap);
            }
            push_bounded(&mut lock(&self.inner.transitions), t.clone(), cap);
            self.inner.callbacks.emit(&t);
        }
        if cleanup_due && self.run_cleanup(false).is_some() {
            // Make the hooks' effect visible now (without triggering them again).
            self.sample_memory();
        }
    }
}

fn push_bounded(q: &mut VecDeque<Transition>, t: Transition, cap: usize) {
    if q.len() >= cap {
        q.pop_front();
    }
    q.push_back(t);
}
