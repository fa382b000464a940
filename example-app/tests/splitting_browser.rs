//! Code splitting in a real headless Chromium, on the app as it ships (the binary alone in
//! an empty folder, its strict Content-Security-Policy on, every response from the
//! network):
//!
//! - each page requests its entry and exactly the chunks its first load needs (what
//!   `ASSETS.modulepreload_tags` and the import graph say), each once, the preloaded ones
//!   in parallel with the entry rather than after it; no feature, no other page's entry;
//! - the coach feature's chunk and stylesheet are requested only when its button is
//!   clicked, once however often it is clicked, and its dialog shows the server's prompts;
//! - hovering the settings button preloads its chunk without running it; the dark theme it
//!   applies changes the computed style and survives a reload;
//! - dates read as relative text ("3 days ago");
//! - no console error, no failed request, no CSP violation on any of it.
//!
//! Chromium is required (see `tests/tests/common/browser.rs`, shared with this file).

#[allow(dead_code)]
#[path = "../../tests/tests/common/browser.rs"]
mod browser;
mod common;

use std::collections::BTreeSet;

use browser::Browser;
use example_app::ASSETS;
use serde_json::{Value, json};

/// Records CSP violations from the start of each page (a script the DevTools protocol
/// adds, which the page's policy does not apply to).
const PROBE: &str = r#"(() => {
  const violations = [];
  document.addEventListener("securitypolicyviolation", (e) =>
    violations.push(`${e.effectiveDirective} ${e.blockedURI}`));
  window.__violations = () => violations;
})();"#;

/// The app, started from a copy of its binary in an empty folder, and a browser with the
/// network, console and log domains on, the HTTP cache off and the probe installed.
struct Session {
    b: Browser,
    origin: String,
    _app: common::App,
    _dir: tempfile::TempDir,
}

fn start() -> Session {
    // One copy-then-start at a time: a start in another thread between the copy's open
    // and close would inherit the open file, and exec would fail with "text file busy".
    static SPAWN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let (app, dir) = {
        let _one = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("inner-architect");
        std::fs::copy(env!("CARGO_BIN_EXE_example-app"), &bin).unwrap();
        (common::spawn(&bin, dir.path(), &[]), dir)
    };
    let mut b = Browser::launch();
    b.call("Network.enable", json!({}));
    // Every load from the network: a request the test counts is a request made.
    b.call("Network.setCacheDisabled", json!({ "cacheDisabled": true }));
    b.call("Log.enable", json!({}));
    b.call(
        "Page.addScriptToEvaluateOnNewDocument",
        json!({ "source": PROBE }),
    );
    Session {
        b,
        origin: format!("http://{}", app.addr),
        _app: app,
        _dir: dir,
    }
}

/// One request the page made.
#[derive(Debug, Clone)]
struct Request {
    id: String,
    url: String,
    /// `parser` for a link or script in the HTML, `script` for one a script made.
    initiator: String,
    /// Seconds, on the same clock as [`response_time`].
    sent: f64,
}

impl Session {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin)
    }

    /// Loads `path` and waits until the app's script has run (`data-app-ready`) and the
    /// deferred stylesheets are applied.
    fn open(&mut self, path: &str) {
        let url = self.url(path);
        self.b.navigate(&url);
        self.wait_ready(path);
    }

    fn wait_ready(&mut self, path: &str) {
        assert!(
            self.b
                .eval_until("document.documentElement.dataset.appReady === 'true'"),
            "{path}: the page's entry did not run"
        );
        assert!(
            self.b
                .eval_until("document.querySelectorAll('link[data-perf-defer]').length === 0"),
            "{path}: the deferred stylesheets were not applied"
        );
    }

    /// Every request since the events were last cleared, in order.
    fn requests(&self) -> Vec<Request> {
        self.b
            .events
            .iter()
            .filter(|e| e["method"] == "Network.requestWillBeSent")
            .map(|e| {
                let p = &e["params"];
                Request {
                    id: p["requestId"].as_str().unwrap().to_string(),
                    url: p["request"]["url"].as_str().unwrap().to_string(),
                    initiator: p["initiator"]["type"].as_str().unwrap_or("").to_string(),
                    sent: p["timestamp"].as_f64().unwrap(),
                }
            })
            .collect()
    }

    /// The logical paths of the embedded assets requested, once per request.
    fn requested_assets(&self) -> Vec<&'static str> {
        self.requests()
            .iter()
            .filter_map(|r| logical(r.url.strip_prefix(&self.origin)?))
            .collect()
    }

    /// When the response to `request` arrived.
    fn response_time(&self, request: &Request) -> f64 {
        self.b
            .events
            .iter()
            .find(|e| {
                e["method"] == "Network.responseReceived" && e["params"]["requestId"] == *request.id
            })
            .and_then(|e| e["params"]["timestamp"].as_f64())
            .unwrap_or_else(|| panic!("no response to {}", request.url))
    }

    /// No console error, uncaught exception, log error, failed request, HTTP error or CSP
    /// violation since the events were last cleared.
    fn assert_clean(&mut self, what: &str) {
        let problems: Vec<&Value> = self
            .b
            .events
            .iter()
            .filter(|e| {
                let p = &e["params"];
                (e["method"] == "Log.entryAdded" && p["entry"]["level"] == "error")
                    || (e["method"] == "Runtime.consoleAPICalled" && p["type"] == "error")
                    || e["method"] == "Runtime.exceptionThrown"
                    || e["method"] == "Network.loadingFailed"
                    || (e["method"] == "Network.responseReceived"
                        && p["response"]["status"].as_u64().unwrap_or(0) >= 400)
            })
            .collect();
        assert!(problems.is_empty(), "{what}: {problems:#?}");
        let violations = self.b.eval("window.__violations()");
        assert_eq!(violations, json!([]), "{what}: the CSP refused something");
    }

    /// Waits until nothing is in flight for a while (idle-time preloads included).
    fn settle(&mut self) {
        self.b.eval(
            "new Promise((r) => requestIdleCallback(() => setTimeout(r, 400), { timeout: 3000 }))",
        );
    }
}

