//! Performance monitor: request timing, query analysis, process resources, application
//! metrics, function timings and browser metrics, behind one cloneable [`Monitor`].
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use perf_rt::monitor::{Monitor, MonitorConfig};
//!
//! # async fn run() -> std::io::Result<()> {
//! let monitor = Monitor::new(MonitorConfig::default());
//! monitor.set_global();
//! monitor.start_sampler()?;
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "hello" }))
//!     .layer(monitor.layer());
//! perf_rt::monitor::track_metric("signups", 1.0, &[("plan", "free")]);
//! println!("{}", serde_json::to_string(&monitor.requests_report()).unwrap());
//! # Ok(()) }
//! ```
//!
//! Usually [`init_performance_suite`](crate::suite::init_performance_suite) does all of
//! this, and mounts the endpoints that publish the reports.

pub mod client;
pub(crate) mod histogram;
mod layer;
mod metrics;
mod queries;
mod requests;
mod resources;
mod scope;
mod sql;
#[cfg(feature = "monitor-sqlite")]
mod sqlite;

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use serde::Serialize;

pub use client::{ClientConfig, ClientMetrics, ClientReport};
pub use histogram::Summary;
pub use layer::{MonitorLayer, MonitorService, ResponseFuture};
pub use metrics::{FunctionTimer, MAX_TAGS, MetricError, MetricSeries, MetricStat, profile_future};
pub use queries::{NPlusOne, QueriesReport, QueryStat, SlowQuery};
pub use requests::{
    OTHER_METHOD, OTHER_ROUTES, RequestsFolded, RequestsReport, RouteStat, SlowRequest, UNMATCHED,
};
pub use resources::ResourceSample;
pub use scope::{RequestScope, spawn_blocking};
pub use sql::{fingerprint, normalize_sql};
#[cfg(feature = "monitor-sqlite")]
pub use sqlite::time_queries;

/// Times a function into the monitor's function statistics (and the current request's
/// scope); works on plain and async functions.
///
/// `#[profile_performance]` names it after its module path and name;
/// `#[profile_performance(name = "…")]` chooses the name.
pub use perf_rt_macros::profile_performance;

/// Settings of the [`Monitor`]. [`Default`] gives the documented defaults;
/// [`Config`](crate::suite::Config) reads them from `PERF_*` variables.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MonitorConfig {
    /// Requests at least this slow are logged and listed (500 ms).
    pub slow_request: Duration,
    /// Queries at least this slow are logged and listed (100 ms).
    pub slow_query: Duration,
    /// One query shape run this many times within one request is reported as N+1 (5).
    pub n_plus_one_threshold: u32,
    /// How often the sampler records resources and a timeline point (5 s).
    pub interval: Duration,
    /// Timeline points kept (720: an hour at 5 s).
    pub timeline_points: usize,
    /// Distinct route templates tracked; beyond, `(other)` (256).
    pub max_routes: usize,
    /// Distinct query fingerprints tracked; beyond, `other` (256).
    pub max_fingerprints: usize,
    /// Distinct names accepted by `track_metric` (100).
    pub max_metric_names: usize,
    /// Distinct tag sets per metric name (100).
    pub max_series_per_metric: usize,
    /// Add a `Server-Timing` header (app and database time, route) to every response
    /// (true). The browser script reads the route from it.
    pub server_timing: bool,
    /// The filesystem whose usage is sampled (the current directory).
    pub disk_path: PathBuf,
    /// Limits of the browser-metrics endpoint.
    pub client: ClientConfig,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            slow_request: Duration::from_millis(500),
            slow_query: Duration::from_millis(100),
            n_plus_one_threshold: 5,
            interval: Duration::from_secs(5),
            timeline_points: 720,
            max_routes: 256,
            max_fingerprints: 256,
            max_metric_names: 100,
            max_series_per_metric: 100,
            server_timing: true,
            disk_path: PathBuf::from("."),
            client: ClientConfig::default(),
        }
    }
}

/// The performance monitor. Cheap to clone (one `Arc`); every clone records into the same
/// figures.
#[derive(Debug, Clone)]
pub struct Monitor {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) config: MonitorConfig,
    started: Instant,
    pub(crate) requests: requests::RequestStats,
    pub(crate) queries: queries::QueryStats,
    pub(crate) functions: metrics::FunctionStats,
    pub(crate) metrics: metrics::CustomMetrics,
    pub(crate) client: ClientMetrics,
    timeline: Mutex<VecDeque<TimelinePoint>>,
    resources: Mutex<(resources::Sampler, Option<ResourceSample>)>,
    #[cfg(feature = "cache")]
    cache: OnceLock<crate::cache::QueryCache>,
    #[cfg(feature = "cache")]
    cache_previous: Mutex<(u64, u64)>,
    sampler_started: OnceLock<()>,
}

