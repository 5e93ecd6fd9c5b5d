//! A rate limit shared by many processes through Redis (feature `redis`).
//!
//! [`RedisLimiter`] implements GCRA (the generic cell rate algorithm) in a Lua script that
//! runs atomically inside Redis and takes the time from Redis `TIME`, so that every
//! process sees one clock and one theoretical arrival time per key, whatever their own
//! clocks say. The limit is `rate` units per second with a burst of `burst` units; a unit
//! is whatever the caller counts (requests, bytes).
//!
//! When Redis is unreachable the limiter fails open (allows, marking the decision as
//! degraded) or closed (returns [`RedisBudgetError::Unavailable`], whose message says that
//! the request is refused because of it), as configured.

use std::time::Duration;
use tokio::sync::Mutex;

/// GCRA over one key. KEYS[1] = the key; ARGV = emission interval (µs per unit), burst
/// tolerance (µs), cost (units). Returns {allowed (0/1), retry_after_us, remaining_us}.
const GCRA_SCRIPT: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local emission = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local new_tat = tat + emission * cost
local allow_at = new_tat - tolerance
if allow_at > now then
  return {0, math.ceil(allow_at - now), math.floor(tat - now)}
end
local ttl_ms = math.ceil((new_tat - now) / 1000) + 1
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', ttl_ms)
return {1, 0, math.floor(new_tat - now)}
";

/// What to do when Redis cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailMode {
    /// Allow the request (availability over strictness); the decision says it is degraded.
    Open,
    /// Refuse the request with [`RedisBudgetError::Unavailable`].
    Closed,
}

impl std::fmt::Display for FailMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            FailMode::Open => "failing open: the request is allowed",
            FailMode::Closed => "failing closed: the request is refused",
        })
    }
}

/// The answer of [`RedisLimiter::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisDecision {
    /// Whether the units were granted.
    pub allowed: bool,
    /// When refused: when trying again makes sense.
    pub retry_after: Duration,
    /// Set when Redis was unreachable and the limiter failed open: why.
    pub degraded: Option<String>,
}

/// Errors of the shared limiter.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisBudgetError {
    /// The limiter's options are invalid.
    #[error("invalid shared rate limit: {0}")]
    Invalid(String),
    /// Redis could not be reached or answered with an error, and the limiter fails closed.
    #[error("the shared rate limit's Redis at {url} is unavailable ({mode}): {reason}")]
    Unavailable {
        /// The Redis URL.
        url: String,
        /// The configured failure mode.
        mode: FailMode,
        /// What went wrong.
        reason: String,
    },
}

/// A GCRA rate limit shared through Redis.
///
/// ```no_run
/// # async fn demo() -> Result<(), perfkit_budget::redis::RedisBudgetError> {
/// use perfkit_budget::redis::{FailMode, RedisLimiter};
/// let limiter = RedisLimiter::new("redis://127.0.0.1:6379/", "api:requests", 100.0, 20)?
///     .fail_mode(FailMode::Open);
/// let decision = limiter.check(1).await?;
/// if !decision.allowed {
///     println!("retry after {:?}", decision.retry_after);
/// }
/// # Ok(()) }
/// ```
pub struct RedisLimiter {
    client: redis::Client,
    url: String,
    key: String,
    emission_us: f64,
    tolerance_us: f64,
    fail: FailMode,
    timeout: Duration,
    conn: Mutex<Option<redis::aio::MultiplexedConnection>>,
}

impl std::fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLimiter")
            .field("url", &self.url)
            .field("key", &self.key)
            .field("rate_per_sec", &(1e6 / self.emission_us))
            .field("fail", &self.fail)
            .finish_non_exhaustive()
    }
}

impl RedisLimiter {
    /// A limiter of `rate_per_sec` units per second with a burst of `burst` units on `key`.
    /// Fails closed and times out after 250 ms by default. Connects lazily.
    pub fn new(
        url: &str,
        key: &str,
        rate_per_sec: f64,
        burst: u64,
    ) -> Result<Self, RedisBudgetError> {
        if !(rate_per_sec.is_finite() && rate_per_sec > 0.0) {
            return Err(RedisBudgetError::Invalid(format!(
                "the rate must be positive (got {rate_per_sec})"
            )));
        }
        if burst == 0 {
            return Err(RedisBudgetError::Invalid(
                "the burst must be at least 1".into(),
            ));
        }
        let client = redis::Client::open(url)
            .map_err(|e| RedisBudgetError::Invalid(format!("bad Redis URL {url:?}: {e}")))?;
        let emission_us = 1e6 / rate_per_sec;
        Ok(RedisLimiter {
            client,
            url: url.to_owned(),
            key: key.to_owned(),
            emission_us,
            tolerance_us: emission_us * burst as f64,
            fail: FailMode::Closed,
            timeout: Duration::from_millis(250),
            conn: Mutex::new(None),
        })
    }

    /// What to do when Redis is unreachable.
    pub fn fail_mode(mut self, mode: FailMode) -> Self {
        self.fail = mode;
        self
    }

    /// How long a connection attempt or a script call may take.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Takes `cost` units if the shared limit allows it.
    pub async fn check(&self, cost: u64) -> Result<RedisDecision, RedisBudgetError> {
        match self.eval(cost).await {
            Ok((allowed, retry_us)) => Ok(RedisDecision {
                allowed,
                retry_after: Duration::from_micros(retry_us),
                degraded: None,
            }),
            Err(reason) => match self.fail {
                FailMode::Open => {
                    tracing::warn!(target: "perfkit", url = %self.url, %reason, "shared rate limit unavailable; failing open");
                    Ok(RedisDecision {
                        allowed: true,
                        retry_after: Duration::ZERO,
                        degraded: Some(format!(
                            "Redis at {} is unavailable ({}): {reason}",
                            self.url, self.fail
                        )),
                    })
                }
                FailMode::Closed => Err(RedisBudgetError::Unavailable {
                    url: self.url.clone(),
                    mode: self.fail,
                    reason,
                }),
            },
        }
    }

    /// A connection: the multiplexed connection is cheap to clone and serves concurrent
    /// calls, so the lock is held only while (re)connecting.
    async fn connection(&self) -> Result<redis::aio::MultiplexedConnection, String> {
        let mut guard = self.conn.lock().await;
        if let Some(conn) = guard.as_ref() {
            return Ok(conn.clone());
        }
        let conn =
            tokio::time::timeout(self.timeout, self.client.get_multiplexed_async_connection())
                .await
                .map_err(|_| format!("connecting timed out after {:?}", self.timeout))?
                .map_err(|e| format!("connecting: {e}"))?;
        *guard = Some(conn.clone());
        Ok(conn)
    }

    async fn eval(&self, cost: u64) -> Result<(bool, u64), String> {
        let mut conn = self.connection().await?;
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(GCRA_SCRIPT)
            .arg(1)
            .arg(&self.key)
            .arg(self.emission_us)
            .arg(self.tolerance_us)
            .arg(cost);
        let result =
            tokio::time::timeout(self.timeout, cmd.query_async::<(i64, i64, i64)>(&mut conn))
                .await
                .map_err(|_| format!("the script timed out after {:?}", self.timeout))
                .and_then(|r| r.map_err(|e| format!("the script failed: {e}")));
        match result {
            Ok((allowed, retry_us, _)) => Ok((allowed == 1, retry_us.max(0) as u64)),
            Err(e) => {
                // Reconnect next time: the connection may be broken.
                *self.conn.lock().await = None;
                Err(e)
            }
        }
    }
}
