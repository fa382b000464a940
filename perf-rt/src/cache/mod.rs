//! Query cache: typed values in memory (moka), shared through Redis, invalidated by tag.
//!
//! ```
//! use perf_rt::cache::{CacheOptions, QueryCache};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let cache = QueryCache::builder().build().await?;
//! let options = CacheOptions::new().expire_secs(60).tags(&["posts"]);
//! let titles: Vec<String> = cache
//!     .get_or_load("posts:recent", options, || async {
//!         Ok::<_, std::io::Error>(vec!["Hello".to_string()]) // the real query goes here
//!     })
//!     .await?;
//! assert_eq!(titles, ["Hello"]);
//! cache.invalidate_tag("posts").await; // after writing the posts table
//! # Ok(()) }
//! ```
//!
//! # Wiring in an application
//!
//! Build from the environment ([`QueryCacheBuilder::from_env`]: `PERF_REDIS_URL`,
//! `PERF_QUERY_CACHE_DEFAULT_EXPIRE`, …), [`set_global`], install a `SqliteInvalidator` on
//! each writing connection, put `#[optimize_query]` on the query functions: the complete
//! example is on `SqliteInvalidator` (feature `cache-sqlite`).
//!
//! # Tiers
//!
//! - **Memory** ([`moka`]): typed values, no serialisation on a hit; bounded by entries or
//!   bytes; per-entry expiry.
//! - **Redis** (feature `cache-redis`): postcard behind a versioned header; shared by every
//!   instance using the same namespace (`QueryCacheBuilder::namespace`,
//!   `PERF_QUERY_CACHE_NAMESPACE`).
//!
//! A read tries memory, then Redis, then runs the loader and stores the result in both.
//! Concurrent misses on one key run the loader once per process. A loader's `Err` is returned
//! and never stored. A value that fails to decode is a miss.
//!
//! # Invalidation
//!
//! [`invalidate`](QueryCache::invalidate) (one key), [`invalidate_tag`](QueryCache::invalidate_tag)
//! (every entry stored with the tag), [`clear`](QueryCache::clear). With Redis, each is applied
//! to Redis atomically and broadcast over pub/sub to the other instances' memory tiers. With
//! the `cache-sqlite` feature, `SqliteInvalidator` turns writes to a table into
//! invalidations of its tag.
//!
//! # Redis: consistency and faults
//!
//! - Keys: `ns:k:<key>` (value), `ns:t:<tag>` (set of the value keys stored with the tag),
//!   `ns:v:<tag>` and `ns:g` (version counters), channel `ns:inv`.
//! - `invalidate_tag` is one Lua script, atomic on the server: bump the tag's version, delete
//!   every member of the tag set and the set, publish. Reads are a plain `GET`, so the Redis
//!   tier cannot return an entry of a tag invalidated before the read.
//! - A miss reads its tags' versions before running the loader, and the value is stored by a
//!   script that compares them first: a load that overlapped an invalidation (it may have read
//!   the database before the write) is returned to its caller but stored nowhere.
//! - The in-memory tier checks per-tag version counters on every hit (one atomic load per
//!   tag); other instances bump them when the pub/sub message arrives, so they follow within
//!   one pub/sub hop.
//! - Every Redis call runs under a timeout (default 250 ms). A failure marks Redis down,
//!   logs one warning and counts an outage; while down, reads go memory → loader, writes of
//!   invalidations are queued, and a background probe retries every second. On return the
//!   queue is replayed, then the in-memory tier is flushed (invalidations were missed). The
//!   same flush happens whenever the pub/sub subscription is re-established.
//!
//! # `#[optimize_query]`
//!
//! [`optimize_query`](crate::optimize_query) caches a function's result in the global cache
//! ([`set_global`]), keyed by its path and every argument (arguments implement
//! `serde::Serialize`; see [`KeyBuilder`]). Without a global cache the function simply runs.

