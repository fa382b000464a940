//! Workspace-level integration tests of perf-suite.
//!
//! The library part embeds `fixtures/static` through this crate's build.rs, with the
//! macros exported so the compile-fail cases can name them from another crate; the
//! tests live in `tests/`.

perf_rt::include_assets!(export);

/// The `OUT_DIR` perf-build wrote into, for the snapshot and rerun tests.
pub const OUT_DIR: &str = env!("OUT_DIR");

/// The URL of the fixture stylesheet, resolved at compile time.
pub const APP_CSS: &str = asset_url!("css/app.css");
