//! The building blocks every policy shares: a slab of nodes addressed by `u32` indexes,
//! intrusive doubly linked lists over it, and a key index. No allocation per access once
//! the slab has grown to the cache's size.

use crate::hash::U64Map;

/// "No node".
pub(crate) const NIL: u32 = u32::MAX;

/// One tracked key: 24 bytes. (Aligned to 32, as it was, a node never straddled two cache
/// lines; at 24 a third more of them fit in the caches, and an entry costs 8 bytes less:
/// on the cache suite's Zipf 0.9 loop about 2 % less time on one thread, about 2 % more on
/// two, with `scripts/cache-ab.sh`.)
#[derive(Debug, Clone, Copy)]
pub(crate) struct Node {
    pub(crate) key: u64,
    pub(crate) prev: u32,
    pub(crate) next: u32,
    pub(crate) weight: u32,
    /// Which list (queue) the node is on; policy-specific.
    pub(crate) tag: u8,
    /// Policy-specific small state (S3-FIFO's frequency, W-TinyLFU's flags).
    pub(crate) bits: u8,
    /// Whether the node holds a resident key (false once freed).
    pub(crate) live: bool,
    /// Policy-specific byte (W-TinyLFU: the key's frequency estimate carried from its
    /// admission, [`NO_ESTIMATE`] when there is none); [`NO_ESTIMATE`] in a new node.
    pub(crate) est: u8,
}

/// A new node's [`Node::est`].
pub(crate) const NO_ESTIMATE: u8 = u8::MAX;

/// Nodes plus a key index. The fields every admission and eviction reads come first, so
/// that with many tables (one per shard of a memory cache) they share as few cache lines
/// as possible; the key index, unused once detached, comes last.
#[derive(Debug, Default)]
#[repr(C)]
pub(crate) struct Table {
    nodes: Vec<Node>,
    /// Detached: the nodes freed since the caller last took them, as `(key, index)`.
    freed: Vec<(u64, u32)>,
    /// Live nodes (kept when detached; the index's length otherwise).
    live: usize,
    /// The node inserted last (what [`find`](Self::find) answers with when detached).
    last: u32,
    /// The most recently freed node, whose `next` links the one freed before it (a list
    /// through the free nodes themselves: no separate stack to touch on each change).
    free: u32,
    /// Whether the caller keeps the key index (see [`Table::detach_index`]).
    detached: bool,
    index: U64Map<u32>,
}

impl Table {
    pub(crate) fn with_capacity(n: usize) -> Self {
        // Grow on demand beyond this: a capacity may be a weight, not an entry count.
        let n = n.min(4096);
        Table {
            nodes: Vec::with_capacity(n),
            freed: Vec::new(),
            live: 0,
            last: NIL,
            free: NIL,
            detached: false,
            index: U64Map::with_capacity_and_hasher(n, Default::default()),
        }
    }

    /// Stops keeping the key index: the caller maps keys to node indexes itself (the
    /// memory cache keeps them in its entries) and addresses nodes only through them
    /// ([`get_at`](Self::get_at)); [`get`](Self::get) then finds nothing and inserts do not
    /// check for duplicates. Only an empty table can detach; returns whether it did.
    pub(crate) fn detach_index(&mut self) -> bool {
        if self.live > 0 || !self.index.is_empty() {
            return false;
        }
        self.index = U64Map::default();
        self.detached = true;
        true
    }

    /// The node of `key`, as the handle a policy's `slot` gives: the index's answer or,
    /// detached, the node inserted last if it holds `key` (the caller takes handles right
    /// after admitting).
    #[inline]
    pub(crate) fn find(&self, key: u64) -> Option<u32> {
        if !self.detached {
            return self.get(key);
        }
        match self.nodes.get(self.last as usize) {
            Some(n) if n.live && n.key == key => Some(self.last),
            _ => None,
        }
    }

    /// Whether the caller keeps the key index (its handles are then exact).
    #[inline]
    pub(crate) fn is_detached(&self) -> bool {
        self.detached
    }

