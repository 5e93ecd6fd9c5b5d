//! Single-threaded hit counts of the peer caches, as the `cache` suite and the hit-ratio
//! test measure them: moka with its pending maintenance run after every insert (so that it
//! decides as it would at rest; the median of three runs), quick_cache through its unsync
//! cache.

/// moka's hits over `keys` with `cap` entries: the median of three runs. moka hashes with
/// a random seed, so its admissions, and its hits, differ from run to run: by up to 10
/// points on gli at 1000 entries (40.3 to 51.2, one run in about ten far above the rest).
pub(crate) fn moka_hits(keys: &[u64], cap: u64) -> u64 {
    let mut runs = [0; 3].map(|_| moka_hits_once(keys, cap));
    runs.sort_unstable();
    runs[1]
}

fn moka_hits_once(keys: &[u64], cap: u64) -> u64 {
    let c: moka::sync::Cache<u64, ()> = moka::sync::Cache::new(cap);
    read_through(
        keys,
        |k| c.get(&k).is_some(),
        |k| {
            c.insert(k, ());
            c.run_pending_tasks();
        },
    )
}

/// quick_cache's hits over `keys` with `cap` entries.
pub(crate) fn quick_hits(keys: &[u64], cap: u64) -> u64 {
    let c = std::cell::RefCell::new(quick_cache::unsync::Cache::<u64, ()>::new(cap as usize));
    read_through(
        keys,
        |k| c.borrow_mut().get(&k).is_some(),
        |k| c.borrow_mut().insert(k, ()),
    )
}

/// The hits of a read-through loop over `keys`: `get`, and `insert` on a miss.
fn read_through(
    keys: &[u64],
    mut get: impl FnMut(u64) -> bool,
    mut insert: impl FnMut(u64),
) -> u64 {
    let mut hits = 0;
    for &k in keys {
        if get(k) {
            hits += 1;
        } else {
            insert(k);
        }
    }
    hits
}
