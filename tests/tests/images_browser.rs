//! Responsive images in a real headless Chromium (1000×800, DPR 1): the `<picture>` that
//! `image!` renders makes the browser fetch one AVIF of the width it shows, nothing below
//! the fold until it is scrolled to, no layout shift as images arrive (a control page
//! whose `<img>` has no size shifts, so the measure can fail), and nothing a strict
//! `Content-Security-Policy` refuses. Chromium is required (see `common::browser`).

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use perf_tests::{ASSETS, asset_url, image, image_preload};
use serde_json::{Value, json};

use common::browser::Browser;

const CSP: &str = "default-src 'self'; img-src 'self' data:; script-src 'self'; style-src 'self'";

/// Shown 600 px wide on the 1000 px window: at DPR 1 the 640w variant is the one needed.
const SIZES: &str = "(min-width: 900px) 600px, 100vw";

const HERO_AVIF: &str = asset_url!("img/photo-640w.avif");
const BELOW_AVIF: &str = asset_url!("img/below-640w.avif");

/// How long every image response is held back: images then arrive after the first paint,
/// as on a real network, so an `<img>` with no reserved box visibly shifts the text.
const IMAGE_DELAY: Duration = Duration::from_millis(400);

/// Records layout shifts and CSP violations from the start of the page, for
/// `Runtime.evaluate` to read back; an external file, since the CSP forbids inline script.
const PROBE_JS: &str = r#""use strict";
(() => {
  const shifts = [];
  const violations = [];
  const observer = new PerformanceObserver((list) => shifts.push(...list.getEntries()));
  observer.observe({ type: "layout-shift", buffered: true });
  document.addEventListener("securitypolicyviolation", (e) =>
    violations.push(`${e.effectiveDirective} ${e.blockedURI}`));
  window.probe = {
    // Every shift without recent input, summed: zero exactly when nothing moved.
    cls() {
      shifts.push(...observer.takeRecords());
      return shifts.filter((e) => !e.hadRecentInput).reduce((sum, e) => sum + e.value, 0);
    },
    violations: () => violations,
  };
})();
"#;

/// Responsive images as a stylesheet would have them; `height: auto` makes the width and
/// height attributes the only source of the box's height before the image arrives.
const PAGE_CSS: &str = "img { max-width: 100%; height: auto; }\n\
                        .perf-img { width: 600px; }\n\
                        .spacer { height: 6000px; }\n";

// ---------------------------------------------------------------------------------------
// The server: the two pages, the probe, the assets, and a log of every request.

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
        let router = Router::new()
            .route("/", get(|| async { page(images_page()) }))
            .route("/control", get(|| async { page(control_page()) }))
            .route(
                "/probe.js",
                get(|| async { ([(CONTENT_TYPE, "text/javascript")], PROBE_JS) }),
            )
            .route(
                "/page.css",
                get(|| async { ([(CONTENT_TYPE, "text/css")], PAGE_CSS) }),
            )
            // Its 404 would be a console error of every page.
            .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
            .merge(ASSETS.router())
            .layer(from_fn(delay_images))
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

    /// The paths of the images asked for so far, in order.
    fn image_requests(&self) -> Vec<String> {
        let log = self.log.lock().unwrap();
        log.iter()
            .filter(|p| p.starts_with("/static/img/"))
            .cloned()
            .collect()
    }

    fn forget_requests(&self) {
        self.log.lock().unwrap().clear();
    }
}

async fn record(State(log): State<RequestLog>, request: Request, next: Next) -> Response {
    log.lock().unwrap().push(request.uri().path().to_owned());
    next.run(request).await
}

async fn delay_images(request: Request, next: Next) -> Response {
    if request.uri().path().starts_with("/static/img/") {
        tokio::time::sleep(IMAGE_DELAY).await;
    }
    next.run(request).await
}

fn page(html: String) -> impl IntoResponse {
    ([(CONTENT_SECURITY_POLICY, CSP)], Html(html))
}