    #[inline]
    pub(crate) fn get(&self, key: u64) -> Option<u32> {
        self.index.get(&key).copied()
    }

    /// The node index of `key` given a remembered `slot`, without a key-index probe:
    /// `Some(slot)` when that node is live and holds `key` (slots are stable while a key
    /// is resident), otherwise the index's answer.
    #[inline]
    pub(crate) fn get_at(&self, slot: u32, key: u64) -> Option<u32> {
        match self.nodes.get(slot as usize) {
            Some(n) if n.live && n.key == key => Some(slot),
            _ => self.get(key),
        }
    }

    /// Adds a node for `key` (which must not be present) and returns its index.
    pub(crate) fn insert(&mut self, key: u64, weight: u32, tag: u8) -> u32 {
        let idx = alloc(&mut self.nodes, &mut self.free, key, weight, tag);
        self.live += 1;
        self.last = idx;
        if !self.detached {
            self.index.insert(key, idx);
        }
        idx
    }

    /// Adds a node for `key` and returns its index, or `None` (and changes nothing) when
    /// `key` is already present: one index probe for both.
    pub(crate) fn try_insert(&mut self, key: u64, weight: u32, tag: u8) -> Option<u32> {
        if self.detached {
            return Some(self.insert(key, weight, tag));
        }
        let std::collections::hash_map::Entry::Vacant(place) = self.index.entry(key) else {
            return None;
        };
        self.live += 1;
        self.last = alloc(&mut self.nodes, &mut self.free, key, weight, tag);
        Some(*place.insert(self.last))
    }

    /// Moves the `(key, index)` of the nodes freed since the last call to `out` (kept
    /// only when detached: the caller keeps its entries by index).
    pub(crate) fn take_freed(&mut self, out: &mut Vec<(u64, u32)>) {
        if out.is_empty() {
            // The usual case (the caller drains `out` each time): trade buffers, copy none.
            std::mem::swap(out, &mut self.freed);
        } else {
            out.append(&mut self.freed);
        }
    }

    /// Removes the node (which must be unlinked from its list) and returns its key.
    pub(crate) fn remove(&mut self, idx: u32) -> u64 {
        self.nodes[idx as usize].live = false;
        let key = self.nodes[idx as usize].key;
        self.live -= 1;
        if self.detached {
            self.freed.push((key, idx));
        } else {
            self.index.remove(&key);
        }
        self.nodes[idx as usize].next = self.free;
        self.free = idx;
        key
    }

    /// Reads the node at `slot` and its list neighbours and folds their keys: a
    /// read-ahead, so that a batch of updates finds them in cache (the loads of a batch are
    /// independent, so their misses overlap instead of following one another).
    #[inline]
    pub(crate) fn warm(&self, slot: u32) -> u64 {
        let Some(n) = self.nodes.get(slot as usize) else {
            return 0;
        };
        let mut acc = n.key;
        if let Some(p) = self.nodes.get(n.prev as usize) {
            acc ^= p.key;
        }
        if let Some(q) = self.nodes.get(n.next as usize) {
            acc ^= q.key;
        }
        acc
    }

    /// Starts loading the node at `idx`, if there is one (a read-ahead).
    #[inline]
    pub(crate) fn prefetch(&self, idx: u32) {
        if let Some(n) = self.nodes.get(idx as usize) {
            crate::prefetch::prefetch(n);
        }
    }

    /// The node at `idx`, if there is one (`NIL` has none).
    #[inline]
    pub(crate) fn try_node(&self, idx: u32) -> Option<&Node> {
        self.nodes.get(idx as usize)
    }

    /// The node at `idx`, mutably, if there is one.
    #[inline]
    pub(crate) fn try_node_mut(&mut self, idx: u32) -> Option<&mut Node> {
        self.nodes.get_mut(idx as usize)
    }

    #[inline]
    pub(crate) fn node(&self, idx: u32) -> &Node {
        &self.nodes[idx as usize]
    }

