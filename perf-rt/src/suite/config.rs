//! The suite's settings: the seed's `PERF_*` names and defaults, read from the environment.

use std::path::PathBuf;
use std::time::Duration;

#[cfg(feature = "assets")]
use crate::assets::Assets;
#[cfg(feature = "cache")]
use crate::cache::QueryCache;
use crate::monitor::{ClientConfig, MonitorConfig};

/// A setting that could not be read: names the variable, the value and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The environment variable.
    pub variable: &'static str,
    /// Its value.
    pub value: String,
    /// What it should look like.
    pub expected: &'static str,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}={:?} is not valid: expected {}",
            self.variable, self.value, self.expected
        )
    }
}

impl std::error::Error for ConfigError {}

/// Every variable [`Config::from_env`] reads, with its default, for documentation and
/// `--help` output.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("PERF_ASSET_OPTIMIZATION", "true"),
    ("PERF_QUERY_CACHE", "true"),
    ("PERF_MEMORY_PROFILING", "true"),
    ("PERF_MONITORING", "true"),
    ("PERF_RESPONSE_COMPRESSION", "true"),
    ("PERF_FRONTEND_OPTIMIZATION", "true"),
    ("PERF_QUERY_CACHE_DEFAULT_EXPIRE", "300"),
    ("PERF_MEMORY_MAX_SNAPSHOTS", "100"),
    ("PERF_MEMORY_SNAPSHOT_INTERVAL_SECS", "0 (off)"),
    ("PERF_THRESHOLD_SLOW_REQUEST_MS", "500"),
    ("PERF_THRESHOLD_SLOW_QUERY_MS", "100"),
    ("PERF_N_PLUS_ONE_THRESHOLD", "5"),
    ("PERF_MONITOR_TOKEN", "(none: loopback clients only)"),
    ("PERF_MONITOR_ALLOW_NO_TOKEN", "false"),
    ("PERF_MONITOR_INTERVAL_MS", "5000"),
    ("PERF_MONITOR_TIMELINE_POINTS", "720"),
    ("PERF_SERVER_TIMING", "true"),
    ("PERF_CLIENT_METRICS_PER_MINUTE", "60"),
    ("PERF_COMPRESSION_MIN_BYTES", "256"),
    ("PERF_MONITOR_DISK_PATH", "."),
];

/// The suite's settings. [`Default`] gives the defaults; [`Config::from_env`] reads the
/// `PERF_*` variables over them (see [`ENV_VARS`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Mount the embedded assets given with [`Config::assets`] (true). The build half is
    /// configured in `Cargo.toml`; turn this off when another server (a CDN) serves them.
    pub asset_optimization: bool,
    /// Build the query cache and make it global, for `#[optimize_query]` (true).
    pub query_cache: bool,
    /// Start the memory timeline and publish the memory reports (true).
    pub memory_profiling: bool,
    /// Time requests and queries, sample resources, publish the reports (true).
    pub monitoring: bool,
    /// Compress dynamic responses (true).
    pub response_compression: bool,
    /// Serve the browser-metrics script and accept its beacons (true).
    pub frontend_optimization: bool,
    /// Default expiry of the query cache the suite builds (300 s). A cache given with
    /// [`Config::query_cache`] keeps its own; the suite warns when they differ.
    pub query_cache_default_expire: Duration,
    /// Memory snapshots the global profiler keeps (100); applied to it at start-up
    /// (with memory profiling on), however it was set.
    pub memory_max_snapshots: usize,
    /// Take a memory snapshot this often (none): the leak report compares the latest
    /// snapshots, so a long-running service that wants it filled without code sets this.
    /// Needs memory profiling on; at least one second.
    pub memory_snapshot_interval: Option<Duration>,
    /// Token the monitoring endpoints require as `Authorization: Bearer …` (or the
    /// dashboard's `perf_token` cookie): at least 16 printable characters without spaces,
    /// `;` or `,`, however it is set ([`Config::validate`]). Without one they answer
    /// loopback clients only, and [`PerfSuite::check_listener`] refuses a listener other
    /// hosts can reach unless [`Config::monitor_allow_no_token`] is set.
    ///
    /// [`PerfSuite::check_listener`]: super::PerfSuite::check_listener
    pub monitor_token: Option<String>,
    /// Without a token, serve the monitoring endpoints (to direct loopback clients only)
    /// even on a listener other hosts can reach (false).
    pub monitor_allow_no_token: bool,
    /// Smallest body compressed, bytes (256).
    pub compression_min_bytes: u16,
    /// The monitor's settings (thresholds, intervals, bounds).
    pub monitor: MonitorConfig,
    /// The embedded assets to mount (`&ASSETS` from `include_assets!`).
    #[cfg(feature = "assets")]
    pub assets: Option<&'static Assets>,
    /// A query cache the application already built; without one the suite builds one from
    /// `PERF_QUERY_CACHE_*` and `PERF_REDIS_URL`.
    #[cfg(feature = "cache")]
    pub cache: Option<QueryCache>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            asset_optimization: true,
            query_cache: true,
            memory_profiling: true,
            monitoring: true,
            response_compression: true,
            frontend_optimization: true,
            query_cache_default_expire: Duration::from_secs(300),
            memory_max_snapshots: 100,
            memory_snapshot_interval: None,
            monitor_token: None,
            monitor_allow_no_token: false,
            compression_min_bytes: 256,
            monitor: MonitorConfig::default(),
            #[cfg(feature = "assets")]
            assets: None,
            #[cfg(feature = "cache")]
            cache: None,
        }
    }
}

