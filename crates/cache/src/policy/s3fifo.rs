//! S3-FIFO (Yang et al., SOSP'23): new keys enter a small FIFO (10 % of the capacity); a key
//! used again while there moves to the main FIFO, others leave and are remembered in a
//! ghost, from which a returning key goes straight to main. Main reinserts keys that were
//! used (a 2-bit counter, decremented on each pass) and evicts the others.
//!
//! The ghost holds the keys of the last `G` departures from small (`G`: as many keys as
//! main holds at most), less those that have returned since: a window of departures rather
//! than a FIFO of `G` ghosts, so that a ghost ages out by its departure number alone. A
//! FIFO had to find and drop its oldest key in the ghost table on every departure, a
//! cache miss of its own where perf put half of the eviction's time.

use super::slab::{List, Ring, Table};
use super::{Policy, PolicyKind};
use crate::hash::U64Map;

const SMALL: u8 = 0;
const MAIN: u8 = 1;

/// S3-FIFO.
#[derive(Debug)]
pub struct S3Fifo {
    t: Table,
    /// The small FIFO (nodes tagged `SMALL`): a list, where a new key is linked to the
    /// newest one alone, whose line is in cache; in a ring it would be linked to the
    /// oldest too, whose line seldom is (small turns over quickly). Measured: 1.7 % less
    /// time on the suite's Zipf 0.9 loop than with a ring.
    small: List,
    /// The main FIFO (tagged `MAIN`): a ring, so that a used key goes back in by a move
    /// of the hand alone.
    main: Ring,
    /// The use counts (0 to 3) by node index, apart from the nodes: a hit writes one byte
    /// of an array of a byte per entry, which stays in a core's cache, instead of a node
    /// somewhere in megabytes of them (as SIEVE's visited bits).
    counts: Vec<u8>,
    /// Ghost keys with the number of their departure from small; a key whose number is
    /// `G` or more behind `departures` has aged out (and is dropped at the next sweep).
    ghost: U64Map<u64>,
    /// Departures from small so far.
    departures: u64,
    cap: u64,
}

impl S3Fifo {
    /// An empty policy with `capacity` weight units.
    pub fn new(capacity: u64) -> Self {
        S3Fifo {
            t: Table::with_capacity(capacity as usize),
            small: List::default(),
            main: Ring::default(),
            counts: Vec::new(),
            ghost: U64Map::default(),
            departures: 0,
            cap: capacity,
        }
    }

    fn small_target(&self) -> u64 {
        (self.cap / 10).max(1)
    }

    fn ghost_capacity(&self) -> usize {
        // As many keys as main holds at most (in entries when weights are 1).
        (self.cap.saturating_sub(self.small_target())).max(1) as usize
    }

    /// `key` leaves small unused: it becomes a ghost.
    fn remember(&mut self, key: u64) {
        self.departures += 1;
        self.ghost.insert(key, self.departures);
        // The aged keys go in sweeps over the table, not one by one: a sweep at one and a
        // half windows of keys leaves a window at most, so it visits about three keys for
        // each departure since the last (in the table's order, not at random).
        let window = self.ghost_capacity();
        if self.ghost.len() > window + window / 2 {
            let (now, window) = (self.departures, window as u64);
            self.ghost.retain(|_, d| now - *d < window);
        }
    }

    /// Whether `key` is a ghost, which it stops being.
    fn take_ghost(&mut self, key: u64) -> bool {
        let window = self.ghost_capacity() as u64;
        self.ghost
            .remove(&key)
            .is_some_and(|d| self.departures - d < window)
    }

    fn total(&self) -> u64 {
        self.small.weight + self.main.weight
    }

    /// Moves `idx`, just unlinked from small, to main's newest end.
    fn promote(&mut self, idx: u32) {
        self.t.node_mut(idx).tag = MAIN;
        self.main.push_newest(&mut self.t, idx);
    }

