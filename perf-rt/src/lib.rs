//! Runtime of perf-suite.
//!
//! Each component lives in its own module behind a cargo feature of the same name
//! (`full` enables all of them):
//!
//! - [`assets`]: serves the assets that `perf-build` embedded into the binary, with no
//!   filesystem and no copies.
//! - [`memory`]: memory profiler: a tracking global allocator, sampled call sites,
//!   snapshots, leak detection, a timeline and `#[profile_memory]`.
//! - [`cache`]: the query cache (memory tier, Redis tier, tag invalidation,
//!   `#[optimize_query]`).
//! - [`monitor`]: the performance monitor, with browser metrics (Core Web Vitals) sent by
//!   a small script of our own.
//!
//! The generated asset manifest is brought in once, at the crate root, with
//! [`include_assets!`]:
//!
//! ```ignore
//! perf_rt::include_assets!();
//! ```

#[cfg(feature = "assets")]
pub mod assets;

#[cfg(feature = "cache")]
pub mod cache;

#[cfg(feature = "cache")]
pub use perf_rt_macros::optimize_query;

#[doc(hidden)]
pub mod codegen;

#[cfg(feature = "memory")]
pub mod memory;

#[cfg(feature = "monitor")]
pub mod monitor;
