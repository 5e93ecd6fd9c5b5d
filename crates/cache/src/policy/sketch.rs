//! TinyLFU's frequency estimate: a count-min sketch of 4-bit counters (four rows, the rows
//! of one key in one 64-byte block), a doorkeeper Bloom filter that absorbs the first
//! occurrence of each key, and aging: after a sample of `10 x capacity` requests every
//! counter is halved and the doorkeeper is cleared.

use crate::hash::mix64;

/// The eight words (64 counters) that hold the four counters of the keys mapped to it,
/// aligned so that a key's counters are one cache line.
#[derive(Debug, Clone, Copy, Default)]
#[repr(align(64))]
struct Block([u64; 8]);

/// A frequency sketch sized for a cache of `capacity` entries. (The request count first,
/// which a batch of deferred hits reads and writes alone; then the fields of a count; the
/// doorkeeper's last: see `Table`'s layout.)
#[derive(Debug, Clone)]
#[repr(C)]
pub(crate) struct FrequencySketch {
    size: u64,
    sample: u64,
    /// The hash of the last key incremented, whose counters are written at the next
    /// increment, or before they are read, or before the counts age (see `increment`).
    pending: Option<u64>,
    table: Vec<Block>,
    block_mask: u64,
    max_words: usize,
    doorkeeper: bool,
    door: Vec<u64>,
    door_mask: u64,
}

/// Words of a new sketch at most (16 counters each).
const INITIAL_WORDS: u64 = 4096;
/// Words of the sketch per entry of capacity.
const WORDS_PER_ENTRY: u64 = 2;
/// Words of a sketch at most (8 MiB).
const MAX_WORDS: u64 = 1 << 20;

const ODD_MASK: u64 = 0x1111_1111_1111_1111;
const HALF_MASK: u64 = 0x7777_7777_7777_7777;

impl FrequencySketch {
    pub(crate) fn new(capacity: u64, doorkeeper: bool) -> Self {
        let cap = capacity.clamp(1, 1 << 26);
        // Start small and grow with the number of resident keys (see `ensure`): with a
        // weigher the capacity is a weight, not an entry count.
        // Two words (32 counters) per entry: the frequencies that decide admission are small
        // ones (the keys at the edge of the cache), where the collisions of a sketch of one
        // word per entry are as large as the counts (measured on Zipf workloads).
        let words = (cap * WORDS_PER_ENTRY)
            .next_power_of_two()
            .clamp(8, INITIAL_WORDS) as usize;
        let sample = 10 * cap.max(1);
        let door_bits = (sample * 16).next_power_of_two().clamp(64, 1 << 24);
        FrequencySketch {
            table: vec![Block::default(); words / 8],
            block_mask: (words as u64 / 8) - 1,
            door: if doorkeeper {
                vec![0; (door_bits / 64) as usize]
            } else {
                Vec::new()
            },
            door_mask: door_bits - 1,
            doorkeeper,
            size: 0,
            sample,
            pending: None,
            max_words: (cap * WORDS_PER_ENTRY)
                .next_power_of_two()
                .clamp(8, MAX_WORDS) as usize,
        }
    }

    /// Grows the table (starting its counts afresh) when `entries` keys are resident and
    /// the table has fewer than two words for each, up to the size the capacity calls for.
    #[inline]
    pub(crate) fn ensure(&mut self, entries: usize) {
        let len = self.table.len() * 8;
        let wanted = entries.saturating_mul(WORDS_PER_ENTRY as usize);
        if wanted > len && len < self.max_words {
            // (A pending count would have gone into the table being replaced.)
            self.pending = None;
            let words = wanted.next_power_of_two().min(self.max_words);
            self.table = vec![Block::default(); words / 8];
            self.block_mask = (words as u64 / 8) - 1;
        }
    }

    /// The number of requests between agings.
    #[cfg(test)]
    pub(crate) fn sample_size(&self) -> u64 {
        self.sample
    }

    /// The block of `h` (a mixed key) and its four counters: (word in the block, bit
    /// shift). The block comes from the low bits of `h` (at most 17 of them) and the
    /// counters from the top 32, which a good mix leaves independent of each other: no
    /// second mix per count.
    #[inline]
    fn slots(&self, h: u64) -> (usize, [(usize, u32); 4]) {
        let block = (h & self.block_mask) as usize;
        let g = h >> 32;
        let mut out = [(0usize, 0u32); 4];
        for (i, slot) in out.iter_mut().enumerate() {
            let byte = (g >> (i * 8)) & 0xff;
            let word = (i << 1) + (byte & 1) as usize;
            let nibble = ((byte >> 1) & 15) as u32;
            *slot = (word, nibble << 2);
        }
        (block, out)
    }

