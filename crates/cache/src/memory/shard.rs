//! A shard: its entries, its policy and the hits not yet applied to it, behind one mutex.

use std::sync::Arc;

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use parking_lot::lock_api;

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
    /// there were. (`hash` hashes a key: for a policy that reports evicted keys alone.)
    pub(super) fn drop_evicted(&mut self, hash: impl Fn(&K) -> u64) -> u64 {
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
                let removed = self.entries.remove(h, &hash).is_some();
                n += forget_times(&mut self.times, removed, h);
            }
        }
        n
    }

    /// Forgets `h` in the entries, the timestamps and the policy; returns its entry.
    /// (`hash` hashes a key: the entry is found by its hash.)
    pub(super) fn forget(&mut self, h: u64, hash: impl Fn(&K) -> u64) -> Option<Entry<K, V>> {
        let slot = self.entries.find_hash(h, hash)?;
        self.forget_at(h, slot)
    }

    /// [`forget`](Self::forget) for `h` found at `slot` already (no second search).
    pub(super) fn forget_at(&mut self, h: u64, slot: u32) -> Option<Entry<K, V>> {
        let e = self.entries.remove_at(h, slot)?;
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

/// A shard's lock: a word with a locked bit and a parked bit, taken with one
/// compare-and-swap and released, when no thread sleeps on it, with a plain store.
///
/// Every request takes a shard's lock once (a miss twice, with its insert), and the lock's
/// two atomic read-modify-writes (`parking_lot`'s release is one too) were a tenth of a
/// read-mostly loop's time on one thread: each waits for the processor's pending stores
/// to drain. A release that only stores leaves one.
///
/// A thread that finds the lock held waits on the processor for a while (a shard is held
/// for well under a microsecond) before it sleeps: a sleeping waiter's wake-up (a futex
/// call, and on a virtual machine the idle CPU's) took longer than the holds it waited for.
/// The price of the plain release: a waiter that marks itself parked between the
/// releasing thread's check and its store is not woken by that release. So a sleeper
/// wakes by itself after [`PARK_TIMEOUT`] and looks again; a lost wake-up costs it that
/// long at most, and needs a waiter to go to sleep within a few nanoseconds of a release,
/// after [`SPINS`] checks found the lock held.
pub(super) struct SpinThenPark(AtomicU8);

const LOCKED: u8 = 1;
const PARKED: u8 = 2;

/// How many times a waiter checks the lock (with a pause between) before it sleeps: a few
/// microseconds.
const SPINS: u32 = 256;

/// How long a sleeping waiter sleeps at most before it looks at the lock again.
const PARK_TIMEOUT: Duration = Duration::from_millis(1);

// SAFETY: `lock` and `try_lock` return only after a compare-and-swap that set `LOCKED`
// where it was clear, and only `unlock` (called by the holder alone) clears it, so at
// most one thread holds the lock; `Acquire` on taking and `Release` on releasing order
// the guarded data's accesses.
unsafe impl lock_api::RawMutex for SpinThenPark {
    const INIT: Self = SpinThenPark(AtomicU8::new(0));
    // A guard may be released by another thread than the one that took it: the lock has
    // no owner.
    type GuardMarker = lock_api::GuardSend;

    #[inline]
    fn lock(&self) {
        if self
            .0
            .compare_exchange_weak(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_contended();
        }
    }

    #[inline]
    fn try_lock(&self) -> bool {
        let state = self.0.load(Ordering::Relaxed);
        state & LOCKED == 0
            && self
                .0
                .compare_exchange(state, state | LOCKED, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
    }

    #[inline]
    unsafe fn unlock(&self) {
        if self.0.load(Ordering::Relaxed) == LOCKED {
            self.0.store(0, Ordering::Release);
        } else {
            self.unlock_parked();
        }
    }

    #[inline]
    fn is_locked(&self) -> bool {
        self.0.load(Ordering::Relaxed) & LOCKED != 0
    }
}

impl SpinThenPark {
    /// The key the lock's sleepers wait on.
    fn key(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }

    #[cold]
    fn lock_contended(&self) {
        let mut spins = 0;
        loop {
            // Read before trying: waiting on a plain load keeps the line shared instead of
            // pulling it away from the holder with each attempt.
            let state = self.0.load(Ordering::Relaxed);
            if state & LOCKED == 0 {
                // (Keeping the parked bit: others may still sleep.)
                if self
                    .0
                    .compare_exchange_weak(
                        state,
                        state | LOCKED,
                        Ordering::Acquire,
                        Ordering::Relaxed,
                    )
                    .is_ok()
                {
                    return;
                }
                continue;
            }
            if spins < SPINS {
                spins += 1;
                std::hint::spin_loop();
                continue;
            }
            if state & PARKED == 0
                && self
                    .0
                    .compare_exchange_weak(
                        state,
                        state | PARKED,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    )
                    .is_err()
            {
                continue;
            }
            let validate = || self.0.load(Ordering::Relaxed) == LOCKED | PARKED;
            let deadline = Instant::now() + PARK_TIMEOUT;
            // SAFETY: the key is this lock's address, unique while it lives, and the
            // callbacks neither panic nor call into `parking_lot`.
            unsafe {
                parking_lot_core::park(
                    self.key(),
                    validate,
                    || {},
                    |_, _| {},
                    parking_lot_core::DEFAULT_PARK_TOKEN,
                    Some(deadline),
                );
            }
            spins = 0;
        }
    }

    /// Releases the lock with a sleeper marked: wakes one, and keeps the mark when others
    /// still sleep.
    #[cold]
    fn unlock_parked(&self) {
        self.0.fetch_and(!LOCKED & !PARKED, Ordering::Release);
        // SAFETY: as in `lock_contended`; the callback only sets a bit of the word.
        unsafe {
            parking_lot_core::unpark_one(self.key(), |result| {
                if result.have_more_threads {
                    self.0.fetch_or(PARKED, Ordering::Relaxed);
                }
                parking_lot_core::DEFAULT_UNPARK_TOKEN
            });
        }
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
    fn the_lock_excludes_and_wakes_its_sleepers() {
        // Four threads add under the lock; now and then a holder keeps it long enough that
        // the others run out of spins and sleep, so that releases with sleepers (and the
        // sleepers' own timeouts) are exercised too. Every addition must count, and the
        // run must end (a sleeper never woken would still end, after its timeout).
        let lock: lock_api::Mutex<SpinThenPark, u64> = lock_api::Mutex::new(0);
        let threads = 4;
        let rounds = 20_000u64;
        std::thread::scope(|s| {
            for t in 0..threads {
                let lock = &lock;
                s.spawn(move || {
                    for i in 0..rounds {
                        let mut n = lock.lock();
                        *n += 1;
                        if (i + t) % 4_000 == 0 {
                            std::thread::sleep(Duration::from_micros(200));
                        }
                    }
                });
            }
        });
        assert_eq!(*lock.lock(), threads * rounds);
        assert!(!lock.is_locked());
    }

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