mod builder;
mod codec;
mod flight;
mod memory;
mod metrics;

#[cfg(feature = "cache-redis")]
mod broadcast;
#[cfg(feature = "cache-redis")]
mod redis;
#[cfg(feature = "cache-sqlite")]
mod sqlite;

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use builder::{
    DEFAULT_EXPIRE, ENV_DEFAULT_EXPIRE, ENV_MAX_ENTRIES, ENV_NAMESPACE, ENV_REDIS_URL,
    QueryCacheBuilder,
};
pub use codec::KeyBuilder;
pub use memory::MemoryCapacity;
pub use metrics::{CacheMetrics, MetricsSnapshot};
#[cfg(feature = "cache-sqlite")]
pub use sqlite::{SqliteInvalidator, SqliteInvalidatorBuilder};

use flight::Flights;
use memory::MemoryTier;
use metrics::incr;

/// Errors of the query cache. Reads and writes never fail because of the cache itself; only
/// building it or building a key can.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// The Redis URL could not be parsed.
    #[error("invalid Redis URL: {0} (expected redis://[:password@]host:port[/db])")]
    RedisUrl(String),
    /// A Redis tier needs a tokio runtime for its background subscription.
    #[error("the query cache with Redis must be built inside a tokio runtime")]
    NoRuntime,
    /// An argument of a cached function could not be serialised into the key.
    #[error("cache key for {prefix}: argument not serialisable: {source}")]
    Key {
        /// The key prefix (function path).
        prefix: String,
        /// The serialisation error.
        source: postcard::Error,
    },
    /// [`set_global`] was called twice.
    #[error("a global query cache is already set")]
    GlobalAlreadySet,
}

/// Per-entry options of a write: expiry and tags.
#[derive(Clone, Copy, Debug, Default)]
pub struct CacheOptions<'a> {
    /// Time to live; `None` uses the cache's default (`PERF_QUERY_CACHE_DEFAULT_EXPIRE`).
    pub expire: Option<Duration>,
    /// Tags (usually table names): [`QueryCache::invalidate_tag`] drops every entry carrying one.
    pub tags: &'a [&'a str],
}

impl<'a> CacheOptions<'a> {
    /// No expiry of its own, no tags.
    pub const fn new() -> Self {
        Self {
            expire: None,
            tags: &[],
        }
    }

    /// Sets the time to live.
    pub const fn expire(mut self, expire: Duration) -> Self {
        self.expire = Some(expire);
        self
    }

    /// Sets the time to live in seconds.
    pub const fn expire_secs(self, secs: u64) -> Self {
        self.expire(Duration::from_secs(secs))
    }

    /// Sets the tags.
    pub const fn tags(mut self, tags: &'a [&'a str]) -> Self {
        self.tags = tags;
        self
    }
}

/// A two-tier query cache. Cheap to clone (all clones share the tiers).
#[derive(Clone)]
pub struct QueryCache {
    inner: Arc<Inner>,
}

struct Inner {
    memory: Arc<MemoryTier>,
    #[cfg(feature = "cache-redis")]
    redis: Option<Arc<redis::RedisTier>>,
    #[cfg(feature = "cache-redis")]
    tasks: Vec<tokio::task::AbortHandle>,
    flights: Flights,
    default_expire: Duration,
    metrics: CacheMetrics,
}

impl Drop for Inner {
    fn drop(&mut self) {
        #[cfg(feature = "cache-redis")]
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl std::fmt::Debug for QueryCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryCache")
            .field("default_expire", &self.inner.default_expire)
            .field("redis", &self.has_redis())
            .finish_non_exhaustive()
    }
}

static GLOBAL: OnceLock<QueryCache> = OnceLock::new();

/// Makes `cache` the one `#[optimize_query]` functions use. Call once at start-up.
///
/// # Errors
///
/// [`CacheError::GlobalAlreadySet`] if a global cache was set before.
pub fn set_global(cache: QueryCache) -> Result<(), CacheError> {
    GLOBAL.set(cache).map_err(|_| CacheError::GlobalAlreadySet)
}

