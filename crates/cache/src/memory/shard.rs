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

/// Hits buffered before they are applied to the policy (see [`Core`]): as many handles as
/// fit in the shard's first line beside the lock and the hit count.
const BATCH: usize = 11;

/// The hits not yet applied to a shard's policy: the policy's handles alone, for a policy
/// that left its index to the shard ([`Policy::touch_handles`]); a policy with a key index
/// of its own (ARC) gets its hits with their keys, kept in [`Core`]'s `keys`.
#[repr(C)]
struct HitQueue {
    len: u8,
    /// The policy takes its hits with their keys (`touch_slots`).
    keyed: bool,
    handles: [u32; BATCH],
}

/// What a shard's lock guards, laid out by what each kind of request touches, since with
/// 64 shards a request's shard was seldom among the last few dozen touched, and each line
/// of its state was a first-level miss of its own (cachegrind on the suite's Zipf 0.9
/// loop: 12.3 misses per request with 64 shards, 7.6 with 8, for the same work):
/// - the first line, with the lock word: what a hit writes (the queue of hits and the hit
///   count). With two threads, no other line moves between the cores on a hit; with one,
///   the written lines of 64 shards take 4 KB;
/// - the second: what every lookup reads (the entries' table and slots);
/// - the third: what a miss and its eviction add (the policy, the eviction scratch);
/// - the fourth: the other counts and the expiry times' table (read to test its length);
/// - then what only some caches use (keyed hits, loads in flight).
///
/// A hit is queued; the queue is applied in order when it is full and before any other
/// call reaches the policy (the only way to it is [`Core::policy`]), so the policy sees
/// exactly the sequence of requests, while a batch lets it read ahead what the updates
/// touch.
#[repr(C)]
pub(super) struct Core<K, V> {
    queue: HitQueue,
    /// Hits counted by the shard (the rest of its counts are in `counts`).
    hits: u64,
    pub(super) entries: Entries<K, V>,
    /// Whether the policy left its key index to us (it then reports freed handles).
    pub(super) detached: bool,
    policy: Box<dyn Policy>,
    /// Scratch: the keys a policy call evicted, and the handles it freed.
    pub(super) evicted: Vec<u64>,
    freed: Vec<(u64, u32)>,
    /// The shard's misses, evictions and expirations (its hits are `hits`).
    pub(super) counts: CacheStats,
    /// Expiry timestamps by key hash (empty without expiry).
    pub(super) times: U64Map<Times>,
    /// The keys of the queued hits, for a policy that takes them (`queue.keyed`).
    keys: [u64; BATCH],
    pub(super) loading: U64Map<Arc<Flight<V>>>,
}

impl<K, V> Core<K, V> {
    fn new(policy: Box<dyn Policy>, detached: bool) -> Self {
        Core {
            queue: HitQueue {
                len: 0,
                keyed: !detached,
                handles: [0; BATCH],
            },
            hits: 0,
            entries: Entries::default(),
            detached,
            policy,
            evicted: Vec::new(),
            freed: Vec::new(),
            counts: CacheStats::default(),
            times: U64Map::default(),
            keys: [0; BATCH],
            loading: U64Map::default(),
        }
    }

    /// Counts a hit on `key`, whose policy handle is `slot`, and queues it for the policy.
    #[inline]
    pub(super) fn hit(&mut self, slot: u32, key: u64) {
        self.hits += 1;
        let q = &mut self.queue;
        let i = usize::from(q.len);
        // `len < BATCH` always holds here (a full queue is applied at once).
        if let Some(h) = q.handles.get_mut(i) {
            *h = slot;
        }
        if q.keyed
            && let Some(k) = self.keys.get_mut(i)
        {
            *k = key;
        }
        q.len += 1;
        if usize::from(q.len) >= BATCH {
            self.flush();
        }
    }

    /// Hits counted so far.
    pub(super) fn hits(&self) -> u64 {
        self.hits
    }