    #[inline]
    fn door_bits(&self, h: u64) -> [u64; 3] {
        let g = h.rotate_left(17).wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
        [
            (h >> 32) & self.door_mask,
            g & self.door_mask,
            (g >> 32) & self.door_mask,
        ]
    }

    #[inline]
    fn door_contains(&self, h: u64) -> bool {
        let bit = |x: u64| self.door[(x >> 6) as usize] & (1 << (x & 63)) != 0;
        self.door_bits(h).into_iter().all(bit)
    }

    /// Reads the first word of `key`'s block (a read-ahead: see `Table::warm`).
    #[inline]
    pub(crate) fn warm(&self, key: u64) -> u64 {
        let block = (mix64(key) & self.block_mask) as usize;
        self.table.get(block).map_or(0, |b| b.0[0])
    }

    /// Starts loading `key`'s block (for a count that is about to follow: a miss's).
    #[inline]
    pub(crate) fn prefetch(&self, key: u64) {
        let block = (mix64(key) & self.block_mask) as usize;
        if let Some(b) = self.table.get(block) {
            crate::prefetch::prefetch(b);
        }
    }

    /// Records one request for `key`; returns whether the counts were aged by it, and the
    /// estimate of the key counted before it, if its count was written here (see below).
    ///
    /// Without a doorkeeper the counters are written later: at the next increment, or
    /// before a count of the same block is read, or before the counts age, whichever comes
    /// first. Every count reads the same as if written at once (additions to the counters
    /// commute, and nothing reads them in between), but the block, whose loading a miss
    /// starts ([`prefetch`](Self::prefetch)), has until the next miss to arrive: written
    /// at once, the write waited for it on about a fifth of an all-miss loop's time. When
    /// the next increment writes it, the earlier key's estimate (what
    /// [`frequency`](Self::frequency) would then answer) comes back with it, read off the
    /// counters just written, and the counts have not aged since.
    pub(crate) fn increment(&mut self, key: u64) -> (bool, Option<u32>) {
        self.size += 1;
        let mut earlier_estimate = None;
        if self.doorkeeper {
            self.add(key, 1);
        } else if let Some(earlier) = self.pending.replace(mix64(key)) {
            earlier_estimate = Some(self.add_one(earlier));
        }
        let aged = self.age_if_due();
        (aged, earlier_estimate.filter(|_| !aged))
    }

    /// Writes the pending increment's counters.
    #[inline]
    fn write_pending(&mut self) {
        // (A pending count exists only without a doorkeeper: the one-request write.)
        if let Some(h) = self.pending.take() {
            self.add_one(h);
        }
    }

    /// Counts one request whose key is written later, by [`add`](Self::add) (a deferred
    /// hit); returns whether the counts were aged by it, in which case the caller halves
    /// the requests it holds back too.
    #[inline]
    pub(crate) fn count_deferred(&mut self) -> bool {
        self.size += 1;
        self.age_if_due()
    }

    /// How many more requests can be counted before the counts age.
    #[inline]
    pub(crate) fn until_aging(&self) -> u64 {
        self.sample.saturating_sub(self.size)
    }

    /// Counts `n` requests whose keys are written later, as `n` calls of
    /// [`count_deferred`](Self::count_deferred); the caller has made sure that they do not
    /// reach aging (`n` below [`until_aging`](Self::until_aging)).
    #[inline]
    pub(crate) fn count_deferred_many(&mut self, n: u64) {
        debug_assert!(n < self.until_aging());
        self.size += n;
    }

    /// Adds `n` requests for `key` to its counters (each saturating at 15) without
    /// counting them towards aging (they were, by [`count_deferred`](Self::count_deferred)).
    pub(crate) fn add(&mut self, key: u64, n: u32) {
        self.add_hashed(mix64(key), n);
    }

    /// [`add`](Self::add) for a key hashed already.
    fn add_hashed(&mut self, h: u64, mut n: u32) {
        if self.doorkeeper && n > 0 && !self.door_contains(h) {
            for x in self.door_bits(h) {
                self.door[(x >> 6) as usize] |= 1 << (x & 63);
            }
            n -= 1;
        }
        if n == 0 {
            return;
        }
        let (block, slots) = self.slots(h);
        let Some(b) = self.table.get_mut(block) else {
            return;
        };
        for (word, shift) in slots {
            let w = &mut b.0[word & 7];
            let c = ((*w >> shift) & 15) as u32;
            *w += u64::from(n.min(15 - c)) << shift;
        }
    }

    /// [`add_hashed`](Self::add_hashed) of one request without a doorkeeper (a pending
    /// count), without branches: returns the smallest counter afterwards.
    #[inline]
    fn add_one(&mut self, h: u64) -> u32 {
        let (block, slots) = self.slots(h);
        let Some(b) = self.table.get_mut(block) else {
            return 0;
        };
        let mut min = 15;
        for (word, shift) in slots {
            let w = &mut b.0[word & 7];
            let c = (*w >> shift) & 15;
            let add = u64::from(c != 15);
            *w += add << shift;
            min = min.min(c + add);
        }
        min as u32
    }

