//! S3-FIFO (Yang et al., SOSP'23): new keys enter a small FIFO (10 % of the capacity); a key
//! used again while there moves to the main FIFO, others leave and are remembered in a
//! ghost FIFO, from which a returning key goes straight to main. Main reinserts keys that
//! were used (a 2-bit counter, decremented on each pass) and evicts the others.

use std::collections::VecDeque;

use super::slab::{List, Table};
use super::{Policy, PolicyKind};
use crate::hash::U64Map;

const SMALL: u8 = 0;
const MAIN: u8 = 1;

/// S3-FIFO.
#[derive(Debug)]
pub struct S3Fifo {
    t: Table,
    small: List,
    main: List,
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
            t: Table::with_capacity(capacity as usize),
            small: List::default(),
            main: List::default(),
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
        self.small.weight + self.main.weight
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
                let n = self.t.node_mut(idx);
                if n.bits > 0 {
                    n.bits = 0;
                    n.tag = MAIN;
                    self.main.push_front(&mut self.t, idx);
                    // Main may now be over; keep looping until something leaves.
                    continue;
                }
                let key = self.t.remove(idx);
                self.remember(key);
                return Some(key);
            }
            let idx = self.main.tail;
            self.main.unlink(&mut self.t, idx);
            let n = self.t.node_mut(idx);
            if n.bits > 0 {
                n.bits -= 1;
                self.main.push_front(&mut self.t, idx);
                continue;
            }
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

    fn list_of(&mut self, tag: u8) -> &mut List {
        if tag == SMALL {
            &mut self.small
        } else {
            &mut self.main
        }
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
                let n = self.t.node_mut(idx);
                n.bits = (n.bits + 1).min(3);
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
        // Make room before inserting so the newcomer is not evicted by its own arrival.
        while self.total() + u64::from(weight) > self.cap {
            match self.evict_one() {
                Some(k) => evicted.push(k),
                None => break,
            }
        }
        if self.ghost.remove(&key).is_some() {
            let idx = self.t.insert(key, weight, MAIN);
            self.main.push_front(&mut self.t, idx);
        } else {
            let idx = self.t.insert(key, weight, SMALL);
            self.small.push_front(&mut self.t, idx);
        }
        true
    }

    fn set_weight(&mut self, key: u64, weight: u32, evicted: &mut Vec<u64>) {
        if let Some(idx) = self.t.get(key) {
            let tag = self.t.node(idx).tag;
            let mut list = *self.list_of(tag);
            list.reweigh(&mut self.t, idx, weight);
            if u64::from(weight) > self.cap {
                list.unlink(&mut self.t, idx);
                evicted.push(self.t.remove(idx));
            }
            *self.list_of(tag) = list;
            self.evict_to_fit(evicted);
        }
    }

    fn remove(&mut self, key: u64) -> bool {
        match self.t.get(key) {
            Some(idx) => {
                let tag = self.t.node(idx).tag;
                let mut list = *self.list_of(tag);
                list.unlink(&mut self.t, idx);
                *self.list_of(tag) = list;
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
