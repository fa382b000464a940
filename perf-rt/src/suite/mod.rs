//! The whole suite in one call: [`init_performance_suite`] adds what the [`Config`]
//! enables to an axum router and returns a [`PerfSuite`] handle.
//!
//! ```no_run
//! use std::net::SocketAddr;
//! use axum::{Router, routing::get};
//! use perf_rt::suite::{Config, init_performance_suite};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let app: Router = Router::new().route("/", get(|| async { "hello" }));
//! let (app, suite) = init_performance_suite(app, Config::from_env()?).await?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! // Connection info lets the monitoring endpoints recognise loopback clients.
//! axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
//! # drop(suite);
//! # Ok(()) }
//! ```
//!
//! With everything enabled, in order from the outside in: response compression; the
//! monitor layer timing every route of the application, the embedded assets and the
//! fallback (but not the monitoring endpoints, the browser-metrics script and beacon).

mod config;

use axum::Router;

pub use config::{Config, ConfigError, ENV_VARS};

#[cfg(feature = "cache")]
use crate::cache::QueryCache;
#[cfg(feature = "memory")]
use crate::memory::{MemoryProfiler, TimelineHandle};
use crate::monitor::Monitor;

/// Why the suite could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum SuiteError {
    /// A `PERF_*` setting is invalid.
    Config(ConfigError),
    /// The query cache could not be built (an invalid `PERF_REDIS_URL`, say).
    #[cfg(feature = "cache")]
    Cache(crate::cache::CacheError),
    /// A sampler thread could not be started.
    Io(std::io::Error),
}

impl std::fmt::Display for SuiteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SuiteError::Config(e) => write!(f, "configuration: {e}"),
            #[cfg(feature = "cache")]
            SuiteError::Cache(e) => write!(f, "query cache: {e}"),
            SuiteError::Io(e) => write!(f, "starting a sampler thread: {e}"),
        }
    }
}

impl std::error::Error for SuiteError {}

impl From<ConfigError> for SuiteError {
    fn from(e: ConfigError) -> Self {
        SuiteError::Config(e)
    }
}

/// The running suite: what [`init_performance_suite`] started.
#[derive(Debug)]
pub struct PerfSuite {
    config: Config,
    monitor: Option<Monitor>,
    #[cfg(feature = "cache")]
    cache: Option<QueryCache>,
    #[cfg(feature = "memory")]
    timeline: Option<TimelineHandle>,
}

impl PerfSuite {
    /// The settings it started with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The performance monitor (`None` with `PERF_MONITORING=false`).
    pub fn monitor(&self) -> Option<&Monitor> {
        self.monitor.as_ref()
    }

    /// The query cache (`None` with `PERF_QUERY_CACHE=false`).
    #[cfg(feature = "cache")]
    pub fn cache(&self) -> Option<&QueryCache> {
        self.cache.as_ref()
    }

    /// The memory profiler (`None` with `PERF_MEMORY_PROFILING=false`).
    #[cfg(feature = "memory")]
    pub fn profiler(&self) -> Option<&'static MemoryProfiler> {
        self.config.memory_profiling.then(MemoryProfiler::global)
    }

    /// Empties the query cache, both tiers (and, through Redis, every instance's memory
    /// tier).
    pub async fn clear_caches(&self) {
        #[cfg(feature = "cache")]
        if let Some(cache) = &self.cache {
            cache.clear().await;
        }
    }

    /// Forgets the monitor's figures (requests, queries, metrics, browser metrics,
    /// timeline).
    pub fn reset_metrics(&self) {
        if let Some(m) = &self.monitor {
            m.clear();
        }
    }

    /// The `<script>` tag of the browser-metrics script, for the pages' `<head>`; empty
    /// when `PERF_FRONTEND_OPTIMIZATION` or `PERF_MONITORING` is off.
    pub fn vitals_script_tag(&self) -> String {
        if self.config.frontend_optimization && self.monitor.is_some() {
            crate::endpoints::vitals_script_tag()
        } else {
            String::new()
        }
    }

    /// Stops the sampler threads it started (the memory timeline; the monitor's sampler
    /// ends with the last clone of the monitor).
    pub fn shutdown(mut self) {
        #[cfg(feature = "memory")]
        if let Some(t) = self.timeline.take() {
            t.stop();
        }
        self.monitor = None;
    }
}

