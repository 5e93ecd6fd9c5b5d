//! The tracking allocator installed as this test binary's global allocator.

use perfkit_alloc::{HeapSource, MemorySource, TrackingAllocator, stats};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;

#[global_allocator]
static GLOBAL: TrackingAllocator<System> = TrackingAllocator::new(System);

/// Tests in one binary share the counters; run the ones that measure deltas one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

#[test]
fn counts_allocations_frees_and_live_bytes() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = stats().expect("installed");
    let v: Vec<Box<[u8; 1000]>> = (0..100).map(|_| Box::new([1u8; 1000])).collect();
    let mid = stats().unwrap();
    assert!(mid.allocations >= before.allocations + 100);
    assert!(mid.live_bytes >= before.live_bytes + 100_000);
    assert!(mid.peak_live_bytes >= mid.live_bytes);
    drop(v);
    let after = stats().unwrap();
    assert!(after.deallocations >= before.deallocations + 100);
    assert!(after.live_bytes + 100_000 <= mid.live_bytes + 1024);
    assert!(after.total_allocated_bytes >= before.total_allocated_bytes + 100_000);
    assert_eq!(
        after.live_bytes,
        after.total_allocated_bytes - after.total_freed_bytes
    );
}

#[test]
fn realloc_and_zeroed_are_forwarded_and_counted() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let layout = Layout::from_size_align(4096, 16).unwrap();
    let before = stats().unwrap();
    // SAFETY: a valid non-zero layout; the pointer is freed with the layout it has.
    unsafe {
        let p = GLOBAL.alloc_zeroed(layout);
        assert!(!p.is_null());
        assert!(std::slice::from_raw_parts(p, 4096).iter().all(|&b| b == 0));
        *p = 7;
        let q = GLOBAL.realloc(p, layout, 1 << 20);
        assert!(!q.is_null());
        assert_eq!(*q, 7, "realloc keeps the contents");
        let mid = stats().unwrap();
        assert!(mid.reallocations > before.reallocations);
        assert!(mid.live_bytes >= before.live_bytes + (1 << 20) - 4096);
        let q2 = GLOBAL.realloc(q, Layout::from_size_align(1 << 20, 16).unwrap(), 100);
        let shrunk = stats().unwrap();
        assert!(shrunk.total_freed_bytes >= mid.total_freed_bytes + (1 << 20) - 100);
        GLOBAL.dealloc(q2, Layout::from_size_align(100, 16).unwrap());
    }
}

#[test]
fn frees_on_another_thread_and_many_threads_fold_correctly() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = stats().unwrap();
    // More threads than slots, so that some use the overflow slot, and cross-thread frees.
    let handles: Vec<_> = (0..100)
        .map(|i| std::thread::spawn(move || vec![i as u8; 10_000]))
        .collect();
    let blocks: Vec<Vec<u8>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let mid = stats().unwrap();
    assert!(mid.live_bytes >= before.live_bytes + 1_000_000);
    drop(blocks); // freed here, allocated on the (now gone) threads
    let after = stats().unwrap();
    assert!(
        after.live_bytes <= before.live_bytes + 200_000,
        "live went from {} to {}: frees on another thread were lost",
        before.live_bytes,
        after.live_bytes
    );
    assert!(after.peak_live_bytes >= mid.live_bytes);
}

#[test]
fn heap_source_reads_live_bytes() {
    let r = HeapSource.read().expect("installed");
    assert!(r.used_bytes > 0);
    assert_eq!(r.limit_bytes, None);
    assert_eq!(HeapSource.name(), "heap");
    assert!(perfkit_alloc::is_installed());
    assert!(GLOBAL.stats().is_some());
}
