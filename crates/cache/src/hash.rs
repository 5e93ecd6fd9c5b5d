//! Fast hashing of `u64` keys that are already well spread (or cheap to spread).

use std::hash::{BuildHasher, Hasher};

/// Mixes a 64-bit value so that every input bit affects every output bit (a murmur3-style
/// finaliser). Used for sketch indexes, sampling and shard selection.
#[inline]
pub fn mix64(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^= x >> 33;
    x
}

/// A [`Hasher`] for `u64` keys: one multiply and a fold, good enough for hash tables keyed
/// by trace keys or by key hashes.
#[derive(Debug, Default, Clone, Copy)]
pub struct U64Hasher(u64);

impl Hasher for U64Hasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = mix64(self.0);
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        let m = u128::from(i ^ self.0).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = (m as u64) ^ ((m >> 64) as u64);
    }
}

/// Builds [`U64Hasher`]s.
#[derive(Debug, Default, Clone, Copy)]
pub struct BuildU64Hasher;

impl BuildHasher for BuildU64Hasher {
    type Hasher = U64Hasher;

    #[inline]
    fn build_hasher(&self) -> U64Hasher {
        U64Hasher(0)
    }
}

/// A `HashMap` keyed by `u64` with the fast hasher.
pub(crate) type U64Map<V> = std::collections::HashMap<u64, V, BuildU64Hasher>;

/// A small deterministic random generator (xorshift64*), for tie breaks that must be
/// reproducible between the simulator and the memory cache.
#[derive(Debug, Clone)]
pub(crate) struct XorShift(u64);

impl XorShift {
    pub(crate) fn new(seed: u64) -> Self {
        XorShift(seed | 1)
    }

    #[inline]
    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// A fast keyed hasher for [`MemoryCache`](crate::MemoryCache) keys: a folded
/// multiply per 8 bytes, seeded per cache from the standard library's random keys (so
/// the layout is not predictable across processes), and a strong finaliser.
#[derive(Debug, Clone, Copy)]
pub struct FastHasher {
    state: u64,
    seed: u64,
}

#[inline]
fn fold(a: u64, b: u64) -> u64 {
    let m = u128::from(a).wrapping_mul(u128::from(b));
    (m as u64) ^ ((m >> 64) as u64)
}

impl Hasher for FastHasher {
    #[inline]
    fn finish(&self) -> u64 {
        mix64(self.state ^ self.seed)
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.write_u64(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.write_u64(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.state = fold(self.state ^ i, 0x9e37_79b9_7f4a_7c15 ^ self.seed);
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i) | 0x100);
    }
}

/// Builds [`FastHasher`]s with a random seed chosen when the state is created: the
/// default hasher of [`MemoryCache`](crate::MemoryCache).
#[derive(Debug, Clone, Copy)]
pub struct FastState {
    seed: u64,
}

impl Default for FastState {
    fn default() -> Self {
        let seed = std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64);
        FastState { seed: seed | 1 }
    }
}

impl BuildHasher for FastState {
    type Hasher = FastHasher;

    #[inline]
    fn build_hasher(&self) -> FastHasher {
        FastHasher {
            state: 0,
            seed: self.seed,
        }
    }
}