/// One point of the monitor's timeline: the requests of one interval and the resources at
/// its end.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TimelinePoint {
    /// End of the interval, milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Requests answered during the interval.
    pub requests: u64,
    /// Their median latency.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
    /// CPU of the process during the interval, percent of one core.
    pub cpu_percent: Option<f64>,
    /// Resident set size.
    pub rss_bytes: Option<u64>,
    /// Open file descriptors.
    pub open_fds: Option<u64>,
    /// Used bytes of the monitored filesystem.
    pub disk_used_bytes: Option<u64>,
    /// Size of the monitored filesystem.
    pub disk_total_bytes: Option<u64>,
    /// Live heap bytes (with the tracking allocator installed).
    pub heap_live_bytes: Option<u64>,
    /// Query-cache hits during the interval (with a cache attached).
    pub cache_hits: Option<u64>,
    /// Query-cache misses during the interval.
    pub cache_misses: Option<u64>,
}

/// Query-cache figures in the overview: every read counts once overall, and once in each
/// tier it asked.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CacheSummary {
    /// Reads answered by either tier.
    pub hits: u64,
    /// Reads neither tier answered (loaded, or shared from a concurrent load).
    pub misses: u64,
    /// `hits / (hits + misses)`, 0 before the first read: the cache's hit rate.
    pub hit_ratio: f64,
    /// The in-memory tier: asked by every read.
    pub memory: TierSummary,
    /// The Redis tier: asked by the reads the memory tier missed (`null` without Redis).
    pub redis: Option<TierSummary>,
}

/// One tier's figures in a [`CacheSummary`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TierSummary {
    /// Reads it answered.
    pub hits: u64,
    /// Reads it was asked and could not answer.
    pub misses: u64,
    /// `hits / (hits + misses)`, 0 before it was asked.
    pub hit_ratio: f64,
}

/// Heap figures in the overview.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MemorySummary {
    /// Bytes live now.
    pub live_bytes: u64,
    /// Most bytes ever live at once.
    pub peak_bytes: u64,
}

/// Totals of the requests in the overview.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RequestTotals {
    /// Requests answered.
    pub total: u64,
    /// Requests being handled now.
    pub in_flight: i64,
    /// Requests above the slow threshold.
    pub slow: u64,
    /// Responses with a 5xx status.
    pub errors: u64,
    /// Median latency of all requests.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

/// The `/api/performance/metrics` report: everything the dashboard draws.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    /// Seconds since the monitor was created.
    pub uptime_s: f64,
    /// Request totals.
    pub requests: RequestTotals,
    /// Per route, method and status class.
    pub routes: Vec<RouteStat>,
    /// The timeline, oldest first.
    pub timeline: Vec<TimelinePoint>,
    /// The latest resource sample (`null` before the first).
    pub resources: Option<ResourceSample>,
    /// Query cache (`null` without one).
    pub cache: Option<CacheSummary>,
    /// Heap (`null` without the tracking allocator).
    pub memory: Option<MemorySummary>,
    /// Browser metrics per route.
    pub client: ClientReport,
    /// Application metrics (`track_metric`) by name.
    pub metrics: BTreeMap<String, Vec<MetricSeries>>,
    /// Values `track_metric` refused (bad names, bounds reached).
    pub metrics_dropped: u64,
    /// Functions marked `#[profile_performance]`, by name.
    pub functions: BTreeMap<&'static str, Summary>,
}

static GLOBAL: OnceLock<Monitor> = OnceLock::new();

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub(crate) fn push_bounded<T>(list: &Mutex<VecDeque<T>>, max: usize, item: T) {
    let mut list = lock(list);
    if list.len() >= max {
        list.pop_front();
    }
    list.push_back(item);
}

