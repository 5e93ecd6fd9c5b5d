//! Suite `lazy`: `get` of a loaded perfkit-lazy resource against `tokio::sync::OnceCell::get`,
//! on 1 and 2 threads.
//!
//! Every subject is read in a loop inside a current-thread runtime's `block_on` (each thread
//! its own runtime), with `black_box` on the handle and on the result so that nothing is
//! hoisted out of the loop. Both are held the way a service shares them: the `Lazy` (an
//! `Arc` inside) and an `Arc<OnceCell>`.
//!
//! The key figure compares the calls themselves, in synchronous loops: `Lazy::get()` made
//! and polled once (what an executor does with a future ready at its first poll) against
//! `OnceCell::get()`. `Lazy::try_get()` and `OnceCell::get()` on a plain `&OnceCell` are
//! reported beside them. The async loops add the caller's await point:
//! `Lazy::get().await`, `OnceCell::get()` awaited through `std::future::ready` (an await
//! point that costs nothing itself, to show what the loop's state machine adds) and
//! `OnceCell::get_or_init(..).await` (tokio's async counterpart of `Lazy::get`). Figures
//! are the median of several interleaved rounds, in ns per call per thread.

use crate::suite::{Options, Suite, SuiteResult, median};
use perfkit_lazy::{Lazy, LazyError};
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Waker};
use std::time::Instant;
use tokio::sync::OnceCell;

pub(crate) struct LazySuite;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Subject {
    LazyGetPolled,
    LazyTryGet,
    CellGet,
    CellGetDirect,
    LazyGetAwait,
    CellGetAwaited,
    CellGetOrInit,
}

impl Subject {
    const ALL: [Subject; 7] = [
        Subject::LazyGetPolled,
        Subject::LazyTryGet,
        Subject::CellGet,
        Subject::CellGetDirect,
        Subject::LazyGetAwait,
        Subject::CellGetAwaited,
        Subject::CellGetOrInit,
    ];

    fn label(self) -> &'static str {
        match self {
            Subject::LazyGetPolled => "perfkit-lazy Lazy::get() polled",
            Subject::LazyTryGet => "perfkit-lazy Lazy::try_get()",
            Subject::CellGet => "tokio OnceCell::get() through an Arc",
            Subject::CellGetDirect => "tokio OnceCell::get() on a &OnceCell",
            Subject::LazyGetAwait => "perfkit-lazy Lazy::get().await in an async loop",
            Subject::CellGetAwaited => "tokio OnceCell::get() via ready().await in an async loop",
            Subject::CellGetOrInit => "tokio OnceCell::get_or_init().await in an async loop",
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

async fn init() -> u64 {
    42
}

/// The synchronous loops: the cost of the call alone. `Lazy::get()` is made and polled once
/// per call, as an executor does with a future that is ready at its first poll.
fn spin_sync(
    subject: Subject,
    lazy: &Lazy<u64>,
    cell: &Arc<OnceCell<u64>>,
    iters: u64,
) -> Result<u64, LazyError> {
    let mut sum = 0u64;
    let mut cx = Context::from_waker(Waker::noop());
    match subject {
        Subject::LazyGetPolled => {
            for _ in 0..iters {
                let get = pin!(black_box(lazy).get());
                // As a caller writes it: the error goes up with `?`.
                if let Poll::Ready(v) = get.poll(&mut cx) {
                    sum = sum.wrapping_add(*v?);
                }
            }
        }
        Subject::LazyTryGet => {
            for _ in 0..iters {
                if let Some(v) = black_box(lazy).try_get() {
                    sum = sum.wrapping_add(*v);
                }
            }
        }
        Subject::CellGet => {
            for _ in 0..iters {
                if let Some(v) = black_box(cell).get() {
                    sum = sum.wrapping_add(*v);
                }
            }
        }
        Subject::CellGetDirect => {
            let cell: &OnceCell<u64> = cell;
            for _ in 0..iters {
                if let Some(v) = black_box(cell).get() {
                    sum = sum.wrapping_add(*v);
                }
            }
        }
        _ => unreachable!("an async subject"),
    }
    Ok(sum)
}

/// The async loops: the call plus the caller's await point, whose cost is mostly the
/// state machine keeping the loop's variables in its frame (as `ready().await` shows).
async fn spin_async(
    subject: Subject,
    lazy: &Lazy<u64>,
    cell: &Arc<OnceCell<u64>>,
    iters: u64,
) -> Result<u64, LazyError> {
    let mut sum = 0u64;
    match subject {
        Subject::LazyGetAwait => {
            for _ in 0..iters {
                sum = sum.wrapping_add(*black_box(lazy).get().await?);
            }
        }
        Subject::CellGetAwaited => {
            for _ in 0..iters {
                if let Some(v) = std::future::ready(black_box(cell).get()).await {
                    sum = sum.wrapping_add(*v);
                }
            }
        }
        Subject::CellGetOrInit => {
            for _ in 0..iters {
                let v = black_box(cell).get_or_init(init).await;
                sum = sum.wrapping_add(*v);
            }
        }
        _ => unreachable!("a synchronous subject"),
    }
    Ok(sum)
}

fn is_async(subject: Subject) -> bool {
    matches!(
        subject,
        Subject::LazyGetAwait | Subject::CellGetAwaited | Subject::CellGetOrInit
    )
}

/// ns per call per thread, `threads` threads each making `iters` calls at the same time.
fn measure(
    subject: Subject,
    lazy: &Lazy<u64>,
    cell: &Arc<OnceCell<u64>>,
    threads: usize,
    iters: u64,
) -> anyhow::Result<f64> {
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (lazy, cell, barrier) = (lazy.clone(), Arc::clone(cell), Arc::clone(&barrier));
            std::thread::spawn(move || -> anyhow::Result<f64> {
                let rt = runtime()?;
                barrier.wait();
                let start = Instant::now();
                let sum = if is_async(subject) {
                    rt.block_on(spin_async(subject, &lazy, &cell, iters))?
                } else {
                    rt.block_on(async { spin_sync(subject, &lazy, &cell, iters) })?
                };
                let elapsed = start.elapsed();
                anyhow::ensure!(sum == iters.wrapping_mul(42), "wrong checksum {sum}");
                Ok(elapsed.as_nanos() as f64 / iters as f64)
            })
        })
        .collect();
    let mut per_thread = Vec::new();
    for h in handles {
        per_thread.push(
            h.join()
                .map_err(|_| anyhow::anyhow!("a benchmark thread panicked"))??,
        );
    }
    Ok(per_thread.iter().sum::<f64>() / per_thread.len() as f64)
}

