//! The monitoring endpoints: JSON reports, Prometheus text, the dashboard, and the
//! browser-metrics script with its beacon endpoint.
//!
//! | path | what |
//! | --- | --- |
//! | `GET /api/performance/metrics` | [`Overview`](crate::monitor::Overview): everything the dashboard draws |
//! | `GET /api/performance/requests` | [`RequestsReport`](crate::monitor::RequestsReport) |
//! | `GET /api/performance/queries` | [`QueriesReport`](crate::monitor::QueriesReport) |
//! | `GET /api/performance/memory` | `MemoryReport` of the memory profiler |
//! | `GET /api/memory/leaks` | `LeakReport` of the memory profiler |
//! | `GET /metrics` | Prometheus text format 0.0.4 |
//! | `GET /perf` | the dashboard |
//! | `GET /_perf/vitals.js` | the browser-metrics script (public) |
//! | `POST /api/performance/client` | its beacons (public, validated, rate-limited) |
//!
//! All but the last two answer 401 unless the request carries
//! `Authorization: Bearer <PERF_MONITOR_TOKEN>` (or the dashboard's `perf_token` cookie).
//! Without a token configured, they answer clients on the loopback interface only, and
//! only when the request carries no proxy header (`Forwarded`, `X-Forwarded-For`,
//! `X-Real-IP`): behind a reverse proxy every client looks local, so set a token there.
//! A proxy that adds no such header cannot be told apart from a local client, which is
//! why [`PerfSuite::check_listener`](crate::suite::PerfSuite::check_listener) refuses a
//! tokenless listener other hosts can reach.

#[cfg(feature = "prometheus")]
mod prometheus;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Serialize;

use crate::monitor::{Monitor, client};

/// What the endpoints serve.
#[derive(Debug, Clone)]
pub(crate) struct Endpoints {
    pub(crate) monitor: Monitor,
    pub(crate) token: Option<String>,
    pub(crate) memory: bool,
    pub(crate) frontend: bool,
}

type Shared = Arc<Endpoints>;

/// Where the browser-metrics script is served.
pub const VITALS_PATH: &str = "/_perf/vitals.js";
/// Where its beacons go.
pub const BEACON_PATH: &str = "/api/performance/client";

static VITALS_VERSION: LazyLock<String> =
    LazyLock::new(|| format!("{:016x}", crate::monitor::fingerprint(client::SCRIPT)));

/// `<script src="/_perf/vitals.js?v=…" defer></script>`: the version makes the URL change
/// with the script, so browsers may keep it for a year.
pub fn vitals_script_tag() -> String {
    format!(
        "<script src=\"{VITALS_PATH}?v={}\" defer></script>",
        *VITALS_VERSION
    )
}

/// Every route of the endpoints (which the monitor leaves untimed).
pub const ROUTES: &[&str] = &[
    "/api/performance/metrics",
    "/api/performance/requests",
    "/api/performance/queries",
    "/api/performance/memory",
    "/api/memory/leaks",
    "/metrics",
    "/perf",
    VITALS_PATH,
    BEACON_PATH,
];

const DASHBOARD: &str = include_str!("../monitor/dashboard.html");

pub(crate) fn router(endpoints: Endpoints) -> Router {
    let shared: Shared = Arc::new(endpoints);
    let protected = Router::new()
        .route("/api/performance/metrics", get(overview))
        .route("/api/performance/requests", get(requests))
        .route("/api/performance/queries", get(queries))
        .route("/api/performance/memory", get(memory))
        .route("/api/memory/leaks", get(leaks))
        .route("/perf", get(dashboard));
    #[cfg(feature = "prometheus")]
    let protected = protected.route("/metrics", get(metrics));
    let protected =
        protected.route_layer(middleware::from_fn_with_state(shared.clone(), authorize));
    let mut router = protected;
    if shared.frontend {
        router = router
            .route(VITALS_PATH, get(vitals))
            .route(BEACON_PATH, post(beacon));
    }
    router.with_state(shared)
}

fn peer(req: &Request) -> Option<IpAddr> {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// Compares without an early exit, so response time does not reveal how much of a
/// guessed token was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn presented_token(headers: &HeaderMap) -> Option<String> {
    if let Some(auth) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let (scheme, token) = auth.trim().split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_owned());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix("perf_token="))
        .map(percent_decode)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn check(endpoints: &Endpoints, req: &Request) -> Result<(), &'static str> {
    match &endpoints.token {
        Some(token) => match presented_token(req.headers()) {
            // An empty token never matches, whatever was configured: `Cookie: perf_token=`
            // must not open the door if a check upstream was ever skipped.
            Some(given) if !given.is_empty() && same(given.as_bytes(), token.as_bytes()) => Ok(()),
            Some(_) => Err("wrong monitoring token"),
            None => Err("send Authorization: Bearer <PERF_MONITOR_TOKEN>"),
        },
        None => {
            let proxied = ["forwarded", "x-forwarded-for", "x-real-ip"]
                .iter()
                .any(|h| req.headers().contains_key(*h));
            match peer(req) {
                _ if proxied => Err(
                    "proxied request: without PERF_MONITOR_TOKEN the monitoring endpoints answer direct loopback clients only",
                ),
                Some(ip) if ip.is_loopback() || ip.to_canonical().is_loopback() => Ok(()),
                Some(_) => Err(
                    "set PERF_MONITOR_TOKEN to reach the monitoring endpoints from another host",
                ),
                None => Err(
                    "client address unknown: serve with into_make_service_with_connect_info::<SocketAddr>(), or set PERF_MONITOR_TOKEN",
                ),
            }
        }
    }
}

