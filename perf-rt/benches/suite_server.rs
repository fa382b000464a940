//! The HTTP server of the suite benchmarks (`bench/suite.py` drives it with wrk): one
//! process per configuration, so each is measured alone on the same routes.
//!
//! ```text
//! cargo bench -p perf-rt --features full --bench suite_server -- <mode> <port>
//! ```
//!
//! Modes: `bare` (the routes alone), `suite` (`init_performance_suite` with every part
//! on: monitor, endpoints, compression, memory timeline, browser metrics),
//! `tower-compression` (tower-http's `CompressionLayer::new()` alone) and
//! `perf-compression` (`perf_rt::compression::layer()` alone).
//!
//! Routes: `/hello` (a small dynamic text answer) and `/page` (a 20 KiB HTML page built
//! per request).

use std::fmt::Write as _;
use std::net::SocketAddr;

use axum::Router;
use axum::response::Html;
use axum::routing::get;

fn page() -> String {
    let mut html = String::with_capacity(21 * 1024);
    html.push_str("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Reflections</title></head><body><main><ul class=\"reflections\">");
    let mut i = 0;
    while html.len() < 20 * 1024 {
        let _ = write!(
            html,
            "<li class=\"reflection\"><a href=\"/reflections/{i}\">Reflection {i}</a><p>Three pages before coffee; one line stuck with me today, number {i}.</p></li>"
        );
        i += 1;
    }
    html.push_str("</ul></main></body></html>");
    html
}

fn routes() -> Router {
    Router::new()
        .route(
            "/hello/{name}",
            get(
                |axum::extract::Path(name): axum::extract::Path<String>| async move {
                    format!("Hello, {name}!")
                },
            ),
        )
        .route("/page", get(|| async { Html(page()) }))
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let mode = args.first().map_or("bare", String::as_str).to_owned();
    let port = args.get(1).map_or("18090", String::as_str).to_owned();
    let app = match mode.as_str() {
        "bare" => routes(),
        "tower-compression" => routes().layer(tower_http::compression::CompressionLayer::new()),
        "perf-compression" => routes().layer(perf_rt::compression::layer()),
        "suite" => {
            let mut config = perf_rt::Config::from_env().expect("PERF_* settings");
            // Nothing here queries a database; the cache would only sit idle.
            config.query_cache = false;
            let (app, suite) = perf_rt::init_performance_suite(routes(), config)
                .await
                .expect("suite");
            std::mem::forget(suite);
            app
        }
        other => panic!("unknown mode {other}: bare, suite, tower-compression, perf-compression"),
    };
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}"))
        .await
        .expect("the port is free");
    println!(
        "{mode} listening on {}",
        listener.local_addr().expect("bound")
    );
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
    .expect("serving");
}