    #[inline]
    fn age_if_due(&mut self) -> bool {
        if self.size >= self.sample {
            self.reset();
            true
        } else {
            false
        }
    }

    /// The estimated number of recent requests for `key` (at most 16).
    pub(crate) fn frequency(&mut self, key: u64) -> u32 {
        let h = mix64(key);
        if self.pending.is_some_and(|p| (p ^ h) & self.block_mask == 0) {
            self.write_pending();
        }
        let mut min = 15u32;
        let (block, slots) = self.slots(h);
        if let Some(b) = self.table.get(block) {
            for (word, shift) in slots {
                min = min.min(((b.0[word & 7] >> shift) & 15) as u32);
            }
        }
        if self.doorkeeper && self.door_contains(h) {
            min += 1;
        }
        min
    }

    /// Ages every counter by half and clears the doorkeeper.
    fn reset(&mut self) {
        self.write_pending();
        let mut odd = 0u64;
        for w in self.table.iter_mut().flat_map(|b| b.0.iter_mut()) {
            odd += u64::from((*w & ODD_MASK).count_ones());
            *w = (*w >> 1) & HALF_MASK;
        }
        for w in &mut self.door {
            *w = 0;
        }
        self.size = (self.size - (odd >> 2)) >> 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adding_n_equals_n_increments() {
        for doorkeeper in [false, true] {
            let (mut one, mut many) = (
                FrequencySketch::new(64, doorkeeper),
                FrequencySketch::new(64, doorkeeper),
            );
            for (key, n) in [(7u64, 3u32), (8, 1), (7, 20), (9, 0), (10, 15)] {
                for _ in 0..n {
                    one.increment(key);
                    many.count_deferred();
                }
                many.add(key, n);
                for k in 7..=10 {
                    assert_eq!(one.frequency(k), many.frequency(k), "key {k}");
                }
            }
            assert_eq!(one.size, many.size);
        }
    }

    #[test]
    fn a_late_written_increment_reads_as_an_immediate_one_across_agings() {
        // `eager` writes each count at once (`add`); `late` leaves the last one pending.
        let (mut late, mut eager) = (
            FrequencySketch::new(64, false),
            FrequencySketch::new(64, false),
        );
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for i in 0..5_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = x % 300;
            // (An increment writes before it ages.)
            eager.add(key, 1);
            assert_eq!(
                late.increment(key).0,
                eager.count_deferred(),
                "aged together"
            );
            if i % 7 == 0 {
                // A read of the pending key's block, and of some other.
                for k in [key, key + 1, i % 300] {
                    assert_eq!(late.frequency(k), eager.frequency(k), "key {k} at {i}");
                }
            }
        }
        assert_eq!(late.size, eager.size);
        for k in 0..300 {
            assert_eq!(late.frequency(k), eager.frequency(k), "key {k}");
        }
    }

    #[test]
    fn a_written_increment_returns_the_estimate_frequency_gives() {
        let mut s = FrequencySketch::new(64, false);
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut earlier = None;
        let (mut returned, mut aged) = (0, 0);
        for _ in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = x % 500;
            // What a read of the earlier key answers just before this increment (on a
            // copy: a read writes the pending count of its block).
            let expected = earlier.map(|e| s.clone().frequency(e));
            let (was_aged, estimate) = s.increment(key);
            match (expected, estimate) {
                (Some(f), Some(est)) => {
                    returned += 1;
                    assert_eq!(est, f, "earlier key {earlier:?}");
                }
                (Some(_), None) => {
                    assert!(was_aged, "written without an estimate only when aged");
                    aged += 1;
                }
                (None, _) => assert!(estimate.is_none()),
            }
            // An aging writes the count it leaves pending: none is left for the next.
            earlier = (!was_aged).then_some(key);
        }
        assert!(returned > 19_000 && aged > 0, "{returned} {aged}");
    }

    #[test]
    fn counts_grow_and_age() {
        let mut s = FrequencySketch::new(64, true);
        assert_eq!(s.frequency(7), 0);
        s.increment(7);
        assert_eq!(s.frequency(7), 1);
        for _ in 0..5 {
            s.increment(7);
        }
        assert_eq!(s.frequency(7), 6);
        for _ in 0..40 {
            s.increment(7);
        }
        assert!(s.frequency(7) <= 16);
        // Drive past a sample period with other keys: 7's count halves.
        let before = s.frequency(7);
        for k in 1000..(1000 + s.sample_size()) {
            s.increment(k);
        }
        assert!(s.frequency(7) < before);
    }
}
