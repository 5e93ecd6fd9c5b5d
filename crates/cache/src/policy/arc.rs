//! ARC (Megiddo & Modha, FAST'03): T1 holds keys seen once recently, T2 keys seen at
//! least twice; ghost lists B1 and B2 remember what each evicted, and a hit in a ghost
//! list moves the target size `p` of T1 towards the list that would have hit. Weights
//! generalise the counts of the paper (every weight 1 gives the paper's algorithm).

use super::slab::{List, Table};
use super::{Policy, PolicyKind};

const T1: u8 = 0;
const T2: u8 = 1;
const B1: u8 = 2;
const B2: u8 = 3;

/// Adaptive replacement cache.
#[derive(Debug)]
pub struct Arc {
    t: Table,
    lists: [List; 4],
    p: u64,
    cap: u64,
}

impl Arc {
    /// An empty policy with `capacity` weight units.
    pub fn new(capacity: u64) -> Self {
        Arc {
            t: Table::with_capacity(2 * capacity as usize),
            lists: [List::default(); 4],
            p: 0,
            cap: capacity,
        }
    }

    fn resident_weight(&self) -> u64 {
        self.lists[T1 as usize].weight + self.lists[T2 as usize].weight
    }

    fn move_to(&mut self, idx: u32, tag: u8) {
        let from = self.t.node(idx).tag;
        self.lists[from as usize].unlink(&mut self.t, idx);
        self.t.node_mut(idx).tag = tag;
        self.lists[tag as usize].push_front(&mut self.t, idx);
    }

    fn drop_node(&mut self, idx: u32) -> u64 {
        let tag = self.t.node(idx).tag;
        self.lists[tag as usize].unlink(&mut self.t, idx);
        self.t.remove(idx)
    }

    /// The paper's REPLACE: moves the LRU of T1 or T2 to its ghost list.
    fn replace(&mut self, in_b2: bool, evicted: &mut Vec<u64>) -> bool {
        let t1 = self.lists[T1 as usize];
        let t2 = self.lists[T2 as usize];
        let from_t1 = !t1.is_empty() && (t1.weight > self.p || (in_b2 && t1.weight == self.p));
        let (src, dst) = if from_t1 || t2.is_empty() {
            (T1, B1)
        } else {
            (T2, B2)
        };
        let idx = self.lists[src as usize].tail;
        if idx == super::slab::NIL {
            return false;
        }
        self.move_to(idx, dst);
        evicted.push(self.t.node(idx).key);
        true
    }

    fn trim_ghosts(&mut self) {
        while self.lists[T1 as usize].weight + self.lists[B1 as usize].weight > self.cap
            && !self.lists[B1 as usize].is_empty()
        {
            let idx = self.lists[B1 as usize].tail;
            self.drop_node(idx);
        }
        let total = |s: &Self| s.lists.iter().map(|l| l.weight).sum::<u64>();
        while total(self) > 2 * self.cap && !self.lists[B2 as usize].is_empty() {
            let idx = self.lists[B2 as usize].tail;
            self.drop_node(idx);
        }
        while total(self) > 2 * self.cap && !self.lists[B1 as usize].is_empty() {
            let idx = self.lists[B1 as usize].tail;
            self.drop_node(idx);
        }
    }

    fn make_room(&mut self, need: u64, in_b2: bool, evicted: &mut Vec<u64>) {
        while self.resident_weight() + need > self.cap {
            if !self.replace(in_b2, evicted) {
                break;
            }
        }
    }
}

impl Policy for Arc {
    fn kind(&self) -> PolicyKind {
        PolicyKind::Arc
    }

    fn lookup(&mut self, key: u64) -> bool {
        let Some(idx) = self.t.get(key) else {
            return false;
        };
        let n = *self.t.node(idx);
        match n.tag {
            T1 | T2 => {
                self.move_to(idx, T2);
                true
            }
            B1 => {
                let (b1, b2) = (
                    self.lists[B1 as usize].weight,
                    self.lists[B2 as usize].weight,
                );
                let delta = if b1 >= b2 { 1 } else { b2 / b1.max(1) };
                self.p = (self.p + delta * u64::from(n.weight)).min(self.cap);
                false
            }
            _ => {
                let (b1, b2) = (
                    self.lists[B1 as usize].weight,
                    self.lists[B2 as usize].weight,
                );
                let delta = if b2 >= b1 { 1 } else { b1 / b2.max(1) };
                self.p = self.p.saturating_sub(delta * u64::from(n.weight));
                false
            }
        }
    }

    fn admit(&mut self, key: u64, weight: u32, evicted: &mut Vec<u64>) -> bool {
        let w = u64::from(weight);
        match self.t.get(key) {
            Some(idx) if matches!(self.t.node(idx).tag, T1 | T2) => return true,
            Some(idx) => {
                let in_b2 = self.t.node(idx).tag == B2;
                self.drop_node(idx);
                if w > self.cap {
                    return false;
                }
                self.make_room(w, in_b2, evicted);
                let idx = self.t.insert(key, weight, T2);
                self.lists[T2 as usize].push_front(&mut self.t, idx);
            }
            None => {
                if w > self.cap {
                    return false;
                }
                self.make_room(w, false, evicted);
                let idx = self.t.insert(key, weight, T1);
                self.lists[T1 as usize].push_front(&mut self.t, idx);
            }
        }
        self.trim_ghosts();
        true
    }

    fn set_weight(&mut self, key: u64, weight: u32, evicted: &mut Vec<u64>) {
        let Some(idx) = self.t.get(key) else { return };
        let tag = self.t.node(idx).tag;
        if !matches!(tag, T1 | T2) {
            return;
        }
        self.lists[tag as usize].reweigh(&mut self.t, idx, weight);
        if u64::from(weight) > self.cap {
            evicted.push(self.drop_node(idx));
        }
        self.make_room(0, false, evicted);
        self.trim_ghosts();
    }

    fn remove(&mut self, key: u64) -> bool {
        match self.t.get(key) {
            Some(idx) => {
                let resident = matches!(self.t.node(idx).tag, T1 | T2);
                self.drop_node(idx);
                resident
            }
            None => false,
        }
    }

    fn contains(&self, key: u64) -> bool {
        self.slot(key).is_some()
    }

    fn slot(&self, key: u64) -> Option<u32> {
        // A resident keeps its node until it leaves (a ghost then keeps it, unreported).
        self.t
            .get(key)
            .filter(|&idx| matches!(self.t.node(idx).tag, T1 | T2))
    }

    fn len(&self) -> usize {
        self.lists[T1 as usize].len + self.lists[T2 as usize].len
    }

    fn weight(&self) -> u64 {
        self.resident_weight()
    }

    fn capacity(&self) -> u64 {
        self.cap
    }

    fn set_capacity(&mut self, capacity: u64, evicted: &mut Vec<u64>) {
        self.cap = capacity;
        self.p = self.p.min(capacity);
        self.make_room(0, false, evicted);
        self.trim_ghosts();
    }

    fn for_each_resident(&self, f: &mut dyn FnMut(u64, u32)) {
        self.lists[T1 as usize].for_each_oldest_first(&self.t, f);
        self.lists[T2 as usize].for_each_oldest_first(&self.t, f);
    }
}
