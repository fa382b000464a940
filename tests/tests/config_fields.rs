//! Every `Config` field set in code takes effect, each checked by what it changes over a
//! real socket (the environment's path to the same fields is checked in `config.rs`'s unit
//! tests and `monitor.rs`).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use perf_rt::suite::{Config, PerfSuite, init_performance_suite};

struct App {
    addr: SocketAddr,
    suite: PerfSuite,
    _runtime: tokio::runtime::Runtime,
}

fn start(config: Config) -> App {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // A page long enough to be compressed by default (256 bytes), short of 2,000.
    let router = Router::new().route(
        "/",
        get(|| async { axum::response::Html("<p>reflection</p>".repeat(60)) }),
    );
    let (router, suite) = runtime
        .block_on(init_performance_suite(router, config))
        .unwrap();
    let addr = perf_tests::serve(&runtime, router);
    App {
        addr,
        suite,
        _runtime: runtime,
    }
}

impl App {
    fn get(&self, path: &str) -> reqwest::blocking::Response {
        reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap()
            .get(format!("http://{}{path}", self.addr))
            .header("accept-encoding", "gzip")
            .send()
            .unwrap()
    }
}

/// Polls `cond` for up to 10 s.
fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

/// Nothing global unless the test asks for it.
fn config() -> Config {
    let mut c = Config::default();
    c.query_cache = false;
    c.memory_profiling = false;
    c
}

#[test]
fn memory_max_snapshots_reaches_the_global_profiler() {
    let mut c = config();
    c.memory_profiling = true;
    c.memory_max_snapshots = 3;
    let app = start(c);
    let profiler = app.suite.profiler().unwrap();
    assert_eq!(profiler.max_snapshots(), 3);
    for i in 0..5 {
        profiler.take_snapshot(format!("s{i}"));
    }
    let labels: Vec<String> = profiler
        .snapshots()
        .iter()
        .map(|s| s.label.clone())
        .collect();
    assert_eq!(labels, ["s2", "s3", "s4"]);
}

#[test]
fn memory_snapshot_interval_fills_the_leak_report_by_itself() {
    let mut c = config();
    c.memory_profiling = true;
    c.memory_snapshot_interval = Some(Duration::from_secs(1));
    let app = start(c);
    let profiler = app.suite.profiler().unwrap();
    assert!(
        eventually(|| profiler
            .snapshots()
            .iter()
            .filter(|s| s.label.starts_with("periodic-"))
            .count()
            >= 2),
        "{:?}",
        profiler
            .snapshots()
            .iter()
            .map(|s| s.label.clone())
            .collect::<Vec<_>>()
    );
}

#[test]
fn the_query_cache_fields_decide_whether_and_how_it_is_built() {
    let mut c = config();
    c.query_cache = true;
    c.query_cache_default_expire = Duration::from_secs(7);
    let app = start(c);
    let cache = app.suite.cache().expect("a query cache");
    assert_eq!(cache.default_expire(), Duration::from_secs(7));
    assert!(start(config()).suite.cache().is_none());
}

#[test]
fn compression_fields_decide_what_is_compressed() {
    let encoding = |c: Config| {
        start(c)
            .get("/")
            .headers()
            .get("content-encoding")
            .map(|v| v.to_str().unwrap().to_owned())
    };
    assert_eq!(encoding(config()).as_deref(), Some("gzip"));
    let mut c = config();
    c.compression_min_bytes = 2000;
    assert_eq!(encoding(c), None, "below compression_min_bytes");
    let mut c = config();
    c.response_compression = false;
    assert_eq!(encoding(c), None, "response_compression off");
}

#[test]
fn monitor_fields_set_in_code_are_the_monitors() {
    let mut c = config();
    c.monitor.server_timing = false;
    c.monitor.timeline_points = 2;
    c.monitor.interval = Duration::from_millis(10);
    let app = start(c);
    assert!(app.get("/").headers().get("server-timing").is_none());
    let monitor = app.suite.monitor().unwrap();
    // The sampler runs every 10 ms and keeps two points: the newer one becomes the older.
    let timeline = || {
        let t = monitor.timeline();
        assert!(t.len() <= 2, "{t:?}");
        t
    };
    assert!(
        eventually(|| timeline().len() == 2),
        "the sampler never ran"
    );
    let newer = timeline()[1].at_ms;
    assert!(
        eventually(|| timeline()[0].at_ms >= newer),
        "no point was replaced"
    );
    assert!(
        start(config())
            .get("/")
            .headers()
            .get("server-timing")
            .is_some(),
        "on by default"
    );
}

#[test]
fn switches_set_in_code_turn_their_parts_off() {
    let mut c = config();
    c.frontend_optimization = false;
    let app = start(c);
    assert_eq!(app.get("/_perf/vitals.js").status(), 404);
    assert_eq!(app.suite.vitals_script_tag(), "");
    assert_eq!(app.get("/metrics").status(), 200);
    let on = start(config());
    assert_eq!(on.get("/_perf/vitals.js").status(), 200);

    let mut c = config();
    c.monitoring = false;
    let app = start(c);
    assert!(app.suite.monitor().is_none());
    assert_eq!(app.get("/metrics").status(), 404);

    let mut c = config().assets(&perf_tests::ASSETS);
    let css = perf_tests::ASSETS.get("css/app.css").unwrap().url;
    assert_eq!(start(c.clone()).get(css).status(), 200);
    c.asset_optimization = false;
    assert_eq!(start(c).get(css).status(), 404);

    let app = start(config());
    assert!(app.suite.profiler().is_none(), "memory_profiling off");
}
