//! Workspace-level integration tests of perf-suite.
//!
//! The library part embeds `fixtures/static` through this crate's build.rs, with the
//! macros exported so the compile-fail cases can name them from another crate; the
//! tests live in `tests/`.

perf_rt::include_assets!(export);

/// The `OUT_DIR` perf-build wrote into, for the snapshot and rerun tests.
pub const OUT_DIR: &str = env!("OUT_DIR");

/// The URL of the fixture stylesheet, resolved at compile time.
pub const APP_CSS: &str = asset_url!("css/app.css");

/// Serves `router` on a free port of 127.0.0.1 from `runtime`, with the client's address
/// available to handlers (the monitoring endpoints and the beacon limiter need it).
pub fn serve(runtime: &tokio::runtime::Runtime, router: axum::Router) -> std::net::SocketAddr {
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("a free port on 127.0.0.1");
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    runtime.spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });
    addr
}