async fn authorize(State(endpoints): State<Shared>, req: Request, next: Next) -> Response {
    match check(&endpoints, &req) {
        Ok(()) => next.run(req).await,
        Err(why) => {
            let html = req.uri().path() == "/perf";
            let mut res = if html {
                // The dashboard page asks for the token and keeps it in a cookie.
                (StatusCode::UNAUTHORIZED, Body::from(login_page(why))).into_response()
            } else {
                (StatusCode::UNAUTHORIZED, format!("{why}\n")).into_response()
            };
            let h = res.headers_mut();
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"perf-rt\""),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            if html {
                h.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                );
            }
            res
        }
    }
}

fn login_page(why: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>perf: sign in</title>\
         <body style=\"font:16px system-ui;margin:3rem\"><h1>Performance dashboard</h1><p>{why}.</p>\
         <form onsubmit=\"document.cookie='perf_token='+encodeURIComponent(this.t.value)+\
         '; path=/; SameSite=Strict';location.reload();return false\">\
         <label>Monitoring token <input name=\"t\" type=\"password\" autocomplete=\"off\" required></label> \
         <button>Open</button></form></body></html>"
    )
}

fn json<T: Serialize>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => (
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            body,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn overview(State(e): State<Shared>) -> Response {
    json(&e.monitor.overview())
}

async fn requests(State(e): State<Shared>) -> Response {
    json(&e.monitor.requests_report())
}

async fn queries(State(e): State<Shared>) -> Response {
    json(&e.monitor.queries_report())
}

#[derive(Serialize)]
struct Disabled {
    error: &'static str,
}

fn memory_disabled() -> Response {
    let mut res = json(&Disabled {
        error: if cfg!(feature = "memory") {
            "memory profiling is off (PERF_MEMORY_PROFILING=false)"
        } else {
            "perf-rt was built without the `memory` feature"
        },
    });
    *res.status_mut() = StatusCode::NOT_FOUND;
    res
}

async fn memory(State(e): State<Shared>) -> Response {
    #[cfg(feature = "memory")]
    if e.memory {
        let profiler = crate::memory::MemoryProfiler::global();
        // Blocking work (symbol resolution) off the async workers.
        return match tokio::task::spawn_blocking(move || profiler.report()).await {
            Ok(report) => json(&report),
            Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        };
    }
    let _ = e;
    memory_disabled()
}

async fn leaks(State(e): State<Shared>) -> Response {
    #[cfg(feature = "memory")]
    if e.memory {
        let profiler = crate::memory::MemoryProfiler::global();
        return match tokio::task::spawn_blocking(move || profiler.detect_leaks()).await {
            Ok(report) => json(&report),
            Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        };
    }
    let _ = e;
    memory_disabled()
}

#[cfg(feature = "prometheus")]
async fn metrics(State(e): State<Shared>) -> Response {
    let text = prometheus::render(&e.monitor, e.memory);
    (
        [
            (
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        text,
    )
        .into_response()
}

async fn dashboard() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
            ),
        ],
        DASHBOARD,
    )
        .into_response()
}

async fn vitals(req: Request) -> Response {
    let etag = format!("\"{}\"", *VITALS_VERSION);
    let versioned = req
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == format!("v={}", *VITALS_VERSION)));
    let cache = if versioned {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    if req
        .headers()
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        return (
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, etag), (header::CACHE_CONTROL, cache.into())],
        )
            .into_response();
    }
    (
        [
            (
                header::CONTENT_TYPE,
                "text/javascript; charset=utf-8".to_owned(),
            ),
            (header::ETAG, etag),
            (header::CACHE_CONTROL, cache.into()),
        ],
        client::SCRIPT,
    )
        .into_response()
}

async fn beacon(State(e): State<Shared>, req: Request) -> Response {
    let peer = peer(&req).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let max = e.monitor.config().client.max_body_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max) {
        return (StatusCode::PAYLOAD_TOO_LARGE, "beacon too large\n").into_response();
    }
    // Reads at most one byte more than allowed, so an oversized chunked body is refused
    // without being buffered.
    let body = match axum::body::to_bytes(req.into_body(), max + 1).await {
        Ok(b) => b,
        Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "beacon too large\n").into_response(),
    };
    match e.monitor.ingest_client(peer, &body) {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => (
            StatusCode::from_u16(err.status()).unwrap_or(StatusCode::BAD_REQUEST),
            format!("{err}\n"),
        )
            .into_response(),
    }
}
