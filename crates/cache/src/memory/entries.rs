//! A shard's entries, kept at their policy handles and found through a table of handles.
//!
//! The entry of a key lives at the index the policy gave its node ([`Policy::slot`]), and
//! a hash table of 4-byte handles finds it by key hash. Three things follow that a map of
//! entries keyed by hash does not give:
//! - an admission writes its entry where the policy put its node, usually the place an
//!   eviction has just freed, whose line is still in cache, instead of a random bucket;
//! - an eviction that reports the freed handle ([`Policy::take_freed`]) removes the
//!   table's 4-byte record by comparing handles, without reading the evicted entry;
//! - the table itself is small (5 bytes a slot with its control byte), so its probes
//!   mostly stay in a core's cache.
//!
//! [`Policy::slot`]: crate::policy::Policy::slot
//! [`Policy::take_freed`]: crate::policy::Policy::take_freed

use hashbrown::HashTable;

/// A cached entry.
pub(super) struct Entry<K, V> {
    /// The key's hash: what the policy knows the key by.
    pub(super) h: u64,
    pub(super) key: K,
    pub(super) value: V,
}

/// The entries by policy handle, and the table that finds them by hash.
pub(super) struct Entries<K, V> {
    index: HashTable<u32>,
    slots: Vec<Option<Entry<K, V>>>,
}

impl<K, V> Default for Entries<K, V> {
    fn default() -> Self {
        Entries {
            index: HashTable::new(),
            slots: Vec::new(),
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

impl<K, V> Entries<K, V> {
    /// The handle and entry of hash `h`, if cached.
    #[inline]
    pub(super) fn find(&self, h: u64) -> Option<(u32, &Entry<K, V>)> {
        let slots = &self.slots;
        let at = |i: u32| slots.get(i as usize).and_then(Option::as_ref);
        let &slot = self
            .index
            .find(spread(h), |&i| at(i).is_some_and(|e| e.h == h))?;
        at(slot).map(|e| (slot, e))
    }

    /// The entry at `slot`, mutably.
    #[inline]
    pub(super) fn get_mut(&mut self, slot: u32) -> Option<&mut Entry<K, V>> {
        self.slots.get_mut(slot as usize).and_then(Option::as_mut)
    }

    /// Stores `entry` at `slot`, which must be free, and records it under its hash, which
    /// must not be cached. (Debug builds check both, as far as an evicted entry left in
    /// place allows: see [`evict_at`](Self::evict_at).)
    pub(super) fn insert(&mut self, slot: u32, entry: Entry<K, V>) {
        let i = slot as usize;
        if i >= self.slots.len() {
            self.slots.resize_with(i + 1, || None);
        }
        debug_assert!(
            !std::mem::needs_drop::<Entry<K, V>>() || self.slots[i].is_none(),
            "slot {slot} is taken"
        );
        let h = entry.h;
        self.slots[i] = Some(entry);
        let slots = &self.slots;
        let rehash = |&j: &u32| spread(slots[j as usize].as_ref().map_or(0, |e| e.h));
        self.index.insert_unique(spread(h), slot, rehash);
    }

    /// Drops the entry of hash `h` at `slot` (a handle the policy evicted), finding its
    /// record by handle; returns whether there was one.
    ///
    /// An entry whose key and value have nothing to drop is left where it is, unreachable
    /// (only the table leads to a slot, and a new entry overwrites it): the evicted entry,
    /// which has usually left the processor's caches since its key entered the cache, is
    /// then not read at all. That read was a third of the time an eviction took in an
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
        self.slots.get_mut(slot as usize).and_then(Option::take)
    }

    /// Removes the entry of hash `h`; returns its handle and the entry.
    pub(super) fn remove(&mut self, h: u64) -> Option<(u32, Entry<K, V>)> {
        let (slot, _) = self.find(h)?;
        self.remove_at(h, slot).map(|e| (slot, e))
    }

    /// Takes every entry out, leaving none (in no particular order).
    pub(super) fn take_all(&mut self) -> Vec<(u32, Entry<K, V>)> {
        // Through the table: a slot it does not lead to may hold an evicted entry.
        let live: Vec<u32> = self.index.drain().collect();
        let mut slots = std::mem::take(&mut self.slots);
        live.into_iter()
            .filter_map(|i| {
                let e = slots.get_mut(i as usize).and_then(Option::take)?;
                Some((i, e))
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

    fn entry(h: u64) -> Entry<u64, u64> {
        Entry {
            h,
            key: h,
            value: h * 10,
        }
    }

    #[test]
    fn entries_are_found_by_hash_and_removed_by_handle() {
        let mut e = Entries::default();
        // Hashes whose top bits are all zero (a poor user hasher) still spread.
        for (slot, h) in (0..1000u32).zip(0..1000u64) {
            e.insert(slot, entry(h));
        }
        assert_eq!(e.len(), 1000);
        assert_eq!(e.find(7).map(|(s, x)| (s, x.value)), Some((7, 70)));
        assert!(e.find(5000).is_none());
        // By handle: a wrong handle removes nothing.
        assert!(e.remove_at(7, 8).is_none());
        assert_eq!(e.remove_at(7, 7).map(|x| x.key), Some(7));
        assert!(e.find(7).is_none() && e.get_mut(7).is_none());
        // The freed slot takes another key.
        e.insert(7, entry(4242));
        // Evicted in place (nothing to drop): unreachable, then overwritten.
        assert!(!e.evict_at(9, 10) && e.evict_at(9, 9));
        assert!(e.find(9).is_none());
        e.insert(9, entry(4343));
        assert_eq!(e.find(4343).map(|(s, x)| (s, x.value)), Some((9, 43430)));
        assert_eq!(e.find(4242).map(|(s, _)| s), Some(7));
        assert_eq!(e.remove(8).map(|(s, x)| (s, x.key)), Some((8, 8)));
        assert_eq!(e.len(), 999);
        // One more evicted in place: not taken out with the rest.
        assert!(e.evict_at(11, 11));
        let all = e.take_all();
        assert_eq!(all.len(), 998);
        assert!(
            all.iter()
                .all(|(s, x)| x.h != 11 && (x.h == u64::from(*s) || x.h > 4000))
        );
        assert_eq!(e.len(), 0);
        assert!(e.find(4242).is_none());
    }

    #[test]
    fn an_evicted_entry_with_something_to_drop_is_dropped_at_once() {
        let value = std::rc::Rc::new(());
        let mut e = Entries::default();
        for slot in 0..3u32 {
            let h = u64::from(slot);
            let value = std::rc::Rc::clone(&value);
            e.insert(slot, Entry { h, key: h, value });
        }
        assert_eq!(std::rc::Rc::strong_count(&value), 4);
        assert!(e.evict_at(1, 1));
        assert_eq!(std::rc::Rc::strong_count(&value), 3);
        assert!(e.get_mut(1).is_none());
        let all = e.take_all();
        assert_eq!(all.len(), 2);
    }
}
