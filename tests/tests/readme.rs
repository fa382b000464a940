//! The README's snippets, assembled into applications the way a reader would, served over
//! a real socket. The snippets are copied here line for line, and
//! `the_snippets_here_are_the_readmes` fails when the README's change without these.

use std::net::SocketAddr;
use std::time::Duration;

use perf_rt::serve::zero_copy;
use perf_rt::suite::SuiteError;
use perf_rt::suite::{Config, init_performance_suite};

perf_rt::include_assets!(); // defines ASSETS, asset_url! and asset_integrity!

async fn index() -> &'static str {
    "index"
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// "Using it in your application" and then "Performance monitor and the suite": the
/// application merges `ASSETS.router()` and also gives `&ASSETS` to the suite.
#[rustfmt::skip] // the README's lines, as written there
async fn both_snippets(listener: tokio::net::TcpListener) -> Result<(), BoxError> {
    let app = axum::Router::new()
        .route("/", axum::routing::get(index))
        .merge(ASSETS.router()); // serves /static/…

    let config = Config::from_env()?.assets(&ASSETS); // PERF_* settings, see below
    let (app, suite) = init_performance_suite(app, config).await?;
    suite.check_listener(listener.local_addr()?)?; // see "Access" below
    let listener = zero_copy(listener); // large assets leave through sendfile
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
    Ok(())
}

/// The suite's snippet alone: the suite mounts the assets.
#[rustfmt::skip] // the README's lines, as written there
async fn suite_snippet(listener: tokio::net::TcpListener) -> Result<(), BoxError> {
    let app = axum::Router::new().route("/", axum::routing::get(index));

    let config = Config::from_env()?.assets(&ASSETS); // PERF_* settings, see below
    let (app, suite) = init_performance_suite(app, config).await?;
    suite.check_listener(listener.local_addr()?)?; // see "Access" below
    let listener = zero_copy(listener); // large assets leave through sendfile
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
    Ok(())
}

/// The application's snippet, and the suite without `.assets(&ASSETS)`.
#[rustfmt::skip] // the README's lines, as written there
async fn app_snippet(listener: tokio::net::TcpListener) -> Result<(), BoxError> {
    let app = axum::Router::new()
        .route("/", axum::routing::get(index))
        .merge(ASSETS.router()); // serves /static/…

    let config = Config::from_env()?;
    let (app, suite) = init_performance_suite(app, config).await?;
    suite.check_listener(listener.local_addr()?)?; // see "Access" below
    let listener = zero_copy(listener); // large assets leave through sendfile
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
    Ok(())
}

/// "Development mode": its layer for an application without the suite.
#[rustfmt::skip] // the README's lines, as written there
#[allow(clippy::let_and_return)] // the README binds `app` as its other snippets do
fn dev_snippet(app: axum::Router) -> axum::Router {
    let app = if ASSETS.dev_mode() {
        app.layer(axum::middleware::map_response(|r: axum::response::Response| ASSETS.dev_html(r)))
    } else {
        app
    };
    app
}

/// Outside development mode (no `PERF_DEV`), the snippet leaves the application as it was:
/// its pages carry no live-reload script.
#[test]
fn the_development_mode_snippet_adds_nothing_outside_development_mode() {
    assert!(!ASSETS.dev_mode());
    let app = dev_snippet(axum::Router::new().route(
        "/",
        axum::routing::get(|| async { axum::response::Html("<html><head></head></html>") }),
    ));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let addr = perf_tests::serve(&runtime, app);
    let page = reqwest::blocking::get(format!("http://{addr}/"))
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(page, "<html><head></head></html>");
}

