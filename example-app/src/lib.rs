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

use std::sync::Arc;

use axum::Router;

pub use db::Db;

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub db: Arc<Db>,
}

/// The whole application: pages, form handling and the embedded assets.
pub fn app(db: Db) -> Router {
    let state = AppState { db: Arc::new(db) };
    pages::routes().with_state(state).merge(ASSETS.router())
}
