//! Policies against simple reference models, and the contract every policy keeps.

use perfkit_cache::policy::{Access, PolicyKind};
use perfkit_cache::simulate;
use proptest::prelude::*;
use std::collections::{HashSet, VecDeque};

fn lru_reference(keys: &[u64], cap: usize) -> u64 {
    let mut order: Vec<u64> = Vec::new(); // most recent last
    let mut hits = 0;
    for &k in keys {
        if let Some(pos) = order.iter().position(|&x| x == k) {
            hits += 1;
            order.remove(pos);
        } else if order.len() == cap {
            order.remove(0);
        }
        order.push(k);
    }
    hits
}

fn fifo_reference(keys: &[u64], cap: usize) -> u64 {
    let mut q: VecDeque<u64> = VecDeque::new();
    let mut hits = 0;
    for &k in keys {
        if q.contains(&k) {
            hits += 1;
        } else {
            if q.len() == cap {
                q.pop_front();
            }
            q.push_back(k);
        }
    }
    hits
}

fn sieve_reference(keys: &[u64], cap: usize) -> u64 {
    let mut q: Vec<(u64, bool)> = Vec::new(); // oldest first
    let mut hand: Option<usize> = None;
    let mut hits = 0;
    for &k in keys {
        if let Some(e) = q.iter_mut().find(|e| e.0 == k) {
            e.1 = true;
            hits += 1;
            continue;
        }
        if q.len() == cap {
            let mut i = hand.unwrap_or(0);
            while q[i].1 {
                q[i].1 = false;
                i = if i + 1 == q.len() { 0 } else { i + 1 };
            }
            q.remove(i);
            hand = (i < q.len()).then_some(i);
        }
        q.push((k, false));
    }
    hits
}

fn lfu_reference(keys: &[u64], cap: usize) -> u64 {
    // (key, count, last use); evict the lowest count, then the least recent.
    let mut res: Vec<(u64, u64, usize)> = Vec::new();
    let mut hits = 0;
    for (t, &k) in keys.iter().enumerate() {
        if let Some(e) = res.iter_mut().find(|e| e.0 == k) {
            e.1 += 1;
            e.2 = t;
            hits += 1;
            continue;
        }
        if res.len() == cap {
            let (pos, _) = res
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| (e.1, e.2))
                .unwrap();
            res.remove(pos);
        }
        res.push((k, 1, t));
    }
    hits
}

/// Belady with optional admission, by brute force: on a miss with a full cache, leave out
/// whichever of residents and newcomer is next used furthest away.
fn opt_reference(keys: &[u64], cap: usize) -> u64 {
    let next = |from: usize, k: u64| {
        keys[from..]
            .iter()
            .position(|&x| x == k)
            .map_or(usize::MAX, |p| p + from)
    };
    let mut res: Vec<u64> = Vec::new();
    let mut hits = 0;
    for (i, &k) in keys.iter().enumerate() {
        if res.contains(&k) {
            hits += 1;
            continue;
        }
        if res.len() < cap {
            res.push(k);
            continue;
        }
        let newcomer = next(i + 1, k);
        let (pos, far) = res
            .iter()
            .enumerate()
            .map(|(p, &r)| (p, next(i + 1, r)))
            .max_by_key(|&(_, n)| n)
            .unwrap();
        if far > newcomer {
            res[pos] = k;
        }
    }
    hits
}

/// S3-FIFO: a small FIFO of a tenth of the capacity, a main FIFO, 2-bit use counts, and a
/// ghost: the keys of the last `G` departures from small (`G` as many keys as main holds at
/// most), less those that have returned (the paper's ghost is a FIFO of `G` keys; why this
/// one is a window: `policy/s3fifo.rs`). A key used while in small moves to main when it
/// reaches small's oldest end, with its count cleared; main reinserts a used key with its
/// count lowered by one; a key leaving small unused is remembered, and returns straight to
/// main.
fn s3fifo_reference(keys: &[u64], cap: usize) -> u64 {
    s3fifo_weighted_reference(keys, &vec![1; keys.len()], cap as u64)
}

