//! A shard's entries, kept at their policy handles and found through a table of handles.
//!
//! The entry of a key lives at the index the policy gave its node ([`Policy::slot`]), and
//! a hash table of 4-byte handles finds it by key hash. Four things follow that a map of
//! entries keyed by hash does not give:
//! - an admission writes its entry where the policy put its node, usually the place an
//!   eviction has just freed, whose line is still in cache, instead of a random bucket;
//! - an eviction that reports the freed handle ([`Policy::take_freed`]) removes the
//!   table's 4-byte record by comparing handles, without reading the evicted entry;
//! - the table itself is small (5 bytes a slot with its control byte), so its probes
//!   mostly stay in a core's cache;
//! - an entry is its key and value alone (16 bytes for `u64` keys and values, four to a
//!   cache line): the key's hash is computed again on the rare paths that need it (a
//!   probe that meets another key, the table's growth, removals by hash), and whether a
//!   slot holds an entry is the table's record of it. The hits read entries more than
//!   anything else, and their size decides how many stay in the caches: the suite's Zipf
//!   loops ran 11-22 % longer with entries of 72 bytes than of 32 (the key's hash and an
//!   `Option`'s tag beside key and value), the layout before this one.
//!
//! [`Policy::slot`]: crate::policy::Policy::slot
//! [`Policy::take_freed`]: crate::policy::Policy::take_freed

use std::mem::MaybeUninit;

use hashbrown::HashTable;

/// A cached entry.
pub(super) struct Entry<K, V> {
    pub(super) key: K,
    pub(super) value: V,
}

/// The entries by policy handle, and the table that finds them by hash.
///
/// Invariant: a slot the table has a record of holds an initialized entry. A slot without
/// one holds none, except that an evicted entry with nothing to drop may be left in place
/// (see [`evict_at`](Self::evict_at)): only a record leads to a slot, so it is never read.
pub(super) struct Entries<K, V> {
    index: HashTable<u32>,
    slots: Vec<MaybeUninit<Entry<K, V>>>,
}

impl<K, V> Default for Entries<K, V> {
    fn default() -> Self {
        Entries {
            index: HashTable::new(),
            slots: Vec::new(),
        }
    }
}

impl<K, V> Drop for Entries<K, V> {
    fn drop(&mut self) {
        if std::mem::needs_drop::<Entry<K, V>>() {
            for &i in self.index.iter() {
                if let Some(e) = self.slots.get_mut(i as usize) {
                    // SAFETY: the table has a record of slot `i`: it holds an entry (the
                    // type's invariant), dropped once, here, with the table's records.
                    unsafe { e.assume_init_drop() }
                }
            }
        }
    }
}

/// The table's hash of a key hash: a multiply folded (the table takes its bucket from the
/// low bits and a tag from the top ones, which a user's hasher may leave poor).
#[inline]
fn spread(h: u64) -> u64 {
    let m = u128::from(h).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (m as u64) ^ ((m >> 64) as u64)
}

/// What [`Entries::find`] found under a hash.
pub(super) enum Found<'a, K, V> {
    /// The entry of the key looked for, at its slot.
    Key(u32, &'a Entry<K, V>),
    /// The entry of another key with the same hash (for the policy, the same key).
    OtherKey(u32),
}

impl<K, V> Entries<K, V> {
    /// The entry at a slot the table has a record of.
    ///
    /// # Safety
    ///
    /// `i` must be a record of the table (it then holds an entry: the type's invariant).
    #[inline]
    unsafe fn at(&self, i: u32) -> Option<&Entry<K, V>> {
        // SAFETY: the caller's promise.
        self.slots
            .get(i as usize)
            .map(|e| unsafe { e.assume_init_ref() })
    }

    /// The entry of `key`, whose hash is `h`, or the slot of another key with that hash
    /// (`hash` hashes a key: called only when a probe meets another key).
    #[inline]
    pub(super) fn find(&self, h: u64, key: &K, hash: impl Fn(&K) -> u64) -> Option<Found<'_, K, V>>
    where
        K: Eq,
    {
        let mut same_key = false;
        let &slot = self.index.find(spread(h), |&i| {
            // SAFETY: `i` is one of the table's records.
            let Some(e) = (unsafe { self.at(i) }) else {
                return false;
            };
            same_key = e.key == *key;
            same_key || hash(&e.key) == h
        })?;
        // SAFETY: `slot` is one of the table's records.
        match unsafe { self.at(slot) } {
            Some(e) if same_key => Some(Found::Key(slot, e)),
            _ => Some(Found::OtherKey(slot)),
        }
    }

