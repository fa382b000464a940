//! The pages' reads, cached in the query cache. Every entry is tagged with the table it
//! reads; the SQLite update hook invalidates the tag when the table is written, here and,
//! through Redis, in every other instance.

use perf_rt::optimize_query;

use crate::db::{Db, Reflection};

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
