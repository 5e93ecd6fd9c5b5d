//! A shard: its entries, its policy and the hits not yet applied to it, behind one mutex.

use std::sync::Arc;

use parking_lot::lock_api::{self, RawMutex as _};

use super::CacheStats;
use super::entries::{Entries, Entry};
use super::flight::Flight;
use crate::hash::U64Map;
use crate::policy::Policy;

/// When an entry was written and last read, in nanoseconds since the cache's base
/// instant (kept only with a time to live or to idle).
#[derive(Clone, Copy)]
pub(super) struct Times {
    pub(super) written: u64,
    pub(super) accessed: u64,
}

/// Hits buffered before they are applied to the policy (see [`Batched`]): as many
/// handles as fit in the shard's first line beside the lock, the queue's length and the
/// hit count.
const BATCH: usize = 11;

/// A shard's policy and the hits not yet applied to it. A hit is queued; the queue is
/// applied in order when it is full and before any other call reaches the policy (the
/// only way to it is [`Batched::get`]), so the policy sees exactly the sequence of
/// requests, while a batch lets it read ahead what the updates touch.
///
/// What a hit writes is on the shard's first line, the lock's, which the hit's thread
/// holds already: the queue (the policy's handles alone, for a policy that left its index
/// to the shard: [`Policy::touch_handles`]) and the shard's hit count. With one thread the
/// written lines of 64 shards take 4 KB (the old queues of 16-byte records on a heap
/// buffer each took half a core's first-level cache); with two, no other line moves
/// between the cores on a hit. A policy with a key index of its own (ARC) gets its hits with
/// their keys, kept beside.
#[repr(C)]
pub(super) struct Batched {
    len: u8,
    /// The policy takes its hits with their keys (`touch_slots`), from `keys`.
    keyed: bool,
    handles: [u32; BATCH],
    /// Hits counted by the shard (see [`Core::counts`]).
    pub(super) hits: u64,
    policy: Box<dyn Policy>,
    keys: [u64; BATCH],
}

impl Batched {
    /// `policy`, which left its key index to the shard when `detached`.
    pub(super) fn new(policy: Box<dyn Policy>, detached: bool) -> Self {
        Batched {
            len: 0,
            keyed: !detached,
            handles: [0; BATCH],
            hits: 0,
            policy,
            keys: [0; BATCH],
        }
    }

    /// Queues a hit on `key`, whose policy handle is `slot`.
    #[inline]
    pub(super) fn hit(&mut self, slot: u32, key: u64) {
        let i = usize::from(self.len);
        // `len < BATCH` always holds here (a full queue is applied at once).
        if let Some(h) = self.handles.get_mut(i) {
            *h = slot;
        }
        if self.keyed
            && let Some(k) = self.keys.get_mut(i)
        {
            *k = key;
        }
        self.len += 1;
        if usize::from(self.len) >= BATCH {
            self.flush();
        }
    }

    #[inline(never)]
    fn flush(&mut self) {
        let n = usize::from(self.len).min(BATCH);
        self.len = 0;
        if self.keyed {
            let mut batch = [(0u32, 0u64); BATCH];
            for (b, (&h, &k)) in batch.iter_mut().zip(self.handles.iter().zip(&self.keys)) {
                *b = (h, k);
            }
            self.policy.touch_slots(&batch[..n]);
        } else {
            self.policy.touch_handles(&self.handles[..n]);
        }
    }

    /// The policy, with every queued hit applied.
    #[inline]
    pub(super) fn get(&mut self) -> &mut dyn Policy {
        if self.len > 0 {
            self.flush();
        }
        &mut *self.policy
    }
}

/// What a shard's lock guards. What a hit writes (the queue of hits and the hit count,
/// after the lock word) is on the shard's first line, what it reads (the entries' table)
/// soon after: with several threads, the written lines are the ones that move between
/// cores.
#[repr(C)]
pub(super) struct Core<K, V> {
    pub(super) policy: Batched,
    /// The shard's misses, evictions and expirations (its hits are `policy.hits`, on the
    /// line a hit writes anyway).
    pub(super) counts: CacheStats,
    pub(super) entries: Entries<K, V>,
    /// Expiry timestamps by key hash (empty without expiry).
    pub(super) times: U64Map<Times>,
    /// Whether the policy left its key index to us (it then reports freed handles).
    pub(super) detached: bool,
    /// Scratch: the keys a policy call evicted, and the handles it freed.
    pub(super) evicted: Vec<u64>,
    freed: Vec<(u64, u32)>,
    pub(super) loading: U64Map<Arc<Flight<V>>>,
}

impl<K, V> Core<K, V> {
    /// After a policy call: drops the entries of the keys it evicted; returns how many
    /// there were.
    pub(super) fn drop_evicted(&mut self) -> u64 {
        let mut n = 0;
        if self.detached {
            // The policy reports the handles too: no entry is read to find its record.
            self.evicted.clear();
            self.policy.get().take_freed(&mut self.freed);
            for (h, slot) in self.freed.drain(..) {
                let removed = self.entries.remove_at(h, slot).is_some();
                n += forget_times(&mut self.times, removed, h);
            }
        } else {
            for h in self.evicted.drain(..) {
                let removed = self.entries.remove(h).is_some();
                n += forget_times(&mut self.times, removed, h);
            }
        }
        n
    }

