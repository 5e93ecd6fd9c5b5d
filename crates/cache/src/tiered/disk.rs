//! The disk tier: an embedded, crash-safe store (redb: a pure-Rust B-tree with atomic,
//! copy-on-write transactions, so a crash leaves the last committed state) holding
//! checksummed records under a byte capacity.
//!
//! - Every value is a [`codec`](super::codec) record with a CRC-32; a record that fails its
//!   check is never returned: it is removed and counted in [`TierUsage::corrupt`].
//! - Capacity is in bytes (key plus record); inserting past it evicts entries in the order of
//!   the tier's eviction policy (the same policy code as the memory tier's, keyed by the
//!   key's hash).
//! - Recovery: opening a file left by a crashed process lets redb roll back to the last
//!   committed transaction, then every record is verified; corrupt and expired ones are
//!   dropped, and the index and byte count are rebuilt from what remains.
//! - redb is synchronous: the async [`Tier`] methods run it on tokio's blocking pool, so a
//!   disk tier never blocks the runtime's workers. The `*_sync` methods are for code
//!   without a runtime.

use super::codec::{self, CodecError};
use super::evict::Evictor;
use super::tier::{Hit, Tier, TierError, TierFuture, TierKind, TierUsage};
use crate::policy::PolicyKind;
use parking_lot::Mutex;
use perfkit_core::{SharedClock, SystemClock};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("perfkit_cache_entries_v1");

/// When the disk tier makes its writes durable (survive a power loss, not just a crash of
/// the process: every committed write survives the process being killed either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DiskDurability {
    /// fsync every write (slowest, nothing committed is ever lost).
    Immediate,
    /// fsync every N writes; at most N-1 writes are lost on power loss (never corrupted).
    #[default]
    Periodic,
}

/// Options of a [`DiskTier`].
#[derive(Debug, Clone)]
pub struct DiskTierConfig {
    /// The database file.
    pub path: PathBuf,
    /// Byte capacity (keys plus records).
    pub capacity_bytes: u64,
    /// The tier's name in metrics.
    pub name: String,
    /// Durability of writes.
    pub durability: DiskDurability,
    /// With [`DiskDurability::Periodic`], fsync every this many writes.
    pub sync_every: u32,
    /// The eviction policy (weights are bytes).
    pub policy: PolicyKind,
    /// Read on the calling task instead of tokio's blocking pool. A read from redb's cache
    /// or the page cache takes about a microsecond, the hand-off to the blocking pool tens
    /// of microseconds; but a read from a cold disk blocks the runtime's worker for the
    /// disk's latency. Off by default; turn it on when the file fits in memory. Writes and
    /// the removal of expired or corrupt entries always go to the blocking pool.
    pub inline_reads: bool,
}

impl DiskTierConfig {
    /// A config for the file at `path` with `capacity_bytes`.
    pub fn new(path: impl AsRef<Path>, capacity_bytes: u64) -> Self {
        DiskTierConfig {
            path: path.as_ref().to_path_buf(),
            capacity_bytes,
            name: "disk".to_owned(),
            durability: DiskDurability::default(),
            sync_every: 64,
            policy: PolicyKind::Lru,
            inline_reads: false,
        }
    }
}

/// What opening the file found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Entries kept.
    pub kept: u64,
    /// Corrupt entries dropped.
    pub corrupt: u64,
    /// Expired entries dropped.
    pub expired: u64,
}

/// The disk tier. Cheap to clone.
#[derive(Clone)]
pub struct DiskTier {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for DiskTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskTier")
            .field("path", &self.inner.config.path)
            .field("usage", &self.usage_now())
            .finish()
    }
}

struct Inner {
    db: Database,
    config: DiskTierConfig,
    clock: SharedClock,
    /// Serializes writers (redb has one writer at a time; this keeps the index consistent).
    writer: Mutex<u32>,
    index: Mutex<Evictor>,
    bytes: AtomicU64,
    entries: AtomicU64,
    evictions: AtomicU64,
    corrupt: AtomicU64,
    expired: AtomicU64,
    recovery: Recovery,
}

