//! Eviction policies over `u64` keys (trace keys in the simulator, key hashes in
//! [`MemoryCache`](crate::MemoryCache)): the same code decides what both keep.
//!
//! A request is a [`Policy::lookup`] (a hit refreshes the key, a miss is remembered by
//! policies that keep history, such as W-TinyLFU's frequency sketch or ARC's ghosts) and,
//! on a miss, a [`Policy::admit`], which may decline. [`Policy::access`] does both.
//! Evicted keys are appended to a caller-owned `Vec`, so a caller that reuses it allocates
//! nothing per request.
//!
//! ```
//! use perfkit_cache::policy::{Access, PolicyKind};
//!
//! let mut lru = PolicyKind::Lru.build(2).unwrap();
//! let mut evicted = Vec::new();
//! assert_eq!(lru.access(1, 1, &mut evicted), Access::Admitted);
//! assert_eq!(lru.access(2, 1, &mut evicted), Access::Admitted);
//! assert_eq!(lru.access(1, 1, &mut evicted), Access::Hit);
//! lru.access(3, 1, &mut evicted);
//! assert_eq!(evicted, vec![2]);
//! ```

/// The [`Policy`] methods that reach a resident by its handle or its key (`set_weight`,
/// `remove`, `contains`), for a policy whose nodes are in the [`slab::Table`] at
/// `self.<path>` and that has `hit_at`, `remove_at` and `reweigh_at` for a node index:
/// with them it can [`detach`](Policy::detach_index) its key index, which the memory cache
/// keeps instead. `node_handles!(own touch_handles;
/// path)` leaves out [`Policy::touch_handles`] (a hit on each handle by `hit_at`), for a
/// policy that applies a batch of hits its own way.
macro_rules! node_handles {
    (own touch_handles; $($table:tt)+) => {
        node_handles!(@common $($table)+);
    };
    (@common $($table:tt)+) => {
        fn slot(&self, key: u64) -> Option<u32> {
            self.$($table)+.find(key)
        }

        fn touch_slot(&mut self, slot: u32, key: u64) -> bool {
            match self.$($table)+.get_at(slot, key) {
                Some(idx) => {
                    self.hit_at(idx);
                    true
                }
                None => false,
            }
        }

        fn contains_slot(&self, slot: u32, key: u64) -> bool {
            self.$($table)+.get_at(slot, key).is_some()
        }

        fn remove_slot(&mut self, slot: u32, key: u64) -> bool {
            match self.$($table)+.get_at(slot, key) {
                Some(idx) => {
                    self.remove_at(idx);
                    true
                }
                None => false,
            }
        }

        fn set_weight_slot(&mut self, slot: u32, key: u64, weight: u32, evicted: &mut Vec<u64>) {
            if let Some(idx) = self.$($table)+.get_at(slot, key) {
                self.reweigh_at(idx, weight, evicted);
            }
        }

        fn set_weight(&mut self, key: u64, weight: u32, evicted: &mut Vec<u64>) {
            if let Some(idx) = self.$($table)+.get(key) {
                self.reweigh_at(idx, weight, evicted);
            }
        }

        fn remove(&mut self, key: u64) -> bool {
            match self.$($table)+.get(key) {
                Some(idx) => {
                    self.remove_at(idx);
                    true
                }
                None => false,
            }
        }

        fn contains(&self, key: u64) -> bool {
            self.$($table)+.get(key).is_some()
        }

        fn detach_index(&mut self) -> bool {
            self.$($table)+.detach_index()
        }

        fn take_freed(&mut self, out: &mut Vec<(u64, u32)>) {
            self.$($table)+.take_freed(out);
        }
    };
    ($($table:tt)+) => {
        node_handles!(@common $($table)+);

        fn touch_handles(&mut self, handles: &[u32]) {
            for &idx in handles {
                self.hit_at(idx);
            }
        }
    };
}

mod arc;
mod lfu;
mod lru;
mod marks;
mod s3fifo;
mod shadows;
mod sieve;
pub(crate) mod sketch;
pub(crate) mod slab;
mod wtinylfu;

