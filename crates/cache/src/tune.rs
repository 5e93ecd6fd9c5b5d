//! The tuner: miss-ratio curves around a capacity for every policy, estimated on large
//! traces by spatial sampling of keys (SHARDS, Waldspurger et al., FAST'15): a key is
//! kept when its hash falls under `rate`, and the cache is scaled by the same rate, so a
//! 10 % sample costs a tenth of the work with an error under a point on the shared traces.

use crate::hash::mix64;
use crate::policy::{PolicyError, PolicyKind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// What to tune.
#[derive(Debug, Clone, PartialEq)]
pub struct TuneOptions {
    /// The capacity the user has in mind (entries).
    pub capacity: u64,
    /// Share of keys simulated, in (0, 1]; `None` picks 1.0 under 1M requests and 0.1
    /// above.
    pub sample_rate: Option<f64>,
    /// The rate is raised so that the scaled cache holds at least this many entries
    /// (1000): tiny scaled caches misestimate by more than a point.
    pub min_sampled_capacity: u64,
    /// Capacities of the curve as multiples of `capacity`.
    pub multipliers: Vec<f64>,
    /// Policies to compare (`opt` is included as the bound when listed).
    pub policies: Vec<PolicyKind>,
    /// Worker threads (0: one per CPU).
    pub threads: usize,
}

impl TuneOptions {
    /// Every policy, capacities from a quarter to four times `capacity`.
    pub fn new(capacity: u64) -> Self {
        TuneOptions {
            capacity,
            sample_rate: None,
            min_sampled_capacity: 1000,
            multipliers: vec![0.25, 0.5, 1.0, 2.0, 4.0],
            policies: PolicyKind::ALL.to_vec(),
            threads: 0,
        }
    }
}

/// One estimated point of a miss-ratio curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CurvePoint {
    /// The policy.
    pub policy: PolicyKind,
    /// The full-size capacity this point stands for.
    pub capacity: u64,
    /// Estimated hit ratio (0..1).
    pub hit_ratio: f64,
}

/// The tuner's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct TuneReport {
    /// Requests in the trace.
    pub requests: usize,
    /// Requests simulated after sampling.
    pub sampled_requests: usize,
    /// The sampling rate used.
    pub sample_rate: f64,
    /// The capacity asked about.
    pub capacity: u64,
    /// The online policy with the best estimated hit ratio at `capacity`.
    pub recommended: PolicyKind,
    /// Every point, policy-major.
    pub curve: Vec<CurvePoint>,
}

impl TuneReport {
    /// The estimated hit ratio of `policy` at `capacity`, if computed.
    pub fn hit_ratio(&self, policy: PolicyKind, capacity: u64) -> Option<f64> {
        self.curve
            .iter()
            .find(|p| p.policy == policy && p.capacity == capacity)
            .map(|p| p.hit_ratio)
    }
}

/// The keys whose hash falls under `rate` (all of them at 1.0), in trace order.
pub fn sample_keys(keys: &[u64], rate: f64) -> Vec<u64> {
    if rate >= 1.0 {
        return keys.to_vec();
    }
    let threshold = (rate.max(0.0) * u64::MAX as f64) as u64;
    keys.iter()
        .copied()
        .filter(|&k| mix64(k ^ SALT) <= threshold)
        .collect()
}

const SALT: u64 = 0x0005_4a2d_5f00_0001;

/// A spatially sampled trace. Plain SHARDS misestimates skewed traces by points when a
/// few very hot keys fall in or out of the sample, so the hottest keys (a tenth of the
/// scaled cache, each at least 0.1 % of the requests) are always kept, and their requests count with weight `rate`.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// The sampled requests.
    pub keys: Vec<u64>,
    /// Whether each sampled request is to an always-kept hot key.
    pub hot: Vec<bool>,
    /// The rate.
    pub rate: f64,
    /// Number of always-kept hot keys.
    pub hot_keys: usize,
}

/// Samples `keys` at `rate` for a cache of `capacity` entries (see [`Sample`]).
pub fn sample_trace(keys: &[u64], rate: f64, capacity: u64) -> Sample {
    sample_trace_salted(keys, rate, capacity, SALT)
}

