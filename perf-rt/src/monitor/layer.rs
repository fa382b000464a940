//! The tower layer that times every request.

use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::Instant;

use axum::extract::MatchedPath;
use http::{HeaderValue, Method, Request, Response, Uri, header};
use pin_project_lite::pin_project;
use tokio::task::futures::TaskLocalFuture;
use tower_layer::Layer;
use tower_service::Service;

use super::requests::{RouteSeries, UNMATCHED, method_label, slow_request};
use super::scope::{RequestScope, with_scope};
use super::{Inner, Monitor};

const SERVER_TIMING: header::HeaderName = header::HeaderName::from_static("server-timing");

/// Times every request by matched route, method and status class, counts requests in
/// flight, logs slow requests, tracks the request's queries (N+1 detection) and adds a
/// `Server-Timing` header. Made by [`Monitor::layer`].
///
/// Add it with axum's `Router::layer`, which wraps each route after routing, so the
/// matched route template (`/reflections/{id}`, not `/reflections/42`) is known. Time is
/// measured to the response head; a streamed body's transfer is not included.
#[derive(Debug, Clone)]
pub struct MonitorLayer {
    pub(crate) monitor: Monitor,
    pub(crate) skip: &'static [&'static str],
}

impl MonitorLayer {
    /// Leaves the requests of these route templates untimed (the monitoring endpoints,
    /// a health check polled every second).
    pub fn skip_routes(mut self, routes: &'static [&'static str]) -> Self {
        self.skip = routes;
        self
    }
}

impl<S> Layer<S> for MonitorLayer {
    type Service = MonitorService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MonitorService {
            inner,
            monitor: self.monitor.clone(),
            skip: self.skip,
            route: Arc::default(),
        }
    }
}

/// The service of [`MonitorLayer`].
#[derive(Debug, Clone)]
pub struct MonitorService<S> {
    inner: S,
    monitor: Monitor,
    skip: &'static [&'static str],
    /// The series of the route this service wraps, found once: axum's `Router::layer`
    /// makes one service per route, so every request here has the same template, and
    /// comparing it is cheaper than hashing it into the monitor's map on every request.
    route: Arc<OnceLock<Arc<RouteSeries>>>,
}

struct InFlight(Arc<Inner>);

impl InFlight {
    fn new(inner: Arc<Inner>) -> Self {
        inner
            .requests
            .in_flight
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self(inner)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        // Also runs when the client goes away and the future is dropped unfinished.
        self.0
            .requests
            .in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

struct State {
    start: Instant,
    route: Arc<RouteSeries>,
    method: Method,
    uri: Uri,
    scope: Arc<RequestScope>,
    in_flight: InFlight,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for MonitorService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let start = Instant::now();
        let inner = &self.monitor.inner;
        let matched = req
            .extensions()
            .get::<MatchedPath>()
            .map_or(UNMATCHED, MatchedPath::as_str);
        if self.skip.contains(&matched) {
            let scope = Arc::new(RequestScope::new(inner.clone(), Arc::from(matched)));
            return ResponseFuture {
                inner: with_scope(scope, self.inner.call(req)),
                state: None,
            };
        }
        let route = match self.route.get() {
            Some(route) if *route.name == *matched => route.clone(),
            _ => {
                let route = inner.requests.route(matched);
                // A template folded into `(other)` is looked up every time, so the
                // folded requests keep being counted.
                if *route.name == *matched {
                    let _ = self.route.set(route.clone());
                }
                route
            }
        };
        let scope = Arc::new(RequestScope::new(inner.clone(), route.name.clone()));
        let state = State {
            start,
            method: req.method().clone(),
            uri: req.uri().clone(),
            route,
            scope: scope.clone(),
            in_flight: InFlight::new(inner.clone()),
        };
        ResponseFuture {
            inner: with_scope(scope, self.inner.call(req)),
            state: Some(state),
        }
    }
}

pin_project! {
    /// The response future of [`MonitorService`].
    pub struct ResponseFuture<F> {
        #[pin]
        inner: TaskLocalFuture<Arc<RequestScope>, F>,
        state: Option<State>,
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let output = ready!(this.inner.poll(cx));
        if let Some(state) = this.state.take() {
            match output {
                Ok(mut res) => {
                    let status = res.status().as_u16();
                    if let Some(value) = state.finish(status) {
                        res.headers_mut().append(SERVER_TIMING, value);
                    }
                    return Poll::Ready(Ok(res));
                }
                Err(e) => {
                    state.finish(500);
                    return Poll::Ready(Err(e));
                }
            }
        }
        Poll::Ready(output)
    }
}

impl State {
    /// Records the request; returns the `Server-Timing` value when enabled.
    fn finish(self, status: u16) -> Option<HeaderValue> {
        let elapsed = self.start.elapsed();
        let monitor = &self.in_flight.0;
        monitor
            .requests
            .record(&self.route, &self.method, status, elapsed);
        let data = self.scope.take();
        if data.queries > 0 {
            monitor
                .queries
                .finish_request(&self.route.name, method_label(&self.method), &data);
        }
        if elapsed >= monitor.requests.slow_threshold {
            tracing::warn!(
                target: "perf_rt::monitor",
                route = %self.route.name,
                method = method_label(&self.method),
                path = self.uri.path(),
                status,
                duration_ms = elapsed.as_secs_f64() * 1000.0,
                queries = data.queries,
                "slow request"
            );
            monitor.requests.record_slow(slow_request(
                &self.route.name,
                self.uri.path(),
                &self.method,
                status,
                elapsed,
                data.queries,
            ));
        }
        if !monitor.config.server_timing {
            return None;
        }
        let mut value = String::with_capacity(64 + self.route.timing_desc.len());
        value.push_str("app;dur=");
        push_millis(&mut value, elapsed);
        if data.queries > 0 {
            value.push_str(", db;dur=");
            push_millis(&mut value, data.query_time);
            let _ = write!(
                value,
                ";desc=\"{} quer{}\"",
                data.queries,
                if data.queries == 1 { "y" } else { "ies" }
            );
        }
        value.push_str(&self.route.timing_desc);
        HeaderValue::try_from(value).ok()
    }
}

/// Appends `d` in milliseconds with three decimals (`1.234`), by integer arithmetic: float
/// formatting was a visible share of a small request's cost.
fn push_millis(out: &mut String, d: std::time::Duration) {
    // u64 microseconds last 584,000 years; u128 formatting is slower.
    let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    push_u64(out, micros / 1000);
    let frac = micros % 1000;
    out.push('.');
    out.push(char::from(b'0' + (frac / 100) as u8));
    out.push(char::from(b'0' + (frac / 10 % 10) as u8));
    out.push(char::from(b'0' + (frac % 10) as u8));
}

/// Appends `n` in decimal without the formatting machinery (a measured 400 instructions
/// per request through `write!`).
fn push_u64(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    out.push_str(std::str::from_utf8(&digits[i..]).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::push_millis;

    #[test]
    fn millis_have_three_decimals_truncated_to_the_microsecond() {
        let cases = [
            (Duration::ZERO, "0.000"),
            (Duration::from_nanos(999), "0.000"),
            (Duration::from_micros(7), "0.007"),
            (Duration::from_micros(1_234), "1.234"),
            (Duration::from_nanos(12_345_678), "12.345"),
            (Duration::from_secs(3_600), "3600000.000"),
            (Duration::from_micros(10_000_001), "10000.001"),
            (Duration::MAX, "18446744073709551.615"),
        ];
        for (d, expected) in cases {
            let mut s = String::new();
            push_millis(&mut s, d);
            assert_eq!(s, expected, "{d:?}");
        }
    }
}
