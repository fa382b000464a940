//! [`QueryCacheBuilder`]: sizes, expiry and the optional Redis tier.
//!
//! ```
//! # async fn demo() -> Result<(), perf_rt::cache::CacheError> {
//! use std::time::Duration;
//! let cache = perf_rt::cache::QueryCache::builder()
//!     .max_entries(50_000)
//!     .default_expire(Duration::from_secs(60))
//!     .build()
//!     .await?;
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::time::Duration;

use super::memory::{MemoryCapacity, MemoryTier};
use super::metrics::CacheMetrics;
use super::{CacheError, Inner, QueryCache};
use crate::cache::flight::Flights;

/// Environment variable: default expiry in seconds of entries stored without one.
pub const ENV_DEFAULT_EXPIRE: &str = "PERF_QUERY_CACHE_DEFAULT_EXPIRE";
/// Environment variable: maximum number of entries of the in-memory tier.
pub const ENV_MAX_ENTRIES: &str = "PERF_QUERY_CACHE_MAX_ENTRIES";
/// Environment variable: URL of the Redis tier (`redis://host:port/db`); unset means none.
pub const ENV_REDIS_URL: &str = "PERF_REDIS_URL";
/// Environment variable: key namespace in Redis, shared by the instances of one site.
pub const ENV_NAMESPACE: &str = "PERF_QUERY_CACHE_NAMESPACE";

/// Default expiry: the seed's five minutes.
pub const DEFAULT_EXPIRE: Duration = Duration::from_secs(300);

/// Builds a [`QueryCache`]; start from [`QueryCache::builder`] or [`QueryCacheBuilder::from_env`].
#[derive(Clone, Debug)]
#[must_use]
pub struct QueryCacheBuilder {
    capacity: MemoryCapacity,
    default_expire: Duration,
    #[cfg_attr(not(feature = "cache-redis"), allow(dead_code))]
    redis: RedisOptions,
}

#[derive(Clone, Debug)]
#[cfg_attr(not(feature = "cache-redis"), allow(dead_code))]
struct RedisOptions {
    url: Option<String>,
    namespace: String,
    timeout: Duration,
    retry_interval: Duration,
    liveness_interval: Duration,
    ack_timeout: Option<Duration>,
    max_tag_set: u64,
}

impl Default for QueryCacheBuilder {
    fn default() -> Self {
        Self {
            capacity: MemoryCapacity::Entries(10_000),
            default_expire: DEFAULT_EXPIRE,
            redis: RedisOptions {
                url: None,
                namespace: "perf-cache".into(),
                timeout: Duration::from_millis(250),
                retry_interval: Duration::from_secs(1),
                liveness_interval: Duration::from_secs(1),
                ack_timeout: None,
                max_tag_set: 100_000,
            },
        }
    }
}

impl QueryCacheBuilder {
    /// Defaults (10,000 entries in memory, 300 s expiry, no Redis), overridden by
    /// `PERF_QUERY_CACHE_DEFAULT_EXPIRE`, `PERF_QUERY_CACHE_MAX_ENTRIES`,
    /// `PERF_QUERY_CACHE_NAMESPACE` and (with the `cache-redis` feature) `PERF_REDIS_URL`.
    /// Unparsable values are logged and ignored.
    pub fn from_env() -> Self {
        let mut b = Self::default();
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let number = |name: &str| {
            var(name).and_then(|v| {
                v.trim()
                    .parse::<u64>()
                    .map_err(|e| tracing::warn!(name, value = v, error = %e, "ignored"))
                    .ok()
            })
        };
        if let Some(secs) = number(ENV_DEFAULT_EXPIRE) {
            b.default_expire = Duration::from_secs(secs);
        }
        if let Some(n) = number(ENV_MAX_ENTRIES) {
            b.capacity = MemoryCapacity::Entries(n);
        }
        if let Some(ns) = var(ENV_NAMESPACE) {
            b.redis.namespace = ns;
        }
        if let Some(url) = var(ENV_REDIS_URL) {
            if cfg!(feature = "cache-redis") {
                b.redis.url = Some(url);
            } else {
                tracing::warn!("PERF_REDIS_URL is set but perf-rt was built without `cache-redis`");
            }
        }
        b
    }

    /// Bounds the in-memory tier by number of entries.
    pub fn max_entries(mut self, entries: u64) -> Self {
        self.capacity = MemoryCapacity::Entries(entries);
        self
    }

