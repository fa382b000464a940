//! The CodeSplitter (`_perf/code-splitter.js`) in a real headless Chromium, under a
//! Content-Security-Policy that admits scripts and stylesheets by nonce only: a feature's
//! module and stylesheet are requested when `loadFeature` runs and not before, once for
//! concurrent callers; `preloadModules` and hovering a marked link fetch modules without
//! running them; `loadModule` gives up on a slow answer and retries; and a page of an
//! earlier deploy reloads once, then reports the failure, with nothing unhandled.
//! Requests are watched through the DevTools protocol's Network events and a log on the
//! server. Chromium is required (see `common::browser`).

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use perf_rt::csp::ContentSecurityPolicy;
use perf_tests::ASSETS;
use serde_json::{Value, json};

use common::browser::Browser;

/// Nothing runs or applies without the request's nonce: the `<link>`s the CodeSplitter adds
/// must carry it, and its data block of feature stylesheets must need none.
const POLICY: &str = "default-src 'self'; script-src {nonce}; style-src {nonce}; \
                      object-src 'none'; base-uri 'none'";

/// Records CSP violations from the start of every document (added over DevTools, so the
/// page's policy does not apply to it).
const PROBE: &str = r#"window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) =>
  window.__violations.push(`${e.effectiveDirective} ${e.blockedURI}`));"#;

/// How long the first answer of `/static/test/slow.js` is held back.
const SLOW: Duration = Duration::from_secs(3);

/// How long feature stylesheets are held back: they arrive after the module, so a callback
/// that ran before its stylesheet applied would see the page unstyled.
const CSS_DELAY: Duration = Duration::from_millis(500);

// ---------------------------------------------------------------------------------------
// The server: the pages, test modules the build does not have, the assets, and a log of
// every request.

type RequestLog = Arc<Mutex<Vec<String>>>;

struct Site {
    addr: SocketAddr,
    log: RequestLog,
    _runtime: tokio::runtime::Runtime,
}

impl Site {
    fn start() -> Site {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let log = RequestLog::default();
        let slow_calls = Arc::new(AtomicUsize::new(0));
        let router = Router::new()
            .route("/", get(|| async { Html(main_page()) }))
            .route(
                "/stale",
                get(|| async {
                    Html(stale_page(
                        "features/greet.js",
                        "CodeSplitter.loadFeature('greet')",
                    ))
                }),
            )
            .route(
                "/stale-import",
                get(|| async {
                    Html(stale_page(
                        "js/splitter/idle.js",
                        "CodeSplitter.loadModule('test/imports-idle.js')",
                    ))
                }),
            )
            .route(
                "/static/test/slow.js",
                get(move || {
                    let first = slow_calls.fetch_add(1, Ordering::SeqCst) == 0;
                    async move {
                        if first {
                            tokio::time::sleep(SLOW).await;
                        }
                        script("export const slow = 'slow';")
                    }
                }),
            )
            .route(
                "/static/test/never.js",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(20)).await;
                    script("export const never = 1;")
                }),
            )
            .route(
                "/static/test/throws.js",
                get(|| async { script("throw new Error('thrown while running');") }),
            )
            .route(
                "/static/test/imports-idle.js",
                get(|| async {
                    script("import '/static/js/splitter/idle.js'; export const top = 1;")
                }),
            )
            // Its 404 would be a console error of every page.
            .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
            .merge(ASSETS.router())
            .layer(from_fn(delay_feature_styles))
            .layer(ContentSecurityPolicy::new(POLICY))
            .layer(from_fn_with_state(log.clone(), record));
        let addr = perf_tests::serve(&runtime, router);
        Site {
            addr,
            log,
            _runtime: runtime,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The requests so far whose "METHOD path?query" starts with `start`.
    fn requests(&self, start: &str) -> Vec<String> {
        let log = self.log.lock().unwrap();
        log.iter()
            .filter(|r| r.starts_with(start))
            .cloned()
            .collect()
    }

    /// How many requests so far were exactly `request` ("METHOD path?query").
    fn count(&self, request: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|r| *r == request)
            .count()
    }
}

