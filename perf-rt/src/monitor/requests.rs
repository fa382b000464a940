//! Request statistics: a latency histogram per matched route, method and status class,
//! the requests in flight, and the slow-request list.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use http::Method;
use serde::Serialize;

use super::histogram::{Summary, Timings};
use super::{lock, now_ms, push_bounded};

/// Route label of requests no route matched (the fallback), whatever their path.
pub const UNMATCHED: &str = "(unmatched)";
/// Route label used once the route bound ([`MonitorConfig::max_routes`]) is reached.
///
/// [`MonitorConfig::max_routes`]: super::MonitorConfig::max_routes
pub const OTHER_ROUTES: &str = "(other)";
/// Method label of every method but the nine of RFC 9110 and RFC 5789, which a client can
/// make up at will (`M00001 / HTTP/1.1`).
pub const OTHER_METHOD: &str = "OTHER";

/// Latency of one route, method and status class.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteStat {
    /// Matched route template, as written in the router (`/reflections/{id}`).
    pub route: String,
    /// HTTP method ([`OTHER_METHOD`] for non-standard ones).
    pub method: String,
    /// Status class: `1xx` … `5xx`.
    pub status: String,
    /// Count and latency quantiles.
    #[serde(flatten)]
    pub timing: Summary,
}

/// One request slower than `PERF_THRESHOLD_SLOW_REQUEST_MS`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlowRequest {
    /// When it finished, milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Matched route.
    pub route: String,
    /// The request's path (without the query string).
    pub path: String,
    /// HTTP method.
    pub method: String,
    /// Response status.
    pub status: u16,
    /// Time to the response head, milliseconds.
    pub duration_ms: f64,
    /// Queries the request ran.
    pub queries: u32,
}

/// The `/api/performance/requests` report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestsReport {
    /// Requests answered since start (or the last clear).
    pub total: u64,
    /// Requests being handled now.
    pub in_flight: i64,
    /// Requests slower than the threshold.
    pub slow_total: u64,
    /// Responses with a 5xx status.
    pub errors: u64,
    /// The slow-request threshold, milliseconds.
    pub slow_threshold_ms: f64,
    /// All requests together.
    pub overall: Summary,
    /// Per route, method and status class, sorted by route.
    pub routes: Vec<RouteStat>,
    /// The most recent slow requests, newest last.
    pub slow: Vec<SlowRequest>,
    /// Requests recorded under a catch-all label: [`OTHER_METHOD`] for a non-standard
    /// method, [`OTHER_ROUTES`] once the route bound is reached.
    pub folded: RequestsFolded,
}

/// Requests whose labels were folded into a catch-all series, so that labels a client
/// makes up cannot add series.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RequestsFolded {
    /// Requests with a non-standard method, recorded as [`OTHER_METHOD`].
    pub methods: u64,
    /// Requests of a route template beyond the bound, recorded as [`OTHER_ROUTES`].
    pub routes: u64,
}

#[derive(Debug)]
pub(crate) struct RouteSeries {
    pub(crate) name: Arc<str>,
    /// `, route;desc="<name>"`, escaped once here rather than on every response.
    pub(crate) timing_desc: Box<str>,
    /// (method label, status class, timings): at most ten labels times five classes.
    series: Mutex<Vec<(&'static str, u8, Timings)>>,
}

#[derive(Debug)]
pub(crate) struct RequestStats {
    routes: RwLock<HashMap<Arc<str>, Arc<RouteSeries>>>,
    max_routes: usize,
    pub(crate) in_flight: AtomicI64,
    total: AtomicU64,
    slow_total: AtomicU64,
    errors: AtomicU64,
    pub(crate) slow_threshold: Duration,
    /// All requests, and those since the last timeline tick: one lock for both, since
    /// every request records into both.
    latency: Mutex<Latency>,
    slow: Mutex<VecDeque<SlowRequest>>,
    folded_methods: AtomicU64,
    folded_routes: AtomicU64,
}

#[derive(Debug)]
struct Latency {
    overall: Timings,
    interval: Timings,
}

/// The `route` part of the `Server-Timing` value: the template as a quoted string.
fn timing_desc(route: &str) -> Box<str> {
    let mut value = String::with_capacity(route.len() + 16);
    value.push_str(", route;desc=\"");
    for c in route.chars() {
        if c == '"' || c == '\\' {
            value.push('\\');
        }
        value.push(c);
    }
    value.push('"');
    value.into_boxed_str()
}

/// The nine methods of RFC 9110 and RFC 5789: each is a label of its own.
static STANDARD_METHODS: [Method; 9] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::HEAD,
    Method::OPTIONS,
    Method::PATCH,
    Method::CONNECT,
    Method::TRACE,
];

/// The label a request's method is recorded under: itself if standard, else
/// [`OTHER_METHOD`].
pub(crate) fn method_label(m: &Method) -> &'static str {
    STANDARD_METHODS
        .iter()
        .find(|s| *s == m)
        .map_or(OTHER_METHOD, Method::as_str)
}

impl RequestStats {
    pub(crate) fn new(max_routes: usize, slow_threshold: Duration) -> Self {
        Self {
            routes: RwLock::new(HashMap::new()),
            max_routes,
            in_flight: AtomicI64::new(0),
            total: AtomicU64::new(0),
            slow_total: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            slow_threshold,
            latency: Mutex::new(Latency {
                overall: Timings::new(),
                interval: Timings::new(),
            }),
            slow: Mutex::new(VecDeque::new()),
            folded_methods: AtomicU64::new(0),
            folded_routes: AtomicU64::new(0),
        }
    }

