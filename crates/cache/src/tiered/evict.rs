//! The disk tier's eviction index: which stored key to evict next, by weight (bytes).

use std::collections::{BTreeMap, HashMap};

/// The disk tier's eviction order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EvictorKind {
    /// Least recently used first.
    #[default]
    Lru,
    /// Oldest write first.
    Fifo,
}

/// Index of stored keys with their sizes, in eviction order.
#[derive(Debug)]
pub(crate) struct Evictor {
    kind: EvictorKind,
    tick: u64,
    entries: HashMap<Vec<u8>, (u64, u64)>, // key -> (size, tick)
    order: BTreeMap<u64, Vec<u8>>,         // tick -> key
}

impl Evictor {
    pub(crate) fn new(kind: EvictorKind) -> Self {
        Evictor {
            kind,
            tick: 0,
            entries: HashMap::new(),
            order: BTreeMap::new(),
        }
    }

    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    /// Records a stored key of `size` bytes (replacing an earlier size).
    pub(crate) fn insert(&mut self, key: &[u8], size: u64) {
        let t = self.next_tick();
        if let Some((_, old)) = self.entries.insert(key.to_vec(), (size, t)) {
            self.order.remove(&old);
        }
        self.order.insert(t, key.to_vec());
    }

    /// Records a read of `key`.
    pub(crate) fn touch(&mut self, key: &[u8]) {
        if self.kind == EvictorKind::Fifo {
            return;
        }
        let t = self.next_tick();
        if let Some(entry) = self.entries.get_mut(key) {
            let old = std::mem::replace(&mut entry.1, t);
            if let Some(k) = self.order.remove(&old) {
                self.order.insert(t, k);
            }
        }
    }

    /// Forgets `key`, returning its size.
    pub(crate) fn remove(&mut self, key: &[u8]) -> Option<u64> {
        let (size, t) = self.entries.remove(key)?;
        self.order.remove(&t);
        Some(size)
    }

    /// Removes and returns victims until `used` bytes fit in `capacity`.
    pub(crate) fn victims_for(&mut self, mut used: u64, capacity: u64) -> Vec<(Vec<u8>, u64)> {
        let mut out = Vec::new();
        while used > capacity {
            let Some((_, key)) = self.order.pop_first() else {
                break;
            };
            if let Some((size, _)) = self.entries.remove(&key) {
                used = used.saturating_sub(size);
                out.push((key, size));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lru_evicts_the_least_recently_read() {
        let mut e = Evictor::new(EvictorKind::Lru);
        e.insert(b"a", 10);
        e.insert(b"b", 10);
        e.insert(b"c", 10);
        e.touch(b"a");
        let v = e.victims_for(35, 20);
        assert_eq!(v, vec![(b"b".to_vec(), 10), (b"c".to_vec(), 10)]);
        assert_eq!(e.remove(b"a"), Some(10));
        assert_eq!(e.remove(b"a"), None);
    }

    #[test]
    fn fifo_ignores_reads() {
        let mut e = Evictor::new(EvictorKind::Fifo);
        e.insert(b"a", 10);
        e.insert(b"b", 10);
        e.touch(b"a");
        assert_eq!(e.victims_for(20, 10), vec![(b"a".to_vec(), 10)]);
    }
}