/// [`s3fifo_reference`] with a weight per request (a key's weight is its first request's;
/// small's share and the capacity count weight, the ghost's window counts departures).
fn s3fifo_weighted_reference(keys: &[u64], weights: &[u32], cap: u64) -> u64 {
    use std::collections::HashMap;
    let small_target = (cap / 10).max(1);
    let ghost_cap = cap.saturating_sub(small_target).max(1) as usize;
    let (mut small, mut main, mut ghost) = (VecDeque::new(), VecDeque::new(), VecDeque::new());
    let (mut small_w, mut main_w) = (0u64, 0u64);
    // Resident keys: (use count, weight).
    let mut res: HashMap<u64, (u8, u64)> = HashMap::new();
    let mut hits = 0;
    for (&k, &w) in keys.iter().zip(weights) {
        if let Some(e) = res.get_mut(&k) {
            e.0 = (e.0 + 1).min(3);
            hits += 1;
            continue;
        }
        let w = u64::from(w);
        if w > cap {
            continue;
        }
        while small_w + main_w + w > cap {
            if !small.is_empty() && (small_w >= small_target || main.is_empty()) {
                let old: u64 = small.pop_back().unwrap();
                let e = res.get_mut(&old).unwrap();
                small_w -= e.1;
                if e.0 > 0 {
                    e.0 = 0;
                    main_w += e.1;
                    main.push_front(old);
                    continue;
                }
                res.remove(&old);
                ghost.push_back(Some(old));
                if ghost.len() > ghost_cap {
                    ghost.pop_front();
                }
            } else {
                let old: u64 = main.pop_back().unwrap();
                let e = res.get_mut(&old).unwrap();
                if e.0 > 0 {
                    e.0 -= 1;
                    main.push_front(old);
                    continue;
                }
                main_w -= e.1;
                res.remove(&old);
            }
        }
        res.insert(k, (0, w));
        // A returning ghost's departure still counts towards the window.
        match ghost.iter_mut().find(|g| **g == Some(k)) {
            Some(g) => {
                *g = None;
                main_w += w;
                main.push_front(k);
            }
            None => {
                small_w += w;
                small.push_front(k);
            }
        }
    }
    hits
}