    /// The slot of hash `h` (any key with that hash), if cached.
    pub(super) fn find_hash(&self, h: u64, hash: impl Fn(&K) -> u64) -> Option<u32> {
        self.index
            .find(spread(h), |&i| {
                // SAFETY: `i` is one of the table's records.
                unsafe { self.at(i) }.is_some_and(|e| hash(&e.key) == h)
            })
            .copied()
    }

    /// The entry at `slot`, the handle of hash `h`, mutably (`None` unless the table has
    /// that record).
    #[inline]
    pub(super) fn get_at(&mut self, h: u64, slot: u32) -> Option<&mut Entry<K, V>> {
        self.index.find(spread(h), |&i| i == slot)?;
        // SAFETY: the table has a record of `slot`, so it holds an entry.
        self.slots
            .get_mut(slot as usize)
            .map(|e| unsafe { e.assume_init_mut() })
    }

    /// Stores `entry`, whose key's hash is `h`, at `slot`, which must be free (no record),
    /// and records it under `h`, which must not be cached (`hash` rehashes the keys if the
    /// table grows).
    pub(super) fn insert(
        &mut self,
        slot: u32,
        h: u64,
        entry: Entry<K, V>,
        hash: impl Fn(&K) -> u64,
    ) {
        let i = slot as usize;
        if i >= self.slots.len() {
            self.slots.resize_with(i + 1, MaybeUninit::uninit);
        }
        debug_assert!(
            self.index.find(spread(h), |&j| j == slot).is_none(),
            "slot {slot} is taken"
        );
        // (An evicted entry left here has nothing to drop: overwritten.)
        self.slots[i] = MaybeUninit::new(entry);
        let slots = &self.slots;
        let rehash = |&j: &u32| {
            // SAFETY: `j` is one of the table's records (the new one's entry is stored).
            let e = slots
                .get(j as usize)
                .map(|e| unsafe { e.assume_init_ref() });
            spread(e.map_or(0, |e| hash(&e.key)))
        };
        self.index.insert_unique(spread(h), slot, rehash);
    }

    /// Drops the entry of hash `h` at `slot` (a handle the policy evicted), finding its
    /// record by handle; returns whether there was one.
    ///
    /// An entry whose key and value have nothing to drop is left where it is, unreachable
    /// (only the table leads to a slot, and a new entry overwrites it): the evicted entry,
    /// which has usually left the processor's caches since its key entered the cache, is
    /// then not read at all. That read took about half of the entries' eviction time on an
    /// all-miss loop of `u64` keys and values.
    #[inline]
    pub(super) fn evict_at(&mut self, h: u64, slot: u32) -> bool {
        if std::mem::needs_drop::<Entry<K, V>>() {
            return self.remove_at(h, slot).is_some();
        }
        match self.index.find_entry(spread(h), |&i| i == slot) {
            Ok(record) => {
                record.remove();
                true
            }
            Err(_) => false,
        }
    }

    /// Removes the entry of hash `h` at `slot` (a handle the policy freed), finding its
    /// record by handle: the entry itself is not read before it is taken.
    #[inline]
    pub(super) fn remove_at(&mut self, h: u64, slot: u32) -> Option<Entry<K, V>> {
        let record = self.index.find_entry(spread(h), |&i| i == slot).ok()?;
        record.remove();
        let e = self.slots.get_mut(slot as usize)?;
        // SAFETY: the table had a record of `slot`, so it holds an entry; the record is
        // gone, so nothing reads or drops it again.
        Some(unsafe { e.assume_init_read() })
    }

    /// Removes the entry of hash `h` (any key with that hash); returns its handle and the
    /// entry.
    pub(super) fn remove(
        &mut self,
        h: u64,
        hash: impl Fn(&K) -> u64,
    ) -> Option<(u32, Entry<K, V>)> {
        let slot = self.find_hash(h, hash)?;
        self.remove_at(h, slot).map(|e| (slot, e))
    }

    /// Takes every entry out, with its handle and its key's hash, leaving none (in no
    /// particular order).
    pub(super) fn take_all(&mut self, hash: impl Fn(&K) -> u64) -> Vec<(u32, u64, Entry<K, V>)> {
        // Through the table: a slot it does not lead to may hold an evicted entry.
        let live: Vec<u32> = self.index.drain().collect();
        let mut slots = std::mem::take(&mut self.slots);
        live.into_iter()
            .filter_map(|i| {
                let e = slots.get_mut(i as usize)?;
                // SAFETY: the table had a record of `i`, so it holds an entry; the record
                // is gone, and the vector drops no element, so it is read once.
                let e = unsafe { e.assume_init_read() };
                Some((i, hash(&e.key), e))
            })
            .collect()
    }