/// [`sample_trace`] with another choice of sampled keys (`salt`), for independent samples.
pub fn sample_trace_salted(keys: &[u64], rate: f64, capacity: u64, salt: u64) -> Sample {
    if rate >= 1.0 {
        return Sample {
            keys: keys.to_vec(),
            hot: vec![false; keys.len()],
            rate: 1.0,
            hot_keys: 0,
        };
    }
    let mut counts: crate::hash::U64Map<u64> = crate::hash::U64Map::default();
    for &k in keys {
        *counts.entry(k).or_default() += 1;
    }
    let n_hot = ((capacity as f64 * rate) / 10.0).floor() as usize;
    // Hot: at least 0.1 % of all requests each.
    let floor = (keys.len() as u64 / 1000).max(1);
    let mut by_count: Vec<(u64, u64)> = counts
        .into_iter()
        .filter(|&(_, c)| c >= floor)
        .map(|(k, c)| (c, k))
        .collect();
    let n_hot = n_hot.min(by_count.len());
    let hot_set: crate::hash::U64Map<()> = if n_hot > 0 {
        by_count.select_nth_unstable_by(n_hot - 1, |a, b| b.cmp(a));
        by_count[..n_hot].iter().map(|&(_, k)| (k, ())).collect()
    } else {
        Default::default()
    };
    let threshold = (rate.max(0.0) * u64::MAX as f64) as u64;
    let mut out = Sample {
        rate,
        hot_keys: hot_set.len(),
        ..Sample::default()
    };
    for &k in keys {
        let hot = hot_set.contains_key(&k);
        if hot || mix64(k ^ salt) <= threshold {
            out.keys.push(k);
            out.hot.push(hot);
        }
    }
    out
}

/// Runs `kind` at the full-size `capacity` over a sample; returns the estimated hit ratio.
pub fn estimate(kind: PolicyKind, capacity: u64, sample: &Sample) -> Result<f64, PolicyError> {
    // Hot keys are all present, not a `rate` share of them: they get their slots on top.
    let hot = sample.hot_keys as f64 * (1.0 - sample.rate);
    let scaled = ((capacity as f64 * sample.rate + hot).round() as u64).max(1);
    if sample.rate >= 1.0 {
        return Ok(crate::sim::simulate(kind, scaled, &sample.keys, None)?.hit_ratio());
    }
    let weight = |i: usize| if sample.hot[i] { sample.rate } else { 1.0 };
    let total: f64 = (0..sample.keys.len()).map(weight).sum();
    if kind == PolicyKind::Opt {
        let mut hits = 0.0;
        crate::sim::opt_each_hit(&sample.keys, scaled, None, &mut |i| hits += weight(i));
        return Ok(if total > 0.0 { hits / total } else { 0.0 });
    }
    let mut policy = kind.build(scaled)?;
    let mut evicted = Vec::new();
    let (mut hits, mut total) = (0.0f64, 0.0f64);
    for (&k, &hot) in sample.keys.iter().zip(&sample.hot) {
        evicted.clear();
        let w = if hot { sample.rate } else { 1.0 };
        total += w;
        if policy.access(k, 1, &mut evicted).is_hit() {
            hits += w;
        }
    }
    Ok(if total > 0.0 { hits / total } else { 0.0 })
}

/// Estimates the curve and recommends a policy. `progress(done, total)` is called as
/// simulations finish.
pub fn tune(
    keys: &[u64],
    opts: &TuneOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<TuneReport, PolicyError> {
    let rate = opts
        .sample_rate
        .unwrap_or(if keys.len() > 1_000_000 { 0.1 } else { 1.0 })
        .max(opts.min_sampled_capacity as f64 / opts.capacity.max(1) as f64)
        .clamp(1e-4, 1.0);
    let sampled = sample_trace(keys, rate, opts.capacity);
    let mut full: Vec<u64> = opts
        .multipliers
        .iter()
        .map(|m| ((opts.capacity as f64 * m).round() as u64).max(1))
        .collect();
    if !full.contains(&opts.capacity) {
        full.push(opts.capacity);
    }
    full.sort_unstable();
    full.dedup();
    let jobs: Vec<(PolicyKind, u64)> = opts
        .policies
        .iter()
        .flat_map(|p| full.iter().map(move |c| (*p, *c)))
        .collect();
    let total = jobs.len();
    let threads = if opts.threads == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        opts.threads
    }
    .clamp(1, total.max(1));
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let slots: Mutex<Vec<Option<Result<f64, PolicyError>>>> = Mutex::new(vec![None; total]);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(p, c)) = jobs.get(i) else { break };
                    let r = estimate(p, c, &sampled);
                    if let Ok(mut v) = slots.lock() {
                        v[i] = Some(r);
                    }
                    progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
                }
            });
        }
    });
    let slots = slots.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut curve = Vec::with_capacity(total);
    for (slot, &(policy, capacity)) in slots.into_iter().zip(&jobs) {
        let hit_ratio = slot.unwrap_or(Err(PolicyError::OfflineOnly))?;
        curve.push(CurvePoint {
            policy,
            capacity,
            hit_ratio,
        });
    }
    let recommended = curve
        .iter()
        .filter(|p| p.capacity == opts.capacity && p.policy != PolicyKind::Opt)
        // The default wins ties.
        .max_by(|a, b| {
            a.hit_ratio
                .total_cmp(&b.hit_ratio)
                .then((a.policy == PolicyKind::WTinyLfu).cmp(&(b.policy == PolicyKind::WTinyLfu)))
        })
        .map_or(PolicyKind::WTinyLfu, |p| p.policy);
    Ok(TuneReport {
        requests: keys.len(),
        sampled_requests: sampled.keys.len(),
        sample_rate: rate,
        capacity: opts.capacity,
        recommended,
        curve,
    })
}
