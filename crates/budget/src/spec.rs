//! What a budget is: its resource kind, limit, thresholds and enforcement delays.

use crate::Thresholds;
use perfkit_alloc::MemorySource;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The four kinds of resource a budget can limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResourceKind {
    /// Bytes of memory, read from a memory source or recorded.
    Memory,
    /// Bytes on disk under a directory, scanned or recorded.
    Storage,
    /// Bytes per second through a named channel.
    Bandwidth,
    /// CPU milliseconds per wall-clock second, for the process or one thread.
    Cpu,
}

impl ResourceKind {
    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::Memory => "memory",
            ResourceKind::Storage => "storage",
            ResourceKind::Bandwidth => "bandwidth",
            ResourceKind::Cpu => "cpu",
        }
    }

    /// The unit of usage and limit, as in report figures.
    pub fn unit(self) -> &'static str {
        match self {
            ResourceKind::Memory | ResourceKind::Storage => "bytes",
            ResourceKind::Bandwidth => "bytes_per_sec",
            ResourceKind::Cpu => "cpu_ms_per_sec",
        }
    }
}

/// A thread whose CPU time a budget follows (its POSIX CPU-time clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadCpuClock {
    #[cfg(unix)]
    clock: libc::clockid_t,
}

impl ThreadCpuClock {
    /// The calling thread's CPU clock, readable from any thread while this one lives.
    /// `None` where the platform has none.
    pub fn current() -> Option<Self> {
        #[cfg(unix)]
        {
            let mut clock: libc::clockid_t = 0;
            // SAFETY: pthread_self is always valid for the calling thread; `clock` is a valid
            // out-pointer.
            let rc = unsafe { libc::pthread_getcpuclockid(libc::pthread_self(), &mut clock) };
            (rc == 0).then_some(ThreadCpuClock { clock })
        }
        #[cfg(not(unix))]
        {
            None
        }
    }

    /// The thread's CPU time so far, or `None` when the thread is gone.
    pub fn cpu_time(&self) -> Option<Duration> {
        #[cfg(unix)]
        {
            clock_time(self.clock)
        }
        #[cfg(not(unix))]
        {
            None
        }
    }
}

#[cfg(unix)]
fn clock_time(clock: libc::clockid_t) -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    (rc == 0).then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

