//! Recommendations with numbers, from the sampled access trace: miniature simulations of
//! other policies and capacities for the memory tier, the share and cost of each lower
//! tier, and expiry before reuse; and online tuning of the memory tier's policy.

use super::cache::{TieredCache, TieredError};
use super::metrics::{CacheSnapshot, TierSnapshot};
use super::tier::TierKind;
use super::trace::Sample;
use crate::policy::PolicyKind;
use perfkit_core::{ComponentReport, Figure, Finding, Report, Severity};
use serde::{Deserialize, Serialize};
use std::hash::Hash;

/// One piece of advice, with the numbers behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    /// A machine-friendly kind: `capacity`, `policy`, `tier_cost`, `ttl`.
    pub kind: String,
    /// The tier it is about.
    pub tier: String,
    /// One sentence for humans.
    pub message: String,
    /// The measured (or simulated current) value, a ratio.
    pub current: f64,
    /// The value the advice would give, a ratio.
    pub projected: f64,
}

/// The result of [`TieredCache::optimize_eviction_policy`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TuningOutcome {
    /// The tier tuned.
    pub tier: String,
    /// The policy before.
    pub from: String,
    /// The policy after (the same when nothing changed).
    pub to: String,
    /// Simulated hit ratio of the policy before, on the recent sampled trace.
    pub current_hit_ratio: f64,
    /// Simulated hit ratio of the best policy.
    pub best_hit_ratio: f64,
    /// Whether the policy was switched.
    pub switched: bool,
    /// Sampled accesses the decision rests on.
    pub samples: usize,
}

/// Simulates `kind` at `capacity` over the sampled keys; returns the hit ratio.
pub(crate) fn simulate(kind: PolicyKind, capacity: u64, keys: &[u64]) -> Option<f64> {
    if keys.is_empty() {
        return None;
    }
    let mut policy = kind.build(capacity.max(1)).ok()?;
    let mut evicted = Vec::new();
    let mut hits = 0u64;
    for &k in keys {
        evicted.clear();
        if policy.access(k, 1, &mut evicted).is_hit() {
            hits += 1;
        }
    }
    Some(hits as f64 / keys.len() as f64)
}

fn pct(r: f64) -> String {
    format!("{:.0} %", r * 100.0)
}

fn fmt_count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Minimum sampled accesses before simulations are trusted.
const MIN_SAMPLES: usize = 200;

