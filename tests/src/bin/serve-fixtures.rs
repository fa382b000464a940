//! Serves the embedded fixtures on `127.0.0.1:$PORT` (default 18081): the perf-rt side
//! of the serving benchmark (`bench/serve.py`).

#[tokio::main]
async fn main() {
    let port = std::env::var("PORT").unwrap_or_else(|_| "18081".into());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}"))
        .await
        .expect("the port is free");
    println!("listening on {}", listener.local_addr().expect("bound"));
    let app: axum::Router = perf_tests::ASSETS.router();
    axum::serve(listener, app).await.expect("serving");
}