/// A value the cache can hold: cloned out of memory, serialised into Redis.
pub trait Cacheable: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {}
impl<T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static> Cacheable for T {}

impl QueryCache {
    /// Starts a builder with the defaults; see also [`QueryCacheBuilder::from_env`].
    pub fn builder() -> QueryCacheBuilder {
        QueryCacheBuilder::default()
    }

    /// The cache set by [`set_global`], if any.
    pub fn global() -> Option<&'static QueryCache> {
        GLOBAL.get()
    }

    /// Live counters, for the monitor.
    pub fn metrics(&self) -> &CacheMetrics {
        &self.inner.metrics
    }

    /// Expiry of entries written without one.
    pub fn default_expire(&self) -> Duration {
        self.inner.default_expire
    }

    /// Whether a Redis tier is configured (reachable or not).
    pub fn has_redis(&self) -> bool {
        #[cfg(feature = "cache-redis")]
        return self.inner.redis.is_some();
        #[cfg(not(feature = "cache-redis"))]
        false
    }

    /// Whether the Redis tier is configured and currently considered reachable.
    pub fn redis_available(&self) -> bool {
        #[cfg(feature = "cache-redis")]
        return self.inner.redis.as_ref().is_some_and(|r| r.is_up());
        #[cfg(not(feature = "cache-redis"))]
        false
    }

    fn ttl(&self, options: &CacheOptions<'_>) -> Duration {
        options.expire.unwrap_or(self.inner.default_expire)
    }

    /// The cached value of `key`, or the loader's, which is then stored (an `Err` is returned
    /// and not stored). Concurrent callers missing on the same key wait for one loader.
    ///
    /// # Errors
    ///
    /// Only the loader's.
    pub async fn get_or_load<T, E, F, Fut>(
        &self,
        key: &str,
        options: CacheOptions<'_>,
        loader: F,
    ) -> Result<T, E>
    where
        T: Cacheable,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let memory = &*self.inner.memory;
        if let Some(v) = memory.get::<T>(key) {
            return Ok(v);
        }
        let _slot = self.inner.flights.acquire(key).await;
        if let Some(v) = memory.get::<T>(key) {
            return Ok(v);
        }
        let seq = memory.seq();
        let ttl = self.ttl(&options);
        #[cfg(feature = "cache-redis")]
        let mut expected = None;
        #[cfg(feature = "cache-redis")]
        if let Some(redis) = &self.inner.redis {
            if let Some((tags, value)) = self.redis_get::<T>(redis, key).await {
                let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
                memory.insert(key, value.clone(), ttl, &tags, &[], 0, seq);
                return Ok(value);
            }
            expected = redis.versions(options.tags).await;
        }

        let value = self.load(loader).await?;
        #[cfg_attr(not(feature = "cache-redis"), allow(unused_mut))]
        let (mut weight, mut keep_in_memory) = (0, true);
        #[cfg(feature = "cache-redis")]
        if let (Some(redis), Some(expected)) = (&self.inner.redis, &expected)
            && let Some(bytes) = encode_logged(key, options.tags, &value)
        {
            weight = bytes.len();
            let stored = redis
                .store(key, &bytes, ttl, options.tags, Some(expected))
                .await;
            // Stale per Redis: an invalidation overlapped the load.
            keep_in_memory = stored != Some(false);
        }
        if keep_in_memory && memory.enabled() {
            if memory.weighs_bytes() && weight == 0 {
                weight = encode_logged(key, options.tags, &value).map_or(0, |b| b.len());
            }
            let weight = u32::try_from(weight).unwrap_or(u32::MAX);
            memory.insert(key, value.clone(), ttl, options.tags, &[], weight, seq);
        }
        Ok(value)
    }

    async fn load<T, E, F, Fut>(&self, loader: F) -> Result<T, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let counters = self.inner.metrics.counters();
        let started = Instant::now();
        let result = loader().await;
        incr(&counters.loads);
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        counters.load_nanos.fetch_add(nanos, Ordering::Relaxed);
        if result.is_err() {
            incr(&counters.load_errors);
        }
        result
    }

    /// [`Self::get_or_load`] for blocking code (plain `fn`s): the in-memory tier only, since a
    /// Redis round trip would need an async runtime.
    ///
    /// # Errors
    ///
    /// Only the loader's.
    pub fn get_or_load_blocking<T, E, F>(
        &self,
        key: &str,
        options: CacheOptions<'_>,
        loader: F,
    ) -> Result<T, E>
    where
        T: Cacheable,
        F: FnOnce() -> Result<T, E>,
    {
        let memory = &*self.inner.memory;
        if let Some(v) = memory.get::<T>(key) {
            return Ok(v);
        }
        self.inner.flights.with_blocking(key, || {
            if let Some(v) = memory.get::<T>(key) {
                return Ok(v);
            }
            let seq = memory.seq();
            let counters = self.inner.metrics.counters();
            let started = Instant::now();
            let result = loader();
            incr(&counters.loads);
            let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            counters.load_nanos.fetch_add(nanos, Ordering::Relaxed);
            let value = result.inspect_err(|_| incr(&counters.load_errors))?;
            let weight = if memory.weighs_bytes() {
                encode_logged(key, options.tags, &value).map_or(0, |b| b.len())
            } else {
                0
            };
            let weight = u32::try_from(weight).unwrap_or(u32::MAX);
            memory.insert(
                key,
                value.clone(),
                self.ttl(&options),
                options.tags,
                &[],
                weight,
                seq,
            );
            Ok(value)
        })
    }

    #[cfg(feature = "cache-redis")]
    async fn redis_get<T: Cacheable>(
        &self,
        redis: &redis::RedisTier,
        key: &str,
    ) -> Option<(Vec<String>, T)> {
        let counters = self.inner.metrics.counters();
        match redis.get(key).await {
            redis::Lookup::Hit(bytes) => match codec::decode::<T>(&bytes) {
                Some(found) => {
                    incr(&counters.redis_hits);
                    Some(found)
                }
                None => {
                    incr(&counters.decode_errors);
                    incr(&counters.redis_misses);
                    tracing::debug!(
                        key,
                        "query cache: undecodable value in Redis, treated as a miss"
                    );
                    None
                }
            },
            redis::Lookup::Miss => {
                incr(&counters.redis_misses);
                None
            }
            redis::Lookup::Unavailable => None,
        }
    }

    /// The cached value of `key`, if either tier has one of type `T`.
    pub async fn get<T: Cacheable>(&self, key: &str) -> Option<T> {
        let memory = &*self.inner.memory;
        if let Some(v) = memory.get::<T>(key) {
            return Some(v);
        }
        #[cfg(feature = "cache-redis")]
        if let Some(redis) = &self.inner.redis {
            let seq = memory.seq();
            let (tags, value) = self.redis_get::<T>(redis, key).await?;
            let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
            memory.insert(
                key,
                value.clone(),
                self.inner.default_expire,
                &tags,
                &[],
                0,
                seq,
            );
            return Some(value);
        }
        None
    }

    /// Stores `value` under `key` in both tiers, replacing any other instance's copy.
    pub async fn insert<T: Cacheable>(&self, key: &str, value: T, options: CacheOptions<'_>) {
        let memory = &*self.inner.memory;
        let ttl = self.ttl(&options);
        #[cfg(feature = "cache-redis")]
        if let Some(redis) = &self.inner.redis
            && let Some(bytes) = encode_logged(key, options.tags, &value)
            && redis
                .store(key, &bytes, ttl, options.tags, None)
                .await
                .is_some()
        {
            redis.announce_key(key).await;
        }
        let weight = if memory.weighs_bytes() {
            encode_logged(key, options.tags, &value).map_or(0, |b| b.len())
        } else {
            0
        };
        let weight = u32::try_from(weight).unwrap_or(u32::MAX);
        memory.insert(key, value, ttl, options.tags, &[], weight, memory.seq());
    }

    /// Drops `key` from both tiers and from every instance's memory tier.
    pub async fn invalidate(&self, key: &str) {
        self.inner.memory.invalidate(key);
        #[cfg(feature = "cache-redis")]
        if let Some(redis) = &self.inner.redis {
            redis.invalidate(key).await;
        }
    }

    /// Drops every entry stored with `tag`, in both tiers and on every instance. When it
    /// returns, no read through this instance, and no Redis read through any instance, can
    /// see such an entry (the other instances' memory tiers follow within a pub/sub hop).
    pub async fn invalidate_tag(&self, tag: &str) {
        self.inner.memory.invalidate_tag(tag);
        #[cfg(feature = "cache-redis")]
        if let Some(redis) = &self.inner.redis {
            redis.invalidate_tag(tag).await;
        }
    }

    /// Synchronous part of [`Self::invalidate_tag`]: this instance's memory tier only.
    pub fn invalidate_tag_local(&self, tag: &str) {
        self.inner.memory.invalidate_tag(tag);
    }

    /// Drops every entry, in both tiers and on every instance.
    pub async fn clear(&self) {
        self.inner.memory.clear();
        incr(&self.inner.metrics.counters().invalidations);
        #[cfg(feature = "cache-redis")]
        if let Some(redis) = &self.inner.redis {
            redis.clear().await;
        }
    }
}

