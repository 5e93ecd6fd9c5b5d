//! The demo's cache section: every request reads its product record through a tiered cache
//! (memory, then an embedded disk store, then Redis when `--redis URL` is given) whose
//! loader is a simulated 3 ms database query. Every second the memory tier's eviction
//! policy is re-tuned from the sampled access trace. The report shows per-tier metrics
//! (hits, hit ratio, lookup latency p50/p99, entries) and the recommendations.

use super::Args;
use super::section::{RequestFuture, Section};
use super::workload::{Request, RunSummary};
use anyhow::Context as _;
use perfkit_cache::PolicyKind;
use perfkit_cache::tiered::{
    DiskTier, DiskTierConfig, MemoryTier, RedisTier, RedisTierConfig, TieredCache, TuningOutcome,
};
use perfkit_core::{ComponentReport, Figure, Finding, Severity};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Entries in the memory tier: a fiftieth of the workload's 5,000 keys, so the disk tier
/// serves a good share of the reads too.
const L1_ENTRIES: u64 = 100;
/// Bytes in the disk tier.
const DISK_BYTES: u64 = 16 << 20;
/// The simulated database query behind a miss.
const LOAD_TIME: Duration = Duration::from_millis(3);

type Cache = TieredCache<u64, String>;

pub(crate) struct CacheSection {
    cache: OnceLock<Cache>,
    /// The memory tier, shared with the memory-pressure hook registered with the budgets.
    l1: Arc<OnceLock<MemoryTier<u64, String>>>,
    dir: PathBuf,
    tuning: Arc<Mutex<Vec<TuningOutcome>>>,
    tuner_busy: Arc<AtomicBool>,
    last_tune: Mutex<Duration>,
}

impl CacheSection {
    pub(crate) fn new() -> Self {
        CacheSection {
            cache: OnceLock::new(),
            l1: Arc::new(OnceLock::new()),
            dir: std::env::temp_dir().join(format!("perfkit-demo-cache-{}", std::process::id())),
            tuning: Arc::new(Mutex::new(Vec::new())),
            tuner_busy: Arc::new(AtomicBool::new(false)),
            last_tune: Mutex::new(Duration::ZERO),
        }
    }

    /// A cleanup hook for a memory budget: when memory is under pressure, the memory tier
    /// gives back half of its entries, coldest first. Before the cache is built it does
    /// nothing.
    #[cfg_attr(not(feature = "budget"), allow(dead_code))]
    pub(crate) fn memory_pressure_hook(&self) -> impl Fn() + Send + Sync + 'static {
        let l1 = Arc::clone(&self.l1);
        move || {
            if let Some(tier) = l1.get() {
                tier.shrink_now(0.5);
            }
        }
    }

    fn build(&self, args: &Args) -> anyhow::Result<Cache> {
        // The Redis tier first: a bad --redis URL fails before anything is created.
        let redis = match &args.redis {
            Some(url) => {
                let mut config = RedisTierConfig::new(url.as_str());
                config.prefix = format!("perfkit-demo:{}:", std::process::id());
                Some(
                    RedisTier::new(config)
                        .with_context(|| format!("the --redis URL {url:?} is not usable"))?,
                )
            }
            None => None,
        };
        let memory = MemoryTier::new(L1_ENTRIES, PolicyKind::Lru)
            .context("building the memory tier")?
            .named("l1");
        let _ = self.l1.set(memory.clone());
        let disk = DiskTier::open(DiskTierConfig::new(self.dir.join("l2.redb"), DISK_BYTES))
            .with_context(|| format!("opening the disk tier in {}", self.dir.display()))?;
        let mut builder = TieredCache::builder()
            .tier(memory)
            .tier(disk)
            .default_ttl(Duration::from_secs(600))
            .sample_rate(1.0)
            .trace_capacity(20_000);
        if let Some(redis) = redis {
            builder = builder.tier(redis);
        }
        Ok(builder.build()?)
    }
}

impl Drop for CacheSection {
    fn drop(&mut self) {
        // The disk tier's file lives only as long as the demo.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The product record a request needs: what the simulated database returns.
async fn load_product(key: u64) -> Result<String, std::io::Error> {
    tokio::time::sleep(LOAD_TIME).await;
    Ok(format!(
        "{{\"id\":{key},\"name\":\"product {key}\",\"price_cents\":{},\"stock\":{}}}",
        (key * 7919) % 100_000,
        (key * 31) % 500
    ))
}

impl Section for CacheSection {
    fn name(&self) -> &'static str {
        "cache"
    }

    fn start(&self, args: &Args) -> anyhow::Result<()> {
        let cache = self.build(args)?;
        let _ = self.cache.set(cache);
        Ok(())
    }

    fn in_request<'a>(&'a self, request: &'a Request) -> RequestFuture<'a> {
        Box::pin(async move {
            if let Some(cache) = self.cache.get() {
                let key = request.key;
                // A failed load only means this request went without its record.
                let _ = cache.get_with(&key, || load_product(key)).await;
            }
        })
    }

    fn tick(&self, elapsed: Duration) {
        let Some(cache) = self.cache.get() else {
            return;
        };
        let mut last = self.last_tune.lock().unwrap_or_else(|e| e.into_inner());
        if elapsed.saturating_sub(*last) < Duration::from_secs(1) {
            return;
        }
        *last = elapsed;
        if self.tuner_busy.swap(true, Ordering::AcqRel) {
            return;
        }
        // The miniature simulations are CPU work: off the runtime's workers.
        let (cache, tuning, busy) = (
            cache.clone(),
            Arc::clone(&self.tuning),
            Arc::clone(&self.tuner_busy),
        );
        tokio::task::spawn_blocking(move || {
            if let Ok(outcome) = cache.optimize_eviction_policy("l1")
                && outcome.switched
            {
                tuning
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(outcome);
            }
            busy.store(false, Ordering::Release);
        });
    }

    fn finish(&mut self, _args: &Args, _run: &RunSummary) -> anyhow::Result<ComponentReport> {
        let Some(cache) = self.cache.get() else {
            let mut report = ComponentReport::new("cache");
            report.summary = "the cache did not start".to_owned();
            return Ok(report);
        };
        let mut report = cache.report().to_component();
        for t in self.tuning.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            report = report.with_finding(Finding::new(
                Severity::Info,
                "policy_switched",
                format!(
                    "online tuning switched {} from {} to {}: simulated hit ratio {:.0} % -> {:.0} % on {} sampled reads",
                    t.tier,
                    t.from,
                    t.to,
                    t.current_hit_ratio * 100.0,
                    t.best_hit_ratio * 100.0,
                    t.samples
                ),
            ));
        }
        let switches = self.tuning.lock().map(|t| t.len() as u64).unwrap_or(0);
        report
            .figures
            .push(Figure::count("l1_policy_switches", switches));
        if let Some(l1) = self.l1.get() {
            report.summary = format!("{}; l1 policy now {}", report.summary, l1.policy());
        }
        Ok(report)
    }
}
