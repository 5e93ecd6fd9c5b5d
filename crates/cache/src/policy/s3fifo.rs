//! S3-FIFO (Yang et al., SOSP'23): new keys enter a small FIFO (10 % of the capacity); a key
//! used again while there moves to the main FIFO, others leave and are remembered in a
//! ghost FIFO, from which a returning key goes straight to main. Main reinserts keys that
//! were used (a 2-bit counter, decremented on each pass) and evicts the others.

use std::collections::VecDeque;

use super::slab::Queues;
use super::{Policy, PolicyKind};
use crate::hash::U64Map;

const SMALL: u8 = 0;
const MAIN: u8 = 1;

/// S3-FIFO.
#[derive(Debug)]
pub struct S3Fifo {
    /// Small (`SMALL`) and main (`MAIN`) FIFOs.
    q: Queues<2>,
    /// Ghost keys with the sequence number of their insertion (stale queue entries are
    /// recognised by a mismatching number).
    ghost: U64Map<u64>,
    ghost_queue: VecDeque<(u64, u64)>,
    ghost_seq: u64,
    cap: u64,
}

impl S3Fifo {
    /// An empty policy with `capacity` weight units.
    pub fn new(capacity: u64) -> Self {
        S3Fifo {
            q: Queues::with_capacity(capacity as usize),
            ghost: U64Map::default(),
            ghost_queue: VecDeque::new(),
            ghost_seq: 0,
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

    fn remember(&mut self, key: u64) {
        self.ghost_seq += 1;
        self.ghost.insert(key, self.ghost_seq);
        self.ghost_queue.push_back((key, self.ghost_seq));
        while self.ghost.len() > self.ghost_capacity() {
            match self.ghost_queue.pop_front() {
                Some((k, seq)) => {
                    if self.ghost.get(&k) == Some(&seq) {
                        self.ghost.remove(&k);
                    }
                }
                None => break,
            }
        }
        // Bound the stale entries too.
        if self.ghost_queue.len() > 2 * self.ghost_capacity() + 16 {
            let ghost = &self.ghost;
            self.ghost_queue.retain(|(k, s)| ghost.get(k) == Some(s));
        }
    }

    fn total(&self) -> u64 {
        self.q.weight()
    }

    /// Evicts one key; returns it, or `None` when empty.
    fn evict_one(&mut self) -> Option<u64> {
        loop {
            let (small, main) = (*self.q.list(SMALL), *self.q.list(MAIN));
            if small.is_empty() && main.is_empty() {
                return None;
            }
            if !small.is_empty() && (small.weight >= self.small_target() || main.is_empty()) {
                let idx = small.tail;
                self.q.unlink(idx);
                let n = self.q.t.node_mut(idx);
                if n.bits > 0 {
                    n.bits = 0;
                    self.q.push_front(idx, MAIN);
                    // Main may now be over; keep looping until something leaves.
                    continue;
                }
                let key = self.q.t.remove(idx);
                self.remember(key);
                return Some(key);
            }
            let idx = main.tail;
            self.q.unlink(idx);
            let n = self.q.t.node_mut(idx);
            if n.bits > 0 {
                n.bits -= 1;
                self.q.push_front(idx, MAIN);
                continue;
            }
            return Some(self.q.t.remove(idx));
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
        let n = self.q.t.node_mut(idx);
        n.bits = (n.bits + 1).min(3);
    }

    fn remove_at(&mut self, idx: u32) {
        self.q.drop_node(idx);
    }

    fn reweigh_at(&mut self, idx: u32, weight: u32, evicted: &mut Vec<u64>) {
        self.q.reweigh(idx, weight, self.cap, evicted);
        self.evict_to_fit(evicted);
    }
}

impl Policy for S3Fifo {
    fn kind(&self) -> PolicyKind {
        PolicyKind::S3Fifo
    }

    #[inline]
    fn lookup(&mut self, key: u64) -> bool {
        match self.q.t.get(key) {
            Some(idx) => {
                self.hit_at(idx);
                true
            }
            None => false,
        }
    }

    node_handles!(q.t);

    #[inline]
    fn touch(&mut self, key: u64) -> bool {
        self.lookup(key)
    }

    fn admit(&mut self, key: u64, weight: u32, evicted: &mut Vec<u64>) -> bool {
        if self.q.t.get(key).is_some() {
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
        let tag = if self.ghost.remove(&key).is_some() {
            MAIN
        } else {
            SMALL
        };
        self.q.insert(key, weight, tag);
        true
    }

    fn len(&self) -> usize {
        self.q.len()
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
        self.q.for_each_oldest_first(f);
    }
}