fn encode_logged<T: Serialize>(key: &str, tags: &[&str], value: &T) -> Option<Vec<u8>> {
    codec::encode(tags, value)
        .map_err(|e| tracing::debug!(key, error = %e, "query cache: value not serialisable"))
        .ok()
}

/// Support for the code `#[optimize_query]` generates. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use super::{CacheOptions, KeyBuilder, QueryCache};
    pub use core::convert::Infallible;
    pub use core::result::Result;
    pub use core::time::Duration;

    use std::future::Future;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn cache_for(key: &Result<String, super::CacheError>) -> Option<&'static QueryCache> {
        static WARNED: AtomicBool = AtomicBool::new(false);
        let Some(cache) = QueryCache::global() else {
            if !WARNED.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "#[optimize_query]: no global cache (perf_rt::cache::set_global); not caching"
                );
            }
            return None;
        };
        if let Err(e) = key {
            tracing::warn!(error = %e, "#[optimize_query]: not caching this call");
            return None;
        }
        Some(cache)
    }

    /// Async functions.
    pub async fn get_or_load<T, E, Fut>(
        key: Result<String, super::CacheError>,
        options: CacheOptions<'_>,
        load: Fut,
    ) -> Result<T, E>
    where
        T: super::Cacheable,
        Fut: Future<Output = Result<T, E>>,
    {
        match (cache_for(&key), key) {
            (Some(cache), Ok(key)) => cache.get_or_load(&key, options, || load).await,
            _ => load.await,
        }
    }

    /// Plain functions.
    pub fn get_or_load_blocking<T, E>(
        key: Result<String, super::CacheError>,
        options: CacheOptions<'_>,
        load: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E>
    where
        T: super::Cacheable,
    {
        match (cache_for(&key), key) {
            (Some(cache), Ok(key)) => cache.get_or_load_blocking(&key, options, load),
            _ => load(),
        }
    }

    /// Unwraps the result of a function that does not return `Result`.
    pub fn infallible<T>(result: Result<T, Infallible>) -> T {
        match result {
            Ok(v) => v,
            Err(never) => match never {},
        }
    }
}
