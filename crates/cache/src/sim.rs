//! The trace simulator: runs policies over a trace of keys (with optional weights) and
//! counts hits, including Belady's offline optimum (`opt`), in parallel over policy x
//! capacity combinations.

use std::collections::BinaryHeap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::hash::U64Map;
use crate::policy::{PolicyError, PolicyKind};

/// The outcome of one policy at one capacity over one trace.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimResult {
    /// The policy.
    pub policy: PolicyKind,
    /// The capacity (entries, or weight units with weights).
    pub capacity: u64,
    /// Requests that hit.
    pub hits: u64,
    /// Requests that missed.
    pub misses: u64,
}

/// hits / (hits + misses), 0 when both are 0.
pub(crate) fn hit_ratio(hits: u64, misses: u64) -> f64 {
    let n = hits + misses;
    if n == 0 { 0.0 } else { hits as f64 / n as f64 }
}

impl SimResult {
    /// hits / requests (0 for an empty trace).
    pub fn hit_ratio(&self) -> f64 {
        hit_ratio(self.hits, self.misses)
    }
}

/// Runs one policy at one capacity over `keys` (every weight 1 when `weights` is `None`;
/// otherwise `weights[i]` is the weight of request `i`).
pub fn simulate(
    kind: PolicyKind,
    capacity: u64,
    keys: &[u64],
    weights: Option<&[u32]>,
) -> Result<SimResult, PolicyError> {
    if kind == PolicyKind::Opt {
        let hits = opt_hits(keys, capacity, weights);
        return Ok(SimResult {
            policy: kind,
            capacity,
            hits,
            misses: keys.len() as u64 - hits,
        });
    }
    let mut policy = kind.build(capacity)?;
    let mut evicted = Vec::new();
    let mut hits = 0u64;
    for (i, &k) in keys.iter().enumerate() {
        let w = weights.and_then(|w| w.get(i).copied()).unwrap_or(1);
        evicted.clear();
        if policy.access(k, w, &mut evicted).is_hit() {
            hits += 1;
        }
    }
    Ok(SimResult {
        policy: kind,
        capacity,
        hits,
        misses: keys.len() as u64 - hits,
    })
}

/// "Never used again".
pub const NEVER: usize = usize::MAX;

/// For each request, the position of the next request for the same key ([`NEVER`] if none).
pub fn next_use(keys: &[u64]) -> Vec<usize> {
    let mut next = vec![NEVER; keys.len()];
    let mut last: U64Map<usize> = U64Map::default();
    for (i, &k) in keys.iter().enumerate().rev() {
        if let Some(j) = last.insert(k, i) {
            next[i] = j;
        }
    }
    next
}

/// Belady's optimum with optional admission: on a miss, of the residents and the
/// newcomer, the one next used furthest in the future is left out. With weights this is
/// the same greedy rule (not guaranteed optimal for unequal weights).
fn opt_hits(keys: &[u64], capacity: u64, weights: Option<&[u32]>) -> u64 {
    let mut hits = 0u64;
    opt_each_hit(keys, capacity, weights, &mut |_| hits += 1);
    hits
}

/// Runs Belady's optimum and calls `on_hit(i)` for every request `i` that hits.
pub fn opt_each_hit(
    keys: &[u64],
    capacity: u64,
    weights: Option<&[u32]>,
    on_hit: &mut dyn FnMut(usize),
) {
    let next = next_use(keys);
    let mut resident: U64Map<(usize, u64)> = U64Map::default();
    let mut heap: BinaryHeap<(usize, u64)> = BinaryHeap::new();
    let mut used = 0u64;
    for (i, &k) in keys.iter().enumerate() {
        let nu = next[i];
        if let Some(e) = resident.get_mut(&k) {
            on_hit(i);
            e.0 = nu;
            heap.push((nu, k));
            continue;
        }
        let w = u64::from(weights.and_then(|w| w.get(i).copied()).unwrap_or(1));
        if nu == NEVER || w > capacity {
            continue;
        }
        // Evict residents used later than the newcomer until it fits; otherwise decline.
        let mut fits = true;
        while used + w > capacity {
            let Some(&(vn, vk)) = heap.peek() else {
                fits = false;
                break;
            };
            if resident.get(&vk).map(|e| e.0) != Some(vn) {
                heap.pop();
                continue;
            }
            if vn > nu {
                heap.pop();
                if let Some((_, vw)) = resident.remove(&vk) {
                    used -= vw;
                }
            } else {
                fits = false;
                break;
            }
        }
        if fits {
            resident.insert(k, (nu, w));
            heap.push((nu, k));
            used += w;
        }
        // Keep stale heap entries bounded.
        if heap.len() > 4 * resident.len() + 1024 {
            heap.retain(|(n, key)| resident.get(key).map(|e| e.0) == Some(*n));
        }
    }
}

/// Runs every policy x capacity combination over one trace on up to `threads` threads
/// (0: one per CPU), calling `progress(done, total)` as combinations finish. Results come
/// back in policy-major order (`policies[0]` at every capacity first).
pub fn simulate_all(
    keys: &[u64],
    weights: Option<&[u32]>,
    policies: &[PolicyKind],
    capacities: &[u64],
    threads: usize,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Vec<SimResult>, PolicyError> {
    let jobs: Vec<(PolicyKind, u64)> = policies
        .iter()
        .flat_map(|p| capacities.iter().map(move |c| (*p, *c)))
        .collect();
    let total = jobs.len();
    let threads = if threads == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        threads
    }
    .clamp(1, total.max(1));
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<SimResult, PolicyError>>>> = Mutex::new(vec![None; total]);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(p, c)) = jobs.get(i) else { break };
                    let r = simulate(p, c, keys, weights);
                    if let Ok(mut v) = results.lock() {
                        v[i] = Some(r);
                    }
                    let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                    progress(d, total);
                }
            });
        }
    });
    let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results
        .into_iter()
        .map(|r| r.unwrap_or(Err(PolicyError::OfflineOnly)))
        .collect()
}
