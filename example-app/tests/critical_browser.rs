//! Critical CSS in a real headless Chromium (1000×800), on every page of the app as it
//! ships (the binary alone in an empty folder, its strict Content-Security-Policy on):
//!
//! - with the full stylesheets blocked, every element above the fold has the same
//!   computed style as with them (and a control, the same page with its critical CSS
//!   taken out, differs: the comparison can fail);
//! - nothing moves when the full stylesheets arrive after the first paint (a control page
//!   whose critical CSS is dropped does move: the measure can fail);
//! - the policy refuses nothing and the console shows no error.
//!
//! Chromium is required (see `tests/tests/common/browser.rs`, shared with this file).

#[allow(dead_code)]
#[path = "../../tests/tests/common/browser.rs"]
mod browser;
mod common;

use browser::Browser;
use serde_json::{Value, json};

/// The pages: every template with critical CSS.
const PAGES: &[&str] = &[
    "/",
    "/journal",
    "/reflections/new",
    "/reflections/1",
    "/settings",
    "/about",
    "/no-such-page",
];

/// Records layout shifts and CSP violations from the start of each page (a script the
/// DevTools protocol adds, which the page's policy does not apply to). With
/// `window.__perfDropCritical` set before it runs, it also removes the page's critical
/// CSS the moment the parser adds it: the control.
const PROBE: &str = r#"(() => {
  const shifts = [];
  const violations = [];
  new PerformanceObserver((list) => shifts.push(...list.getEntries()))
    .observe({ type: "layout-shift", buffered: true });
  document.addEventListener("securitypolicyviolation", (e) =>
    violations.push(`${e.effectiveDirective} ${e.blockedURI}`));
  if (window.__perfDropCritical) {
    new MutationObserver(() => {
      for (const s of document.querySelectorAll("style[data-perf-critical]")) s.remove();
    }).observe(document, { childList: true, subtree: true });
  }
  const settled = () => {
    const parsed = performance.getEntriesByType("navigation")[0]?.domInteractive ?? 0;
    return shifts.filter((e) => !e.hadRecentInput && e.startTime >= parsed);
  };
  window.__probe = {
    // Shifts once the parser is done: the deferred stylesheets apply after it, and an
    // element that grows while its markup is still arriving in pieces (the throttled
    // network, a busy machine) is not the stylesheets' doing.
    cls: () => settled().reduce((a, e) => a + e.value, 0),
    // What moved, for the message of a failure.
    moved: () => settled().flatMap((e) => (e.sources || []).map((s) =>
      `${e.value.toFixed(5)} ${s.node && s.node.outerHTML ? s.node.outerHTML.slice(0, 120) : "?"} ${JSON.stringify(s.previousRect)} -> ${JSON.stringify(s.currentRect)}`)),
    violations: () => violations,
  };
})();"#;

/// The computed style of every element whose box starts above the fold, by its index in
/// document order, and of `html`; transitions are settled first.
const SNAPSHOT: &str = r#"(() => {
  const all = [...document.querySelectorAll("*")];
  const out = {};
  all.forEach((el, i) => {
    const r = el.getBoundingClientRect();
    // Not rendered (a closed <select>'s options, display: none) or below the fold.
    if (r.top >= innerHeight || el.closest("head") || (r.width === 0 && r.height === 0)) return;
    const cs = getComputedStyle(el);
    const style = { "(below the fold)": r.bottom > innerHeight };
    for (const p of cs) style[p] = cs.getPropertyValue(p);
    out[`${i} ${el.tagName.toLowerCase()}${el.className && typeof el.className === "string" ? "." + el.className.trim().split(/\s+/).join(".") : ""}`] = style;
  });
  return out;
})()"#;

/// The used sizes of a box that reaches below the fold (`html`, `body`, `main`) depend on
/// the content down there, which the full stylesheet styles: its visible part is compared
/// through its own styles and those of the elements above the fold.
const GEOMETRY: &[&str] = &[
    "height",
    "block-size",
    "perspective-origin",
    "transform-origin",
    "grid-template-rows",
];

