//! The `cache` suite's read-through loop (`get`, and `insert` on a miss) for one subject,
//! made deterministic for profilers (fixed hasher, fixed keys, no timing) unless asked to
//! run as the suite does (`--hasher default --warmup 1000000`). Run under
//! `scripts/cache-profile.sh` (cachegrind) or `perf record`; wall-clock comparisons belong
//! to the suite itself.
//!
//! ```sh
//! cargo run --release -p perfkit-bench --no-default-features --features cache \
//!     --example cache_loop -- --zipf 0.9 --subject perfkit --policy wtinylfu
//! ```
//!
//! Options (all optional): `--zipf S` (0.9), `--keys N` distinct keys (1,000,000),
//! `--requests N` (4,000,000), `--capacity N` (100,000), `--subject perfkit|quick_cache`,
//! `--policy NAME` (perfkit's; `wtinylfu`), `--shards N` (perfkit's default), `--threads N`
//! (1; more run the sequence each from its own offset, pinned, as the suite does), `--dry 1`
//! (build the keys and the cache, run no request but the warm-up: the baseline to
//! subtract), `--hasher fixed|default` (`fixed`: perfkit's `BuildU64Hasher` for both;
//! `default`: each cache's own default, randomly seeded, as in the suite), `--warmup N`
//! (0; requests walked before the measured ones, untimed: the suite warms each cache up
//! with 1,000,000 of its requests). Prints the hit ratio, which must not change when only
//! speed was meant to; with `CACHE_LOOP_TIME` set, also the loop's wall time per request
//! (for two builds run side by side, one per core, which suffer the machine's slow spells
//! together: `scripts/cache-pair.sh`; `scripts/cache-ab.sh` compares two revisions in one
//! process, more steadily).

use std::hint::black_box;

use anyhow::{Context, bail};
use perfkit_cache::hash::BuildU64Hasher;
use perfkit_cache::{MemoryCache, PolicyKind, synth};

// The suite's pinning, the same for the loop's threads.
#[path = "../src/pin.rs"]
mod pin;
use pin::pin_to_cpu;

struct Options {
    zipf: f64,
    keys: usize,
    requests: usize,
    capacity: u64,
    subject: String,
    policy: PolicyKind,
    shards: Option<usize>,
    threads: usize,
    dry: bool,
    default_hasher: bool,
    warmup: usize,
}

fn options() -> anyhow::Result<Options> {
    let mut o = Options {
        zipf: 0.9,
        keys: 1_000_000,
        requests: 4_000_000,
        capacity: 100_000,
        subject: "perfkit".into(),
        policy: PolicyKind::WTinyLfu,
        shards: None,
        threads: 1,
        dry: false,
        default_hasher: false,
        warmup: 0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        let bad = || format!("bad value {value:?} for {flag}");
        match flag.as_str() {
            "--zipf" => o.zipf = value.parse().with_context(bad)?,
            "--keys" => o.keys = value.parse().with_context(bad)?,
            "--requests" => o.requests = value.parse().with_context(bad)?,
            "--capacity" => o.capacity = value.parse().with_context(bad)?,
            "--subject" => o.subject = value,
            "--policy" => o.policy = value.parse().with_context(bad)?,
            "--shards" => o.shards = Some(value.parse().with_context(bad)?),
            "--threads" => o.threads = value.parse().with_context(bad)?,
            "--dry" => o.dry = value != "0",
            "--warmup" => o.warmup = value.parse().with_context(bad)?,
            "--hasher" => {
                o.default_hasher = match value.as_str() {
                    "fixed" => false,
                    "default" => true,
                    _ => bail!("--hasher is fixed or default, not {value:?}"),
                }
            }
            _ => bail!("unknown option {flag}"),
        }
    }
    if o.keys == 0 || o.capacity == 0 {
        bail!("--keys and --capacity must be above 0");
    }
    Ok(o)
}

/// The two caches behind one interface (a trait object: both pay the same call).
trait Subject: Sync {
    fn get(&self, k: u64) -> Option<u64>;
    fn insert(&self, k: u64, v: u64);
}