fn trace_strategy() -> impl Strategy<Value = (Vec<u64>, usize)> {
    (1usize..12, 1u64..40).prop_flat_map(|(cap, universe)| {
        (proptest::collection::vec(0..universe, 0..400), Just(cap))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn lru_matches_reference((keys, cap) in trace_strategy()) {
        let r = simulate(PolicyKind::Lru, cap as u64, &keys, None).unwrap();
        prop_assert_eq!(r.hits, lru_reference(&keys, cap));
    }

    #[test]
    fn fifo_matches_reference((keys, cap) in trace_strategy()) {
        let r = simulate(PolicyKind::Fifo, cap as u64, &keys, None).unwrap();
        prop_assert_eq!(r.hits, fifo_reference(&keys, cap));
    }

    #[test]
    fn sieve_matches_reference((keys, cap) in trace_strategy()) {
        let r = simulate(PolicyKind::Sieve, cap as u64, &keys, None).unwrap();
        prop_assert_eq!(r.hits, sieve_reference(&keys, cap));
    }

    #[test]
    fn s3fifo_matches_reference((keys, cap) in trace_strategy()) {
        let r = simulate(PolicyKind::S3Fifo, cap as u64, &keys, None).unwrap();
        prop_assert_eq!(r.hits, s3fifo_reference(&keys, cap));
    }

    #[test]
    fn lfu_matches_reference((keys, cap) in trace_strategy()) {
        let r = simulate(PolicyKind::Lfu, cap as u64, &keys, None).unwrap();
        prop_assert_eq!(r.hits, lfu_reference(&keys, cap));
    }

    #[test]
    fn opt_matches_reference_and_bounds_every_policy((keys, cap) in trace_strategy()) {
        let opt = simulate(PolicyKind::Opt, cap as u64, &keys, None).unwrap();
        prop_assert_eq!(opt.hits, opt_reference(&keys, cap));
        for kind in PolicyKind::online() {
            let r = simulate(kind, cap as u64, &keys, None).unwrap();
            prop_assert!(r.hits <= opt.hits, "{} {} > opt {}", kind, r.hits, opt.hits);
        }
    }

    /// Every policy: weight never above capacity, evicted keys are gone, residents are
    /// exactly what the policy says, removals work.
    #[test]
    fn policy_contract(
        ops in proptest::collection::vec((0u64..30, 1u32..4, 0u8..10), 0..300),
        cap in 1u64..15,
    ) {
        for kind in PolicyKind::online() {
            let mut p = kind.build(cap).unwrap();
            let mut model: HashSet<u64> = HashSet::new();
            let mut ev = Vec::new();
            for &(k, w, op) in &ops {
                ev.clear();
                match op {
                    0 => {
                        prop_assert_eq!(p.remove(k), model.remove(&k), "{} remove", kind);
                    }
                    1 if model.contains(&k) => {
                        p.set_weight(k, w, &mut ev);
                    }
                    _ => {
                        let was = model.contains(&k);
                        let a = p.access(k, w, &mut ev);
                        prop_assert_eq!(a == Access::Hit, was, "{} hit mismatch", kind);
                        if a == Access::Admitted {
                            model.insert(k);
                        }
                    }
                }
                for e in &ev {
                    prop_assert!(model.remove(e), "{} evicted non-resident {}", kind, e);
                }
                prop_assert!(p.weight() <= cap, "{} weight {} > cap {}", kind, p.weight(), cap);
                prop_assert_eq!(p.len(), model.len(), "{} len", kind);
                for m in &model {
                    prop_assert!(p.contains(*m), "{} lost {}", kind, m);
                }
                let mut seen = 0;
                p.for_each_resident(&mut |k, _| { seen += 1; assert!(model.contains(&k)); });
                prop_assert_eq!(seen, model.len());
            }
            // Shrinking evicts down to the new capacity.
            ev.clear();
            p.set_capacity(1, &mut ev);
            prop_assert!(p.weight() <= 1);
        }
    }
}

/// The proptests' caches hold a dozen keys at most: S3-FIFO's queues and ghost at a few
/// hundred, on skewed, scanning and looping traces.
#[test]
fn s3fifo_matches_reference_at_a_few_hundred_keys() {
    use perfkit_cache::synth;
    let traces = [
        ("zipf 0.9", synth::zipf(30_000, 5_000, 0.9, 7)),
        (
            "zipf + scans",
            synth::zipf_with_scans(30_000, 5_000, 0.8, 3_000, 700, 8),
        ),
        ("loop", synth::looping(20_000, 450)),
        ("shifting", synth::shifting(30_000, 600, 0.5, 5_000, 9)),
    ];
    for (name, keys) in &traces {
        for cap in [40, 400] {
            let r = simulate(PolicyKind::S3Fifo, cap as u64, keys, None).unwrap();
            assert_eq!(r.hits, s3fifo_reference(keys, cap), "{name} at {cap}");
        }
    }
}

#[test]
fn names_round_trip() {
    for k in PolicyKind::ALL {
        assert_eq!(k.name().parse::<PolicyKind>().unwrap(), k);
        assert_eq!(k.to_string(), k.name());
    }
    assert_eq!(
        "W-TinyLFU".parse::<PolicyKind>().unwrap(),
        PolicyKind::WTinyLfu
    );
    assert!("nope".parse::<PolicyKind>().is_err());
    assert_eq!(PolicyKind::default(), PolicyKind::WTinyLfu);
    assert!(PolicyKind::Opt.build(10).is_err());
}

#[test]
fn heavier_than_capacity_is_rejected() {
    for kind in PolicyKind::online() {
        let mut p = kind.build(5).unwrap();
        let mut ev = Vec::new();
        assert_eq!(p.access(1, 6, &mut ev), Access::Rejected, "{kind}");
        assert!(p.is_empty());
    }
}

fn weighted_lru_reference(keys: &[u64], weights: &[u32], cap: u64) -> u64 {
    let mut order: Vec<(u64, u64)> = Vec::new(); // (key, weight), most recent last
    let mut hits = 0;
    for (&k, &w) in keys.iter().zip(weights) {
        if let Some(pos) = order.iter().position(|e| e.0 == k) {
            hits += 1;
            let e = order.remove(pos);
            order.push(e);
            continue;
        }
        let w = u64::from(w);
        if w > cap {
            continue;
        }
        order.push((k, w));
        while order.iter().map(|e| e.1).sum::<u64>() > cap {
            order.remove(0);
        }
    }
    hits
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]

    /// Weighted LRU (capacity in weight units) against the reference. (No bound by opt is
    /// claimed with weights: Belady's rule is optimal only for equal weights.)
    #[test]
    fn weighted_lru_matches_reference(
        reqs in proptest::collection::vec((0u64..30, 1u32..5), 0..300),
        cap in 1u64..20,
    ) {
        let keys: Vec<u64> = reqs.iter().map(|r| r.0).collect();
        // Each key always has the same weight, as in a real trace of fixed-size objects.
        let weights: Vec<u32> = keys.iter().map(|k| (k % 4) as u32 + 1).collect();
        let r = simulate(PolicyKind::Lru, cap, &keys, Some(&weights)).unwrap();
        prop_assert_eq!(r.hits, weighted_lru_reference(&keys, &weights, cap));
    }

    /// Weighted S3-FIFO (capacity and small's share in weight units) against the model.
    #[test]
    fn weighted_s3fifo_matches_reference(
        reqs in proptest::collection::vec(0u64..40, 0..400),
        cap in 1u64..30,
    ) {
        let weights: Vec<u32> = reqs.iter().map(|k| (k % 4) as u32 + 1).collect();
        let r = simulate(PolicyKind::S3Fifo, cap, &reqs, Some(&weights)).unwrap();
        prop_assert_eq!(r.hits, s3fifo_weighted_reference(&reqs, &weights, cap));
    }
}

#[test]
fn tuner_at_full_rate_equals_exact_simulation() {
    use perfkit_cache::tune::{TuneOptions, tune};
    let keys = perfkit_cache::synth::zipf(20_000, 5_000, 0.9, 9);
    let mut opts = TuneOptions::new(200);
    opts.sample_rate = Some(1.0);
    opts.min_sampled_capacity = 0;
    let report = tune(&keys, &opts, &|_, _| {}).unwrap();
    assert_eq!(report.sample_rate, 1.0);
    assert_eq!(report.sampled_requests, keys.len());
    for p in &report.curve {
        let exact = simulate(p.policy, p.capacity, &keys, None)
            .unwrap()
            .hit_ratio();
        assert!((p.hit_ratio - exact).abs() < 1e-12, "{:?}", p);
    }
    let best = report
        .curve
        .iter()
        .filter(|p| p.capacity == 200 && p.policy != PolicyKind::Opt)
        .map(|p| p.hit_ratio)
        .fold(0.0, f64::max);
    assert_eq!(report.hit_ratio(report.recommended, 200), Some(best));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]

    /// A hit applied through a remembered slot handle (current, stale after eviction, or
    /// garbage) does exactly what a hit applied by key does, for every online policy.
    #[test]
    fn touch_slot_equals_touch((keys, cap) in trace_strategy(), junk in any::<u32>()) {
        for kind in PolicyKind::online() {
            let mut by_key = kind.build(cap as u64).unwrap();
            let mut by_slot = kind.build(cap as u64).unwrap();
            let (mut ea, mut eb) = (Vec::new(), Vec::new());
            let mut slots = std::collections::HashMap::new();
            for (i, &k) in keys.iter().enumerate() {
                let slot = if i % 5 == 0 {
                    junk
                } else {
                    slots.get(&k).copied().unwrap_or(junk)
                };
                let hit = by_key.touch(k);
                prop_assert_eq!(hit, by_slot.touch_slot(slot, k), "{} key {}", kind, k);
                if !hit {
                    by_key.lookup(k);
                    by_slot.lookup(k);
                    prop_assert_eq!(by_key.admit(k, 1, &mut ea), by_slot.admit(k, 1, &mut eb));
                    if let Some(s) = by_slot.slot(k) {
                        slots.insert(k, s);
                    }
                }
                prop_assert_eq!(&ea, &eb);
                prop_assert_eq!(by_key.len(), by_slot.len());
            }
        }
    }
}