    #[inline]
    pub(crate) fn node_mut(&mut self, idx: u32) -> &mut Node {
        &mut self.nodes[idx as usize]
    }

    pub(crate) fn len(&self) -> usize {
        self.live
    }
}

/// `N` lists over one table, a node's `tag` naming the list it is on: the queues of LRU
/// and FIFO (one), SIEVE (one), S3-FIFO (small and main).
#[derive(Debug)]
pub(crate) struct Queues<const N: usize> {
    pub(crate) t: Table,
    pub(crate) lists: [List; N],
}

impl<const N: usize> Queues<N> {
    /// Empty queues, the table sized for `n` keys.
    pub(crate) fn with_capacity(n: usize) -> Self {
        Queues {
            t: Table::with_capacity(n),
            lists: [List::default(); N],
        }
    }

    /// The list `tag`.
    #[inline]
    pub(crate) fn list(&self, tag: u8) -> &List {
        &self.lists[tag as usize]
    }

    /// Adds `key` at the head of list `tag`; returns its node.
    pub(crate) fn insert(&mut self, key: u64, weight: u32, tag: u8) -> u32 {
        let idx = self.t.insert(key, weight, tag);
        self.lists[tag as usize].push_front(&mut self.t, idx);
        idx
    }

    /// Unlinks `idx` from its list.
    pub(crate) fn unlink(&mut self, idx: u32) {
        let tag = self.t.node(idx).tag;
        self.lists[tag as usize].unlink(&mut self.t, idx);
    }

    /// Moves `idx` to the head of its list.
    #[inline]
    pub(crate) fn move_to_front(&mut self, idx: u32) {
        let tag = self.t.node(idx).tag;
        self.lists[tag as usize].move_to_front(&mut self.t, idx);
    }

    /// Unlinks and frees `idx`; returns its key.
    pub(crate) fn drop_node(&mut self, idx: u32) -> u64 {
        self.unlink(idx);
        self.t.remove(idx)
    }

    /// Changes the weight of `idx`; a node heavier than `cap` leaves (into `evicted`).
    pub(crate) fn reweigh(&mut self, idx: u32, weight: u32, cap: u64, evicted: &mut Vec<u64>) {
        let tag = self.t.node(idx).tag;
        self.lists[tag as usize].reweigh(&mut self.t, idx, weight);
        if u64::from(weight) > cap {
            evicted.push(self.drop_node(idx));
        }
    }

    /// Keys on every list.
    pub(crate) fn len(&self) -> usize {
        self.lists.iter().map(|l| l.len).sum()
    }

    /// Weight on every list.
    pub(crate) fn weight(&self) -> u64 {
        self.lists.iter().map(|l| l.weight).sum()
    }

    /// Every key, list by list, each from oldest to newest.
    pub(crate) fn for_each_oldest_first(&self, f: &mut dyn FnMut(u64, u32)) {
        for l in &self.lists {
            l.for_each_oldest_first(&self.t, f);
        }
    }
}

/// Takes a free node (or a new one) for `key` and returns its index.
fn alloc(nodes: &mut Vec<Node>, free: &mut u32, key: u64, weight: u32, tag: u8) -> u32 {
    let node = Node {
        key,
        prev: NIL,
        next: NIL,
        weight,
        tag,
        bits: 0,
        live: true,
        est: NO_ESTIMATE,
    };
    match nodes.get_mut(*free as usize) {
        Some(n) => {
            let i = *free;
            *free = n.next;
            *n = node;
            i
        }
        None => {
            nodes.push(node);
            (nodes.len() - 1) as u32
        }
    }
}

/// A doubly linked list over a [`Table`]: `head` is the newest (most recently used) end,
/// `tail` the oldest.
#[derive(Debug, Clone, Copy)]
pub(crate) struct List {
    pub(crate) head: u32,
    pub(crate) tail: u32,
    pub(crate) len: usize,
    pub(crate) weight: u64,
}

impl Default for List {
    fn default() -> Self {
        List {
            head: NIL,
            tail: NIL,
            len: 0,
            weight: 0,
        }
    }
}

