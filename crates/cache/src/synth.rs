//! Synthetic workloads for tests, benchmarks and demos: Zipf, Zipf with scans, loops and a
//! shifting working set. Deterministic for a given seed.

use crate::hash::XorShift;

/// Draws Zipf-distributed ranks in `0..n` with exponent `s` (inverse CDF by binary search
/// over a precomputed table).
#[derive(Debug, Clone)]
pub struct Zipf {
    cdf: Vec<f64>,
    rng: XorShift,
}

impl Zipf {
    /// A generator over `n` keys (at least 1) with exponent `s`, seeded.
    pub fn new(n: usize, s: f64, seed: u64) -> Self {
        let n = n.max(1);
        let mut cdf = Vec::with_capacity(n);
        let mut acc = 0.0;
        for i in 1..=n {
            acc += 1.0 / (i as f64).powf(s);
            cdf.push(acc);
        }
        for c in &mut cdf {
            *c /= acc;
        }
        Zipf {
            cdf,
            rng: XorShift::new(seed),
        }
    }

    /// The next rank (0 is the most popular).
    pub fn next_rank(&mut self) -> u64 {
        let u = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1) as u64
    }
}

/// `len` Zipf(`s`) requests over `n` keys.
pub fn zipf(len: usize, n: usize, s: f64, seed: u64) -> Vec<u64> {
    let mut z = Zipf::new(n, s, seed);
    (0..len).map(|_| z.next_rank()).collect()
}

/// Zipf requests interrupted every `every` requests by a scan of `scan` keys never seen
/// before.
pub fn zipf_with_scans(
    len: usize,
    n: usize,
    s: f64,
    every: usize,
    scan: usize,
    seed: u64,
) -> Vec<u64> {
    let mut z = Zipf::new(n, s, seed);
    let mut out = Vec::with_capacity(len);
    let mut fresh = 1u64 << 40;
    while out.len() < len {
        for _ in 0..every.min(len - out.len()) {
            out.push(z.next_rank());
        }
        for _ in 0..scan.min(len - out.len()) {
            out.push(fresh);
            fresh += 1;
        }
    }
    out
}

/// The keys `0..span` over and over (a loop larger than the cache when `span` exceeds
/// it), `len` requests.
pub fn looping(len: usize, span: u64) -> Vec<u64> {
    (0..len as u64).map(|i| i % span.max(1)).collect()
}

/// A working set of `set` keys, requested with Zipf(`s`) popularity, replaced by a fresh
/// set every `phase` requests.
pub fn shifting(len: usize, set: usize, s: f64, phase: usize, seed: u64) -> Vec<u64> {
    let mut z = Zipf::new(set, s, seed);
    (0..len)
        .map(|i| {
            let base = (i / phase.max(1)) as u64 * set as u64;
            base + z.next_rank()
        })
        .collect()
}
