//! The in-memory tier: a moka cache of typed values with per-entry expiry and stamps.
//!
//! Invalidation here is by version, not by index: each tag has a shared counter, each key
//! hashes to one of [`KEY_SLOTS`] counters, and `clear` bumps an epoch. Every entry
//! remembers the counter values it was loaded under, and a read that finds one moved treats
//! the entry as gone. Invalidating is one atomic increment, a hit costs one atomic load per
//! stamp, and no tag → keys index has to be kept in step with moka's evictions.
//!
//! A load takes a [`Snapshot`] of the counters of its key and tags *before* it reads its
//! source, and the entry is stored with that snapshot's values. An invalidation that lands
//! while the load runs therefore leaves the entry born stale: no check-then-insert window,
//! and an invalidation only affects the loads of its own key or tag.
//!
//! Hot keys are answered by a small direct-mapped table in front of moka ([`FRONT_SLOTS`]
//! slots, each holding one of moka's own entries): a hit there is a hash, a read lock and
//! the same freshness checks, without moka's concurrent map and access bookkeeping. A key
//! enters the front when moka answers a read of it (so only what moka admitted), one front
//! hit in [`TOUCH_EVERY`] per thread still reads moka, so that its eviction policy sees the
//! key as used, and an entry moka evicts leaves the front with it: the tier's size bound
//! is moka's.
//!
//! The tier can be distrusted (see [`MemoryTier::set_trusted`]): while the invalidation
//! channel of a shared cache is down, this instance cannot hear the other instances'
//! writes, so reads skip the memory tier instead of serving what may be stale.

use std::any::Any;
use std::cell::Cell;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use moka::notification::RemovalCause;

use super::metrics::{CacheMetrics, incr};

/// Counters keys hash onto. Two keys sharing a slot only cost each other a reload when
/// one of them is invalidated.
const KEY_SLOTS: usize = 1024;

/// Hashing is a visible share of a hit: foldhash's quality variant is several times faster
/// than SipHash on short keys and still seeded per process.
type Hasher = foldhash::quality::RandomState;

type TagState = Arc<AtomicU64>;

/// Slots of the hot-key front (a power of two).
const FRONT_SLOTS: usize = 256;

/// One front hit in this many (per thread) also reads moka, to keep the key hot there.
const TOUCH_EVERY: u32 = 32;

/// A front slot on a cache line of its own: two threads reading two hot keys do not make
/// each other's lock word bounce between cores.
#[repr(align(64))]
#[derive(Default)]
struct FrontSlot(RwLock<Option<Entry>>);

thread_local! {
    static FRONT_HITS: Cell<u32> = const { Cell::new(0) };
}

#[derive(Clone)]
struct Entry(Arc<EntryInner>);