impl List {
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Links `idx` at the head (newest end).
    pub(crate) fn push_front(&mut self, t: &mut Table, idx: u32) {
        let old = self.head;
        {
            let n = t.node_mut(idx);
            n.prev = NIL;
            n.next = old;
        }
        if old == NIL {
            self.tail = idx;
        } else {
            t.node_mut(old).prev = idx;
        }
        self.head = idx;
        self.len += 1;
        self.weight += u64::from(t.node(idx).weight);
    }

    /// Links `idx` at the tail (oldest end).
    pub(crate) fn push_back(&mut self, t: &mut Table, idx: u32) {
        let old = self.tail;
        {
            let n = t.node_mut(idx);
            n.prev = old;
            n.next = NIL;
        }
        if old == NIL {
            self.head = idx;
        } else {
            t.node_mut(old).next = idx;
        }
        self.tail = idx;
        self.len += 1;
        self.weight += u64::from(t.node(idx).weight);
    }

    /// Unlinks `idx`, which must be on this list.
    pub(crate) fn unlink(&mut self, t: &mut Table, idx: u32) {
        let (prev, next, w) = {
            let n = t.node(idx);
            (n.prev, n.next, n.weight)
        };
        if prev == NIL {
            self.head = next;
        } else {
            t.node_mut(prev).next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            t.node_mut(next).prev = prev;
        }
        let n = t.node_mut(idx);
        n.prev = NIL;
        n.next = NIL;
        self.len -= 1;
        self.weight -= u64::from(w);
    }

    /// Moves `idx` (on this list) to the head.
    #[inline]
    pub(crate) fn move_to_front(&mut self, t: &mut Table, idx: u32) {
        if self.head != idx {
            self.unlink(t, idx);
            self.push_front(t, idx);
        }
    }

    /// Changes the weight of `idx` (on this list).
    pub(crate) fn reweigh(&mut self, t: &mut Table, idx: u32, weight: u32) {
        let n = t.node_mut(idx);
        self.weight = self.weight - u64::from(n.weight) + u64::from(weight);
        n.weight = weight;
    }

    /// Keys from oldest to newest.
    pub(crate) fn for_each_oldest_first(&self, t: &Table, f: &mut dyn FnMut(u64, u32)) {
        let mut i = self.tail;
        while i != NIL {
            let n = t.node(i);
            f(n.key, n.weight);
            i = n.prev;
        }
    }
}

/// A circular doubly linked list over a [`Table`], as a FIFO with second chances (a
/// CLOCK): `hand` is the oldest node, `next` leads towards newer ones, and the newest is
/// the hand's `prev`. Putting the oldest back as the newest, what a FIFO that reinserts
/// used keys does most, is a move of the hand that writes no node, where a list's
/// unlink and push wrote three (in a cache, three lines somewhere in megabytes of nodes).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ring {
    pub(crate) hand: u32,
    pub(crate) len: usize,
    pub(crate) weight: u64,
}

impl Default for Ring {
    fn default() -> Self {
        Ring {
            hand: NIL,
            len: 0,
            weight: 0,
        }
    }
}

impl Ring {
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Links `idx` (on no list) as the newest.
    pub(crate) fn push_newest(&mut self, t: &mut Table, idx: u32) {
        if self.hand == NIL {
            let n = t.node_mut(idx);
            n.prev = idx;
            n.next = idx;
            self.hand = idx;
        } else {
            let oldest = self.hand;
            let newest = t.node(oldest).prev;
            {
                let n = t.node_mut(idx);
                n.prev = newest;
                n.next = oldest;
            }
            t.node_mut(newest).next = idx;
            t.node_mut(oldest).prev = idx;
        }
        self.len += 1;
        self.weight += u64::from(t.node(idx).weight);
    }

    /// Makes the oldest node the newest (no node is written).
    #[inline]
    pub(crate) fn rotate(&mut self, t: &Table) {
        if self.hand != NIL {
            self.hand = t.node(self.hand).next;
        }
    }

