//! A hint to the processor to start loading a cache line whose address is known well before
//! its data is needed (with the shard lock in `memory/shard.rs` and the entries' slots in
//! `memory/entries.rs`, the crate's only `unsafe`).

/// Starts loading the cache line that holds `value` into the nearest cache level, without
/// waiting for it. A no-op on targets other than x86_64.
#[inline(always)]
pub(crate) fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint: it cannot fault and changes nothing the program
    // can observe, the address comes from a live reference, and SSE, which provides the
    // instruction, is part of the x86_64 baseline.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(value).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}
