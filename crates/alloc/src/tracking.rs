//! The tracking global allocator.
//!
//! # How counting works, and how stale a read can be
//!
//! Every thread that allocates claims one of [`SLOTS`] cache-line-sized counter slots the
//! first time it allocates, and gives it back when it exits. A slot has exactly one writer
//! (its owning thread), so the hot path updates it with plain relaxed loads and stores: no
//! `lock`-prefixed instruction and no cache line shared with another thread. A read
//! ([`stats`]) folds all slots. Because a slot's counters are cumulative sums, a slot handed
//! to a new thread simply keeps adding, and a block freed by a thread other than the one
//! that allocated it is still accounted correctly in the sum (one slot's live bytes may be
//! negative; the sum is not).
//!
//! Staleness bounds:
//!
//! - **live bytes, totals and counts**: a read misses at most the allocation or free that each
//!   thread is performing at that instant (there is no per-thread batching). The fold is not
//!   one atomic snapshot, so two counters read together may disagree by those in-flight
//!   operations.
//! - **peak live bytes**: each thread publishes its net change to a shared high-water mark
//!   once it has drifted by [`PEAK_FLUSH_BYTES`] (64 KiB) since its last publication, and
//!   every read also folds the exact live figure into the peak. A short spike between two
//!   reads can therefore be under-reported by at most 64 KiB per thread that was allocating.
//!
//! More than [`SLOTS`] threads alive at once is supported: the extra threads share one
//! overflow slot updated with atomic read-modify-write instructions (correct, slower).
//!
//! The counters are process-wide: there is one global allocator per process, so every
//! `TrackingAllocator` value reports into the same counters.

use serde::{Deserialize, Serialize};
use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};

/// Number of per-thread counter slots.
pub const SLOTS: usize = 64;

/// How far (in bytes) a thread's net allocation may drift before it publishes to the shared
/// peak tracker. This is the per-thread bound on how much a transient peak can be missed.
pub const PEAK_FLUSH_BYTES: i64 = 64 * 1024;

/// One thread's counters. Aligned to 128 bytes so that neighbouring slots never share a
/// cache line (or an adjacent-line prefetch pair).
#[repr(align(128))]
struct Slot {
    allocated_bytes: AtomicU64,
    freed_bytes: AtomicU64,
    allocations: AtomicU64,
    deallocations: AtomicU64,
    reallocations: AtomicU64,
    /// Net bytes (allocated - freed) not yet published to `PUBLISHED_LIVE`.
    drift: AtomicI64,
    in_use: AtomicBool,
}

impl Slot {
    const fn new() -> Slot {
        Slot {
            allocated_bytes: AtomicU64::new(0),
            freed_bytes: AtomicU64::new(0),
            allocations: AtomicU64::new(0),
            deallocations: AtomicU64::new(0),
            reallocations: AtomicU64::new(0),
            drift: AtomicI64::new(0),
            in_use: AtomicBool::new(false),
        }
    }
}

static SLOT_TABLE: [Slot; SLOTS] = [const { Slot::new() }; SLOTS];
/// Shared by threads that hold no slot (more than `SLOTS` alive, or during thread start-up
/// and tear-down); updated with atomic read-modify-write.
static OVERFLOW: Slot = Slot::new();
/// Sum of the nets every slot has published: live bytes, stale by < 64 KiB per thread.
static PUBLISHED_LIVE: AtomicI64 = AtomicI64::new(0);
static PEAK_LIVE: AtomicU64 = AtomicU64::new(0);
/// Set by the first allocation through a `TrackingAllocator`.
static INSTALLED: AtomicBool = AtomicBool::new(false);

const STATE_UNCLAIMED: usize = usize::MAX;
const STATE_CLAIMING: usize = usize::MAX - 1;
const STATE_OVERFLOW: usize = usize::MAX - 2;

thread_local! {
    /// The slot index this thread owns, or one of the `STATE_*` markers. Const-initialised
    /// and without a destructor, so reading it never allocates and never fails.
    static SLOT_INDEX: Cell<usize> = const { Cell::new(STATE_UNCLAIMED) };
    /// The slot this thread owns, or null while it owns none (the hot path reads only this).
    static SLOT_PTR: Cell<*const Slot> = const { Cell::new(std::ptr::null()) };
    /// Gives the slot back when the thread exits.
    static SLOT_RELEASE: SlotRelease = const { SlotRelease };
}

struct SlotRelease;

impl Drop for SlotRelease {
    fn drop(&mut self) {
        let _ = SLOT_PTR.try_with(|p| p.set(std::ptr::null()));
        let index = SLOT_INDEX.with(|s| s.replace(STATE_OVERFLOW));
        if index < SLOTS {
            SLOT_TABLE[index]
                .in_use
                .store(false, std::sync::atomic::Ordering::Release);
        }
    }
}

