//! Development mode (`PERF_DEV=1`, debug builds): an edit to a stylesheet shows in the
//! open page without a reload and without rebuilding the binary, an edit to a script
//! reloads the page, a build error shows over the page until it is fixed, and pages and
//! assets follow the latest files. Each test edits a copy of the package
//! (`PERF_DEV_ROOT`), never the repository's files.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[allow(dead_code)]
#[path = "../../tests/tests/common/browser.rs"]
mod browser;
mod common;

const PACKAGE: &str = env!("CARGO_MANIFEST_DIR");

/// A copy of the package's assets, templates and asset settings: what the development
/// build reads.
struct Copy {
    dir: tempfile::TempDir,
}

impl Copy {
    fn new() -> Copy {
        let dir = tempfile::tempdir().unwrap();
        let from = Path::new(PACKAGE);
        for sub in ["static", "templates"] {
            copy_tree(&from.join(sub), &dir.path().join(sub));
        }
        for file in ["package.json", "package-lock.json"] {
            std::fs::copy(from.join(file), dir.path().join(file)).unwrap();
            // With the original's time: a lock newer than the installed packages would have
            // the build run `npm ci`, which empties node_modules, here the real one.
            let modified = std::fs::metadata(from.join(file))
                .unwrap()
                .modified()
                .unwrap();
            std::fs::File::options()
                .write(true)
                .open(dir.path().join(file))
                .unwrap()
                .set_modified(modified)
                .unwrap();
        }
        // The npm packages the scripts import, as installed for the real build.
        #[cfg(unix)]
        std::os::unix::fs::symlink(from.join("node_modules"), dir.path().join("node_modules"))
            .unwrap();
        // The package's `[package.metadata.perf…]` tables, in a package of its own.
        let manifest = std::fs::read_to_string(from.join("Cargo.toml")).unwrap();
        let mut perf = String::new();
        let mut inside = false;
        for line in manifest.lines() {
            if line.starts_with('[') {
                inside = line.starts_with("[package.metadata.perf");
            }
            if inside {
                perf.push_str(line);
                perf.push('\n');
            }
        }
        assert!(perf.contains("[package.metadata.perf.budgets]"), "{perf}");
        std::fs::write(
            dir.path().join("Cargo.toml"),
            format!(
                "[package]\nname = \"example-app\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[workspace]\n\n{perf}"
            ),
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join("src")).unwrap();
        std::fs::write(dir.path().join("src/lib.rs"), "").unwrap();
        Copy { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn append(&self, rel: &str, text: &str) {
        let mut body = std::fs::read_to_string(self.path(rel)).unwrap();
        body.push_str(text);
        std::fs::write(self.path(rel), body).unwrap();
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The binary on the copy (`PERF_DEV` set to `dev`), in an empty folder of its own.
fn start(copy: &Copy, dev: &str) -> (common::App, tempfile::TempDir) {
    let run = tempfile::tempdir().unwrap();
    let root = copy.dir.path().to_str().unwrap().to_string();
    let app = common::spawn(
        Path::new(env!("CARGO_BIN_EXE_example-app")),
        run.path(),
        &[("PERF_DEV", dev), ("PERF_DEV_ROOT", &root)],
    );
    (app, run)
}

/// Polls `expression` until it is true (20 s at most), through reloads: an evaluation
/// that fails while the page navigates counts as false.
fn until(b: &mut browser::Browser, expression: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let r = b.try_call(
            "Runtime.evaluate",
            serde_json::json!({ "expression": expression, "returnByValue": true }),
        );
        if r.is_ok_and(|r| r["result"]["value"] == serde_json::json!(true)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

fn get(url: &str) -> reqwest::blocking::Response {
    reqwest::blocking::get(url).unwrap()
}

/// The `href` of the page's first `<link rel="stylesheet">` of `css/app.css`.
fn app_css_href(page: &str) -> String {
    page.split("href=\"")
        .skip(1)
        .map(|s| &s[..s.find('"').unwrap()])
        .find(|h| h.starts_with("/static/css/app.") && h.ends_with(".css"))
        .unwrap_or_else(|| panic!("no css/app.css link in {page}"))
        .to_string()
}

#[test]
fn an_edit_shows_in_the_open_page_without_rebuilding_the_binary() {
    let copy = Copy::new();
    let (app, _run) = start(&copy, "1");
    let base = format!("http://{}", app.addr);

    // The page links what the embedded build has, until something changes; the client
    // script comes with the page's CSP nonce.
    let page = get(&format!("{base}/")).text().unwrap();
    assert!(
        page.contains("/static/_perf/dev/client.js\" data-instance="),
        "{page}"
    );
    let nonce = page
        .split(" nonce=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    assert!(page.contains(&format!(
        "data-generation=\"1\" defer nonce=\"{nonce}\"></script></head>"
    )));
    let embedded = app_css_href(&page);
    let res = get(&format!("{base}{embedded}"));
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-cache");
    let client = get(&format!("{base}/static/_perf/dev/client.js"));
    assert_eq!(client.status(), 200);
    assert!(client.text().unwrap().contains("EventSource"));

    let mut b = browser::Browser::launch();
    b.navigate(&format!("{base}/"));
    assert!(b.eval_until("document.querySelector('style[data-perf-critical]') !== null"));
    b.eval("window.__perfDevMarker = 1");
    let before = b.eval("getComputedStyle(document.body).backgroundColor");

    // A stylesheet: swapped in place, no reload; the inline critical CSS goes.
    let started = Instant::now();
    copy.append(
        "static/css/app.css",
        "\nbody { background-color: rgb(1, 2, 3); }\n",
    );
    assert!(
        until(
            &mut b,
            "getComputedStyle(document.body).backgroundColor === 'rgb(1, 2, 3)'"
        ),
        "the edit did not show; background {before}"
    );
    eprintln!("stylesheet edit visible after {:?}", started.elapsed());
    assert_eq!(
        b.eval("window.__perfDevMarker"),
        serde_json::json!(1),
        "the page reloaded"
    );
    assert_eq!(
        b.eval("document.querySelectorAll('style[data-perf-critical]').length"),
        0
    );
    let href = b.eval("[...document.querySelectorAll('link[rel=stylesheet]')].map(l => l.getAttribute('href')).find(h => h.startsWith('/static/css/app.'))");
    let href = href.as_str().unwrap().to_string();
    assert_ne!(href, embedded);

    // A page loaded now links the new file, with its integrity, and inlines the new
    // critical CSS; the old URL serves the new bytes too (no-cache).
    let page = get(&format!("{base}/")).text().unwrap();
    assert_eq!(app_css_href(&page), href);
    let generation: u64 = page
        .split("data-generation=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .and_then(|g| g.parse().ok())
        .unwrap();
    assert!(generation > 1, "{generation}");
    let new_css = get(&format!("{base}{href}")).text().unwrap();
    assert!(
        new_css.contains("rgb(1,2,3)") || new_css.contains("#010203"),
        "{new_css}"
    );
    assert_eq!(get(&format!("{base}{embedded}")).text().unwrap(), new_css);
    b.navigate(&format!("{base}/"));
    // Subresource Integrity holds: the browser applied the stylesheet.
    assert!(b.eval_until("getComputedStyle(document.body).backgroundColor === 'rgb(1, 2, 3)'"));

    // A script: the page reloads and runs the new code.
    b.eval("window.__perfDevMarker = 1");
    let started = Instant::now();
    copy.append(
        "static/js/site.js",
        "\ndocument.documentElement.dataset.devProbe = \"2\";\n",
    );
    assert!(
        until(
            &mut b,
            "document.documentElement?.dataset.devProbe === '2' && window.__perfDevMarker === undefined"
        ),
        "the script edit did not reload the page"
    );
    eprintln!("script edit visible after {:?}", started.elapsed());

    // A syntax error: shown over the page, with the file, line and column; the page keeps
    // the last good build. Fixed, the error goes and the page follows.
    let good = std::fs::read_to_string(copy.path("static/css/app.css")).unwrap();
    let line = good.lines().count() + 3;
    copy.append("static/css/app.css", "\n.broken {\n  color: {\n}\n");
    assert!(until(
        &mut b,
        "document.getElementById('perf-dev-error') !== null"
    ));
    let shown = b.eval("document.getElementById('perf-dev-error').textContent");
    let shown = shown.as_str().unwrap();
    assert!(
        shown.contains(&format!("static/css/app.css:{line}:")),
        "{shown}"
    );
    assert!(shown.contains("color: {"), "{shown}");
    assert_eq!(get(&format!("{base}{href}")).text().unwrap(), new_css);
    // A page loaded meanwhile shows the error too.
    b.navigate(&format!("{base}/"));
    assert!(until(
        &mut b,
        "document.getElementById('perf-dev-error') !== null"
    ));
    std::fs::write(
        copy.path("static/css/app.css"),
        good.replace("rgb(1, 2, 3)", "rgb(4, 5, 6)"),
    )
    .unwrap();
    assert!(until(
        &mut b,
        "document.getElementById('perf-dev-error') === null && \
         getComputedStyle(document.body).backgroundColor === 'rgb(4, 5, 6)'"
    ));

    // A new image under static/ is served at once (a URL the embedded build never had).
    std::fs::copy(
        copy.path("static/img/logo.svg"),
        copy.path("static/img/new-logo.svg"),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if get(&format!("{base}/static/img/new-logo.svg")).status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the new file was never served");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn without_perf_dev_the_binary_serves_what_it_embedded() {
    let copy = Copy::new();
    copy.append(
        "static/css/app.css",
        "\nbody { background-color: rgb(1, 2, 3); }\n",
    );
    let (app, _run) = start(&copy, "0");
    let base = format!("http://{}", app.addr);
    let page = get(&format!("{base}/")).text().unwrap();
    assert!(!page.contains("_perf/dev"), "{page}");
    let href = app_css_href(&page);
    let res = get(&format!("{base}{href}"));
    assert!(
        res.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    assert!(!res.text().unwrap().contains("rgb(1,2,3)"));
    assert_eq!(
        get(&format!("{base}/static/_perf/dev/events")).status(),
        404
    );
}

/// Pages and stylesheets fetched from several threads while edits are built: every page
/// links a stylesheet that is served (no 404 between two builds), and a page fetched after
/// an edit's build names a stylesheet with that edit. Then the build process dies: the
/// server keeps serving the last good build and says why on the event stream.
#[test]
fn concurrent_readers_during_builds_and_a_build_process_that_dies() {
    let copy = Copy::new();
    let (app, _run) = start(&copy, "1");
    let base = format!("http://{}", app.addr);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let checked = std::sync::atomic::AtomicUsize::new(0);
    // Stops the readers however the scope ends (a failed assertion included).
    struct Stop<'a>(&'a std::sync::atomic::AtomicBool);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            self.0.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
    std::thread::scope(|scope| {
        let _stop = Stop(&stop);
        for _ in 0..4 {
            scope.spawn(|| {
                let client = reqwest::blocking::Client::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let page = client.get(format!("{base}/journal")).send().unwrap();
                    assert_eq!(page.status(), 200);
                    let href = app_css_href(&page.text().unwrap());
                    let css = client.get(format!("{base}{href}")).send().unwrap();
                    assert_eq!(css.status(), 200, "{href}");
                    assert!(!css.text().unwrap().is_empty(), "{href}");
                    checked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            });
        }
        for i in 0..5u8 {
            let colour = format!("rgb({i}, 200, 100)");
            copy.append(
                "static/css/app.css",
                &format!("\nbody {{ color: {colour}; }}\n"),
            );
            // A page fetched once the edit is built links a stylesheet that has it (the
            // minifier writes the colour in hex).
            let minified = format!("#{i:02x}c864");
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let href = app_css_href(&get(&format!("{base}/journal")).text().unwrap());
                let css = get(&format!("{base}{href}")).text().unwrap();
                if css.contains(&minified) || css.contains(&colour) {
                    break;
                }
                assert!(Instant::now() < deadline, "edit {i} never reached a page");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    });
    assert!(checked.into_inner() > 10);

    // The build process is the application's child; killed, it is reported, and the last
    // good build is still served.
    let children =
        std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", app.child.id())).unwrap();
    let builder: i32 = children.split_whitespace().next().unwrap().parse().unwrap();
    let events = std::thread::spawn({
        let url = format!("{base}/static/_perf/dev/events");
        move || {
            let mut res = reqwest::blocking::get(url).unwrap();
            let mut seen = String::new();
            let mut buf = [0u8; 4096];
            while !seen.contains("event: build-error") {
                let n = std::io::Read::read(&mut res, &mut buf).unwrap();
                assert!(n > 0, "the stream ended: {seen}");
                seen.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
            seen
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        std::process::Command::new("kill")
            .args(["-9", &builder.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let seen = events.join().unwrap();
    assert!(seen.contains("the development build stopped"), "{seen}");
    let page = get(&format!("{base}/journal"));
    assert_eq!(page.status(), 200);
    let href = app_css_href(&page.text().unwrap());
    let css = get(&format!("{base}{href}"));
    assert_eq!(css.status(), 200);
    assert!(css.text().unwrap().contains("#04c864"));
}