    /// Unlinks `idx`, which must be on this ring.
    pub(crate) fn unlink(&mut self, t: &mut Table, idx: u32) {
        let (prev, next, w) = {
            let n = t.node(idx);
            (n.prev, n.next, n.weight)
        };
        if self.len == 1 {
            self.hand = NIL;
        } else {
            t.node_mut(prev).next = next;
            t.node_mut(next).prev = prev;
            if self.hand == idx {
                self.hand = next;
            }
        }
        let n = t.node_mut(idx);
        n.prev = NIL;
        n.next = NIL;
        self.len -= 1;
        self.weight -= u64::from(w);
    }

    /// Changes the weight of `idx` (on this ring).
    pub(crate) fn reweigh(&mut self, t: &mut Table, idx: u32, weight: u32) {
        let n = t.node_mut(idx);
        self.weight = self.weight - u64::from(n.weight) + u64::from(weight);
        n.weight = weight;
    }

    /// Keys from oldest to newest.
    pub(crate) fn for_each_oldest_first(&self, t: &Table, f: &mut dyn FnMut(u64, u32)) {
        let mut i = self.hand;
        for _ in 0..self.len {
            let n = t.node(i);
            f(n.key, n.weight);
            i = n.next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_take_24_bytes() {
        assert_eq!(std::mem::size_of::<Node>(), 24);
    }

    /// The ring against a `VecDeque` (oldest first) under pushes, rotations and unlinks
    /// anywhere, by a fixed random sequence.
    #[test]
    fn a_ring_keeps_fifo_order_through_rotations_and_unlinks() {
        use std::collections::VecDeque;
        let mut t = Table::with_capacity(64);
        let mut ring = Ring::default();
        let mut model: VecDeque<u32> = VecDeque::new();
        let mut rng = crate::hash::XorShift::new(5);
        for key in 0..4000u64 {
            match rng.next_u64() % 4 {
                0 | 1 if model.len() < 40 => {
                    let idx = t.insert(key, 1 + (key % 3) as u32, 0);
                    ring.push_newest(&mut t, idx);
                    model.push_back(idx);
                }
                2 => {
                    ring.rotate(&t);
                    if let Some(i) = model.pop_front() {
                        model.push_back(i);
                    }
                }
                _ if !model.is_empty() => {
                    let at = (rng.next_u64() % model.len() as u64) as usize;
                    let idx = model.remove(at).unwrap_or(NIL);
                    ring.unlink(&mut t, idx);
                    t.remove(idx);
                }
                _ => {}
            }
            let mut seen = Vec::new();
            ring.for_each_oldest_first(&t, &mut |k, _| seen.push(k));
            let want: Vec<u64> = model.iter().map(|&i| t.node(i).key).collect();
            assert_eq!(seen, want);
            let weight: u64 = model.iter().map(|&i| u64::from(t.node(i).weight)).sum();
            assert_eq!((ring.len, ring.weight), (model.len(), weight));
            assert_eq!(ring.hand, model.front().copied().unwrap_or(NIL));
        }
    }

    #[test]
    fn a_detached_table_keeps_no_index() {
        let mut t = Table::with_capacity(4);
        let a = t.insert(7, 1, 0);
        assert!(!t.detach_index(), "only an empty table detaches");
        t.remove(a);
        assert!(t.detach_index());
        let b = t.try_insert(9, 1, 0).unwrap_or(NIL);
        assert_eq!(t.len(), 1);
        assert_eq!(t.get(9), None);
        assert_eq!(t.get_at(b, 9), Some(b));
        assert_eq!(t.get_at(b, 8), None);
        // The handle of the key inserted last, without an index.
        assert_eq!(t.find(9), Some(b));
        assert_eq!(t.find(8), None);
        assert_eq!(t.remove(b), 9);
        assert_eq!(t.get_at(b, 9), None);
        assert_eq!(t.find(9), None);
        assert_eq!(t.len(), 0);
    }
}
