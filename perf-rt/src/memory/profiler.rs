//! `MemoryProfiler`: snapshots, comparisons, leak reports, the timeline and the report
//! behind `/api/performance/memory`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::allocator::{Stats, is_installed, sample_rate, set_sample_rate, stats};
use super::instances::{TypeInstances, live_instances};
use super::leaks::{LeakOptions, LeakReport, detect_leaks};
use super::sampler;
use super::scope::{FunctionMemory, function_stats};
use super::snapshot::{SiteDiff, SiteUsage, Snapshot, now_ms};
use super::timeline::{self, Ring, TimelineHandle, TimelinePoint};

/// Settings of a [`MemoryProfiler`]; [`MemoryConfig::from_env`] reads the `PERF_MEMORY_*`
/// variables.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryConfig {
    /// Snapshots kept; the oldest is dropped beyond it (`PERF_MEMORY_MAX_SNAPSHOTS`, 100).
    pub max_snapshots: usize,
    /// Timeline points kept (`PERF_MEMORY_TIMELINE_CAPACITY`, 720: an hour at 5 s).
    pub timeline_capacity: usize,
    /// Time between timeline points (`PERF_MEMORY_TIMELINE_INTERVAL_MS`, 5000).
    pub timeline_interval: Duration,
    /// Mean bytes between sampled allocations, applied by [`MemoryProfiler::new`] when
    /// set (`PERF_MEMORY_SAMPLE_RATE`; `0` turns sampling off). `None` keeps the
    /// allocator's own setting.
    pub sample_rate: Option<usize>,
    /// Call sites listed in a report.
    pub top_sites: usize,
    /// Leak detection thresholds.
    pub leaks: LeakOptions,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self {
            max_snapshots: 100,
            timeline_capacity: 720,
            timeline_interval: Duration::from_secs(5),
            sample_rate: None,
            top_sites: 20,
            leaks: LeakOptions::default(),
        }
    }
}

impl MemoryConfig {
    /// The defaults, overridden by the `PERF_MEMORY_*` environment variables that are set
    /// and parse.
    pub fn from_env() -> Self {
        fn var<T: std::str::FromStr>(name: &str) -> Option<T> {
            std::env::var(name).ok()?.trim().parse().ok()
        }
        let mut config = Self::default();
        if let Some(n) = var("PERF_MEMORY_MAX_SNAPSHOTS") {
            config.max_snapshots = n;
        }
        if let Some(n) = var("PERF_MEMORY_TIMELINE_CAPACITY") {
            config.timeline_capacity = n;
        }
        if let Some(ms) = var("PERF_MEMORY_TIMELINE_INTERVAL_MS") {
            config.timeline_interval = Duration::from_millis(ms);
        }
        config.sample_rate = var("PERF_MEMORY_SAMPLE_RATE");
        config
    }
}

/// Snapshots, comparisons, leak detection and the timeline.
///
/// ```
/// use perf_rt::memory::MemoryProfiler;
///
/// let profiler = MemoryProfiler::global();
/// let before = profiler.take_snapshot("before");
/// let cache: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
/// let after = profiler.take_snapshot("after");
/// for diff in profiler.compare(&before, &after).iter().take(3) {
///     println!("{}: {:+} bytes", diff.site.key(), diff.bytes_diff);
/// }
/// # drop(cache);
/// ```
#[derive(Debug)]
pub struct MemoryProfiler {
    config: MemoryConfig,
    /// `config.max_snapshots`, changeable after creation: the global profiler is created
    /// from the environment on first use, and the suite's `Config` applies its own value.
    max_snapshots: AtomicUsize,
    snapshots: Mutex<VecDeque<Arc<Snapshot>>>,
    timeline: Arc<Ring>,
}

impl Default for MemoryProfiler {
    fn default() -> Self {
        Self::new(MemoryConfig::default())
    }
}

impl MemoryProfiler {
    /// A profiler with `config`; applies its sample rate if it has one.
    pub fn new(config: MemoryConfig) -> Self {
        if let Some(rate) = config.sample_rate {
            set_sample_rate(rate);
        }
        Self {
            max_snapshots: AtomicUsize::new(config.max_snapshots),
            snapshots: Mutex::new(VecDeque::new()),
            timeline: Arc::new(Ring::new(config.timeline_capacity)),
            config,
        }
    }

