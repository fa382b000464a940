//! Browser metrics: the vitals script and the ingestion of the beacons it sends.
//!
//! The page loads [`SCRIPT`] (served by the monitor), which measures LCP, FCP, CLS, INP and
//! TTFB and sends them once per page view as a small JSON beacon. [`ClientMetrics`] checks
//! each beacon, rate-limits senders and aggregates the values per route and metric in HDR
//! histograms; [`ClientMetrics::report`] summarises them for the dashboard.
//!
//! ```
//! use perf_rt::monitor::client::{ClientConfig, ClientMetrics};
//! use std::net::{IpAddr, Ipv4Addr};
//!
//! let metrics = ClientMetrics::new(ClientConfig::default());
//! let peer = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
//! let body = br#"{"route":"/reflections/{id}","metrics":{"LCP":1234.5,"CLS":0.01}}"#;
//! let recorded = metrics.ingest(peer, body, &|route: &str| route == "/reflections/{id}").unwrap();
//! assert_eq!(recorded, 2);
//!
//! let report = metrics.report();
//! assert_eq!(report.routes["/reflections/{id}"]["LCP"].count, 1);
//! ```

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// The vitals script, served by the monitor's endpoints.
pub const SCRIPT: &str = include_str!("vitals.js");

/// The route under which beacons for routes the server does not know, or beyond
/// [`ClientConfig::max_routes`], are recorded.
pub const OTHER_ROUTE: &str = "(other)";

/// The global rate limit is this many times the per-client one, so that many addresses
/// together cannot flood the figures either.
const GLOBAL_FACTOR: u32 = 50;

/// Longest accepted route template, in bytes.
const MAX_ROUTE_LEN: usize = 200;

/// Limits of the beacon ingestion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientConfig {
    /// Largest accepted beacon body, in bytes (default 4096).
    pub max_body_bytes: usize,
    /// Beacons a client may send at once before it is rate limited (default 20).
    pub burst: u32,
    /// Beacons a client may send per minute in the long run (default 60).
    pub per_minute: u32,
    /// Clients whose rate-limit state is kept at most (default 10 000). When the table is
    /// full, clients idle long enough to have their whole burst back are forgotten; if none
    /// is, new clients are refused until one is.
    pub max_clients: usize,
    /// Routes with their own figures at most (default 256); beacons for further routes are
    /// recorded under [`OTHER_ROUTE`].
    pub max_routes: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 4096,
            burst: 20,
            per_minute: 60,
            max_clients: 10_000,
            max_routes: 256,
        }
    }
}

/// Why a beacon was refused. Nothing of a refused beacon is recorded.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum BeaconError {
    /// The body is longer than [`ClientConfig::max_body_bytes`].
    TooLarge {
        /// Length of the body, in bytes.
        len: usize,
        /// The limit, in bytes.
        max: usize,
    },
    /// The body is not a beacon: not JSON, wrong shape, no metric, a value not a number.
    Malformed(String),
    /// A metric other than LCP, FCP, CLS, INP and TTFB.
    UnknownMetric(String),
    /// A value outside the range a browser can report for its metric.
    OutOfRange {
        /// The metric.
        metric: &'static str,
        /// The value sent.
        value: f64,
    },
    /// The route is not a path template: not a string, not starting with `/`, longer than
    /// 200 bytes or holding control characters.
    BadRoute,
    /// The sender, or all senders together, sent too many beacons.
    RateLimited,
}

impl BeaconError {
    /// The HTTP status to answer with: 413, 400, 422, 422, 422 or 429.
    pub fn status(&self) -> u16 {
        match self {
            Self::TooLarge { .. } => 413,
            Self::Malformed(_) => 400,
            Self::UnknownMetric(_) | Self::OutOfRange { .. } | Self::BadRoute => 422,
            Self::RateLimited => 429,
        }
    }

    /// A short snake_case name of the reason, as counted in [`ClientReport::rejected_by`].
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "too_large",
            Self::Malformed(_) => "malformed",
            Self::UnknownMetric(_) => "unknown_metric",
            Self::OutOfRange { .. } => "out_of_range",
            Self::BadRoute => "bad_route",
            Self::RateLimited => "rate_limited",
        }
    }
}

