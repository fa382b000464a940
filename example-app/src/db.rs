//! The SQLite database: one file, brought up to date by numbered migrations and seeded
//! with a season of reflections on first start.

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

/// A page of the journal: the reflections on it and how many match in all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalPage {
    /// The reflections of the page, newest first.
    pub reflections: Vec<Reflection>,
    /// How many reflections match the search (all of them without one).
    pub total: u64,
}

/// The writer's profile: one row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// How the pages greet the writer.
    pub name: String,
    /// Reflections a week the writer aims for, 1 to 14.
    pub weekly_goal: u32,
}

/// One step of the schema per version (`PRAGMA user_version`). A step never changes once
/// released: a new need is a new step.
const MIGRATIONS: &[&str] = &[
    // 1: the journal (a database made before migrations has it already).
    "CREATE TABLE IF NOT EXISTS reflections (
         id INTEGER PRIMARY KEY,
         title TEXT NOT NULL,
         mood TEXT NOT NULL,
         body TEXT NOT NULL,
         created_at INTEGER NOT NULL
     );
     CREATE INDEX IF NOT EXISTS reflections_created ON reflections (created_at DESC);",
    // 2: edits keep their time; related reflections are found by mood.
    "ALTER TABLE reflections ADD COLUMN updated_at INTEGER;
     CREATE INDEX reflections_mood ON reflections (mood, created_at DESC);",
    // 3: the profile.
    "CREATE TABLE profile (
         id INTEGER PRIMARY KEY CHECK (id = 1),
         name TEXT NOT NULL,
         weekly_goal INTEGER NOT NULL
     );
     INSERT INTO profile (id, name, weekly_goal) VALUES (1, 'Architect', 3);",
];

/// Brings the schema up to date and seeds an empty journal. Each step runs in an
/// immediate transaction that reads the version again, so two instances starting on one
/// file at once apply each step once.
fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    for (i, step) in MIGRATIONS.iter().enumerate() {
        let version = i as i64 + 1;
        let tx =
            rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
        let current: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if current < version {
            tx.execute_batch(step)?;
            tx.pragma_update(None, "user_version", version)?;
        }
        tx.commit()?;
    }
    let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
    let count: i64 = tx.query_row("SELECT count(*) FROM reflections", [], |r| r.get(0))?;
    if count == 0 {
        seed(&tx, now())?;
    }
    tx.commit()
}