    /// Number of entries.
    pub(super) fn len(&self) -> usize {
        self.index.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tests' key hash: a bijection, so that keys and hashes map one to one, except
    /// that keys above `COLLIDE` share the hash of `key - COLLIDE`.
    const COLLIDE: u64 = 1 << 40;
    fn hash(k: &u64) -> u64 {
        (k % COLLIDE).wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }

    fn filled(n: u64) -> Entries<u64, u64> {
        let mut e = Entries::default();
        for (slot, k) in (0..n as u32).zip(0..n) {
            e.insert(
                slot,
                hash(&k),
                Entry {
                    key: k,
                    value: k * 10,
                },
                hash,
            );
        }
        e
    }

    fn value(f: Option<Found<'_, u64, u64>>) -> Option<(u32, u64)> {
        match f? {
            Found::Key(slot, e) => Some((slot, e.value)),
            Found::OtherKey(_) => None,
        }
    }

    #[test]
    fn entries_are_found_by_key_and_hash_and_removed_by_handle() {
        // From empty to 1000 entries: the table grows, rehashing by the keys.
        let mut e = filled(1000);
        assert_eq!(e.len(), 1000);
        for k in 0..1000u64 {
            assert_eq!(value(e.find(hash(&k), &k, hash)), Some((k as u32, k * 10)));
        }
        assert!(e.find(hash(&5000), &5000, hash).is_none());
        // Another key with a cached hash: the slot of that hash.
        let other = 7 + COLLIDE;
        assert!(matches!(
            e.find(hash(&7), &other, hash),
            Some(Found::OtherKey(7))
        ));
        assert_eq!(e.find_hash(hash(&7), hash), Some(7));
        // By handle: a wrong handle removes nothing.
        assert!(e.remove_at(hash(&7), 8).is_none());
        assert_eq!(e.remove_at(hash(&7), 7).map(|x| x.key), Some(7));
        assert!(e.find(hash(&7), &7, hash).is_none() && e.get_at(hash(&7), 7).is_none());
        // The freed slot takes another key, one whose hash another key shares.
        e.insert(
            7,
            hash(&other),
            Entry {
                key: other,
                value: 1,
            },
            hash,
        );
        assert_eq!(value(e.find(hash(&7), &other, hash)), Some((7, 1)));
        assert!(matches!(
            e.find(hash(&7), &7, hash),
            Some(Found::OtherKey(7))
        ));
        if let Some(x) = e.get_at(hash(&other), 7) {
            x.value = 2;
        }
        assert_eq!(value(e.find(hash(&7), &other, hash)), Some((7, 2)));
        // Evicted in place (nothing to drop): unreachable.
        assert!(!e.evict_at(hash(&9), 10) && e.evict_at(hash(&9), 9));
        assert!(e.find(hash(&9), &9, hash).is_none());
        assert_eq!(
            e.remove(hash(&8), hash).map(|(s, x)| (s, x.key)),
            Some((8, 8))
        );
        assert_eq!(e.len(), 998);
        let all = e.take_all(hash);
        assert_eq!(all.len(), 998);
        assert!(all.iter().all(|(s, h, x)| *h == hash(&x.key)
            && x.key != 8
            && x.key != 9
            && (u64::from(*s) == x.key || x.key == other)));
        assert_eq!(e.len(), 0);
        assert!(e.find(hash(&other), &other, hash).is_none());
    }

    #[test]
    fn an_evicted_entry_with_something_to_drop_is_dropped_at_once_and_the_rest_on_drop() {
        let value = std::rc::Rc::new(());
        let mut e = Entries::default();
        for slot in 0..3u32 {
            let k = u64::from(slot);
            let value = std::rc::Rc::clone(&value);
            e.insert(slot, hash(&k), Entry { key: k, value }, hash);
        }
        assert_eq!(std::rc::Rc::strong_count(&value), 4);
        assert!(e.evict_at(hash(&1), 1));
        assert_eq!(std::rc::Rc::strong_count(&value), 3);
        assert!(e.get_at(hash(&1), 1).is_none());
        let taken = e.remove_at(hash(&2), 2);
        assert_eq!(std::rc::Rc::strong_count(&value), 3);
        drop(taken);
        drop(e);
        assert_eq!(std::rc::Rc::strong_count(&value), 1);
    }
}
