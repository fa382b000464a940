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
use perf_rt::suite::{Config, PerfSuite, init_performance_suite};

pub use db::Db;

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub db: Arc<Db>,
    /// Turns writes into cache invalidations; awaited before a write is answered.
    pub invalidator: SqliteInvalidator,
}

/// The in-memory tier's bound: what its entries (keys and serialised values) may hold.
pub const MEMORY_TIER_BYTES: u64 = 8 << 20;

/// The query cache, from `PERF_QUERY_CACHE_*` and `PERF_REDIS_URL` (without it, the
/// in-memory tier only). Installed as the global cache `#[optimize_query]` uses, and
/// hooked to the database so writes invalidate what they change.
pub async fn cache(db: &Db) -> Result<(QueryCache, SqliteInvalidator), String> {
    let mut builder = QueryCacheBuilder::from_env();
    // Pages of different searches differ in size: bound the memory tier by bytes, unless
    // the environment sets a number of entries.
    if std::env::var_os(perf_rt::cache::ENV_MAX_ENTRIES).is_none() {
        builder = builder.max_bytes(MEMORY_TIER_BYTES);
    }
    let cache = builder.build().await.map_err(|e| e.to_string())?;
    perf_rt::cache::set_global(cache.clone()).map_err(|e| e.to_string())?;
    let invalidator = SqliteInvalidator::new(cache.clone()).map_err(|e| e.to_string())?;
    db.configure(|conn| invalidator.install(conn));
    Ok((cache, invalidator))
}

/// What caches may do with the application's own responses, unless a handler says
/// otherwise: a journal is one person's and changes with every write, so browsers may keep
/// a copy but must revalidate it, and shared caches must not keep it. (Without a policy,
/// caches may assign heuristic freshness and show a stale page.)
pub const PAGE_CACHE_CONTROL: &str = "private, no-cache";

/// The application's own routes: pages and form handling, each response with
/// [`PAGE_CACHE_CONTROL`] (the embedded assets and the monitoring endpoints have their own).
pub fn app(db: Db, invalidator: SqliteInvalidator) -> Router {
    let state = AppState {
        db: Arc::new(db),
        invalidator,
    };
    pages::routes()
        .with_state(state)
        .layer(axum::middleware::map_response(cache_policy))
        // No inline script or style without the request's nonce: the critical CSS and the
        // import map carry it.
        .layer(perf_rt::csp::ContentSecurityPolicy::strict())
}

async fn cache_policy(mut response: axum::response::Response) -> axum::response::Response {
    response
        .headers_mut()
        .entry(axum::http::header::CACHE_CONTROL)
        .or_insert(axum::http::HeaderValue::from_static(PAGE_CACHE_CONTROL));
    response
}

/// The application as it runs: its routes, the embedded assets and the performance suite
/// (monitor, endpoints, compression, memory timeline, browser metrics), configured by the
/// `PERF_*` variables.
pub async fn build(db: Db) -> Result<(Router, PerfSuite), String> {
    let config = Config::from_env().map_err(|e| e.to_string())?;
    let (cache, invalidator) = cache(&db).await?;
    let config = config.assets(&ASSETS).query_cache(cache);
    let (router, suite) = init_performance_suite(app(db, invalidator), config)
        .await
        .map_err(|e| e.to_string())?;
    let _ = pages::VITALS_TAG.set(suite.vitals_script_tag());
    Ok((router, suite))
}
