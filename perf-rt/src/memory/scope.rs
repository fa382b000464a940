//! What one call allocated: the runtime behind `#[profile_memory]`.
//!
//! Figures are per thread: a scope counts what its own thread allocates and frees while it
//! runs, so concurrent requests do not pollute each other. An async function is measured
//! poll by poll, on whichever thread polls it.

use std::collections::HashMap;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::{Pin, pin};
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Mutex, OnceLock};
use std::task::{Context, Poll};

use serde::{Deserialize, Serialize};

use super::allocator::{ThreadCounters, thread_counters, thread_peak_begin, thread_peak_end};

/// Allocation figures of one measured call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeStats {
    /// Blocks allocated during the call (reallocations not included).
    pub allocations: u64,
    /// Bytes allocated during the call (a reallocation adds its growth).
    pub bytes_allocated: u64,
    /// Highest net bytes held at any point of the call, above what was held at its start.
    pub peak_bytes: u64,
    /// Net bytes still held after the call (negative: it freed older memory).
    pub retained_bytes: i64,
}

impl ScopeStats {
    fn accumulate(&mut self, start: ThreadCounters, end: ThreadCounters, peak: i64) {
        // Peak within this stretch, measured from the net held before it.
        let stretch_peak = self.retained_bytes + (peak - start.net);
        self.peak_bytes = self.peak_bytes.max(stretch_peak.max(0) as u64);
        self.allocations += end.allocs - start.allocs;
        self.bytes_allocated += end.bytes_allocated - start.bytes_allocated;
        self.retained_bytes += end.net - start.net;
    }
}

/// Measures what `f` allocates on the current thread.
pub fn measure<R>(f: impl FnOnce() -> R) -> (R, ScopeStats) {
    let start = thread_counters();
    let previous = thread_peak_begin();
    let out = f();
    let end = thread_counters();
    let peak = thread_peak_end(previous);
    let mut stats = ScopeStats::default();
    stats.accumulate(start, end, peak);
    (out, stats)
}

/// Measures a call from its creation to its drop and records it under a name
/// (what `#[profile_memory]` expands to for a plain function).
///
/// It reads the counters of the thread it was created on, so it is not `Send`: held
/// across an `.await` on a multi-threaded runtime it would be dropped on another thread
/// and subtract one thread's counters from another's. A future holding one cannot be
/// spawned; measure async code with [`profile_future`] (or `#[profile_memory]` on the
/// `async fn`), which measures each poll on the thread that runs it.
///
/// ```compile_fail
/// # async fn io() {}
/// fn spawn<F: std::future::Future + Send>(_: F) {}
/// spawn(async {
///     let _scope = perf_rt::memory::ScopeGuard::enter("handler", None);
///     io().await; // the guard may come back on another thread
/// });
/// ```
#[derive(Debug)]
#[must_use = "the scope measures until it is dropped"]
pub struct ScopeGuard {
    name: &'static str,
    threshold: Option<u64>,
    start: ThreadCounters,
    previous_peak: i64,
    /// Not `Send` (nor `Sync`): the figures belong to the creating thread.
    _thread_bound: PhantomData<*const ()>,
}

impl ScopeGuard {
    /// Starts measuring; `threshold` overrides [`log_threshold`] for this name.
    pub fn enter(name: &'static str, threshold: Option<u64>) -> Self {
        Self {
            name,
            threshold,
            start: thread_counters(),
            previous_peak: thread_peak_begin(),
            _thread_bound: PhantomData,
        }
    }
}

impl Drop for ScopeGuard {
    fn drop(&mut self) {
        let end = thread_counters();
        let peak = thread_peak_end(self.previous_peak);
        let mut stats = ScopeStats::default();
        stats.accumulate(self.start, end, peak);
        record(self.name, self.threshold, stats);
    }
}

/// Runs `fut`, measuring every poll, and records the call under `name` when it completes
/// (what `#[profile_memory]` expands to for an async function).
pub async fn profile_future<F: Future>(
    name: &'static str,
    threshold: Option<u64>,
    fut: F,
) -> F::Output {
    let fut = pin!(fut);
    let (out, stats) = Measured {
        fut,
        stats: ScopeStats::default(),
    }
    .await;
    record(name, threshold, stats);
    out
}