fn parse_bool(variable: &'static str, value: &str) -> Result<bool, ConfigError> {
    crate::env::flag(value).ok_or_else(|| ConfigError {
        variable,
        value: value.into(),
        expected: "true or false (or 1/0, yes/no, on/off)",
    })
}

fn parse_number<T: std::str::FromStr>(
    variable: &'static str,
    value: &str,
    expected: &'static str,
) -> Result<T, ConfigError> {
    value.trim().parse().map_err(|_| ConfigError {
        variable,
        value: value.into(),
        expected,
    })
}

/// The one rule for a monitoring token, wherever it comes from. An empty token would let
/// `Cookie: perf_token=` in; a short one can be guessed; spaces, `;` and `,` would not
/// survive the `Authorization` header or the dashboard's cookie.
fn check_token(token: &str) -> Result<(), ConfigError> {
    if token.len() >= 16
        && token
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b';' && b != b',')
    {
        return Ok(());
    }
    Err(ConfigError {
        variable: "PERF_MONITOR_TOKEN",
        value: "(hidden)".into(),
        expected: "at least 16 printable characters without spaces, ';' or ',' (to run \
                   without a token, leave it unset)",
    })
}

impl Config {
    /// The defaults, overridden by every `PERF_*` variable that is set (an empty value
    /// counts as unset). A value that does not parse is an error naming the variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// [`Config::from_env`] over any source of variables (tests, a config file).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut c = Self::default();
        let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        for (name, field) in [
            ("PERF_ASSET_OPTIMIZATION", &mut c.asset_optimization),
            ("PERF_QUERY_CACHE", &mut c.query_cache),
            ("PERF_MEMORY_PROFILING", &mut c.memory_profiling),
            ("PERF_MONITORING", &mut c.monitoring),
            ("PERF_RESPONSE_COMPRESSION", &mut c.response_compression),
            ("PERF_FRONTEND_OPTIMIZATION", &mut c.frontend_optimization),
            ("PERF_SERVER_TIMING", &mut c.monitor.server_timing),
            ("PERF_MONITOR_ALLOW_NO_TOKEN", &mut c.monitor_allow_no_token),
        ] {
            if let Some(v) = get(name) {
                *field = parse_bool(name, &v)?;
            }
        }
        const SECONDS: &str = "a whole number of seconds";
        const MILLIS: &str = "a whole number of milliseconds";
        const COUNT: &str = "a whole number";
        if let Some(v) = get("PERF_QUERY_CACHE_DEFAULT_EXPIRE") {
            c.query_cache_default_expire = Duration::from_secs(parse_number(
                "PERF_QUERY_CACHE_DEFAULT_EXPIRE",
                &v,
                SECONDS,
            )?);
        }
        if let Some(v) = get("PERF_MEMORY_MAX_SNAPSHOTS") {
            c.memory_max_snapshots = parse_number("PERF_MEMORY_MAX_SNAPSHOTS", &v, COUNT)?;
        }
        if let Some(v) = get("PERF_MEMORY_SNAPSHOT_INTERVAL_SECS") {
            let secs = parse_number("PERF_MEMORY_SNAPSHOT_INTERVAL_SECS", &v, SECONDS)?;
            c.memory_snapshot_interval = (secs > 0).then(|| Duration::from_secs(secs));
        }
        if let Some(v) = get("PERF_THRESHOLD_SLOW_REQUEST_MS") {
            c.monitor.slow_request =
                Duration::from_millis(parse_number("PERF_THRESHOLD_SLOW_REQUEST_MS", &v, MILLIS)?);
        }
        if let Some(v) = get("PERF_THRESHOLD_SLOW_QUERY_MS") {
            c.monitor.slow_query =
                Duration::from_millis(parse_number("PERF_THRESHOLD_SLOW_QUERY_MS", &v, MILLIS)?);
        }
        if let Some(v) = get("PERF_N_PLUS_ONE_THRESHOLD") {
            let n: u32 = parse_number("PERF_N_PLUS_ONE_THRESHOLD", &v, "a whole number ≥ 2")?;
            if n < 2 {
                return Err(ConfigError {
                    variable: "PERF_N_PLUS_ONE_THRESHOLD",
                    value: v,
                    expected: "a whole number ≥ 2",
                });
            }
            c.monitor.n_plus_one_threshold = n;
        }
        if let Some(v) = get("PERF_MONITOR_INTERVAL_MS") {
            let ms: u64 = parse_number("PERF_MONITOR_INTERVAL_MS", &v, "milliseconds ≥ 10")?;
            if ms < 10 {
                return Err(ConfigError {
                    variable: "PERF_MONITOR_INTERVAL_MS",
                    value: v,
                    expected: "milliseconds ≥ 10",
                });
            }
            c.monitor.interval = Duration::from_millis(ms);
        }
        if let Some(v) = get("PERF_MONITOR_TIMELINE_POINTS") {
            c.monitor.timeline_points = parse_number("PERF_MONITOR_TIMELINE_POINTS", &v, COUNT)?;
        }
        if let Some(v) = get("PERF_CLIENT_METRICS_PER_MINUTE") {
            c.monitor.client.per_minute =
                parse_number("PERF_CLIENT_METRICS_PER_MINUTE", &v, COUNT)?;
        }
        if let Some(v) = get("PERF_COMPRESSION_MIN_BYTES") {
            c.compression_min_bytes = parse_number(
                "PERF_COMPRESSION_MIN_BYTES",
                &v,
                "a number of bytes up to 65535",
            )?;
        }
        if let Some(v) = get("PERF_MONITOR_DISK_PATH") {
            c.monitor.disk_path = PathBuf::from(v);
        }
        if let Some(v) = var("PERF_MONITOR_TOKEN") {
            // Unset and empty are the same: no token.
            let v = v.trim();
            if !v.is_empty() {
                check_token(v)?;
                c.monitor_token = Some(v.to_owned());
            }
        }
        Ok(c)
    }

    /// The embedded assets to mount (`&ASSETS` from `include_assets!`).
    #[cfg(feature = "assets")]
    pub fn assets(mut self, assets: &'static Assets) -> Self {
        self.assets = Some(assets);
        self
    }

    /// Uses a query cache the application built (and maybe already installed) instead
    /// of building one.
    #[cfg(feature = "cache")]
    pub fn query_cache(mut self, cache: QueryCache) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Sets the monitoring token. It is checked like `PERF_MONITOR_TOKEN`
    /// ([`Config::validate`]) when the suite starts, which fails on a bad one, an empty one
    /// included: to run without a token, leave it unset.
    pub fn monitor_token(mut self, token: impl Into<String>) -> Self {
        self.monitor_token = Some(token.into());
        self
    }

    /// Serves the monitoring endpoints without a token (to direct loopback clients only)
    /// even on a listener other hosts can reach; see [`Config::monitor_allow_no_token`].
    pub fn monitor_allow_no_token(mut self, allow: bool) -> Self {
        self.monitor_allow_no_token = allow;
        self
    }

    /// Checks the settings made in code the way [`Config::from_env`] checks the
    /// environment: today, the monitoring token. [`init_performance_suite`] calls it.
    ///
    /// [`init_performance_suite`]: super::init_performance_suite
    pub fn validate(&self) -> Result<(), ConfigError> {
        match &self.monitor_token {
            Some(token) => check_token(token),
            None => Ok(()),
        }
    }

    /// Replaces the browser-metrics limits.
    pub fn client_limits(mut self, limits: ClientConfig) -> Self {
        self.monitor.client = limits;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        Config::from_vars(|name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn the_snapshot_interval_is_off_by_default_and_zero_turns_it_off() {
        assert_eq!(from(&[]).unwrap().memory_snapshot_interval, None);
        let c = from(&[("PERF_MEMORY_SNAPSHOT_INTERVAL_SECS", "15")]).unwrap();
        assert_eq!(c.memory_snapshot_interval, Some(Duration::from_secs(15)));
        let c = from(&[("PERF_MEMORY_SNAPSHOT_INTERVAL_SECS", "0")]).unwrap();
        assert_eq!(c.memory_snapshot_interval, None);
        assert!(from(&[("PERF_MEMORY_SNAPSHOT_INTERVAL_SECS", "soon")]).is_err());
    }

    #[test]
    fn defaults_are_the_seeds() {
        let c = from(&[]).unwrap();
        assert!(c.asset_optimization && c.query_cache && c.memory_profiling);
        assert!(c.monitoring && c.response_compression && c.frontend_optimization);
        assert_eq!(c.query_cache_default_expire, Duration::from_secs(300));
        assert_eq!(c.memory_max_snapshots, 100);
        assert_eq!(c.monitor.slow_request, Duration::from_millis(500));
        assert!(c.monitor_token.is_none());
    }

    #[test]
    fn values_override_and_bad_ones_name_variable_and_value() {
        let c = from(&[
            ("PERF_MONITORING", "off"),
            ("PERF_THRESHOLD_SLOW_REQUEST_MS", " 250 "),
            ("PERF_QUERY_CACHE_DEFAULT_EXPIRE", "60"),
            ("PERF_MONITOR_TOKEN", "0123456789abcdef0123"),
            ("PERF_RESPONSE_COMPRESSION", ""),
        ])
        .unwrap();
        assert!(!c.monitoring);
        assert!(c.response_compression);
        assert_eq!(c.monitor.slow_request, Duration::from_millis(250));
        assert_eq!(c.query_cache_default_expire, Duration::from_secs(60));
        assert_eq!(c.monitor_token.as_deref(), Some("0123456789abcdef0123"));

        let e = from(&[("PERF_MONITORING", "maybe")]).unwrap_err();
        assert_eq!(e.variable, "PERF_MONITORING");
        assert!(e.to_string().contains("PERF_MONITORING=\"maybe\""), "{e}");
        let e = from(&[("PERF_THRESHOLD_SLOW_REQUEST_MS", "fast")]).unwrap_err();
        assert!(
            e.to_string()
                .contains("PERF_THRESHOLD_SLOW_REQUEST_MS=\"fast\""),
            "{e}"
        );
        assert!(e.to_string().contains("milliseconds"), "{e}");
        let e = from(&[("PERF_N_PLUS_ONE_THRESHOLD", "1")]).unwrap_err();
        assert_eq!(e.variable, "PERF_N_PLUS_ONE_THRESHOLD");
        let e = from(&[("PERF_MONITOR_TOKEN", "short")]).unwrap_err();
        assert!(!e.to_string().contains("short"), "the token leaked: {e}");
        assert!(
            from(&[("PERF_MONITOR_TOKEN", "  ")])
                .unwrap()
                .monitor_token
                .is_none()
        );
        assert!(
            from(&[("PERF_MONITOR_ALLOW_NO_TOKEN", "yes")])
                .unwrap()
                .monitor_allow_no_token
        );
    }

    #[test]
    fn a_token_set_in_code_is_held_to_the_same_rule() {
        let good = "0123456789abcdef0123";
        assert_eq!(Config::default().monitor_token(good).validate(), Ok(()));
        assert_eq!(Config::default().validate(), Ok(()));
        for bad in [
            "",
            " ",
            "short",
            "0123456789 abcdef",
            "0123456789abcdef;",
            "0123456789abcdé",
        ] {
            let e = Config::default().monitor_token(bad).validate().unwrap_err();
            assert_eq!(e.variable, "PERF_MONITOR_TOKEN", "{bad:?}");
            assert_eq!(
                from(&[("PERF_MONITOR_TOKEN", bad)]).map(|c| c.monitor_token),
                if bad.trim().is_empty() {
                    Ok(None)
                } else {
                    Err(e.clone())
                },
                "{bad:?}: environment and code disagree"
            );
        }
        // The field is public: setting it directly is checked the same way.
        let c = Config {
            monitor_token: Some(String::new()),
            ..Config::default()
        };
        assert!(c.validate().is_err());
    }
}
