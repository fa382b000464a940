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
//! What is caught, per connection with the invalidator installed:
//!
//! - every row an `INSERT`, `UPDATE` or `DELETE` changes in a rowid table (SQLite's update
//!   hook), including `DELETE FROM t` without `WHERE`: the authorizer turns SQLite's
//!   truncate optimisation off for every `DELETE`, so its rows are reported one by one;
//! - rows removed by `REPLACE` conflicts: not reported by SQLite, but always in the table
//!   the statement inserts into, which is;
//! - writes to WITHOUT ROWID tables, which the update hook never reports: the authorizer
//!   sees every statement that writes a table it does not know as a rowid table (WITHOUT
//!   ROWID, or created after `install`) when it is prepared, and from then on every write
//!   transaction this connection commits invalidates that table too (a prepared statement
//!   can run again later, in a transaction the authorizer does not see).
//!
//! Not caught: virtual tables (their shadow tables are reported under their own names, e.g.
//! `docs_fts_data`: map those with [`SqliteInvalidatorBuilder::table`]), schema changes
//! (`DROP`, `ALTER`), and writes by connections without the invalidator (other programs,
//! the `sqlite3` shell). Installing replaces the connection's authorizer.
//!
//! When: after the commit is visible to other connections, never before (a reader in
//! another process that reloaded between an early invalidation and the commit would cache
//! the old rows as fresh). In WAL mode, SQLite's WAL hook runs right after the commit:
//! there this instance's memory tier is invalidated at once (no await is possible in a
//! hook) and a background task runs the full [`QueryCache::invalidate_tag`] (Redis and the
//! other instances). In the other journal modes SQLite has no hook after a commit: the
//! invalidation is sent at commit and sent again by [`SqliteInvalidator::flush`], which
//! write handlers await after their write returned. [`SqliteInvalidator::flush`] waits for
//! the background task: await it before answering a write request, and the next read
//! through any instance sees the write.
//!
//! Installing sets the connection's WAL hook, which replaces SQLite's automatic
//! checkpoint; the hook checkpoints (passively) past 1,000 pages, as SQLite does by
//! default. Set the journal mode before [`SqliteInvalidator::install`], and do not set
//! `wal_autocheckpoint` after it (that would remove the hook).

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use rusqlite::hooks::{AuthAction, AuthContext, Authorization, Wal};

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
            unconfirmed: Arc::default(),
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
    /// Tags invalidated at a commit that was not visible yet, for [`Self::flush`].
    unconfirmed: Arc<Mutex<BTreeSet<String>>>,
}

/// The tables one connection wrote in its current transaction.
struct Writes {
    tables: Mutex<HashSet<String>>,
    /// Tables whose writes the update hook does not report: invalidated at every commit.
    sticky: Mutex<BTreeSet<String>>,
    invalidator: SqliteInvalidator,
}

impl Writes {
    fn writes_unreported(&self, table: &str, rowid_tables: &HashSet<String>) {
        if table.starts_with("sqlite_") || rowid_tables.contains(table) {
            return;
        }
        let mut sticky = self.sticky.lock().unwrap_or_else(|e| e.into_inner());
        if !sticky.contains(table) {
            sticky.insert(table.to_owned());
        }
    }

    /// Invalidates the tags of the tables written: this instance's memory now, everything
    /// else through the background task.
    fn dispatch(&self, unconfirmed: bool) {
        let mut tables =
            std::mem::take(&mut *self.tables.lock().unwrap_or_else(|e| e.into_inner()));
        tables.extend(
            self.sticky
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .cloned(),
        );
        if tables.is_empty() {
            return;
        }
        let this = &self.invalidator;
        let mut tags: Vec<String> = tables.iter().flat_map(|t| this.tags_of(t)).collect();
        tags.sort();
        tags.dedup();
        for tag in &tags {
            this.cache.invalidate_tag_local(tag);
        }
        if unconfirmed {
            this.unconfirmed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(tags.iter().cloned());
        }
        let _ = this.tx.send(Msg::Tags(tags));
    }
}