async fn record(State(log): State<RequestLog>, request: Request, next: Next) -> Response {
    log.lock()
        .unwrap()
        .push(format!("{} {}", request.method(), request.uri()));
    next.run(request).await
}

async fn delay_feature_styles(request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if path.starts_with("/static/features/") && path.ends_with(".css") {
        tokio::time::sleep(CSS_DELAY).await;
    }
    next.run(request).await
}

fn script(body: &'static str) -> impl IntoResponse {
    ([(CONTENT_TYPE, "text/javascript")], body)
}

fn nonce() -> String {
    perf_rt::csp::nonce().unwrap().to_string()
}

/// The page's entry imports the CodeSplitter; a link that preloads on hover, an element
/// that preloads when the browser is idle, and a paragraph the greet feature styles.
fn main_page() -> String {
    format!(
        "<!doctype html><html><head><title>splitter</title>{map}\
         <script type=module src=\"{entry}\" nonce=\"{nonce}\"></script></head><body>\
         <p id=target>target</p><p id=styled class=greet>styled by the feature</p>\
         <p><a id=hover href=#nowhere data-perf-preload=\"js/splitter/hover.js\">hover me</a></p>\
         <div data-perf-preload-idle=\"js/splitter/idle.js\"></div>\
         </body></html>",
        map = ASSETS.import_map_tag(),
        entry = ASSETS.url("js/splitter/page.js").unwrap(),
        nonce = nonce(),
    )
}

/// A page of an earlier deploy: its import map names `stale`'s module under a hash this
/// build does not have. Its script logs, in `sessionStorage` (which a reload keeps), each
/// start, the outcome of `load`, and any unhandled rejection.
fn stale_page(stale: &str, load: &str) -> String {
    let current = ASSETS.url(stale).unwrap();
    let hash = current
        .rsplit('/')
        .next()
        .unwrap()
        .split('.')
        .nth(1)
        .unwrap();
    assert_eq!(hash.len(), 8, "{current}");
    let old = current.replace(&format!(".{hash}."), ".0badc0de.");
    assert_ne!(old, current);
    let map = ASSETS.import_map().replace(current, &old);
    assert_ne!(
        map,
        ASSETS.import_map(),
        "{current} is not in the import map"
    );
    format!(
        "<!doctype html><html><head><title>stale</title>\
         <script type=importmap nonce=\"{nonce}\">{map}</script>\
         <script type=module nonce=\"{nonce}\">\
         import {{ CodeSplitter }} from '/static/_perf/code-splitter.js';\
         const log = (m) => {{\
           const l = JSON.parse(sessionStorage.getItem('test-log') || '[]');\
           l.push(m);\
           sessionStorage.setItem('test-log', JSON.stringify(l));\
         }};\
         addEventListener('unhandledrejection', (e) => log('unhandled: ' + e.reason));\
         log('start');\
         {load}.then(() => log('loaded'), (e) => log('failed: ' + e.message));\
         </script></head><body><p>an earlier deploy</p></body></html>",
        nonce = nonce(),
    )
}

// ---------------------------------------------------------------------------------------
// The browser side.

fn launch() -> Browser {
    let mut browser = Browser::launch();
    browser.call("Network.enable", json!({}));
    browser.call(
        "Page.addScriptToEvaluateOnNewDocument",
        json!({ "source": PROBE }),
    );
    browser
}

/// How many requests the browser has sent (Network events up to now) for `url`, whatever
/// the query.
fn sent(browser: &mut Browser, url: &str) -> usize {
    browser.eval("0"); // drains the events that arrived so far
    browser
        .events
        .iter()
        .filter(|e| e["method"] == "Network.requestWillBeSent")
        .filter(|e| {
            let u = e["params"]["request"]["url"].as_str().unwrap_or("");
            u.split('?').next() == Some(url)
        })
        .count()
}

/// Console errors and warnings and uncaught exceptions among the events so far.
fn console_problems(browser: &Browser) -> Vec<Value> {
    browser
        .events
        .iter()
        .filter(|e| match e["method"].as_str() {
            Some("Runtime.consoleAPICalled") => {
                matches!(e["params"]["type"].as_str(), Some("error" | "warning"))
            }
            Some("Runtime.exceptionThrown") => true,
            _ => false,
        })
        .cloned()
        .collect()
}