/// The reflections a new journal starts with: the first three, then a season of them,
/// oldest first, so the journal has pages, the moods a history and the coach material.
const SEED: &[(&str, &str, &str)] = &[
    (
        "Started the morning pages",
        "curious",
        "Three pages before coffee. Most of it was noise, but one line stuck: I keep planning rooms I never build.\n\nNext: one small room this week.",
    ),
    (
        "A hard conversation, handled",
        "calm",
        "I said what I needed without rehearsing it twenty times. It went better than the rehearsals.\n\nNext: notice when I start rehearsing.",
    ),
    (
        "Energy dip after lunch",
        "tired",
        "Again the two o'clock slump. Walked for ten minutes and it lifted.\n\nNext: schedule the walk instead of hoping for it.",
    ),
    (
        "The drafting table",
        "energised",
        "Cleared the desk and laid out the week as if it were a floor plan: load-bearing tasks first, decoration last.\n\nNext: keep one wall empty for the unexpected.",
    ),
    (
        "Said no to a good idea",
        "stuck",
        "A friend offered a project I would enjoy. I said no, and spent the evening doubting it.\n\nNext: write down what the yes would have cost.",
    ),
    (
        "Thank-you note",
        "grateful",
        "Wrote to the teacher who made me rewrite my first essay four times. She remembered the essay.\n\nNext: one note a month.",
    ),
    (
        "Foundations before facades",
        "calm",
        "Slept eight hours three nights in a row. Everything else this week was easier to build on top of that.\n\nNext: protect the evening wind-down.",
    ),
    (
        "Rain day",
        "tired",
        "Cancelled the run, read instead. Felt guilty, then less guilty.\n\nNext: plan an indoor alternative before the forecast decides.",
    ),
    (
        "A question worth an afternoon",
        "curious",
        "Why do I finish other people's projects faster than my own? Suspect: nobody is watching my own.\n\nNext: show the half-built thing to someone.",
    ),
    (
        "Shipped the small room",
        "energised",
        "The shelf is up. It is slightly crooked and I like it more for that.\n\nNext: the next small room, not the big one.",
    ),
    (
        "Blueprint review",
        "calm",
        "Read back a month of entries. The same three worries, each smaller than the last time.\n\nNext: retire one worry on purpose.",
    ),
    (
        "Stalled on the plan",
        "stuck",
        "Opened the plan four times and closed it four times. The first step is too big.\n\nNext: cut the first step in half, then in half again.",
    ),
    (
        "Long walk, no phone",
        "grateful",
        "Two hours along the river. Came back with an idea and no photos of it.\n\nNext: leave the phone behind once a week.",
    ),
    (
        "Morning light",
        "energised",
        "Up before the alarm, wrote before the news. The day had a shape before anyone else gave it one.\n\nNext: keep the news until noon.",
    ),
    (
        "Too many open tabs",
        "tired",
        "Eleven projects open in my head at once. Closed seven by writing them down.\n\nNext: a list, not a memory.",
    ),
    (
        "A kind review",
        "grateful",
        "A colleague pointed out what worked before what did not. I want to review like that.\n\nNext: say the good part first.",
    ),
    (
        "Measuring twice",
        "curious",
        "Timed how long my tasks take against my guesses. I am optimistic by about a half.\n\nNext: plan with the real numbers.",
    ),
    (
        "Quiet Sunday",
        "calm",
        "Did nothing useful and felt fine about it. Rest is part of the structure.\n\nNext: one quiet morning every week.",
    ),
    (
        "The crooked beam",
        "stuck",
        "A mistake from last month still bothers me. I fixed what I could; the rest is a lesson.\n\nNext: write the lesson down and let the mistake go.",
    ),
    (
        "New room, new habit",
        "energised",
        "Started reading twenty pages a night. Day six, so far so good.\n\nNext: put the book on the pillow in the morning.",
    ),
    (
        "Lunch with an old friend",
        "grateful",
        "We talked about who we meant to become ten years ago. Closer than I thought.\n\nNext: call before another year passes.",
    ),
    (
        "Low battery",
        "tired",
        "Short nights all week. The plan held up anyway, which says something about the plan.\n\nNext: bed by eleven, plan or no plan.",
    ),
    (
        "Curiosity walk",
        "curious",
        "Took a different street home every day this week. Found a bakery and a question.\n\nNext: follow the question.",
    ),
    (
        "Steady",
        "calm",
        "Nothing dramatic: I did the things I said I would. That is the whole point.\n\nNext: more weeks like this one.",
    ),
];

fn seed(tx: &rusqlite::Transaction<'_>, now: i64) -> rusqlite::Result<()> {
    let n = SEED.len() as i64;
    let mut insert = tx.prepare(
        "INSERT INTO reflections (title, mood, body, created_at) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (i, (title, mood, body)) in SEED.iter().enumerate() {
        // Every four days back from yesterday, the first one oldest; the first three
        // keep the order (and the ids 1, 2, 3) of the journal's first version.
        let days_ago = 4 * (n - i as i64) - 3;
        insert.execute(params![title, mood, body, now - 86_400 * days_ago])?;
    }
    Ok(())
}

