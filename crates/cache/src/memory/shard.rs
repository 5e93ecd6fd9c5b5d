//! A shard: its entries, its policy and the hits not yet applied to it, behind one mutex.

use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};

use super::CacheStats;
use super::flight::Flight;
use crate::hash::U64Map;
use crate::policy::Policy;

/// A cached entry: 32 bytes with its map key for `u64` keys and values, two to a cache
/// line (the timestamps of expiry live in their own map, only when expiry is on).
pub(super) struct Entry<K, V> {
    pub(super) key: K,
    pub(super) value: V,
    pub(super) weight: u32,
    /// The policy's handle for the key ([`Policy::slot`]), so that a hit needs no second
    /// key lookup in the policy; [`NO_SLOT`] when it has none. A stale one is only slower
    /// (the policy checks it).
    pub(super) slot: u32,
}

/// When an entry was written and last read, in nanoseconds since the cache's base
/// instant (kept only with a time to live or to idle).
#[derive(Clone, Copy)]
pub(super) struct Times {
    pub(super) written: u64,
    pub(super) accessed: u64,
}

/// No policy handle.
pub(super) const NO_SLOT: u32 = u32::MAX;

/// Hits buffered before they are applied to the policy (see [`Batched`]).
const BATCH: usize = 32;

/// A shard's policy and the hits not yet applied to it. A hit is queued; the queue is
/// applied in order when it is full and before any other call reaches the policy (the
/// only way to it is [`Batched::get`]), so the policy sees exactly the sequence of
/// requests, while a batch lets it read ahead what the updates touch.
#[repr(C)]
pub(super) struct Batched {
    pending: Vec<(u32, u64)>,
    policy: Box<dyn Policy>,
}

impl Batched {
    pub(super) fn new(policy: Box<dyn Policy>) -> Self {
        Batched {
            policy,
            pending: Vec::with_capacity(BATCH),
        }
    }

    /// Queues a hit on `key`, whose policy handle is `slot`.
    #[inline]
    pub(super) fn hit(&mut self, slot: u32, key: u64) {
        self.pending.push((slot, key));
        if self.pending.len() >= BATCH {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if !self.pending.is_empty() {
            self.policy.touch_slots(&self.pending);
            self.pending.clear();
        }
    }

    /// The policy, with every queued hit applied.
    #[inline]
    pub(super) fn get(&mut self) -> &mut dyn Policy {
        self.flush();
        &mut *self.policy
    }
}

/// What a shard's lock guards. The fields a hit writes or reads (the lock word before
/// them, the queue of hits, the counts, the map's header) come first, in the shard's
/// first 128 bytes: with several threads, they are the lines that move between cores.
#[repr(C)]
pub(super) struct Core<K, V> {
    pub(super) policy: Batched,
    pub(super) counts: CacheStats,
    pub(super) map: U64Map<Entry<K, V>>,
    /// Expiry timestamps by key hash (empty without expiry).
    pub(super) times: U64Map<Times>,
    pub(super) evicted: Vec<u64>,
    pub(super) loading: U64Map<Arc<Flight<V>>>,
}

impl<K, V> Core<K, V> {
    /// Drops the evicted keys' entries; returns how many there were.
    pub(super) fn drop_evicted(&mut self) -> u64 {
        let mut n = 0;
        for k in self.evicted.drain(..) {
            n += u64::from(self.map.remove(&k).is_some());
            if !self.times.is_empty() {
                self.times.remove(&k);
            }
        }
        n
    }

    /// Forgets `h` in the map, the timestamps and the policy; returns its entry.
    pub(super) fn forget(&mut self, h: u64) -> Option<Entry<K, V>> {
        let e = self.map.remove(&h)?;
        if !self.times.is_empty() {
            self.times.remove(&h);
        }
        self.policy.get().remove_slot(e.slot, h);
        Some(e)
    }
}

/// One shard: its entries, policy and counts behind one mutex, on cache lines of its own.
#[repr(align(128))]
pub(super) struct Shard<K, V> {
    pub(super) core: Mutex<Core<K, V>>,
}

impl<K, V> Shard<K, V> {
    pub(super) fn new(mut policy: Box<dyn Policy>) -> Self {
        // The map's entries keep the policy's handles: the policy needs no index of its own.
        policy.detach_index();
        Shard {
            core: Mutex::new(Core {
                policy: Batched::new(policy),
                counts: CacheStats::default(),
                map: U64Map::default(),
                times: U64Map::default(),
                evicted: Vec::new(),
                loading: U64Map::default(),
            }),
        }
    }

    #[inline]
    pub(super) fn lock(&self) -> MutexGuard<'_, Core<K, V>> {
        self.core.lock()
    }
}
