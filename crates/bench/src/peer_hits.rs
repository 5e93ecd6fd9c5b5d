//! Single-threaded hit counts of the peer caches, as the `cache` suite and the hit-ratio
//! test measure them: moka with its pending maintenance run after every insert (so that it
//! decides as it would at rest), quick_cache through its unsync cache.

/// moka's hits over `keys` with `cap` entries.
pub(crate) fn moka_hits(keys: &[u64], cap: u64) -> u64 {
    let c: moka::sync::Cache<u64, ()> = moka::sync::Cache::new(cap);
    let mut hits = 0;
    for &k in keys {
        if c.get(&k).is_some() {
            hits += 1;
        } else {
            c.insert(k, ());
            c.run_pending_tasks();
        }
    }
    hits
}

/// quick_cache's hits over `keys` with `cap` entries.
pub(crate) fn quick_hits(keys: &[u64], cap: u64) -> u64 {
    let mut c: quick_cache::unsync::Cache<u64, ()> = quick_cache::unsync::Cache::new(cap as usize);
    let mut hits = 0;
    for &k in keys {
        if c.get(&k).is_some() {
            hits += 1;
        } else {
            c.insert(k, ());
        }
    }
    hits
}
