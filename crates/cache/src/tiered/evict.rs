//! The disk tier's eviction index: the crate's eviction [`Policy`] (the same code as the
//! memory tier and the simulator) over hashes of the stored keys, weighted by bytes.

use crate::policy::{Policy, PolicyError, PolicyKind};
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hasher};

fn hash_key(key: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    h.write(key);
    h.finish()
}

/// Stored keys, their sizes, and the policy deciding what to evict.
#[derive(Debug)]
pub(crate) struct Evictor {
    policy: Box<dyn Policy>,
    keys: HashMap<u64, (Vec<u8>, u64)>,
    evicted: Vec<u64>,
}

/// What admitting a key did.
#[derive(Debug, Default)]
pub(crate) struct Admission {
    /// Whether the key is stored afterwards.
    pub(crate) admitted: bool,
    /// Keys (and sizes) evicted to make room, to delete from the store.
    pub(crate) victims: Vec<(Vec<u8>, u64)>,
    /// The size previously stored under the key (0 when new).
    pub(crate) replaced: u64,
}

impl Evictor {
    pub(crate) fn new(kind: PolicyKind, capacity_bytes: u64) -> Result<Self, PolicyError> {
        Ok(Evictor {
            policy: kind.build(capacity_bytes)?,
            keys: HashMap::new(),
            evicted: Vec::new(),
        })
    }

    /// A read of `key` (hit or miss), so the policy sees the request stream.
    pub(crate) fn lookup(&mut self, key: &[u8]) {
        self.policy.lookup(hash_key(key));
    }

    /// Stores `key` with `size` bytes if the policy admits it.
    pub(crate) fn admit(&mut self, key: &[u8], size: u64) -> Admission {
        let h = hash_key(key);
        let weight = u32::try_from(size).unwrap_or(u32::MAX);
        self.evicted.clear();
        let mut out = Admission::default();
        match self.keys.get(&h) {
            Some((k, old)) if k.as_slice() == key => {
                out.replaced = *old;
                self.policy.set_weight(h, weight, &mut self.evicted);
                out.admitted = self.policy.contains(h);
            }
            other => {
                if let Some((_, old)) = other {
                    // A different key with the same hash: it gives way.
                    let old = *old;
                    self.policy.remove(h);
                    if let Some((k, _)) = self.keys.remove(&h) {
                        out.victims.push((k, old));
                    }
                }
                out.admitted = self.policy.admit(h, weight, &mut self.evicted);
            }
        }
        for victim in &self.evicted {
            if *victim == h {
                continue;
            }
            if let Some(entry) = self.keys.remove(victim) {
                out.victims.push(entry);
            }
        }
        if out.admitted {
            self.keys.insert(h, (key.to_vec(), size));
        } else if let Some(entry) = self.keys.remove(&h) {
            // Re-weighted out of the cache.
            out.victims.push(entry);
            out.replaced = 0;
        }
        out
    }

    /// Forgets `key`, returning its size.
    pub(crate) fn remove(&mut self, key: &[u8]) -> Option<u64> {
        let h = hash_key(key);
        match self.keys.get(&h) {
            Some((k, _)) if k.as_slice() == key => {
                self.policy.remove(h);
                self.keys.remove(&h).map(|(_, size)| size)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lru_by_bytes_evicts_the_least_recently_read() {
        let mut e = Evictor::new(PolicyKind::Lru, 30).unwrap();
        assert!(e.admit(b"a", 10).admitted);
        assert!(e.admit(b"b", 10).admitted);
        assert!(e.admit(b"c", 10).admitted);
        e.lookup(b"a");
        let adm = e.admit(b"d", 20);
        assert!(adm.admitted);
        let mut victims: Vec<Vec<u8>> = adm.victims.into_iter().map(|(k, _)| k).collect();
        victims.sort();
        assert_eq!(victims, vec![b"b".to_vec(), b"c".to_vec()]);
        assert_eq!(e.remove(b"a"), Some(10));
        assert_eq!(e.remove(b"a"), None);
    }

    #[test]
    fn rewriting_a_key_reports_its_old_size() {
        let mut e = Evictor::new(PolicyKind::Lru, 100).unwrap();
        e.admit(b"a", 10);
        let adm = e.admit(b"a", 30);
        assert!(adm.admitted);
        assert_eq!(adm.replaced, 10);
        assert!(adm.victims.is_empty());
        assert_eq!(e.remove(b"a"), Some(30));
    }

    #[test]
    fn a_key_larger_than_the_capacity_is_not_admitted() {
        let mut e = Evictor::new(PolicyKind::Lru, 10).unwrap();
        assert!(!e.admit(b"big", 11).admitted);
        assert_eq!(e.remove(b"big"), None);
    }
}
