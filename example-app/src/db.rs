//! The SQLite database: one file, created with its schema and a few reflections on first
//! start.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

/// Moods a reflection can carry.
pub const MOODS: &[&str] = &["calm", "curious", "energised", "grateful", "stuck", "tired"];

/// One journal entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reflection {
    /// Row id.
    pub id: i64,
    /// Title.
    pub title: String,
    /// One of [`MOODS`].
    pub mood: String,
    /// Text, paragraphs separated by blank lines.
    pub body: String,
    /// Creation time, UNIX seconds.
    pub created_at: i64,
}

impl Reflection {
    /// The first 160 characters of the body.
    pub fn excerpt(&self) -> String {
        let mut chars = self.body.chars();
        let head: String = chars.by_ref().take(160).collect();
        if chars.next().is_some() {
            format!("{}…", head.trim_end())
        } else {
            head
        }
    }

    /// The body's paragraphs.
    pub fn paragraphs(&self) -> Vec<&str> {
        self.body
            .split("\n\n")
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect()
    }
}

/// A handle on the database file. Queries run on tokio's blocking pool.
pub struct Db {
    conn: Arc<Mutex<Connection>>,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Db {
    /// Opens (creating if needed) the database at `url`: a path, `sqlite://path` or
    /// `sqlite::memory:`.
    pub fn open(url: &str) -> rusqlite::Result<Db> {
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        let conn = if path == ":memory:" {
            Connection::open_in_memory()?
        } else {
            Connection::open(Path::new(path))?
        };
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // Every statement is timed into the performance monitor (per fingerprint, slow
        // list, N+1 detection).
        perf_rt::monitor::time_queries(&conn);
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS reflections (
                 id INTEGER PRIMARY KEY,
                 title TEXT NOT NULL,
                 mood TEXT NOT NULL,
                 body TEXT NOT NULL,
                 created_at INTEGER NOT NULL
             );
             CREATE INDEX IF NOT EXISTS reflections_created ON reflections (created_at DESC);",
        )?;
        let count: i64 = conn.query_row("SELECT count(*) FROM reflections", [], |r| r.get(0))?;
        if count == 0 {
            let t = now();
            for (i, (title, mood, body)) in [
                ("Started the morning pages", "curious", "Three pages before coffee. Most of it was noise, but one line stuck: I keep planning rooms I never build.\n\nNext: one small room this week."),
                ("A hard conversation, handled", "calm", "I said what I needed without rehearsing it twenty times. It went better than the rehearsals.\n\nNext: notice when I start rehearsing."),
                ("Energy dip after lunch", "tired", "Again the two o'clock slump. Walked for ten minutes and it lifted.\n\nNext: schedule the walk instead of hoping for it."),
            ]
            .into_iter()
            .enumerate()
            {
                conn.execute(
                    "INSERT INTO reflections (title, mood, body, created_at) VALUES (?1, ?2, ?3, ?4)",
                    params![title, mood, body, t - 86_400 * (3 - i as i64)],
                )?;
            }
        }
        Ok(Db {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` on the connection, for setup such as installing hooks.
    pub fn configure(&self, f: impl FnOnce(&Connection)) {
        f(&self.conn.lock().unwrap_or_else(|e| e.into_inner()));
    }

    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> rusqlite::Result<T> {
        let conn = self.conn.clone();
        // Keeps the request's scope, so the queries count toward its N+1 check and its
        // Server-Timing.
        perf_rt::monitor::spawn_blocking(move || {
            let conn = conn.lock().unwrap_or_else(|e| e.into_inner());
            f(&conn)
        })
        .await
        .unwrap_or_else(|e| Err(rusqlite::Error::ToSqlConversionFailure(Box::new(e))))
    }

    /// The newest reflections, newest first.
    pub async fn recent(&self, limit: u32) -> rusqlite::Result<Vec<Reflection>> {
        self.with(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, title, mood, body, created_at FROM reflections ORDER BY created_at DESC, id DESC LIMIT ?1",
            )?;
            stmt.query_map([limit], row)?.collect()
        })
        .await
    }

    /// One reflection.
    pub async fn get(&self, id: i64) -> rusqlite::Result<Option<Reflection>> {
        self.with(move |c| {
            c.query_row(
                "SELECT id, title, mood, body, created_at FROM reflections WHERE id = ?1",
                [id],
                row,
            )
            .optional()
        })
        .await
    }

    /// Stores a reflection and returns its id.
    pub async fn insert(&self, title: String, mood: String, body: String) -> rusqlite::Result<i64> {
        self.with(move |c| {
            c.execute(
                "INSERT INTO reflections (title, mood, body, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![title, mood, body, now()],
            )?;
            Ok(c.last_insert_rowid())
        })
        .await
    }
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Reflection> {
    Ok(Reflection {
        id: r.get(0)?,
        title: r.get(1)?,
        mood: r.get(2)?,
        body: r.get(3)?,
        created_at: r.get(4)?,
    })
}