impl Suite for LazySuite {
    fn name(&self) -> &'static str {
        "lazy"
    }

    fn description(&self) -> &'static str {
        "get of a loaded Lazy<T> vs tokio::sync::OnceCell::get, 1 and 2 threads"
    }

    fn run(&self, opts: &Options) -> anyhow::Result<SuiteResult> {
        let (iters, rounds) = if opts.quick {
            (2_000_000, 3)
        } else {
            (50_000_000, 7)
        };
        let lazy = Lazy::new("bench", || async { Ok::<_, std::io::Error>(42u64) });
        let cell = Arc::new(OnceCell::new());
        runtime()?.block_on(async {
            lazy.get().await.map(|_| ())?;
            cell.get_or_init(init).await;
            anyhow::Ok(())
        })?;

        let mut result = SuiteResult::new("lazy");
        let mut key: f64 = 0.0;
        for threads in [1usize, 2] {
            let mut samples: Vec<Vec<f64>> = vec![Vec::new(); Subject::ALL.len()];
            // Interleave the subjects round by round so that drift affects all alike.
            for _ in 0..rounds {
                for (i, subject) in Subject::ALL.into_iter().enumerate() {
                    samples[i].push(measure(subject, &lazy, &cell, threads, iters)?);
                }
            }
            let ns: Vec<f64> = samples.into_iter().map(median).collect();
            let case = format!("get of a loaded value, {threads} thread(s)");
            for (subject, value) in Subject::ALL.into_iter().zip(&ns) {
                result.row(&case, subject.label(), *value, "ns/op");
            }
            let [
                lazy_polled,
                lazy_try,
                cell_get,
                cell_direct,
                lazy_await,
                cell_awaited,
                cell_init,
            ] = [ns[0], ns[1], ns[2], ns[3], ns[4], ns[5], ns[6]];
            key = key.max(lazy_polled / cell_get);
            let r = &mut result.ratios;
            for (name, value) in [
                ("get_vs_tokio_oncecell", lazy_polled / cell_get),
                ("get_vs_tokio_oncecell_direct", lazy_polled / cell_direct),
                ("try_get_vs_tokio_oncecell", lazy_try / cell_get),
                (
                    "get_await_vs_tokio_oncecell_awaited",
                    lazy_await / cell_awaited,
                ),
                ("get_await_vs_tokio_oncecell", lazy_await / cell_get),
                (
                    "get_await_vs_tokio_oncecell_get_or_init",
                    lazy_await / cell_init,
                ),
            ] {
                r.insert(format!("{name}_{threads}t"), value);
            }
        }
        // The key figure: `Lazy::get()` against `OnceCell::get()`, both through a shared
        // handle (the `Lazy`, an `Arc<OnceCell>`), the worse of the two thread counts (goal:
        // at most 1.2). The `_await` ratios add the caller's await point.
        result
            .ratios
            .insert("get_vs_tokio_oncecell".to_owned(), key);
        result
            .extra
            .insert("iterations_per_round".to_owned(), iters.into());
        result.extra.insert("rounds".to_owned(), rounds.into());
        Ok(result)
    }
}