impl fmt::Display for BeaconError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { len, max } => {
                write!(
                    f,
                    "beacon of {len} bytes is larger than the limit of {max} bytes"
                )
            }
            Self::Malformed(why) => write!(f, "malformed beacon: {why}"),
            Self::UnknownMetric(name) => write!(
                f,
                "unknown metric {name:?}: expected LCP, FCP, CLS, INP or TTFB"
            ),
            Self::OutOfRange { metric, value } => {
                let (_, max, _) = bounds(metric);
                write!(f, "{metric} value {value} is outside 0..={max}")
            }
            Self::BadRoute => write!(
                f,
                "route must be a string starting with '/', at most {MAX_ROUTE_LEN} bytes, without control characters"
            ),
            Self::RateLimited => write!(f, "too many beacons: retry later"),
        }
    }
}

impl std::error::Error for BeaconError {}

/// The metrics a beacon may carry, in report order.
const METRICS: [&str; 5] = ["CLS", "FCP", "INP", "LCP", "TTFB"];

/// Largest accepted value, scale to integers, and lowest discernible scaled value.
///
/// Times are stored in microseconds. Browsers coarsen their clocks to 0.1 ms or more (and
/// round event durations to 8 ms), so a lowest discernible value of 1 ms loses nothing and
/// keeps each histogram small (16 KiB up to 1 s, 8 KiB more per doubling). CLS is stored
/// in ten-thousandths, discernible from 0.001.
fn bounds(metric: &str) -> (f64, f64, u64) {
    match metric {
        "CLS" => (50.0, 10_000.0, 10),
        "INP" => (60_000.0, 1000.0, 1000),
        _ => (120_000.0, 1000.0, 1000),
    }
}

/// One metric of one route: its histogram and the exact largest value.
#[derive(Debug)]
struct Series {
    histogram: Histogram<u64>,
    max: f64,
}

impl Series {
    fn new(metric: &str) -> Self {
        let (_, _, low) = bounds(metric);
        // Starts with the smallest range and grows with the values recorded, which
        // validation bounds, so quiet metrics stay small.
        let mut histogram = Histogram::new_with_bounds(low, 2 * low, 3)
            .expect("constant histogram bounds are valid");
        histogram.auto(true);
        Self {
            histogram,
            max: 0.0,
        }
    }

    fn record(&mut self, metric: &str, value: f64) {
        let (_, scale, _) = bounds(metric);
        let scaled = (value * scale).round() as u64;
        // `record` grows the histogram; `saturating_record` would clamp to its current range.
        if self.histogram.record(scaled).is_err() {
            self.histogram.saturating_record(scaled);
        }
        self.max = self.max.max(value);
    }

    fn summary(&self, metric: &str) -> MetricSummary {
        let (_, scale, _) = bounds(metric);
        // Quantiles are the highest value of their bucket, at most 0.1 % above the true
        // value, never above the exact maximum.
        let at = |q: f64| {
            let value = self.histogram.value_at_quantile(q) as f64 / scale;
            round3(value.min(self.max))
        };
        MetricSummary {
            count: self.histogram.len(),
            p50: at(0.50),
            p75: at(0.75),
            p90: at(0.90),
            p99: at(0.99),
            max: round3(self.max),
        }
    }
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// Summary of one metric of one route. Times are in milliseconds; CLS is unitless.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MetricSummary {
    /// Values recorded.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 75th percentile: the figure Core Web Vitals are judged by.
    pub p75: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest value recorded.
    pub max: f64,
}

/// What the browsers reported, as served in the `client` section of the monitor's JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientReport {
    /// Beacons recorded.
    pub accepted: u64,
    /// Beacons refused as too large or invalid (rate-limited ones not included).
    pub rejected: u64,
    /// `rejected` by reason (`too_large`, `malformed`, `unknown_metric`, `out_of_range`,
    /// `bad_route`); reasons that never happened are absent.
    pub rejected_by: BTreeMap<String, u64>,
    /// Beacons refused because their sender, or all senders together, sent too many.
    pub rate_limited: u64,
    /// Accepted beacons recorded under [`OTHER_ROUTE`]: their route is not one the server
    /// has answered, or the route bound was reached.
    #[serde(default)]
    pub folded: u64,
    /// Per route template (or [`OTHER_ROUTE`]), per metric name (`CLS`, `FCP`, `INP`,
    /// `LCP`, `TTFB`), the summary of the values recorded.
    pub routes: BTreeMap<String, BTreeMap<String, MetricSummary>>,
}