    /// Bounds the in-memory tier by bytes (key plus serialised value, per entry). Costs one
    /// serialisation per insert when there is no Redis tier.
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.capacity = MemoryCapacity::Bytes(bytes);
        self
    }

    /// Turns the in-memory tier off: every read goes to Redis (or the loader). Concurrent
    /// reads of one key then reach Redis one after the other (the stampede lock is held
    /// until the value is known).
    pub fn no_memory_tier(mut self) -> Self {
        self.capacity = MemoryCapacity::Disabled;
        self
    }

    /// Expiry of entries stored without one (`#[optimize_query]` without `expire`).
    pub fn default_expire(mut self, expire: Duration) -> Self {
        self.default_expire = expire;
        self
    }

    /// Adds the Redis tier at `url` (`redis://[:password@]host:port[/db]`).
    #[cfg(feature = "cache-redis")]
    pub fn redis_url(mut self, url: impl Into<String>) -> Self {
        self.redis.url = Some(url.into());
        self
    }

    /// Prefix of every Redis key and of the invalidation channel; instances that should act
    /// as one site share it. Default `perf-cache`.
    #[cfg(feature = "cache-redis")]
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.redis.namespace = namespace.into();
        self
    }

    /// Upper bound of every Redis call (default 250 ms); past it the call counts as failed.
    #[cfg(feature = "cache-redis")]
    pub fn redis_timeout(mut self, timeout: Duration) -> Self {
        self.redis.timeout = timeout;
        self
    }

    /// How often an unreachable Redis is probed (default 1 s); in between, Redis is skipped.
    #[cfg(feature = "cache-redis")]
    pub fn redis_retry_interval(mut self, interval: Duration) -> Self {
        self.redis.retry_interval = interval;
        self
    }

    /// How often the invalidation channel is pinged (default 1 s). A subscription that does
    /// not answer within the Redis timeout is dropped and made again; meanwhile reads skip
    /// the memory tier. It also bounds how long a write waits, when Redis is unreachable,
    /// before it may assume that the other instances stopped trusting their memory.
    #[cfg(feature = "cache-redis")]
    pub fn redis_liveness_interval(mut self, interval: Duration) -> Self {
        self.redis.liveness_interval = interval;
        self
    }

    /// How long an invalidation waits for the other instances to confirm that they applied
    /// it (default: the liveness interval plus two Redis timeouts, by when an instance that
    /// cannot hear Redis has stopped trusting its memory tier). An instance that stays
    /// silent (stopped without closing its subscription) costs each write this long, and is
    /// logged.
    #[cfg(feature = "cache-redis")]
    pub fn invalidation_ack_timeout(mut self, timeout: Duration) -> Self {
        self.redis.ack_timeout = Some(timeout);
        self
    }

    /// Most value keys remembered per tag in Redis for early reclaiming (default 100,000).
    /// Past it, values are still stored and still invalidated (reads check versions), but
    /// reclaimed only by their expiry.
    #[cfg(feature = "cache-redis")]
    pub fn max_tag_set_size(mut self, members: u64) -> Self {
        self.redis.max_tag_set = members.max(1);
        self
    }

    /// Builds the cache. With Redis, connects and subscribes to the invalidation channel
    /// first (waiting at most a few timeouts); an unreachable Redis is not an error: the
    /// cache starts without it and connects when it appears.
    ///
    /// # Errors
    ///
    /// [`CacheError::RedisUrl`] for a malformed URL, [`CacheError::NoRuntime`] when called
    /// outside a tokio runtime with Redis configured.
    pub async fn build(self) -> Result<QueryCache, CacheError> {
        let metrics = CacheMetrics::default();
        let memory = Arc::new(MemoryTier::new(self.capacity, metrics.clone()));
        #[cfg(feature = "cache-redis")]
        let (redis, tasks) = match &self.redis.url {
            Some(url) => {
                let (tier, task) = self.connect(url, &memory, &metrics).await?;
                (Some(tier), task.to_vec())
            }
            None => (None, Vec::new()),
        };
        Ok(QueryCache {
            inner: Arc::new(Inner {
                memory,
                #[cfg(feature = "cache-redis")]
                redis,
                #[cfg(feature = "cache-redis")]
                tasks,
                flights: Flights::default(),
                default_expire: self.default_expire,
                metrics,
            }),
        })
    }

    #[cfg(feature = "cache-redis")]
    async fn connect(
        &self,
        url: &str,
        memory: &Arc<MemoryTier>,
        metrics: &CacheMetrics,
    ) -> Result<(Arc<super::redis::RedisTier>, [tokio::task::AbortHandle; 2]), CacheError> {
        use super::redis::{RedisSettings, RedisTier};
        use std::hash::{BuildHasher, Hasher};

        let runtime = tokio::runtime::Handle::try_current().map_err(|_| CacheError::NoRuntime)?;
        let client = redis::Client::open(url).map_err(|e| CacheError::RedisUrl(e.to_string()))?;
        let mut random = std::collections::hash_map::RandomState::new().build_hasher();
        random.write_u32(std::process::id());
        let settings = RedisSettings {
            namespace: self.redis.namespace.clone(),
            timeout: self.redis.timeout,
            retry_interval: self.redis.retry_interval,
            liveness_interval: self.redis.liveness_interval,
            ack_timeout: self
                .redis
                .ack_timeout
                .unwrap_or(self.redis.liveness_interval + self.redis.timeout * 2),
            max_tag_set: self.redis.max_tag_set,
            instance: format!("{:016x}", random.finish()),
        };
        // Not trusted until the invalidation channel is subscribed.
        memory.set_trusted(false);
        let tier = Arc::new(RedisTier::new(client, settings, metrics.clone()));
        let (ready, subscribed) = tokio::sync::oneshot::channel();
        let task = runtime.spawn(super::broadcast::subscribe_loop(
            tier.clone(),
            memory.clone(),
            ready,
        ));
        if tier.recover().await {
            let _ = tokio::time::timeout(self.redis.timeout * 8, subscribed).await;
        }
        let maintain = runtime.spawn(tier.clone().maintain());
        Ok((tier, [task.abort_handle(), maintain.abort_handle()]))
    }
}
