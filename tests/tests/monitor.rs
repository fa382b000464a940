//! The performance suite over a real socket: the monitor layer (histograms, slow log,
//! Server-Timing), N+1 detection on a real SQLite file, Prometheus text checked by
//! `promtool`, the endpoints' access rule, browser-metric beacons, and compression that
//! leaves embedded assets and event streams alone.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use perf_rt::assets::Encoding;
use perf_rt::suite::{Config, PerfSuite, init_performance_suite};
use reqwest::StatusCode;
use serde_json::Value;

// ---------------------------------------------------------------------------------------
// A tracing subscriber that keeps every event, to read the slow-request log.

static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

struct Fields(String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, "{}={:?} ", field.name(), value);
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        LOG.lock().unwrap().push(fields.0);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

fn capture_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| tracing::subscriber::set_global_default(Capture).unwrap());
}

// ---------------------------------------------------------------------------------------

struct App {
    addr: SocketAddr,
    suite: PerfSuite,
    _runtime: tokio::runtime::Runtime,
}

/// A config with nothing global: no query cache, no memory timeline.
fn config() -> Config {
    let mut c = Config::default();
    c.query_cache = false;
    c.memory_profiling = false;
    c.monitor.slow_request = Duration::from_millis(100);
    c.monitor.interval = Duration::from_millis(50);
    c
}

fn start(router: Router, config: Config) -> App {
    start_on("127.0.0.1:0", router, config, true)
}

fn start_on(bind: &str, router: Router, config: Config, connect_info: bool) -> App {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (router, suite) = runtime
        .block_on(init_performance_suite(router, config))
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(bind))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    if connect_info {
        runtime.spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
        });
    } else {
        runtime.spawn(async move { axum::serve(listener, router).await });
    }
    App {
        addr,
        suite,
        _runtime: runtime,
    }
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

impl App {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn get(&self, path: &str) -> reqwest::blocking::Response {
        client().get(self.url(path)).send().unwrap()
    }

    fn json(&self, path: &str) -> Value {
        let res = self.get(path);
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        serde_json::from_slice(&res.bytes().unwrap()).unwrap()
    }

    fn beacon(&self, body: impl Into<reqwest::blocking::Body>) -> StatusCode {
        client()
            .post(self.url("/api/performance/client"))
            .header("content-type", "text/plain;charset=UTF-8")
            .body(body)
            .send()
            .unwrap()
            .status()
    }
}

fn route<'a>(report: &'a Value, route: &str, status: &str) -> &'a Value {
    report["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["route"] == route && r["status"] == status)
        .unwrap_or_else(|| panic!("no {route} {status} in {report:#}"))
}

fn timed_routes() -> Router {
    Router::new()
        .route(
            "/slow/{id}",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(150)).await;
                "slow"
            }),
        )
        .route("/fast", get(|| async { "fast" }))
        .route(
            "/broken",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "broken") }),
        )
}

