//! LRU and FIFO: one queue; LRU moves a hit to the front, FIFO does not.

use super::slab::Queues;
use super::{Policy, PolicyKind};

/// One queue, evicting from the tail; `PROMOTE` moves hits to the head.
#[derive(Debug)]
pub struct Queue<const PROMOTE: bool> {
    q: Queues<1>,
    cap: u64,
}

/// Least recently used.
pub type Lru = Queue<true>;
/// First in, first out.
pub type Fifo = Queue<false>;

impl<const PROMOTE: bool> Queue<PROMOTE> {
    /// An empty policy with `capacity` weight units.
    pub fn new(capacity: u64) -> Self {
        Queue {
            q: Queues::with_capacity(capacity as usize),
            cap: capacity,
        }
    }

    fn evict_to_fit(&mut self, evicted: &mut Vec<u64>) {
        while self.q.weight() > self.cap && self.q.len() > 0 {
            let idx = self.q.list(0).tail;
            evicted.push(self.q.drop_node(idx));
        }
    }

    #[inline]
    fn hit_at(&mut self, idx: u32) {
        if PROMOTE {
            self.q.move_to_front(idx);
        }
    }

    fn remove_at(&mut self, idx: u32) {
        self.q.drop_node(idx);
    }

    fn reweigh_at(&mut self, idx: u32, weight: u32, evicted: &mut Vec<u64>) {
        self.q.reweigh(idx, weight, self.cap, evicted);
        self.evict_to_fit(evicted);
    }
}

impl<const PROMOTE: bool> Policy for Queue<PROMOTE> {
    fn kind(&self) -> PolicyKind {
        if PROMOTE {
            PolicyKind::Lru
        } else {
            PolicyKind::Fifo
        }
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
        // A FIFO hit changes nothing: there is nothing to apply (or to read).
        if PROMOTE {
            for &(slot, key) in batch {
                self.touch_slot(slot, key);
            }
        }
    }

    #[inline]
    fn touch(&mut self, key: u64) -> bool {
        self.lookup(key)
    }

    fn admit(&mut self, key: u64, weight: u32, evicted: &mut Vec<u64>) -> bool {
        if u64::from(weight) > self.cap || self.q.t.get(key).is_some() {
            return self.q.t.get(key).is_some();
        }
        self.q.insert(key, weight, 0);
        self.evict_to_fit(evicted);
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