thread_local! {
    /// Connections whose commit is under way on this thread. SQLite's WAL hook takes a
    /// plain function and runs on the committing thread, right after the commit hook.
    static COMMITTING: RefCell<Vec<Arc<Writes>>> = const { RefCell::new(Vec::new()) };
}

/// The WAL hook: the commit is now visible to every connection.
fn after_commit(wal: &Wal, pages: std::ffi::c_int) -> rusqlite::Result<()> {
    for writes in COMMITTING.with_borrow_mut(std::mem::take) {
        writes.dispatch(false);
    }
    // Installing a WAL hook turns SQLite's automatic checkpoint off: do what it did.
    if pages >= 1000 {
        let _ = wal.checkpoint();
    }
    Ok(())
}

impl std::fmt::Debug for Writes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Writes")
    }
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

    /// Installs the pre-update, commit, rollback and (in WAL mode) WAL hooks on `conn`,
    /// replacing any it had. Do this for every connection that writes (e.g. in a pool's
    /// `on_acquire`), after setting its journal mode.
    pub fn install(&self, conn: &rusqlite::Connection) {
        let wal = conn
            .pragma_query_value(None, "journal_mode", |r| r.get::<_, String>(0))
            .is_ok_and(|mode| mode.eq_ignore_ascii_case("wal"));
        let rowid_tables: HashSet<String> = conn
            .prepare(
                "SELECT name FROM sqlite_schema WHERE type = 'table' \
                 AND upper(sql) NOT LIKE '%WITHOUT%ROWID%'",
            )
            .and_then(|mut stmt| stmt.query_map([], |r| r.get(0))?.collect())
            .unwrap_or_default();
        let state = Arc::new(Writes {
            tables: Mutex::default(),
            sticky: Mutex::default(),
            invalidator: self.clone(),
        });
        let on_write = state.clone();
        conn.update_hook(Some(
            move |_: rusqlite::hooks::Action, _db: &str, table: &str, _row: i64| {
                let mut tables = on_write.tables.lock().unwrap_or_else(|e| e.into_inner());
                if !tables.contains(table) {
                    tables.insert(table.to_owned());
                }
            },
        ));
        let on_prepare = state.clone();
        conn.authorizer(Some(move |ctx: AuthContext<'_>| {
            let table = match ctx.action {
                AuthAction::Delete { table_name } => {
                    on_prepare.writes_unreported(table_name, &rowid_tables);
                    // Rows one by one, so that the update hook reports them.
                    return Authorization::Ignore;
                }
                AuthAction::Insert { table_name } | AuthAction::Update { table_name, .. } => {
                    table_name
                }
                _ => return Authorization::Allow,
            };
            on_prepare.writes_unreported(table, &rowid_tables);
            Authorization::Allow
        }));
        let on_commit = state.clone();
        conn.commit_hook(Some(move || {
            if wal {
                // Not visible yet: the WAL hook, right after the commit, sends it.
                COMMITTING.with_borrow_mut(|c| {
                    if !c.iter().any(|w| Arc::ptr_eq(w, &on_commit)) {
                        c.push(on_commit.clone());
                    }
                });
            } else {
                on_commit.dispatch(true);
            }
            false // false lets the commit proceed
        }));
        conn.rollback_hook(Some(move || {
            state
                .tables
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clear();
            COMMITTING.with_borrow_mut(|c| c.retain(|w| !Arc::ptr_eq(w, &state)));
        }));
        if wal {
            conn.wal_hook(Some(after_commit));
        }
    }

    /// Waits until every write committed so far has been invalidated everywhere (this
    /// instance's memory, Redis, and published to the other instances).
    pub async fn flush(&self) {
        // Sent at commit, before it was visible (not WAL): once more, now that it is.
        let again =
            std::mem::take(&mut *self.unconfirmed.lock().unwrap_or_else(|e| e.into_inner()));
        if !again.is_empty() {
            let _ = self.tx.send(Msg::Tags(again.into_iter().collect()));
        }
        let (done, wait) = oneshot::channel();
        if self.tx.send(Msg::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }
}