    /// The series of `route`, created on first sight.
    pub(crate) fn route(&self, route: &str) -> Arc<RouteSeries> {
        if let Some(r) = self
            .routes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(route)
        {
            return r.clone();
        }
        let mut routes = self.routes.write().unwrap_or_else(|e| e.into_inner());
        // `(other)` itself does not count against the bound, so exactly `max_routes`
        // templates have their own series.
        let own = routes.len() - usize::from(routes.contains_key(OTHER_ROUTES));
        let name: &str = if own >= self.max_routes && !routes.contains_key(route) {
            self.folded_routes.fetch_add(1, Ordering::Relaxed);
            OTHER_ROUTES
        } else {
            route
        };
        routes
            .entry(Arc::from(name))
            .or_insert_with(|| {
                Arc::new(RouteSeries {
                    name: Arc::from(name),
                    timing_desc: timing_desc(name),
                    series: Mutex::new(Vec::new()),
                })
            })
            .clone()
    }

    /// Whether `route` is a route template this server has answered.
    pub(crate) fn knows(&self, route: &str) -> bool {
        route != OTHER_ROUTES
            && route != UNMATCHED
            && self
                .routes
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .contains_key(route)
    }

    pub(crate) fn record(&self, route: &RouteSeries, method: &Method, status: u16, d: Duration) {
        let class = (status / 100).clamp(1, 5) as u8;
        // Looked up by label, not by method: a made-up method must find the one `OTHER`
        // series instead of adding its own.
        let label = method_label(method);
        if label == OTHER_METHOD {
            self.folded_methods.fetch_add(1, Ordering::Relaxed);
        }
        {
            let mut series = lock(&route.series);
            match series
                .iter_mut()
                .find(|(m, c, _)| *c == class && *m == label)
            {
                Some((_, _, t)) => t.record(d),
                None => {
                    let mut t = Timings::new();
                    t.record(d);
                    series.push((label, class, t));
                }
            }
        }
        {
            let mut latency = lock(&self.latency);
            latency.overall.record(d);
            latency.interval.record(d);
        }
        self.total.fetch_add(1, Ordering::Relaxed);
        if class == 5 {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn record_slow(&self, request: SlowRequest) {
        self.slow_total.fetch_add(1, Ordering::Relaxed);
        push_bounded(&self.slow, 100, request);
    }

    /// The interval histogram's summary, then a fresh interval.
    pub(crate) fn take_interval(&self) -> Summary {
        // The summary is computed outside the lock: the requests recording meanwhile wait
        // only for the swap.
        let mut taken = Timings::new();
        std::mem::swap(&mut lock(&self.latency).interval, &mut taken);
        taken.summary()
    }

    pub(crate) fn overall(&self) -> Summary {
        lock(&self.latency).overall.summary()
    }

    pub(crate) fn totals(&self) -> (u64, i64, u64, u64) {
        (
            self.total.load(Ordering::Relaxed),
            self.in_flight.load(Ordering::Relaxed),
            self.slow_total.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
        )
    }

    pub(crate) fn folded(&self) -> RequestsFolded {
        RequestsFolded {
            methods: self.folded_methods.load(Ordering::Relaxed),
            routes: self.folded_routes.load(Ordering::Relaxed),
        }
    }

    /// Calls `f` for every series: route, method label, status class, timings.
    pub(crate) fn each(&self, mut f: impl FnMut(&str, &str, u8, &Timings)) {
        let routes: Vec<Arc<RouteSeries>> = self
            .routes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        for r in routes {
            for (m, c, t) in lock(&r.series).iter() {
                f(&r.name, m, *c, t);
            }
        }
    }

    pub(crate) fn report(&self) -> RequestsReport {
        let mut routes = Vec::new();
        self.each(|route, method, class, t| {
            routes.push(RouteStat {
                route: route.to_owned(),
                method: method.to_owned(),
                status: format!("{class}xx"),
                timing: t.summary(),
            })
        });
        routes.sort_by(|a, b| {
            (&a.route, &a.method, &a.status).cmp(&(&b.route, &b.method, &b.status))
        });
        let (total, in_flight, slow_total, errors) = self.totals();
        RequestsReport {
            total,
            in_flight,
            slow_total,
            errors,
            slow_threshold_ms: self.slow_threshold.as_secs_f64() * 1000.0,
            overall: self.overall(),
            routes,
            slow: lock(&self.slow).iter().cloned().collect(),
            folded: self.folded(),
        }
    }

    pub(crate) fn clear(&self) {
        for r in self
            .routes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
        {
            lock(&r.series).clear();
        }
        {
            let mut latency = lock(&self.latency);
            latency.overall.reset();
            latency.interval.reset();
        }
        lock(&self.slow).clear();
        self.total.store(0, Ordering::Relaxed);
        self.slow_total.store(0, Ordering::Relaxed);
        self.errors.store(0, Ordering::Relaxed);
        self.folded_methods.store(0, Ordering::Relaxed);
        self.folded_routes.store(0, Ordering::Relaxed);
    }
}

/// Record of the time at which `now_ms` was read, for the slow list.
pub(crate) fn slow_request(
    route: &str,
    path: &str,
    method: &Method,
    status: u16,
    d: Duration,
    queries: u32,
) -> SlowRequest {
    SlowRequest {
        at_ms: now_ms(),
        route: route.to_owned(),
        path: path.chars().take(200).collect(),
        method: method_label(method).to_owned(),
        status,
        duration_ms: d.as_secs_f64() * 1000.0,
        queries,
    }
}
