//! The pages' reads, cached in the query cache. Every entry is tagged with the table it
//! reads; the SQLite update hook invalidates the tag when the table is written, here and,
//! through Redis, in every other instance.

use perf_rt::optimize_query;

use crate::db::{Db, JournalPage, Profile, Reflection};

/// The newest reflections.
#[optimize_query(expire = 60, key_prefix = "reflections:recent", tags = ["reflections"], skip(db))]
pub async fn recent(db: &Db, limit: u32) -> Result<Vec<Reflection>, rusqlite::Error> {
    db.recent(limit).await
}

/// One reflection by id.
#[optimize_query(expire = 300, key_prefix = "reflections:one", tags = ["reflections"], skip(db))]
pub async fn reflection(db: &Db, id: i64) -> Result<Option<Reflection>, rusqlite::Error> {
    db.get(id).await
}

/// A page of the journal, searched: the key holds the search and the page, so each
/// search is cached on its own and every write drops them all.
#[optimize_query(expire = 60, key_prefix = "reflections:page", tags = ["reflections"], skip(db))]
pub async fn journal(
    db: &Db,
    q: String,
    page: u32,
    per_page: u32,
) -> Result<JournalPage, rusqlite::Error> {
    db.journal(q, page, per_page).await
}

/// Reflections with the same mood as reflection `id`.
#[optimize_query(expire = 300, key_prefix = "reflections:related", tags = ["reflections"], skip(db))]
pub async fn related(db: &Db, id: i64, limit: u32) -> Result<Vec<Reflection>, rusqlite::Error> {
    db.related(id, limit).await
}

/// Reflections per day and mood since `since` (UNIX seconds, rounded by the caller to the
/// day so the key repeats), for the mood history: bounded by the days, not the writes.
#[optimize_query(expire = 300, key_prefix = "reflections:moods", tags = ["reflections"], skip(db))]
pub async fn moods_by_day(db: &Db, since: i64) -> Result<Vec<(i64, String, u32)>, rusqlite::Error> {
    db.moods_by_day(since).await
}

/// The writer's profile.
#[optimize_query(expire = 600, key_prefix = "profile", tags = ["profile"], skip(db))]
pub async fn profile(db: &Db) -> Result<Profile, rusqlite::Error> {
    db.profile().await
}
