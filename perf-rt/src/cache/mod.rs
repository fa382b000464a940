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
//! Concurrent misses on one key run the loader once per process and share its outcome (the
//! error too, with [`get_or_load_shared`](QueryCache::get_or_load_shared) and
//! `#[optimize_query]` on a `Clone` error type). A loader's `Err` is never stored. A value
//! that fails to decode is a miss.
//!
//! # Invalidation and consistency
//!
//! [`invalidate`](QueryCache::invalidate) (one key), [`invalidate_tag`](QueryCache::invalidate_tag)
//! (every entry stored with the tag), [`clear`](QueryCache::clear). The promise: once one of
//! them has returned, no read that starts afterwards, through this instance or any other
//! sharing the Redis namespace, returns a value loaded before it. How it is kept:
//!
//! - Every load snapshots the invalidation counters of its key and tags before reading its
//!   source; an entry is stored with that snapshot and is dead as soon as one of them moves
//!   (see `memory.rs`). Invalidations are scoped: one tag's never discards another's loads.
//! - This instance's memory tier is invalidated before Redis *and again after*, so that a
//!   read that refilled it from Redis in between cannot survive.
//! - Redis values carry the versions they were stored under and a read compares them (one
//!   script), so a tag invalidation is O(1) on the server; stores compare versions read
//!   before the load.
//! - Each invalidation is published; every instance applies it to its memory tier and
//!   confirms, and the call returns once all listening instances have (bounded by
//!   [`QueryCacheBuilder::invalidation_ack_timeout`]).
//! - An instance whose subscription is down (Redis gone, a half-open connection caught by
//!   the liveness ping) does not read its memory tier until it is back, and flushes it
//!   then. An invalidation that cannot reach Redis is queued, replayed by a background task
//!   before Redis is read again, and waits until the other instances must have noticed.
//!
//! Faults that are refusals (`OOM`, `READONLY`, …) are not outages: nothing is flushed.
//! See `redis.rs` for the layout in Redis.
//!
//! # `#[optimize_query]`
//!
//! [`optimize_query`](crate::optimize_query) caches a function's result in the global cache
//! ([`set_global`]), keyed by the function's identity (its path with the type arguments of
//! the instance and, for a method, its `impl`'s self type) and every argument (arguments
//! implement `serde::Serialize`; see [`KeyBuilder`]). Without a global cache the function
//! simply runs. A `key_prefix` used by two different functions is detected on their first
//! calls: the second one is logged as an error and runs uncached.

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

use std::any::Any;
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