/// What to do with the current thread's slot.
enum Target {
    Owned(&'static Slot),
    Shared,
}

#[inline(always)]
fn target() -> Target {
    match owned_slot() {
        Some(slot) => Target::Owned(slot),
        None => slow_target(),
    }
}

#[cold]
#[inline(never)]
fn slow_target() -> Target {
    match SLOT_INDEX.try_with(Cell::get).unwrap_or(STATE_OVERFLOW) {
        STATE_UNCLAIMED => claim(),
        _ => Target::Shared,
    }
}

#[cold]
fn claim() -> Target {
    INSTALLED.store(true, Relaxed);
    let _ = SLOT_INDEX.try_with(|s| s.set(STATE_CLAIMING));
    let found = SLOT_TABLE.iter().position(|slot| {
        slot.in_use
            .compare_exchange(false, true, std::sync::atomic::Ordering::Acquire, Relaxed)
            .is_ok()
    });
    // Registering the release destructor may itself allocate on some platforms; while it
    // does, this thread's state is CLAIMING and those allocations go to the overflow slot.
    let registered = SLOT_RELEASE.try_with(|_| ()).is_ok();
    match found {
        Some(index) if registered => {
            let _ = SLOT_INDEX.try_with(|s| s.set(index));
            let slot: &'static Slot = &SLOT_TABLE[index];
            let _ = SLOT_PTR.try_with(|p| p.set(slot));
            Target::Owned(slot)
        }
        Some(index) => {
            SLOT_TABLE[index]
                .in_use
                .store(false, std::sync::atomic::Ordering::Release);
            let _ = SLOT_INDEX.try_with(|s| s.set(STATE_OVERFLOW));
            Target::Shared
        }
        None => {
            let _ = SLOT_INDEX.try_with(|s| s.set(STATE_OVERFLOW));
            Target::Shared
        }
    }
}

/// Adds `v` to a counter that only this thread writes.
#[inline(always)]
fn bump(counter: &AtomicU64, v: u64) {
    counter.store(counter.load(Relaxed).wrapping_add(v), Relaxed);
}

/// Adds `delta` to the slot's unpublished drift, publishing it once it leaves
/// ±`PEAK_FLUSH_BYTES`.
#[inline(always)]
fn drift(slot: &Slot, delta: i64) {
    let d = slot.drift.load(Relaxed).wrapping_add(delta);
    if (-PEAK_FLUSH_BYTES..=PEAK_FLUSH_BYTES).contains(&d) {
        slot.drift.store(d, Relaxed);
    } else {
        publish(slot, d);
    }
}

#[cold]
#[inline(never)]
fn publish(slot: &Slot, drift: i64) {
    slot.drift.store(0, Relaxed);
    let live = PUBLISHED_LIVE.fetch_add(drift, Relaxed) + drift;
    if drift > 0 && live > 0 {
        PEAK_LIVE.fetch_max(live as u64, Relaxed);
    }
}

#[inline(always)]
fn on_alloc(size: usize) {
    match target() {
        Target::Owned(slot) => {
            bump(&slot.allocated_bytes, size as u64);
            bump(&slot.allocations, 1);
            drift(slot, size as i64);
        }
        Target::Shared => {
            OVERFLOW.allocated_bytes.fetch_add(size as u64, Relaxed);
            OVERFLOW.allocations.fetch_add(1, Relaxed);
            let live = PUBLISHED_LIVE.fetch_add(size as i64, Relaxed) + size as i64;
            if live > 0 {
                PEAK_LIVE.fetch_max(live as u64, Relaxed);
            }
        }
    }
}

#[inline(always)]
fn on_dealloc(size: usize) {
    match target() {
        Target::Owned(slot) => {
            bump(&slot.freed_bytes, size as u64);
            bump(&slot.deallocations, 1);
            drift(slot, -(size as i64));
        }
        Target::Shared => {
            OVERFLOW.freed_bytes.fetch_add(size as u64, Relaxed);
            OVERFLOW.deallocations.fetch_add(1, Relaxed);
            PUBLISHED_LIVE.fetch_sub(size as i64, Relaxed);
        }
    }
}

/// Counts a reallocation that changed the size by `delta` bytes (new minus old; sizes are
/// at most `isize::MAX`, so it fits).
#[inline(always)]
fn on_realloc(delta: i64) {
    let (grow, shrink) = if delta >= 0 {
        (delta as u64, 0)
    } else {
        (0, delta.unsigned_abs())
    };
    match target() {
        Target::Owned(slot) => {
            bump(&slot.allocated_bytes, grow);
            bump(&slot.freed_bytes, shrink);
            bump(&slot.reallocations, 1);
            drift(slot, grow as i64 - shrink as i64);
        }
        Target::Shared => {
            OVERFLOW.allocated_bytes.fetch_add(grow, Relaxed);
            OVERFLOW.freed_bytes.fetch_add(shrink, Relaxed);
            OVERFLOW.reallocations.fetch_add(1, Relaxed);
            let live = PUBLISHED_LIVE.fetch_add(grow as i64 - shrink as i64, Relaxed) + grow as i64
                - shrink as i64;
            if live > 0 {
                PEAK_LIVE.fetch_max(live as u64, Relaxed);
            }
        }
    }
}

/// A global allocator that counts what the inner allocator `A` hands out, and otherwise
/// forwards every call (`alloc`, `alloc_zeroed`, `realloc`, `dealloc`) unchanged to `A`.
///
/// Install it over the system allocator:
///
/// ```
/// use perfkit_alloc::TrackingAllocator;
/// use std::alloc::System;
///
/// #[global_allocator]
/// static GLOBAL: TrackingAllocator<System> = TrackingAllocator::new(System);
///
/// fn main() {
///     let v = vec![0u8; 1 << 20];
///     let stats = perfkit_alloc::stats().expect("installed");
///     assert!(stats.live_bytes >= 1 << 20);
///     drop(v);
/// }
/// ```
///
/// It wraps any `GlobalAlloc`, so jemalloc or mimalloc work the same way:
/// `TrackingAllocator::new(tikv_jemallocator::Jemalloc)` or
/// `TrackingAllocator::new(mimalloc::MiMalloc)`. Sizes counted are the sizes requested in
/// each `Layout`, not the allocator's rounded-up size classes.
///
/// See the [module documentation](crate::tracking) for how counters are kept per thread and
/// how stale a read can be.
#[derive(Debug, Default, Clone, Copy)]
pub struct TrackingAllocator<A> {
    inner: A,
}

impl<A> TrackingAllocator<A> {
    /// Wraps `inner`.
    pub const fn new(inner: A) -> Self {
        TrackingAllocator { inner }
    }

