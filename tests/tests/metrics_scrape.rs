//! A `/metrics` scrape reads the monitor's histograms where they are, without copying them
//! (about 12 KiB each): the bytes one scrape allocates stay near the size of its text.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use perf_rt::memory::TrackingAllocator;
use perf_rt::suite::{Config, init_performance_suite};

#[global_allocator]
static ALLOCATOR: TrackingAllocator = TrackingAllocator::system();

const ROUTES: usize = 60;

#[test]
fn a_scrape_allocates_about_its_text_not_a_copy_of_every_histogram() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut router = Router::new();
    for i in 0..ROUTES {
        router = router.route(&format!("/r{i}"), get(|| async { "ok" }));
    }
    let mut config = Config::default();
    config.query_cache = false;
    config.memory_profiling = false;
    config.response_compression = false;
    // No sampler thread allocating during the measurement.
    config.monitor.interval = Duration::from_secs(3600);
    let (router, _suite) = runtime
        .block_on(init_performance_suite(router, config))
        .unwrap();
    let addr = perf_tests::serve(&runtime, router);
    let client = reqwest::blocking::Client::new();
    for i in 0..ROUTES {
        assert_eq!(
            client
                .get(format!("http://{addr}/r{i}"))
                .send()
                .unwrap()
                .status(),
            200
        );
    }
    let scrape = || {
        client
            .get(format!("http://{addr}/metrics"))
            .send()
            .unwrap()
            .text()
            .unwrap()
    };
    let text = scrape(); // warms the connection and the endpoint
    assert_eq!(text.matches("perf_http_requests_total{").count(), ROUTES);
    let before = perf_rt::memory::stats().total_bytes_allocated;
    let text = scrape();
    let allocated = perf_rt::memory::stats().total_bytes_allocated - before;
    // The text a few times over (building it, the response, the client's copy) and the
    // HTTP machinery; a copy of each histogram alone would be 60 × 12 KiB.
    let bound = 6 * text.len() as u64 + 256 * 1024;
    assert!(
        allocated < bound,
        "{allocated} bytes allocated for a scrape of {} bytes (bound {bound})",
        text.len()
    );
}