    /// Evicts one key; returns it, or `None` when empty.
    fn evict_one(&mut self) -> Option<u64> {
        loop {
            if self.small.is_empty() && self.main.is_empty() {
                return None;
            }
            if !self.small.is_empty()
                && (self.small.weight >= self.small_target() || self.main.is_empty())
            {
                let idx = self.small.tail;
                self.small.unlink(&mut self.t, idx);
                if self.count(idx) > 0 {
                    self.set_count(idx, 0);
                    self.promote(idx);
                    // Main may now be over; keep looping until something leaves.
                    continue;
                }
                let key = self.t.remove(idx);
                self.remember(key);
                return Some(key);
            }
            let idx = self.main.hand;
            let c = self.count(idx);
            if c > 0 {
                // Back in as the newest: the oldest's place passes to the next.
                self.set_count(idx, c - 1);
                self.main.rotate(&self.t);
                continue;
            }
            self.main.unlink(&mut self.t, idx);
            return Some(self.t.remove(idx));
        }
    }

    fn evict_to_fit(&mut self, evicted: &mut Vec<u64>) {
        while self.total() > self.cap {
            match self.evict_one() {
                Some(k) => evicted.push(k),
                None => break,
            }
        }
    }

    #[inline]
    fn hit_at(&mut self, idx: u32) {
        if let Some(c) = self.counts.get_mut(idx as usize) {
            *c = (*c + 1).min(3);
        }
    }

    #[inline]
    fn count(&self, idx: u32) -> u8 {
        self.counts.get(idx as usize).copied().unwrap_or(0)
    }

    #[inline]
    fn set_count(&mut self, idx: u32, c: u8) {
        if let Some(x) = self.counts.get_mut(idx as usize) {
            *x = c;
        }
    }

    fn remove_at(&mut self, idx: u32) -> u64 {
        if self.t.node(idx).tag == SMALL {
            self.small.unlink(&mut self.t, idx);
        } else {
            self.main.unlink(&mut self.t, idx);
        }
        self.t.remove(idx)
    }

    fn reweigh_at(&mut self, idx: u32, weight: u32, evicted: &mut Vec<u64>) {
        if self.t.node(idx).tag == SMALL {
            self.small.reweigh(&mut self.t, idx, weight);
        } else {
            self.main.reweigh(&mut self.t, idx, weight);
        }
        if u64::from(weight) > self.cap {
            evicted.push(self.remove_at(idx));
        }
        self.evict_to_fit(evicted);
    }
}

impl Policy for S3Fifo {
    fn kind(&self) -> PolicyKind {
        PolicyKind::S3Fifo
    }

    #[inline]
    fn lookup(&mut self, key: u64) -> bool {
        match self.t.get(key) {
            Some(idx) => {
                self.hit_at(idx);
                true
            }
            None => false,
        }
    }

    node_handles!(t);

    #[inline]
    fn touch(&mut self, key: u64) -> bool {
        self.lookup(key)
    }

    fn admit(&mut self, key: u64, weight: u32, evicted: &mut Vec<u64>) -> bool {
        if self.t.get(key).is_some() {
            return true;
        }
        if u64::from(weight) > self.cap {
            return false;
        }
        // Make room before inserting so the newcomer is not evicted by its own arrival.
        while self.total() + u64::from(weight) > self.cap {
            match self.evict_one() {
                Some(k) => evicted.push(k),
                None => break,
            }
        }
        let tag = if self.take_ghost(key) { MAIN } else { SMALL };
        let idx = self.t.insert(key, weight, tag);
        if tag == MAIN {
            self.main.push_newest(&mut self.t, idx);
        } else {
            self.small.push_front(&mut self.t, idx);
        }
        let i = idx as usize;
        if i >= self.counts.len() {
            self.counts.resize(i + 1, 0);
        }
        self.counts[i] = 0;
        true
    }

    fn len(&self) -> usize {
        self.small.len + self.main.len
    }

    fn weight(&self) -> u64 {
        self.total()
    }

    fn capacity(&self) -> u64 {
        self.cap
    }

    fn set_capacity(&mut self, capacity: u64, evicted: &mut Vec<u64>) {
        self.cap = capacity;
        self.evict_to_fit(evicted);
    }

    fn for_each_resident(&self, f: &mut dyn FnMut(u64, u32)) {
        self.small.for_each_oldest_first(&self.t, f);
        self.main.for_each_oldest_first(&self.t, f);
    }
}
