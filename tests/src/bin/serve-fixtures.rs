//! Serves the embedded fixtures on `127.0.0.1:$PORT` (default 18081): the perf-rt side
//! of the serving benchmark (`bench/serve.py`).
//!
//! `WORKERS=n` sets the number of runtime threads: unset, tokio's default multi-thread
//! runtime (`#[tokio::main]`, one worker per core); `1`, the current-thread runtime, the
//! counterpart of a one-worker nginx.
//!
//! Connections come from `perf_rt::serve::zero_copy` (large bodies through `sendfile`);
//! `ZERO_COPY=0` serves from the plain `TcpListener` instead (every body through
//! `writev`), and `MIN_LEN=n` sets the `sendfile` threshold.

fn main() {
    let workers = std::env::var("WORKERS")
        .ok()
        .map(|w| w.parse::<usize>().expect("WORKERS is a number"));
    let mut runtime = match workers {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = runtime.enable_all().build().expect("a tokio runtime");
    runtime.block_on(serve());
}

async fn serve() {
    let port = std::env::var("PORT").unwrap_or_else(|_| "18081".into());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}"))
        .await
        .expect("the port is free");
    println!("listening on {}", listener.local_addr().expect("bound"));
    let app: axum::Router = perf_tests::ASSETS.router();
    if std::env::var("ZERO_COPY").as_deref() == Ok("0") {
        axum::serve(listener, app).await.expect("serving");
    } else {
        let min_len = std::env::var("MIN_LEN").map_or(perf_rt::serve::DEFAULT_MIN_LEN, |n| {
            n.parse().expect("MIN_LEN is a number")
        });
        let listener = perf_rt::serve::zero_copy_with(listener, min_len);
        axum::serve(listener, app).await.expect("serving");
    }
}
