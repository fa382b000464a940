//! The in-memory tier: a moka cache of typed values with per-entry expiry and tag stamps.
//!
//! Tag invalidation here is by version, not by index: each tag has a shared counter, every
//! entry remembers the counter values it was stored under, and a read that finds a counter
//! moved treats the entry as gone. Invalidating a tag is one atomic increment, a hit costs one
//! atomic load per tag, and no tag → keys index has to be kept in step with moka's evictions.
//!
//! A load that overlaps an invalidation must not store what it loaded: `seq` is bumped before
//! every invalidation, a load records it first, and [`MemoryTier::insert`] reads the tag
//! stamps *then* checks `seq`. Either the invalidation came before the check (insert skipped)
//! or its version bump comes after the stamps were read (entry born stale).

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use moka::notification::RemovalCause;

use super::metrics::{CacheMetrics, incr};

type Stamp = (Arc<AtomicU64>, u64);

/// Hashing is a visible share of a hit: foldhash's quality variant is several times faster
/// than SipHash on short keys and still seeded per process.
type Hasher = foldhash::quality::RandomState;

#[derive(Clone)]
struct Entry(Arc<EntryInner>);

struct EntryInner {
    value: Box<dyn Any + Send + Sync>,
    ttl: Duration,
    weight: u32,
    epoch: u64,
    stamps: Box<[Stamp]>,
}

struct PerEntryExpiry;

impl moka::Expiry<Arc<str>, Entry> for PerEntryExpiry {
    fn expire_after_create(&self, _: &Arc<str>, value: &Entry, _: Instant) -> Option<Duration> {
        Some(value.0.ttl)
    }

    fn expire_after_update(
        &self,
        _: &Arc<str>,
        value: &Entry,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.0.ttl)
    }
}

/// How the in-memory tier bounds its size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryCapacity {
    /// At most this many entries.
    Entries(u64),
    /// At most this many bytes, counting each entry as its key plus its serialised value.
    Bytes(u64),
    /// No in-memory tier: every read goes to Redis (or the loader).
    Disabled,
}

pub(crate) struct MemoryTier {
    cache: Option<moka::sync::Cache<Arc<str>, Entry, Hasher>>,
    weigh_bytes: bool,
    tags: RwLock<HashMap<Box<str>, Arc<AtomicU64>>>,
    epoch: AtomicU64,
    seq: AtomicU64,
    metrics: CacheMetrics,
}

impl MemoryTier {
    pub(crate) fn new(capacity: MemoryCapacity, metrics: CacheMetrics) -> Self {
        let listener_metrics = metrics.clone();
        let builder = moka::sync::Cache::builder()
            .expire_after(PerEntryExpiry)
            .eviction_listener(move |_, _, cause| {
                if matches!(cause, RemovalCause::Expired | RemovalCause::Size) {
                    incr(&listener_metrics.counters().evictions);
                }
            });
        let cache = match capacity {
            MemoryCapacity::Entries(n) => {
                Some(builder.max_capacity(n).build_with_hasher(Hasher::default()))
            }
            MemoryCapacity::Bytes(n) => Some(
                builder
                    .max_capacity(n)
                    .weigher(|_, e: &Entry| e.0.weight)
                    .build_with_hasher(Hasher::default()),
            ),
            MemoryCapacity::Disabled => None,
        };
        Self {
            cache,
            weigh_bytes: matches!(capacity, MemoryCapacity::Bytes(_)),
            tags: RwLock::default(),
            epoch: AtomicU64::new(0),
            seq: AtomicU64::new(0),
            metrics,
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.cache.is_some()
    }

    /// Whether inserts need the serialised size of the value.
    pub(crate) fn weighs_bytes(&self) -> bool {
        self.weigh_bytes
    }

    /// A fresh, unexpired, uninvalidated value of type `T` under `key`.
    pub(crate) fn get<T: Clone + 'static>(&self, key: &str) -> Option<T> {
        let cache = self.cache.as_ref()?;
        let counters = self.metrics.counters();
        let found = cache.get(key).and_then(|entry| {
            let e = &entry.0;
            let fresh = e.epoch == self.epoch.load(Ordering::Acquire)
                && e.stamps
                    .iter()
                    .all(|(state, version)| state.load(Ordering::Acquire) == *version);
            if !fresh {
                cache.invalidate(key);
                return None;
            }
            e.value.downcast_ref::<T>().cloned()
        });
        incr(if found.is_some() {
            &counters.memory_hits
        } else {
            &counters.memory_misses
        });
        found
    }

