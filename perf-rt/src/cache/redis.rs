//! The Redis tier: shared by every instance, fault tolerant, never serving invalidated tags.
//!
//! Layout under the namespace `ns` (see [`QueryCacheBuilder::namespace`](super::QueryCacheBuilder::namespace)):
//!
//! | key | holds |
//! | --- | --- |
//! | `ns:k:<key>` | the value (versioned envelope), with the entry's TTL |
//! | `ns:t:<tag>` | set of the value keys stored under the tag |
//! | `ns:v:<tag>`, `ns:g` | version counters of the tag, and of `clear()` and key invalidations |
//! | `ns:inv` (channel) | invalidations, for the in-memory tiers of the other instances |
//!
//! Invalidating a tag is one Lua script, atomic on the server: bump `ns:v:<tag>`, delete every
//! member of `ns:t:<tag>` and the set, publish. A read is a plain `GET`. A load that overlaps
//! an invalidation could still write the value it read before the write: so a miss reads the
//! version counters of its tags first, and the value is stored by a script that compares them
//! and gives up if any moved. Together: once `invalidate_tag` has returned, no `GET` can find
//! an entry of that tag that was loaded before it.
//!
//! Faults: every call runs under a timeout. The first failure marks the tier down, logs one
//! warning and counts an outage; while down, calls skip Redis (memory tier, then the loader)
//! and one caller per retry interval probes it. Invalidations made while down are queued and
//! replayed before the tier is used again; then the in-memory tier is flushed, since other
//! instances' invalidations were missed meanwhile.

use std::collections::HashSet;
use std::fmt::Display;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisResult, Script};

use super::memory::MemoryTier;
use super::metrics::{CacheMetrics, incr};