pub use arc::Arc;
pub use lfu::Lfu;
pub use lru::{Fifo, Lru};
pub use s3fifo::S3Fifo;
pub use sieve::Sieve;
pub use wtinylfu::{WTinyLfu, WTinyLfuConfig};

use std::fmt;
use std::str::FromStr;

/// What a request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The key was resident.
    Hit,
    /// A miss; the key is now resident.
    Admitted,
    /// A miss; the policy declined to keep the key (admission filter, or heavier than the
    /// whole cache).
    Rejected,
}

impl Access {
    /// Whether the request was a hit.
    pub fn is_hit(self) -> bool {
        self == Access::Hit
    }
}

/// An eviction policy over `u64` keys with weights. Capacity is in weight units (entries
/// when every weight is 1).
pub trait Policy: Send + fmt::Debug {
    /// Which policy this is.
    fn kind(&self) -> PolicyKind;

    /// A request for `key`: `true` on a hit (the key's recency/frequency is refreshed);
    /// on a miss the policy may remember the request (sketch, ghost lists).
    fn lookup(&mut self, key: u64) -> bool;

    /// Admits `key`, which must not be resident (after a missed [`lookup`](Self::lookup)),
    /// appending the keys evicted to make room to `evicted`. Returns whether `key` is
    /// resident afterwards (admission filters may decline, and a key heavier than the
    /// capacity is never admitted).
    fn admit(&mut self, key: u64, weight: u32, evicted: &mut Vec<u64>) -> bool;

    /// A request for `key` that the caller knows is not resident (the memory cache's own
    /// map said so): the same as a [`lookup`](Self::lookup) that misses, which policies
    /// with a key index may answer without probing it.
    fn lookup_absent(&mut self, key: u64) {
        self.lookup(key);
    }

    /// A full request: [`lookup`](Self::lookup) and, on a miss, [`admit`](Self::admit).
    fn access(&mut self, key: u64, weight: u32, evicted: &mut Vec<u64>) -> Access {
        if self.lookup(key) {
            Access::Hit
        } else if self.admit(key, weight, evicted) {
            Access::Admitted
        } else {
            Access::Rejected
        }
    }

    /// A hit recorded after the fact (a buffered read): the same as
    /// [`lookup`](Self::lookup) for a resident key, nothing for a key that has left since.
    fn touch(&mut self, key: u64) -> bool {
        self.contains(key) && self.lookup(key)
    }

    /// An opaque handle to `key`'s place in the policy, valid while it stays resident,
    /// which [`touch_slot`](Self::touch_slot) uses to skip the key lookup. `None` when
    /// the key is not resident or the policy has no such handles (the default).
    fn slot(&self, key: u64) -> Option<u32> {
        let _ = key;
        None
    }

    /// The same as [`touch`](Self::touch), given a handle from [`slot`](Self::slot)
    /// taken earlier; a stale or unknown handle falls back to looking the key up.
    fn touch_slot(&mut self, slot: u32, key: u64) -> bool {
        let _ = slot;
        self.touch(key)
    }

    /// Whether `key`, whose handle from [`slot`](Self::slot) is `slot`, is resident.
    fn contains_slot(&self, slot: u32, key: u64) -> bool {
        let _ = slot;
        self.contains(key)
    }

    /// [`remove`](Self::remove), given the key's handle.
    fn remove_slot(&mut self, slot: u32, key: u64) -> bool {
        let _ = slot;
        self.remove(key)
    }

    /// [`set_weight`](Self::set_weight), given the key's handle.
    fn set_weight_slot(&mut self, slot: u32, key: u64, weight: u32, evicted: &mut Vec<u64>) {
        let _ = slot;
        self.set_weight(key, weight, evicted);
    }

    /// Lets the caller keep the map from keys to handles: from now on it reaches
    /// residents only through the `*_slot` methods with the handle [`slot`](Self::slot)
    /// gave right after [`admit`](Self::admit), calls
    /// [`lookup_absent`](Self::lookup_absent) for misses, and never admits a resident
    /// key; the key-based [`lookup`](Self::lookup), [`touch`](Self::touch),
    /// [`contains`](Self::contains), [`remove`](Self::remove) and
    /// [`set_weight`](Self::set_weight) then see no resident, and every handle freed is
    /// logged until [`take_freed`](Self::take_freed) takes it (the caller takes them
    /// after each call, or the log grows); the log is then the record of evictions, and a
    /// policy may leave the `evicted` of its calls empty. Saves the policy's own index (a
    /// probe and a write per admission and per eviction). Only an empty policy can
    /// detach; returns whether it did (`false` by default: nothing changes).
    fn detach_index(&mut self) -> bool {
        false
    }

