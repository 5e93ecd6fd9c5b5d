//! The background sampler: a plain thread (never a runtime worker) that calls
//! [`Budgets::sample_now`] periodically, so that `check` stays current without doing any
//! work itself.

use crate::budgets::{Budgets, lock};
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