#[test]
fn histograms_and_slow_log_respond_to_a_slow_route() {
    capture_logs();
    let app = start(timed_routes(), config());
    for id in 0..3 {
        let res = app.get(&format!("/slow/{id}"));
        assert_eq!(res.status(), StatusCode::OK);
        // The Server-Timing header carries the time and the matched route.
        let timing = res.headers()["server-timing"].to_str().unwrap().to_owned();
        let dur: f64 = timing
            .split("app;dur=")
            .nth(1)
            .and_then(|r| r.split(',').next())
            .unwrap()
            .parse()
            .unwrap();
        assert!(dur >= 150.0, "{timing}");
        assert!(timing.contains("route;desc=\"/slow/{id}\""), "{timing}");
    }
    for _ in 0..10 {
        assert_eq!(app.get("/fast").status(), StatusCode::OK);
    }
    assert_eq!(
        app.get("/broken").status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(app.get("/nowhere").status(), StatusCode::NOT_FOUND);

    let report = app.json("/api/performance/requests");
    // One series for the template, not one per id.
    let slow = route(&report, "/slow/{id}", "2xx");
    assert_eq!(slow["count"], 3);
    assert!(slow["p50_ms"].as_f64().unwrap() >= 150.0 * 0.99, "{slow}");
    assert!(slow["max_ms"].as_f64().unwrap() < 2000.0, "{slow}");
    let fast = route(&report, "/fast", "2xx");
    assert_eq!(fast["count"], 10);
    assert!(fast["p99_ms"].as_f64().unwrap() < 100.0, "{fast}");
    assert_eq!(route(&report, "/broken", "5xx")["count"], 1);
    assert_eq!(route(&report, "(unmatched)", "4xx")["count"], 1);
    assert_eq!(report["errors"], 1);
    assert_eq!(report["slow_total"], 3);
    let listed: Vec<&str> = report["slow"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["path"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["/slow/0", "/slow/1", "/slow/2"]);
    // The monitoring endpoints are not timed themselves.
    assert!(
        !report["routes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["route"].as_str().unwrap().starts_with("/api/"))
    );

    let log = LOG.lock().unwrap().clone();
    for id in 0..3 {
        assert!(
            log.iter().any(|l| l.contains("slow request")
                && l.contains(&format!("path=\"/slow/{id}\""))
                && l.contains("route=/slow/{id}")),
            "no slow-request log line for /slow/{id} in {log:#?}"
        );
    }
    assert!(
        !log.iter().any(|l| l.contains("path=\"/fast\"")),
        "{log:#?}"
    );

    // The sampler thread fills the timeline with the interval's requests and resources.
    std::thread::sleep(Duration::from_millis(200));
    let overview = app.json("/api/performance/metrics");
    let timeline = overview["timeline"].as_array().unwrap();
    assert!(timeline.len() >= 2, "{overview:#}");
    let requests: u64 = timeline
        .iter()
        .map(|p| p["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(requests, 15, "{overview:#}");
    assert!(timeline.last().unwrap()["rss_bytes"].as_u64().unwrap() > 0);
    assert!(overview["resources"]["open_fds"].as_u64().unwrap() > 3);
}

#[derive(Clone)]
struct Db(Arc<Mutex<rusqlite::Connection>>);

fn items_db(dir: &tempfile::TempDir) -> Db {
    let conn = rusqlite::Connection::open(dir.path().join("items.db")).unwrap();
    conn.execute_batch(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
         INSERT INTO items (name) VALUES ('a'),('b'),('c'),('d'),('e'),('f'),('g'),('h');",
    )
    .unwrap();
    perf_rt::monitor::time_queries(&conn);
    Db(Arc::new(Mutex::new(conn)))
}

/// Lists the items, then fetches each one by id: the N+1 pattern.
async fn n_plus_one(State(db): State<Db>) -> String {
    perf_rt::monitor::spawn_blocking(move || {
        let conn = db.0.lock().unwrap();
        let ids: Vec<i64> = conn
            .prepare("SELECT id FROM items ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let mut names = String::new();
        for id in ids {
            let name: String = conn
                .query_row("SELECT name FROM items WHERE id = ?1", [id], |r| r.get(0))
                .unwrap();
            names.push_str(&name);
        }
        names
    })
    .await
    .unwrap()
}

/// The same data in one query.
async fn joined(State(db): State<Db>) -> String {
    perf_rt::monitor::spawn_blocking(move || {
        let conn = db.0.lock().unwrap();
        let names: Vec<String> = conn
            .prepare("SELECT name FROM items ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        names.concat()
    })
    .await
    .unwrap()
}

#[test]
fn a_query_repeated_within_one_request_is_flagged_as_n_plus_one() {
    let dir = tempfile::tempdir().unwrap();
    let db = items_db(&dir);
    let router = Router::new()
        .route("/items/n1", get(n_plus_one))
        .route("/items/joined", get(joined))
        .with_state(db);
    let app = start(router, config());

    let res = app.get("/items/joined");
    let timing = res.headers()["server-timing"].to_str().unwrap().to_owned();
    assert_eq!(res.text().unwrap(), "abcdefgh");
    assert!(timing.contains("desc=\"1 query\""), "{timing}");
    let report = app.json("/api/performance/queries");
    assert_eq!(report["n_plus_one_total"], 0, "{report:#}");

    let res = app.get("/items/n1");
    let timing = res.headers()["server-timing"].to_str().unwrap().to_owned();
    assert_eq!(res.text().unwrap(), "abcdefgh");
    assert!(timing.contains("desc=\"9 queries\""), "{timing}");

    let report = app.json("/api/performance/queries");
    assert_eq!(report["n_plus_one_total"], 1, "{report:#}");
    let flagged = &report["n_plus_one"][0];
    assert_eq!(flagged["route"], "/items/n1");
    assert_eq!(flagged["method"], "GET");
    assert_eq!(flagged["count"], 8);
    assert_eq!(flagged["sql"], "select name from items where id = ?");
    // Statistics per fingerprint: eight executions of one shape, literals stripped.
    let by_id = report["fingerprints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["sql"] == "select name from items where id = ?")
        .unwrap();
    assert_eq!(by_id["count"], 8);
    assert_eq!(by_id["fingerprint"].as_str().unwrap().len(), 16);
}

fn promtool_check(text: &str) {
    let promtool = std::env::var("PERF_TEST_PROMTOOL").unwrap_or_else(|_| "promtool".into());
    let mut child = std::process::Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {promtool} (install Debian's prometheus package, or set PERF_TEST_PROMTOOL): {e}"
            )
        });
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n--- text ---\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn prometheus_text_passes_promtool() {
    let dir = tempfile::tempdir().unwrap();
    let db = items_db(&dir);
    let router = timed_routes().merge(
        Router::new()
            .route("/items/n1", get(n_plus_one))
            .with_state(db),
    );
    let app = start(router, config());
    app.get("/fast");
    app.get("/slow/1");
    app.get("/items/n1");
    app.get("/nowhere");
    let monitor = app.suite.monitor().unwrap();
    monitor
        .track_metric("signups", 2.0, &[("plan", "pro \"annual\"\nline")])
        .unwrap();
    monitor.track_metric("queue_depth", 7.0, &[]).unwrap();
    assert!(monitor.track_metric("bad name", 1.0, &[]).is_err());
    let beacon = r#"{"route":"/fast","metrics":{"LCP":1200.5,"CLS":0.02,"TTFB":15}}"#;
    assert_eq!(app.beacon(beacon), StatusCode::NO_CONTENT);
    monitor.sample_now();

    let res = app.get("/metrics");
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = res.text().unwrap();
    promtool_check(&text);
    for expected in [
        "# TYPE perf_sendfile_bytes_total counter\nperf_sendfile_bytes_total ",
        "# TYPE perf_sendfile_calls_total counter\nperf_sendfile_calls_total ",
        "perf_http_requests_total{route=\"/slow/{id}\",method=\"GET\",status=\"2xx\"} 1",
        "perf_http_request_duration_seconds_count{route=\"/fast\",method=\"GET\",status=\"2xx\"} 1",
        "perf_db_n_plus_one_total 1",
        "perf_app_metric_sum{name=\"signups\",plan=\"pro \\\"annual\\\"\\nline\"} 2",
        "perf_app_metrics_dropped_total 1",
        "perf_browser_beacons_total{outcome=\"accepted\"} 1",
        "perf_browser_metric{route=\"/fast\",metric=\"LCP\",percentile=\"75\"}",
        "perf_browser_metric_samples_total{route=\"/fast\",metric=\"LCP\"} 1",
        "perf_process_resident_memory_bytes",
        "perf_process_open_fds",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
}

const PROTECTED: &[&str] = &[
    "/api/performance/metrics",
    "/api/performance/requests",
    "/api/performance/queries",
    "/api/performance/memory",
    "/api/memory/leaks",
    "/metrics",
    "/perf",
];

#[test]
fn endpoints_refuse_requests_without_the_token() {
    let token = "s3cret-token-0123456789";
    let app = start(timed_routes(), config().monitor_token(token));
    for path in PROTECTED {
        let res = app.get(path);
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert!(res.headers().contains_key("www-authenticate"), "{path}");
        let res = client()
            .get(app.url(path))
            .bearer_auth("s3cret-token-0123456788")
            .send()
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::UNAUTHORIZED,
            "{path} with a wrong token"
        );
        let res = client()
            .get(app.url(path))
            .bearer_auth(token)
            .send()
            .unwrap();
        // The memory reports are off in this config: 404 says so, after the check.
        let expected = if path.contains("memory") {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::OK
        };
        assert_eq!(res.status(), expected, "{path} with the token");
    }
    // The dashboard keeps the token in a cookie.
    let res = client()
        .get(app.url("/perf"))
        .header("cookie", format!("theme=dark; perf_token={token}"))
        .send()
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().unwrap().contains("<html"));
    // The beacon endpoint and the script stay public.
    assert_eq!(app.get("/_perf/vitals.js").status(), StatusCode::OK);
}

#[test]
fn without_a_token_only_direct_loopback_clients_get_in() {
    // Loopback, direct: allowed.
    let app = start(timed_routes(), config());
    assert_eq!(app.get("/api/performance/metrics").status(), StatusCode::OK);
    // Loopback but through a proxy: every client of the proxy would look local.
    let res = client()
        .get(app.url("/api/performance/metrics"))
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // Another host: reach the server through this machine's own non-loopback address.
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    probe.connect("192.0.2.1:9").unwrap(); // no packet is sent
    let ip = probe.local_addr().unwrap().ip();
    assert!(
        !ip.is_loopback() && !ip.is_unspecified(),
        "this test needs a non-loopback address on the machine, found {ip}"
    );
    let remote = start_on(&format!("{ip}:0"), timed_routes(), config(), true);
    assert_eq!(remote.addr.ip(), ip);
    for path in PROTECTED {
        assert_eq!(
            remote.get(path).status(),
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
    }
    assert_eq!(remote.get("/fast").status(), StatusCode::OK);

    // No connection info: the client is unknown, so refused.
    let blind = start_on("127.0.0.1:0", timed_routes(), config(), false);
    let res = blind.get("/api/performance/metrics");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(res.text().unwrap().contains("connect_info"));
}

/// This machine's own non-loopback address, through which the tests act as another host.
fn own_address() -> std::net::IpAddr {
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    probe.connect("192.0.2.1:9").unwrap(); // no packet is sent
    let ip = probe.local_addr().unwrap().ip();
    assert!(
        !ip.is_loopback() && !ip.is_unspecified(),
        "this test needs a non-loopback address on the machine, found {ip}"
    );
    ip
}

#[test]
fn a_token_set_in_code_is_held_to_the_rule_of_the_environment() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // An empty token would let `Cookie: perf_token=` in from anywhere; a short one can be
    // guessed. Both stop the start, as they do in PERF_MONITOR_TOKEN.
    for bad in ["", "short", "has a space in it!"] {
        let err = runtime
            .block_on(init_performance_suite(
                timed_routes(),
                config().monitor_token(bad),
            ))
            .map(|_| ())
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("PERF_MONITOR_TOKEN"), "{bad:?}: {text}");
        if !bad.is_empty() {
            assert!(!text.contains(bad), "the token leaked: {text}");
        }
    }
    let mut direct = config();
    direct.monitor_token = Some(String::new());
    assert!(
        runtime
            .block_on(init_performance_suite(timed_routes(), direct))
            .is_err(),
        "the public field is checked too"
    );

    // A good token set in code: an empty cookie or bearer is no token, from any host.
    let token = "code-token-0123456789";
    let app = start_on(
        &format!("{}:0", own_address()),
        timed_routes(),
        config().monitor_token(token),
        true,
    );
    for (header, value) in [
        ("cookie", "perf_token="),
        ("cookie", "perf_token=; theme=dark"),
        ("authorization", "Bearer "),
        ("authorization", "Bearer"),
    ] {
        let res = client()
            .get(app.url("/api/performance/metrics"))
            .header(header, value)
            .send()
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{header}: {value}");
    }
    let res = client()
        .get(app.url("/api/performance/metrics"))
        .header("cookie", format!("perf_token={token}"))
        .send()
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[test]
fn without_a_token_a_listener_other_hosts_reach_is_refused_unless_asked() {
    // Bound to this machine's own address: other hosts reach it.
    let exposed = start_on(
        &format!("{}:0", own_address()),
        timed_routes(),
        config(),
        true,
    );
    let err = exposed.suite.check_listener(exposed.addr).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&exposed.addr.to_string())
            && text.contains("PERF_MONITOR_TOKEN")
            && text.contains("PERF_MONITOR_ALLOW_NO_TOKEN"),
        "{text}"
    );
    // Asked for explicitly: allowed, and still loopback clients only.
    let asked = start_on(
        &format!("{}:0", own_address()),
        timed_routes(),
        config().monitor_allow_no_token(true),
        true,
    );
    asked.suite.check_listener(asked.addr).unwrap();
    assert_eq!(
        asked.get("/api/performance/metrics").status(),
        StatusCode::UNAUTHORIZED
    );
    // A loopback listener is the development set-up: allowed, and it answers.
    let local = start(timed_routes(), config());
    local.suite.check_listener(local.addr).unwrap();
    assert_eq!(
        local.get("/api/performance/metrics").status(),
        StatusCode::OK
    );
}

fn client_figures(app: &App) -> (u64, u64, u64, u64) {
    let report = app.suite.monitor().unwrap().client_report();
    let json = serde_json::to_value(&report).unwrap();
    let lcp = json["routes"]["/fast"]["LCP"]["count"]
        .as_u64()
        .unwrap_or(0);
    (
        json["accepted"].as_u64().unwrap(),
        json["rejected"].as_u64().unwrap(),
        json["rate_limited"].as_u64().unwrap(),
        lcp,
    )
}

#[test]
fn bad_and_flooding_beacons_get_4xx_and_change_no_figure() {
    let mut c = config();
    // Every beacon that passes the size check takes a token, valid or not: 20 to start
    // with, one more every ten seconds.
    c.monitor.client.burst = 20;
    c.monitor.client.per_minute = 6;
    let app = start(timed_routes(), c);
    app.get("/fast");
    let good = r#"{"route":"/fast","metrics":{"LCP":900,"FCP":300.5,"TTFB":12.25}}"#;
    assert_eq!(app.beacon(good), StatusCode::NO_CONTENT);
    assert_eq!(client_figures(&app), (1, 0, 0, 1));

    let bad: &[(&str, StatusCode)] = &[
        ("not json", StatusCode::BAD_REQUEST),
        (r#"{"route":"/fast"}"#, StatusCode::BAD_REQUEST),
        (
            r#"{"route":"/fast","metrics":{"LCP":"fast"}}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            r#"{"route":"/fast","metrics":{"XSS":1}}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            r#"{"route":"/fast","metrics":{"LCP":-5}}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            r#"{"route":"/fast","metrics":{"LCP":1e12}}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            r#"{"route":"/fast","metrics":{"LCP":100,"CLS":99}}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            r#"{"route":"fast","metrics":{"LCP":100}}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (body, status) in bad {
        let got = app.beacon(*body);
        assert!(got.is_client_error(), "{body} got {got}");
        assert_eq!(got, *status, "{body}");
    }
    // Oversized, with and without a declared length.
    let huge = format!(
        r#"{{"route":"/fast","metrics":{{"LCP":1}},"pad":"{}"}}"#,
        "x".repeat(64 * 1024)
    );
    assert_eq!(app.beacon(huge.clone()), StatusCode::PAYLOAD_TOO_LARGE);
    // Chunked, so no length is declared: raw TCP, since the server answers 413 before
    // reading the rest and a streaming client may see the connection close mid-body.
    let mut tcp = std::net::TcpStream::connect(app.addr).unwrap();
    let mut request = format!(
        "POST /api/performance/client HTTP/1.1\r\nHost: {}\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n",
        app.addr
    );
    for chunk in huge.as_bytes().chunks(4000) {
        request.push_str(&format!(
            "{:x}\r\n{}\r\n",
            chunk.len(),
            std::str::from_utf8(chunk).unwrap()
        ));
    }
    request.push_str("0\r\n\r\n");
    std::io::Write::write_all(&mut tcp, request.as_bytes()).unwrap();
    let mut head = [0u8; 12];
    tcp.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 413");
    let (accepted, _, rate_limited, lcp) = client_figures(&app);
    assert_eq!(
        (accepted, rate_limited, lcp),
        (1, 0, 1),
        "a bad beacon changed a figure"
    );

    // A flood: 1 good and 8 bad beacons took 9 of the 20 tokens; about 11 remain.
    let statuses: Vec<StatusCode> = (0..30).map(|_| app.beacon(good)).collect();
    let ok = statuses
        .iter()
        .filter(|s| **s == StatusCode::NO_CONTENT)
        .count() as u64;
    let limited = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count() as u64;
    assert_eq!(ok + limited, 30, "{statuses:?}");
    assert!((10..=13).contains(&ok), "{statuses:?}");
    let (accepted, _, rate_limited, lcp) = client_figures(&app);
    assert_eq!(accepted, 1 + ok);
    assert_eq!(lcp, 1 + ok, "every accepted beacon, and only those, counts");
    assert_eq!(rate_limited, limited);
    assert!(
        app.get("/fast").status().is_success(),
        "the site still answers"
    );
}

/// An event stream: the first event, then the second only once the test has read the
/// first. Buffering anywhere would hold the first back, and the read would time out.
async fn events(State(gate): State<Arc<tokio::sync::Notify>>) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, Infallible>>(4);
    tokio::spawn(async move {
        let _ = tx.send(Ok(Bytes::from("data: first\n\n"))).await;
        gate.notified().await;
        let _ = tx.send(Ok(Bytes::from("data: second\n\n"))).await;
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap()
}

fn page() -> String {
    let mut html = String::from("<!doctype html><html><body><ul>");
    for i in 0..400 {
        let _ = write!(html, "<li class=\"item\">Reflection number {i}</li>");
    }
    html.push_str("</ul></body></html>");
    html
}

#[test]
fn compression_covers_dynamic_pages_but_not_streams_or_embedded_assets() {
    let gate = Arc::new(tokio::sync::Notify::new());
    let router = Router::new()
        .route("/events", get(events))
        .route("/page", get(|| async { axum::response::Html(page()) }))
        .route("/echo", post(|body: Bytes| async move { body }))
        .with_state(gate.clone());
    let app = start(router, config().assets(&perf_tests::ASSETS));

    // A dynamic page is compressed, and decodes to the page.
    let res = client()
        .get(app.url("/page"))
        .header("accept-encoding", "br")
        .send()
        .unwrap();
    assert_eq!(res.headers()["content-encoding"], "br");
    let compressed = res.bytes().unwrap();
    let mut html = String::new();
    brotli::Decompressor::new(&compressed[..], 4096)
        .read_to_string(&mut html)
        .unwrap();
    assert_eq!(html, page());
    assert!(compressed.len() * 5 < html.len());

    // The stream arrives event by event, uncompressed.
    let started = Instant::now();
    let mut res = client()
        .get(app.url("/events"))
        .header("accept-encoding", "br, gzip, zstd")
        .send()
        .unwrap();
    assert!(!res.headers().contains_key("content-encoding"));
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while !String::from_utf8_lossy(&seen).contains("data: first\n\n") {
        let n = res
            .read(&mut buf)
            .expect("the first event arrives unbuffered");
        assert!(n > 0, "stream ended early");
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    gate.notify_one();
    let mut rest = String::new();
    res.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "data: second\n\n");

    // Every embedded asset comes out exactly as perf-build stored it: the compression
    // layer neither recompresses an identity answer nor touches a precompressed one.
    for asset in perf_tests::ASSETS.iter() {
        for accept in ["br, gzip, zstd", "gzip", "identity"] {
            let res = client()
                .get(app.url(asset.url))
                .header("accept-encoding", accept)
                .send()
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK, "{}", asset.url);
            let encoding = match res
                .headers()
                .get("content-encoding")
                .map(|v| v.to_str().unwrap())
            {
                None => Encoding::Identity,
                Some("br") => Encoding::Brotli,
                Some("gzip") => Encoding::Gzip,
                Some("zstd") => Encoding::Zstd,
                Some(other) => panic!("{other}"),
            };
            let body = res.bytes().unwrap();
            assert_eq!(
                &body[..],
                asset.body(encoding).unwrap(),
                "{} with {accept} came out changed",
                asset.url
            );
        }
    }
    // The assets are timed like any route.
    let report = app.json("/api/performance/requests");
    assert!(
        report["routes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["route"].as_str().unwrap().ends_with("{*path}")),
        "{report:#}"
    );
    // A 20 KiB echo of the client's bytes is compressed too (POST bodies are dynamic).
    let res = client()
        .post(app.url("/echo"))
        .header("accept-encoding", "gzip")
        .header("content-type", "text/plain")
        .body(page())
        .send()
        .unwrap();
    assert_eq!(res.headers()["content-encoding"], "gzip");
}

#[test]
fn profile_performance_and_metrics_reach_the_request_monitor() {
    #[perf_rt::monitor::profile_performance(name = "render_total")]
    fn render(n: u64) -> u64 {
        std::thread::sleep(Duration::from_millis(5));
        n * 2
    }
    #[perf_rt::monitor::profile_performance]
    async fn fetch_total(n: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(5)).await;
        n + 1
    }
    let router = Router::new().route(
        "/work",
        get(|| async {
            let a = render(2);
            let b = fetch_total(a).await;
            perf_rt::monitor::track_metric("work_done", b as f64, &[("kind", "test")]).unwrap();
            b.to_string()
        }),
    );
    let app = start(router, config());
    for _ in 0..3 {
        assert_eq!(app.get("/work").text().unwrap(), "5");
    }
    let overview = app.json("/api/performance/metrics");
    let functions = &overview["functions"];
    assert_eq!(functions["render_total"]["count"], 3, "{overview:#}");
    assert!(functions["render_total"]["p50_ms"].as_f64().unwrap() >= 5.0);
    let async_name = functions
        .as_object()
        .unwrap()
        .keys()
        .find(|k| k.ends_with("::fetch_total"))
        .expect("named after its module path");
    assert_eq!(functions[async_name]["count"], 3);
    let work = &overview["metrics"]["work_done"][0];
    assert_eq!(work["tags"]["kind"], "test");
    assert_eq!(
        (work["count"].as_u64(), work["sum"].as_f64()),
        (Some(3), Some(15.0))
    );
}

#[test]
fn a_bad_setting_is_an_error_naming_it() {
    let err = Config::from_vars(|name| {
        (name == "PERF_THRESHOLD_SLOW_REQUEST_MS").then(|| "soon".to_owned())
    })
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "PERF_THRESHOLD_SLOW_REQUEST_MS=\"soon\" is not valid: expected a whole number of milliseconds"
    );
}

// ---------------------------------------------------------------------------------------
// Hostile traffic: every label a client controls must land in a bounded set of series.

/// Sends one request on a fresh connection over raw TCP (so any method token can be sent)
/// and returns the response's status code.
fn raw_request(addr: SocketAddr, method: &str, path: &str, body: &str) -> u16 {
    use std::io::Write as _;
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    write!(
        tcp,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = Vec::new();
    tcp.read_to_end(&mut response).unwrap();
    let head = String::from_utf8_lossy(&response[..response.len().min(12)]).into_owned();
    head.strip_prefix("HTTP/1.1 ")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{method} {path}: not an HTTP response: {head:?}"))
}

/// A route whose statement text comes from the client: the path segment names the table.
fn flood_routes() -> Router {
    Router::new().route("/", get(|| async { "home" })).route(
        "/q/{table}",
        get(
            |axum::extract::Path(table): axum::extract::Path<String>| async move {
                let sql = format!("SELECT * FROM flood_{table} WHERE id = 1");
                perf_rt::monitor::track_query(&sql, Duration::from_micros(50));
                "queried"
            },
        ),
    )
}

/// What the flood may grow: series of the reports and the size of `/metrics`.
#[derive(Debug, PartialEq)]
struct Footprint {
    request_series: usize,
    fingerprints: usize,
    beacon_routes: usize,
    metrics_lines: usize,
}

fn footprint(app: &App) -> (Footprint, usize) {
    let requests = app.json("/api/performance/requests");
    let queries = app.json("/api/performance/queries");
    let overview = app.json("/api/performance/metrics");
    let text = app.get("/metrics").text().unwrap();
    (
        Footprint {
            request_series: requests["routes"].as_array().unwrap().len(),
            fingerprints: queries["fingerprints"].as_array().unwrap().len(),
            beacon_routes: overview["client"]["routes"].as_object().unwrap().len(),
            metrics_lines: text.lines().count(),
        },
        text.len(),
    )
}

/// One round of hostile requests, each with labels never seen before: made-up methods,
/// random unmatched paths, beacons for routes that do not exist, statements over tables
/// named by the client. Returns how many of each it sent.
fn flood(app: &App, round: u32, each: u32) {
    let mut seed = 0x2545_f491_u64 ^ u64::from(round);
    let mut random = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for i in 0..each {
        let n = round * each + i;
        // hyper reads any token as a method; `/` matches a route but not the method.
        assert_eq!(raw_request(app.addr, &format!("M{n:05}"), "/", ""), 405);
        let path = format!("/nowhere/{:016x}", random());
        assert_eq!(raw_request(app.addr, "GET", &path, ""), 404);
        assert_eq!(
            raw_request(app.addr, &format!("X{n:05}"), &path, ""),
            404,
            "{path}"
        );
        let beacon = format!(
            r#"{{"route":"/bogus/{:x}","metrics":{{"LCP":100}}}}"#,
            random()
        );
        assert_eq!(
            raw_request(app.addr, "POST", "/api/performance/client", &beacon),
            204
        );
        assert_eq!(raw_request(app.addr, "GET", &format!("/q/t{n}"), ""), 200);
    }
}

#[test]
fn a_flood_of_made_up_labels_keeps_every_series_bounded() {
    let mut c = config();
    c.monitor.max_fingerprints = 50;
    c.monitor.client.max_routes = 20;
    // Beacons are rate limited per client; this test is about the figures behind them.
    c.monitor.client.burst = 1_000_000;
    c.monitor.client.per_minute = 1_000_000;
    let app = start(flood_routes(), c);
    const EACH: u32 = 300;

    flood(&app, 0, EACH);
    let (first, first_bytes) = footprint(&app);
    flood(&app, 1, EACH);
    let (second, second_bytes) = footprint(&app);
    // New labels after the bounds are reached add nothing: not one series, not one line.
    assert_eq!(first, second, "the flood grew the monitor");
    assert!(
        second_bytes < first_bytes + first_bytes / 20,
        "/metrics grew from {first_bytes} to {second_bytes} bytes"
    );
    // And the bounds are the documented ones: `/`, `/q/{table}` and the fallback, each
    // with its few methods; 50 statements plus the catch-all; 20 routes plus `(other)`.
    assert!(second.request_series <= 6, "{second:?}");
    assert_eq!(second.fingerprints, 51, "{second:?}");
    assert!(second.beacon_routes <= 21, "{second:?}");
    assert!(second_bytes < 64 * 1024, "{second_bytes} bytes of /metrics");

    // Each made-up label went to its one documented catch-all, and was counted there.
    let sent = u64::from(2 * EACH);
    let requests = app.json("/api/performance/requests");
    let made_up: Vec<(&str, u64)> = requests["routes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == "OTHER")
        .map(|r| (r["route"].as_str().unwrap(), r["count"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        made_up,
        [("(unmatched)", sent), ("/", sent)],
        "{requests:#}"
    );
    // The GET series of the fallback: every random path in one.
    assert_eq!(route(&requests, "(unmatched)", "4xx")["method"], "GET");
    assert_eq!(route(&requests, "(unmatched)", "4xx")["count"], sent);
    assert_eq!(requests["folded"]["methods"], 2 * sent);
    assert_eq!(requests["folded"]["routes"], 0);
    let queries = app.json("/api/performance/queries");
    assert_eq!(queries["folded"], sent - 50, "{queries:#}");
    let other = queries["fingerprints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["fingerprint"] == "other")
        .unwrap();
    assert_eq!(other["count"], sent - 50);
    let client = app.json("/api/performance/metrics")["client"].clone();
    assert_eq!(client["folded"], sent, "{client:#}");
    assert_eq!(client["routes"]["(other)"]["LCP"]["count"], sent);
    let text = app.get("/metrics").text().unwrap();
    promtool_check(&text);
    for expected in [
        format!(
            "perf_monitor_folded_total{{series=\"method\"}} {}",
            2 * sent
        ),
        "perf_monitor_folded_total{series=\"route\"} 0".to_owned(),
        format!(
            "perf_monitor_folded_total{{series=\"query\"}} {}",
            sent - 50
        ),
        format!("perf_monitor_folded_total{{series=\"browser_route\"}} {sent}"),
    ] {
        assert!(text.contains(&expected), "missing {expected:?} in\n{text}");
    }
}

#[test]
fn routes_beyond_the_bound_share_one_series_and_are_counted() {
    let mut c = config();
    c.monitor.max_routes = 2;
    let mut router = Router::new();
    for name in ["a", "b", "c", "d"] {
        router = router.route(&format!("/{name}"), get(|| async { "ok" }));
    }
    let app = start(router, c);
    for path in ["/a", "/b", "/c", "/d", "/c"] {
        assert_eq!(app.get(path).status(), StatusCode::OK);
    }
    let requests = app.json("/api/performance/requests");
    let names: Vec<&str> = requests["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["route"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["(other)", "/a", "/b"], "{requests:#}");
    assert_eq!(route(&requests, "(other)", "2xx")["count"], 3);
    assert_eq!(requests["folded"]["routes"], 3);
}

/// Every read counts once overall and once in each tier it asked, in the overview, in
/// `/metrics` (which promtool accepts) and in the dashboard's data.
#[test]
fn cache_figures_count_each_read_once_overall_and_per_tier() {
    let url =
        std::env::var("PERF_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let namespace = format!(
        "perftest-monitor-tiers-{}-{:?}",
        std::process::id(),
        Instant::now()
    )
    .replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let build = || {
        runtime.block_on(
            perf_rt::cache::QueryCache::builder()
                .redis_url(&url)
                .namespace(&namespace)
                .build(),
        )
    };
    let (writer, reader) = (build().unwrap(), build().unwrap());
    assert!(
        writer.redis_available() && reader.redis_available(),
        "Redis at {url} unreachable (set PERF_TEST_REDIS_URL)"
    );
    let read = |cache: &perf_rt::cache::QueryCache| {
        runtime.block_on(
            cache.get_or_load("k", perf_rt::cache::CacheOptions::new(), || async {
                Ok::<_, Infallible>(1u32)
            }),
        )
    };
    // The writer loads; the reader finds it in Redis, then in memory.
    read(&writer).unwrap();
    read(&reader).unwrap();
    read(&reader).unwrap();
    runtime.block_on(async {
        assert_eq!(reader.get::<u32>("absent").await, None);
    });

    let mut c = config();
    c.query_cache = true;
    let app = start(Router::new(), c.query_cache(reader));
    let cache = &app.json("/api/performance/metrics")["cache"];
    // The reader read three times: Redis answered, then memory, then nobody.
    assert_eq!(cache["hits"], 2, "{cache:#}");
    assert_eq!(cache["misses"], 1, "{cache:#}");
    assert!((cache["hit_ratio"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(cache["memory"]["hits"], 1, "{cache:#}");
    assert_eq!(cache["memory"]["misses"], 2, "{cache:#}");
    assert_eq!(cache["redis"]["hits"], 1, "{cache:#}");
    assert_eq!(cache["redis"]["misses"], 1, "{cache:#}");
    assert_eq!(cache["redis"]["hit_ratio"], 0.5, "{cache:#}");

    let text = app.get("/metrics").text().unwrap();
    promtool_check(&text);
    for expected in [
        "perf_query_cache_hits_total 2\n",
        "perf_query_cache_misses_total 1\n",
        "perf_query_cache_tier_hits_total{tier=\"memory\"} 1\n",
        "perf_query_cache_tier_misses_total{tier=\"memory\"} 2\n",
        "perf_query_cache_tier_hits_total{tier=\"redis\"} 1\n",
        "perf_query_cache_tier_misses_total{tier=\"redis\"} 1\n",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
}