    /// Once detached ([`detach_index`](Self::detach_index)): appends to `out` the
    /// `(key, handle)` of every key that has left since the last call (evicted, removed or
    /// declined), so that a caller keeping its entries by handle finds them without
    /// reading them. Policies that do not detach report nothing (the default).
    fn take_freed(&mut self, out: &mut Vec<(u64, u32)>) {
        let _ = out;
    }

    /// [`touch_slot`](Self::touch_slot) for each `(slot, key)` in order: the memory
    /// cache's buffered hits. Policies may first read ahead what the updates will touch
    /// so that their cache misses overlap.
    fn touch_slots(&mut self, batch: &[(u32, u64)]) {
        for &(slot, key) in batch {
            self.touch_slot(slot, key);
        }
    }

    /// Once detached ([`detach_index`](Self::detach_index)): a hit on each handle in
    /// `handles`, in order, handles the caller holds exactly (of residents, as
    /// [`slot`](Self::slot) gave them): the memory cache's buffered hits, without their
    /// keys. A policy that detaches must take them (the crate's policies do, through the
    /// macro that gives them their handle methods; the default, for a policy that does not
    /// detach, takes nothing).
    #[doc(hidden)]
    fn touch_handles(&mut self, handles: &[u32]) {
        let _ = handles;
    }

    /// Changes the weight of a resident key (no-op when absent), evicting as needed; the
    /// key itself is evicted (and reported) when it no longer fits.
    fn set_weight(&mut self, key: u64, weight: u32, evicted: &mut Vec<u64>);

    /// Forgets a resident key (an explicit removal, not an eviction). Returns whether it
    /// was resident.
    fn remove(&mut self, key: u64) -> bool;

    /// Whether `key` is resident (does not count as a request).
    fn contains(&self, key: u64) -> bool;

    /// Number of resident keys.
    fn len(&self) -> usize;

    /// Whether no key is resident.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Total weight of the resident keys.
    fn weight(&self) -> u64;

    /// The capacity in weight units.
    fn capacity(&self) -> u64;

    /// Changes the capacity, evicting (into `evicted`) until the residents fit.
    fn set_capacity(&mut self, capacity: u64, evicted: &mut Vec<u64>);

    /// Calls `f(key, weight)` for every resident key, roughly coldest first (so that
    /// re-admitting them in this order into another policy keeps the hottest).
    fn for_each_resident(&self, f: &mut dyn FnMut(u64, u32));
}

/// The policies by name. `opt` exists for simulation only (it needs the future).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum PolicyKind {
    /// Least recently used.
    Lru,
    /// First in, first out.
    Fifo,
    /// Least frequently used (in-cache counts), ties broken by recency.
    Lfu,
    /// SIEVE (NSDI'24): FIFO with a visited bit and a moving hand.
    Sieve,
    /// S3-FIFO (SOSP'23): small FIFO, main FIFO with reinsertion, ghost keys.
    S3Fifo,
    /// ARC (FAST'03): adaptive between recency and frequency with ghost lists.
    Arc,
    /// W-TinyLFU with a hill-climbing adaptive window (perfkit's default).
    #[default]
    WTinyLfu,
    /// W-TinyLFU with a fixed 1 % window (no adaptation), for comparison.
    TinyLfuStatic,
    /// Belady's offline optimum (simulation only).
    Opt,
}

impl PolicyKind {
    /// Every policy, `opt` last.
    pub const ALL: [PolicyKind; 9] = [
        PolicyKind::Lru,
        PolicyKind::Fifo,
        PolicyKind::Lfu,
        PolicyKind::Sieve,
        PolicyKind::S3Fifo,
        PolicyKind::Arc,
        PolicyKind::WTinyLfu,
        PolicyKind::TinyLfuStatic,
        PolicyKind::Opt,
    ];

