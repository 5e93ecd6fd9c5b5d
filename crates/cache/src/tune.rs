//! The tuner: miss-ratio curves around a capacity for every policy, estimated on large
//! traces by spatial sampling of keys (SHARDS, Waldspurger et al., FAST'15): a sampled key
//! keeps all of its requests, and the cache is scaled by the sampling rate, so a 10 %
//! sample costs a tenth of the work.
//!
//! Plain SHARDS keeps a key when its hash falls under the rate. On skewed traces its
//! estimate then swings by one to two points with the choice of keys, because how many
//! of the few hot keys fall in the sample decides much of the hit ratio. [`sample_trace`]
//! removes most of that variance in two ways:
//!
//! - **Stratified by frequency.** Keys are grouped by the power of two of their request
//!   count, and each group contributes exactly its share (`rate` of its keys, rounding
//!   carried over between groups), the keys with the lowest salted hashes. Which keys are
//!   picked is still arbitrary; how many of each popularity is not.
//! - **The hottest keys thinned, not sampled.** A few keys with at least 0.1 % of the
//!   requests each (at most a tenth of the scaled cache) are always present, each with one
//!   in `1/rate` of its requests and a slot of its own on top of the scaled capacity.
//!   Their share of the sampled requests is then their share of the trace, so a policy's
//!   request-counted clocks (sketch aging, the adaptive window's sampling periods) run as
//!   they would on the full trace, and every sampled request counts once.
//!
//! On the shared traces over 1M requests (scarab-recs, cloudphysics_w106, orm-busy), at
//! capacities from 10k to 50k, LRU and W-TinyLFU come within 0.72 points of exact
//! simulation over eight choices of salt (plain SHARDS: up to 4.4 points low on
//! scarab-recs); `tests/traces.rs` checks three of them.

use crate::hash::{U64Map, mix64};
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

/// Plain SHARDS: the requests to keys whose hash falls under `rate` (all of them at 1.0),
/// in trace order. [`sample_trace`] is the tuner's better-behaved sampler.
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

/// A spatially sampled trace (see the [module documentation](self) for how keys are
/// chosen).
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// The sampled requests, in trace order.
    pub keys: Vec<u64>,
    /// Whether each sampled request is to one of the always-present hot keys.
    pub hot: Vec<bool>,
    /// The rate.
    pub rate: f64,
    /// Number of always-present hot keys.
    pub hot_keys: usize,
}

/// Samples `keys` at `rate` for a cache of `capacity` entries (see [`Sample`]).
pub fn sample_trace(keys: &[u64], rate: f64, capacity: u64) -> Sample {
    sample_trace_salted(keys, rate, capacity, SALT)
}

/// A uniform value in [0, 1) from a hash.
fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
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
    let rate = rate.max(0.0);
    let mut counts: U64Map<u64> = U64Map::default();
    for &k in keys {
        *counts.entry(k).or_default() += 1;
    }

    // The hottest keys: at most a tenth of the scaled cache, each at least 0.1 % of all
    // requests. Each gets an accumulator that releases one request in `1/rate`, starting
    // at a salted phase.
    let n_hot = ((capacity as f64 * rate) / 10.0).floor() as usize;
    let floor = (keys.len() as u64 / 1000).max(1);
    let mut by_count: Vec<(u64, u64)> = counts
        .iter()
        .filter(|&(_, &c)| c >= floor)
        .map(|(&k, &c)| (c, k))
        .collect();
    let n_hot = n_hot.min(by_count.len());
    let mut hot: U64Map<f64> = U64Map::default();
    if n_hot > 0 {
        by_count.select_nth_unstable_by(n_hot - 1, |a, b| b.cmp(a));
        hot.extend(
            by_count[..n_hot]
                .iter()
                .map(|&(_, k)| (k, unit(mix64(k ^ salt ^ PHASE_SALT)))),
        );
    }

    // The others, stratified by the power of two of their request count.
    let mut classes: Vec<Vec<(u64, u64)>> = vec![Vec::new(); 64];
    for (&k, &c) in &counts {
        if !hot.contains_key(&k) {
            classes[c.ilog2() as usize].push((mix64(k ^ salt), k));
        }
    }
    let mut chosen: U64Map<()> = U64Map::default();
    let mut carry = 0.0;
    for class in &mut classes {
        if class.is_empty() {
            continue;
        }
        let quota = rate * class.len() as f64 + carry;
        let take = quota.round().clamp(0.0, class.len() as f64);
        carry = quota - take;
        let take = take as usize;
        if take > 0 {
            class.select_nth_unstable(take - 1);
            chosen.extend(class[..take].iter().map(|&(_, k)| (k, ())));
        }
    }

    let mut out = Sample {
        rate,
        hot_keys: hot.len(),
        ..Sample::default()
    };
    for &k in keys {
        if let Some(acc) = hot.get_mut(&k) {
            *acc += rate;
            if *acc >= 1.0 {
                *acc -= 1.0;
                out.keys.push(k);
                out.hot.push(true);
            }
        } else if chosen.contains_key(&k) {
            out.keys.push(k);
            out.hot.push(false);
        }
    }
    out
}

/// Salts the hot keys' thinning phase apart from the key choice.
const PHASE_SALT: u64 = 0x3c6e_f372_fe94_f82b;

/// Runs `kind` at the full-size `capacity` over a sample; returns the estimated hit ratio.
pub fn estimate(kind: PolicyKind, capacity: u64, sample: &Sample) -> Result<f64, PolicyError> {
    // Hot keys are all present, not a `rate` share of them: they get their slots on top.
    let hot = sample.hot_keys as f64 * (1.0 - sample.rate.min(1.0));
    let scaled = ((capacity as f64 * sample.rate.min(1.0) + hot).round() as u64).max(1);
    Ok(crate::sim::simulate(kind, scaled, &sample.keys, None)?.hit_ratio())
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
