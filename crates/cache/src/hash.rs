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
/// multiply per 8 bytes and one to finish, seeded per cache from the standard library's
/// random keys (so the layout is not predictable across processes).
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
        // A second folded multiply, not a full finaliser: the memory cache mixes the hash
        // again where its bits matter (shard, table slot, sketch), and every multiply here
        // is on the path of every request before its first load (`mix64` cost about 5 %
        // of a hit's time on the cache suite's loop).
        fold(self.state ^ self.seed, 0x2545_f491_4f6c_dd1d)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn fast(state: &FastState, k: u64) -> u64 {
        state.hash_one(k)
    }

    #[test]
    fn the_fast_hasher_spreads_sequential_keys_over_every_bit() {
        let state = FastState::default();
        let n = 100_000u64;
        let mut ones = [0u32; 64];
        let mut seen = std::collections::HashSet::new();
        for k in 0..n {
            let h = fast(&state, k);
            assert!(seen.insert(h), "collision at key {k}");
            for (b, count) in ones.iter_mut().enumerate() {
                *count += u32::from(h >> b & 1 == 1);
            }
        }
        for (b, &count) in ones.iter().enumerate() {
            let share = f64::from(count) / n as f64;
            assert!(
                (0.48..0.52).contains(&share),
                "bit {b} set in {share:.3} of hashes"
            );
        }
    }

    #[test]
    fn one_flipped_key_bit_flips_about_half_the_hash() {
        let state = FastState::default();
        let mut total = 0u32;
        let mut trials = 0u32;
        for k in (0..2000u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15)) {
            let h = fast(&state, k);
            for bit in 0..64 {
                total += (h ^ fast(&state, k ^ (1 << bit))).count_ones();
                trials += 1;
            }
        }
        let mean = f64::from(total) / f64::from(trials);
        assert!((30.0..34.0).contains(&mean), "mean flipped bits {mean:.2}");
        // Zero is not a fixed point, and two caches lay keys out differently.
        assert_ne!(fast(&state, 0), 0);
        assert_ne!(fast(&state, 7), fast(&FastState::default(), 7));
    }

    #[test]
    fn byte_strings_of_different_lengths_hash_apart() {
        let state = FastState::default();
        let h = |b: &[u8]| state.hash_one(b);
        assert_ne!(h(b"a"), h(b"a\0"));
        assert_ne!(h(b"ab"), h(b"ba"));
        assert_ne!(h(b"12345678"), h(b"123456789"));
    }
}
