//! Counters of the query cache, readable at any time without locking.
//!
//! ```
//! # async fn demo() -> Result<(), perf_rt::cache::CacheError> {
//! let cache = perf_rt::cache::QueryCache::builder().build().await?;
//! let snapshot = cache.metrics().snapshot();
//! assert_eq!(snapshot.loads, 0);
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Live counters of one [`QueryCache`](super::QueryCache). Cheap to clone: every clone reads
/// the same counters, so the performance monitor can hold one.
#[derive(Clone, Debug, Default)]
pub struct CacheMetrics(Arc<Counters>);

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) memory_hits: AtomicU64,
    pub(crate) memory_misses: AtomicU64,
    pub(crate) redis_hits: AtomicU64,
    pub(crate) redis_misses: AtomicU64,
    pub(crate) loads: AtomicU64,
    pub(crate) load_errors: AtomicU64,
    pub(crate) load_nanos: AtomicU64,
    pub(crate) evictions: AtomicU64,
    pub(crate) invalidations: AtomicU64,
    pub(crate) decode_errors: AtomicU64,
    pub(crate) redis_errors: AtomicU64,
    pub(crate) redis_outages: AtomicU64,
    pub(crate) redis_reconnects: AtomicU64,
    pub(crate) memory_flushes: AtomicU64,
    pub(crate) redis_refusals: AtomicU64,
    pub(crate) unconfirmed_invalidations: AtomicU64,
    pub(crate) shared_outcomes: AtomicU64,
}

/// A point-in-time copy of the counters of a [`CacheMetrics`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct MetricsSnapshot {
    /// Reads answered by the in-memory tier.
    pub memory_hits: u64,
    /// Reads the in-memory tier could not answer (absent, expired, invalidated, other
    /// type, tier off): once per read, however many times the read looked.
    pub memory_misses: u64,
    /// Reads answered by the Redis tier (each one first missed the memory tier).
    pub redis_hits: u64,
    /// Reads the Redis tier could not answer (absent or undecodable). A read that did not
    /// ask Redis (none configured, unreachable, answered by another caller's load) is
    /// neither a Redis hit nor a Redis miss.
    pub redis_misses: u64,
    /// Loader runs (successful or not).
    pub loads: u64,
    /// Loader runs that returned an error (never cached).
    pub load_errors: u64,
    /// Total time spent in loaders.
    pub load_time: Duration,
    /// Entries the in-memory tier dropped because of size or expiry.
    pub evictions: u64,
    /// Invalidations applied to this instance (keys, tags, clears; local or received).
    pub invalidations: u64,
    /// Values that failed to decode (stale format, other type, corruption): served as misses.
    pub decode_errors: u64,
    /// Redis calls that failed or timed out.
    pub redis_errors: u64,
    /// Times Redis went from reachable to unreachable.
    pub redis_outages: u64,
    /// Times Redis came back (each flushes the in-memory tier).
    pub redis_reconnects: u64,
    /// Times the in-memory tier was flushed because invalidations may have been missed.
    pub memory_flushes: u64,
    /// Redis commands the server refused (`OOM`, `READONLY`, …): not outages.
    pub redis_refusals: u64,
    /// Invalidations that not every listening instance confirmed within the timeout.
    pub unconfirmed_invalidations: u64,
    /// Callers answered by another caller's load of the same key (value or error).
    pub shared_outcomes: u64,
}

impl CacheMetrics {
    pub(crate) fn counters(&self) -> &Counters {
        &self.0
    }

    /// Copies the counters.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let c = &self.0;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        MetricsSnapshot {
            memory_hits: get(&c.memory_hits),
            memory_misses: get(&c.memory_misses),
            redis_hits: get(&c.redis_hits),
            redis_misses: get(&c.redis_misses),
            loads: get(&c.loads),
            load_errors: get(&c.load_errors),
            load_time: Duration::from_nanos(get(&c.load_nanos)),
            evictions: get(&c.evictions),
            invalidations: get(&c.invalidations),
            decode_errors: get(&c.decode_errors),
            redis_errors: get(&c.redis_errors),
            redis_outages: get(&c.redis_outages),
            redis_reconnects: get(&c.redis_reconnects),
            memory_flushes: get(&c.memory_flushes),
            redis_refusals: get(&c.redis_refusals),
            unconfirmed_invalidations: get(&c.unconfirmed_invalidations),
            shared_outcomes: get(&c.shared_outcomes),
        }
    }
}

/// `hits / (hits + misses)`, 0 before the first read.
fn ratio(hits: u64, misses: u64) -> f64 {
    match hits + misses {
        0 => 0.0,
        reads => hits as f64 / reads as f64,
    }
}

impl MetricsSnapshot {
    /// Reads: every `get`, `get_or_load` (and the macro's calls) counts once.
    pub fn reads(&self) -> u64 {
        self.memory_hits + self.memory_misses
    }

    /// Reads answered by either tier.
    pub fn hits(&self) -> u64 {
        self.memory_hits + self.redis_hits
    }

    /// Reads neither tier answered: loaded, or answered by another caller's load of the
    /// same key. `hits() + misses() == reads()`.
    pub fn misses(&self) -> u64 {
        self.memory_misses.saturating_sub(self.redis_hits)
    }

    /// Share of reads answered by either tier, in `0.0..=1.0` (0 when nothing was read):
    /// the cache's hit rate.
    pub fn hit_ratio(&self) -> f64 {
        ratio(self.hits(), self.misses())
    }

    /// Share of reads the memory tier answered.
    pub fn memory_hit_ratio(&self) -> f64 {
        ratio(self.memory_hits, self.memory_misses)
    }

    /// Share of the reads that asked Redis that it answered.
    pub fn redis_hit_ratio(&self) -> f64 {
        ratio(self.redis_hits, self.redis_misses)
    }
}

pub(crate) fn incr(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}