/// A beacon as the script sends it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Beacon {
    route: serde_json::Value,
    metrics: serde_json::Map<String, serde_json::Value>,
}

/// A token bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(capacity: f64, now: Instant) -> Self {
        Self {
            tokens: capacity,
            at: now,
        }
    }

    /// Tokens available at `now`.
    fn refill(&mut self, now: Instant, capacity: f64, per_second: f64) -> f64 {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * per_second).min(capacity);
        self.at = now;
        self.tokens
    }
}

/// Per-client buckets in a bounded table, and one global bucket.
#[derive(Debug)]
struct Limiter {
    clients: HashMap<IpAddr, Bucket>,
    global: Bucket,
    last_sweep: Option<Instant>,
}

impl Limiter {
    /// Takes a token from the client's bucket and from the global one, or from neither.
    fn allow(&mut self, config: &ClientConfig, client: IpAddr, now: Instant) -> bool {
        let capacity = f64::from(config.burst);
        let per_second = f64::from(config.per_minute) / 60.0;
        let factor = f64::from(GLOBAL_FACTOR);
        if !self.clients.contains_key(&client) && self.clients.len() >= config.max_clients {
            self.sweep(now, capacity, per_second);
            if self.clients.len() >= config.max_clients {
                return false;
            }
        }
        let global = self
            .global
            .refill(now, capacity * factor, per_second * factor);
        let bucket = self
            .clients
            .entry(client)
            .or_insert_with(|| Bucket::full(capacity, now));
        if bucket.refill(now, capacity, per_second) < 1.0 || global < 1.0 {
            return false;
        }
        bucket.tokens -= 1.0;
        self.global.tokens -= 1.0;
        true
    }

    /// Forgets clients whose bucket is full again: a full bucket is the same as none. At
    /// most once per second, so a full table of busy clients costs one pass per second.
    fn sweep(&mut self, now: Instant, capacity: f64, per_second: f64) {
        if self
            .last_sweep
            .is_some_and(|last| now.saturating_duration_since(last) < Duration::from_secs(1))
        {
            return;
        }
        self.last_sweep = Some(now);
        self.clients
            .retain(|_, bucket| bucket.refill(now, capacity, per_second) < capacity);
    }
}

/// Clients are addresses, except that IPv6 ones are grouped by /64, the block one
/// subscriber usually gets whole.
fn client_key(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V4(_) => peer,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(
                u128::from(v6) & 0xffff_ffff_ffff_ffff_0000_0000_0000_0000,
            )),
        },
    }
}

/// The figures: beacons accepted and the series per route and metric.
#[derive(Debug, Default)]
struct Figures {
    accepted: u64,
    folded: u64,
    routes: BTreeMap<String, BTreeMap<&'static str, Series>>,
}

/// Refusal reasons counted in `rejected`, in [`BeaconError::reason`] names.
const REJECTIONS: [&str; 5] = [
    "too_large",
    "malformed",
    "unknown_metric",
    "out_of_range",
    "bad_route",
];

/// Browser metrics of all routes, fed by beacons. Shared between requests (`Send + Sync`).
#[derive(Debug)]
pub struct ClientMetrics {
    config: ClientConfig,
    limiter: Mutex<Limiter>,
    figures: Mutex<Figures>,
    rejected: [AtomicU64; REJECTIONS.len()],
    rate_limited: AtomicU64,
}

