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

/// A runtime with `workers` worker threads, or the current thread only for `0` (it then
/// runs while the test blocks on it), with I/O and time.
pub fn runtime(workers: usize) -> tokio::runtime::Runtime {
    let mut builder = if workers == 0 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(workers);
        b
    };
    builder.enable_all().build().expect("a tokio runtime")
}

/// A listener on a free port of 127.0.0.1.
pub fn bind(runtime: &tokio::runtime::Runtime) -> tokio::net::TcpListener {
    runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("a free port on 127.0.0.1")
}

/// Serves `router` on a free port of 127.0.0.1 from `runtime`, with the client's address
/// available to handlers (the monitoring endpoints and the beacon limiter need it).
pub fn serve(runtime: &tokio::runtime::Runtime, router: axum::Router) -> std::net::SocketAddr {
    serve_on(runtime, bind(runtime), router)
}

/// [`serve`] on a listener of the caller's (a `perf_rt::serve::zero_copy` one, say).
pub fn serve_on<L>(
    runtime: &tokio::runtime::Runtime,
    listener: L,
    router: axum::Router,
) -> std::net::SocketAddr
where
    L: axum::serve::Listener<Addr = std::net::SocketAddr>,
    std::net::SocketAddr:
        for<'a> axum::extract::connect_info::Connected<axum::serve::IncomingStream<'a, L>>,
{
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