impl Monitor {
    /// A monitor with `config`.
    pub fn new(config: MonitorConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                started: Instant::now(),
                requests: requests::RequestStats::new(config.max_routes, config.slow_request),
                queries: queries::QueryStats::new(
                    config.max_fingerprints,
                    config.slow_query,
                    config.n_plus_one_threshold,
                ),
                functions: metrics::FunctionStats::default(),
                metrics: metrics::CustomMetrics::new(
                    config.max_metric_names,
                    config.max_series_per_metric,
                ),
                client: ClientMetrics::new(config.client),
                timeline: Mutex::new(VecDeque::new()),
                resources: Mutex::new((resources::Sampler::default(), None)),
                #[cfg(feature = "cache")]
                cache: OnceLock::new(),
                #[cfg(feature = "cache")]
                cache_previous: Mutex::new((0, 0)),
                sampler_started: OnceLock::new(),
                config,
            }),
        }
    }

    /// The global monitor, used by [`track_query`] and [`track_metric`] outside a
    /// request, if one was set.
    pub fn global() -> Option<&'static Monitor> {
        GLOBAL.get()
    }

    /// Makes this monitor the global one. Returns false (and changes nothing) if one was
    /// already set.
    pub fn set_global(&self) -> bool {
        GLOBAL.set(self.clone()).is_ok()
    }

    /// The settings.
    pub fn config(&self) -> &MonitorConfig {
        &self.inner.config
    }

    /// The tower layer timing requests into this monitor.
    pub fn layer(&self) -> MonitorLayer {
        MonitorLayer {
            monitor: self.clone(),
            skip: &[],
        }
    }

    /// Reports the query cache's hit rate in the overview and the timeline.
    #[cfg(feature = "cache")]
    pub fn attach_cache(&self, cache: crate::cache::QueryCache) {
        let _ = self.inner.cache.set(cache);
    }

    /// Records one query execution: into the current request's scope (for N+1 detection
    /// and `Server-Timing`) and the per-fingerprint statistics.
    pub fn track_query(&self, sql: &str, duration: Duration) {
        let scope = RequestScope::current();
        let scope = scope
            .as_deref()
            .filter(|s| Arc::ptr_eq(&s.monitor, &self.inner));
        self.inner.queries.record(sql, duration, scope);
    }

    /// Records `value` for the metric `name` with `tags`. Names and tags are bounded
    /// ([`MonitorConfig::max_metric_names`], [`MonitorConfig::max_series_per_metric`]);
    /// a refused value is counted in `metrics_dropped`.
    pub fn track_metric(
        &self,
        name: &str,
        value: f64,
        tags: &[(&str, &str)],
    ) -> Result<(), MetricError> {
        self.inner.metrics.track(name, value, tags)
    }

    /// Records one beacon of the browser script; see [`ClientMetrics::ingest`].
    pub fn ingest_client(
        &self,
        peer: std::net::IpAddr,
        body: &[u8],
    ) -> Result<usize, client::BeaconError> {
        let requests = &self.inner.requests;
        self.inner
            .client
            .ingest(peer, body, &|route: &str| requests.knows(route))
    }

    /// Starts the sampler thread (once; later calls do nothing): every
    /// [`MonitorConfig::interval`] it reads the process' resources and appends a timeline
    /// point. The thread ends when the last clone of the monitor is dropped.
    pub fn start_sampler(&self) -> std::io::Result<()> {
        if self.inner.sampler_started.set(()).is_err() {
            return Ok(());
        }
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let interval = self.inner.config.interval;
        // A plain thread: it keeps sampling when the runtime's workers are saturated,
        // which is when the figures matter.
        std::thread::Builder::new()
            .name("perf-monitor".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(interval);
                    match weak.upgrade() {
                        Some(inner) => {
                            Monitor { inner }.sample_now();
                        }
                        None => break,
                    }
                }
            })
            .map(drop)
    }

    /// Reads the resources and appends a timeline point now (the sampler does this every
    /// interval).
    pub fn sample_now(&self) -> TimelinePoint {
        let inner = &self.inner;
        let sample = {
            let mut r = lock(&inner.resources);
            let s = r.0.sample(&inner.config.disk_path);
            r.1 = Some(s);
            s
        };
        let interval = inner.requests.take_interval();
        #[cfg(feature = "cache")]
        let (cache_hits, cache_misses) = match self.cache_summary() {
            Some(c) => {
                let mut previous = lock(&inner.cache_previous);
                let delta = (
                    c.hits.saturating_sub(previous.0),
                    c.misses.saturating_sub(previous.1),
                );
                *previous = (c.hits, c.misses);
                (Some(delta.0), Some(delta.1))
            }
            None => (None, None),
        };
        #[cfg(not(feature = "cache"))]
        let (cache_hits, cache_misses) = (None, None);
        let point = TimelinePoint {
            at_ms: sample.at_ms,
            requests: interval.count,
            p50_ms: interval.p50_ms,
            p90_ms: interval.p90_ms,
            p99_ms: interval.p99_ms,
            max_ms: interval.max_ms,
            cpu_percent: sample.cpu_percent,
            rss_bytes: sample.rss_bytes,
            open_fds: sample.open_fds,
            disk_used_bytes: sample.disk_used_bytes,
            disk_total_bytes: sample.disk_total_bytes,
            heap_live_bytes: self.memory_summary().map(|m| m.live_bytes),
            cache_hits,
            cache_misses,
        };
        push_bounded(&inner.timeline, inner.config.timeline_points.max(1), point);
        point
    }

    /// The timeline, oldest first.
    pub fn timeline(&self) -> Vec<TimelinePoint> {
        lock(&self.inner.timeline).iter().copied().collect()
    }

    /// The latest resource sample.
    pub fn resources(&self) -> Option<ResourceSample> {
        lock(&self.inner.resources).1
    }

    pub(crate) fn cache_summary(&self) -> Option<CacheSummary> {
        #[cfg(feature = "cache")]
        if let Some(cache) = self.inner.cache.get() {
            let m = cache.metrics().snapshot();
            return Some(CacheSummary {
                hits: m.hits(),
                misses: m.misses(),
                hit_ratio: m.hit_ratio(),
                memory: TierSummary {
                    hits: m.memory_hits,
                    misses: m.memory_misses,
                    hit_ratio: m.memory_hit_ratio(),
                },
                redis: cache.has_redis().then(|| TierSummary {
                    hits: m.redis_hits,
                    misses: m.redis_misses,
                    hit_ratio: m.redis_hit_ratio(),
                }),
            });
        }
        None
    }

    pub(crate) fn memory_summary(&self) -> Option<MemorySummary> {
        #[cfg(feature = "memory")]
        if crate::memory::is_installed() {
            let s = crate::memory::stats();
            return Some(MemorySummary {
                live_bytes: s.live_bytes,
                peak_bytes: s.peak_bytes,
            });
        }
        None
    }

    /// The request report.
    pub fn requests_report(&self) -> RequestsReport {
        self.inner.requests.report()
    }

    /// The query report.
    pub fn queries_report(&self) -> QueriesReport {
        self.inner.queries.report()
    }

    /// Browser metrics per route.
    pub fn client_report(&self) -> ClientReport {
        self.inner.client.report()
    }

    /// Everything the dashboard shows.
    pub fn overview(&self) -> Overview {
        let inner = &self.inner;
        let requests = inner.requests.report();
        let o = requests.overall;
        Overview {
            uptime_s: inner.started.elapsed().as_secs_f64(),
            requests: RequestTotals {
                total: requests.total,
                in_flight: requests.in_flight,
                slow: requests.slow_total,
                errors: requests.errors,
                p50_ms: o.p50_ms,
                p90_ms: o.p90_ms,
                p99_ms: o.p99_ms,
                max_ms: o.max_ms,
            },
            routes: requests.routes,
            timeline: self.timeline(),
            resources: self.resources(),
            cache: self.cache_summary(),
            memory: self.memory_summary(),
            client: inner.client.report(),
            metrics: inner.metrics.report(),
            metrics_dropped: inner.metrics.dropped(),
            functions: inner.functions.report(),
        }
    }

    /// Forgets every figure (requests, queries, metrics, functions, browser metrics,
    /// timeline); the requests in flight still count.
    pub fn clear(&self) {
        let inner = &self.inner;
        inner.requests.clear();
        inner.queries.clear();
        inner.metrics.clear();
        inner.functions.clear();
        inner.client.clear();
        lock(&inner.timeline).clear();
    }
}