/// The hero (the page's priority image, preloaded) above the fold, and a second image
/// after a tall spacer, both from `image!`, with the placeholder stylesheet and the
/// ImageOptimizer script.
fn images_page() -> String {
    format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>images</title>\
         <script src=/probe.js></script>{preload}\
         <link rel=stylesheet href=/page.css>{placeholders}{optimizer}</head><body>\
         <h1>Responsive images</h1>{hero}<p>Text under the hero.</p>\
         <div class=spacer></div>{below}<p>The end.</p></body></html>",
        preload = image_preload!("img/photo.jpg", sizes = SIZES),
        placeholders = ASSETS.image_placeholders_tag(),
        optimizer = ASSETS.image_optimizer_tag(),
        hero = image!(
            "img/photo.jpg",
            alt = "A photograph",
            sizes = SIZES,
            priority = true,
            class = "hero"
        ),
        below = image!(
            "img/below.jpg",
            alt = "Another photograph",
            sizes = SIZES,
            class = "below"
        ),
    )
}

/// The control: a plain `<img>` with no width or height above text, and an inline style
/// the CSP refuses, so both measures are seen to catch what they look for.
fn control_page() -> String {
    format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>control</title>\
         <script src=/probe.js></script><link rel=stylesheet href=/page.css></head><body>\
         <h1>No size</h1><img src=\"{}\" alt=\"\">\
         <p style=\"color: red\">Text under an image of unknown size.</p></body></html>",
        asset_url!("img/photo.jpg")
    )
}

// ---------------------------------------------------------------------------------------

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

/// The console errors and warnings, uncaught exceptions, and the browser log's errors and
/// warnings received so far (the events up to now are drained first).
fn console_problems(browser: &mut Browser) -> Vec<Value> {
    browser.eval("0");
    browser
        .events
        .iter()
        .filter(|e| match e["method"].as_str() {
            Some("Runtime.consoleAPICalled") => {
                matches!(
                    e["params"]["type"].as_str(),
                    Some("error" | "warning" | "assert")
                )
            }
            Some("Runtime.exceptionThrown") => true,
            Some("Log.entryAdded") => {
                matches!(
                    e["params"]["entry"]["level"].as_str(),
                    Some("error" | "warning")
                )
            }
            _ => false,
        })
        .cloned()
        .collect()
}

/// Two frames, so the layout shifts of the last one are recorded.
const TWO_FRAMES: &str =
    "new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))";

/// Every `image!` image loaded, marked `perf-loaded`, its placeholder background gone.
const ALL_SETTLED: &str = "Array.from(document.querySelectorAll('img.perf-img')).every(i => \
     i.complete && i.naturalWidth > 0 && i.classList.contains('perf-loaded') && \
     getComputedStyle(i).backgroundImage === 'none')";

#[test]
fn chromium_fetches_one_avif_of_the_needed_width_and_the_one_below_the_fold_on_scroll() {
    let site = Site::start();
    let mut browser = Browser::launch();
    browser.navigate(&site.url("/"));
    // The premise of "the 640w variant": a 1000 px wide viewport at DPR 1.
    assert_eq!(
        browser.eval("[innerWidth, devicePixelRatio]"),
        json!([1000, 1])
    );

    // 5. The preload is in the head, for the same variant the hero's <source> picks.
    let preload = browser.eval(
        "(() => { const l = document.head.querySelector('link[rel=preload][as=image]'); \
         return l && [l.type, l.getAttribute('imagesizes'), l.fetchPriority]; })()",
    );
    assert_eq!(preload, json!(["image/avif", SIZES, "high"]));
    let hero = browser.eval(
        "(() => { const i = document.querySelector('img.hero'); \
         return [i.currentSrc, i.getAttribute('loading'), i.fetchPriority]; })()",
    );
    assert_eq!(
        hero,
        json!([site.url(HERO_AVIF), null, "high"]),
        "the hero shows the 640w AVIF, not lazily, at high priority"
    );

    // 1 and 5. The load event waited for every eager image: one request for the hero
    // though both the preload and the <img> want it, of the 640w AVIF; no original JPEG,
    // no WebP, and (2) nothing yet of the image below the fold.
    assert_eq!(site.image_requests(), [HERO_AVIF]);
    let fetched = browser.eval(
        "performance.getEntriesByType('resource').map(e => new URL(e.name).pathname)\
         .filter(p => p.startsWith('/static/img/'))",
    );
    assert_eq!(
        fetched,
        json!([HERO_AVIF]),
        "one fetch of the hero, memory cache included"
    );

    // 2. Scrolled to, the image below the fold is fetched: its 640w AVIF.
    browser.eval("window.scrollTo(0, document.body.scrollHeight)");
    assert!(
        poll(|| site.image_requests().len() >= 2),
        "the image below the fold was not fetched after scrolling to it: {:?}",
        site.image_requests()
    );
    assert!(
        browser.eval_until(
            "(() => { const i = document.querySelector('img.below'); \
             return i.complete && i.naturalWidth > 0; })()"
        ),
        "the image below the fold did not load"
    );
    assert_eq!(site.image_requests(), [HERO_AVIF, BELOW_AVIF]);
}

