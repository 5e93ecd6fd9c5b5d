//! Suite `budget`: `Budgets::check` against the peer `governor` rate limiter's `check`, on
//! 1 and 2 threads, in nanoseconds per call.
//!
//! perfkit's `check` reads a decision precomputed by recording and the sampler (one atomic
//! load); governor's `check` runs its GCRA step (a compare-and-swap loop on one atomic) on
//! every call. Both answer "may this go ahead now?" on a request path, which is the
//! comparison a user makes; governor's quota is set high enough that every call is allowed.

use crate::suite::{Options, Suite, SuiteResult};
use governor::{Quota, RateLimiter};
use perfkit_budget::{Budget, Budgets, Resource, thread_cpu_time};
use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::{Arc, Barrier};
use std::time::Instant;

pub(crate) struct BudgetSuite;

/// Runs `f` `calls` times on each of `threads` threads at once; CPU ns per call per thread.
fn per_call_ns<F>(threads: usize, calls: u64, f: F) -> f64
where
    F: Fn() -> bool + Send + Sync + 'static,
{
    let f = Arc::new(f);
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (f, barrier) = (Arc::clone(&f), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                // CPU time of this thread, so that other processes on a shared machine do
                // not inflate the figure; wall time where the platform has no thread clock.
                let cpu = thread_cpu_time();
                let start = Instant::now();
                let mut admitted = 0u64;
                for _ in 0..calls {
                    admitted += u64::from(black_box(f()));
                }
                black_box(admitted);
                let spent = match (cpu, thread_cpu_time()) {
                    (Some(a), Some(b)) => b.saturating_sub(a),
                    _ => start.elapsed(),
                };
                spent.as_nanos() as f64 / calls as f64
            })
        })
        .collect();
    let per_thread: Vec<f64> = handles.into_iter().filter_map(|h| h.join().ok()).collect();
    per_thread.iter().sum::<f64>() / per_thread.len().max(1) as f64
}

fn best_of(rounds: usize, mut f: impl FnMut() -> f64) -> f64 {
    (0..rounds).map(|_| f()).fold(f64::INFINITY, f64::min)
}

impl Suite for BudgetSuite {
    fn name(&self) -> &'static str {
        "budget"
    }

    fn description(&self) -> &'static str {
        "Budgets::check vs governor's RateLimiter::check, 1 and 2 threads"
    }

    fn run(&self, opts: &Options) -> anyhow::Result<SuiteResult> {
        let (rounds, calls) = if opts.quick {
            (1, 1_000_000)
        } else {
            (5, 20_000_000)
        };
        let budgets = Budgets::new();
        budgets.set_budget(Budget::memory(1 << 30))?;
        budgets.set_usage(Resource::MEMORY, 1 << 20);
        let limiter = Arc::new(RateLimiter::direct(Quota::per_second(
            NonZeroU32::new(u32::MAX).unwrap_or(NonZeroU32::MIN),
        )));

        let mut result = SuiteResult::new("budget");
        let mut check_ns = serde_json::Map::new();
        let mut worst_ns: f64 = 0.0;
        let mut worst_ratio: f64 = 0.0;
        for threads in [1usize, 2] {
            let b = budgets.clone();
            let ours = best_of(rounds, || {
                let b = b.clone();
                per_call_ns(threads, calls, move || {
                    b.check(Resource::MEMORY).is_admitted()
                })
            });
            let peer = best_of(rounds, || {
                let l = Arc::clone(&limiter);
                per_call_ns(threads, calls, move || l.check().is_ok())
            });
            let case = format!("check, {threads} thread(s)");
            result.row(&case, "perfkit", ours, "ns/call");
            result.row(&case, "governor", peer, "ns/call");
            let key = format!("threads_{threads}");
            check_ns.insert(key.clone(), ours.into());
            result
                .ratios
                .insert(format!("check_vs_governor_{key}"), ours / peer);
            worst_ns = worst_ns.max(ours);
            worst_ratio = worst_ratio.max(ours / peer);
        }
        result
            .ratios
            .insert("check_vs_governor".into(), worst_ratio);
        result.extra.insert("check_ns".into(), worst_ns.into());
        result
            .extra
            .insert("check_ns_by_threads".into(), check_ns.into());
        Ok(result)
    }
}