/// Records a query execution into the current request's monitor, else the global one
/// (else nowhere). For database layers without a hook of ours; see also
/// [`time_queries`] for rusqlite.
pub fn track_query(sql: &str, duration: Duration) {
    // One scope lookup: the request's scope knows its monitor.
    match RequestScope::current() {
        Some(scope) => scope.monitor.queries.record(sql, duration, Some(&scope)),
        None => {
            if let Some(m) = Monitor::global() {
                m.inner.queries.record(sql, duration, None);
            }
        }
    }
}

/// [`Monitor::track_metric`] on the current request's monitor, else the global one; a
/// value with no monitor to go to is dropped silently.
pub fn track_metric(name: &str, value: f64, tags: &[(&str, &str)]) -> Result<(), MetricError> {
    match scope::current_monitor().or_else(|| Monitor::global().cloned()) {
        Some(m) => m.track_metric(name, value, tags),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_outside_requests_go_to_the_global_statistics_and_n_plus_one_needs_a_request() {
        let m = Monitor::new(MonitorConfig::default());
        for id in 0..10 {
            m.track_query(
                &format!("SELECT * FROM t WHERE id = {id}"),
                Duration::from_millis(1),
            );
        }
        let report = m.queries_report();
        assert_eq!(report.total, 10);
        assert_eq!(report.fingerprints.len(), 1);
        assert_eq!(report.fingerprints[0].timing.count, 10);
        assert_eq!(report.fingerprints[0].sql, "select * from t where id = ?");
        assert_eq!(report.n_plus_one_total, 0);
    }

    #[test]
    fn sampling_appends_bounded_timeline_points() {
        let config = MonitorConfig {
            timeline_points: 3,
            ..Default::default()
        };
        let m = Monitor::new(config);
        for _ in 0..5 {
            m.sample_now();
        }
        assert_eq!(m.timeline().len(), 3);
        assert!(m.resources().is_some());
        let json = serde_json::to_value(m.overview()).unwrap();
        assert_eq!(json["timeline"].as_array().unwrap().len(), 3);
        assert!(json["requests"]["total"].is_u64());
    }
}
