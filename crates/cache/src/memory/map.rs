//! A shard's entries by key hash: a `hashbrown` table whose buckets can be prefetched, so
//! that the map removal of the next eviction's victim finds its bucket in cache.

use hashbrown::HashTable;

use crate::hash::U64Hasher;
use std::hash::Hasher;

/// Values of type `T` keyed by a 64-bit key hash.
pub(super) struct ShardMap<T> {
    table: HashTable<(u64, T)>,
}

impl<T> Default for ShardMap<T> {
    fn default() -> Self {
        ShardMap {
            table: HashTable::new(),
        }
    }
}

/// The table's hash of a key hash: `h` comes from the cache's hasher, but may be a user's
/// own; folded once more as `U64Map` does.
#[inline]
fn fold(h: u64) -> u64 {
    let mut s = U64Hasher::default();
    s.write_u64(h);
    s.finish()
}

impl<T> ShardMap<T> {
    #[inline]
    pub(super) fn get(&self, h: u64) -> Option<&T> {
        self.table.find(fold(h), |e| e.0 == h).map(|e| &e.1)
    }

    #[inline]
    pub(super) fn get_mut(&mut self, h: u64) -> Option<&mut T> {
        self.table.find_mut(fold(h), |e| e.0 == h).map(|e| &mut e.1)
    }

    #[inline]
    pub(super) fn contains_key(&self, h: u64) -> bool {
        self.get(h).is_some()
    }

    /// Inserts `value` for `h`, which must be absent.
    #[inline]
    pub(super) fn insert_new(&mut self, h: u64, value: T) -> &mut T {
        let place = self.table.insert_unique(fold(h), (h, value), |e| fold(e.0));
        &mut place.into_mut().1
    }

    /// Inserts or replaces; returns the value replaced.
    #[cfg(test)]
    fn insert(&mut self, h: u64, value: T) -> Option<T> {
        match self.get_mut(h) {
            Some(old) => Some(std::mem::replace(old, value)),
            None => {
                self.insert_new(h, value);
                None
            }
        }
    }

    #[inline]
    pub(super) fn remove(&mut self, h: u64) -> Option<T> {
        match self.table.find_entry(fold(h), |e| e.0 == h) {
            Ok(place) => Some(place.remove().0.1),
            Err(_) => None,
        }
    }

    /// Starts loading the bucket that most likely holds `h` (the first whose tag matches
    /// it), reading only the table's control bytes.
    #[inline]
    pub(super) fn prefetch(&self, h: u64) {
        if let Some(bucket) = self.table.find(fold(h), |_| true) {
            crate::prefetch::prefetch(bucket);
        }
    }

    pub(super) fn len(&self) -> usize {
        self.table.len()
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (u64, &T)> {
        self.table.iter().map(|e| (e.0, &e.1))
    }

    pub(super) fn clear(&mut self) {
        self.table.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn follows_a_hash_map() {
        let mut model: HashMap<u64, u32> = HashMap::new();
        let mut map: ShardMap<u32> = ShardMap::default();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for i in 0..20_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Few distinct keys, so that inserts, replacements and removals all happen.
            let h = x % 512;
            match x >> 62 {
                0 | 1 => assert_eq!(map.insert(h, i), model.insert(h, i)),
                2 => assert_eq!(map.remove(h), model.remove(&h)),
                _ => {
                    map.prefetch(h);
                    assert_eq!(map.get(h), model.get(&h));
                }
            }
            assert_eq!(map.len(), model.len());
            assert_eq!(map.contains_key(h), model.contains_key(&h));
        }
        let mut got: Vec<(u64, u32)> = map.iter().map(|(h, v)| (h, *v)).collect();
        let mut want: Vec<(u64, u32)> = model.into_iter().collect();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want);
        map.clear();
        assert!(map.is_empty());
    }
}
