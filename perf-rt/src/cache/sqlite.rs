//! Automatic invalidation from SQLite writes: a write to a table invalidates its tag.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use perf_rt::cache::{QueryCache, SqliteInvalidator};
//!
//! let cache = QueryCache::builder().build().await?;
//! let invalidator = SqliteInvalidator::builder(cache.clone())
//!     .table("comments", ["comments", "posts"]) // comment counts are shown with posts
//!     .build()?;
//! let conn = rusqlite::Connection::open("app.db")?;
//! invalidator.install(&conn);
//! conn.execute("UPDATE posts SET title = 'x' WHERE id = 1", [])?; // invalidates tag "posts"
//! invalidator.flush().await; // every instance now misses on "posts"
//! # Ok(()) }
//! ```
//!
//! SQLite's update hook reports each changed row's table while the statement runs; the
//! tables are collected per connection and turned into tags when the transaction commits
//! (the commit hook), and dropped if it rolls back. At commit, this instance's memory tier is
//! invalidated at once (no await is possible inside a hook); a background task then runs the
//! full [`QueryCache::invalidate_tag`] (Redis and the other instances). Since that second
//! invalidation runs after the commit, a read that raced the commit cannot leave a stale
//! entry behind. [`SqliteInvalidator::flush`] waits for the background task: await it before
//! answering a write request when another instance may serve the next read.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use super::{CacheError, QueryCache};

enum Msg {
    Tags(Vec<String>),
    Flush(oneshot::Sender<()>),
}

/// Configures which tags a write to each table invalidates.
#[derive(Debug)]
#[must_use]
pub struct SqliteInvalidatorBuilder {
    cache: QueryCache,
    tables: HashMap<String, Vec<String>>,
}

impl SqliteInvalidatorBuilder {
    /// A write to `table` invalidates `tags` (instead of the default, the table's name).
    pub fn table<I, S>(mut self, table: &str, tags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.tables
            .insert(table.to_owned(), tags.into_iter().map(Into::into).collect());
        self
    }

    /// Starts the background task.
    ///
    /// # Errors
    ///
    /// [`CacheError::NoRuntime`] outside a tokio runtime.
    pub fn build(self) -> Result<SqliteInvalidator, CacheError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| CacheError::NoRuntime)?;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let cache = self.cache;
        let cache_handle = cache.clone();
        runtime.spawn(async move {
            while let Some(msg) = rx.recv().await {
                match msg {
                    Msg::Tags(tags) => {
                        for tag in tags {
                            cache.invalidate_tag(&tag).await;
                        }
                    }
                    Msg::Flush(done) => {
                        let _ = done.send(());
                    }
                }
            }
        });
        Ok(SqliteInvalidator {
            cache: cache_handle,
            tx,
            tables: Arc::new(self.tables),
        })
    }
}

/// Turns committed SQLite writes into tag invalidations of a [`QueryCache`].
///
/// A whole application's wiring:
///
/// ```no_run
/// use perf_rt::cache::{QueryCacheBuilder, SqliteInvalidator};
///
/// #[derive(Clone, serde::Serialize, serde::Deserialize)]
/// struct Post { id: i64, title: String }
///
/// // Key: this function's path + `author` (postcard); `db` is not part of it.
/// #[perf_rt::optimize_query(expire = 300, tags = ["posts"], skip(db))]
/// async fn posts_by(db: &std::sync::Mutex<rusqlite::Connection>, author: i64)
///     -> Result<Vec<Post>, rusqlite::Error>
/// {
///     let db = db.lock().unwrap();
///     let mut stmt = db.prepare("SELECT id, title FROM posts WHERE author = ?1")?;
///     let rows = stmt.query_map([author], |r| Ok(Post { id: r.get(0)?, title: r.get(1)? }))?;
///     rows.collect()
/// }
///
/// # async fn start() -> Result<(), Box<dyn std::error::Error>> {
/// // PERF_REDIS_URL, PERF_QUERY_CACHE_DEFAULT_EXPIRE, PERF_QUERY_CACHE_MAX_ENTRIES,
/// // PERF_QUERY_CACHE_NAMESPACE; without PERF_REDIS_URL the cache is memory-only.
/// let cache = QueryCacheBuilder::from_env().build().await?;
/// perf_rt::cache::set_global(cache.clone())?;
/// let invalidator = SqliteInvalidator::new(cache.clone())?;
/// let conn = rusqlite::Connection::open("app.db")?;
/// invalidator.install(&conn); // writes to `posts` invalidate the tag "posts"
/// let db = std::sync::Mutex::new(conn);
/// let posts = posts_by(&db, 7).await?;
/// # let _ = posts;
/// // In a write handler: write, then `invalidator.flush().await` before answering, so the
/// // next read through any instance is fresh.
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct SqliteInvalidator {
    cache: QueryCache,
    tx: mpsc::UnboundedSender<Msg>,
    tables: Arc<HashMap<String, Vec<String>>>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Msg")
    }
}

impl SqliteInvalidator {
    /// Configures an invalidator for `cache`; each table maps to the tag of its name unless
    /// [`SqliteInvalidatorBuilder::table`] says otherwise.
    pub fn builder(cache: QueryCache) -> SqliteInvalidatorBuilder {
        SqliteInvalidatorBuilder {
            cache,
            tables: HashMap::new(),
        }
    }

    /// An invalidator mapping every table to the tag of its name.
    ///
    /// # Errors
    ///
    /// [`CacheError::NoRuntime`] outside a tokio runtime.
    pub fn new(cache: QueryCache) -> Result<Self, CacheError> {
        Self::builder(cache).build()
    }

    fn tags_of(&self, table: &str) -> Vec<String> {
        self.tables
            .get(table)
            .cloned()
            .unwrap_or_else(|| vec![table.to_owned()])
    }

    /// Installs the update, commit and rollback hooks on `conn` (replacing any hooks it
    /// had). Do this for every connection that writes, e.g. in a pool's `on_acquire`.
    pub fn install(&self, conn: &rusqlite::Connection) {
        let written: Arc<Mutex<HashSet<String>>> = Arc::default();
        let on_update = written.clone();
        conn.update_hook(Some(
            move |_: rusqlite::hooks::Action, _db: &str, table: &str, _row: i64| {
                let mut w = on_update.lock().unwrap_or_else(|e| e.into_inner());
                if !w.contains(table) {
                    w.insert(table.to_owned());
                }
            },
        ));
        let on_commit = written.clone();
        let this = self.clone();
        conn.commit_hook(Some(move || {
            let tables = std::mem::take(&mut *on_commit.lock().unwrap_or_else(|e| e.into_inner()));
            if !tables.is_empty() {
                let mut tags: Vec<String> = tables.iter().flat_map(|t| this.tags_of(t)).collect();
                tags.sort();
                tags.dedup();
                for tag in &tags {
                    this.cache.invalidate_tag_local(tag);
                }
                let _ = this.tx.send(Msg::Tags(tags));
            }
            false // false lets the commit proceed
        }));
        conn.rollback_hook(Some(move || {
            written.lock().unwrap_or_else(|e| e.into_inner()).clear();
        }));
    }

    /// Waits until every write committed so far has been invalidated everywhere (this
    /// instance's memory, Redis, and published to the other instances).
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Msg::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }
}
