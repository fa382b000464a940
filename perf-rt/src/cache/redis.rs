//! The Redis tier: shared by every instance, fault tolerant, never serving invalidated tags.
//!
//! Layout under the namespace `ns` (see [`QueryCacheBuilder::namespace`](super::QueryCacheBuilder::namespace)):
//!
//! | key | holds |
//! | --- | --- |
//! | `ns:k:<key>` | the value: a line naming the version counters it was stored under, then the envelope |
//! | `ns:v:<tag>`, `ns:ks:<slot>`, `ns:g` | version counters: of a tag, of a slot of keys, of `clear()` |
//! | `ns:t:<tag>` | set of the value keys stored under the tag (for reclaiming them early) |
//! | `ns:inv`, `ns:ack` (channels) | invalidations for the other instances' memory tiers, and their receipts |
//!
//! Reads are one script: `GET`, then compare the versions the value names with the current
//! ones; a value of an invalidated tag (or stored before a `clear`) is a miss. Invalidating
//! a tag is therefore one `INCR` (with the set renamed away and its members deleted later,
//! in batches, by a background task): O(1) on the server whatever the size of the set.
//! A load reads the versions of its key slot and tags before running, and the value is
//! stored by a script that compares them and gives up if any moved. Together: once an
//! invalidation has returned, no read through any instance finds a value loaded before it.
//!
//! Every invalidation is published with an id; each instance applies it to its memory tier
//! and answers on `ns:ack`, and the publisher waits for as many receipts as `PUBLISH`
//! counted receivers (bounded by the acknowledgement timeout). That is what lets a write
//! handler promise that the *next* read through *any* instance is fresh.
//!
//! The invalidation scripts carry `allow-oom` (Redis 7 or later): a full Redis still
//! takes invalidations, while stores are refused.
//!
//! Faults are of two kinds. *Unreachable* (I/O error, timeout, dropped connection): the
//! tier is marked down, one warning is logged, reads skip Redis, invalidations are queued,
//! and a background task (which no request can cancel) probes Redis every retry interval,
//! replays the queue and only then marks it up. *Refused* (the server answered with an
//! error: `OOM`, `READONLY`, `BUSY`…): Redis is up, nothing is flushed; the read is a miss,
//! the store is skipped, and a refused invalidation is still published (so the other
//! memory tiers drop the entries), queued for replay, and Redis reads are suspended until
//! the replay succeeds.

use std::collections::{HashMap, HashSet};
use std::fmt::Display;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Script};

use super::metrics::{CacheMetrics, incr};

#[path = "redis_scripts.rs"]
mod scripts;

use scripts::{CLEAR, INSERT, INVALIDATE_KEY, INVALIDATE_TAG, READ};

/// Most invalidations kept while Redis is down; past it the whole namespace is cleared on
/// reconnect.
const MAX_PENDING: usize = 10_000;

/// Slots of the per-key version counters (`ns:ks:<slot>`).
const KEY_SLOTS: u32 = 1024;

#[derive(Default)]
struct Pending {
    clear: bool,
    tags: HashSet<String>,
    keys: HashSet<String>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        !self.clear && self.tags.is_empty() && self.keys.is_empty()
    }
}

/// One invalidation, as queued and replayed.
#[derive(Clone, Copy)]
pub(crate) enum Invalidation<'a> {
    Key(&'a str),
    Tag(&'a str),
    Clear,
}

impl<'a> Invalidation<'a> {
    /// [`RedisTier::invalidate`] as a boxed future (for a spawned task).
    pub(crate) fn apply_on(self, tier: &'a RedisTier) -> futures_util::future::BoxFuture<'a, ()> {
        Box::pin(tier.invalidate(self))
    }
}

/// Result of a read.
pub(crate) enum Lookup {
    /// The envelope, and the entry's remaining time to live in Redis.
    Hit(Vec<u8>, Option<Duration>),
    /// Absent, stale, or (`true`) not written by this cache.
    Miss(bool),
    Unavailable,
}

/// Why a call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// No answer: I/O error, timeout, connection dropped.
    Unreachable,
    /// The server answered with an error (`OOM`, `READONLY`, `BUSY`, a script error…).
    Refused,
}

fn classify(e: &RedisError) -> Fault {
    if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal() {
        Fault::Unreachable
    } else {
        Fault::Refused
    }
}

pub(crate) struct RedisSettings {
    pub(crate) namespace: String,
    pub(crate) timeout: Duration,
    pub(crate) retry_interval: Duration,
    pub(crate) liveness_interval: Duration,
    pub(crate) ack_timeout: Duration,
    pub(crate) max_tag_set: u64,
    pub(crate) instance: String,
}

/// The registration of one invalidation's receipts, removed when dropped.
struct Receipts<'a> {
    tier: &'a RedisTier,
    id: u64,
    wait: Arc<AckWait>,
}