    /// Forgets `h` in the entries, the timestamps and the policy; returns its entry.
    pub(super) fn forget(&mut self, h: u64) -> Option<Entry<K, V>> {
        let (slot, e) = self.entries.remove(h)?;
        if !self.times.is_empty() {
            self.times.remove(&h);
        }
        self.policy.get().remove_slot(slot, h);
        self.discard_freed();
        Some(e)
    }

    /// Forgets the handles the policy freed for removals this shard made itself.
    pub(super) fn discard_freed(&mut self) {
        self.policy.get().take_freed(&mut self.freed);
        self.freed.clear();
    }

    /// Switches to `policy`, which holds exactly the entries' keys at their handles
    /// (`detached`: whether it left its key index to us).
    pub(super) fn set_policy(&mut self, policy: Box<dyn Policy>, detached: bool) {
        self.detached = detached;
        let hits = self.policy.hits;
        self.policy = Batched::new(policy, detached);
        self.policy.hits = hits;
        self.freed.clear();
    }
}

/// After an eviction of `h` (`removed`: whether it had an entry): drops its timestamps;
/// returns 1 if there was an entry, else 0.
fn forget_times(times: &mut U64Map<Times>, removed: bool, h: u64) -> u64 {
    if removed && !times.is_empty() {
        times.remove(&h);
    }
    u64::from(removed)
}

/// A shard's lock: `parking_lot`'s, but a thread that finds it held first waits on the
/// processor for a while (a shard is held for well under a microsecond) before it sleeps.
/// `parking_lot` yields and then sleeps after a few dozen spins, and a sleeping waiter's
/// wake-up (a futex call, and on a virtual machine the idle CPU's) took longer than the
/// holds it waited for: two threads on a hot shard spent a tenth of their time in the
/// scheduler.
pub(super) struct SpinThenPark(parking_lot::RawMutex);

/// How many times a waiter checks the lock (with a pause between) before it sleeps: a few
/// microseconds.
const SPINS: u32 = 256;

// SAFETY: every method delegates to `parking_lot::RawMutex`, a correct raw mutex; `lock`
// only tries its non-blocking acquire some times before its blocking one, so it returns
// exactly when that mutex has been acquired.
unsafe impl lock_api::RawMutex for SpinThenPark {
    const INIT: Self = SpinThenPark(parking_lot::RawMutex::INIT);
    // Whatever `parking_lot`'s own guard may do (sent to another thread or not).
    type GuardMarker = <parking_lot::RawMutex as lock_api::RawMutex>::GuardMarker;

    #[inline]
    fn lock(&self) {
        if self.0.try_lock() {
            return;
        }
        self.lock_contended();
    }

    #[inline]
    fn try_lock(&self) -> bool {
        self.0.try_lock()
    }

    #[inline]
    unsafe fn unlock(&self) {
        // SAFETY: the caller holds the lock (the trait's contract), acquired from `self.0`.
        unsafe { self.0.unlock() }
    }

    #[inline]
    fn is_locked(&self) -> bool {
        self.0.is_locked()
    }
}

impl SpinThenPark {
    #[cold]
    fn lock_contended(&self) {
        for _ in 0..SPINS {
            std::hint::spin_loop();
            // Read before trying: waiting on a plain load keeps the line shared instead of
            // pulling it away from the holder with each attempt.
            if !self.0.is_locked() && self.0.try_lock() {
                return;
            }
        }
        self.0.lock();
    }
}

type Mutex<T> = lock_api::Mutex<SpinThenPark, T>;
type MutexGuard<'a, T> = lock_api::MutexGuard<'a, SpinThenPark, T>;

/// One shard: its entries, policy and counts behind one mutex, on cache lines of its own.
#[repr(align(128))]
pub(super) struct Shard<K, V> {
    pub(super) core: Mutex<Core<K, V>>,
}

impl<K, V> Shard<K, V> {
    pub(super) fn new(mut policy: Box<dyn Policy>) -> Self {
        // The entries keep the policy's handles: the policy needs no index of its own.
        let detached = policy.detach_index();
        Shard {
            core: Mutex::new(Core {
                policy: Batched::new(policy, detached),
                counts: CacheStats::default(),
                entries: Entries::default(),
                times: U64Map::default(),
                detached,
                evicted: Vec::new(),
                freed: Vec::new(),
                loading: U64Map::default(),
            }),
        }
    }

    #[inline]
    pub(super) fn lock(&self) -> MutexGuard<'_, Core<K, V>> {
        self.core.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_hit_writes_fits_beside_the_lock_word() {
        // The lock word and its padding take 8 bytes of the shard's first line.
        assert_eq!(std::mem::offset_of!(Batched, policy), 56);
        assert_eq!(std::mem::offset_of!(Core<u64, u64>, policy), 0);
    }
}