/// Custom properties that no kept rule uses are left out of the critical CSS on purpose:
/// they style nothing.
fn comparable(style: &Value, property: &str) -> bool {
    property != "(below the fold)"
        && !property.starts_with("--")
        && !(style["(below the fold)"] == json!(true) && GEOMETRY.contains(&property))
}

/// Elements whose computed style differs between two snapshots, with the properties.
fn differences(full: &Value, critical: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for (element, style) in full.as_object().unwrap() {
        let Some(other) = critical.get(element) else {
            out.push(format!(
                "{element}: not above the fold with critical CSS only"
            ));
            continue;
        };
        // Without a background image, its position, size and repeat draw nothing (a
        // loaded picture's placeholder is gone; only the full stylesheet says where it sat).
        let no_image = style["background-image"] == json!("none")
            && other["background-image"] == json!("none");
        for (property, value) in style.as_object().unwrap() {
            let invisible = no_image
                && [
                    "background-position",
                    "background-size",
                    "background-repeat",
                ]
                .iter()
                .any(|p| property.starts_with(p));
            if comparable(style, property) && !invisible && other.get(property) != Some(value) {
                out.push(format!(
                    "{element} {property}: {value} with the full stylesheet, {} with critical CSS only",
                    other.get(property).unwrap_or(&Value::Null)
                ));
            }
        }
    }
    out
}

fn start_app() -> (common::App, tempfile::TempDir) {
    // One copy-then-start at a time: a start in another thread between the copy's open
    // and close would inherit the open file, and exec would fail with "text file busy".
    static SPAWN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("inner-architect");
    std::fs::copy(env!("CARGO_BIN_EXE_example-app"), &bin).unwrap();
    (common::spawn(&bin, dir.path(), &[]), dir)
}

/// Loads `url` with the probe (and the control's flag), then waits until the deferred
/// stylesheets are applied (or, when they are blocked, until the page settles) and the
/// images above the fold have loaded.
fn load(b: &mut Browser, url: &str, drop_critical: bool, stylesheets_blocked: bool) {
    let flag = b.call(
        "Page.addScriptToEvaluateOnNewDocument",
        json!({ "source": format!("window.__perfDropCritical = {drop_critical};") }),
    );
    let probe = b.call(
        "Page.addScriptToEvaluateOnNewDocument",
        json!({ "source": PROBE }),
    );
    b.navigate(url);
    if !stylesheets_blocked {
        assert!(
            b.eval_until("document.querySelectorAll('link[data-perf-defer]').length === 0"),
            "{url}: the loader did not apply the deferred stylesheets"
        );
    }
    assert!(
        b.eval_until(
            "[...document.images].filter((i) => i.getBoundingClientRect().top < innerHeight && i.loading !== 'lazy').every((i) => i.complete)"
        ),
        "{url}: the images above the fold did not load"
    );
    b.eval("document.fonts.ready.then(() => new Promise((r) => setTimeout(r, 300)))");
    for id in [flag, probe] {
        b.call(
            "Page.removeScriptToEvaluateOnNewDocument",
            json!({ "identifier": id["identifier"] }),
        );
    }
}