    /// The demand (online) policies: every one except `opt`.
    pub fn online() -> impl Iterator<Item = PolicyKind> {
        Self::ALL.into_iter().filter(|k| *k != PolicyKind::Opt)
    }

    /// The CLI and JSON name.
    pub fn name(self) -> &'static str {
        match self {
            PolicyKind::Lru => "lru",
            PolicyKind::Fifo => "fifo",
            PolicyKind::Lfu => "lfu",
            PolicyKind::Sieve => "sieve",
            PolicyKind::S3Fifo => "s3fifo",
            PolicyKind::Arc => "arc",
            PolicyKind::WTinyLfu => "wtinylfu",
            PolicyKind::TinyLfuStatic => "tinylfu-static",
            PolicyKind::Opt => "opt",
        }
    }

    /// Builds an online policy with `capacity` weight units. `opt` is refused (it needs
    /// the whole trace: see [`crate::sim`]).
    pub fn build(self, capacity: u64) -> Result<Box<dyn Policy>, PolicyError> {
        Ok(match self {
            PolicyKind::Lru => Box::new(Lru::new(capacity)),
            PolicyKind::Fifo => Box::new(Fifo::new(capacity)),
            PolicyKind::Lfu => Box::new(Lfu::new(capacity)),
            PolicyKind::Sieve => Box::new(Sieve::new(capacity)),
            PolicyKind::S3Fifo => Box::new(S3Fifo::new(capacity)),
            PolicyKind::Arc => Box::new(Arc::new(capacity)),
            PolicyKind::WTinyLfu | PolicyKind::TinyLfuStatic => {
                Box::new(WTinyLfu::with_config(capacity, self.wtinylfu_config()))
            }
            PolicyKind::Opt => return Err(PolicyError::OfflineOnly),
        })
    }

    /// The options of the W-TinyLFU kinds (`tinylfu-static`: the window does not adapt).
    fn wtinylfu_config(self) -> WTinyLfuConfig {
        WTinyLfuConfig {
            adaptive: self != PolicyKind::TinyLfuStatic,
            ..WTinyLfuConfig::default()
        }
    }

    /// The policies of a sharded cache, one per entry of `capacities`. One shard is
    /// [`build`](Self::build)'s policy, so its hits are the simulator's. Several shards of
    /// the adaptive W-TinyLFU share one set of shadow caches, sized and sampled for the sum
    /// of the capacities (see `shadows.rs`).
    pub(crate) fn build_shards(
        self,
        capacities: &[u64],
    ) -> Result<Vec<Box<dyn Policy>>, PolicyError> {
        if self != PolicyKind::WTinyLfu || capacities.len() < 2 {
            return capacities.iter().map(|&c| self.build(c)).collect();
        }
        let cfg = self.wtinylfu_config();
        let shared = shadows::SharedShadows::new(capacities.iter().sum(), &cfg);
        Ok(capacities
            .iter()
            .map(|&c| {
                Box::new(WTinyLfu::with_shared_shadows(c, cfg, shared.clone())) as Box<dyn Policy>
            })
            .collect())
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for PolicyKind {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Self, PolicyError> {
        let lower = s.trim().to_ascii_lowercase();
        let alias = match lower.as_str() {
            "w-tinylfu" | "tinylfu" | "adaptive" | "default" => "wtinylfu",
            "s3-fifo" => "s3fifo",
            "belady" => "opt",
            other => other,
        };
        Self::ALL
            .into_iter()
            .find(|k| k.name() == alias)
            .ok_or_else(|| PolicyError::UnknownPolicy(s.to_owned()))
    }
}

/// Errors naming or building a policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The name is not a policy.
    #[error(
        "unknown policy {0:?}; expected one of lru, fifo, lfu, sieve, s3fifo, arc, wtinylfu, tinylfu-static, opt"
    )]
    UnknownPolicy(String),
    /// `opt` needs the whole trace and exists only in the simulator.
    #[error("policy opt (Belady) needs the future and exists only in the simulator")]
    OfflineOnly,
}
