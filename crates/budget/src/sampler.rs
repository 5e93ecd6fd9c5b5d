//! The background sampler: a plain thread (never a runtime worker) that calls
//! [`Budgets::sample_now`] periodically, so that `check` stays current without doing any
//! work itself.

use crate::budgets::{Budgets, Resource, State, lock};
use crate::spec::{CpuScope, ResourceKind, process_cpu_time};
use crate::storage::{DirScan, Step};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A running sampler. Stops on [`Sampler::stop`] or when dropped.
#[derive(Debug)]
pub struct Sampler {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Budgets {
    /// Starts a thread that samples every `interval` (memory sources, storage directories,
    /// CPU clocks, rate windows). 100 ms suits most services.
    pub fn start_sampler(&self, interval: Duration) -> std::io::Result<Sampler> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let budgets = self.clone();
        let signal = Arc::clone(&stop);
        let interval = interval.max(Duration::from_millis(1));
        let thread = std::thread::Builder::new()
            .name("perfkit-budget-sampler".to_owned())
            .spawn(move || {
                let (flag, cv) = &*signal;
                loop {
                    budgets.sample_now();
                    let guard = lock(flag);
                    let (guard, _) = cv
                        .wait_timeout_while(guard, interval, |stopped| !*stopped)
                        .unwrap_or_else(|e| e.into_inner());
                    if *guard {
                        return;
                    }
                }
            })?;
        Ok(Sampler {
            stop,
            thread: Some(thread),
        })
    }
}

impl Budgets {
    /// Reads every source now: memory sources, storage directories (when their rescan is
    /// due), process and thread CPU clocks; recomputes rates and decisions. The background
    /// sampler calls this periodically.
    pub fn sample_now(&self) {
        let process_cpu = process_cpu_time();
        for index in 0..self.inner.slots.len() {
            let r = Resource::from_index(index);
            let Some((kind, source, dir, scan_due, cpu)) = self.peek(r, |s, now| {
                (
                    s.spec.kind,
                    s.spec.source.clone(),
                    s.spec.directory.clone(),
                    s.last_scan
                        .is_none_or(|t| now.saturating_duration_since(t) >= s.spec.scan_every),
                    s.spec.cpu,
                )
            }) else {
                continue;
            };
            match kind {
                ResourceKind::Memory => self.sample_source(r, source.as_deref()),
                ResourceKind::Storage => match dir {
                    Some(dir) => self.scan_step(r, &dir, scan_due),
                    None => {
                        self.update_configured(r, |_, _| {});
                    }
                },
                ResourceKind::Cpu => {
                    let reading = match cpu {
                        CpuScope::Recorded => None,
                        CpuScope::Process => Some(process_cpu),
                        CpuScope::Thread(clock) => Some(clock.cpu_time()),
                    };
                    self.update_configured(r, |s, now| match reading {
                        Some(Some(t)) => {
                            if let Some(last) = s.last_cpu {
                                let ms = t.saturating_sub(last).as_secs_f64() * 1e3;
                                s.window.add(ms, now);
                            }
                            s.last_cpu = Some(t);
                            s.error = None;
                        }
                        Some(None) => s.error = Some("the CPU clock is not readable".into()),
                        None => {}
                    });
                }
                ResourceKind::Bandwidth => {
                    self.update_configured(r, |_, _| {});
                }
            }
        }
    }

    /// Advances the storage budget's directory walk by one bounded step (starting a new
    /// pass when one is due); a completed pass replaces the usage.
    fn scan_step(&self, r: Resource, dir: &std::path::Path, due: bool) {
        let Some((scan, batch)) = self.peek_mut(r, |s| (s.scan.take(), s.spec.scan_batch)) else {
            return;
        };
        let mut scan = match scan {
            Some(scan) => scan,
            None if due => DirScan::new(dir),
            None => {
                self.update_configured(r, |_, _| {});
                return;
            }
        };
        let step = scan.step(batch);
        self.update_configured(r, |s, now| match step {
            Step::Continue => s.scan = Some(scan),
            Step::Done(bytes) => {
                s.scanned = bytes as f64;
                s.recorded_since_scan = 0.0;
                s.usage = s.scanned;
                s.last_scan = Some(now);
                s.error = scan.error.take();
            }
            Step::Failed(e) => {
                s.last_scan = Some(now);
                s.error = Some(e);
            }
        });
    }

    fn peek_mut<T>(&self, r: Resource, f: impl FnOnce(&mut State) -> T) -> Option<T> {
        let slot = self.inner.slots.get(r.index())?;
        lock(&slot.state).as_mut().map(f)
    }

    /// Re-reads the memory budget's source without triggering cleanup.
    pub(crate) fn sample_memory(&self) {
        if let Some(source) = self.peek(Resource::MEMORY, |s, _| s.spec.source.clone()) {
            self.sample_source_with(Resource::MEMORY, source.as_deref(), false);
        }
    }

    fn sample_source(&self, r: Resource, source: Option<&dyn perfkit_alloc::MemorySource>) {
        self.sample_source_with(r, source, true);
    }

    fn sample_source_with(
        &self,
        r: Resource,
        source: Option<&dyn perfkit_alloc::MemorySource>,
        cleanup: bool,
    ) {
        let reading = source.map(|s| s.read());
        self.update_with(r, cleanup, |s, _| match reading {
            Some(Ok(reading)) => {
                s.usage = reading.used_bytes as f64;
                s.error = None;
            }
            Some(Err(e)) => s.error = Some(e.to_string()),
            None => {}
        });
    }
}

impl Sampler {
    /// Stops the sampler and waits for its thread.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        let (flag, cv) = &*self.stop;
        *lock(flag) = true;
        cv.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.halt();
    }
}