    /// The wrapped allocator.
    pub const fn inner(&self) -> &A {
        &self.inner
    }

    /// The process-wide counters (the same as [`stats`]).
    pub fn stats(&self) -> Option<AllocStats> {
        stats()
    }
}

// The hot paths below are shaped for the code the compiler makes of them: each either
// returns straight after counting on the thread's own slot, or hands the whole call
// (counting and forwarding) to a cold function in tail position. The fast path then makes no
// call but the inner allocator's (a tail call for `dealloc`), so it needs no saved
// registers beyond the one that carries the size across `alloc`.

/// The calling thread's own slot, if it holds one.
#[inline(always)]
fn owned_slot() -> Option<&'static Slot> {
    // `try_with` only fails after the thread-local storage is gone; the caller then takes
    // the slow path, which counts on the overflow slot.
    let ptr = SLOT_PTR.try_with(Cell::get).unwrap_or(std::ptr::null());
    // SAFETY: SLOT_PTR only ever holds null or a pointer into the static SLOT_TABLE.
    (!ptr.is_null()).then(|| unsafe { &*ptr })
}

/// Counts on the thread's own slot when that needs no publication to the shared peak;
/// `false` (having counted nothing) otherwise.
#[inline(always)]
fn count_fast(slot: &Slot, bytes: &AtomicU64, amount: u64, calls: &AtomicU64, delta: i64) -> bool {
    let d = slot.drift.load(Relaxed).wrapping_add(delta);
    if !(-PEAK_FLUSH_BYTES..=PEAK_FLUSH_BYTES).contains(&d) {
        return false;
    }
    slot.drift.store(d, Relaxed);
    bump(bytes, amount);
    bump(calls, 1);
    true
}

/// Counts a returned allocation of `size` bytes (none if `ptr` is null) and returns `ptr`.
#[inline(always)]
fn counted_alloc(ptr: *mut u8, size: usize) -> *mut u8 {
    if !ptr.is_null()
        && let Some(slot) = owned_slot()
        && count_fast(
            slot,
            &slot.allocated_bytes,
            size as u64,
            &slot.allocations,
            size as i64,
        )
    {
        return ptr;
    }
    counted_alloc_slow(ptr, size)
}

#[cold]
#[inline(never)]
fn counted_alloc_slow(ptr: *mut u8, size: usize) -> *mut u8 {
    if !ptr.is_null() {
        on_alloc(size);
    }
    ptr
}