/// Starts `serve` on a runtime of its own and checks, over the socket, that the page, an
/// embedded asset (by hashed and logical path) and the dashboard are answered.
fn check_serves<F, Fut>(serve: F)
where
    F: FnOnce(tokio::net::TcpListener) -> Fut,
    Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
{
    let runtime = perf_tests::runtime(2);
    let listener = perf_tests::bind(&runtime);
    let addr = listener.local_addr().unwrap();
    let serving = serve(listener);
    let server = runtime.spawn(async move {
        // A start-up error ends the task and closes the listener: say which.
        if let Err(e) = serving.await {
            eprintln!("the server stopped: {e}");
        }
    });
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let base = format!("http://{addr}");
    // The listener is bound, so requests wait while the server starts. One that fails
    // means the server stopped: its error (a start-up panic would be one) is the reason.
    let get = |path: &str| match client.get(format!("{base}{path}")).send() {
        Ok(res) => res,
        Err(e) => panic!("GET {path}: {e} (see why the server stopped above)"),
    };
    let page = get("/");
    assert_eq!(page.status(), 200);
    assert_eq!(page.text().unwrap(), "index");
    let css = ASSETS.get("css/app.css").unwrap();
    for path in [
        css.url.to_owned(),
        format!("{}/css/app.css", ASSETS.prefix()),
    ] {
        let res = get(&path);
        assert_eq!(res.status(), 200, "{path}");
        assert!(
            css.etags.contains(&res.headers()["etag"].to_str().unwrap()),
            "{path}"
        );
        assert_eq!(res.bytes().unwrap().len(), css.identity.len(), "{path}");
    }
    assert_eq!(get("/perf").status(), 200);
    assert!(!server.is_finished());
    server.abort();
}

#[test]
fn an_application_made_of_both_snippets_starts_and_serves_its_assets() {
    check_serves(both_snippets);
}

#[test]
fn the_suite_alone_mounts_the_assets_and_the_application_alone_serves_them() {
    check_serves(suite_snippet);
    check_serves(app_snippet);
}

#[test]
fn a_route_of_the_applications_own_in_the_assets_place_is_an_error_naming_the_fix() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let app = axum::Router::new()
        .route("/", axum::routing::get(index))
        .route("/static/{*path}", axum::routing::get(index));
    let config = Config::from_env().unwrap().assets(&ASSETS);
    let err = runtime
        .block_on(init_performance_suite(app, config))
        .unwrap_err();
    assert!(matches!(err, SuiteError::AssetsConflict { .. }), "{err:?}");
    let text = err.to_string();
    for part in [
        "/static/{*path}",
        "remove or move that route",
        "PERF_ASSET_OPTIMIZATION=false",
    ] {
        assert!(text.contains(part), "{part:?} missing from: {text}");
    }
    // With the assets left out, the same application starts.
    let app = axum::Router::new().route("/static/{*path}", axum::routing::get(index));
    let mut config = Config::from_env().unwrap().assets(&ASSETS);
    config.asset_optimization = false;
    assert!(
        runtime
            .block_on(init_performance_suite(app, config))
            .is_ok()
    );
}

/// Every line of the README's two snippets that can stand in a function appears in this
/// file, so the applications above are the README's.
#[test]
fn the_snippets_here_are_the_readmes() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let here =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/readme.rs")).unwrap();
    let squeeze = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let here: Vec<String> = here.lines().map(squeeze).collect();
    let blocks: Vec<&str> = readme
        .split("```rust\n")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .filter(|b| {
            b.contains("ASSETS.router()")
                || b.contains("init_performance_suite(app")
                || b.contains("ASSETS.dev_html")
        })
        .collect();
    assert_eq!(
        blocks.len(),
        3,
        "the README's three snippets were not found"
    );
    for line in blocks.iter().flat_map(|b| b.lines()) {
        let line = squeeze(line);
        // A module declaration and the trailing comments of the suite's snippet cannot
        // stand in a function body.
        if line.is_empty() || line.starts_with("mod ") || line.starts_with("//") {
            continue;
        }
        assert!(
            here.contains(&line),
            "README line not in tests/tests/readme.rs: {line}"
        );
    }
}

/// Deciding whether the application already serves the assets runs none of its handlers:
/// a fallback that renders a page may need what the application sets up after start-up.
#[test]
fn mounting_the_assets_runs_no_handler_of_the_application() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let app = axum::Router::new()
        .route("/", axum::routing::get(index))
        .fallback(|| async {
            CALLS.fetch_add(1, Ordering::SeqCst);
            "fallback"
        });
    let config = Config::from_env().unwrap().assets(&ASSETS);
    let (_app, _suite) = runtime
        .block_on(init_performance_suite(app, config))
        .unwrap();
    assert_eq!(CALLS.load(Ordering::SeqCst), 0);
}