use flight::{Flights, Outcome, Role};
use memory::{MemoryTier, Snapshot};
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
    /// and not stored). Concurrent callers missing on the same key wait for one loader and
    /// get its value; if it fails, each of them runs its own loader at once (see
    /// [`Self::get_or_load_shared`] to share the error instead).
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
        self.get_or_load_with(key, options, loader, None).await
    }

    /// [`Self::get_or_load`], where the callers waiting for a load that fails get a clone of
    /// its error instead of running their own loaders: N callers behind a failing query
    /// wait for one failure, not N. (Wrap a non-`Clone` error in an `Arc` to use it.)
    ///
    /// # Errors
    ///
    /// The loader's, or the shared load's.
    pub async fn get_or_load_shared<T, E, F, Fut>(
        &self,
        key: &str,
        options: CacheOptions<'_>,
        loader: F,
    ) -> Result<T, E>
    where
        T: Cacheable,
        E: Clone + Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.get_or_load_with(key, options, loader, Some(ErrorSharing::cloning()))
            .await
    }

    async fn get_or_load_with<T, E, F, Fut>(
        &self,
        key: &str,
        options: CacheOptions<'_>,
        loader: F,
        sharing: Option<ErrorSharing<E>>,
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
        loop {
            match self.inner.flights.join(memory, key, options.tags) {
                Role::Leader(leader) => {
                    if let Some(v) = memory.get::<T>(key) {
                        leader.finish(Outcome::Value(Arc::new(v.clone())));
                        return Ok(v);
                    }
                    let result = self.fill(key, options, leader.snapshot(), loader).await;
                    leader.finish(match &result {
                        Ok(v) => Outcome::Value(Arc::new(v.clone())),
                        Err(e) => Outcome::Error(sharing.as_ref().map(|s| (s.share)(e))),
                    });
                    return result;
                }
                Role::Waiter(flight) => match self.take(flight.wait().await, key, &sharing) {
                    Taken::Done(result) => return result,
                    Taken::Again => continue,
                    Taken::OwnLoad => break,
                },
            }
        }
        // The load we waited for failed (or was of another type): our own, right away.
        let snapshot = memory.snapshot(key, options.tags);
        self.fill(key, options, &snapshot, loader).await
    }

    /// What a waiter makes of the outcome of the flight it joined.
    fn take<T: Cacheable, E>(
        &self,
        outcome: Outcome,
        key: &str,
        sharing: &Option<ErrorSharing<E>>,
    ) -> Taken<T, E> {
        let counters = self.inner.metrics.counters();
        // An outcome shared from another caller's load ends a read that no tier answered.
        let shared = || {
            incr(&counters.shared_outcomes);
            incr(&counters.memory_misses);
        };
        match outcome {
            Outcome::Value(v) => match v.downcast_ref::<T>() {
                Some(v) => {
                    shared();
                    Taken::Done(Ok(v.clone()))
                }
                None => Taken::OwnLoad,
            },
            Outcome::Error(Some(e)) => match sharing.as_ref().and_then(|s| (s.unshare)(&*e)) {
                Some(e) => {
                    shared();
                    Taken::Done(Err(e))
                }
                None => Taken::OwnLoad,
            },
            Outcome::Error(None) => Taken::OwnLoad,
            Outcome::Abandoned => match self.inner.memory.get::<T>(key) {
                Some(v) => Taken::Done(Ok(v)),
                None => Taken::Again,
            },
        }
    }

    /// Redis, else the loader; stores what it found under `snapshot`.
    async fn fill<T, E, F, Fut>(
        &self,
        key: &str,
        options: CacheOptions<'_>,
        snapshot: &Snapshot,
        loader: F,
    ) -> Result<T, E>
    where
        T: Cacheable,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let memory = &*self.inner.memory;
        // Once per read: the memory tier did not answer it.
        incr(&self.inner.metrics.counters().memory_misses);
        let ttl = self.ttl(&options);
        #[cfg(feature = "cache-redis")]
        let mut expected = None;
        #[cfg(feature = "cache-redis")]
        if let Some(redis) = &self.inner.redis {
            if let Some(value) = self.redis_get::<T>(redis, key, Some(ttl), snapshot).await {
                return Ok(value);
            }
            expected = redis.versions(key, options.tags).await;
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
            memory.insert(key, value.clone(), ttl, options.tags, weight, snapshot);
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
        self.get_or_load_blocking_with(key, options, loader, None)
    }

    fn get_or_load_blocking_with<T, E, F>(
        &self,
        key: &str,
        options: CacheOptions<'_>,
        loader: F,
        sharing: Option<ErrorSharing<E>>,
    ) -> Result<T, E>
    where
        T: Cacheable,
        F: FnOnce() -> Result<T, E>,
    {
        let memory = &*self.inner.memory;
        if let Some(v) = memory.get::<T>(key) {
            return Ok(v);
        }
        let fill = |snapshot: &Snapshot, loader: F| {
            let counters = self.inner.metrics.counters();
            // Once per read: the memory tier did not answer it.
            incr(&counters.memory_misses);
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
            let ttl = self.ttl(&options);
            memory.insert(key, value.clone(), ttl, options.tags, weight, snapshot);
            Ok(value)
        };
        loop {
            match self.inner.flights.join_blocking(memory, key, options.tags) {
                Role::Leader(leader) => {
                    if let Some(v) = memory.get::<T>(key) {
                        leader.finish(Outcome::Value(Arc::new(v.clone())));
                        return Ok(v);
                    }
                    let result = fill(leader.snapshot(), loader);
                    leader.finish(match &result {
                        Ok(v) => Outcome::Value(Arc::new(v.clone())),
                        Err(e) => Outcome::Error(sharing.as_ref().map(|s| (s.share)(e))),
                    });
                    return result;
                }
                Role::Waiter(flight) => match self.take(flight.wait_blocking(), key, &sharing) {
                    Taken::Done(result) => return result,
                    Taken::Again => continue,
                    Taken::OwnLoad => break,
                },
            }
        }
        fill(&memory.snapshot(key, options.tags), loader)
    }

    /// A value from Redis, stored in memory under `snapshot` (taken before the read) with
    /// its serialised size as weight and the time Redis still gives it (at most `ttl`).
    #[cfg(feature = "cache-redis")]
    async fn redis_get<T: Cacheable>(
        &self,
        redis: &redis::RedisTier,
        key: &str,
        ttl: Option<Duration>,
        snapshot: &Snapshot,
    ) -> Option<T> {
        let counters = self.inner.metrics.counters();
        match redis.get(key).await {
            redis::Lookup::Hit(bytes, remaining) => match codec::decode::<T>(&bytes) {
                Some((tags, value)) => {
                    incr(&counters.redis_hits);
                    let memory = &*self.inner.memory;
                    if memory.enabled() {
                        let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
                        let ttl = match (remaining, ttl) {
                            (Some(r), Some(t)) => r.min(t),
                            (Some(r), None) => r,
                            (None, t) => t.unwrap_or(self.inner.default_expire),
                        };
                        let weight = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
                        memory.insert(key, value.clone(), ttl, &tags, weight, snapshot);
                    }
                    Some(value)
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
            redis::Lookup::Miss(foreign) => {
                if foreign {
                    incr(&counters.decode_errors);
                }
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
        incr(&self.inner.metrics.counters().memory_misses);
        #[cfg(feature = "cache-redis")]
        if let Some(redis) = &self.inner.redis {
            let snapshot = memory.snapshot(key, &[]);
            return self.redis_get::<T>(redis, key, None, &snapshot).await;
        }
        None
    }

    /// Stores `value` under `key` in both tiers, replacing every instance's copy.
    pub async fn insert<T: Cacheable>(&self, key: &str, value: T, options: CacheOptions<'_>) {
        let memory = &*self.inner.memory;
        let ttl = self.ttl(&options);
        // Loads of this key already running must not overwrite the new value.
        memory.invalidate(key);
        let snapshot = memory.snapshot(key, options.tags);
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
        memory.insert(key, value, ttl, options.tags, weight, &snapshot);
    }

    /// Drops `key` from both tiers and from every instance's memory tier; see the module
    /// docs for what holds once it returns.
    pub async fn invalidate(&self, key: &str) {
        let memory = &self.inner.memory;
        memory.invalidate(key);
        memory.count_invalidation();
        #[cfg(feature = "cache-redis")]
        if let Some(redis) = &self.inner.redis {
            // A read may have refilled memory from Redis before Redis dropped the key.
            self.invalidate_everywhere(
                redis,
                key,
                |r, v| redis::Invalidation::Key(v).apply_on(r),
                |m, v| m.invalidate(v),
            )
            .await;
        }
    }

    /// Drops every entry stored with `tag`, in both tiers and on every instance. When it
    /// returns, no read through any instance sharing the Redis namespace returns such an
    /// entry (the other instances have confirmed; see the module docs).
    pub async fn invalidate_tag(&self, tag: &str) {
        let memory = &self.inner.memory;
        memory.invalidate_tag(tag);
        memory.count_invalidation();
        #[cfg(feature = "cache-redis")]
        if let Some(redis) = &self.inner.redis {
            // A read may have refilled memory from Redis before Redis moved the version.
            self.invalidate_everywhere(
                redis,
                tag,
                |r, v| redis::Invalidation::Tag(v).apply_on(r),
                |m, v| m.invalidate_tag(v),
            )
            .await;
        }
    }

    /// Redis, the other instances, then this instance's memory again, in a task of its own:
    /// a caller that gives up (a cancelled request) cannot leave it half done.
    #[cfg(feature = "cache-redis")]
    async fn invalidate_everywhere(
        &self,
        redis: &Arc<redis::RedisTier>,
        value: &str,
        remote: for<'a> fn(
            &'a redis::RedisTier,
            &'a str,
        ) -> futures_util::future::BoxFuture<'a, ()>,
        local: fn(&MemoryTier, &str),
    ) {
        let (redis, memory, value) = (redis.clone(), self.inner.memory.clone(), value.to_owned());
        let work = async move {
            remote(&redis, &value).await;
            local(&memory, &value);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let _ = runtime.spawn(work).await;
            }
            Err(_) => work.await,
        }
    }

    /// Synchronous part of [`Self::invalidate_tag`]: this instance's memory tier only.
    pub fn invalidate_tag_local(&self, tag: &str) {
        self.inner.memory.invalidate_tag(tag);
    }

    /// Drops every entry, in both tiers and on every instance.
    pub async fn clear(&self) {
        let memory = &self.inner.memory;
        memory.clear();
        memory.count_invalidation();
        #[cfg(feature = "cache-redis")]
        if let Some(redis) = &self.inner.redis {
            self.invalidate_everywhere(
                redis,
                "",
                |r, _| redis::Invalidation::Clear.apply_on(r),
                |m, _| m.clear(),
            )
            .await;
        }
    }
}

/// What a waiter does next.
enum Taken<T, E> {
    /// The flight's outcome is its answer.
    Done(Result<T, E>),
    /// The leader gave up: join or lead the next flight.
    Again,
    /// The outcome cannot be shared with it (an error that is not `Clone`, another type):
    /// it runs its own loader, at once.
    OwnLoad,
}

/// How waiters get a copy of a failed load's error: set when the error type is `Clone`.
#[doc(hidden)]
pub struct ErrorSharing<E> {
    share: fn(&E) -> Arc<dyn Any + Send + Sync>,
    unshare: fn(&(dyn Any + Send + Sync)) -> Option<E>,
}

impl<E: Clone + Send + Sync + 'static> ErrorSharing<E> {
    fn cloning() -> Self {
        Self {
            share: |e| Arc::new(e.clone()),
            unshare: |any| any.downcast_ref::<E>().cloned(),
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
#[path = "macro_support.rs"]
pub mod __private;
