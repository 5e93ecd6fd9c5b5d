//! LFU over in-cache counts: evicts the key with the fewest uses since it was admitted,
//! the least recently used among equals. Buckets of keys per count, each in recency order.

use std::collections::BTreeMap;

use super::slab::{List, Table};
use super::{Policy, PolicyKind};

/// Least frequently used, ties broken by recency.
#[derive(Debug)]
pub struct Lfu {
    t: Table,
    /// The count of each node, by index.
    counts: Vec<u32>,
    buckets: BTreeMap<u32, List>,
    len: usize,
    weight: u64,
    cap: u64,
}

impl Lfu {
    /// An empty policy with `capacity` weight units.
    pub fn new(capacity: u64) -> Self {
        Lfu {
            t: Table::with_capacity(capacity as usize),
            counts: Vec::new(),
            buckets: BTreeMap::new(),
            len: 0,
            weight: 0,
            cap: capacity,
        }
    }

    /// The count of the node at `idx`.
    fn count(&self, idx: u32) -> u32 {
        self.counts.get(idx as usize).copied().unwrap_or(0)
    }

    /// Sets the count of the node at `idx`, growing the counts to hold it.
    fn set_count(&mut self, idx: u32, count: u32) {
        let i = idx as usize;
        if i >= self.counts.len() {
            self.counts.resize(i + 1, 0);
        }
        self.counts[i] = count;
    }

    fn unlink(&mut self, idx: u32) {
        let f = self.count(idx);
        if let Some(list) = self.buckets.get_mut(&f) {
            list.unlink(&mut self.t, idx);
            if list.is_empty() {
                self.buckets.remove(&f);
            }
        }
    }

    fn link(&mut self, idx: u32) {
        let f = self.count(idx);
        self.buckets
            .entry(f)
            .or_default()
            .push_front(&mut self.t, idx);
    }

    fn evict_to_fit(&mut self, evicted: &mut Vec<u64>) {
        while self.weight > self.cap {
            let Some((_, list)) = self.buckets.iter().next() else {
                break;
            };
            let idx = list.tail;
            self.unlink(idx);
            self.len -= 1;
            self.weight -= u64::from(self.t.node(idx).weight);
            evicted.push(self.t.remove(idx));
        }
    }

    fn hit_at(&mut self, idx: u32) {
        self.unlink(idx);
        self.set_count(idx, self.count(idx).saturating_add(1));
        self.link(idx);
    }

    fn remove_at(&mut self, idx: u32) {
        self.unlink(idx);
        self.len -= 1;
        self.weight -= u64::from(self.t.node(idx).weight);
        self.t.remove(idx);
    }

    fn reweigh_at(&mut self, idx: u32, weight: u32, evicted: &mut Vec<u64>) {
        self.unlink(idx);
        let old = self.t.node(idx).weight;
        self.weight = self.weight - u64::from(old) + u64::from(weight);
        self.t.node_mut(idx).weight = weight;
        if u64::from(weight) > self.cap {
            self.len -= 1;
            self.weight -= u64::from(weight);
            evicted.push(self.t.remove(idx));
        } else {
            self.link(idx);
        }
        self.evict_to_fit(evicted);
    }
}

impl Policy for Lfu {
    fn kind(&self) -> PolicyKind {
        PolicyKind::Lfu
    }

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
        // Room first, so the newcomer (count 1) is not its own victim.
        let need = u64::from(weight);
        while self.weight + need > self.cap && self.len > 0 {
            let before = self.cap;
            self.cap = self.cap.saturating_sub(need);
            self.evict_to_fit(evicted);
            self.cap = before;
        }
        let idx = self.t.insert(key, weight, 0);
        self.set_count(idx, 1);
        self.link(idx);
        self.len += 1;
        self.weight += need;
        true
    }

    fn len(&self) -> usize {
        self.len
    }

    fn weight(&self) -> u64 {
        self.weight
    }

    fn capacity(&self) -> u64 {
        self.cap
    }

    fn set_capacity(&mut self, capacity: u64, evicted: &mut Vec<u64>) {
        self.cap = capacity;
        self.evict_to_fit(evicted);
    }

    fn for_each_resident(&self, f: &mut dyn FnMut(u64, u32)) {
        for list in self.buckets.values() {
            list.for_each_oldest_first(&self.t, f);
        }
    }
}