    #[inline(never)]
    fn flush(&mut self) {
        let q = &mut self.queue;
        let n = usize::from(q.len).min(BATCH);
        q.len = 0;
        if q.keyed {
            let mut batch = [(0u32, 0u64); BATCH];
            for (b, (&h, &k)) in batch.iter_mut().zip(q.handles.iter().zip(&self.keys)) {
                *b = (h, k);
            }
            self.policy.touch_slots(&batch[..n]);
        } else {
            self.policy.touch_handles(&q.handles[..n]);
        }
    }

    /// Applies the queued hits, if any: what every way to the policy does first.
    #[inline]
    fn apply_queued(&mut self) {
        if self.queue.len > 0 {
            self.flush();
        }
    }

    /// The policy, with every queued hit applied.
    #[inline]
    pub(super) fn policy(&mut self) -> &mut dyn Policy {
        self.apply_queued();
        &mut *self.policy
    }

    /// [`policy`](Self::policy), and the scratch for the keys its call evicts.
    #[inline]
    pub(super) fn policy_and_evicted(&mut self) -> (&mut dyn Policy, &mut Vec<u64>) {
        self.apply_queued();
        (&mut *self.policy, &mut self.evicted)
    }

    /// Moves the handles the policy freed into `freed`.
    fn take_freed(&mut self) {
        self.apply_queued();
        self.policy.take_freed(&mut self.freed);
    }

    /// After a policy call: drops the entries of the keys it evicted; returns how many
    /// there were.
    pub(super) fn drop_evicted(&mut self) -> u64 {
        let mut n = 0;
        if self.detached {
            // The policy reports the handles too: no entry is read to find its record.
            self.evicted.clear();
            self.take_freed();
            for (h, slot) in self.freed.drain(..) {
                let removed = self.entries.evict_at(h, slot);
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
        self.policy().remove_slot(slot, h);
        self.discard_freed();
        Some(e)
    }

    /// Forgets the handles the policy freed for removals this shard made itself.
    pub(super) fn discard_freed(&mut self) {
        self.take_freed();
        self.freed.clear();
    }

    /// Switches to `policy`, which holds exactly the entries' keys at their handles
    /// (`detached`: whether it left its key index to us). The hits still queued are
    /// dropped with the old policy.
    pub(super) fn set_policy(&mut self, policy: Box<dyn Policy>, detached: bool) {
        self.detached = detached;
        self.policy = policy;
        self.queue.len = 0;
        self.queue.keyed = !detached;
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
            core: Mutex::new(Core::new(policy, detached)),
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
    fn each_kind_of_request_finds_its_fields_on_its_own_lines() {
        use std::mem::offset_of;
        type C = Core<u64, u64>;
        // The lock word and its padding take the first 8 bytes of the shard.
        let shard: Shard<u64, u64> = Shard::new(Box::new(crate::policy::Lru::new(10)));
        let base = std::ptr::from_ref(&shard) as usize;
        let at = std::ptr::from_ref(&*shard.lock()) as usize - base;
        assert_eq!(at, 8);
        let line = |offset: usize| (at + offset) / 64;
        // A hit writes the first line alone.
        assert_eq!(line(offset_of!(C, queue)), 0);
        assert_eq!(line(offset_of!(C, hits) + 7), 0);
        // A lookup reads the second.
        assert_eq!(line(offset_of!(C, entries)), 1);
        assert_eq!(line(offset_of!(C, detached)), 1);
        // A miss adds the third and fourth.
        assert_eq!(line(offset_of!(C, policy)), 2);
        assert_eq!(
            line(offset_of!(C, freed) + size_of::<Vec<(u64, u32)>>() - 1),
            2
        );
        assert_eq!(line(offset_of!(C, counts)), 3);
        assert_eq!(
            line(offset_of!(C, times) + size_of::<U64Map<Times>>() - 1),
            3
        );
    }
}