impl<K, V> TieredCache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn sampled_keys(&self) -> (Vec<Sample>, Vec<u64>) {
        let samples = self.shared.trace.samples();
        let keys = samples.iter().map(|s| s.key).collect();
        (samples, keys)
    }

    fn scaled(&self, capacity: u64) -> u64 {
        ((capacity as f64) * self.shared.trace.rate())
            .round()
            .max(1.0) as u64
    }

    /// Advice with numbers, from the metrics and miniature simulations on the sampled
    /// trace. Empty until enough accesses were sampled.
    pub fn recommendations(&self) -> Vec<Recommendation> {
        let metrics = self.metrics();
        let (samples, keys) = self.sampled_keys();
        let mut out = Vec::new();
        if samples.len() >= MIN_SAMPLES {
            self.memory_advice(&keys, &mut out);
        }
        tier_cost_advice(&metrics, &mut out);
        ttl_advice(&metrics, &mut out);
        out
    }

    fn memory_advice(&self, keys: &[u64], out: &mut Vec<Recommendation>) {
        for slot in &self.shared.slots {
            let Some(control) = slot.tier.policy_control() else {
                continue;
            };
            let name = slot.tier.name();
            let Ok(current) = control.policy_name().parse::<PolicyKind>() else {
                continue;
            };
            let capacity = control.capacity_entries();
            let Some(base) = simulate(current, self.scaled(capacity), keys) else {
                continue;
            };
            // Capacity: what doubling or quadrupling would give.
            for factor in [2u64, 4] {
                let bigger = capacity.saturating_mul(factor);
                if let Some(r) = simulate(current, self.scaled(bigger), keys)
                    && r - base >= 0.05
                {
                    out.push(Recommendation {
                        kind: "capacity".into(),
                        tier: name.to_owned(),
                        message: format!(
                            "{name} at {} entries would raise its hit ratio from {} to {}",
                            fmt_count(bigger),
                            pct(base),
                            pct(r)
                        ),
                        current: base,
                        projected: r,
                    });
                    break;
                }
            }
            // Policy: the best online policy at the same capacity.
            let best = PolicyKind::online()
                .filter_map(|k| Some((k, simulate(k, self.scaled(capacity), keys)?)))
                .max_by(|a, b| a.1.total_cmp(&b.1));
            if let Some((kind, r)) = best
                && kind != current
                && r - base >= 0.02
            {
                out.push(Recommendation {
                    kind: "policy".into(),
                    tier: name.to_owned(),
                    message: format!(
                        "{} would beat {} by {:.0} points on this workload ({} against {})",
                        kind.name(),
                        current.name(),
                        (r - base) * 100.0,
                        pct(r),
                        pct(base)
                    ),
                    current: base,
                    projected: r,
                });
            }
        }
    }

    /// Switches the memory tier named `tier` to the policy that the miniature simulation on
    /// the recent sampled trace shows better than the current one by more than
    /// `threshold` (a hit-ratio difference, 0.02 = 2 points). Forgets the trace after a
    /// switch, so the next decision rests on what the new policy sees.
    ///
    /// It simulates every policy over the sampled trace (up to the trace capacity): CPU
    /// work of a few milliseconds per 10,000 samples, so call it from a blocking context
    /// (`spawn_blocking`) or a background thread, not in a request.
    pub fn optimize_eviction_policy_with(
        &self,
        tier: &str,
        threshold: f64,
    ) -> Result<TuningOutcome, TieredError> {
        let slot = self
            .shared
            .slots
            .iter()
            .find(|s| s.tier.name() == tier)
            .ok_or_else(|| TieredError::UnknownTier(tier.to_owned()))?;
        let control = slot
            .tier
            .policy_control()
            .ok_or_else(|| TieredError::NotTunable(tier.to_owned()))?;
        let current_name = control.policy_name();
        let current = current_name
            .parse::<PolicyKind>()
            .map_err(|e| TieredError::Invalid(e.to_string()))?;
        let (_, keys) = self.sampled_keys();
        let capacity = self.scaled(control.capacity_entries());
        let mut outcome = TuningOutcome {
            tier: tier.to_owned(),
            from: current_name.clone(),
            to: current_name,
            current_hit_ratio: 0.0,
            best_hit_ratio: 0.0,
            switched: false,
            samples: keys.len(),
        };
        if keys.len() < MIN_SAMPLES {
            return Ok(outcome);
        }
        let base = simulate(current, capacity, &keys).unwrap_or(0.0);
        outcome.current_hit_ratio = base;
        outcome.best_hit_ratio = base;
        let available = control.available_policies();
        let best = available
            .iter()
            .filter_map(|n| n.parse::<PolicyKind>().ok())
            .filter_map(|k| Some((k, simulate(k, capacity, &keys)?)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((kind, r)) = best {
            outcome.best_hit_ratio = r;
            if kind != current && r - base > threshold && control.switch_policy(kind.name()) {
                outcome.to = kind.name().to_owned();
                outcome.switched = true;
                self.shared.trace.clear();
            }
        }
        Ok(outcome)
    }

    /// [`optimize_eviction_policy_with`](Self::optimize_eviction_policy_with) a 2-point
    /// threshold.
    pub fn optimize_eviction_policy(&self, tier: &str) -> Result<TuningOutcome, TieredError> {
        self.optimize_eviction_policy_with(tier, 0.02)
    }

    /// The cache's report: metrics per tier and the recommendations.
    pub fn report(&self) -> CacheReport {
        CacheReport {
            metrics: self.metrics(),
            recommendations: self.recommendations(),
        }
    }
}

fn tier_cost_advice(m: &CacheSnapshot, out: &mut Vec<Recommendation>) {
    if m.requests < 100 || m.load_p50_ns == 0 {
        return;
    }
    for t in m.tiers.iter().filter(|t| t.kind != TierKind::Memory) {
        let lookups = t.hits + t.misses - t.skipped;
        if lookups == 0 {
            continue;
        }
        let share = t.hits as f64 / m.requests as f64;
        // Time it saves (a load avoided per hit) against time it costs (every lookup).
        let saved = t.hits as f64 * m.load_p50_ns.saturating_sub(t.latency_p50_ns) as f64;
        let cost = lookups as f64 * t.latency_mean_ns;
        if share < 0.05 && cost > saved {
            out.push(Recommendation {
                kind: "tier_cost".into(),
                tier: t.name.clone(),
                message: format!(
                    "{} serves {} of reads: it costs more than it saves ({:.1} ms of lookups for {:.1} ms of loads avoided)",
                    t.name,
                    pct(share),
                    cost / 1e6,
                    saved / 1e6
                ),
                current: share,
                projected: 0.0,
            });
        }
    }
}

fn ttl_advice(m: &CacheSnapshot, out: &mut Vec<Recommendation>) {
    if let Some(t) = m.tiers.first() {
        let reused = t.hits + t.expired;
        if reused >= 50 {
            let frac = t.expired as f64 / reused as f64;
            if frac >= 0.2 {
                out.push(Recommendation {
                    kind: "ttl".into(),
                    tier: t.name.clone(),
                    message: format!(
                        "{} of entries expire before their next use: raise TTL",
                        pct(frac)
                    ),
                    current: frac,
                    projected: 0.0,
                });
            }
        }
    }
}

/// The tiered cache's report: its metrics and recommendations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheReport {
    /// Every metric.
    pub metrics: CacheSnapshot,
    /// The advice.
    pub recommendations: Vec<Recommendation>,
}