impl Drop for Receipts<'_> {
    fn drop(&mut self) {
        self.tier
            .acks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

/// Receipts counted for one published invalidation.
#[derive(Default)]
struct AckWait {
    count: AtomicUsize,
    notify: tokio::sync::Notify,
}

pub(crate) struct RedisTier {
    pub(crate) client: redis::Client,
    conn: OnceLock<ConnectionManager>,
    pub(crate) settings: RedisSettings,
    down: AtomicBool,
    down_since: Mutex<Option<Instant>>,
    /// Redis reads and stores are skipped while refused invalidations wait for replay.
    suspended: AtomicBool,
    warned: AtomicBool,
    warned_refusal: AtomicBool,
    ever_up: AtomicBool,
    pending: Mutex<Pending>,
    garbage: Mutex<Vec<String>>,
    kick: tokio::sync::Notify,
    acks: Mutex<HashMap<u64, Arc<AckWait>>>,
    next_id: AtomicU64,
    metrics: CacheMetrics,
    read: Script,
    insert: Script,
    invalidate_tag: Script,
    invalidate_key: Script,
    clear: Script,
}

impl RedisTier {
    pub(crate) fn new(
        client: redis::Client,
        settings: RedisSettings,
        metrics: CacheMetrics,
    ) -> Self {
        Self {
            client,
            conn: OnceLock::new(),
            settings,
            down: AtomicBool::new(true),
            // Never up yet: the lease runs from the start.
            down_since: Mutex::new(Some(Instant::now())),
            suspended: AtomicBool::new(false),
            warned: AtomicBool::new(false),
            warned_refusal: AtomicBool::new(false),
            ever_up: AtomicBool::new(false),
            pending: Mutex::default(),
            garbage: Mutex::default(),
            kick: tokio::sync::Notify::new(),
            acks: Mutex::default(),
            next_id: AtomicU64::new(1),
            metrics,
            read: Script::new(READ),
            insert: Script::new(INSERT),
            invalidate_tag: Script::new(INVALIDATE_TAG),
            invalidate_key: Script::new(INVALIDATE_KEY),
            clear: Script::new(CLEAR),
        }
    }

    pub(crate) fn channel(&self) -> String {
        format!("{}:inv", self.settings.namespace)
    }

    pub(crate) fn ack_channel(&self) -> String {
        format!("{}:ack", self.settings.namespace)
    }

    pub(crate) fn value_key(&self, key: &str) -> String {
        let ns = &self.settings.namespace;
        let mut k = String::with_capacity(ns.len() + 3 + key.len());
        k.push_str(ns);
        k.push_str(":k:");
        k.push_str(key);
        k
    }

    /// The key's version counter: a slot chosen by a hash that is the same in every process.
    fn slot_key(&self, key: &str) -> String {
        let mut hash: u32 = 0x811c_9dc5;
        for byte in key.bytes() {
            hash = (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193);
        }
        format!("{}:ks:{}", self.settings.namespace, hash % KEY_SLOTS)
    }

    /// Whether the tier is currently considered reachable.
    pub(crate) fn is_up(&self) -> bool {
        !self.down.load(Ordering::Acquire)
    }

    fn usable(&self) -> bool {
        self.is_up() && !self.suspended.load(Ordering::Acquire)
    }

    fn fail(&self, what: &str, err: &dyn Display) {
        incr(&self.metrics.counters().redis_errors);
        if !self.down.swap(true, Ordering::AcqRel) {
            *self.down_since.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        }
        self.kick.notify_one();
        if !self.warned.swap(true, Ordering::AcqRel) {
            incr(&self.metrics.counters().redis_outages);
            tracing::warn!(
                error = %err,
                operation = what,
                "query cache: Redis unreachable; serving from the loaders until it returns"
            );
        }
    }

    fn refused(&self, what: &str, err: &RedisError) {
        incr(&self.metrics.counters().redis_refusals);
        if !self.warned_refusal.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                error = %err,
                operation = what,
                "query cache: Redis refused a command (not an outage: nothing is flushed)"
            );
        } else {
            tracing::debug!(error = %err, operation = what, "query cache: Redis refused");
        }
    }

    /// Runs one Redis call under the timeout, classifying a failure.
    async fn call<T>(
        &self,
        what: &str,
        fut: impl Future<Output = Result<T, RedisError>>,
    ) -> Result<T, Fault> {
        match tokio::time::timeout(self.settings.timeout, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => match classify(&e) {
                Fault::Unreachable => {
                    self.fail(what, &e);
                    Err(Fault::Unreachable)
                }
                Fault::Refused => {
                    self.refused(what, &e);
                    Err(Fault::Refused)
                }
            },
            Err(_) => {
                self.fail(what, &"timed out");
                Err(Fault::Unreachable)
            }
        }
    }

    /// The connection, while the tier is up.
    fn connection(&self) -> Option<ConnectionManager> {
        if self.is_up() {
            self.conn.get().cloned()
        } else {
            None
        }
    }

    /// Connects (the first time) and pings.
    async fn probe(&self) -> Option<ConnectionManager> {
        let conn = match self.conn.get() {
            Some(c) => c.clone(),
            None => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.settings.timeout))
                    .set_response_timeout(Some(self.settings.timeout))
                    .set_number_of_retries(1)
                    .set_max_delay(self.settings.retry_interval);
                let connect = ConnectionManager::new_with_config(self.client.clone(), config);
                let c = self.call("connect", connect).await.ok()?;
                self.conn.get_or_init(|| c).clone()
            }
        };
        let mut probe = conn.clone();
        self.call("ping", redis::cmd("PING").query_async::<String>(&mut probe))
            .await
            .ok()?;
        Some(conn)
    }

    /// Brings the tier up: probe, replay everything queued, and only then mark it up (under
    /// the queue's lock, so that nothing queued meanwhile is left behind).
    pub(crate) async fn recover(&self) -> bool {
        let Some(conn) = self.probe().await else {
            return false;
        };
        if !self.drain(&conn).await {
            return false;
        }
        if self.ever_up.swap(true, Ordering::AcqRel) {
            incr(&self.metrics.counters().redis_reconnects);
            tracing::info!("query cache: Redis reachable again");
        } else if self.warned.load(Ordering::Acquire) {
            tracing::info!("query cache: Redis reachable");
        }
        self.warned.store(false, Ordering::Release);
        true
    }

    /// Replays the queue until it is empty, then marks the tier up and resumes reads.
    async fn drain(&self, conn: &ConnectionManager) -> bool {
        loop {
            let batch = {
                let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                if p.is_empty() {
                    self.down.store(false, Ordering::Release);
                    self.suspended.store(false, Ordering::Release);
                    return true;
                }
                std::mem::take(&mut *p)
            };
            let mut failed = Pending::default();
            if batch.clear {
                if self.apply(conn, Invalidation::Clear).await.is_err() {
                    failed = batch;
                }
            } else {
                for tag in batch.tags {
                    if self.apply(conn, Invalidation::Tag(&tag)).await.is_err() {
                        failed.tags.insert(tag);
                    }
                }
                for key in batch.keys {
                    if self.apply(conn, Invalidation::Key(&key)).await.is_err() {
                        failed.keys.insert(key);
                    }
                }
            }
            if !failed.is_empty() {
                self.queue(|p| {
                    p.clear |= failed.clear;
                    p.tags.extend(failed.tags);
                    p.keys.extend(failed.keys);
                });
                return false;
            }
        }
    }

    /// The background task: recovers the tier, replays what was queued, reclaims the
    /// members of invalidated tag sets. Spawned once; stops when the cache is dropped.
    pub(crate) async fn maintain(self: Arc<Self>) {
        loop {
            let kicked = self.kick.notified();
            tokio::pin!(kicked);
            kicked.as_mut().enable();
            let needs_work = !self.usable()
                || !self
                    .pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .is_empty();
            if needs_work {
                if self.is_up() {
                    if let Some(conn) = self.conn.get().cloned() {
                        self.drain(&conn).await;
                    }
                } else {
                    self.recover().await;
                }
            }
            self.reclaim().await;
            let wait = if self.usable() {
                Duration::from_secs(3600)
            } else {
                self.settings.retry_interval
            };
            let _ = tokio::time::timeout(wait, kicked).await;
        }
    }

    /// Deletes the members of renamed tag sets, a batch per call.
    async fn reclaim(&self) {
        loop {
            let Some(set) = self.garbage.lock().unwrap_or_else(|e| e.into_inner()).pop() else {
                return;
            };
            let Some(mut conn) = self.connection() else {
                self.garbage
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(set);
                return;
            };
            loop {
                let pop = redis::cmd("SPOP").arg(&set).arg(256).to_owned();
                let Ok(members) = self
                    .call("reclaim", pop.query_async::<Vec<String>>(&mut conn))
                    .await
                else {
                    break;
                };
                if members.is_empty() {
                    break;
                }
                let unlink = redis::cmd("UNLINK").arg(members).to_owned();
                if self
                    .call("reclaim", unlink.query_async::<i64>(&mut conn))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        }
    }

    fn queue(&self, f: impl FnOnce(&mut Pending)) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut p);
        if p.tags.len() + p.keys.len() > MAX_PENDING {
            *p = Pending {
                clear: true,
                ..Pending::default()
            };
        }
    }

    fn push(p: &mut Pending, inv: Invalidation<'_>) {
        match inv {
            Invalidation::Key(k) => {
                p.keys.insert(k.to_owned());
            }
            Invalidation::Tag(t) => {
                p.tags.insert(t.to_owned());
            }
            Invalidation::Clear => p.clear = true,
        }
        if p.tags.len() + p.keys.len() > MAX_PENDING {
            *p = Pending {
                clear: true,
                ..Pending::default()
            };
        }
    }

    pub(crate) async fn get(&self, key: &str) -> Lookup {
        if !self.usable() {
            return Lookup::Unavailable;
        }
        let Some(mut conn) = self.connection() else {
            return Lookup::Unavailable;
        };
        let mut inv = self.read.prepare_invoke();
        inv.key(self.value_key(key));
        match self
            .call("get", inv.invoke_async::<redis::Value>(&mut conn))
            .await
        {
            Ok(redis::Value::Array(items)) => match items.as_slice() {
                [redis::Value::Int(1), redis::Value::BulkString(bytes), ttl] => {
                    let ttl = match ttl {
                        redis::Value::Int(ms) if *ms > 0 => Some(Duration::from_millis(*ms as u64)),
                        _ => None,
                    };
                    Lookup::Hit(bytes.clone(), ttl)
                }
                _ => Lookup::Miss(true),
            },
            Ok(_) => Lookup::Miss(false),
            Err(Fault::Refused) => Lookup::Miss(false),
            Err(Fault::Unreachable) => Lookup::Unavailable,
        }
    }

    /// Current version counters (`clear`, the key's slot, then each tag), as the insert
    /// script compares them.
    pub(crate) async fn versions(&self, key: &str, tags: &[&str]) -> Option<Vec<String>> {
        if !self.usable() {
            return None;
        }
        let mut conn = self.connection()?;
        let ns = &self.settings.namespace;
        let mut cmd = redis::cmd("MGET");
        cmd.arg(format!("{ns}:g")).arg(self.slot_key(key));
        for tag in tags {
            cmd.arg(format!("{ns}:v:{tag}"));
        }
        let values = self
            .call("mget", cmd.query_async::<Vec<Option<String>>>(&mut conn))
            .await
            .ok()?;
        Some(
            values
                .into_iter()
                .map(|v| v.unwrap_or_else(|| "0".into()))
                .collect(),
        )
    }

    /// Stores `bytes`; when `expected` versions are given, only if none moved. `Some(true)`
    /// stored, `Some(false)` skipped as stale, `None` Redis unavailable or refusing.
    pub(crate) async fn store(
        &self,
        key: &str,
        bytes: &[u8],
        ttl: Duration,
        tags: &[&str],
        expected: Option<&[String]>,
    ) -> Option<bool> {
        if !self.usable() {
            return None;
        }
        let mut conn = self.connection()?;
        let ns = &self.settings.namespace;
        let mut inv = self.insert.prepare_invoke();
        inv.key(self.value_key(key))
            .key(format!("{ns}:g"))
            .key(self.slot_key(key));
        for tag in tags {
            inv.key(format!("{ns}:v:{tag}"));
        }
        for tag in tags {
            inv.key(format!("{ns}:t:{tag}"));
        }
        let ttl_ms = ttl.as_millis().clamp(1, u128::from(u64::MAX)) as u64;
        inv.arg(bytes)
            .arg(ttl_ms)
            .arg(if expected.is_some() { "1" } else { "0" })
            .arg(self.settings.max_tag_set);
        for v in expected.unwrap_or_default() {
            inv.arg(v.as_str());
        }
        let stored = self
            .call("store", inv.invoke_async::<i64>(&mut conn))
            .await
            .ok()?;
        Some(stored == 1)
    }

    fn message(&self, id: u64, inv: Invalidation<'_>) -> String {
        let instance = &self.settings.instance;
        match inv {
            Invalidation::Key(k) => format!("{instance} {id} k {k}"),
            Invalidation::Tag(t) => format!("{instance} {id} t {t}"),
            Invalidation::Clear => format!("{instance} {id} * "),
        }
    }

    /// Applies one invalidation to Redis and publishes it; the number of receivers.
    async fn apply_published(
        &self,
        conn: &ConnectionManager,
        inv: Invalidation<'_>,
        id: u64,
    ) -> Result<usize, Fault> {
        let mut conn = conn.clone();
        let ns = &self.settings.namespace;
        let (channel, message) = (self.channel(), self.message(id, inv));
        let receivers = match inv {
            Invalidation::Tag(tag) => {
                let mut s = self.invalidate_tag.prepare_invoke();
                s.key(format!("{ns}:v:{tag}"))
                    .key(format!("{ns}:t:{tag}"))
                    .arg(&channel)
                    .arg(&message)
                    .arg(format!("{ns}:tg:{tag}:"));
                let (receivers, garbage) = self
                    .call("invalidate_tag", s.invoke_async::<(i64, String)>(&mut conn))
                    .await?;
                if !garbage.is_empty() {
                    self.garbage
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(garbage);
                    self.kick.notify_one();
                }
                receivers
            }
            Invalidation::Key(key) => {
                let mut s = self.invalidate_key.prepare_invoke();
                s.key(self.slot_key(key))
                    .key(self.value_key(key))
                    .arg(&channel)
                    .arg(&message);
                self.call("invalidate", s.invoke_async::<i64>(&mut conn))
                    .await?
            }
            Invalidation::Clear => {
                let mut s = self.clear.prepare_invoke();
                s.key(format!("{ns}:g")).arg(&channel).arg(&message);
                let receivers = self.call("clear", s.invoke_async::<i64>(&mut conn)).await?;
                self.sweep(&mut conn).await;
                receivers
            }
        };
        Ok(usize::try_from(receivers).unwrap_or(0))
    }

    /// After a `clear`: deletes the values and tag sets, a batch at a time (they are already
    /// unreadable: the global version moved).
    async fn sweep(&self, conn: &mut ConnectionManager) {
        let ns = &self.settings.namespace;
        for pattern in [format!("{ns}:k:*"), format!("{ns}:t:*")] {
            let mut cursor = 0u64;
            loop {
                let scan = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .to_owned();
                let Ok((next, keys)) = self
                    .call("clear", scan.query_async::<(u64, Vec<String>)>(conn))
                    .await
                else {
                    return;
                };
                if !keys.is_empty() {
                    let unlink = redis::cmd("UNLINK").arg(keys).to_owned();
                    if self
                        .call("clear", unlink.query_async::<i64>(conn))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
    }

    /// [`Self::apply_published`] for a replay: no receipts awaited.
    async fn apply(&self, conn: &ConnectionManager, inv: Invalidation<'_>) -> Result<(), Fault> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.apply_published(conn, inv, id).await.map(|_| ())
    }

    /// Publishes an invalidation without touching the stored values (when Redis refuses
    /// writes): the other memory tiers still drop their copies.
    async fn publish_only(
        &self,
        conn: &ConnectionManager,
        inv: Invalidation<'_>,
        id: u64,
    ) -> Result<usize, Fault> {
        let mut conn = conn.clone();
        let publish = redis::cmd("PUBLISH")
            .arg(self.channel())
            .arg(self.message(id, inv))
            .to_owned();
        let n = self
            .call("publish", publish.query_async::<i64>(&mut conn))
            .await?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// Applies `inv` to Redis and to every instance's memory tier, and waits until every
    /// instance listening has confirmed it. A tier marked down is probed first: the attempt
    /// must start after the caller's write, so that an instance loading from a Redis that
    /// is back (and that this one has not noticed yet) cannot store what it read before the
    /// write. If Redis cannot take it, it is queued for the background task (which applies
    /// it before Redis is read again), and the call waits until the other instances can no
    /// longer trust their memory tiers (they stop within one liveness interval of losing
    /// Redis).
    pub(crate) async fn invalidate(&self, inv: Invalidation<'_>) {
        let (id, wait) = self.expect_receipts();
        let conn = match self.connection() {
            Some(conn) => Some(conn),
            None => self.probe().await,
        };
        let outcome = match &conn {
            Some(conn) => self.apply_published(conn, inv, id).await,
            None => Err(Fault::Unreachable),
        };
        let receivers = match outcome {
            Ok(n) => Some(n),
            Err(fault) => {
                {
                    // Under the queue's lock: the background task marks the tier usable
                    // under it, once the queue is empty. If it already has (without this
                    // entry), reads stay off Redis until the entry is applied.
                    let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                    if fault == Fault::Refused || self.is_up() {
                        self.suspended.store(true, Ordering::Release);
                    }
                    Self::push(&mut p, inv);
                }
                self.kick.notify_one();
                match (fault, &conn) {
                    (Fault::Refused, Some(conn)) => self.publish_only(conn, inv, id).await.ok(),
                    _ => None,
                }
            }
        };
        match receivers {
            Some(n) => self.await_receipts(id, &wait, n).await,
            None => self.wait_out_lease().await,
        }
    }

    /// Tells the other instances to drop their in-memory copy of `key` (after an insert),
    /// and waits for their receipts.
    pub(crate) async fn announce_key(&self, key: &str) {
        let Some(conn) = self.connection() else {
            return;
        };
        let (id, wait) = self.expect_receipts();
        if let Ok(n) = self.publish_only(&conn, Invalidation::Key(key), id).await {
            self.await_receipts(id, &wait, n).await;
        }
    }

    /// A new invalidation id, registered before publishing (receipts may come back before
    /// `PUBLISH` returns). Unregistered when the guard is dropped.
    fn expect_receipts(&self) -> (u64, Receipts<'_>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let wait = Arc::new(AckWait::default());
        self.acks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, wait.clone());
        (
            id,
            Receipts {
                tier: self,
                id,
                wait,
            },
        )
    }

    async fn await_receipts(&self, id: u64, wait: &Receipts<'_>, receivers: usize) {
        let wait = &wait.wait;
        let enough = async {
            loop {
                let notified = wait.notify.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if wait.count.load(Ordering::Acquire) >= receivers {
                    return;
                }
                notified.await;
            }
        };
        if tokio::time::timeout(self.settings.ack_timeout, enough)
            .await
            .is_err()
        {
            incr(&self.metrics.counters().unconfirmed_invalidations);
            tracing::warn!(
                id,
                receivers,
                confirmed = wait.count.load(Ordering::Acquire),
                "query cache: not every instance confirmed an invalidation in time"
            );
        }
    }

    /// A receipt for invalidation `id` of this instance (from another one, or our own
    /// subscriber).
    pub(crate) fn receipt(&self, id: u64) {
        let wait = self
            .acks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned();
        if let Some(wait) = wait {
            wait.count.fetch_add(1, Ordering::AcqRel);
            wait.notify.notify_waiters();
        }
    }

    /// Sends a receipt for `id` to `sender`.
    pub(crate) async fn acknowledge(&self, sender: &str, id: u64) {
        let Some(mut conn) = self.conn.get().cloned() else {
            return;
        };
        let publish = redis::cmd("PUBLISH")
            .arg(self.ack_channel())
            .arg(format!("{sender} {id}"))
            .to_owned();
        let _ = self
            .call("acknowledge", publish.query_async::<i64>(&mut conn))
            .await;
    }

    /// Waits until every other instance has had time to notice that Redis is gone (and
    /// to stop trusting its memory tier): one liveness interval plus a timeout after the
    /// outage began. Later writes of the same outage do not wait.
    async fn wait_out_lease(&self) {
        let since = *self.down_since.lock().unwrap_or_else(|e| e.into_inner());
        let lease = self.settings.liveness_interval + self.settings.timeout * 2;
        let until = since.unwrap_or_else(Instant::now) + lease;
        let now = Instant::now();
        if until > now {
            tokio::time::sleep(until - now).await;
        }
    }
}