    /// The invalidation sequence number: record it before reading the source of a value,
    /// pass it to [`Self::insert`].
    pub(crate) fn seq(&self) -> u64 {
        self.seq.load(Ordering::SeqCst)
    }

    fn tag_state(&self, tag: &str) -> Arc<AtomicU64> {
        if let Some(state) = self.tags.read().unwrap_or_else(|e| e.into_inner()).get(tag) {
            return state.clone();
        }
        let mut tags = self.tags.write().unwrap_or_else(|e| e.into_inner());
        tags.entry(tag.into()).or_default().clone()
    }

    /// Stores `value` unless an invalidation happened since `seq_before` was read.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn insert<T: Send + Sync + 'static>(
        &self,
        key: &str,
        value: T,
        ttl: Duration,
        tags: &[&str],
        more_tags: &[String],
        weight: u32,
        seq_before: u64,
    ) -> bool {
        let Some(cache) = &self.cache else {
            return false;
        };
        let epoch = self.epoch.load(Ordering::SeqCst);
        let stamps: Box<[Stamp]> = tags
            .iter()
            .copied()
            .chain(more_tags.iter().map(String::as_str))
            .map(|tag| {
                let state = self.tag_state(tag);
                let version = state.load(Ordering::SeqCst);
                (state, version)
            })
            .collect();
        if self.seq.load(Ordering::SeqCst) != seq_before {
            return false;
        }
        let entry = Entry(Arc::new(EntryInner {
            value: Box::new(value),
            ttl,
            weight: weight.saturating_add(u32::try_from(key.len()).unwrap_or(u32::MAX)),
            epoch,
            stamps,
        }));
        cache.insert(Arc::from(key), entry);
        true
    }

    pub(crate) fn invalidate(&self, key: &str) {
        self.seq.fetch_add(1, Ordering::SeqCst);
        incr(&self.metrics.counters().invalidations);
        if let Some(cache) = &self.cache {
            cache.invalidate(key);
        }
    }

    pub(crate) fn invalidate_tag(&self, tag: &str) {
        self.seq.fetch_add(1, Ordering::SeqCst);
        incr(&self.metrics.counters().invalidations);
        self.tag_state(tag).fetch_add(1, Ordering::SeqCst);
    }

    /// Drops every entry (and, through the epoch, every entry a concurrent load is about to
    /// store).
    pub(crate) fn clear(&self) {
        self.seq.fetch_add(1, Ordering::SeqCst);
        self.epoch.fetch_add(1, Ordering::SeqCst);
        if let Some(cache) = &self.cache {
            cache.invalidate_all();
        }
    }

    /// [`Self::clear`] because invalidations may have been missed (Redis reconnect).
    #[cfg_attr(not(feature = "cache-redis"), allow(dead_code))]
    pub(crate) fn flush(&self) {
        incr(&self.metrics.counters().memory_flushes);
        self.clear();
    }

    #[cfg(test)]
    pub(crate) fn entry_count(&self) -> u64 {
        self.cache.as_ref().map_or(0, |c| {
            c.run_pending_tasks();
            c.entry_count()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tier() -> MemoryTier {
        MemoryTier::new(MemoryCapacity::Entries(100), CacheMetrics::default())
    }

    #[test]
    fn tag_invalidation_hides_entries() {
        let m = tier();
        let seq = m.seq();
        assert!(m.insert("a", 1u32, Duration::from_secs(60), &["posts"], &[], 1, seq));
        assert!(m.insert("b", 2u32, Duration::from_secs(60), &["users"], &[], 1, seq));
        assert_eq!(m.get::<u32>("a"), Some(1));
        m.invalidate_tag("posts");
        assert_eq!(m.get::<u32>("a"), None);
        assert_eq!(m.get::<u32>("b"), Some(2));
        assert_eq!(m.entry_count(), 1);
    }

    #[test]
    fn overlapping_invalidation_skips_insert() {
        let m = tier();
        let seq = m.seq();
        m.invalidate_tag("posts");
        assert!(!m.insert("a", 1u32, Duration::from_secs(60), &["posts"], &[], 1, seq));
        assert_eq!(m.get::<u32>("a"), None);
    }

    #[test]
    fn other_type_is_a_miss() {
        let m = tier();
        m.insert("a", 1u32, Duration::from_secs(60), &[], &[], 1, m.seq());
        assert_eq!(m.get::<String>("a"), None);
        assert_eq!(m.get::<u32>("a"), Some(1));
    }

    #[test]
    fn clear_drops_everything() {
        let m = tier();
        m.insert("a", 1u32, Duration::from_secs(60), &[], &[], 1, m.seq());
        m.clear();
        assert_eq!(m.get::<u32>("a"), None);
    }
}