impl Subject for MemoryCache<u64, u64, BuildU64Hasher> {
    fn get(&self, k: u64) -> Option<u64> {
        MemoryCache::get(self, &k)
    }
    fn insert(&self, k: u64, v: u64) {
        MemoryCache::insert(self, k, v)
    }
}

impl Subject for MemoryCache<u64, u64> {
    fn get(&self, k: u64) -> Option<u64> {
        MemoryCache::get(self, &k)
    }
    fn insert(&self, k: u64, v: u64) {
        MemoryCache::insert(self, k, v)
    }
}

impl Subject for quick_cache::sync::Cache<u64, u64> {
    fn get(&self, k: u64) -> Option<u64> {
        quick_cache::sync::Cache::get(self, &k)
    }
    fn insert(&self, k: u64, v: u64) {
        quick_cache::sync::Cache::insert(self, k, v)
    }
}

impl Subject for quick_cache::sync::Cache<u64, u64, quick_cache::UnitWeighter, BuildU64Hasher> {
    fn get(&self, k: u64) -> Option<u64> {
        quick_cache::sync::Cache::get(self, &k)
    }
    fn insert(&self, k: u64, v: u64) {
        quick_cache::sync::Cache::insert(self, k, v)
    }
}

fn subject(o: &Options) -> anyhow::Result<Box<dyn Subject>> {
    Ok(match o.subject.as_str() {
        "perfkit" if o.default_hasher => {
            let mut builder = MemoryCache::builder().capacity(o.capacity).policy(o.policy);
            if let Some(n) = o.shards {
                builder = builder.shards(n);
            }
            Box::new(builder.build()?)
        }
        "quick_cache" if o.default_hasher => Box::new(quick_cache::sync::Cache::<u64, u64>::new(
            usize::try_from(o.capacity)?,
        )),
        "perfkit" => {
            let mut builder = MemoryCache::builder()
                .capacity(o.capacity)
                .policy(o.policy)
                .hasher(BuildU64Hasher);
            if let Some(n) = o.shards {
                builder = builder.shards(n);
            }
            Box::new(builder.build()?)
        }
        "quick_cache" => Box::new(quick_cache::sync::Cache::with(
            usize::try_from(o.capacity)?,
            o.capacity,
            quick_cache::UnitWeighter,
            BuildU64Hasher,
            Default::default(),
        )),
        other => bail!("unknown subject {other:?} (perfkit or quick_cache)"),
    })
}

/// The read-through loop over `keys`; returns the hits.
fn walk(cache: &dyn Subject, keys: &[u64]) -> usize {
    let mut hits = 0;
    for &k in keys {
        if black_box(cache.get(k)).is_some() {
            hits += 1;
        } else {
            cache.insert(k, k);
        }
    }
    hits
}

fn main() -> anyhow::Result<()> {
    let o = options()?;
    let all = synth::zipf(o.warmup + o.requests, o.keys, o.zipf, 42);
    let (warmup, measured) = all.split_at(o.warmup);
    let keys = if o.dry { &measured[..0] } else { measured };
    let cache = subject(&o)?;
    walk(cache.as_ref(), warmup);
    let start = std::time::Instant::now();
    let hits = if o.threads <= 1 {
        walk(cache.as_ref(), keys)
    } else {
        // As in the suite: each thread walks the whole sequence from its own offset,
        // pinned to a CPU of its own.
        let cache = cache.as_ref();
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..o.threads)
                .map(|t| {
                    s.spawn(move || {
                        pin_to_cpu(t);
                        let (a, b) = keys.split_at(t * keys.len() / o.threads);
                        walk(cache, b) + walk(cache, a)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
        })
    };
    let elapsed = start.elapsed();
    let requests = keys.len() * o.threads.max(1);
    println!("hit ratio {:.4}", hits as f64 / requests.max(1) as f64);
    if std::env::var_os("CACHE_LOOP_TIME").is_some() {
        // Wall time of the loop, for side-by-side runs (not under a profiler).
        let ns = elapsed.as_nanos() as f64 / keys.len().max(1) as f64;
        println!("ns per request {ns:.1}");
    }
    Ok(())
}
