//! LRU and FIFO: one queue; LRU moves a hit to the front, FIFO does not.

use super::slab::{List, Table};
use super::{Policy, PolicyKind};

/// One queue, evicting from the tail; `PROMOTE` moves hits to the head.
#[derive(Debug)]
pub struct Queue<const PROMOTE: bool> {
    t: Table,
    list: List,
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
            t: Table::with_capacity(capacity as usize),
            list: List::default(),
            cap: capacity,
        }
    }

    fn evict_to_fit(&mut self, evicted: &mut Vec<u64>) {
        while self.list.weight > self.cap && !self.list.is_empty() {
            let idx = self.list.tail;
            self.list.unlink(&mut self.t, idx);
            evicted.push(self.t.remove(idx));
        }
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
        match self.t.get(key) {
            Some(idx) => {
                if PROMOTE {
                    self.list.move_to_front(&mut self.t, idx);
                }
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
        if u64::from(weight) > self.cap || self.t.get(key).is_some() {
            return self.t.get(key).is_some();
        }
        let idx = self.t.insert(key, weight, 0);
        self.list.push_front(&mut self.t, idx);
        self.evict_to_fit(evicted);
        true
    }

    fn set_weight(&mut self, key: u64, weight: u32, evicted: &mut Vec<u64>) {
        if let Some(idx) = self.t.get(key) {
            self.list.reweigh(&mut self.t, idx, weight);
            if u64::from(weight) > self.cap {
                self.list.unlink(&mut self.t, idx);
                evicted.push(self.t.remove(idx));
            }
            self.evict_to_fit(evicted);
        }
    }

    fn remove(&mut self, key: u64) -> bool {
        match self.t.get(key) {
            Some(idx) => {
                self.list.unlink(&mut self.t, idx);
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
