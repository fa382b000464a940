//! Memory profiler: a tracking global allocator, sampled call sites, snapshots, leak
//! detection, a timeline, per-type instance counts and `#[profile_memory]`.
//!
//! Install the allocator once, in the binary, then ask the profiler questions:
//!
//! ```no_run
//! use perf_rt::memory::{MemoryProfiler, TrackingAllocator};
//!
//! #[global_allocator]
//! static ALLOC: TrackingAllocator = TrackingAllocator::system();
//!
//! let profiler = MemoryProfiler::global();
//! let _timeline = profiler.start_timeline().expect("timeline thread");
//! profiler.take_snapshot("startup");
//! // … serve traffic, take more snapshots …
//! let leaks = profiler.detect_leaks();
//! println!("{}", leaks.to_json());
//! ```
//!
//! Counters (live bytes and blocks, totals) are exact; the peak is within
//! [`PEAK_PUBLISH_BYTES`] per thread holding bytes back. Call sites are sampled: about
//! one stack per [`sample_rate`] bytes allocated (a Poisson process, like tcmalloc's heap
//! profiler), and per-site figures are estimates scaled up from the samples. Symbols are
//! resolved only when a report asks for them.
//!
//! Without the allocator installed everything still works and reports zeros
//! ([`MemoryReport::allocator_installed`] says so), except instance counts, which do not
//! depend on it.

mod allocator;
mod instances;
mod leaks;
mod peak;
mod profiler;
mod sampler;
mod scope;
mod snapshot;
mod symbols;
mod timeline;

pub use allocator::{
    DEFAULT_SAMPLE_RATE, Stats, TrackingAllocator, is_installed, reset_peak, sample_rate,
    set_sample_rate, stats,
};
pub use instances::{Track, Tracked, TypeInstances, live_instances};
pub use leaks::{Leak, LeakOptions, LeakPoint, LeakReport, TypeLeak};
pub use peak::PEAK_PUBLISH_BYTES;
pub use profiler::{MemoryConfig, MemoryProfiler, MemoryReport, SamplingInfo, SnapshotSummary};
pub use scope::{
    FunctionMemory, ScopeGuard, ScopeStats, function_stat, function_stats, log_threshold, measure,
    profile_future, set_log_threshold,
};
pub use snapshot::{SiteDiff, SiteUsage, Snapshot, TraceUsage};
pub use symbols::{CallSite, StackFrame};
pub use timeline::{TimelineHandle, TimelinePoint, rss_bytes};

/// Measures a function's allocations; see [`ScopeStats`] and [`function_stats`].
///
/// `#[profile_memory]`, `#[profile_memory(name = "…")]`,
/// `#[profile_memory(threshold = 1048576)]` (bytes of peak above which a call is logged).
pub use perf_rt_macros::profile_memory;
