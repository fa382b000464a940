//! The browser script and the dashboard in a real headless Chromium, driven through the
//! DevTools protocol: real clicks for INP, a real back/forward cache restore, and the
//! dashboard's cards and chart axes as drawn. Chromium is required (`.ci/run` installs
//! Debian's package); `PERF_TEST_CHROMIUM` names another binary.

mod common;

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::Router;
use axum::response::Html;
use axum::routing::get;
use perf_rt::suite::{Config, PerfSuite, init_performance_suite};
use serde_json::{Value, json};

use common::browser::Browser;

// ---------------------------------------------------------------------------------------
// An application with the suite, and pages carrying the browser script.

struct App {
    addr: SocketAddr,
    suite: PerfSuite,
    _runtime: tokio::runtime::Runtime,
}

static VITALS_TAG: OnceLock<String> = OnceLock::new();

/// A page with the script and a button whose handler keeps the main thread busy for
/// 150 ms: an interaction well above INP's 40 ms observation threshold.
async fn slow_button_page() -> Html<String> {
    Html(format!(
        "<!doctype html><html><head><title>page</title>{}</head><body>\
         <h1>A page</h1><button id=b style=\"width:200px;height:80px\">Slow</button>\
         <p id=out></p><a id=away href=/other>away</a>\
         <script>document.getElementById('b').addEventListener('click', () => {{\
           const end = performance.now() + 150; while (performance.now() < end) {{}}\
           document.getElementById('out').textContent += 'clicked ';\
         }});\
         addEventListener('pageshow', e => {{ window.restoredFromCache = e.persisted; }});\
         </script></body></html>",
        VITALS_TAG.get().map_or("", String::as_str)
    ))
}

fn start(config: Config) -> App {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let router = Router::new().route("/", get(slow_button_page)).route(
        "/other",
        get(|| async { Html("<!doctype html><title>other</title><p>Another page</p>") }),
    );
    let (router, suite) = runtime
        .block_on(init_performance_suite(router, config))
        .unwrap();
    let _ = VITALS_TAG.set(suite.vitals_script_tag());
    let addr = perf_tests::serve(&runtime, router);
    App {
        addr,
        suite,
        _runtime: runtime,
    }
}

fn config() -> Config {
    let mut c = Config::default();
    c.query_cache = false;
    c.memory_profiling = false;
    c
}