/// Adds to `router` what `config` enables, and returns it with the suite's handle:
///
/// - `query_cache`: builds the query cache (or takes [`Config::query_cache`]) and makes it
///   the global one `#[optimize_query]` uses;
/// - `memory_profiling`: starts the memory timeline (install
///   `perf_rt::memory::TrackingAllocator` as the global allocator for figures);
/// - `asset_optimization`: mounts [`Config::assets`];
/// - `monitoring`: the monitor layer on every route, its sampler, and the endpoints
///   (`/api/performance/{metrics,requests,queries,memory}`, `/api/memory/leaks`,
///   `/metrics`, `/perf`), which answer 401 unless the request carries
///   `Authorization: Bearer $PERF_MONITOR_TOKEN` (without a token: loopback clients only);
/// - `frontend_optimization` (with monitoring): the browser-metrics script at
///   `/_perf/vitals.js` and its public, validated and rate-limited beacon endpoint
///   `POST /api/performance/client`;
/// - `response_compression`: br/zstd/gzip for dynamic responses.
///
/// Serve the router with `into_make_service_with_connect_info::<SocketAddr>()`: the
/// loopback rule and the beacon rate limit need the client's address.
pub async fn init_performance_suite(
    router: Router,
    config: Config,
) -> Result<(Router, PerfSuite), SuiteError> {
    let mut router = router;

    #[cfg(feature = "cache")]
    let cache = if config.query_cache {
        let cache = match &config.cache {
            Some(c) => c.clone(),
            None => crate::cache::QueryCacheBuilder::from_env()
                .default_expire(config.query_cache_default_expire)
                .build()
                .await
                .map_err(SuiteError::Cache)?,
        };
        // Already set by the application is fine: it keeps its own.
        let _ = crate::cache::set_global(cache.clone());
        Some(cache)
    } else {
        None
    };

    #[cfg(feature = "memory")]
    let timeline = if config.memory_profiling {
        Some(
            MemoryProfiler::global()
                .start_timeline()
                .map_err(SuiteError::Io)?,
        )
    } else {
        None
    };

    #[cfg(feature = "assets")]
    if config.asset_optimization
        && let Some(assets) = config.assets
    {
        router = router.merge(assets.router());
    }

    let monitor = if config.monitoring {
        let monitor = Monitor::new(config.monitor.clone());
        monitor.set_global();
        #[cfg(feature = "cache")]
        if let Some(c) = &cache {
            monitor.attach_cache(c.clone());
        }
        monitor.start_sampler().map_err(SuiteError::Io)?;
        // Sample once now, so the first report has resources to show.
        monitor.sample_now();
        // The endpoints are merged first and skipped by the layer: layering last also
        // covers the fallback (unmatched requests), which a later merge would replace.
        router = router
            .merge(crate::endpoints::router(crate::endpoints::Endpoints {
                monitor: monitor.clone(),
                token: config.monitor_token.clone(),
                memory: config.memory_profiling,
                frontend: config.frontend_optimization,
            }))
            .layer(monitor.layer().skip_routes(crate::endpoints::ROUTES));
        Some(monitor)
    } else {
        None
    };

    if config.response_compression {
        #[cfg(feature = "compression")]
        {
            router = router.layer(crate::compression::layer_with(
                crate::compression::ShouldCompress::new(config.compression_min_bytes),
            ));
        }
        #[cfg(not(feature = "compression"))]
        tracing::warn!(
            "PERF_RESPONSE_COMPRESSION is on but perf-rt was built without `compression`"
        );
    }

    Ok((
        router,
        PerfSuite {
            config,
            monitor,
            #[cfg(feature = "cache")]
            cache,
            #[cfg(feature = "memory")]
            timeline,
        },
    ))
}