#[test]
fn images_arriving_late_shift_nothing_and_keep_to_a_strict_csp() {
    let site = Site::start();
    let mut browser = Browser::launch();
    browser.call("Log.enable", json!({}));

    // The control: the text under an <img> of unknown size moves when the image arrives,
    // and the inline style is refused, both in the page and on the console.
    browser.navigate(&site.url("/control"));
    assert!(
        browser.eval_until("window.probe.cls() > 0"),
        "no layout shift measured on the control page: the measure cannot fail"
    );
    let refused = browser.eval("window.probe.violations()");
    assert!(
        refused.as_array().is_some_and(|v| !v.is_empty()),
        "the inline style of the control page was not refused: {refused}"
    );
    let problems = console_problems(&mut browser);
    assert!(
        problems
            .iter()
            .any(|e| e.to_string().contains("Content Security Policy")),
        "the control page's CSP violation did not reach the console: {problems:#?}"
    );
    site.forget_requests();

    // The page of `image!` pictures: the hero arrives after the first paint, into the
    // box its width and height reserved; so does the image below, once scrolled to.
    browser.navigate(&site.url("/"));
    assert!(
        browser.eval_until(
            "(() => { const i = document.querySelector('img.hero'); \
             return /(^| )perf-ph-/.test(i.className) && i.classList.contains('perf-loaded') \
             && getComputedStyle(i).backgroundImage === 'none'; })()"
        ),
        "the hero has no placeholder class, or kept its placeholder once loaded: {}",
        browser.eval(
            "(() => { const i = document.querySelector('img.hero'); \
             return [i.className, i.complete, getComputedStyle(i).backgroundImage.slice(0, 40)]; })()"
        )
    );
    // Not loaded yet, the image below the fold shows its placeholder.
    let below = browser.eval(
        "(() => { const i = document.querySelector('img.below'); \
         return [i.complete, i.classList.contains('perf-loaded'), \
         getComputedStyle(i).backgroundImage.startsWith('url(\"data:')]; })()",
    );
    assert_eq!(
        below,
        json!([false, false, true]),
        "[complete, perf-loaded, placeholder painted] of the image below the fold"
    );
    browser.eval("window.scrollTo(0, document.body.scrollHeight)");
    assert!(
        browser.eval_until(ALL_SETTLED),
        "not every image loaded and dropped its placeholder: {}",
        browser.eval(
            "Array.from(document.querySelectorAll('img.perf-img'), i => \
             [i.className, i.complete, getComputedStyle(i).backgroundImage.slice(0, 40)])"
        )
    );
    assert_eq!(site.image_requests(), [HERO_AVIF, BELOW_AVIF]);
    browser.eval(TWO_FRAMES);
    assert_eq!(browser.eval("window.probe.cls()"), json!(0));
    assert_eq!(browser.eval("window.probe.violations()"), json!([]));
    assert_eq!(console_problems(&mut browser), Vec::<Value>::new());
}
