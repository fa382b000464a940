//! A static Content-Security-Policy without nonces: `ASSETS.critical_csp_hashes()` in
//! `style-src` lets exactly the inline critical CSS through, in a real headless Chromium.
//! The same page with one byte of its critical CSS changed is refused (the control), so
//! the hash is really what the browser checks. The full stylesheets are blocked: the
//! styles seen come from the inline CSS alone. Chromium is required (see
//! `common::browser`).

mod common;

use axum::Router;
use axum::http::header::CONTENT_SECURITY_POLICY;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use perf_tests::{ASSETS, critical_css};
use serde_json::json;

use common::browser::Browser;

/// Records CSP violations from the start of the page (added over DevTools, so the page's
/// policy does not apply to it).
const PROBE: &str = r#"window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) =>
  window.__violations.push(`${e.effectiveDirective} ${e.blockedURI}`));"#;

fn page(head: String) -> impl IntoResponse {
    let policy = format!(
        "default-src 'self'; script-src 'self'; style-src 'self' {}",
        ASSETS.critical_csp_hashes()
    );
    (
        [(CONTENT_SECURITY_POLICY, policy)],
        Html(format!(
            "<!doctype html><html><head>{head}</head><body><p>text</p></body></html>"
        )),
    )
}

#[test]
fn a_static_policy_lists_the_hash_of_each_templates_critical_css() {
    let critical = critical_css!("page.html");
    assert_eq!(
        ASSETS.critical("page.html").map(|c| c as *const _),
        Some(critical as *const _),
        "the macro and the run-time lookup name the same CSS"
    );
    assert!(
        critical.css.contains("body{"),
        "the fixture's critical CSS styles body: {}",
        critical.css
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let router = Router::new()
        // Outside any CSP layer the markup carries no nonce: only the hash can admit it.
        .route(
            "/",
            get(|| async { page(critical_css!("page.html").to_string()) }),
        )
        .route(
            "/tampered",
            get(|| async {
                let html = critical_css!("page.html").to_string();
                page(html.replacen("body{", "body {", 1))
            }),
        )
        .route(
            "/favicon.ico",
            get(|| async { axum::http::StatusCode::NO_CONTENT }),
        )
        .merge(ASSETS.router());
    let addr = perf_tests::serve(&runtime, router);

    let mut b = Browser::launch();
    b.call("Network.enable", json!({}));
    b.call("Network.setCacheDisabled", json!({ "cacheDisabled": true }));
    b.call(
        "Network.setBlockedURLs",
        json!({ "urls": ["*/static/css/*"] }),
    );
    b.call(
        "Page.addScriptToEvaluateOnNewDocument",
        json!({ "source": PROBE }),
    );
    let body_color = "getComputedStyle(document.body).color";

    b.navigate(&format!("http://{addr}/"));
    let html = b.eval("document.documentElement.outerHTML");
    assert!(
        !html.as_str().unwrap().contains("nonce="),
        "no nonce outside a CSP layer"
    );
    assert_eq!(b.eval("window.__violations"), json!([]));
    assert_eq!(b.eval(body_color), json!("rgb(34, 34, 34)"));

    b.navigate(&format!("http://{addr}/tampered"));
    let violations = b.eval("window.__violations");
    assert!(
        violations
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v.as_str().unwrap().starts_with("style-src")),
        "a changed inline CSS must be refused: {violations}"
    );
    assert_eq!(b.eval(body_color), json!("rgb(0, 0, 0)"));
}