fn tier_figures(t: &TierSnapshot) -> Vec<Figure> {
    vec![
        Figure::ratio(format!("{}_hit_ratio", t.name), t.hit_ratio),
        Figure::count(format!("{}_hits", t.name), t.hits),
        Figure::count(format!("{}_entries", t.name), t.entries),
        Figure::secs(
            format!("{}_lookup_p50", t.name),
            t.latency_p50_ns as f64 / 1e9,
        ),
        Figure::secs(
            format!("{}_lookup_p99", t.name),
            t.latency_p99_ns as f64 / 1e9,
        ),
    ]
}

impl Report for CacheReport {
    fn name(&self) -> &str {
        "cache"
    }

    fn summary(&self) -> String {
        let tiers: Vec<&str> = self.metrics.tiers.iter().map(|t| t.name.as_str()).collect();
        format!(
            "{} reads through {}, {} served by a tier, {} loads",
            self.metrics.requests,
            tiers.join(" + "),
            pct(self.metrics.hit_ratio),
            self.metrics.loads
        )
    }

    fn figures(&self) -> Vec<Figure> {
        let m = &self.metrics;
        let mut out = vec![
            Figure::count("requests", m.requests),
            Figure::ratio("hit_ratio", m.hit_ratio),
            Figure::count("loads", m.loads),
            Figure::count("coalesced", m.coalesced),
            Figure::secs("load_p50", m.load_p50_ns as f64 / 1e9),
        ];
        for t in &m.tiers {
            out.extend(tier_figures(t));
            if t.errors > 0 || t.skipped > 0 || t.breaker_opens > 0 {
                out.push(Figure::count(format!("{}_errors", t.name), t.errors));
                out.push(Figure::count(format!("{}_skipped", t.name), t.skipped));
                out.push(Figure::count(
                    format!("{}_breaker_opens", t.name),
                    t.breaker_opens,
                ));
            }
            if t.corrupt > 0 {
                out.push(Figure::count(format!("{}_corrupt", t.name), t.corrupt));
            }
        }
        out
    }

    fn findings(&self) -> Vec<Finding> {
        let mut out: Vec<Finding> = self
            .recommendations
            .iter()
            .map(|r| Finding::new(Severity::Info, r.kind.clone(), r.message.clone()))
            .collect();
        for t in &self.metrics.tiers {
            if t.breaker_opens > 0 {
                out.push(Finding::new(
                    Severity::Warning,
                    "tier_unavailable",
                    format!(
                        "{} was unavailable: its breaker opened {} times, {} lookups skipped",
                        t.name, t.breaker_opens, t.skipped
                    ),
                ));
            }
            if t.corrupt > 0 {
                out.push(Finding::new(
                    Severity::Warning,
                    "corrupt_entries",
                    format!("{} dropped {} corrupt entries", t.name, t.corrupt),
                ));
            }
        }
        out
    }
}

impl CacheReport {
    /// The uniform report the demo and dashboards render.
    pub fn to_component(&self) -> ComponentReport {
        ComponentReport::from_report(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_grouped() {
        assert_eq!(fmt_count(25_000), "25,000");
        assert_eq!(fmt_count(999), "999");
        assert_eq!(fmt_count(1_000_000), "1,000,000");
    }

    #[test]
    fn simulation_matches_a_hand_count() {
        // Capacity 2, LRU: 1 2 1 3 1 2 -> hits at the 3rd and 5th requests.
        assert_eq!(
            simulate(PolicyKind::Lru, 2, &[1, 2, 1, 3, 1, 2]),
            Some(2.0 / 6.0)
        );
        assert_eq!(simulate(PolicyKind::Lru, 2, &[]), None);
    }
}