/// A poisoned lock only means another request panicked mid-update of plain counters and
/// histograms: the data is still usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ClientMetrics {
    /// Empty figures with the given limits.
    pub fn new(config: ClientConfig) -> Self {
        let now = Instant::now();
        Self {
            config,
            limiter: Mutex::new(Limiter {
                clients: HashMap::new(),
                global: Bucket::full(f64::from(config.burst) * f64::from(GLOBAL_FACTOR), now),
                last_sweep: None,
            }),
            figures: Mutex::new(Figures::default()),
            rejected: Default::default(),
            rate_limited: AtomicU64::new(0),
        }
    }

    /// The limits in force.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Validates and records one beacon from `peer`. `known_route` says whether a route
    /// template is one the server has served; unknown routes are recorded under "(other)".
    ///
    /// Returns the number of values recorded. A refused beacon records nothing; it only
    /// counts as rejected or rate limited.
    pub fn ingest(
        &self,
        peer: IpAddr,
        body: &[u8],
        known_route: &dyn Fn(&str) -> bool,
    ) -> Result<usize, BeaconError> {
        self.ingest_at(Instant::now(), peer, body, known_route)
    }

    fn ingest_at(
        &self,
        now: Instant,
        peer: IpAddr,
        body: &[u8],
        known_route: &dyn Fn(&str) -> bool,
    ) -> Result<usize, BeaconError> {
        let result = self.check_and_record(now, peer, body, known_route);
        if let Err(error) = &result {
            match REJECTIONS
                .iter()
                .position(|reason| *reason == error.reason())
            {
                Some(index) => self.rejected[index].fetch_add(1, Ordering::Relaxed),
                None => self.rate_limited.fetch_add(1, Ordering::Relaxed),
            };
            tracing::debug!(%error, "browser metrics beacon refused");
        }
        result
    }

    fn check_and_record(
        &self,
        now: Instant,
        peer: IpAddr,
        body: &[u8],
        known_route: &dyn Fn(&str) -> bool,
    ) -> Result<usize, BeaconError> {
        if body.len() > self.config.max_body_bytes {
            return Err(BeaconError::TooLarge {
                len: body.len(),
                max: self.config.max_body_bytes,
            });
        }
        // Before parsing: invalid beacons cost a token too, so they cannot be sent in bulk.
        if !lock(&self.limiter).allow(&self.config, client_key(peer), now) {
            return Err(BeaconError::RateLimited);
        }
        let (route, values) = parse(body)?;
        let known = known_route(&route);

        let mut figures = lock(&self.figures);
        let key = if !known {
            OTHER_ROUTE
        } else if figures.routes.contains_key(route.as_str()) {
            route.as_str()
        } else {
            let own = figures.routes.len() - usize::from(figures.routes.contains_key(OTHER_ROUTE));
            if own < self.config.max_routes {
                route.as_str()
            } else {
                OTHER_ROUTE
            }
        };
        let series = figures.routes.entry(key.to_owned()).or_default();
        for &(metric, value) in &values {
            series
                .entry(metric)
                .or_insert_with(|| Series::new(metric))
                .record(metric, value);
        }
        figures.accepted += 1;
        if key == OTHER_ROUTE {
            figures.folded += 1;
        }
        Ok(values.len())
    }

    /// The figures so far.
    pub fn report(&self) -> ClientReport {
        let (accepted, folded, routes) = {
            let figures = lock(&self.figures);
            let routes = figures
                .routes
                .iter()
                .map(|(route, series)| {
                    let metrics = series
                        .iter()
                        .map(|(metric, series)| ((*metric).to_owned(), series.summary(metric)))
                        .collect();
                    (route.clone(), metrics)
                })
                .collect();
            (figures.accepted, figures.folded, routes)
        };
        let rejected_by: BTreeMap<String, u64> = REJECTIONS
            .iter()
            .zip(&self.rejected)
            .map(|(reason, count)| ((*reason).to_owned(), count.load(Ordering::Relaxed)))
            .filter(|(_, count)| *count > 0)
            .collect();
        ClientReport {
            accepted,
            rejected: rejected_by.values().sum(),
            rejected_by,
            rate_limited: self.rate_limited.load(Ordering::Relaxed),
            folded,
            routes,
        }
    }

    /// Forgets the figures and counts. Rate limits stay as they are, so clearing never lets
    /// a flood through.
    pub fn clear(&self) {
        *lock(&self.figures) = Figures::default();
        for count in &self.rejected {
            count.store(0, Ordering::Relaxed);
        }
        self.rate_limited.store(0, Ordering::Relaxed);
    }
}