/// The pointer moves onto the middle of the element: `pointerenter`, as a user's mouse.
fn hover(browser: &mut Browser, selector: &str) {
    let at = browser.eval(&format!(
        "(() => {{ const r = document.querySelector({selector:?}).getBoundingClientRect(); \
         return [r.x + r.width / 2, r.y + r.height / 2]; }})()"
    ));
    for (x, y) in [
        (1.0, 1.0),
        (at[0].as_f64().unwrap(), at[1].as_f64().unwrap()),
    ] {
        browser.call(
            "Input.dispatchMouseEvent",
            json!({ "type": "mouseMoved", "x": x, "y": y }),
        );
    }
}

/// Polls `done` until it holds, 10 s at most.
fn poll(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn absolute(site: &Site, path: &str) -> String {
    site.url(ASSETS.url(path).unwrap())
}

// ---------------------------------------------------------------------------------------

#[test]
fn features_load_on_demand_once_and_preloads_never_run() {
    let site = Site::start();
    let mut b = launch();
    b.navigate(&site.url("/"));
    assert!(
        b.eval_until("document.documentElement.dataset.splitter === 'ready'"),
        "the page's entry did not run: {:#?}",
        console_problems(&b)
    );
    assert_eq!(
        b.eval("window.splitterFromImport === globalThis.CodeSplitter"),
        true,
        "the named export is the global"
    );

    // Idle: the marked element's module is preloaded once the page has loaded, not run.
    let idle = absolute(&site, "js/splitter/idle.js");
    assert!(
        b.eval_until(&format!(
            "performance.getEntriesByName({idle:?}).length === 1"
        )),
        "the idle element's module was not preloaded"
    );
    assert_eq!(sent(&mut b, &idle), 1);
    assert_eq!(b.eval("window.idleRan === undefined"), true);

    // A feature: nothing of it before loadFeature runs.
    let greet_js = absolute(&site, "features/greet.js");
    let greet_css = absolute(&site, "features/greet.css");
    assert_eq!((sent(&mut b, &greet_js), sent(&mut b, &greet_css)), (0, 0));
    assert!(site.requests("GET /static/features/").is_empty());
    let got = b.eval(
        "(async () => {
           const calls = [];
           const target = document.getElementById('target');
           const styled = document.getElementById('styled');
           const modules = await Promise.all([1, 2, 3].map((i) =>
             CodeSplitter.loadFeature('greet', (m) =>
               calls.push([i, typeof m.init, getComputedStyle(styled).color]))));
           modules[0].init(target);
           return {
             calls,
             same: modules.every((m) => m === modules[0]),
             shared: CodeSplitter.loadFeature('greet') === CodeSplitter.loadFeature('greet'),
             evaluations: globalThis.greetEvaluations,
             color: getComputedStyle(target).color,
           };
         })()",
    );
    assert_eq!(
        got,
        json!({
            // Each callback, with the stylesheet applied.
            "calls": [
                [1, "function", "rgb(0, 128, 0)"],
                [2, "function", "rgb(0, 128, 0)"],
                [3, "function", "rgb(0, 128, 0)"],
            ],
            "same": true,
            "shared": true,
            "evaluations": 1,
            "color": "rgb(0, 128, 0)",
        })
    );
    assert_eq!((sent(&mut b, &greet_js), sent(&mut b, &greet_css)), (1, 1));
    // A later caller: its callback runs, nothing is fetched again.
    assert_eq!(
        b.eval(
            "CodeSplitter.loadFeature('greet', (m) => { window.late = typeof m.init; })\
             .then(() => window.late)"
        ),
        "function"
    );
    assert_eq!((sent(&mut b, &greet_js), sent(&mut b, &greet_css)), (1, 1));
    assert_eq!(
        site.requests("GET /static/features/").len(),
        2,
        "{:?}",
        site.requests("")
    );

    // preloadModules: the hashed URL, fetched once however it is named, and not run.
    let preloaded = absolute(&site, "js/splitter/preloaded.js");
    let got = b.eval(
        "CodeSplitter.preloadModules(['js/splitter/preloaded.js', '/static/js/splitter/preloaded.js'])
           .then(() => CodeSplitter.preloadModules('js/splitter/preloaded.js'))
           .then(() => ({
             ran: window.preloadedRan === true,
             links: Array.from(document.querySelectorAll('link[rel=modulepreload]'), (l) => l.href)
               .filter((h) => h.includes('/js/splitter/preloaded.')),
           }))",
    );
    assert_eq!(got, json!({ "ran": false, "links": [preloaded] }));
    assert_eq!(sent(&mut b, &preloaded), 1);
    // Used later: it runs then, from the preload, with no second request.
    assert_eq!(
        b.eval(
            "import('/static/js/splitter/preloaded.js').then((m) => [m.preloaded, window.preloadedRan])"
        ),
        json!(["ran", true])
    );
    assert_eq!(sent(&mut b, &preloaded), 1);

    // Hover: the marked link's module is preloaded when the pointer enters it, not run.
    let hovered = absolute(&site, "js/splitter/hover.js");
    assert_eq!(sent(&mut b, &hovered), 0);
    hover(&mut b, "#hover");
    assert!(
        b.eval_until(&format!(
            "performance.getEntriesByName({hovered:?}).length === 1"
        )),
        "hovering did not preload"
    );
    hover(&mut b, "#hover");
    assert_eq!(sent(&mut b, &hovered), 1);
    assert_eq!(b.eval("window.hoverRan === undefined"), true);

    assert_eq!(b.eval("window.__violations"), json!([]));
    assert_eq!(console_problems(&b), Vec::<Value>::new());
}