const INSERT: &str = r"
-- KEYS: value, global version, n tag versions, n tag sets
-- ARGV: bytes, ttl ms, check ('1' or '0'), expected versions (global first)
local n = (#KEYS - 2) / 2
if ARGV[3] == '1' then
  for i = 0, n do
    if (redis.call('GET', KEYS[2 + i]) or '0') ~= ARGV[4 + i] then return 0 end
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local ttl = tonumber(ARGV[2])
for i = 1, n do
  local set = KEYS[2 + n + i]
  redis.call('SADD', set, KEYS[1])
  if redis.call('PTTL', set) < ttl then redis.call('PEXPIRE', set, ttl) end
end
return 1
";

const INVALIDATE_TAG: &str = r"
-- KEYS: tag version, tag set; ARGV: channel, message
redis.call('INCR', KEYS[1])
local members = redis.call('SMEMBERS', KEYS[2])
for i = 1, #members, 512 do
  redis.call('UNLINK', unpack(members, i, math.min(i + 511, #members)))
end
redis.call('DEL', KEYS[2])
redis.call('PUBLISH', ARGV[1], ARGV[2])
return #members
";

/// Most invalidations kept while Redis is down; past it the whole namespace is cleared on
/// reconnect.
const MAX_PENDING: usize = 10_000;

#[derive(Default)]
struct Pending {
    clear: bool,
    tags: HashSet<String>,
    keys: HashSet<String>,
}

/// Result of a read.
pub(crate) enum Lookup {
    Hit(Vec<u8>),
    Miss,
    Unavailable,
}

pub(crate) struct RedisSettings {
    pub(crate) namespace: String,
    pub(crate) timeout: Duration,
    pub(crate) retry_interval: Duration,
    pub(crate) instance: String,
}

pub(crate) struct RedisTier {
    pub(crate) client: redis::Client,
    conn: OnceLock<ConnectionManager>,
    pub(crate) settings: RedisSettings,
    down: AtomicBool,
    warned: AtomicBool,
    ever_up: AtomicBool,
    retry_at_ms: AtomicU64,
    started: Instant,
    recovering: tokio::sync::Mutex<()>,
    pending: Mutex<Pending>,
    memory: Arc<MemoryTier>,
    metrics: CacheMetrics,
    insert: Script,
    invalidate_tag: Script,
}

impl RedisTier {
    pub(crate) fn new(
        client: redis::Client,
        settings: RedisSettings,
        memory: Arc<MemoryTier>,
        metrics: CacheMetrics,
    ) -> Self {
        Self {
            client,
            conn: OnceLock::new(),
            settings,
            down: AtomicBool::new(true),
            warned: AtomicBool::new(false),
            ever_up: AtomicBool::new(false),
            retry_at_ms: AtomicU64::new(0),
            started: Instant::now(),
            recovering: tokio::sync::Mutex::new(()),
            pending: Mutex::default(),
            memory,
            metrics,
            insert: Script::new(INSERT),
            invalidate_tag: Script::new(INVALIDATE_TAG),
        }
    }

    pub(crate) fn channel(&self) -> String {
        format!("{}:inv", self.settings.namespace)
    }

    pub(crate) fn value_key(&self, key: &str) -> String {
        let ns = &self.settings.namespace;
        let mut k = String::with_capacity(ns.len() + 3 + key.len());
        k.push_str(ns);
        k.push_str(":k:");
        k.push_str(key);
        k
    }

    fn message(&self, kind: &str, value: &str) -> String {
        format!("{} {kind} {value}", self.settings.instance)
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether the tier is currently considered reachable.
    pub(crate) fn is_up(&self) -> bool {
        !self.down.load(Ordering::Acquire)
    }

    fn fail(&self, what: &str, err: &dyn Display) {
        incr(&self.metrics.counters().redis_errors);
        self.retry_at_ms.store(
            self.now_ms() + self.settings.retry_interval.as_millis() as u64,
            Ordering::Release,
        );
        self.down.store(true, Ordering::Release);
        if !self.warned.swap(true, Ordering::AcqRel) {
            incr(&self.metrics.counters().redis_outages);
            tracing::warn!(
                error = %err,
                operation = what,
                "query cache: Redis unreachable; serving from memory and loaders until it returns"
            );
        }
    }

    /// Runs one Redis call under the timeout; `None` (and the tier marked down) on failure.
    async fn call<T>(&self, what: &str, fut: impl Future<Output = RedisResult<T>>) -> Option<T> {
        match tokio::time::timeout(self.settings.timeout, fut).await {
            Ok(Ok(v)) => Some(v),
            Ok(Err(e)) => {
                self.fail(what, &e);
                None
            }
            Err(_) => {
                self.fail(what, &"timed out");
                None
            }
        }
    }

    /// The connection, if the tier is up or was just recovered.
    pub(crate) async fn connection(&self) -> Option<ConnectionManager> {
        if !self.down.load(Ordering::Acquire) {
            return self.conn.get().cloned();
        }
        if self.now_ms() < self.retry_at_ms.load(Ordering::Acquire) {
            return None;
        }
        self.recover().await
    }

    /// Probes Redis, replays queued invalidations and flushes the memory tier. Only one
    /// caller at a time; the others carry on without Redis.
    pub(crate) async fn recover(&self) -> Option<ConnectionManager> {
        let _only_one = self.recovering.try_lock().ok()?;
        if !self.down.load(Ordering::Acquire) {
            return self.conn.get().cloned();
        }
        self.retry_at_ms.store(
            self.now_ms() + self.settings.retry_interval.as_millis() as u64,
            Ordering::Release,
        );
        let conn = match self.conn.get() {
            Some(c) => c.clone(),
            None => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.settings.timeout))
                    .set_response_timeout(Some(self.settings.timeout))
                    .set_number_of_retries(1)
                    .set_max_delay(self.settings.retry_interval);
                let connect = ConnectionManager::new_with_config(self.client.clone(), config);
                let c = self.call("connect", connect).await?;
                self.conn.get_or_init(|| c).clone()
            }
        };
        let mut probe = conn.clone();
        self.call("ping", redis::cmd("PING").query_async::<String>(&mut probe))
            .await?;
        if !self.replay(&conn).await {
            return None;
        }
        // Invalidations published while we were away were missed.
        self.memory.flush();
        if self.ever_up.swap(true, Ordering::AcqRel) {
            incr(&self.metrics.counters().redis_reconnects);
            tracing::info!("query cache: Redis reachable again; in-memory tier flushed");
        } else if self.warned.load(Ordering::Acquire) {
            tracing::info!("query cache: Redis reachable");
        }
        self.warned.store(false, Ordering::Release);
        self.down.store(false, Ordering::Release);
        Some(conn)
    }

    /// Probes an unreachable Redis every retry interval, so that it is found again even
    /// when every read is answered by the memory tier.
    pub(crate) async fn watch(self: Arc<Self>) {
        loop {
            tokio::time::sleep(self.settings.retry_interval).await;
            if !self.is_up() {
                self.recover().await;
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

    async fn replay(&self, conn: &ConnectionManager) -> bool {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        let mut ok = true;
        if pending.clear {
            ok = self.clear_with(conn).await;
        } else {
            for tag in &pending.tags {
                ok = ok && self.invalidate_tag_with(conn, tag).await;
            }
            for key in &pending.keys {
                ok = ok && self.invalidate_with(conn, key).await;
            }
        }
        if !ok {
            // Keep what may not have been applied; replaying twice is harmless.
            self.queue(|p| {
                p.clear |= pending.clear;
                p.tags.extend(pending.tags);
                p.keys.extend(pending.keys);
            });
        }
        ok
    }

    pub(crate) async fn get(&self, key: &str) -> Lookup {
        let Some(mut conn) = self.connection().await else {
            return Lookup::Unavailable;
        };
        let cmd = redis::cmd("GET").arg(self.value_key(key)).to_owned();
        match self
            .call("get", cmd.query_async::<Option<Vec<u8>>>(&mut conn))
            .await
        {
            Some(Some(bytes)) => Lookup::Hit(bytes),
            Some(None) => Lookup::Miss,
            None => Lookup::Unavailable,
        }
    }

    /// Current version counters (`clear` first, then each tag), as the insert script compares
    /// them.
    pub(crate) async fn versions(&self, tags: &[&str]) -> Option<Vec<String>> {
        let mut conn = self.connection().await?;
        let ns = &self.settings.namespace;
        let mut cmd = redis::cmd("MGET");
        cmd.arg(format!("{ns}:g"));
        for tag in tags {
            cmd.arg(format!("{ns}:v:{tag}"));
        }
        let values = self
            .call("mget", cmd.query_async::<Vec<Option<String>>>(&mut conn))
            .await?;
        Some(
            values
                .into_iter()
                .map(|v| v.unwrap_or_else(|| "0".into()))
                .collect(),
        )
    }

    /// Stores `bytes`; when `expected` versions are given, only if none moved. `Some(true)`
    /// stored, `Some(false)` skipped as stale, `None` Redis unavailable.
    pub(crate) async fn store(
        &self,
        key: &str,
        bytes: &[u8],
        ttl: Duration,
        tags: &[&str],
        expected: Option<&[String]>,
    ) -> Option<bool> {
        let mut conn = self.connection().await?;
        let ns = &self.settings.namespace;
        let mut inv = self.insert.prepare_invoke();
        inv.key(self.value_key(key)).key(format!("{ns}:g"));
        for tag in tags {
            inv.key(format!("{ns}:v:{tag}"));
        }
        for tag in tags {
            inv.key(format!("{ns}:t:{tag}"));
        }
        let ttl_ms = ttl.as_millis().clamp(1, u128::from(u64::MAX)) as u64;
        inv.arg(bytes)
            .arg(ttl_ms)
            .arg(if expected.is_some() { "1" } else { "0" });
        for v in expected.unwrap_or_default() {
            inv.arg(v.as_str());
        }
        let stored = self
            .call("store", inv.invoke_async::<i64>(&mut conn))
            .await?;
        Some(stored == 1)
    }

    async fn invalidate_with(&self, conn: &ConnectionManager, key: &str) -> bool {
        let mut conn = conn.clone();
        let mut pipe = redis::pipe();
        // Bumping `ns:g` also stops a load of this key that is in flight from storing
        // what it read before the invalidation (coarse: any in-flight load retries later).
        pipe.atomic()
            .cmd("INCR")
            .arg(format!("{}:g", self.settings.namespace))
            .ignore()
            .cmd("DEL")
            .arg(self.value_key(key))
            .ignore()
            .cmd("PUBLISH")
            .arg(self.channel())
            .arg(self.message("k", key))
            .ignore();
        self.call("invalidate", pipe.query_async::<()>(&mut conn))
            .await
            .is_some()
    }

    async fn invalidate_tag_with(&self, conn: &ConnectionManager, tag: &str) -> bool {
        let mut conn = conn.clone();
        let ns = &self.settings.namespace;
        let mut inv = self.invalidate_tag.prepare_invoke();
        inv.key(format!("{ns}:v:{tag}"))
            .key(format!("{ns}:t:{tag}"))
            .arg(self.channel())
            .arg(self.message("t", tag));
        self.call("invalidate_tag", inv.invoke_async::<i64>(&mut conn))
            .await
            .is_some()
    }

    async fn clear_with(&self, conn: &ConnectionManager) -> bool {
        let mut conn = conn.clone();
        let ns = &self.settings.namespace;
        let bump = redis::cmd("INCR").arg(format!("{ns}:g")).to_owned();
        if self
            .call("clear", bump.query_async::<i64>(&mut conn))
            .await
            .is_none()
        {
            return false;
        }
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
                let Some((next, keys)) = self
                    .call("clear", scan.query_async::<(u64, Vec<String>)>(&mut conn))
                    .await
                else {
                    return false;
                };
                if !keys.is_empty() {
                    let unlink = redis::cmd("UNLINK").arg(keys).to_owned();
                    if self
                        .call("clear", unlink.query_async::<i64>(&mut conn))
                        .await
                        .is_none()
                    {
                        return false;
                    }
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        let publish = redis::cmd("PUBLISH")
            .arg(self.channel())
            .arg(self.message("*", ""))
            .to_owned();
        self.call("clear", publish.query_async::<i64>(&mut conn))
            .await
            .is_some()
    }

    /// Tells the other instances to drop their in-memory copy of `key` (after an insert).
    pub(crate) async fn announce_key(&self, key: &str) {
        if let Some(mut conn) = self.connection().await {
            let publish = redis::cmd("PUBLISH")
                .arg(self.channel())
                .arg(self.message("k", key))
                .to_owned();
            self.call("publish", publish.query_async::<i64>(&mut conn))
                .await;
        }
    }

    pub(crate) async fn invalidate(&self, key: &str) {
        let done = match self.connection().await {
            Some(conn) => self.invalidate_with(&conn, key).await,
            None => false,
        };
        if !done {
            self.queue(|p| {
                p.keys.insert(key.to_owned());
            });
        }
    }

    pub(crate) async fn invalidate_tag(&self, tag: &str) {
        let done = match self.connection().await {
            Some(conn) => self.invalidate_tag_with(&conn, tag).await,
            None => false,
        };
        if !done {
            self.queue(|p| {
                p.tags.insert(tag.to_owned());
            });
        }
    }

    pub(crate) async fn clear(&self) {
        let done = match self.connection().await {
            Some(conn) => self.clear_with(&conn).await,
            None => false,
        };
        if !done {
            self.queue(|p| p.clear = true);
        }
    }
}
