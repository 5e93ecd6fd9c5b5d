//! The sampled access trace behind recommendations and online tuning: spatial sampling by
//! key hash (SHARDS): a fixed subset of keys is recorded, every access to each, so a
//! simulation over the sample at capacity `C x rate` estimates the hit ratio at `C`.

use parking_lot::Mutex;
use std::collections::VecDeque;

/// One sampled access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sample {
    /// The key's hash.
    pub(crate) key: u64,
    /// Index of the tier that answered, `None` when the loader ran (or nothing had it).
    pub(crate) served_by: Option<u8>,
}

/// A bounded ring of sampled accesses (the most recent ones).
#[derive(Debug)]
pub(crate) struct AccessTrace {
    threshold: u64,
    rate: f64,
    capacity: usize,
    ring: Mutex<VecDeque<Sample>>,
}

impl AccessTrace {
    pub(crate) fn new(rate: f64, capacity: usize) -> Self {
        let rate = rate.clamp(f64::MIN_POSITIVE, 1.0);
        let threshold = if rate >= 1.0 {
            u64::MAX
        } else {
            (rate * u64::MAX as f64) as u64
        };
        AccessTrace {
            threshold,
            rate,
            capacity,
            ring: Mutex::new(VecDeque::with_capacity(capacity.min(1 << 16))),
        }
    }

    /// The sampling rate.
    pub(crate) fn rate(&self) -> f64 {
        self.rate
    }

    /// Records an access when the key is in the sample (one comparison otherwise).
    pub(crate) fn record(&self, key_hash: u64, served_by: Option<usize>) {
        // Re-mix so the sample does not correlate with the memory tier's shard selection.
        if crate::hash::mix64(key_hash) > self.threshold {
            return;
        }
        let sample = Sample {
            key: key_hash,
            served_by: served_by.map(|i| i.min(254) as u8),
        };
        let mut ring = self.ring.lock();
        if ring.len() >= self.capacity {
            ring.pop_front();
        }
        ring.push_back(sample);
    }

    /// The recorded samples, oldest first.
    pub(crate) fn samples(&self) -> Vec<Sample> {
        self.ring.lock().iter().copied().collect()
    }

    /// Forgets every sample (after the workload or the configuration changed).
    pub(crate) fn clear(&self) {
        self.ring.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_about_the_rate_of_keys_and_all_their_accesses() {
        let t = AccessTrace::new(0.1, 1_000_000);
        for round in 0..3 {
            for k in 0..10_000u64 {
                t.record(crate::hash::mix64(k ^ 0xABCD), (round > 0).then_some(0));
            }
        }
        let s = t.samples();
        let keys: std::collections::HashSet<u64> = s.iter().map(|x| x.key).collect();
        assert!((800..1200).contains(&keys.len()), "{}", keys.len());
        assert_eq!(s.len(), keys.len() * 3, "every access of a sampled key");
    }

    #[test]
    fn keeps_the_most_recent() {
        let t = AccessTrace::new(1.0, 3);
        for k in 0..5 {
            t.record(k, None);
        }
        let keys: Vec<u64> = t.samples().iter().map(|s| s.key).collect();
        assert_eq!(keys, vec![2, 3, 4]);
    }
}