/// A search term as a LIKE pattern: `%`, `_` and `\` match themselves.
fn like_pattern(q: &str) -> String {
    let mut p = String::with_capacity(q.len() + 2);
    p.push('%');
    for c in q.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// A handle on the database file. Queries run on tokio's blocking pool.
pub struct Db {
    conn: Arc<Mutex<Connection>>,
}

/// The time, in UNIX seconds.
pub(crate) fn now() -> i64 {
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
        migrate(&conn)?;
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

    /// A page of the journal (`page` from 1), `per_page` reflections newest first, those
    /// whose title or text contains `q` (any, when `q` is empty; ASCII case ignored).
    pub async fn journal(
        &self,
        q: String,
        page: u32,
        per_page: u32,
    ) -> rusqlite::Result<JournalPage> {
        self.with(move |c| {
            let pattern = like_pattern(&q);
            let offset = i64::from(page.max(1) - 1) * i64::from(per_page);
            let total: i64 = c.prepare_cached(
                "SELECT count(*) FROM reflections WHERE ?1 = '' OR title LIKE ?2 ESCAPE '\\' OR body LIKE ?2 ESCAPE '\\'",
            )?
            .query_row(params![q, pattern], |r| r.get(0))?;
            let mut stmt = c.prepare_cached(
                "SELECT id, title, mood, body, created_at FROM reflections WHERE ?1 = '' OR title LIKE ?2 ESCAPE '\\' OR body LIKE ?2 ESCAPE '\\' ORDER BY created_at DESC, id DESC LIMIT ?3 OFFSET ?4",
            )?;
            let reflections = stmt
                .query_map(params![q, pattern, per_page, offset], row)?
                .collect::<rusqlite::Result<_>>()?;
            Ok(JournalPage {
                reflections,
                total: total as u64,
            })
        })
        .await
    }

    /// Up to `limit` other reflections with the same mood as reflection `id`, newest first:
    /// one query, whatever the number.
    pub async fn related(&self, id: i64, limit: u32) -> rusqlite::Result<Vec<Reflection>> {
        self.with(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT r.id, r.title, r.mood, r.body, r.created_at FROM reflections r
                 JOIN reflections this ON this.id = ?1 AND r.mood = this.mood AND r.id <> this.id
                 ORDER BY r.created_at DESC, r.id DESC LIMIT ?2",
            )?;
            stmt.query_map(params![id, limit], row)?.collect()
        })
        .await
    }

    /// Reflections per day and mood since `since` (UNIX seconds): (day number since the
    /// epoch, mood, count), oldest first. At most one row per day and mood, however many
    /// reflections there are.
    pub async fn moods_by_day(&self, since: i64) -> rusqlite::Result<Vec<(i64, String, u32)>> {
        self.with(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT created_at / 86400 AS day, mood, count(*) FROM reflections
                 WHERE created_at >= ?1 GROUP BY day, mood ORDER BY day, mood",
            )?;
            stmt.query_map([since], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect()
        })
        .await
    }

    /// Replaces a reflection's title, mood and text; false when there is no such reflection.
    pub async fn update(
        &self,
        id: i64,
        title: String,
        mood: String,
        body: String,
    ) -> rusqlite::Result<bool> {
        self.with(move |c| {
            let n = c.execute(
                "UPDATE reflections SET title = ?2, mood = ?3, body = ?4, updated_at = ?5 WHERE id = ?1",
                params![id, title, mood, body, now()],
            )?;
            Ok(n == 1)
        })
        .await
    }

    /// Deletes a reflection; false when there was none.
    pub async fn delete(&self, id: i64) -> rusqlite::Result<bool> {
        self.with(move |c| Ok(c.execute("DELETE FROM reflections WHERE id = ?1", [id])? == 1))
            .await
    }

    /// The profile.
    pub async fn profile(&self) -> rusqlite::Result<Profile> {
        self.with(|c| {
            c.query_row(
                "SELECT name, weekly_goal FROM profile WHERE id = 1",
                [],
                |r| {
                    Ok(Profile {
                        name: r.get(0)?,
                        weekly_goal: r.get(1)?,
                    })
                },
            )
        })
        .await
    }

    /// Saves the profile.
    pub async fn save_profile(&self, profile: Profile) -> rusqlite::Result<()> {
        self.with(move |c| {
            c.execute(
                "UPDATE profile SET name = ?1, weekly_goal = ?2 WHERE id = 1",
                params![profile.name, profile.weekly_goal],
            )?;
            Ok(())
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