/// The logical path of an embedded asset's URL path (`/static/js/site.ff66bd18.js`).
fn logical(url_path: &str) -> Option<&'static str> {
    ASSETS.iter().find(|a| a.url == url_path).map(|a| a.path)
}

/// The logical paths a module needs before it runs, itself excluded: its static imports,
/// directly or not, from the build's import graph.
fn static_closure(entry: &str) -> BTreeSet<&'static str> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<&str> = ASSETS.get(entry).unwrap().imports.to_vec();
    while let Some(m) = todo.pop() {
        let asset = ASSETS
            .get(m)
            .unwrap_or_else(|| panic!("{entry} imports {m}"));
        if seen.insert(asset.path) {
            todo.extend(asset.imports.iter().copied());
        }
    }
    seen
}

/// The logical paths of `<link rel="modulepreload" href>`s in `html`.
fn preloaded(html: &str) -> BTreeSet<&'static str> {
    html.split("<link rel=\"modulepreload\" href=\"")
        .skip(1)
        .map(|rest| {
            let href = &rest[..rest.find('"').unwrap()];
            logical(href).unwrap_or_else(|| panic!("{href} is no asset"))
        })
        .collect()
}

const ENTRIES: [&str; 3] = ["js/journal.js", "js/reflection.js", "js/site.js"];