fn disk_err(e: impl Display) -> TierError {
    TierError::Disk(e.to_string())
}

impl DiskTier {
    /// Opens (or creates) the tier's file, recovering from a crash if needed.
    pub fn open(config: DiskTierConfig) -> Result<Self, TierError> {
        Self::open_with_clock(config, SystemClock::shared())
    }

    /// Like [`open`](Self::open), with a clock for expiry (tests use a manual clock).
    pub fn open_with_clock(config: DiskTierConfig, clock: SharedClock) -> Result<Self, TierError> {
        if let Some(dir) = config.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(disk_err)?;
        }
        let mut index = Evictor::new(config.policy, config.capacity_bytes)
            .map_err(|e| TierError::Disk(e.to_string()))?;
        let db = Database::create(&config.path).map_err(disk_err)?;
        let now = clock.wall();
        let mut recovery = Recovery::default();
        let mut bytes = 0u64;
        let txn = db.begin_write().map_err(disk_err)?;
        {
            let mut table = txn.open_table(TABLE).map_err(disk_err)?;
            let mut drop_keys = Vec::new();
            for item in table.iter().map_err(disk_err)? {
                let (k, v) = item.map_err(disk_err)?;
                let (key, value) = (k.value(), v.value());
                match codec::open_record(value) {
                    Ok(rec) if rec.expired_at(now) => {
                        recovery.expired += 1;
                        drop_keys.push(key.to_vec());
                    }
                    Ok(_) => {
                        let size = (key.len() + value.len()) as u64;
                        let admission = index.admit(key, size);
                        for (victim, victim_size) in admission.victims {
                            bytes -= victim_size;
                            recovery.kept -= 1;
                            drop_keys.push(victim);
                        }
                        if admission.admitted {
                            bytes += size;
                            recovery.kept += 1;
                        } else {
                            drop_keys.push(key.to_vec());
                        }
                    }
                    Err(_) => {
                        recovery.corrupt += 1;
                        drop_keys.push(key.to_vec());
                    }
                }
            }
            for key in &drop_keys {
                table.remove(key.as_slice()).map_err(disk_err)?;
            }
        }
        txn.commit().map_err(disk_err)?;
        let tier = DiskTier {
            inner: Arc::new(Inner {
                db,
                clock,
                writer: Mutex::new(0),
                bytes: AtomicU64::new(bytes),
                entries: AtomicU64::new(recovery.kept),
                evictions: AtomicU64::new(0),
                corrupt: AtomicU64::new(recovery.corrupt),
                expired: AtomicU64::new(recovery.expired),
                index: Mutex::new(index),
                recovery,
                config,
            }),
        };
        Ok(tier)
    }

    /// What opening the file found.
    pub fn recovery(&self) -> Recovery {
        self.inner.recovery
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.config.path
    }

    fn usage_now(&self) -> TierUsage {
        let i = &self.inner;
        TierUsage {
            entries: i.entries.load(Ordering::Relaxed),
            bytes: i.bytes.load(Ordering::Relaxed),
            capacity: i.config.capacity_bytes,
            evictions: i.evictions.load(Ordering::Relaxed),
            corrupt: i.corrupt.load(Ordering::Relaxed),
            expired: i.expired.load(Ordering::Relaxed),
        }
    }

    /// Reads the verified record stored under an encoded key. Corrupt records are removed
    /// and reported as [`TierError::Corrupt`]; expired ones are removed and read as absent.
    pub fn get_raw(&self, key: &[u8]) -> Result<Option<Vec<u8>>, TierError> {
        self.read_raw(key, false)
    }

    /// Removes `key` now, or (`background`) on tokio's blocking pool.
    fn discard(&self, key: &[u8], background: bool) -> Result<(), TierError> {
        if background && tokio::runtime::Handle::try_current().is_ok() {
            let (this, key) = (self.clone(), key.to_vec());
            tokio::task::spawn_blocking(move || this.remove_raw(&key));
            Ok(())
        } else {
            self.remove_raw(key)
        }
    }

    fn read_raw(&self, key: &[u8], background: bool) -> Result<Option<Vec<u8>>, TierError> {
        let bytes = {
            let txn = self.inner.db.begin_read().map_err(disk_err)?;
            let table = match txn.open_table(TABLE) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(e) => return Err(disk_err(e)),
            };
            let found = table
                .get(key)
                .map_err(disk_err)?
                .map(|g| g.value().to_vec());
            self.inner.index.lock().lookup(key);
            match found {
                Some(bytes) => bytes,
                None => return Ok(None),
            }
        };
        match codec::open_record(&bytes) {
            Ok(rec) if rec.expired_at(self.inner.clock.wall()) => {
                self.inner.expired.fetch_add(1, Ordering::Relaxed);
                self.discard(key, background)?;
                Ok(None)
            }
            Ok(_) => Ok(Some(bytes)),
            Err(e) => {
                self.drop_corrupt(key, background)?;
                Err(TierError::Corrupt(e))
            }
        }
    }

    fn drop_corrupt(&self, key: &[u8], background: bool) -> Result<(), TierError> {
        self.inner.corrupt.fetch_add(1, Ordering::Relaxed);
        self.discard(key, background)
    }

    /// Stores a record (already encoded) under an encoded key if the eviction policy admits
    /// it, evicting to stay within the byte capacity.
    pub fn put_raw(&self, key: &[u8], record: &[u8]) -> Result<(), TierError> {
        let size = (key.len() + record.len()) as u64;
        let mut writes = self.inner.writer.lock();
        let admission = self.inner.index.lock().admit(key, size);
        if !admission.admitted && admission.victims.is_empty() && admission.replaced == 0 {
            return Ok(());
        }
        let txn = self.begin_write(&mut writes)?;
        {
            let mut table = txn.open_table(TABLE).map_err(disk_err)?;
            for (victim, _) in &admission.victims {
                table.remove(victim.as_slice()).map_err(disk_err)?;
            }
            if admission.admitted {
                table.insert(key, record).map_err(disk_err)?;
            } else {
                table.remove(key).map_err(disk_err)?;
            }
        }
        txn.commit().map_err(disk_err)?;
        let freed: u64 = admission.victims.iter().map(|(_, s)| s).sum();
        let i = &self.inner;
        let evicted = admission.victims.len() as u64;
        if admission.admitted {
            i.bytes.fetch_add(size, Ordering::Relaxed);
            if admission.replaced == 0 {
                i.entries.fetch_add(1, Ordering::Relaxed);
            }
        }
        i.bytes
            .fetch_sub(admission.replaced + freed, Ordering::Relaxed);
        i.entries.fetch_sub(evicted, Ordering::Relaxed);
        i.evictions.fetch_add(evicted, Ordering::Relaxed);
        Ok(())
    }

    fn begin_write(&self, writes: &mut u32) -> Result<redb::WriteTransaction, TierError> {
        let mut txn = self.inner.db.begin_write().map_err(disk_err)?;
        *writes = writes.wrapping_add(1);
        let durable = match self.inner.config.durability {
            DiskDurability::Immediate => true,
            DiskDurability::Periodic => writes.is_multiple_of(self.inner.config.sync_every.max(1)),
        };
        if !durable {
            txn.set_durability(Durability::None).map_err(disk_err)?;
        }
        Ok(txn)
    }

    /// Removes an encoded key.
    pub fn remove_raw(&self, key: &[u8]) -> Result<(), TierError> {
        let mut writes = self.inner.writer.lock();
        let old = self.inner.index.lock().remove(key);
        let txn = self.begin_write(&mut writes)?;
        {
            let mut table = txn.open_table(TABLE).map_err(disk_err)?;
            table.remove(key).map_err(disk_err)?;
        }
        txn.commit().map_err(disk_err)?;
        if let Some(size) = old {
            self.inner.bytes.fetch_sub(size, Ordering::Relaxed);
            self.inner.entries.fetch_sub(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Makes every write so far durable (fsync).
    pub fn flush(&self) -> Result<(), TierError> {
        let _writes = self.inner.writer.lock();
        let txn = self.inner.db.begin_write().map_err(disk_err)?;
        txn.commit().map_err(disk_err)
    }

    /// Typed read without a runtime.
    pub fn get_sync<K: Serialize, V: DeserializeOwned>(
        &self,
        key: &K,
    ) -> Result<Option<Hit<V>>, TierError> {
        let k = codec::encode_key(key).map_err(TierError::Encode)?;
        self.decode_hit(&k, false, self.get_raw(&k)?)
    }

    fn decode_hit<V: DeserializeOwned>(
        &self,
        key: &[u8],
        background: bool,
        bytes: Option<Vec<u8>>,
    ) -> Result<Option<Hit<V>>, TierError> {
        let Some(bytes) = bytes else {
            return Ok(None);
        };
        let now = self.inner.clock.wall();
        let decoded: Result<(V, Option<Duration>), CodecError> =
            codec::open_record(&bytes).and_then(|rec| Ok((rec.decode()?, rec.ttl_left(now))));
        match decoded {
            Ok((value, ttl_left)) => Ok(Some(Hit { value, ttl_left })),
            Err(e) => {
                // A record whose checksum holds but whose payload is not a `V`: unusable.
                self.drop_corrupt(key, background)?;
                Err(TierError::Corrupt(e))
            }
        }
    }

    /// Typed write without a runtime.
    pub fn put_sync<K: Serialize, V: Serialize>(
        &self,
        key: &K,
        value: &V,
        ttl: Option<Duration>,
    ) -> Result<(), TierError> {
        let k = codec::encode_key(key).map_err(TierError::Encode)?;
        let expires = ttl.map(|t| self.inner.clock.wall() + t);
        let v = codec::encode_value(value, expires).map_err(TierError::Encode)?;
        self.put_raw(&k, &v)
    }

    /// Typed removal without a runtime.
    pub fn remove_sync<K: Serialize>(&self, key: &K) -> Result<(), TierError> {
        let k = codec::encode_key(key).map_err(TierError::Encode)?;
        self.remove_raw(&k)
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, TierError> + Send + 'static,
) -> Result<T, TierError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| TierError::Task(e.to_string()))?
}

impl<K, V> Tier<K, V> for DiskTier
where
    K: Serialize + Send + Sync + 'static,
    V: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    fn name(&self) -> &str {
        &self.inner.config.name
    }

    fn kind(&self) -> TierKind {
        TierKind::Disk
    }

    fn get<'a>(&'a self, key: &'a K) -> TierFuture<'a, Option<Hit<V>>> {
        Box::pin(async move {
            let k = codec::encode_key(key).map_err(TierError::Encode)?;
            if self.inner.config.inline_reads {
                let raw = self.read_raw(&k, true)?;
                return self.decode_hit(&k, true, raw);
            }
            let this = self.clone();
            blocking(move || {
                let raw = this.get_raw(&k)?;
                this.decode_hit(&k, false, raw)
            })
            .await
        })
    }

    fn put<'a>(&'a self, key: &'a K, value: &'a V, ttl: Option<Duration>) -> TierFuture<'a, ()> {
        Box::pin(async move {
            let k = codec::encode_key(key).map_err(TierError::Encode)?;
            let expires = ttl.map(|t| self.inner.clock.wall() + t);
            let v = codec::encode_value(value, expires).map_err(TierError::Encode)?;
            let this = self.clone();
            blocking(move || this.put_raw(&k, &v)).await
        })
    }

    fn remove<'a>(&'a self, key: &'a K) -> TierFuture<'a, ()> {
        Box::pin(async move {
            let k = codec::encode_key(key).map_err(TierError::Encode)?;
            let this = self.clone();
            blocking(move || this.remove_raw(&k)).await
        })
    }

    fn usage(&self) -> TierUsage {
        self.usage_now()
    }
}