#[test]
fn load_module_times_out_retries_and_names_the_path_when_it_fails() {
    let site = Site::start();
    let mut b = launch();
    b.navigate(&site.url("/"));
    assert!(b.eval_until("!!globalThis.CodeSplitter"));

    // One promise per path in flight, however the path is written.
    assert_eq!(
        b.eval(
            "CodeSplitter.loadModule('js/splitter/hover.js') === \
             CodeSplitter.loadModule('/static/js/splitter/hover.js')"
        ),
        true
    );

    // The first answer is held back past the timeout; the retry asks again and succeeds.
    let got = b.eval(
        "(async () => {
           const t = performance.now();
           const m = await CodeSplitter.loadModule('test/slow.js', { timeout: 500 });
           return [m.slow, performance.now() - t];
         })()",
    );
    assert_eq!(got[0], "slow");
    let ms = got[1].as_f64().unwrap();
    assert!(
        (500.0..SLOW.as_millis() as f64).contains(&ms),
        "{ms} ms: not the retry's answer"
    );
    assert_eq!(
        site.requests("GET /static/test/slow.js"),
        [
            "GET /static/test/slow.js",
            "GET /static/test/slow.js?perf-retry=1"
        ]
    );

    // No answer at all: rejected after each attempt's timeout, naming the path.
    let got = b.eval(
        "(async () => {
           const t = performance.now();
           try { await CodeSplitter.loadModule('test/never.js', { timeout: 300 }); return 'loaded'; }
           catch (e) { return [e.message, performance.now() - t]; }
         })()",
    );
    let message = got[0].as_str().unwrap();
    assert!(
        message.contains("test/never.js") && message.contains("300 ms"),
        "{got}"
    );
    let ms = got[1].as_f64().unwrap();
    assert!(
        (600.0..3000.0).contains(&ms),
        "two attempts of 300 ms: {ms}"
    );
    assert_eq!(site.requests("GET /static/test/never.js").len(), 2);
    // retries: 0 is one attempt (another URL: the first one's fetch is still pending, and
    // an import of it would wait for that one).
    let got = b.eval(
        "CodeSplitter.loadModule('test/never.js?again', { timeout: 200, retries: 0 })\
         .then(() => 'loaded', (e) => e.message)",
    );
    assert!(
        got.as_str().unwrap().contains("test/never.js?again"),
        "{got}"
    );
    assert_eq!(
        site.requests("GET /static/test/never.js?again"),
        ["GET /static/test/never.js?again"]
    );

    // Not found: one HEAD tells it from a stale page (a 404, not a 410), one retry, then an
    // error naming the path; the page stays.
    let got = b.eval(
        "CodeSplitter.loadModule('js/splitter/missing.js').then(() => 'loaded', (e) => e.message)",
    );
    assert!(
        got.as_str().unwrap().contains("js/splitter/missing.js"),
        "{got}"
    );
    assert_eq!(
        site.requests("")
            .into_iter()
            .filter(|r| r.contains("/static/js/splitter/missing.js"))
            .collect::<Vec<_>>(),
        [
            "GET /static/js/splitter/missing.js",
            "HEAD /static/js/splitter/missing.js",
            "GET /static/js/splitter/missing.js?perf-retry=1",
        ]
    );
    // A module that throws while running is not run again.
    let got =
        b.eval("CodeSplitter.loadModule('test/throws.js').then(() => 'loaded', (e) => e.message)");
    assert!(
        got.as_str().unwrap().contains("thrown while running"),
        "{got}"
    );
    assert_eq!(site.requests("GET /static/test/throws.js").len(), 1);
    assert!(site.requests("HEAD /static/test/throws.js").is_empty());

    assert_eq!(site.count("GET /"), 1, "the page did not reload");
    assert_eq!(b.eval("window.__violations"), json!([]));
    assert_eq!(console_problems(&b), Vec::<Value>::new());
}