struct Measured<'a, F> {
    fut: Pin<&'a mut F>,
    stats: ScopeStats,
}

impl<F: Future> Future for Measured<'_, F> {
    type Output = (F::Output, ScopeStats);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let start = thread_counters();
        let previous = thread_peak_begin();
        let poll = self.fut.as_mut().poll(cx);
        let end = thread_counters();
        let peak = thread_peak_end(previous);
        self.stats.accumulate(start, end, peak);
        poll.map(|out| (out, self.stats))
    }
}

/// Totals of every call recorded under one name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionMemory {
    /// The function's name (by default its module path).
    pub name: String,
    /// Calls recorded.
    pub calls: u64,
    /// Blocks allocated, all calls together.
    pub allocations: u64,
    /// Bytes allocated, all calls together.
    pub bytes_allocated: u64,
    /// Highest peak of a single call.
    pub max_peak_bytes: u64,
    /// Net bytes retained, all calls together: steady growth here is a leak suspect.
    pub retained_bytes: i64,
    /// The most recent call.
    pub last: ScopeStats,
}

fn functions() -> &'static Mutex<HashMap<&'static str, FunctionMemory>> {
    static FUNCTIONS: OnceLock<Mutex<HashMap<&'static str, FunctionMemory>>> = OnceLock::new();
    FUNCTIONS.get_or_init(Default::default)
}

static LOG_THRESHOLD: AtomicU64 = AtomicU64::new(DEFAULT_LOG_THRESHOLD);
static LOG_THRESHOLD_FROM_ENV: OnceLock<()> = OnceLock::new();
const DEFAULT_LOG_THRESHOLD: u64 = 1024 * 1024;

/// The peak (bytes) above which a profiled call is logged (at `info`, target
/// `perf_rt::memory`): `PERF_MEMORY_LOG_THRESHOLD`, 1 MiB by default.
pub fn log_threshold() -> u64 {
    LOG_THRESHOLD_FROM_ENV.get_or_init(|| {
        if let Some(bytes) = std::env::var("PERF_MEMORY_LOG_THRESHOLD")
            .ok()
            .and_then(|v| v.trim().parse().ok())
        {
            LOG_THRESHOLD.store(bytes, Relaxed);
        }
    });
    LOG_THRESHOLD.load(Relaxed)
}

/// Sets the peak (bytes) above which profiled calls are logged, overriding the
/// environment.
pub fn set_log_threshold(bytes: u64) {
    let _ = LOG_THRESHOLD_FROM_ENV.set(());
    LOG_THRESHOLD.store(bytes, Relaxed);
}

fn record(name: &'static str, threshold: Option<u64>, stats: ScopeStats) {
    {
        let mut map = functions().lock().unwrap_or_else(|e| e.into_inner());
        let entry = map.entry(name).or_insert_with(|| FunctionMemory {
            name: name.to_owned(),
            ..FunctionMemory::default()
        });
        entry.calls += 1;
        entry.allocations += stats.allocations;
        entry.bytes_allocated += stats.bytes_allocated;
        entry.max_peak_bytes = entry.max_peak_bytes.max(stats.peak_bytes);
        entry.retained_bytes += stats.retained_bytes;
        entry.last = stats;
    }
    if stats.peak_bytes >= threshold.unwrap_or_else(log_threshold) {
        tracing::info!(
            target: "perf_rt::memory",
            function = name,
            allocations = stats.allocations,
            bytes_allocated = stats.bytes_allocated,
            peak_bytes = stats.peak_bytes,
            retained_bytes = stats.retained_bytes,
            "memory-heavy call"
        );
    }
}

/// Totals of every function measured with `#[profile_memory]`, sorted by name.
pub fn function_stats() -> Vec<FunctionMemory> {
    let map = functions().lock().unwrap_or_else(|e| e.into_inner());
    let mut out: Vec<FunctionMemory> = map.values().cloned().collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Totals of one function measured with `#[profile_memory]`.
pub fn function_stat(name: &str) -> Option<FunctionMemory> {
    let map = functions().lock().unwrap_or_else(|e| e.into_inner());
    map.get(name).cloned()
}
