//! Starts Inner Architect: `cargo run --bin example-app`, then open http://127.0.0.1:8080.
//!
//! Settings from the environment: `HOST` (default 127.0.0.1), `PORT` (default 8080),
//! `DATABASE_URL` (a SQLite file path or `sqlite://path`; default
//! `inner-architect.db` in the current directory, created on first start),
//! `PERF_REDIS_URL` (a Redis shared by several instances; default: none, the query cache
//! keeps to memory), `PERF_MONITOR_TOKEN` (to reach the monitoring endpoints from another
//! host) and the other `PERF_*` settings of `perf_rt::suite::Config`. In a debug build,
//! `PERF_DEV=1` serves the assets from `static/` and rebuilds them on every change (the
//! README's "Development mode").

use std::net::SocketAddr;
use std::process::ExitCode;

use perf_rt::memory::TrackingAllocator;

/// Every allocation is counted (live bytes, peak, sampled call sites) for the memory
/// profiler, at close to the system allocator's speed.
#[global_allocator]
static ALLOCATOR: TrackingAllocator = TrackingAllocator::system();

#[tokio::main]
async fn main() -> ExitCode {
    match serve().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("inner-architect: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve() -> Result<(), String> {
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let port = std::env::var("PORT").unwrap_or_else(|_| "8080".into());
    let port: u16 = port
        .parse()
        .map_err(|_| format!("PORT={port} is not a port number"))?;
    let addr: SocketAddr = format!("{host}:{port}")
        .parse()
        .or_else(|_| format!("[{host}]:{port}").parse())
        .map_err(|_| format!("HOST={host} is not an IP address"))?;
    let database = std::env::var("DATABASE_URL").unwrap_or_else(|_| "inner-architect.db".into());
    let db = example_app::Db::open(&database)
        .map_err(|e| format!("opening the database {database}: {e}"))?;
    let (app, suite) = example_app::build(db).await?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("listening on {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    // Without PERF_MONITOR_TOKEN the monitoring endpoints answer loopback clients only,
    // which a listener other hosts reach (HOST=0.0.0.0) cannot promise: refuse to start.
    suite.check_listener(local).map_err(|e| e.to_string())?;
    // One line: tests and scripts read the address from it and may close the pipe after.
    let dashboard = if suite.monitor().is_some() {
        format!("; performance dashboard http://{local}/perf")
    } else {
        String::new()
    };
    println!("Inner Architect listening on http://{local} (database {database}{dashboard})");
    // The client's address lets the monitoring endpoints tell loopback clients apart and
    // the browser-metrics endpoint rate-limit per client. Large embedded assets (the
    // photographs, the bundles) leave through `sendfile` from the binary's own pages.
    axum::serve(
        perf_rt::serve::zero_copy(listener),
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    .map_err(|e| e.to_string())
}