#[test]
fn above_the_fold_styles_come_from_the_critical_css_alone() {
    let (app, _dir) = start_app();
    let mut b = Browser::launch();
    b.call("Network.enable", json!({}));
    // Every load from the network: a cached stylesheet would slip past the block, and
    // would arrive before the first paint.
    b.call("Network.setCacheDisabled", json!({ "cacheDisabled": true }));
    b.call("Log.enable", json!({}));
    for page in PAGES {
        let url = format!("http://{}{page}", app.addr);

        // The page as it ships: the full stylesheets arrive and apply.
        b.call("Network.setBlockedURLs", json!({ "urls": [] }));
        b.events.clear();
        load(&mut b, &url, false, false);
        let html = b.eval("document.documentElement.outerHTML");
        let html = html.as_str().unwrap();
        assert!(
            html.contains("<style nonce=") && html.contains("data-perf-critical="),
            "{page}: no critical CSS with a nonce in the page"
        );
        assert!(
            !html.contains(" onload="),
            "{page}: an inline event handler"
        );
        let violations = b.eval("window.__probe.violations()");
        assert_eq!(violations, json!([]), "{page}: the CSP refused something");
        let errors: Vec<&Value> = b
            .events
            .iter()
            .filter(|e| {
                (e["method"] == "Log.entryAdded" && e["params"]["entry"]["level"] == "error")
                    || (e["method"] == "Runtime.consoleAPICalled" && e["params"]["type"] == "error")
                    || e["method"] == "Runtime.exceptionThrown"
            })
            .collect();
        // The 404 page's own status is logged as a failed load: nothing else may be.
        let errors: Vec<&&Value> = errors
            .iter()
            .filter(|e| {
                !(page == &"/no-such-page"
                    && e["params"]["entry"]["url"].as_str() == Some(url.as_str()))
            })
            .collect();
        assert!(errors.is_empty(), "{page}: console errors: {errors:#?}");
        let full = b.eval(SNAPSHOT);
        assert!(
            full.as_object().unwrap().len() > 5,
            "{page}: too few elements above the fold: {full}"
        );

        // The full stylesheets blocked: only the critical CSS styles the page.
        b.call(
            "Network.setBlockedURLs",
            json!({ "urls": ["*/static/css/*", "*/static/_perf/images.*"] }),
        );
        load(&mut b, &url, false, true);
        assert_eq!(
            // A blocked stylesheet stays in the list, with no rules to read.
            b.eval("[...document.styleSheets].filter((s) => { try { return s.href && s.cssRules.length > 0; } catch (e) { return false; } }).map((s) => s.href)"),
            json!([]),
            "{page}: a full stylesheet was not blocked"
        );
        let critical = b.eval(SNAPSHOT);
        let diff = differences(&full, &critical);
        assert!(
            diff.is_empty(),
            "{page}: {} differences above the fold with critical CSS only:\n{}",
            diff.len(),
            diff.join("\n")
        );

        // Control: the same, without the critical CSS, differs.
        b.eval("document.querySelector('style[data-perf-critical]').remove()");
        let bare = b.eval(SNAPSHOT);
        assert!(
            differences(&full, &bare).len() > 10,
            "{page}: the comparison cannot tell a page without its critical CSS"
        );
    }
}

#[test]
fn nothing_moves_when_the_full_stylesheets_arrive() {
    let (app, _dir) = start_app();
    let mut b = Browser::launch();
    b.call("Network.enable", json!({}));
    // Every load from the network: a cached stylesheet would slip past the block, and
    // would arrive before the first paint.
    b.call("Network.setCacheDisabled", json!({ "cacheDisabled": true }));
    // Every response a round trip late: the first paint, with the critical CSS only,
    // comes well before the deferred stylesheets apply.
    b.call(
        "Network.emulateNetworkConditions",
        json!({ "offline": false, "latency": 150, "downloadThroughput": 200_000, "uploadThroughput": 100_000 }),
    );
    for page in PAGES {
        let url = format!("http://{}{page}", app.addr);
        load(&mut b, &url, false, false);
        let cls = b.eval("window.__probe.cls()").as_f64().unwrap();
        assert_eq!(
            cls,
            0.0,
            "{page}: layout shift {cls} as the stylesheets arrived: {}",
            b.eval("window.__probe.moved()")
        );
    }
    // Control: without its critical CSS the landing page paints unstyled, then moves.
    let url = format!("http://{}/", app.addr);
    load(&mut b, &url, true, false);
    let cls = b.eval("window.__probe.cls()").as_f64().unwrap();
    assert!(
        cls > 0.05,
        "the control did not shift ({cls}): the measure cannot fail"
    );
}
