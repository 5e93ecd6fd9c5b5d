//! The Redis tier: a shared tier for a fleet, through the `redis` crate's async
//! [`ConnectionManager`] (one multiplexed connection, reconnecting in the background).
//!
//! - Values are [`codec`](super::codec) records (versioned, checksummed); TTL is set with
//!   `SET key value EX seconds` (rounded up) and also carried in the record, so a value is
//!   never served past its expiry even at sub-second precision.
//! - Every operation is bounded by a timeout. Failures and timeouts feed a circuit breaker:
//!   after a few in a row the tier is skipped without waiting ([`TierError::CircuitOpen`]),
//!   then one probe request is let through now and then until the server answers again.
//!   A Redis that is down or slow therefore never stalls a read beyond the timeout.

use super::breaker::{Breaker, BreakerConfig};
use super::codec;
use super::tier::{BreakerState, Hit, Tier, TierError, TierFuture, TierKind, TierUsage};
use perfkit_core::{SharedClock, SystemClock};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Options of a [`RedisTier`].
#[derive(Debug, Clone)]
pub struct RedisTierConfig {
    /// `redis://host:port/db`.
    pub url: String,
    /// The tier's name in metrics.
    pub name: String,
    /// Prefix of every key this tier writes (namespaces caches sharing a server).
    pub prefix: String,
    /// Bound on every operation (connect, command and reply).
    pub timeout: Duration,
    /// When the breaker opens and how long it stays open.
    pub breaker: BreakerConfig,
}

impl RedisTierConfig {
    /// Defaults for the server at `url`: 50 ms timeout, prefix `perfkit:`.
    pub fn new(url: impl Into<String>) -> Self {
        RedisTierConfig {
            url: url.into(),
            name: "redis".to_owned(),
            prefix: "perfkit:".to_owned(),
            timeout: Duration::from_millis(50),
            breaker: BreakerConfig::default(),
        }
    }
}

/// The Redis tier. Cheap to clone.
#[derive(Clone)]
pub struct RedisTier {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RedisTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTier")
            .field("url", &self.inner.config.url)
            .field("breaker", &self.inner.breaker.state())
            .finish()
    }
}

struct Inner {
    manager: ConnectionManager,
    config: RedisTierConfig,
    breaker: Breaker,
    clock: SharedClock,
    corrupt: AtomicU64,
    expired: AtomicU64,
    writes: AtomicU64,
}

impl RedisTier {
    /// Creates the tier. It connects lazily, so this succeeds while the server is down (the
    /// tier is then skipped until it comes up). Must be called within a tokio runtime.
    pub fn new(config: RedisTierConfig) -> Result<Self, TierError> {
        Self::with_clock(config, SystemClock::shared())
    }