/// Loads a page of an earlier deploy and waits until its log has an outcome; returns the
/// log.
fn stale_log(site: &Site, b: &mut Browser, page: &str) -> Value {
    b.navigate(&site.url(page));
    let mut log = Value::Null;
    let settled = poll(|| {
        // The page may be reloading: a failed evaluation is one more poll.
        let r = b.try_call(
            "Runtime.evaluate",
            json!({
                "expression": "JSON.parse(sessionStorage.getItem('test-log') || '[]')",
                "returnByValue": true,
            }),
        );
        if let Ok(r) = r {
            log = r["result"]["value"].clone();
        }
        log.as_array()
            .is_some_and(|l| l.iter().any(|m| m != "start"))
    });
    assert!(settled, "{page}: no outcome: {log}");
    // Long enough for another reload to show.
    std::thread::sleep(Duration::from_millis(1000));
    log
}

#[test]
fn a_page_of_an_earlier_deploy_reloads_once_then_reports_the_failure() {
    let site = Site::start();
    let mut b = launch();

    for (page, gone) in [
        // The feature's own module is gone.
        ("/stale", "features/greet.js"),
        // The module is there, but one it imports is gone.
        ("/stale-import", "js/splitter/idle.js"),
    ] {
        let log = stale_log(&site, &mut b, page);
        let log: Vec<&str> = log
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap())
            .collect();
        // Two starts: the reload happened once; one outcome, after it; nothing unhandled.
        assert_eq!(log.len(), 3, "{page}: {log:?}");
        assert_eq!(log[..2], ["start", "start"], "{page}: {log:?}");
        assert!(
            log[2].starts_with("failed: ")
                && log[2].contains("earlier deploy")
                && log[2].contains(ASSETS.build_id()),
            "{page}: {log:?}"
        );
        assert_eq!(site.count(&format!("GET {page}")), 2, "{page}");
        // Each load asked once whether the failing URL belongs to an earlier deploy.
        let old = ASSETS
            .url(gone)
            .unwrap()
            .rsplit_once('.')
            .unwrap()
            .0
            .rsplit_once('.')
            .unwrap()
            .0
            .to_owned();
        let heads = site.requests(&format!("HEAD {old}.0badc0de."));
        assert_eq!(heads.len(), 2, "{page}: {:?}", site.requests(""));
        assert_eq!(
            b.eval("sessionStorage.getItem('perf-reload-build')"),
            ASSETS.build_id()
        );
        assert_eq!(b.eval("window.__violations"), json!([]));
        assert_eq!(console_problems(&b), Vec::<Value>::new(), "{page}");
        // The next page starts with no memory of this one.
        b.eval("sessionStorage.clear()");
    }
}
