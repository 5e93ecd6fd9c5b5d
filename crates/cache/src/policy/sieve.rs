//! SIEVE (Zhang et al., NSDI'24): a FIFO queue where a hit only sets a visited bit; a hand
//! moves from the oldest end towards the newest, clearing visited bits, and evicts the
//! first unvisited entry it finds.

use super::slab::{NIL, Queues};
use super::{Policy, PolicyKind};

/// SIEVE.
#[derive(Debug)]
pub struct Sieve {
    q: Queues<1>,
    /// The visited bits by node index, apart from the nodes: a hit writes one byte of an
    /// array of a byte per entry (which stays in a core's cache) instead of a node's line.
    visited: Vec<bool>,
    hand: u32,
    cap: u64,
}

impl Sieve {
    /// An empty policy with `capacity` weight units.
    pub fn new(capacity: u64) -> Self {
        Sieve {
            q: Queues::with_capacity(capacity as usize),
            visited: Vec::new(),
            hand: NIL,
            cap: capacity,
        }
    }

    /// Unlinks and frees `idx`, moving the hand off it first; returns its key.
    fn drop_node(&mut self, idx: u32) -> u64 {
        if self.hand == idx {
            self.hand = self.q.t.node(idx).prev;
        }
        self.q.drop_node(idx)
    }

    fn evict_one(&mut self) -> Option<u64> {
        let tail = self.q.list(0).tail;
        if tail == NIL {
            return None;
        }
        let mut h = if self.hand == NIL { tail } else { self.hand };
        loop {
            match self.visited.get_mut(h as usize) {
                Some(v) if *v => *v = false,
                _ => break,
            }
            let prev = self.q.t.node(h).prev;
            h = if prev == NIL { tail } else { prev };
        }
        self.hand = self.q.t.node(h).prev;
        Some(self.q.drop_node(h))
    }

    fn evict_to_fit(&mut self, evicted: &mut Vec<u64>) {
        while self.q.weight() > self.cap {
            match self.evict_one() {
                Some(k) => evicted.push(k),
                None => break,
            }
        }
    }

    #[inline]
    fn hit_at(&mut self, idx: u32) {
        if let Some(v) = self.visited.get_mut(idx as usize) {
            *v = true;
        }
    }

    /// Adds `key` at the head, not visited.
    fn insert(&mut self, key: u64, weight: u32) {
        let idx = self.q.insert(key, weight, 0) as usize;
        if idx >= self.visited.len() {
            self.visited.resize(idx + 1, false);
        }
        self.visited[idx] = false;
    }

    fn remove_at(&mut self, idx: u32) {
        self.drop_node(idx);
    }

    fn reweigh_at(&mut self, idx: u32, weight: u32, evicted: &mut Vec<u64>) {
        if u64::from(weight) > self.cap && self.hand == idx {
            self.hand = self.q.t.node(idx).prev;
        }
        self.q.reweigh(idx, weight, self.cap, evicted);
        self.evict_to_fit(evicted);
    }
}

impl Policy for Sieve {
    fn kind(&self) -> PolicyKind {
        PolicyKind::Sieve
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

    fn touch_slots(&mut self, batch: &[(u32, u64)]) {
        // Detached, the caller's handles are exact: a hit only sets the byte.
        let exact = self.q.t.is_detached();
        for &(slot, key) in batch {
            if exact {
                self.hit_at(slot);
            } else {
                self.touch_slot(slot, key);
            }
        }
    }

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
        // Make room first so that the newcomer is not the hand's first candidate.
        while self.q.weight() + u64::from(weight) > self.cap {
            match self.evict_one() {
                Some(k) => evicted.push(k),
                None => break,
            }
        }
        self.insert(key, weight);
        true
    }

    fn len(&self) -> usize {
        self.q.len()
    }

    fn weight(&self) -> u64 {
        self.q.weight()
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