    /// Like [`new`](Self::new), with a clock for the breaker and expiry.
    pub fn with_clock(config: RedisTierConfig, clock: SharedClock) -> Result<Self, TierError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(TierError::Remote(
                "the Redis tier must be created inside a tokio runtime".to_owned(),
            ));
        }
        let client = redis::Client::open(config.url.as_str())
            .map_err(|e| TierError::Remote(e.to_string()))?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.timeout))
            .set_response_timeout(Some(config.timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(config.timeout);
        let manager = ConnectionManager::new_lazy_with_config(client, manager_config)
            .map_err(|e| TierError::Remote(e.to_string()))?;
        Ok(RedisTier {
            inner: Arc::new(Inner {
                manager,
                breaker: Breaker::new(config.breaker, Arc::clone(&clock)),
                clock,
                config,
                corrupt: AtomicU64::new(0),
                expired: AtomicU64::new(0),
                writes: AtomicU64::new(0),
            }),
        })
    }

    fn full_key(&self, encoded: &[u8]) -> Vec<u8> {
        let mut k = Vec::with_capacity(self.inner.config.prefix.len() + encoded.len());
        k.extend_from_slice(self.inner.config.prefix.as_bytes());
        k.extend_from_slice(encoded);
        k
    }

    /// Runs one command under the breaker and the timeout.
    async fn guarded<T, F>(&self, op: impl FnOnce(ConnectionManager) -> F) -> Result<T, TierError>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        let permit = self.inner.breaker.acquire().ok_or(TierError::CircuitOpen)?;
        let timeout = self.inner.config.timeout;
        let result = match tokio::time::timeout(timeout, op(self.inner.manager.clone())).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(TierError::Remote(e.to_string())),
            Err(_) => Err(TierError::Timeout(timeout)),
        };
        self.inner.breaker.record(permit, result.is_ok());
        result
    }

    /// Reads the raw record under an encoded key.
    pub async fn get_raw(&self, key: &[u8]) -> Result<Option<Vec<u8>>, TierError> {
        let full = self.full_key(key);
        self.guarded(|mut c| async move {
            redis::cmd("GET")
                .arg(&full)
                .query_async::<Option<Vec<u8>>>(&mut c)
                .await
        })
        .await
    }

    /// Stores a raw record under an encoded key with `SET ... EX`.
    pub async fn put_raw(
        &self,
        key: &[u8],
        record: &[u8],
        ttl: Option<Duration>,
    ) -> Result<(), TierError> {
        let full = self.full_key(key);
        self.inner.writes.fetch_add(1, Ordering::Relaxed);
        self.guarded(|mut c| async move {
            let mut cmd = redis::cmd("SET");
            cmd.arg(&full).arg(record);
            if let Some(ttl) = ttl {
                // EX takes whole seconds: round up; the record's own expiry is exact.
                let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
                cmd.arg("EX").arg(secs.max(1));
            }
            cmd.query_async::<()>(&mut c).await
        })
        .await
    }

    /// Deletes an encoded key.
    pub async fn remove_raw(&self, key: &[u8]) -> Result<(), TierError> {
        let full = self.full_key(key);
        self.guarded(
            |mut c| async move { redis::cmd("DEL").arg(&full).query_async::<()>(&mut c).await },
        )
        .await
    }

    /// Pings the server (under the breaker and timeout).
    pub async fn ping(&self) -> Result<(), TierError> {
        self.guarded(|mut c| async move { redis::cmd("PING").query_async::<()>(&mut c).await })
            .await
    }
}

impl<K, V> Tier<K, V> for RedisTier
where
    K: Serialize + Send + Sync + 'static,
    V: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    fn name(&self) -> &str {
        &self.inner.config.name
    }

    fn kind(&self) -> TierKind {
        TierKind::Remote
    }

    fn get<'a>(&'a self, key: &'a K) -> TierFuture<'a, Option<Hit<V>>> {
        Box::pin(async move {
            let k = codec::encode_key(key).map_err(TierError::Encode)?;
            let Some(bytes) = self.get_raw(&k).await? else {
                return Ok(None);
            };
            let now = self.inner.clock.wall();
            let decoded = codec::open_record(&bytes).and_then(|rec| {
                if rec.expired_at(now) {
                    Ok(None)
                } else {
                    Ok(Some(Hit {
                        value: rec.decode()?,
                        ttl_left: rec.ttl_left(now),
                    }))
                }
            });
            match decoded {
                Ok(None) => {
                    self.inner.expired.fetch_add(1, Ordering::Relaxed);
                    Ok(None)
                }
                Ok(hit) => Ok(hit),
                Err(e) => {
                    self.inner.corrupt.fetch_add(1, Ordering::Relaxed);
                    let _ = self.remove_raw(&k).await;
                    Err(TierError::Corrupt(e))
                }
            }
        })
    }

    fn put<'a>(&'a self, key: &'a K, value: &'a V, ttl: Option<Duration>) -> TierFuture<'a, ()> {
        Box::pin(async move {
            let k = codec::encode_key(key).map_err(TierError::Encode)?;
            let expires = ttl.map(|t| self.inner.clock.wall() + t);
            let v = codec::encode_value(value, expires).map_err(TierError::Encode)?;
            self.put_raw(&k, &v, ttl).await
        })
    }

    fn remove<'a>(&'a self, key: &'a K) -> TierFuture<'a, ()> {
        Box::pin(async move {
            let k = codec::encode_key(key).map_err(TierError::Encode)?;
            self.remove_raw(&k).await
        })
    }

    fn usage(&self) -> TierUsage {
        TierUsage {
            corrupt: self.inner.corrupt.load(Ordering::Relaxed),
            expired: self.inner.expired.load(Ordering::Relaxed),
            ..TierUsage::default()
        }
    }

    fn breaker(&self) -> BreakerState {
        self.inner.breaker.state()
    }

    fn breaker_opens(&self) -> u64 {
        self.inner.breaker.opens()
    }
}
