//! Runtime of perf-suite.
//!
//! Each component lives in its own module behind a cargo feature of the same name
//! (`full` enables all of them):
//!
//! - [`assets`]: serves the assets that `perf-build` embedded into the binary, with no
//!   filesystem and no copies; in a debug build run with `PERF_DEV=1` (feature `dev`),
//!   serves them from their source folder instead and keeps open pages up to date
//!   ([`assets::Assets::dev_mode`]).
//! - [`memory`]: memory profiler: a tracking global allocator, sampled call sites,
//!   snapshots, leak detection, a timeline and `#[profile_memory]`.
//! - [`cache`]: the query cache (memory tier, Redis tier, tag invalidation,
//!   `#[optimize_query]`).
//! - [`monitor`]: request timing, query analysis (N+1), process resources, application
//!   metrics, browser metrics; [`endpoints`] publishes them (JSON, Prometheus, dashboard).
//! - [`csp`]: a Content-Security-Policy layer with a nonce per request, which
//!   `critical_css!` and the asset tags pick up.
//! - [`compression`]: br/zstd/gzip for dynamic responses, leaving embedded assets alone.
//! - [`serve`]: a listener for `axum::serve` that sends large embedded bodies with
//!   `sendfile`, from the executable's own pages.
//! - [`suite`]: `init_performance_suite(router, Config::from_env()?)` wires all of the
//!   above into an axum router.
//!
//! The generated asset manifest is brought in once, at the crate root, with
//! [`include_assets!`]:
//!
//! ```ignore
//! perf_rt::include_assets!();
//! ```

#[cfg(feature = "assets")]
pub mod assets;

#[cfg(feature = "askama")]
pub mod askama_filters;

#[cfg(feature = "assets")]
pub mod csp;

#[cfg(feature = "cache")]
pub mod cache;

#[cfg(feature = "cache")]
pub use perf_rt_macros::optimize_query;

#[doc(hidden)]
pub mod codegen;

#[cfg(any(feature = "monitor", all(feature = "dev", debug_assertions)))]
mod env;

#[cfg(feature = "memory")]
pub mod memory;

#[cfg(feature = "monitor")]
pub mod monitor;

#[cfg(feature = "monitor")]
pub mod endpoints;

#[cfg(feature = "monitor")]
pub mod suite;

#[cfg(feature = "monitor")]
pub use suite::{Config, PerfSuite, init_performance_suite};

#[cfg(feature = "compression")]
pub mod compression;

#[cfg(feature = "serve")]
pub mod serve;
