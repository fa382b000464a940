//! SQLite writes invalidate the query cache by themselves (update + commit hooks).

mod cache_support;

use std::sync::Mutex;
use std::time::Duration;

use cache_support::{builder, cache, eventually, namespace, redis_url};
use perf_rt::cache::{CacheOptions, QueryCache, SqliteInvalidator};
use rusqlite::Connection;

const POSTS: CacheOptions<'static> = CacheOptions::new().expire_secs(60).tags(&["posts"]);

fn setup(conn: &Connection) {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS posts (id INTEGER PRIMARY KEY, title TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS comments (id INTEGER PRIMARY KEY, post INTEGER, body TEXT);
         INSERT OR IGNORE INTO posts (id, title) VALUES (1, 'first');",
    )
    .unwrap();
}

async fn title(cache: &QueryCache, conn: &Mutex<Connection>) -> String {
    cache
        .get_or_load("post:1", POSTS, || async {
            conn.lock()
                .unwrap()
                .query_row("SELECT title FROM posts WHERE id = 1", [], |r| r.get(0))
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn a_committed_write_invalidates_at_once_and_a_rollback_does_not() {
    let cache = QueryCache::builder().build().await.unwrap();
    let invalidator = SqliteInvalidator::builder(cache.clone())
        .table("comments", ["comments", "posts"])
        .build()
        .unwrap();
    let conn = Connection::open_in_memory().unwrap();
    setup(&conn);
    invalidator.install(&conn);
    let conn = Mutex::new(conn);

    assert_eq!(title(&cache, &conn).await, "first");
    let loads = cache.metrics().snapshot().loads;
    assert_eq!(title(&cache, &conn).await, "first");
    assert_eq!(cache.metrics().snapshot().loads, loads, "cached");

    // A write behind the cache's back, then rolled back: nothing to invalidate.
    {
        let mut c = conn.lock().unwrap();
        let tx = c.transaction().unwrap();
        tx.execute("UPDATE posts SET title = 'draft' WHERE id = 1", [])
            .unwrap();
        tx.rollback().unwrap();
    }
    assert_eq!(title(&cache, &conn).await, "first");
    assert_eq!(
        cache.metrics().snapshot().loads,
        loads,
        "rollback kept the entry"
    );

    // Autocommit write: the very next read (no flush, no await in between) is fresh.
    conn.lock()
        .unwrap()
        .execute("UPDATE posts SET title = 'second' WHERE id = 1", [])
        .unwrap();
    assert_eq!(title(&cache, &conn).await, "second");

    // A table mapped to several tags.
    title(&cache, &conn).await;
    conn.lock()
        .unwrap()
        .execute("INSERT INTO comments (post, body) VALUES (1, 'hi')", [])
        .unwrap();
    let before = cache.metrics().snapshot().loads;
    title(&cache, &conn).await;
    assert_eq!(
        cache.metrics().snapshot().loads,
        before + 1,
        "comments invalidates posts"
    );
    invalidator.flush().await;
}

#[tokio::test]
async fn two_instances_on_one_database_and_one_redis_act_as_one_site() {
    let url = redis_url();
    let ns = namespace("sqlite");
    let path = std::env::temp_dir().join(format!("{ns}.db"));
    let (a, b) = (cache(&url, &ns).await, cache(&url, &ns).await);
    let open = |c: &QueryCache| {
        let conn = Connection::open(&path).unwrap();
        conn.busy_timeout(Duration::from_secs(5)).unwrap();
        setup(&conn);
        let inv = SqliteInvalidator::new(c.clone()).unwrap();
        inv.install(&conn);
        (Mutex::new(conn), inv)
    };
    let (conn_a, inv_a) = open(&a);
    let (conn_b, _inv_b) = open(&b);

    assert_eq!(title(&a, &conn_a).await, "first");
    assert_eq!(title(&b, &conn_b).await, "first");

    conn_a
        .lock()
        .unwrap()
        .execute("UPDATE posts SET title = 'edited on A' WHERE id = 1", [])
        .unwrap();
    inv_a.flush().await;
    assert_eq!(title(&a, &conn_a).await, "edited on A");
    // Redis no longer has the old entry the moment flush() returns.
    let direct = builder(&url, &ns).no_memory_tier().build().await.unwrap();
    assert_eq!(title(&direct, &conn_b).await, "edited on A");
    // B's memory copy goes with the broadcast, one pub/sub hop later.
    assert!(
        eventually(Duration::from_secs(2), async || {
            title(&b, &conn_b).await == "edited on A"
        })
        .await
    );
    let _ = std::fs::remove_file(&path);
}

/// Item 3: the writes SQLite's update hook does not report still invalidate: `DELETE`
/// without `WHERE` (the truncate optimisation), WITHOUT ROWID tables (also through a cached
/// statement run again in a later transaction, and for a table created after `install`),
/// and rows replaced by `REPLACE`.
#[tokio::test]
async fn writes_the_update_hook_misses_still_invalidate() {
    let cache = QueryCache::builder().build().await.unwrap();
    let invalidator = SqliteInvalidator::new(cache.clone()).unwrap();
    let conn = Connection::open_in_memory().unwrap();
    setup(&conn);
    conn.execute_batch(
        "CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID;
         INSERT INTO kv VALUES ('a', 'one');",
    )
    .unwrap();
    invalidator.install(&conn);
    conn.execute_batch(
        "CREATE TABLE later (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID;
         INSERT INTO later VALUES ('a', 'one');",
    )
    .unwrap();
    let conn = Mutex::new(conn);
    let read = |table: &'static str| {
        let (cache, conn) = (&cache, &conn);
        async move {
            let tags = [table];
            cache
                .get_or_load(table, CacheOptions::new().tags(&tags), || async {
                    let sql = match table {
                        "posts" => "SELECT group_concat(title) FROM posts",
                        "kv" => "SELECT group_concat(v) FROM kv",
                        _ => "SELECT group_concat(v) FROM later",
                    };
                    conn.lock()
                        .unwrap()
                        .query_row(sql, [], |r| r.get::<_, Option<String>>(0))
                })
                .await
                .unwrap()
        }
    };

    assert_eq!(read("posts").await.as_deref(), Some("first"));
    conn.lock()
        .unwrap()
        .execute(
            "INSERT OR REPLACE INTO posts (id, title) VALUES (1, 'replaced')",
            [],
        )
        .unwrap();
    assert_eq!(read("posts").await.as_deref(), Some("replaced"), "REPLACE");
    conn.lock()
        .unwrap()
        .execute("DELETE FROM posts", [])
        .unwrap();
    assert_eq!(read("posts").await, None, "DELETE without WHERE");

    assert_eq!(read("kv").await.as_deref(), Some("one"));
    let update = "UPDATE kv SET v = ?1 WHERE k = 'a'";
    conn.lock()
        .unwrap()
        .prepare_cached(update)
        .unwrap()
        .execute(["two"])
        .unwrap();
    assert_eq!(read("kv").await.as_deref(), Some("two"), "WITHOUT ROWID");
    {
        // The cached statement again, in a transaction of its own.
        let mut c = conn.lock().unwrap();
        let tx = c.transaction().unwrap();
        tx.prepare_cached(update)
            .unwrap()
            .execute(["three"])
            .unwrap();
        tx.commit().unwrap();
    }
    assert_eq!(
        read("kv").await.as_deref(),
        Some("three"),
        "cached statement, later transaction"
    );

    assert_eq!(read("later").await.as_deref(), Some("one"));
    conn.lock()
        .unwrap()
        .execute("UPDATE later SET v = 'two'", [])
        .unwrap();
    assert_eq!(
        read("later").await.as_deref(),
        Some("two"),
        "table created after install"
    );
    invalidator.flush().await;
}

/// In WAL mode the invalidation follows the commit (the WAL hook): a write through one
/// connection is visible to the next read of another connection, and the WAL is still
/// checkpointed (installing the hook turns SQLite's own automatic checkpoint off).
#[tokio::test]
async fn wal_mode_invalidates_after_the_commit_and_still_checkpoints() {
    let cache = QueryCache::builder().build().await.unwrap();
    let invalidator = SqliteInvalidator::new(cache.clone()).unwrap();
    let dir = std::env::temp_dir().join(namespace("wal"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("wal.db");
    let writer = Connection::open(&path).unwrap();
    writer.pragma_update(None, "journal_mode", "WAL").unwrap();
    writer.pragma_update(None, "synchronous", "OFF").unwrap();
    setup(&writer);
    invalidator.install(&writer);
    let reader = Mutex::new(Connection::open(&path).unwrap());
    assert_eq!(title(&cache, &reader).await, "first");
    writer
        .execute("UPDATE posts SET title = 'walled' WHERE id = 1", [])
        .unwrap();
    assert_eq!(title(&cache, &reader).await, "walled");
    for i in 0..3000 {
        writer
            .execute(
                "INSERT INTO comments (post, body) VALUES (1, ?1)",
                [format!("{i:0>200}")],
            )
            .unwrap();
    }
    let wal = std::fs::metadata(dir.join("wal.db-wal")).unwrap().len();
    assert!(wal < 8 << 20, "the WAL was checkpointed: {wal} bytes");
    invalidator.flush().await;
    let _ = std::fs::remove_dir_all(&dir);
}
