//! Inner Architect: a journaling application built with perf-suite, and its example.
//!
//! Everything it serves is inside the binary: askama templates are compiled in, and the
//! stylesheets, scripts and images under `static/` are minified, hashed, precompressed
//! and embedded at build time by `perf_build::run()` (see `build.rs`).

// The generated manifest and the `asset_url!`/`asset_integrity!` macros. It comes
// first: the templates of the modules below use the macros.
perf_rt::include_assets!();

pub mod db;
mod pages;
pub mod queries;

use std::sync::Arc;

use axum::Router;
use perf_rt::cache::{QueryCache, QueryCacheBuilder, SqliteInvalidator};

pub use db::Db;

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub db: Arc<Db>,
    /// Turns writes into cache invalidations; awaited before a write is answered.
    pub invalidator: SqliteInvalidator,
}

/// The query cache, from `PERF_QUERY_CACHE_*` and `PERF_REDIS_URL` (without it, the
/// in-memory tier only). Installed as the global cache `#[optimize_query]` uses, and
/// hooked to the database so writes invalidate what they change.
pub async fn cache(db: &Db) -> Result<(QueryCache, SqliteInvalidator), String> {
    let cache = QueryCacheBuilder::from_env()
        .build()
        .await
        .map_err(|e| e.to_string())?;
    perf_rt::cache::set_global(cache.clone()).map_err(|e| e.to_string())?;
    let invalidator = SqliteInvalidator::new(cache.clone()).map_err(|e| e.to_string())?;
    db.configure(|conn| invalidator.install(conn));
    Ok((cache, invalidator))
}

/// The whole application: pages, form handling and the embedded assets.
pub fn app(db: Db, invalidator: SqliteInvalidator) -> Router {
    let state = AppState {
        db: Arc::new(db),
        invalidator,
    };
    pages::routes().with_state(state).merge(ASSETS.router())
}
