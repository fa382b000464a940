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
//! // Without a token, refuses a listener other hosts can reach.
//! suite.check_listener(listener.local_addr()?)?;
//! // Connection info lets the monitoring endpoints recognise loopback clients.
//! axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
//! # Ok(()) }
//! ```
//!
//! With everything enabled, in order from the outside in: response compression; the
//! monitor layer timing every route of the application, the embedded assets and the
//! fallback (but not the monitoring endpoints, the browser-metrics script and beacon).

mod config;
mod mount;

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
    /// The monitoring endpoints have no token and the server listens where other hosts
    /// can reach it; see [`PerfSuite::check_listener`].
    OpenMonitor(std::net::SocketAddr),
    /// The application's router has a route of its own where [`Config::assets`] would be
    /// mounted (axum's message says which).
    AssetsConflict {
        /// Where the assets are served: `/static/{*path}`.
        route: String,
        /// axum's account of the conflict.
        message: String,
    },
}

impl std::fmt::Display for SuiteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SuiteError::Config(e) => write!(f, "configuration: {e}"),
            #[cfg(feature = "cache")]
            SuiteError::Cache(e) => write!(f, "query cache: {e}"),
            SuiteError::Io(e) => write!(f, "starting a sampler thread: {e}"),
            SuiteError::OpenMonitor(addr) => write!(
                f,
                "the server listens on {addr}, which other hosts can reach, and the monitoring \
                 endpoints have no token: set PERF_MONITOR_TOKEN (16 characters or more), or \
                 PERF_MONITOR_ALLOW_NO_TOKEN=true to serve them to direct loopback clients only"
            ),
            SuiteError::AssetsConflict { route, message } => write!(
                f,
                "the embedded assets given to Config::assets are served at {route}, where the \
                 application's router already has a route of its own ({message}): remove or \
                 move that route, or leave the assets out of the suite (do not call \
                 Config::assets, or set PERF_ASSET_OPTIMIZATION=false)"
            ),
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
///
/// Dropping it leaves the memory timeline running (like any
/// `TimelineHandle`); [`PerfSuite::shutdown`] stops it.
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

    /// Decides whether the monitoring endpoints may be served on a listener bound to
    /// `local`, and says at start-up who can reach them. Call it with the listener's
    /// address before serving (`suite.check_listener(listener.local_addr()?)?`).
    ///
    /// Without a token the endpoints answer loopback clients only, which protects them
    /// only where nothing on this host relays other clients' requests. A listener bound
    /// to a loopback address is a development set-up: allowed. A listener other hosts can
    /// reach (`0.0.0.0`, a public or private address) is a deployment, usually behind a
    /// proxy or a sidecar that connects from loopback and may add no forwarding header,
    /// so every client would get in: refused with [`SuiteError::OpenMonitor`], unless
    /// [`Config::monitor_allow_no_token`] asks for it. With a token, or with monitoring
    /// off, any listener is fine.
    pub fn check_listener(&self, local: std::net::SocketAddr) -> Result<(), SuiteError> {
        if self.monitor.is_none() {
            return Ok(());
        }
        if self.config.monitor_token.is_some() {
            tracing::info!(
                target: "perf_rt::suite",
                listener = %local,
                "monitoring endpoints require the PERF_MONITOR_TOKEN bearer token"
            );
            return Ok(());
        }
        let loopback = local.ip().to_canonical().is_loopback();
        if !loopback && !self.config.monitor_allow_no_token {
            return Err(SuiteError::OpenMonitor(local));
        }
        if loopback {
            tracing::info!(
                target: "perf_rt::suite",
                listener = %local,
                "monitoring endpoints have no token: loopback clients only"
            );
        } else {
            tracing::warn!(
                target: "perf_rt::suite",
                listener = %local,
                "monitoring endpoints have no token on a listener other hosts can reach \
                 (PERF_MONITOR_ALLOW_NO_TOKEN): open to every client connecting from this \
                 host, a reverse proxy's clients included"
            );
        }
        Ok(())
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
///   `perf_rt::memory::TrackingAllocator` as the global allocator for figures) and, with
///   [`Config::memory_snapshot_interval`], takes snapshots for the leak report;
/// - `asset_optimization`: mounts [`Config::assets`], unless the router already serves
///   them (`.merge(ASSETS.router())`); a route of the application's own in their place
///   is [`SuiteError::AssetsConflict`];
/// - `monitoring`: the monitor layer on every route, its sampler, and the endpoints
///   (`/api/performance/{metrics,requests,queries,memory}`, `/api/memory/leaks`,
///   `/metrics`, `/perf`), which answer 401 unless the request carries
///   `Authorization: Bearer $PERF_MONITOR_TOKEN` (without a token: loopback clients only,
///   see [`PerfSuite::check_listener`]);
/// - `frontend_optimization` (with monitoring): the browser-metrics script at
///   `/_perf/vitals.js` and its public, validated and rate-limited beacon endpoint
///   `POST /api/performance/client`;
/// - `response_compression`: br/zstd/gzip for dynamic responses.
///
/// Serve the router with `into_make_service_with_connect_info::<SocketAddr>()`: the
/// loopback rule and the beacon rate limit need the client's address.
///
/// Fails with [`SuiteError::Config`] on a bad setting made in code ([`Config::validate`]),
/// such as an empty or short monitoring token.
pub async fn init_performance_suite(
    router: Router,
    config: Config,
) -> Result<(Router, PerfSuite), SuiteError> {
    let mut router = router;
    // A token set in code obeys the rule `PERF_MONITOR_TOKEN` does: never an empty one.
    config.validate()?;
    if config.monitoring && config.monitor_token.is_none() {
        tracing::warn!(
            target: "perf_rt::suite",
            "monitoring endpoints have no PERF_MONITOR_TOKEN: they answer loopback clients, \
             and a reverse proxy on this host makes every client one; call \
             PerfSuite::check_listener before serving"
        );
    }

    #[cfg(feature = "cache")]
    let cache = if config.query_cache {
        let cache = match &config.cache {
            Some(c) => {
                if c.default_expire() != config.query_cache_default_expire {
                    // Built already: its expiry cannot change. Say so rather than ignore it.
                    tracing::warn!(
                        target: "perf_rt::suite",
                        "Config::query_cache_default_expire ({:?}) does not apply to the query \
                         cache given with Config::query_cache, which keeps its own ({:?}): set \
                         it on that cache's builder",
                        config.query_cache_default_expire,
                        c.default_expire()
                    );
                }
                c.clone()
            }
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
        // The global profiler read `PERF_MEMORY_MAX_SNAPSHOTS` when it was created; the
        // value in `config` is the one asked for, however it was set.
        MemoryProfiler::global().set_max_snapshots(config.memory_max_snapshots);
        if let Some(every) = config.memory_snapshot_interval {
            spawn_snapshots(every.max(std::time::Duration::from_secs(1)));
        }
        Some(
            MemoryProfiler::global()
                .start_timeline()
                .map_err(SuiteError::Io)?,
        )
    } else {
        None
    };

    // The application may have merged `assets.router()` itself, as the README's first
    // snippet does: then it already serves them, and mounting them again would conflict.
    if config.asset_optimization
        && let Some(assets) = config.assets
        && !mount::serves(&router, assets).await
    {
        router = mount::merge(router, assets.router()).map_err(|message| {
            SuiteError::AssetsConflict {
                route: format!("{}/{{*path}}", assets.prefix()),
                message,
            }
        })?;
    }

    // Development mode (debug builds with PERF_DEV=1): pages follow the latest
    // development build. Inside the monitor, so it times the rewrite too.
    if config.asset_optimization
        && let Some(assets) = config.assets
        && assets.dev_mode()
    {
        router = router.layer(axum::middleware::map_response(
            move |r: axum::response::Response| assets.dev_html(r),
        ));
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

/// Takes a memory snapshot every `every` (labelled `periodic-<n>`), on the blocking pool so
/// a request is never held up by one, for the life of the runtime.
#[cfg(feature = "memory")]
fn spawn_snapshots(every: std::time::Duration) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is immediate: the first snapshot is one interval after start-up.
        ticks.tick().await;
        for n in 1u64.. {
            ticks.tick().await;
            let _ = tokio::task::spawn_blocking(move || {
                MemoryProfiler::global().take_snapshot(format!("periodic-{n}"));
            })
            .await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suite(config: Config) -> PerfSuite {
        PerfSuite {
            monitor: config
                .monitoring
                .then(|| Monitor::new(config.monitor.clone())),
            config,
            #[cfg(feature = "cache")]
            cache: None,
            #[cfg(feature = "memory")]
            timeline: None,
        }
    }

    #[test]
    fn without_a_token_only_loopback_listeners_are_allowed_unless_asked() {
        let loopback = [
            "127.0.0.1:8080",
            "127.0.0.2:80",
            "[::1]:8080",
            "[::ffff:127.0.0.1]:80",
        ];
        let reachable = ["0.0.0.0:8080", "[::]:8080", "192.0.2.7:80", "10.0.0.5:3000"];
        let no_token = suite(Config::default());
        for addr in loopback {
            assert!(
                no_token.check_listener(addr.parse().unwrap()).is_ok(),
                "{addr}"
            );
        }
        for addr in reachable {
            let err = no_token.check_listener(addr.parse().unwrap()).unwrap_err();
            assert!(matches!(err, SuiteError::OpenMonitor(_)), "{addr}");
            let text = err.to_string();
            assert!(
                text.contains(addr) && text.contains("PERF_MONITOR_TOKEN"),
                "{text}"
            );
        }
        let asked = suite(Config::default().monitor_allow_no_token(true));
        let with_token = suite(Config::default().monitor_token("0123456789abcdef"));
        let off = suite(Config {
            monitoring: false,
            ..Config::default()
        });
        for addr in loopback.iter().chain(&reachable) {
            for s in [&asked, &with_token, &off] {
                assert!(s.check_listener(addr.parse().unwrap()).is_ok(), "{addr}");
            }
        }
    }
}