/// The process's CPU time (user + system) so far, from `getrusage(RUSAGE_SELF)`.
pub fn process_cpu_time() -> Option<Duration> {
    #[cfg(unix)]
    {
        // SAFETY: an all-zero rusage is a valid value; the pointer is valid.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: valid out-pointer.
        let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
        if rc != 0 {
            return None;
        }
        let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
        Some(tv(usage.ru_utime) + tv(usage.ru_stime))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The calling thread's CPU time so far (`clock_gettime(CLOCK_THREAD_CPUTIME_ID)`).
pub fn thread_cpu_time() -> Option<Duration> {
    #[cfg(unix)]
    {
        clock_time(libc::CLOCK_THREAD_CPUTIME_ID)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Where a CPU budget reads its CPU time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CpuScope {
    /// Only what is recorded with `record_usage`.
    Recorded,
    /// The whole process (`getrusage`), sampled.
    Process,
    /// One thread's CPU clock, sampled.
    Thread(ThreadCpuClock),
}

/// One budget: a resource kind, a limit, and how to enforce it. Built with the
/// constructors and refined with the builder-style methods, then passed to
/// [`Budgets::set_budget`](crate::Budgets::set_budget).
///
/// ```
/// use perfkit_budget::{Budget, Thresholds};
/// use std::time::Duration;
///
/// let memory = Budget::memory(512 << 20).throttle_delay(Duration::from_millis(20));
/// let uploads = Budget::bandwidth("uploads", 10e6).burst(1 << 20);
/// let cpu = Budget::cpu(1500.0); // 1.5 cores
/// let disk = Budget::storage(10 << 30).thresholds(Thresholds { warn: 0.7, ..Thresholds::default() });
/// # let _ = (memory, uploads, cpu, disk);
/// ```
#[derive(Clone)]
pub struct Budget {
    pub(crate) kind: ResourceKind,
    pub(crate) name: String,
    pub(crate) limit: f64,
    pub(crate) thresholds: Thresholds,
    pub(crate) throttle_delay: Duration,
    pub(crate) max_throttle_delay: Duration,
    pub(crate) retry_after: Duration,
    pub(crate) window: Duration,
    pub(crate) burst: Option<f64>,
    pub(crate) max_wait: Duration,
    pub(crate) source: Option<Arc<dyn MemorySource>>,
    pub(crate) directory: Option<PathBuf>,
    pub(crate) scan_every: Duration,
    pub(crate) scan_batch: usize,
    pub(crate) cpu: CpuScope,
}

impl fmt::Debug for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Budget")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("limit", &self.limit)
            .field("thresholds", &self.thresholds)
            .field("source", &self.source.as_ref().map(|s| s.name()))
            .field("directory", &self.directory)
            .finish_non_exhaustive()
    }
}

impl Budget {
    fn new(kind: ResourceKind, name: &str, limit: f64) -> Budget {
        Budget {
            kind,
            name: name.to_owned(),
            limit,
            thresholds: Thresholds::default(),
            throttle_delay: Duration::from_millis(10),
            max_throttle_delay: Duration::from_millis(100),
            retry_after: Duration::from_secs(1),
            window: Duration::from_secs(1),
            burst: None,
            max_wait: Duration::from_secs(1),
            source: None,
            directory: None,
            scan_every: Duration::from_secs(10),
            scan_batch: 4096,
            cpu: CpuScope::Recorded,
        }
    }

    /// A memory budget of `limit_bytes`. Usage is recorded, or read from a memory source
    /// (see [`Budget::source`]) by the sampler.
    pub fn memory(limit_bytes: u64) -> Budget {
        Budget::new(ResourceKind::Memory, "memory", limit_bytes as f64)
    }

    /// A storage quota of `quota_bytes`. Usage is recorded writes and deletions, and the
    /// size of [`Budget::directory`] when one is set.
    pub fn storage(quota_bytes: u64) -> Budget {
        Budget::new(ResourceKind::Storage, "storage", quota_bytes as f64)
    }

    /// A bandwidth budget of `bytes_per_sec` for the channel `name`, with a burst of a
    /// tenth of a second's worth of bytes unless [`Budget::burst`] says otherwise.
    ///
    /// Two views of one channel: its level (and so `check`) follows the rate measured over
    /// [`Budget::window`] against the limit, while `acquire`, `try_acquire` and the stream
    /// wrappers pace transfers through a token bucket. A sender paced at the full rate
    /// therefore sits near the throttle and reject marks: use `check` to decide whether to
    /// start optional transfers, and the bucket to pace the ones that run.
    pub fn bandwidth(name: &str, bytes_per_sec: f64) -> Budget {
        Budget::new(ResourceKind::Bandwidth, name, bytes_per_sec)
    }

    /// A CPU budget of `cpu_ms_per_sec` for the whole process (1000 = one core), sampled
    /// with `getrusage` by the sampler; usage can also be recorded.
    pub fn cpu(cpu_ms_per_sec: f64) -> Budget {
        let mut b = Budget::new(ResourceKind::Cpu, "cpu", cpu_ms_per_sec);
        b.cpu = CpuScope::Process;
        b
    }

    /// A CPU budget of `cpu_ms_per_sec` for one thread, named `name`, read from the thread's
    /// CPU clock (create it on that thread with [`ThreadCpuClock::current`]).
    pub fn thread_cpu(name: &str, cpu_ms_per_sec: f64, clock: ThreadCpuClock) -> Budget {
        let mut b = Budget::new(ResourceKind::Cpu, name, cpu_ms_per_sec);
        b.cpu = CpuScope::Thread(clock);
        b
    }

    /// A CPU budget fed only by [`Budgets::record_usage`](crate::Budgets::record_usage).
    pub fn recorded_cpu(cpu_ms_per_sec: f64) -> Budget {
        let mut b = Budget::cpu(cpu_ms_per_sec);
        b.cpu = CpuScope::Recorded;
        b
    }

    /// Reads memory usage from `source` (for memory budgets).
    pub fn source(mut self, source: impl MemorySource + 'static) -> Budget {
        self.source = Some(Arc::new(source));
        self
    }

    /// Reads memory usage from a shared source.
    pub fn shared_source(mut self, source: Arc<dyn MemorySource>) -> Budget {
        self.source = Some(source);
        self
    }

    /// Measures storage as the size of the regular files under `dir` (for storage
    /// budgets, symbolic links not followed). The sampler walks the tree incrementally, at
    /// most [`Budget::scan_batch`] entries per sample, and starts a new pass
    /// [`Budget::scan_every`] after the previous one completed (10 s by default). A
    /// completed pass replaces the usage; writes and deletions recorded in between count
    /// on top of the last pass.
    pub fn directory(mut self, dir: impl Into<PathBuf>) -> Budget {
        self.directory = Some(dir.into());
        self
    }

    /// How long after a completed pass over the storage directory the next one starts.
    pub fn scan_every(mut self, every: Duration) -> Budget {
        self.scan_every = every;
        self
    }

    /// How many directory entries one sample walks at most (after at least one
    /// directory). Default 4096.
    pub fn scan_batch(mut self, entries: usize) -> Budget {
        self.scan_batch = entries.max(1);
        self
    }

    /// Warn, throttle and reject thresholds and their hysteresis.
    pub fn thresholds(mut self, thresholds: Thresholds) -> Budget {
        self.thresholds = thresholds;
        self
    }

    /// The delay a throttle decision asks for when usage is at the throttle threshold; it
    /// grows linearly to [`Budget::max_throttle_delay`] at the reject threshold. Default
    /// 10 ms.
    pub fn throttle_delay(mut self, delay: Duration) -> Budget {
        self.throttle_delay = delay;
        self
    }

    /// The longest delay a throttle decision asks for. Default 100 ms.
    pub fn max_throttle_delay(mut self, delay: Duration) -> Budget {
        self.max_throttle_delay = delay;
        self
    }

    /// The retry-after of a reject decision. Default 1 s.
    pub fn retry_after(mut self, after: Duration) -> Budget {
        self.retry_after = after;
        self
    }

    /// The window over which rates (bandwidth, CPU) are measured. Default 1 s.
    pub fn window(mut self, window: Duration) -> Budget {
        self.window = window;
        self
    }

    /// The bandwidth burst in bytes: what may be sent at once after a quiet period.
    pub fn burst(mut self, bytes: u64) -> Budget {
        self.burst = Some(bytes as f64);
        self
    }

    /// The longest wait `acquire` accepts before it rejects instead. Default 1 s.
    pub fn max_wait(mut self, wait: Duration) -> Budget {
        self.max_wait = wait;
        self
    }

    /// The budget's resource kind.
    pub fn kind(&self) -> ResourceKind {
        self.kind
    }

    /// The budget's name (`memory`, `storage`, `cpu`, or the channel's name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The limit, in the kind's unit.
    pub fn limit(&self) -> f64 {
        self.limit
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if !(self.limit.is_finite() && self.limit > 0.0) {
            return Err(format!(
                "the {} budget's limit must be a positive number (got {})",
                self.name, self.limit
            ));
        }
        if self.name.is_empty() {
            return Err("a budget needs a name".to_owned());
        }
        if let Some(b) = self.burst
            && !(b.is_finite() && b > 0.0)
        {
            return Err(format!("the {} budget's burst must be positive", self.name));
        }
        if self.window.is_zero() {
            return Err(format!(
                "the {} budget's window must not be zero",
                self.name
            ));
        }
        self.thresholds
            .validate()
            .map_err(|e| format!("the {} budget: {e}", self.name))
    }

    /// The throttle delay for a usage ratio in the throttle band.
    pub(crate) fn delay_for(&self, ratio: f64) -> Duration {
        let t = &self.thresholds;
        let band = (t.reject - t.throttle).max(1e-9);
        let x = ((ratio - t.throttle) / band).clamp(0.0, 1.0);
        let lo = self.throttle_delay.as_secs_f64();
        let hi = self.max_throttle_delay.as_secs_f64().max(lo);
        Duration::from_secs_f64(lo + (hi - lo) * x)
    }
}