#[test]
fn each_page_requests_exactly_its_entrys_chunks_the_preloaded_ones_alongside_it() {
    let mut s = start();
    // Every response a round trip late: a chunk found only once the entry has arrived
    // would be requested visibly later than the entry's response.
    s.b.call(
        "Network.emulateNetworkConditions",
        json!({ "offline": false, "latency": 150, "downloadThroughput": -1, "uploadThroughput": -1 }),
    );
    for (path, entry) in [
        ("/", "js/journal.js"),
        ("/journal", "js/journal.js"),
        ("/reflections/new", "js/journal.js"),
        ("/reflections/1", "js/reflection.js"),
        ("/settings", "js/site.js"),
        ("/about", "js/site.js"),
    ] {
        s.open(path);
        // The landing page loads its mood history (a split point, with uPlot from npm)
        // once it has run; the uPlot chart draws on canvases.
        let chart = path == "/";
        if chart {
            // Below the fold (a 1000x800 window), it is not fetched until scrolled near.
            s.settle();
            assert!(
                !s.requested_assets().contains(&"js/features/mood-chart.js"),
                "{path}: the chart was fetched before it came into view"
            );
            s.b.eval("document.querySelector('[data-mood-chart]').scrollIntoView()");
            assert!(
                s.b.eval_until(
                    "!!document.querySelector('[data-mood-chart] canvas') && Number(document.querySelector('[data-mood-chart]').dataset.rendered) > 10"
                ),
                "{path}: the mood chart was not drawn"
            );
        }
        s.settle();

        // What <head> preloads is what the server says the entry needs, which is the
        // entry's static import graph; at least the shared chunk.
        let html = s.b.eval("document.head.outerHTML");
        let head_preloads = preloaded(html.as_str().unwrap());
        let first_load = static_closure(entry);
        assert_eq!(head_preloads, first_load, "{path}");
        assert_eq!(
            preloaded(&ASSETS.modulepreload_tags(entry)),
            first_load,
            "{path}"
        );
        assert!(
            first_load.iter().any(|c| c.starts_with("_perf/chunks/")),
            "{path}: {first_load:?}"
        );

        // The scripts requested: the page's classic ones (perf-build's image optimizer
        // and stylesheet loader), the entry, its first load, and on the journal the chart
        // and what it imports. Never a feature, never another page's entry, none twice.
        let requested: Vec<&str> = s
            .requested_assets()
            .into_iter()
            .filter(|p| p.ends_with(".js"))
            .collect();
        let unique: BTreeSet<&str> = requested.iter().copied().collect();
        assert_eq!(
            unique.len(),
            requested.len(),
            "{path}: twice: {requested:?}"
        );
        let classic = s.b.eval(
            "[...document.scripts].filter((e) => e.src && e.type !== 'module').map((e) => new URL(e.src).pathname)",
        );
        let classic: BTreeSet<&str> = classic
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|u| logical(u.as_str().unwrap()))
            .collect();
        assert!(
            classic
                .iter()
                .all(|c| c.starts_with("_perf/") && !c.starts_with("_perf/chunks/")),
            "{path}: {classic:?}"
        );
        let mut expected: BTreeSet<&str> = first_load.clone();
        expected.insert(entry);
        expected.extend(classic);
        if chart {
            expected.insert("js/features/mood-chart.js");
            expected.extend(static_closure("js/features/mood-chart.js"));
        }
        assert_eq!(unique, expected, "{path}");
        for other in ENTRIES.iter().filter(|e| **e != entry) {
            // site.js's code is in the shared chunk; its own facade is not loaded.
            assert!(!unique.contains(other), "{path} loaded {other}");
        }
        assert!(
            !unique.iter().any(|p| p.starts_with("features/")),
            "{path}: {unique:?}"
        );

        // The preloaded chunks are requested by the HTML, alongside the entry: before the
        // entry's response is in. The chart, found by running the entry, is the control.
        let requests = s.requests();
        let find = |p: &str| {
            requests
                .iter()
                .find(|r| r.url == s.url(ASSETS.url(p).unwrap()))
                .unwrap_or_else(|| panic!("{path}: {p} not requested"))
                .clone()
        };
        let entry_arrived = s.response_time(&find(entry));
        for chunk in &first_load {
            let r = find(chunk);
            assert_eq!(r.initiator, "parser", "{path}: {chunk}");
            assert!(
                r.sent < entry_arrived,
                "{path}: {chunk} requested {:.0} ms after the entry arrived",
                (r.sent - entry_arrived) * 1000.0
            );
        }
        if chart {
            let r = find("js/features/mood-chart.js");
            assert_eq!(r.initiator, "script");
            assert!(r.sent > entry_arrived, "the control: the chart comes later");
        }
        s.assert_clean(path);
    }
}

#[test]
fn dates_read_as_relative_text() {
    let mut s = start();
    for path in ["/", "/reflections/1"] {
        s.open(path);
        let dates = s.b.eval(
            "[...document.querySelectorAll('time[data-epoch]')].map((t) => [t.dataset.epoch, t.textContent, t.title, t.dateTime])",
        );
        let dates = dates.as_array().unwrap();
        assert!(!dates.is_empty(), "{path}: no dates");
        for d in dates {
            let [epoch, text, title, datetime] =
                [0, 1, 2, 3].map(|i| d[i].as_str().unwrap().to_string());
            assert!(
                text.ends_with(" ago") && !text.contains(&epoch),
                "{path}: {d}"
            );
            // The exact date on hover, and machine-readable.
            assert!(!title.is_empty() && title != text, "{path}: {d}");
            let seconds: i64 = epoch.parse().unwrap();
            let iso =
                s.b.eval(&format!("new Date({seconds} * 1000).toISOString()"));
            assert_eq!(datetime, iso.as_str().unwrap(), "{path}");
        }
        s.assert_clean(path);
    }
}

