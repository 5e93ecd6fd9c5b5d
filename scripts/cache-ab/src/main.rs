//! Two builds of perfkit-cache's `MemoryCache` in one process, walking the same Zipf keys
//! in alternating chunks of 20,000 requests (which goes first swapped every chunk), so
//! that the machine's slow spells fall on both: a side-by-side comparison that two
//! processes on two cores (`scripts/cache-pair.sh`) cannot make as fairly on a shared
//! virtual machine. Run by `scripts/cache-ab.sh`, which see.
//!
//! Arguments: `ZIPF REQUESTS SHARDS THREADS` (0.9, 3,000,000, 64, 1). Environment:
//! `POLICY` (wtinylfu), `SALT` (keys are XORed with it: another sample of keys for the
//! shadows, as another hash seed would give), `SWAP` (build the new cache first: memory
//! placement favours one of the two by a percent or two, so runs alternate).
//! Prints both caches' ns per request and hits, and B/A (new over old).

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

trait Subject: Sync {
    fn get(&self, k: u64) -> Option<u64>;
    fn insert(&self, k: u64, v: u64);
}

impl Subject for old::MemoryCache<u64, u64, old::hash::BuildU64Hasher> {
    fn get(&self, k: u64) -> Option<u64> {
        old::MemoryCache::get(self, &k)
    }
    fn insert(&self, k: u64, v: u64) {
        old::MemoryCache::insert(self, k, v)
    }
}

impl Subject for new::MemoryCache<u64, u64, new::hash::BuildU64Hasher> {
    fn get(&self, k: u64) -> Option<u64> {
        new::MemoryCache::get(self, &k)
    }
    fn insert(&self, k: u64, v: u64) {
        new::MemoryCache::insert(self, k, v)
    }
}

/// The suite's read-through loop; returns the hits.
fn walk(c: &dyn Subject, keys: &[u64]) -> usize {
    let mut hits = 0;
    for &k in keys {
        if black_box(c.get(k)).is_some() {
            hits += 1;
        } else {
            c.insert(k, k);
        }
    }
    hits
}

/// A barrier that spins: `std`'s sleeps, and a sleeping thread's wake-up on this virtual
/// machine took longer than a chunk's walk.
struct Barrier {
    threads: usize,
    arrived: AtomicUsize,
    generation: AtomicUsize,
}

impl Barrier {
    fn new(threads: usize) -> Self {
        Barrier {
            threads,
            arrived: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
        }
    }

    fn wait(&self) {
        let generation = self.generation.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.threads {
            self.arrived.store(0, Ordering::Relaxed);
            self.generation.fetch_add(1, Ordering::Release);
            return;
        }
        while self.generation.load(Ordering::Acquire) == generation {
            std::hint::spin_loop();
        }
    }
}

fn pin(cpu: usize) {
    // SAFETY: a zeroed `cpu_set_t` is a valid empty set, and the call only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set);
    }
}

fn arg<T: std::str::FromStr>(n: usize, default: T) -> T {
    std::env::args()
        .nth(n)
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let zipf: f64 = arg(1, 0.9);
    let requests: usize = arg(2, 3_000_000);
    let shards: usize = arg(3, 64);
    // The new build's shards, when they differ (a comparison of shard counts).
    let shards_b: usize = std::env::var("SHARDS_B")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(shards);
    let threads: usize = arg(4, 1);
    let policy = std::env::var("POLICY").unwrap_or_else(|_| "wtinylfu".into());
    let salt: u64 = std::env::var("SALT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut keys = old::synth::zipf(1_000_000 + requests, 1_000_000, zipf, 42);
    for k in &mut keys {
        *k ^= salt;
    }
    let (warm, keys) = keys.split_at(1_000_000);
    // The same cache from either crate (their types differ, their code is the revision's).
    macro_rules! build {
        ($krate:ident, $shards:expr) => {
            || -> Box<dyn Subject> {
                Box::new(
                    $krate::MemoryCache::builder()
                        .capacity(100_000)
                        .shards($shards)
                        .policy(policy.parse().expect("policy"))
                        .hasher($krate::hash::BuildU64Hasher)
                        .build()
                        .expect("cache"),
                )
            }
        };
    }
    let (build_old, build_new) = (build!(old, shards), build!(new, shards_b));
    let (a, b) = if std::env::var_os("SWAP").is_some() {
        let b = build_new();
        (build_old(), b)
    } else {
        let a = build_old();
        (a, build_new())
    };
    pin(0);
    walk(a.as_ref(), warm);
    walk(b.as_ref(), warm);
    const CHUNK: usize = 20_000;
    let rounds = keys.len() / CHUNK;
    // (which cache, seconds between the barriers, hits) of each pass.
    let passes = |t: usize, barrier: &Barrier| {
        pin(t);
        // As the suite: each thread walks the sequence from its own offset.
        let offset = t * keys.len() / threads.max(1);
        let mut out = Vec::new();
        for i in 0..rounds {
            let from = (offset + i * CHUNK) % keys.len();
            let part = &keys[from..(from + CHUNK).min(keys.len())];
            for pass in 0..2 {
                let is_b = (i + pass) % 2 == 1;
                let c = if is_b { b.as_ref() } else { a.as_ref() };
                barrier.wait();
                let start = Instant::now();
                let h = walk(c, part);
                barrier.wait();
                out.push((is_b, start.elapsed().as_secs_f64(), h));
            }
        }
        out
    };
    let barrier = Barrier::new(threads.max(1));
    let results: Vec<Vec<(bool, f64, usize)>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads.max(1))
            .map(|t| {
                let (passes, barrier) = (&passes, &barrier);
                s.spawn(move || passes(t, barrier))
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let (mut ta, mut tb, mut hits_a, mut hits_b) = (0f64, 0f64, 0, 0);
    for (t, passes) in results.iter().enumerate() {
        for &(is_b, secs, h) in passes {
            // Time from thread 0 (between the barriers, so the slower thread's); hits from
            // all.
            let secs = if t == 0 { secs } else { 0.0 };
            if is_b {
                tb += secs;
                hits_b += h;
            } else {
                ta += secs;
                hits_a += h;
            }
        }
    }
    let n = (rounds * CHUNK) as f64;
    println!(
        "zipf {zipf} shards {shards} threads {threads} {policy}: A {:.1} ns B {:.1} ns B/A {:.4} (hits A {hits_a} B {hits_b})",
        ta * 1e9 / n,
        tb * 1e9 / n,
        tb / ta
    );
}
