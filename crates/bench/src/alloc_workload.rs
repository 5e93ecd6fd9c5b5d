//! The allocation-heavy workload of the `alloc` suite, shared by the three allocator
//! binaries (`alloc-system`, `alloc-tracking`, `alloc-stats-alloc`), each of which installs
//! one global allocator and calls [`main`].
//!
//! Two threads each keep a table of 512 live blocks and, per operation, replace a random
//! entry with a new block: small (16-256 B), medium (1-32 KiB), zeroed (`vec![0; n]`, which
//! reaches `alloc_zeroed`) or grown by pushes (which reaches `realloc`). The old block is
//! freed. Output: one JSON line on stdout.

use std::hint::black_box;
use std::time::Instant;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The calling thread's CPU time in nanoseconds: timing by CPU time keeps other processes
/// on a shared machine from inflating the figures.
fn thread_cpu_ns() -> u128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u128 * 1_000_000_000 + ts.tv_nsec as u128
}

// The allocation calls live in small functions that are never inlined into the loop, so
// that how much of the allocator the compiler inlines (it differs between the three
// binaries) cannot change the loop's own code and register use.

#[inline(never)]
fn with_first_byte(capacity: usize, byte: u8) -> Vec<u8> {
    let mut v = Vec::with_capacity(capacity);
    v.push(byte);
    v
}

#[inline(never)]
fn zeroed(len: usize) -> Vec<u8> {
    vec![0u8; len]
}

#[inline(never)]
fn grown(len: usize) -> Vec<u8> {
    let mut v = Vec::new();
    for i in 0..len {
        v.push(i as u8);
    }
    v
}

/// Puts `block` in `slot`, freeing what was there.
#[inline(never)]
fn replace(slot: &mut Vec<u8>, block: Vec<u8>) {
    *slot = black_box(block);
}

/// Returns (checksum, CPU nanoseconds spent).
fn run_thread(seed: u64, ops: u64) -> (u64, u128) {
    let cpu0 = thread_cpu_ns();
    let mut rng = Rng(seed | 1);
    let mut table: Vec<Vec<u8>> = (0..512).map(|_| Vec::new()).collect();
    let mut checksum = 0u64;
    for _ in 0..ops {
        let r = rng.next();
        let slot = (r % 512) as usize;
        let block = match (r >> 16) % 16 {
            // Small allocations dominate real programs.
            0..=8 => with_first_byte(16 + ((r >> 24) % 241) as usize, r as u8),
            9..=10 => with_first_byte(1024 + ((r >> 24) % (15 * 1024)) as usize, r as u8),
            11..=12 => zeroed(64 + ((r >> 24) % 1984) as usize),
            // Grows by doubling: several reallocations.
            _ => grown(8 + ((r >> 24) % 200) as usize),
        };
        checksum = checksum.wrapping_add(block.len() as u64);
        replace(&mut table[slot], block);
    }
    drop(table);
    (checksum, thread_cpu_ns() - cpu0)
}

/// Runs the workload and prints `{"allocator": NAME, "ns_per_op": ..., ...}`.
pub(crate) fn main(allocator: &str, after: impl FnOnce() -> String) {
    let ops: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000_000);
    let threads = 2u64;
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| std::thread::spawn(move || run_thread(0x9E37_79B9_7F4A_7C15 ^ t, ops)))
        .collect();
    let mut checksum = 0u64;
    let mut cpu_ns = 0u128;
    for h in handles {
        let (c, ns) = h.join().unwrap_or((0, 0));
        checksum = checksum.wrapping_add(c);
        cpu_ns += ns;
    }
    let wall_ns_per_op = start.elapsed().as_nanos() as f64 / ops as f64;
    // CPU time per operation, averaged over the threads (which run at the same time).
    let ns_per_op = cpu_ns as f64 / (ops * threads) as f64;
    println!(
        "{{\"allocator\":\"{allocator}\",\"threads\":{threads},\"ops_per_thread\":{ops},\"ns_per_op\":{ns_per_op:.3},\"wall_ns_per_op\":{wall_ns_per_op:.3},\"checksum\":{checksum},\"extra\":{}}}",
        after()
    );
}