#[test]
fn the_coach_feature_is_fetched_only_when_clicked_and_only_once() {
    let mut s = start();
    s.open("/");
    s.settle();
    let loaded = s.requested_assets();
    for feature in [
        "features/chat.js",
        "features/chat.css",
        "features/settings.js",
    ] {
        assert!(ASSETS.get(feature).is_some(), "{feature} is built");
        assert!(!loaded.contains(&feature), "{feature} before any click");
    }
    assert_eq!(
        s.b.eval("document.querySelectorAll('dialog').length"),
        json!(0)
    );
    s.assert_clean("/ before the click");

    let prompts = reqwest::blocking::get(s.url("/coach/prompts"))
        .unwrap()
        .bytes()
        .unwrap();
    let prompts: Value = serde_json::from_slice(&prompts).unwrap();
    let prompts = prompts["prompts"].clone();
    assert!(prompts.as_array().unwrap().len() >= 3, "{prompts}");

    const SHOWN: &str = "[...document.querySelectorAll('dialog.coach .coach-prompts li')].map((li) => li.textContent)";
    for click in 1..=2 {
        s.b.events.clear();
        s.b.click("button[data-perf-feature=\"chat\"]");
        assert!(
            s.b.eval_until(&format!(
                "!!document.querySelector('dialog.coach')?.open && JSON.stringify({SHOWN}) === {:?}",
                prompts.to_string()
            )),
            "click {click}: the coach shows {} rather than {prompts}",
            s.b.eval(SHOWN)
        );
        s.settle();
        let fetched = s.requested_assets();
        let prompt_requests = s
            .requests()
            .iter()
            .filter(|r| r.url == s.url("/coach/prompts"))
            .count();
        assert_eq!(prompt_requests, 1, "click {click}");
        if click == 1 {
            // The feature's chunk, its stylesheet and what it imports that the page has
            // not loaded yet; nothing else.
            let mut expected = BTreeSet::from(["features/chat.js", "features/chat.css"]);
            expected.extend(
                static_closure("features/chat.js")
                    .into_iter()
                    .filter(|m| !loaded.contains(m)),
            );
            assert_eq!(
                fetched.iter().copied().collect::<BTreeSet<_>>(),
                expected,
                "{fetched:?}"
            );
            assert_eq!(fetched.len(), expected.len(), "twice: {fetched:?}");
        } else {
            assert_eq!(fetched, Vec::<&str>::new(), "the second click");
        }
        // chat.css styles the dialog (the browser's own dialog has square corners).
        assert_eq!(
            s.b.eval(
                "getComputedStyle(document.querySelector('dialog.coach')).borderTopLeftRadius"
            ),
            json!("12px")
        );
        assert_eq!(
            s.b.eval("document.querySelectorAll('dialog.coach').length"),
            json!(1)
        );
        s.assert_clean(&format!("click {click}"));
        s.b.click("dialog.coach .coach-close");
        assert!(s.b.eval_until("!document.querySelector('dialog.coach').open"));
    }
}

#[test]
fn settings_preload_on_hover_and_their_dark_theme_survives_a_reload() {
    let mut s = start();
    s.open("/");
    s.settle();
    const BACKGROUND: &str = "getComputedStyle(document.body).backgroundColor";
    let light = s.b.eval(BACKGROUND);
    assert!(
        s.requested_assets()
            .iter()
            .all(|p| !p.starts_with("features/settings"))
    );

    // Hovering the button fetches the chunk without running it.
    s.b.events.clear();
    let at = s.b.eval(
        "(() => { const r = document.querySelector('button[data-perf-feature=\"settings\"]').getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()",
    );
    s.b.call(
        "Input.dispatchMouseEvent",
        json!({ "type": "mouseMoved", "x": at[0], "y": at[1] }),
    );
    assert!(
        s.b.eval_until(
            "performance.getEntriesByType('resource').some((e) => e.name.includes('/static/features/settings.') && e.name.endsWith('.js') && e.responseEnd > 0)"
        ),
        "hovering did not preload the settings chunk"
    );
    assert_eq!(
        s.b.eval("document.querySelector('dialog.settings')"),
        Value::Null,
        "a preload must not run the feature"
    );

    s.b.click("button[data-perf-feature=\"settings\"]");
    assert!(s.b.eval_until("!!document.querySelector('dialog.settings')?.open"));
    s.b.click("dialog.settings input[name=theme][value=dark]");
    assert!(
        s.b.eval_until("document.documentElement.dataset.theme === 'dark'"),
        "choosing Dark did not apply the theme"
    );
    let dark = s.b.eval(BACKGROUND);
    assert_ne!(dark, light, "the computed style did not change");
    assert_eq!(dark, json!("rgb(21, 26, 35)"));
    // Preloaded on hover, then imported: one request for the chunk in all.
    let settings_js: Vec<&str> = s
        .requested_assets()
        .into_iter()
        .filter(|p| *p == "features/settings.js")
        .collect();
    assert_eq!(settings_js.len(), 1, "{:?}", s.requested_assets());
    s.assert_clean("settings");
    s.b.click("dialog.settings form button");
    assert!(s.b.eval_until("!document.querySelector('dialog.settings').open"));

    // A reload: the saved theme is applied by the page's own entry, without the feature.
    s.open("/");
    s.settle();
    assert_eq!(
        s.b.eval("document.documentElement.dataset.theme"),
        json!("dark")
    );
    assert_eq!(s.b.eval(BACKGROUND), dark);
    assert!(
        !s.requested_assets().contains(&"features/settings.js"),
        "{:?}",
        s.requested_assets()
    );
    s.assert_clean("the reload");
}