    /// The process-wide profiler, configured from the environment on first use.
    pub fn global() -> &'static MemoryProfiler {
        static GLOBAL: OnceLock<MemoryProfiler> = OnceLock::new();
        GLOBAL.get_or_init(|| MemoryProfiler::new(MemoryConfig::from_env()))
    }

    /// Its settings (with the current [`MemoryProfiler::max_snapshots`]).
    pub fn config(&self) -> MemoryConfig {
        MemoryConfig {
            max_snapshots: self.max_snapshots(),
            ..self.config.clone()
        }
    }

    /// Snapshots kept; the oldest is dropped beyond it.
    pub fn max_snapshots(&self) -> usize {
        self.max_snapshots.load(Ordering::Relaxed)
    }

    /// Changes how many snapshots are kept, dropping the oldest beyond the new bound now.
    /// `init_performance_suite` applies `Config::memory_max_snapshots` this way.
    pub fn set_max_snapshots(&self, max: usize) {
        self.max_snapshots.store(max, Ordering::Relaxed);
        let mut snapshots = self.lock_snapshots();
        while snapshots.len() > max {
            snapshots.pop_front();
        }
    }

    /// Captures a snapshot and keeps it, dropping the oldest beyond `max_snapshots`.
    pub fn take_snapshot(&self, label: impl Into<String>) -> Arc<Snapshot> {
        let snapshot = Arc::new(Snapshot::capture(label));
        let mut snapshots = self.lock_snapshots();
        snapshots.push_back(snapshot.clone());
        while snapshots.len() > self.max_snapshots() {
            snapshots.pop_front();
        }
        snapshot
    }

    /// The snapshots kept, oldest first.
    pub fn snapshots(&self) -> Vec<Arc<Snapshot>> {
        self.lock_snapshots().iter().cloned().collect()
    }

    /// The newest kept snapshot with this label.
    pub fn snapshot(&self, label: &str) -> Option<Arc<Snapshot>> {
        self.lock_snapshots()
            .iter()
            .rev()
            .find(|s| s.label == label)
            .cloned()
    }

    /// Forgets every snapshot.
    pub fn clear_snapshots(&self) {
        self.lock_snapshots().clear();
    }

    /// Growth per call site from `earlier` to `later`, largest change first.
    pub fn compare(&self, earlier: &Snapshot, later: &Snapshot) -> Vec<SiteDiff> {
        later.compare_to(earlier)
    }

    /// Call sites and tracked types whose live memory kept growing across the kept
    /// snapshots, with the evidence.
    pub fn detect_leaks(&self) -> LeakReport {
        self.detect_leaks_with(self.config.leaks)
    }

    /// [`detect_leaks`](Self::detect_leaks) with other thresholds.
    pub fn detect_leaks_with(&self, options: LeakOptions) -> LeakReport {
        let snapshots = self.snapshots();
        let refs: Vec<&Snapshot> = snapshots.iter().map(|s| &**s).collect();
        detect_leaks(&refs, options)
    }

    /// Starts the timeline sampler at the configured interval.
    pub fn start_timeline(&self) -> std::io::Result<TimelineHandle> {
        self.start_timeline_every(self.config.timeline_interval)
    }

    /// Starts the timeline sampler at `interval`.
    pub fn start_timeline_every(&self, interval: Duration) -> std::io::Result<TimelineHandle> {
        timeline::start(self.timeline.clone(), interval)
    }

    /// Adds one timeline point now (the sampler thread does this periodically).
    pub fn record_timeline_point(&self) -> TimelinePoint {
        let point = TimelinePoint::now();
        self.timeline.push(point);
        point
    }

    /// The timeline, oldest first.
    pub fn timeline(&self) -> Vec<TimelinePoint> {
        self.timeline.points()
    }

    /// Current estimated live memory per call site, largest first.
    pub fn top_sites(&self, limit: usize) -> Vec<SiteUsage> {
        let mut sites = Snapshot::capture("now").by_site();
        sites.truncate(limit);
        sites
    }

    /// Everything `/api/performance/memory` shows.
    pub fn report(&self) -> MemoryReport {
        let (live_samples, dropped_samples) = sampler::sample_counts();
        let (stacks, recycled_stacks) = sampler::trace_counts();
        MemoryReport {
            generated_at_ms: now_ms(),
            allocator_installed: is_installed(),
            stats: stats(),
            sampling: SamplingInfo {
                rate: sample_rate().unwrap_or(0),
                live_samples,
                dropped_samples,
                stacks,
                recycled_stacks,
            },
            top_sites: self.top_sites(self.config.top_sites),
            types: live_instances(),
            functions: function_stats(),
            snapshots: self
                .snapshots()
                .iter()
                .map(|s| SnapshotSummary {
                    label: s.label.clone(),
                    taken_at_ms: s.taken_at_ms,
                    live_bytes: s.stats.live_bytes,
                    live_allocations: s.stats.live_allocations,
                })
                .collect(),
            timeline: self.timeline(),
        }
    }

    fn lock_snapshots(&self) -> std::sync::MutexGuard<'_, VecDeque<Arc<Snapshot>>> {
        self.snapshots.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// How call-site sampling is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SamplingInfo {
    /// Mean bytes between sampled allocations (`0`: off).
    pub rate: usize,
    /// Sampled blocks still allocated.
    pub live_samples: usize,
    /// Samples lost because a table was full.
    pub dropped_samples: u64,
    /// Slots of the stack table in use (at most 4096).
    pub stacks: usize,
    /// Times a stack no live sample used gave its slot to a new one.
    #[serde(default)]
    pub recycled_stacks: u64,
}

/// A kept snapshot, in brief.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotSummary {
    /// Its label.
    pub label: String,
    /// When it was taken, milliseconds since the Unix epoch.
    pub taken_at_ms: u64,
    /// Exact live bytes then.
    pub live_bytes: u64,
    /// Exact live blocks then.
    pub live_allocations: u64,
}

/// The answer to `/api/performance/memory`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemoryReport {
    /// When it was made, milliseconds since the Unix epoch.
    pub generated_at_ms: u64,
    /// Whether the tracking allocator is installed (all counters are zero otherwise).
    pub allocator_installed: bool,
    /// Exact allocator counters.
    pub stats: Stats,
    /// Sampling state.
    pub sampling: SamplingInfo,
    /// Estimated live memory of the largest call sites.
    pub top_sites: Vec<SiteUsage>,
    /// Live instances of the tracked types.
    pub types: Vec<TypeInstances>,
    /// Functions measured with `#[profile_memory]`.
    pub functions: Vec<FunctionMemory>,
    /// Kept snapshots, oldest first.
    pub snapshots: Vec<SnapshotSummary>,
    /// The timeline, oldest first.
    pub timeline: Vec<TimelinePoint>,
}

impl MemoryReport {
    /// The report as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

impl LeakReport {
    /// The report as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}