/// A checked beacon: its route and its values.
type Checked = (String, Vec<(&'static str, f64)>);

/// Parses and validates a whole beacon: the route and every value, before anything is
/// recorded.
fn parse(body: &[u8]) -> Result<Checked, BeaconError> {
    let beacon: Beacon =
        serde_json::from_slice(body).map_err(|e| BeaconError::Malformed(e.to_string()))?;
    let route = match beacon.route {
        serde_json::Value::String(route)
            if route.starts_with('/')
                && route.len() <= MAX_ROUTE_LEN
                && !route.chars().any(char::is_control) =>
        {
            route
        }
        _ => return Err(BeaconError::BadRoute),
    };
    if beacon.metrics.is_empty() {
        return Err(BeaconError::Malformed("no metric".into()));
    }
    let mut values = Vec::with_capacity(beacon.metrics.len());
    for (name, value) in &beacon.metrics {
        let Some(metric) = METRICS.iter().copied().find(|m| m == name) else {
            let name: String = name.chars().take(40).collect();
            return Err(BeaconError::UnknownMetric(name));
        };
        let Some(value) = value.as_f64() else {
            return Err(BeaconError::Malformed(format!("{metric} is not a number")));
        };
        let (max, _, _) = bounds(metric);
        if !value.is_finite() || !(0.0..=max).contains(&value) {
            return Err(BeaconError::OutOfRange { metric, value });
        }
        values.push((metric, value));
    }
    Ok((route, values))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
    }

    fn any(_: &str) -> bool {
        true
    }

    const BEACON: &[u8] =
        br#"{"route":"/r/{id}","metrics":{"LCP":1234.5,"FCP":800.1,"CLS":0.012,"INP":56,"TTFB":20.3}}"#;

    #[test]
    fn valid_beacon_is_recorded() {
        let m = ClientMetrics::new(ClientConfig::default());
        assert_eq!(m.ingest(ip(1), BEACON, &any), Ok(5));
        let report = m.report();
        assert_eq!(report.accepted, 1);
        assert_eq!(report.rejected, 0);
        let route = &report.routes["/r/{id}"];
        assert_eq!(
            route.keys().collect::<Vec<_>>(),
            ["CLS", "FCP", "INP", "LCP", "TTFB"]
        );
        let lcp = route["LCP"];
        assert_eq!(lcp.count, 1);
        assert_eq!(lcp.max, 1234.5);
        assert!((lcp.p50 - 1234.5).abs() <= 1.5, "{lcp:?}");
        assert_eq!(route["CLS"].max, 0.012);
        assert!((route["CLS"].p75 - 0.012).abs() <= 0.001);
        assert!((route["TTFB"].p99 - 20.3).abs() <= 0.5);

        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["routes"]["/r/{id}"]["INP"]["count"], 1);
        assert_eq!(json["accepted"], 1);
    }

    #[test]
    fn percentiles_follow_the_values() {
        let config = ClientConfig {
            burst: 1000,
            ..ClientConfig::default()
        };
        let m = ClientMetrics::new(config);
        for ms in 1..=100 {
            let body = format!(r#"{{"route":"/","metrics":{{"INP":{ms}}}}}"#);
            m.ingest(ip(1), body.as_bytes(), &any).unwrap();
        }
        let inp = m.report().routes["/"]["INP"];
        assert_eq!(inp.count, 100);
        assert!((inp.p50 - 50.0).abs() <= 0.6, "{inp:?}");
        assert!((inp.p90 - 90.0).abs() <= 0.6, "{inp:?}");
        assert!((inp.p99 - 99.0).abs() <= 0.6, "{inp:?}");
        assert_eq!(inp.max, 100.0);
    }

    #[test]
    fn every_refusal_has_its_status_and_records_nothing() {
        let m = ClientMetrics::new(ClientConfig::default());
        m.ingest(ip(1), BEACON, &any).unwrap();
        let before = m.report();
        let cases: &[(&[u8], u16, &str)] = &[
            (b"not json", 400, "malformed"),
            (br#"{"route":"/","metrics":{}}"#, 400, "malformed"),
            (br#"{"route":"/"}"#, 400, "malformed"),
            (
                br#"{"route":"/","metrics":{"LCP":1},"x":1}"#,
                400,
                "malformed",
            ),
            (br#"{"route":"/","metrics":{"LCP":"1"}}"#, 400, "malformed"),
            (
                br#"{"route":"/","metrics":{"LCP":1e999}}"#,
                400,
                "malformed",
            ),
            (
                br#"{"route":"/","metrics":{"LCP":1,"FID":2}}"#,
                422,
                "unknown_metric",
            ),
            (
                br#"{"route":"/","metrics":{"lcp":1}}"#,
                422,
                "unknown_metric",
            ),
            (
                br#"{"route":"/","metrics":{"LCP":1,"CLS":-0.1}}"#,
                422,
                "out_of_range",
            ),
            (
                br#"{"route":"/","metrics":{"LCP":1,"CLS":51}}"#,
                422,
                "out_of_range",
            ),
            (
                br#"{"route":"/","metrics":{"LCP":120001}}"#,
                422,
                "out_of_range",
            ),
            (
                br#"{"route":"/","metrics":{"INP":60001}}"#,
                422,
                "out_of_range",
            ),
            (br#"{"route":"r","metrics":{"LCP":1}}"#, 422, "bad_route"),
            (br#"{"route":7,"metrics":{"LCP":1}}"#, 422, "bad_route"),
            (
                br#"{"route":"/a\nb","metrics":{"LCP":1}}"#,
                422,
                "bad_route",
            ),
            (
                br#"{"route":"(other)","metrics":{"LCP":1}}"#,
                422,
                "bad_route",
            ),
        ];
        for (body, status, reason) in cases {
            let error = m.ingest(ip(2), body, &any).unwrap_err();
            let text = String::from_utf8_lossy(body);
            assert_eq!(error.status(), *status, "{text}: {error}");
            assert_eq!(error.reason(), *reason, "{text}: {error}");
            assert!(!error.to_string().is_empty());
        }
        let long = format!(
            r#"{{"route":"/{}","metrics":{{"LCP":1}}}}"#,
            "a".repeat(200)
        );
        assert_eq!(
            m.ingest(ip(2), long.as_bytes(), &any),
            Err(BeaconError::BadRoute)
        );

        let after = m.report();
        assert_eq!(after.routes, before.routes);
        assert_eq!(after.accepted, 1);
        assert_eq!(after.rejected, cases.len() as u64 + 1);
        assert_eq!(after.rejected_by["malformed"], 6);
        assert_eq!(after.rejected_by["bad_route"], 5);
        assert_eq!(after.rate_limited, 0);
    }

    #[test]
    fn oversized_body_is_refused_unparsed() {
        let config = ClientConfig {
            max_body_bytes: 64,
            ..ClientConfig::default()
        };
        let m = ClientMetrics::new(config);
        let body = vec![b'{'; 65];
        let error = m.ingest(ip(1), &body, &any).unwrap_err();
        assert_eq!(error, BeaconError::TooLarge { len: 65, max: 64 });
        assert_eq!(error.status(), 413);
        let report = m.report();
        assert_eq!(report.rejected_by["too_large"], 1);
        assert!(report.routes.is_empty());
        // Oversized bodies cost no token: the whole burst is still there.
        let small = br#"{"route":"/","metrics":{"LCP":1}}"#;
        for _ in 0..20 {
            m.ingest(ip(1), small, &any).unwrap();
        }
    }

    #[test]
    fn flood_is_rate_limited_after_the_burst() {
        let m = ClientMetrics::new(ClientConfig::default());
        let start = Instant::now();
        let mut statuses = Vec::new();
        for _ in 0..30 {
            match m.ingest_at(start, ip(1), BEACON, &any) {
                Ok(_) => statuses.push(200),
                Err(e) => statuses.push(e.status()),
            }
        }
        assert_eq!(statuses[..20], [200; 20]);
        assert_eq!(statuses[20..], [429; 10]);
        // Another client is not affected.
        assert!(m.ingest_at(start, ip(2), BEACON, &any).is_ok());
        // One token per second comes back (60 per minute).
        let later = start + Duration::from_millis(1500);
        assert!(m.ingest_at(later, ip(1), BEACON, &any).is_ok());
        assert_eq!(
            m.ingest_at(later, ip(1), BEACON, &any),
            Err(BeaconError::RateLimited)
        );

        let report = m.report();
        assert_eq!(report.accepted, 22);
        assert_eq!(report.rate_limited, 11);
        assert_eq!(report.rejected, 0);
        assert_eq!(report.routes["/r/{id}"]["LCP"].count, 22);
    }

    #[test]
    fn many_clients_share_a_global_limit() {
        let config = ClientConfig {
            burst: 2,
            ..ClientConfig::default()
        };
        let m = ClientMetrics::new(config);
        let now = Instant::now();
        let mut accepted = 0;
        for a in 0..=255u8 {
            let peer = IpAddr::V4(Ipv4Addr::new(198, 51, 100, a));
            for _ in 0..2 {
                accepted += usize::from(m.ingest_at(now, peer, BEACON, &any).is_ok());
            }
        }
        assert_eq!(accepted, 100, "global burst is 50 times the client burst");
        assert_eq!(m.report().routes["/r/{id}"]["LCP"].count, 100);
    }

    #[test]
    fn client_table_is_bounded() {
        let config = ClientConfig {
            max_clients: 2,
            ..ClientConfig::default()
        };
        let m = ClientMetrics::new(config);
        let now = Instant::now();
        assert!(m.ingest_at(now, ip(1), BEACON, &any).is_ok());
        assert!(m.ingest_at(now, ip(2), BEACON, &any).is_ok());
        // Table full of clients still using their burst: newcomers wait.
        assert_eq!(
            m.ingest_at(now, ip(3), BEACON, &any),
            Err(BeaconError::RateLimited)
        );
        // Known clients are served.
        assert!(m.ingest_at(now, ip(1), BEACON, &any).is_ok());
        // Once their buckets are full again they are forgotten and make room.
        let later = now + Duration::from_secs(5);
        assert!(m.ingest_at(later, ip(3), BEACON, &any).is_ok());
        assert!(lock(&m.limiter).clients.len() <= 2);
    }

    #[test]
    fn ipv6_clients_are_grouped_by_64() {
        let m = ClientMetrics::new(ClientConfig::default());
        let now = Instant::now();
        for i in 0..20u16 {
            let peer = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, i));
            assert!(m.ingest_at(now, peer, BEACON, &any).is_ok());
        }
        let same_64 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 9, 9, 9, 9));
        let other_64 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 2, 0, 0, 0, 1));
        assert_eq!(
            m.ingest_at(now, same_64, BEACON, &any),
            Err(BeaconError::RateLimited)
        );
        assert!(m.ingest_at(now, other_64, BEACON, &any).is_ok());
        let mapped = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(client_key(mapped), ip(1));
    }

    #[test]
    fn routes_are_bounded() {
        let config = ClientConfig {
            max_routes: 2,
            ..ClientConfig::default()
        };
        let m = ClientMetrics::new(config);
        let known = |route: &str| route != "/secret-probe";
        for route in ["/a", "/b", "/secret-probe", "/c", "/a"] {
            let body = format!(r#"{{"route":"{route}","metrics":{{"LCP":100}}}}"#);
            assert_eq!(m.ingest(ip(1), body.as_bytes(), &known), Ok(1));
        }
        let routes = m.report().routes;
        assert_eq!(routes.keys().collect::<Vec<_>>(), ["(other)", "/a", "/b"]);
        assert_eq!(routes["/a"]["LCP"].count, 2);
        assert_eq!(routes["(other)"]["LCP"].count, 2);
        assert_eq!(m.report().folded, 2);
    }

    #[test]
    fn clear_forgets_figures_but_not_limits() {
        let config = ClientConfig {
            burst: 1,
            ..ClientConfig::default()
        };
        let m = ClientMetrics::new(config);
        let now = Instant::now();
        assert!(m.ingest_at(now, ip(1), BEACON, &any).is_ok());
        assert!(m.ingest_at(now, ip(1), BEACON, &any).is_err());
        m.clear();
        assert_eq!(m.report(), ClientReport::default());
        assert_eq!(
            m.ingest_at(now, ip(1), BEACON, &any),
            Err(BeaconError::RateLimited)
        );
    }

    #[test]
    fn script_posts_to_the_client_endpoint() {
        assert!(SCRIPT.contains("/api/performance/client"));
        assert!(SCRIPT.contains("sendBeacon"));
        assert!(SCRIPT.len() < 6 * 1024, "{} bytes", SCRIPT.len());
    }

    #[test]
    fn metrics_are_shared_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<ClientMetrics>();
    }
}
