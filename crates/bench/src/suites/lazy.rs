//! Suite `lazy`: `get` of a loaded perfkit-lazy resource against `tokio::sync::OnceCell::get`,
//! on 1 and 2 threads.
//!
//! Every subject is read in a loop inside a current-thread runtime's `block_on` (each thread
//! its own runtime), with `black_box` on the handle and on the result so that nothing is
//! hoisted out of the loop. Subjects: `Lazy::get().await` (the async API, the key figure),
//! `Lazy::try_get()` (the sync fast path), `OnceCell::get()`, and
//! `OnceCell::get_or_init(..).await` (tokio's async counterpart of `Lazy::get`), and
//! `OnceCell::get()` awaited through `std::future::ready` (the cost of an await point in the
//! loop alone, for reading the key figure). Figures are the median of several rounds, in ns
//! per call per thread.

use crate::suite::{Options, Suite, SuiteResult};
use perfkit_lazy::Lazy;
use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::Instant;
use tokio::sync::OnceCell;

pub(crate) struct LazySuite;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Subject {
    LazyGet,
    LazyTryGet,
    CellGet,
    CellGetOrInit,
    CellGetAwaited,
}

impl Subject {
    const ALL: [Subject; 5] = [
        Subject::LazyGet,
        Subject::LazyTryGet,
        Subject::CellGet,
        Subject::CellGetOrInit,
        Subject::CellGetAwaited,
    ];

    fn label(self) -> &'static str {
        match self {
            Subject::LazyGet => "perfkit-lazy Lazy::get().await",
            Subject::LazyTryGet => "perfkit-lazy Lazy::try_get()",
            Subject::CellGet => "tokio OnceCell::get()",
            Subject::CellGetOrInit => "tokio OnceCell::get_or_init().await",
            Subject::CellGetAwaited => "tokio OnceCell::get() via ready().await",
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

/// The timed loop of one thread; returns the checksum.
async fn spin(subject: Subject, lazy: &Lazy<u64>, cell: &OnceCell<u64>, iters: u64) -> u64 {
    let mut sum = 0u64;
    match subject {
        Subject::LazyGet => {
            for _ in 0..iters {
                if let Ok(v) = black_box(lazy).get().await {
                    sum = sum.wrapping_add(*black_box(v));
                }
            }
        }
        Subject::LazyTryGet => {
            for _ in 0..iters {
                if let Some(v) = black_box(lazy).try_get() {
                    sum = sum.wrapping_add(*black_box(v));
                }
            }
        }
        Subject::CellGet => {
            for _ in 0..iters {
                if let Some(v) = black_box(cell).get() {
                    sum = sum.wrapping_add(*black_box(v));
                }
            }
        }
        Subject::CellGetOrInit => {
            for _ in 0..iters {
                let v = black_box(cell).get_or_init(init).await;
                sum = sum.wrapping_add(*black_box(v));
            }
        }
        Subject::CellGetAwaited => {
            for _ in 0..iters {
                if let Some(v) = std::future::ready(black_box(cell).get()).await {
                    sum = sum.wrapping_add(*black_box(v));
                }
            }
        }
    }
    sum
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
                let sum = rt.block_on(spin(subject, &lazy, &cell, iters));
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

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
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
            let [lazy_get, lazy_try, cell_get, cell_init, cell_awaited] =
                [ns[0], ns[1], ns[2], ns[3], ns[4]];
            result.ratios.insert(
                format!("get_vs_tokio_oncecell_awaited_{threads}t"),
                lazy_get / cell_awaited,
            );
            key = key.max(lazy_get / cell_get);
            let r = &mut result.ratios;
            r.insert(
                format!("get_vs_tokio_oncecell_{threads}t"),
                lazy_get / cell_get,
            );
            r.insert(
                format!("get_vs_tokio_oncecell_get_or_init_{threads}t"),
                lazy_get / cell_init,
            );
            r.insert(
                format!("try_get_vs_tokio_oncecell_{threads}t"),
                lazy_try / cell_get,
            );
        }
        // The key figure: `Lazy::get().await` against `OnceCell::get()`, the worse of the two
        // thread counts (goal: at most 1.2).
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