impl App {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The browser metrics of route `/` once `accepted` beacons have arrived.
    fn client_report(&self, accepted: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let report =
                serde_json::to_value(self.suite.monitor().unwrap().client_report()).unwrap();
            if report["accepted"].as_u64() >= Some(accepted) || Instant::now() > deadline {
                return report;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

// ---------------------------------------------------------------------------------------

#[test]
fn a_real_click_reaches_the_monitor_as_inp_and_a_cache_restore_starts_a_new_view() {
    let app = start(config());
    let mut browser = Browser::launch();
    browser.navigate(&app.url("/"));
    assert_eq!(browser.eval("typeof window.perfVitals"), "object");
    browser.click("#b");
    assert!(
        browser.eval_until("document.getElementById('out').textContent.includes('clicked')"),
        "the click did not reach the page"
    );
    // The pointerdown may be reported first (as first input); the click's own entry, with
    // the handler's 150 ms, follows it after the next paint.
    assert!(
        browser.eval_until("(window.perfVitals.values().INP || 0) >= 150"),
        "no INP of 150 ms or more after a 150 ms click: {}",
        browser.eval("JSON.stringify(window.perfVitals.values())")
    );
    assert_eq!(browser.eval("window.perfVitals.flush()"), true);
    let report = app.client_report(1);
    let first = &report["routes"]["/"];
    assert_eq!(first["INP"]["count"], 1, "{report:#}");
    assert!(first["INP"]["max"].as_f64().unwrap() >= 150.0, "{report:#}");
    assert_eq!(first["TTFB"]["count"], 1, "{report:#}");

    // Away and back: the page comes out of the back/forward cache as a new view, with
    // none of the last view's values.
    browser.navigate(&app.url("/other"));
    browser.events.clear();
    browser.eval("history.back()");
    let shown = browser.wait_event("Page.frameNavigated");
    let not_used: Vec<&Value> = browser
        .events
        .iter()
        .filter(|e| e["method"] == "Page.backForwardCacheNotUsed")
        .collect();
    assert_eq!(
        shown["type"], "BackForwardCacheRestore",
        "not restored from the cache: {not_used:#?}"
    );
    assert!(browser.eval_until("window.restoredFromCache === true"));
    assert!(
        browser.eval_until("'FCP' in window.perfVitals.values()"),
        "no paint timing for the restored view"
    );
    let restored = browser.eval("window.perfVitals.values()");
    assert!(
        restored.get("INP").is_none(),
        "INP of the last view: {restored}"
    );
    assert!(
        restored.get("TTFB").is_none(),
        "nothing was fetched: {restored}"
    );
    assert_eq!(restored["FCP"], restored["LCP"], "{restored}");
    // Its own interaction, its own beacon.
    browser.click("#b");
    assert!(browser.eval_until("(window.perfVitals.values().INP || 0) >= 150"));
    assert_eq!(browser.eval("window.perfVitals.flush()"), true);
    let report = app.client_report(2);
    let both = &report["routes"]["/"];
    assert_eq!(report["accepted"], 2, "{report:#}");
    assert_eq!(both["INP"]["count"], 2, "{report:#}");
    assert_eq!(both["FCP"]["count"], 2, "{report:#}");
    assert_eq!(
        both["TTFB"]["count"], 1,
        "a restore has no TTFB: {report:#}"
    );
}

/// The dashboard as drawn: every chart's axis labels are distinct, at one even step (the
/// requests chart over intervals of 0, 2 and 1 requests once read 0, 1, 1, 2, 2), and the
/// cache cards show the overall and per-tier hit rates.
#[test]
fn the_dashboard_draws_distinct_evenly_stepped_ticks_and_the_cache_tiers() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let cache = runtime
        .block_on(perf_rt::cache::QueryCache::builder().build())
        .unwrap();
    for _ in 0..2 {
        let loaded = runtime.block_on(cache.get_or_load(
            "k",
            perf_rt::cache::CacheOptions::new(),
            || async { Ok::<_, std::convert::Infallible>(1u8) },
        ));
        assert_eq!(loaded, Ok(1));
    }
    let mut c = config();
    c.monitor.interval = Duration::from_secs(3600);
    c.query_cache = true;
    let app = start(c.query_cache(cache));
    let monitor = app.suite.monitor().unwrap();
    let client = reqwest::blocking::Client::new();
    // The suite sampled once at start (no requests); then intervals of 2 and 1.
    for n in [2, 1] {
        for _ in 0..n {
            client.get(app.url("/other")).send().unwrap();
        }
        monitor.sample_now();
    }
    let requests: Vec<u64> = monitor.timeline().iter().map(|p| p.requests).collect();
    assert_eq!(requests, [0, 2, 1]);

    let mut browser = Browser::launch();
    browser.navigate(&app.url("/perf"));
    assert!(
        browser.eval_until("!!document.querySelector('#rate svg')"),
        "the dashboard drew nothing: {}",
        browser.eval("document.body.innerText")
    );
    let charts = browser.eval(
        "Object.fromEntries(['latency', 'rate', 'memory', 'cache', 'cpu'].map(id => \
         [id, Array.from(document.querySelectorAll('#' + id + ' svg text.tick'), t => t.textContent)]))",
    );
    assert_eq!(
        charts["rate"],
        json!(["0", "1", "2"]),
        "requests per interval: {charts:#}"
    );
    for (chart, labels) in charts.as_object().unwrap() {
        let labels: Vec<&str> = labels
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap())
            .collect();
        if labels.is_empty() {
            continue; // no data for this chart
        }
        let mut distinct = labels.clone();
        distinct.dedup();
        assert_eq!(distinct, labels, "{chart}: repeated labels");
        // Evenly stepped: the numbers' differences are one step, to the labels' precision.
        let numbers: Vec<f64> = labels
            .iter()
            .map(|l| l.split(' ').next().unwrap().parse().unwrap())
            .collect();
        let step = numbers[1] - numbers[0];
        for pair in numbers.windows(2) {
            assert!(
                ((pair[1] - pair[0]) - step).abs() < step / 100.0,
                "{chart}: {labels:?}"
            );
        }
        // 1, 2 or 5 times a power of ten.
        let mantissa = step / 10f64.powf(step.log10().floor());
        assert!(
            [1.0, 2.0, 5.0, 10.0]
                .iter()
                .any(|m| (mantissa - m).abs() < 1e-6),
            "{chart}: step {step} in {labels:?}"
        );
    }
    let cards = browser.eval("document.getElementById('cards').innerText");
    let cards = cards.as_str().unwrap();
    for card in [
        "50.0 %\nCache hit rate",
        "1 / 1\nCache hits / misses",
        "50.0 %\nMemory tier hit rate",
    ] {
        assert!(cards.contains(card), "{card:?} missing from:\n{cards}");
    }
    assert!(!cards.contains("Redis tier"), "no Redis tier: {cards}");
}