struct EntryInner {
    key: Arc<str>,
    hash: u64,
    value: Box<dyn Any + Send + Sync>,
    ttl: Duration,
    /// On [`coarse_now`]'s clock.
    expires: u64,
    weight: u32,
    epoch: u64,
    key_slot: usize,
    key_version: u64,
    stamps: Box<[(TagState, u64)]>,
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

/// The invalidation counters of one key and its tags, read before a load.
#[derive(Clone)]
pub(crate) struct Snapshot {
    epoch: u64,
    any: u64,
    key_slot: usize,
    key_version: u64,
    tags: Vec<(Box<str>, TagState, u64)>,
}

pub(crate) struct MemoryTier {
    cache: Option<moka::sync::Cache<Arc<str>, Entry, Hasher>>,
    front: Arc<[FrontSlot]>,
    hasher: Hasher,
    weigh_bytes: bool,
    tags: RwLock<HashMap<Box<str>, TagState>>,
    keys: Box<[AtomicU64]>,
    epoch: AtomicU64,
    /// Bumped by every invalidation (before the counter it concerns): lets an insert carry
    /// tags it did not snapshot, when nothing was invalidated since the snapshot.
    any: AtomicU64,
    trusted: AtomicBool,
    metrics: CacheMetrics,
}

impl MemoryTier {
    pub(crate) fn new(capacity: MemoryCapacity, metrics: CacheMetrics) -> Self {
        let listener_metrics = metrics.clone();
        let front: Arc<[FrontSlot]> = (0..FRONT_SLOTS).map(|_| FrontSlot::default()).collect();
        let listener_front = front.clone();
        let builder = moka::sync::Cache::builder()
            .expire_after(PerEntryExpiry)
            .eviction_listener(move |_, entry: Entry, cause| {
                if matches!(cause, RemovalCause::Expired | RemovalCause::Size) {
                    incr(&listener_metrics.counters().evictions);
                    // Out of moka, out of the front: the size bound stays moka's.
                    let slot = &listener_front[front_index(entry.0.hash)];
                    let mut held = slot.0.write().unwrap_or_else(|e| e.into_inner());
                    if held.as_ref().is_some_and(|h| Arc::ptr_eq(&h.0, &entry.0)) {
                        *held = None;
                    }
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
            front,
            hasher: Hasher::default(),
            weigh_bytes: matches!(capacity, MemoryCapacity::Bytes(_)),
            tags: RwLock::default(),
            keys: (0..KEY_SLOTS).map(|_| AtomicU64::new(0)).collect(),
            epoch: AtomicU64::new(0),
            any: AtomicU64::new(0),
            trusted: AtomicBool::new(true),
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

    /// Whether reads may be answered from memory (see the module docs).
    pub(crate) fn trusted(&self) -> bool {
        self.trusted.load(Ordering::Acquire)
    }

    /// Trusts or distrusts the tier. Either way its content is dropped: what was loaded
    /// before may have been invalidated unheard.
    pub(crate) fn set_trusted(&self, trusted: bool) {
        if self.trusted.swap(trusted, Ordering::AcqRel) != trusted || trusted {
            self.flush();
        }
    }

    fn key_slot(&self, key: &str) -> usize {
        key_slot(self.hasher.hash_one(key))
    }

    /// Whether nothing `e` was stored under has been invalidated since.
    fn fresh(&self, e: &EntryInner) -> bool {
        e.epoch == self.epoch.load(Ordering::Acquire)
            && self.keys[e.key_slot].load(Ordering::Acquire) == e.key_version
            && e.stamps
                .iter()
                .all(|(state, version)| state.load(Ordering::Acquire) == *version)
    }

    /// A fresh, unexpired, uninvalidated value of type `T` under `key`.
    pub(crate) fn get<T: Clone + 'static>(&self, key: &str) -> Option<T> {
        let cache = self.cache.as_ref()?;
        if !self.trusted() {
            return None;
        }
        let hash = self.hasher.hash_one(key);
        let slot = &self.front[front_index(hash)];
        let front = {
            let held = slot.0.read().unwrap_or_else(|e| e.into_inner());
            match held.as_ref() {
                Some(Entry(e)) if e.hash == hash && *e.key == *key => {
                    if self.fresh(e) && coarse_now() < e.expires {
                        e.value.downcast_ref::<T>().cloned()
                    } else {
                        None
                    }
                }
                _ => None,
            }
        };
        if let Some(v) = front {
            let n = FRONT_HITS.get().wrapping_add(1);
            FRONT_HITS.set(n);
            if n.is_multiple_of(TOUCH_EVERY) {
                // Seen by moka's eviction policy; the value is not needed.
                drop(cache.get(key));
            }
            incr(&self.metrics.counters().memory_hits);
            return Some(v);
        }
        let found = cache.get(key).and_then(|entry| {
            if !self.fresh(&entry.0) {
                let mut held = slot.0.write().unwrap_or_else(|e| e.into_inner());
                if held.as_ref().is_some_and(|h| Arc::ptr_eq(&h.0, &entry.0)) {
                    *held = None;
                }
                drop(held);
                cache.invalidate(key);
                return None;
            }
            let value = entry.0.value.downcast_ref::<T>().cloned();
            if value.is_some() {
                *slot.0.write().unwrap_or_else(|e| e.into_inner()) = Some(entry);
            }
            value
        });
        // A read may look here twice (again once it leads the load), so misses are
        // counted by the cache, once per read; a hit ends the read.
        if found.is_some() {
            incr(&self.metrics.counters().memory_hits);
        }
        found
    }

    fn tag_state(&self, tag: &str) -> TagState {
        if let Some(state) = self.tags.read().unwrap_or_else(|e| e.into_inner()).get(tag) {
            return state.clone();
        }
        let mut tags = self.tags.write().unwrap_or_else(|e| e.into_inner());
        tags.entry(tag.into()).or_default().clone()
    }

    /// The counters a load of `key` with `tags` depends on: take it before reading the
    /// value's source.
    pub(crate) fn snapshot(&self, key: &str, tags: &[&str]) -> Snapshot {
        let any = self.any.load(Ordering::SeqCst);
        let epoch = self.epoch.load(Ordering::SeqCst);
        let key_slot = self.key_slot(key);
        let key_version = self.keys[key_slot].load(Ordering::SeqCst);
        let tags = tags
            .iter()
            .map(|tag| {
                let state = self.tag_state(tag);
                let version = state.load(Ordering::SeqCst);
                (Box::from(*tag), state, version)
            })
            .collect();
        Snapshot {
            epoch,
            any,
            key_slot,
            key_version,
            tags,
        }
    }

    /// Whether nothing the snapshot depends on was invalidated since it was taken. Never
    /// while the tier is distrusted: invalidations may then go unheard, so no load (and no
    /// flight another caller could join) is known to be current.
    pub(crate) fn is_current(&self, s: &Snapshot) -> bool {
        self.trusted()
            && s.epoch == self.epoch.load(Ordering::SeqCst)
            && s.key_version == self.keys[s.key_slot].load(Ordering::SeqCst)
            && s.tags
                .iter()
                .all(|(_, state, v)| state.load(Ordering::SeqCst) == *v)
    }

    /// Stores `value` under `key` with the stamps of `snapshot`, plus those of `tags` it
    /// lacks (a value from Redis carries its own tags). Skipped when the snapshot is no
    /// longer current (the entry would be born stale anyway).
    pub(crate) fn insert<T: Send + Sync + 'static>(
        &self,
        key: &str,
        value: T,
        ttl: Duration,
        tags: &[&str],
        weight: u32,
        snapshot: &Snapshot,
    ) -> bool {
        let Some(cache) = &self.cache else {
            return false;
        };
        let mut stamps: Vec<(TagState, u64)> = snapshot
            .tags
            .iter()
            .map(|(_, state, v)| (state.clone(), *v))
            .collect();
        let mut extra = false;
        for tag in tags {
            if !snapshot.tags.iter().any(|(t, ..)| &**t == *tag) {
                let state = self.tag_state(tag);
                let version = state.load(Ordering::SeqCst);
                stamps.push((state, version));
                extra = true;
            }
        }
        // Tags read only now are right only if nothing was invalidated since the snapshot
        // (every invalidation bumps `any` before its own counter).
        if extra && self.any.load(Ordering::SeqCst) != snapshot.any {
            return false;
        }
        if !self.is_current(snapshot) {
            return false;
        }
        let key: Arc<str> = Arc::from(key);
        let hash = self.hasher.hash_one(&*key);
        let entry = Entry(Arc::new(EntryInner {
            key: key.clone(),
            hash,
            value: Box::new(value),
            ttl,
            expires: coarse_now().saturating_add(u64::try_from(ttl.as_nanos()).unwrap_or(u64::MAX)),
            weight: weight.saturating_add(u32::try_from(key.len()).unwrap_or(u32::MAX)),
            epoch: snapshot.epoch,
            key_slot: snapshot.key_slot,
            key_version: snapshot.key_version,
            stamps: stamps.into_boxed_slice(),
        }));
        // Not in the front yet: a key enters it when moka answers a read of it, so the
        // front holds what moka has admitted (and drops it when moka evicts it).
        cache.insert(key, entry);
        true
    }

    pub(crate) fn invalidate(&self, key: &str) {
        self.any.fetch_add(1, Ordering::SeqCst);
        let hash = self.hasher.hash_one(key);
        self.keys[key_slot(hash)].fetch_add(1, Ordering::SeqCst);
        if let Some(cache) = &self.cache {
            let mut held = self.front[front_index(hash)]
                .0
                .write()
                .unwrap_or_else(|e| e.into_inner());
            if held.as_ref().is_some_and(|e| *e.0.key == *key) {
                *held = None;
            }
            drop(held);
            cache.invalidate(key);
        }
    }

    /// Invalidates a tag. A tag this instance never loaded under has no counter and needs
    /// none: a load that creates it afterwards reads its source after this call.
    pub(crate) fn invalidate_tag(&self, tag: &str) {
        self.any.fetch_add(1, Ordering::SeqCst);
        let state = self
            .tags
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(tag)
            .cloned();
        if let Some(state) = state {
            state.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Counts one invalidation applied to this instance (a local call or a message).
    pub(crate) fn count_invalidation(&self) {
        incr(&self.metrics.counters().invalidations);
    }

    /// Drops every entry (and, through the epoch, every entry a concurrent load is about to
    /// store).
    pub(crate) fn clear(&self) {
        self.any.fetch_add(1, Ordering::SeqCst);
        self.epoch.fetch_add(1, Ordering::SeqCst);
        if let Some(cache) = &self.cache {
            for slot in self.front.iter() {
                *slot.0.write().unwrap_or_else(|e| e.into_inner()) = None;
            }
            cache.invalidate_all();
        }
    }

    /// [`Self::clear`] because invalidations may have been missed (Redis reconnect).
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

    #[cfg(test)]
    fn front_count(&self) -> usize {
        self.front
            .iter()
            .filter(|s| s.0.read().unwrap().is_some())
            .count()
    }
}

/// Monotonic nanoseconds for the front's expiry check, read where it is cheap: Linux's
/// coarse clock (vDSO, no TSC read) costs a fraction of `Instant::now`, at the price of
/// a resolution of one scheduler tick (1-10 ms): an entry may be served up to one tick
/// past its expiry. Elsewhere, `Instant`.
fn coarse_now() -> u64 {
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::MonotonicCoarse);
        (t.tv_sec as u64)
            .saturating_mul(1_000_000_000)
            .saturating_add(t.tv_nsec as u64)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    {
        static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        u64::try_from(START.get_or_init(Instant::now).elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// The invalidation counter of a key, from its hash.
fn key_slot(hash: u64) -> usize {
    (hash as usize) % KEY_SLOTS
}

/// The front slot of a key, from its hash (the high bits: the low ones pick `key_slot`).
fn front_index(hash: u64) -> usize {
    (hash >> 48) as usize % FRONT_SLOTS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tier() -> MemoryTier {
        MemoryTier::new(MemoryCapacity::Entries(100), CacheMetrics::default())
    }

    fn put(m: &MemoryTier, key: &str, v: u32, tags: &[&str]) -> bool {
        let s = m.snapshot(key, tags);
        m.insert(key, v, Duration::from_secs(60), tags, 1, &s)
    }

    #[test]
    fn tag_invalidation_hides_entries() {
        let m = tier();
        assert!(put(&m, "a", 1, &["posts"]));
        assert!(put(&m, "b", 2, &["users"]));
        assert_eq!(m.get::<u32>("a"), Some(1));
        m.invalidate_tag("posts");
        assert_eq!(m.get::<u32>("a"), None);
        assert_eq!(m.get::<u32>("b"), Some(2));
        assert_eq!(m.entry_count(), 1);
    }

    #[test]
    fn an_invalidation_during_a_load_leaves_only_that_load_stale() {
        let m = tier();
        let posts = m.snapshot("a", &["posts"]);
        let users = m.snapshot("b", &["users"]);
        let key = m.snapshot("c", &[]);
        m.invalidate_tag("posts");
        m.invalidate("zzz");
        assert!(!m.insert("a", 1u32, Duration::from_secs(60), &["posts"], 1, &posts));
        assert_eq!(m.get::<u32>("a"), None);
        // Scoped: the other tag's load, and another key's, still store.
        assert!(m.insert("b", 2u32, Duration::from_secs(60), &["users"], 1, &users));
        assert!(m.insert("c", 3u32, Duration::from_secs(60), &[], 1, &key));
        assert_eq!(m.get::<u32>("b"), Some(2));
    }

    #[test]
    fn a_key_invalidation_between_snapshot_and_insert_is_not_lost() {
        let m = tier();
        let s = m.snapshot("k", &[]);
        m.invalidate("k");
        // Stored or not, it must never be served.
        m.insert("k", 1u32, Duration::from_secs(60), &[], 1, &s);
        assert_eq!(m.get::<u32>("k"), None);
    }

    #[test]
    fn unsnapshotted_tags_need_a_quiet_interval() {
        let m = tier();
        let s = m.snapshot("a", &[]);
        assert!(m.insert("a", 1u32, Duration::from_secs(60), &["from-redis"], 1, &s));
        let s = m.snapshot("b", &[]);
        m.invalidate_tag("unrelated");
        assert!(!m.insert("b", 1u32, Duration::from_secs(60), &["from-redis"], 1, &s));
        m.invalidate_tag("from-redis");
        assert_eq!(m.get::<u32>("a"), None);
    }

    #[test]
    fn other_type_is_a_miss() {
        let m = tier();
        put(&m, "a", 1, &[]);
        assert_eq!(m.get::<String>("a"), None);
        assert_eq!(m.get::<u32>("a"), Some(1));
    }

    #[test]
    fn clear_and_distrust_drop_everything() {
        let m = tier();
        put(&m, "a", 1, &[]);
        m.clear();
        assert_eq!(m.get::<u32>("a"), None);
        put(&m, "a", 1, &[]);
        m.set_trusted(false);
        assert_eq!(m.get::<u32>("a"), None);
        m.set_trusted(true);
        assert_eq!(m.get::<u32>("a"), None, "flushed when trusted again");
        put(&m, "a", 1, &[]);
        assert_eq!(m.get::<u32>("a"), Some(1));
    }

    #[test]
    fn the_front_honours_expiry() {
        let m = tier();
        let s = m.snapshot("short", &[]);
        assert!(m.insert("short", 1u32, Duration::from_millis(40), &[], 1, &s));
        assert_eq!(m.get::<u32>("short"), Some(1), "answered by moka");
        assert_eq!(m.get::<u32>("short"), Some(1), "answered by the front");
        assert_eq!(m.front_count(), 1);
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(m.get::<u32>("short"), None);
    }

    #[test]
    fn what_moka_evicts_leaves_the_front() {
        let m = MemoryTier::new(MemoryCapacity::Entries(8), CacheMetrics::default());
        for i in 0..500u32 {
            let key = format!("k{i}");
            let s = m.snapshot(&key, &[]);
            m.insert(&key, i, Duration::from_secs(60), &[], 1, &s);
            assert_eq!(m.get::<u32>(&key), Some(i));
        }
        let in_moka = m.entry_count();
        assert!(in_moka <= 8, "{in_moka}");
        let in_front = m.front_count();
        assert!(
            in_front as u64 <= in_moka,
            "front {in_front} entries, moka {in_moka}"
        );
    }

    #[test]
    fn a_stale_front_entry_is_dropped_and_never_served() {
        let m = tier();
        put(&m, "a", 1, &["posts"]);
        assert_eq!(m.get::<u32>("a"), Some(1));
        assert_eq!(m.front_count(), 1);
        m.invalidate_tag("posts");
        assert_eq!(m.get::<u32>("a"), None);
        assert_eq!(m.front_count(), 0);
        put(&m, "b", 2, &[]);
        assert_eq!(m.get::<u32>("b"), Some(2));
        assert_eq!(m.front_count(), 1);
        m.invalidate("b");
        assert_eq!(m.front_count(), 0);
        assert_eq!(m.get::<u32>("b"), None);
    }
}