/// Counts a returned reallocation that changed the size by `delta` bytes (none if `ptr` is
/// null) and returns `ptr`. Taking the difference rather than both sizes keeps one value,
/// not two, alive across the inner allocator's call.
#[inline(always)]
fn counted_realloc(ptr: *mut u8, delta: i64) -> *mut u8 {
    if !ptr.is_null()
        && delta >= 0
        && let Some(slot) = owned_slot()
        && count_fast(
            slot,
            &slot.allocated_bytes,
            delta as u64,
            &slot.reallocations,
            delta,
        )
    {
        return ptr;
    }
    counted_realloc_slow(ptr, delta)
}

#[cold]
#[inline(never)]
fn counted_realloc_slow(ptr: *mut u8, delta: i64) -> *mut u8 {
    if !ptr.is_null() {
        on_realloc(delta);
    }
    ptr
}

impl<A: GlobalAlloc> TrackingAllocator<A> {
    /// The whole of `dealloc` when the fast path cannot count: counts, then forwards.
    ///
    /// # Safety
    /// As [`GlobalAlloc::dealloc`].
    #[cold]
    #[inline(never)]
    unsafe fn dealloc_slow(&self, ptr: *mut u8, layout: Layout) {
        on_dealloc(layout.size());
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.inner.dealloc(ptr, layout) }
    }
}

// SAFETY: every method forwards to `inner` with the caller's arguments unchanged and returns
// its result unchanged; the counting touches only our own statics and never allocates.
unsafe impl<A: GlobalAlloc> GlobalAlloc for TrackingAllocator<A> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let ptr = unsafe { self.inner.alloc(layout) };
        counted_alloc(ptr, layout.size())
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let ptr = unsafe { self.inner.alloc_zeroed(layout) };
        counted_alloc(ptr, layout.size())
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let size = layout.size();
        if let Some(slot) = owned_slot()
            && count_fast(
                slot,
                &slot.freed_bytes,
                size as u64,
                &slot.deallocations,
                -(size as i64),
            )
        {
            // Counted first so that the forward is the last call (a tail call).
            // SAFETY: forwarded with the caller's guarantees.
            return unsafe { self.inner.dealloc(ptr, layout) };
        }
        // SAFETY: the caller's guarantees, passed on.
        unsafe { self.dealloc_slow(ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let delta = (new_size as i64).wrapping_sub(layout.size() as i64);
        // SAFETY: forwarded with the caller's guarantees.
        let new = unsafe { self.inner.realloc(ptr, layout, new_size) };
        counted_realloc(new, delta)
    }
}

/// The tracking allocator's counters, folded over all threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AllocStats {
    /// Bytes currently allocated and not freed.
    pub live_bytes: u64,
    /// The highest live bytes seen (see the module docs for its precision).
    pub peak_live_bytes: u64,
    /// Bytes ever allocated (reallocations count their growth).
    pub total_allocated_bytes: u64,
    /// Bytes ever freed (reallocations count their shrinkage).
    pub total_freed_bytes: u64,
    /// Calls to `alloc` and `alloc_zeroed` that succeeded.
    pub allocations: u64,
    /// Calls to `dealloc`.
    pub deallocations: u64,
    /// Calls to `realloc` that succeeded.
    pub reallocations: u64,
}

/// Whether a [`TrackingAllocator`] has counted anything in this process (in practice: whether
/// it is installed as the global allocator).
pub fn is_installed() -> bool {
    INSTALLED.load(Relaxed)
}

/// Reads the tracking allocator's counters, or `None` when it is not installed.
///
/// Costs one pass over [`SLOTS`] + 1 cache lines; call it from a sampler, not per request.
pub fn stats() -> Option<AllocStats> {
    if !is_installed() {
        return None;
    }
    let mut s = AllocStats::default();
    for slot in SLOT_TABLE.iter().chain(std::iter::once(&OVERFLOW)) {
        s.total_allocated_bytes = s
            .total_allocated_bytes
            .wrapping_add(slot.allocated_bytes.load(Relaxed));
        s.total_freed_bytes = s
            .total_freed_bytes
            .wrapping_add(slot.freed_bytes.load(Relaxed));
        s.allocations = s.allocations.wrapping_add(slot.allocations.load(Relaxed));
        s.deallocations = s
            .deallocations
            .wrapping_add(slot.deallocations.load(Relaxed));
        s.reallocations = s
            .reallocations
            .wrapping_add(slot.reallocations.load(Relaxed));
    }
    // In-flight operations can make the fold momentarily show more frees than allocations.
    s.live_bytes = s.total_allocated_bytes.saturating_sub(s.total_freed_bytes);
    s.peak_live_bytes = PEAK_LIVE.fetch_max(s.live_bytes, Relaxed).max(s.live_bytes);
    Some(s)
}
