//! SIEVE (Zhang et al., NSDI'24): a FIFO queue where a hit only sets a visited bit; a hand
//! moves from the oldest end towards the newest, clearing visited bits, and evicts the
//! first unvisited entry it finds.

use super::slab::{List, NIL, Table};
use super::{Policy, PolicyKind};

/// SIEVE.
#[derive(Debug)]
pub struct Sieve {
    t: Table,
    list: List,
    hand: u32,
    cap: u64,
}

impl Sieve {
    /// An empty policy with `capacity` weight units.
    pub fn new(capacity: u64) -> Self {
        Sieve {
            t: Table::with_capacity(capacity as usize),
            list: List::default(),
            hand: NIL,
            cap: capacity,
        }
    }

    fn unlink(&mut self, idx: u32) {
        if self.hand == idx {
            self.hand = self.t.node(idx).prev;
        }
        self.list.unlink(&mut self.t, idx);
    }

    fn evict_one(&mut self) -> Option<u64> {
        if self.list.is_empty() {
            return None;
        }
        let mut h = if self.hand == NIL {
            self.list.tail
        } else {
            self.hand
        };
        loop {
            let n = self.t.node_mut(h);
            if n.bits == 0 {
                break;
            }
            n.bits = 0;
            h = if n.prev == NIL {
                self.list.tail
            } else {
                n.prev
            };
        }
        self.hand = self.t.node(h).prev;
        self.list.unlink(&mut self.t, h);
        Some(self.t.remove(h))
    }

    fn evict_to_fit(&mut self, evicted: &mut Vec<u64>) {
        while self.list.weight > self.cap {
            match self.evict_one() {
                Some(k) => evicted.push(k),
                None => break,
            }
        }
    }
}

impl Policy for Sieve {
    fn kind(&self) -> PolicyKind {
        PolicyKind::Sieve
    }

    #[inline]
    fn lookup(&mut self, key: u64) -> bool {
        match self.t.get(key) {
            Some(idx) => {
                self.t.node_mut(idx).bits = 1;
                true
            }
            None => false,
        }
    }

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
        // Make room first so that the newcomer is not the hand's first candidate.
        while self.list.weight + u64::from(weight) > self.cap {
            match self.evict_one() {
                Some(k) => evicted.push(k),
                None => break,
            }
        }
        let idx = self.t.insert(key, weight, 0);
        self.list.push_front(&mut self.t, idx);
        true
    }

    fn set_weight(&mut self, key: u64, weight: u32, evicted: &mut Vec<u64>) {
        if let Some(idx) = self.t.get(key) {
            self.list.reweigh(&mut self.t, idx, weight);
            if u64::from(weight) > self.cap {
                self.unlink(idx);
                evicted.push(self.t.remove(idx));
            }
            self.evict_to_fit(evicted);
        }
    }

    fn remove(&mut self, key: u64) -> bool {
        match self.t.get(key) {
            Some(idx) => {
                self.unlink(idx);
                self.t.remove(idx);
                true
            }
            None => false,
        }
    }

    fn contains(&self, key: u64) -> bool {
        self.t.get(key).is_some()
    }

    fn len(&self) -> usize {
        self.list.len
    }

    fn weight(&self) -> u64 {
        self.list.weight
    }

    fn capacity(&self) -> u64 {
        self.cap
    }

    fn set_capacity(&mut self, capacity: u64, evicted: &mut Vec<u64>) {
        self.cap = capacity;
        self.evict_to_fit(evicted);
    }

    fn for_each_resident(&self, f: &mut dyn FnMut(u64, u32)) {
        self.list.for_each_oldest_first(&self.t, f);
    }
}
