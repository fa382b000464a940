//! The binary alone in an empty folder serves every page and every asset those pages
//! use, creates its database there, and answers bad input with 4xx.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[allow(dead_code)]
#[path = "../../tests/tests/common/browser.rs"]
mod browser;
mod common;

/// An instance running alone in a new empty folder.
struct App {
    /// Held for its `Drop`, which stops the process.
    _process: common::App,
    addr: String,
    dir: tempfile::TempDir,
}

fn start() -> App {
    start_with(&[])
}

/// The binary copied alone into a new empty folder, started there with `env`.
fn start_with(env: &[(&str, &str)]) -> App {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("inner-architect");
    std::fs::copy(env!("CARGO_BIN_EXE_example-app"), &bin).unwrap();
    let app = common::spawn(&bin, dir.path(), env);
    App {
        addr: app.addr.clone(),
        _process: app,
        dir,
    }
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Every `/static/…` URL in attributes (`srcset` lists included) or in the import map
/// of a page.
fn asset_urls(page: &str) -> Vec<String> {
    let mut urls: Vec<String> = page
        .split('"')
        .filter(|s| s.starts_with("/static/"))
        .flat_map(|s| s.split(", ").map(|c| c.split(' ').next().unwrap_or(c)))
        .map(str::to_string)
        .collect();
    urls.sort();
    urls.dedup();
    urls
}

#[test]
fn serves_every_page_and_asset_from_an_empty_folder() {
    let app = start();
    let c = client();
    let base = format!("http://{}", app.addr);
    let mut seen = Vec::new();
    for path in [
        "/",
        "/journal",
        "/journal?page=2&q=e",
        "/reflections/new",
        "/reflections/1",
        "/reflections/1/edit",
        "/settings",
        "/about",
    ] {
        let res = c.get(format!("{base}{path}")).send().unwrap();
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(res.headers()["content-type"], "text/html; charset=utf-8");
        assert_eq!(
            res.headers()["cache-control"],
            example_app::PAGE_CACHE_CONTROL,
            "{path}"
        );
        let page = res.text().unwrap();
        assert!(page.contains("Inner Architect"), "{path}");
        assert!(page.contains("<script type=\"importmap\""), "{path}");
        let urls = asset_urls(&page);
        assert!(urls.len() >= 6, "{path}: {urls:?}");
        // Every page inlines its own critical CSS and describes itself.
        assert!(page.contains("data-perf-critical"), "{path}");
        assert!(page.contains("<meta name=\"description\""), "{path}");
        seen.extend(urls);
    }
    seen.sort();
    seen.dedup();
    for url in &seen {
        let res = c
            .get(format!("{base}{url}"))
            .header("accept-encoding", "br, gzip")
            .send()
            .unwrap();
        assert_eq!(res.status(), 200, "{url}");
        // The assets keep their own policy: immutable at hashed URLs, revalidated at
        // logical ones (the import map's keys).
        let policy = res.headers()["cache-control"].to_str().unwrap();
        assert!(
            policy.contains("immutable") || policy == "no-cache",
            "{url}: {policy}"
        );
        assert!(!res.bytes().unwrap().is_empty(), "{url}");
    }
    // The photographs: every width in AVIF, WebP and JPEG, the hero preloaded.
    for format in ["avif", "webp", "jpg"] {
        for width in [320, 640, 960, 1280] {
            let prefix = format!("/static/img/photos/hero-{width}w.");
            assert!(
                seen.iter()
                    .any(|u| u.starts_with(&prefix) && u.ends_with(format)),
                "{prefix}…{format} in {seen:?}"
            );
        }
    }
    let landing = c.get(format!("{base}/")).send().unwrap().text().unwrap();
    assert!(
        landing.contains("<link rel=\"preload\" as=\"image\" type=\"image/avif\""),
        "{landing}"
    );
    assert!(landing.contains("fetchpriority=\"high\""), "{landing}");
    assert!(landing.contains("class=\"perf-img perf-ph-"), "{landing}");
    // The chart module is loaded on demand: it is in the import map, not in a tag.
    assert!(
        seen.iter()
            .any(|u| u.starts_with("/static/js/features/mood-chart.")),
        "{seen:?}"
    );
    assert!(
        app.dir.path().join("inner-architect.db").exists(),
        "database created beside the binary"
    );
}

#[test]
fn writes_show_up_and_bad_input_gets_4xx() {
    let app = start();
    let c = client();
    let base = format!("http://{}", app.addr);
    let form = |path: &str, body: &str| {
        c.post(format!("{base}{path}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_string())
            .send()
            .unwrap()
    };
    let post = |body: &str| form("/reflections", body);
    let text = |path: &str| {
        c.get(format!("{base}{path}"))
            .send()
            .unwrap()
            .text()
            .unwrap()
    };
    let created = post("title=Shipped+it&mood=grateful&body=The+first+release+is+out.");
    assert_eq!(created.status(), 303);
    assert_eq!(
        created.headers()["cache-control"],
        example_app::PAGE_CACHE_CONTROL,
        "set once for every response of the application's routes"
    );
    let location = created.headers()["location"].to_str().unwrap().to_string();
    let page = text(&location);
    assert!(page.contains("Shipped it") && page.contains("The first release is out."));
    let home = text("/");
    assert!(home.contains("Shipped it"));
    let journal = |query: &str| {
        let res = c.get(format!("{base}/journal{query}")).send().unwrap();
        let status = res.status();
        (status, res.text().unwrap())
    };
    let (status, found) = journal("?q=first+release");
    assert_eq!(status, 200);
    assert!(
        found.contains("Shipped it") && found.contains("1 found for"),
        "{found}"
    );
    // `%` and `_` are matched as written, not as LIKE wildcards.
    assert!(journal("?q=%25").1.contains("0 found for"));
    assert!(journal("?q=_").1.contains("0 found for"));

    // An edit: invalid, the form comes back with the draft; valid, every page shows it.
    let bad = form(&location, "title=Renamed&mood=sulky&body=Kept+draft");
    assert_eq!(bad.status(), 422);
    let bad = bad.text().unwrap();
    assert!(bad.contains("Pick one of the listed moods.") && bad.contains("Kept draft"));
    let edit = text(&format!("{location}/edit"));
    assert!(
        edit.contains("value=\"Shipped it\"")
            && edit.contains("<option value=\"grateful\" selected>")
    );
    let edited = form(
        &location,
        "title=Renamed+release&mood=calm&body=Edited+text.",
    );
    assert_eq!(edited.status(), 303);
    assert_eq!(edited.headers()["location"], location.as_str());
    let page = text(&location);
    assert!(
        page.contains("Renamed release")
            && page.contains("Edited text.")
            && !page.contains("Shipped it")
    );
    assert!(journal("").1.contains("Renamed release"));
    assert!(journal("?q=first+release").1.contains("0 found for"));

    // Deleting: gone from its address and from the journal, and a second delete is a 404.
    let deleted = form(&format!("{location}/delete"), "");
    assert_eq!(deleted.status(), 303);
    assert_eq!(deleted.headers()["location"], "/journal");
    assert_eq!(
        c.get(format!("{base}{location}")).send().unwrap().status(),
        404
    );
    assert!(!journal("").1.contains("Renamed release"));
    assert_eq!(form(&format!("{location}/delete"), "").status(), 404);
    assert_eq!(
        form("/reflections/999999", "title=a&mood=calm&body=b").status(),
        404
    );

    // Pages of the journal: 24 seeded reflections, 9 a page.
    let (status, second) = journal("?page=2");
    assert_eq!(status, 200);
    assert!(
        second.contains("page 2 of 3") && second.contains("rel=\"prev\" href=\"/journal?page=1\"")
    );
    assert_eq!(journal("?page=4").0, 404);
    assert_eq!(journal("?page=0").0, 404);
    assert_eq!(journal("?page=x").0, 400);

    // The profile: saved, shown on the landing page; a bad goal is a 422 that keeps the name.
    let saved = form("/settings", "name=Ada&weekly_goal=5");
    assert_eq!(saved.status(), 303);
    let home = text("/");
    assert!(
        home.contains("Welcome back, Ada") && home.contains("<strong>5</strong>"),
        "{home}"
    );
    let bad = form("/settings", "name=Grace&weekly_goal=99");
    assert_eq!(bad.status(), 422);
    assert!(bad.text().unwrap().contains("value=\"Grace\""));

    assert_eq!(post("title=&mood=calm&body=x").status(), 422);
    assert_eq!(post("title=x&mood=furious&body=x").status(), 422);
    assert_eq!(post("%%%").status(), 422);
    assert_eq!(
        c.get(format!("{base}/reflections/999999"))
            .send()
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        c.get(format!("{base}/reflections/not-a-number"))
            .send()
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        c.get(format!("{base}/nowhere")).send().unwrap().status(),
        404
    );
    assert_eq!(
        c.get(format!("{base}/static/css/nope.css"))
            .send()
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        c.get(format!("{base}/healthz")).send().unwrap().status(),
        200,
        "still serving"
    );
}

#[test]
fn two_instances_sharing_a_database_and_redis_act_as_one_site() {
    let redis =
        std::env::var("PERF_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let shared = tempfile::tempdir().unwrap();
    let db = shared.path().join("shared.db").display().to_string();
    let namespace = format!("example-app-test-{}", std::process::id());
    let env = [
        ("DATABASE_URL", db.as_str()),
        ("PERF_REDIS_URL", redis.as_str()),
        ("PERF_QUERY_CACHE_NAMESPACE", namespace.as_str()),
    ];
    let a = start_with(&env);
    let b = start_with(&env);
    let c = client();
    let home = |app: &App| {
        c.get(format!("http://{}/", app.addr))
            .send()
            .unwrap()
            .text()
            .unwrap()
    };
    let show = |app: &App, id: &str| {
        c.get(format!("http://{}/reflections/{id}", app.addr))
            .send()
            .unwrap()
            .text()
            .unwrap()
    };
    // Both instances have the home page and reflection 1 cached.
    for app in [&a, &b] {
        assert!(!home(app).contains("Written through A"));
        assert!(show(app, "1").contains("Started the morning pages"));
    }
    for round in 0..3 {
        let title = format!("Written through A, round {round}");
        let res = c
            .post(format!("http://{}/reflections", a.addr))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "title={}&mood=calm&body=shared+site",
                title.replace(' ', "+")
            ))
            .send()
            .unwrap();
        assert_eq!(res.status(), 303);
        assert!(
            home(&b).contains(&title),
            "the very next read through B sees the write of round {round}"
        );
        assert!(home(&a).contains(&title));
    }

    // Edits, deletes and the profile, written through A, are what B serves next: its
    // cached reflection page, search, journal and landing page are dropped with them.
    let get = |app: &App, path: &str| {
        let res = c.get(format!("http://{}{path}", app.addr)).send().unwrap();
        (res.status().as_u16(), res.text().unwrap())
    };
    let post = |app: &App, path: &str, body: &str| {
        c.post(format!("http://{}{path}", app.addr))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_string())
            .send()
            .unwrap()
            .status()
    };
    for app in [&a, &b] {
        assert!(get(app, "/reflections/2").1.contains("A hard conversation"));
        assert!(
            get(app, "/journal?q=conversation")
                .1
                .contains("1 found for")
        );
        assert!(get(app, "/").1.contains("Welcome back, Architect"));
    }
    assert_eq!(
        post(
            &a,
            "/reflections/2",
            "title=Renamed+through+A&mood=calm&body=x"
        ),
        303
    );
    assert!(get(&b, "/reflections/2").1.contains("Renamed through A"));
    assert!(get(&b, "/journal?q=conversation").1.contains("0 found for"));
    assert_eq!(post(&a, "/reflections/2/delete", ""), 303);
    assert_eq!(get(&b, "/reflections/2").0, 404);
    assert!(!get(&b, "/journal").1.contains("Renamed through A"));
    assert_eq!(post(&a, "/settings", "name=Shared&weekly_goal=4"), 303);
    assert!(get(&b, "/").1.contains("Welcome back, Shared"));
}

/// Loads `url` in a headless Chromium (a fresh profile, 5 s of virtual time) and returns
/// what it printed: the DOM after the scripts ran.
fn chromium_dump_dom(url: &str) -> std::process::Output {
    let chromium = std::env::var("PERF_TEST_CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let profile = tempfile::tempdir().unwrap();
    Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {chromium} (install Debian's chromium, or set PERF_TEST_CHROMIUM): {e}"
            )
        })
}

/// The page in a real headless Chromium: the entry module loads by its hashed URL with
/// its integrity, its imports resolve through the import map, and the chart module
/// arrives through a dynamic import. Chromium is required (`.ci/run` installs Debian's
/// package); `PERF_TEST_CHROMIUM` names another binary.
#[test]
fn a_browser_runs_the_modules_through_the_import_map() {
    let app = start();
    let mut b = browser::Browser::launch();
    b.navigate(&format!("http://{}/", app.addr));
    assert!(
        b.eval_until("document.documentElement.dataset.appReady === 'true'"),
        "app.js did not run"
    );
    // The mood history is below the fold: brought into view, its chunk arrives through a
    // dynamic import, and uPlot (bundled from npm into it) draws a point per seeded day.
    b.eval("document.querySelector('[data-mood-chart]').scrollIntoView()");
    assert!(
        b.eval_until(
            "document.querySelector('[data-mood-chart]').dataset.rendered === '24' && !!document.querySelector('[data-mood-chart] canvas')"
        ),
        "the chart module (dynamic import) did not run: {}",
        b.eval("document.querySelector('[data-mood-chart]').outerHTML.slice(0, 300)")
    );
    // util.js (a static import) localised the dates the server wrote as UNIX seconds.
    assert_eq!(
        b.eval(
            "[...document.querySelectorAll('time[data-epoch]')].filter((t) => t.textContent === t.dataset.epoch).length"
        ),
        serde_json::json!(0),
        "dates not localised"
    );
    assert!(
        b.eval("document.querySelectorAll('time[data-epoch]').length")
            .as_u64()
            .unwrap()
            >= 3
    );
}

/// The overview report, from loopback (allowed without a token).
fn overview(app: &App) -> serde_json::Value {
    let res = client()
        .get(format!("http://{}/api/performance/metrics", app.addr))
        .send()
        .unwrap();
    assert_eq!(res.status(), 200);
    serde_json::from_slice(&res.bytes().unwrap()).unwrap()
}

#[test]
fn a_browser_sends_its_page_metrics_to_the_monitor() {
    let app = start();
    // The fragment makes the script send its beacon once LCP is in: a headless browser
    // that dumps the DOM may exit before it paints.
    let out = chromium_dump_dom(&format!("http://{}/#perf-vitals-flush", app.addr));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut report = overview(&app);
    for _ in 0..50 {
        if report["client"]["accepted"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        report = overview(&app);
    }
    let client = &report["client"];
    // One beacon in flush mode, and maybe a second one on exit if values changed.
    assert!(client["accepted"].as_u64().unwrap() >= 1, "{client:#}");
    assert_eq!(client["rejected"], 0, "{client:#}");
    // The script read the route template from the page's Server-Timing header.
    let home = &client["routes"]["/"];
    for metric in ["FCP", "LCP", "TTFB"] {
        assert!(
            home[metric]["count"].as_u64().unwrap_or(0) >= 1,
            "{metric} missing: {client:#}"
        );
        let p50 = home[metric]["p50"].as_f64().unwrap();
        assert!((0.0..60_000.0).contains(&p50), "{metric} = {p50}");
    }
    assert!(home["LCP"]["p50"].as_f64() >= home["FCP"]["p50"].as_f64().map(|f| f * 0.99));
    // The page's own requests were timed by route, with their queries.
    let routes = report["routes"].as_array().unwrap();
    assert!(
        routes
            .iter()
            .any(|r| r["route"] == "/" && r["status"] == "2xx")
    );
    assert!(routes.iter().any(|r| r["route"] == "/static/{*path}"));
}

#[test]
fn the_suite_serves_its_endpoints_and_compresses_pages() {
    let app = start();
    let c = client();
    let base = format!("http://{}", app.addr);
    let res = c
        .get(format!("{base}/"))
        .header("accept-encoding", "br")
        .send()
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-encoding"], "br");
    let timing = res.headers()["server-timing"].to_str().unwrap().to_owned();
    assert!(timing.contains("route;desc=\"/\""), "{timing}");
    for path in [
        "/perf",
        "/metrics",
        "/api/performance/queries",
        "/api/performance/memory",
        "/api/memory/leaks",
    ] {
        assert_eq!(
            c.get(format!("{base}{path}")).send().unwrap().status(),
            200,
            "{path}"
        );
    }
    // Queries of the page were timed by fingerprint.
    let queries: serde_json::Value = serde_json::from_slice(
        &c.get(format!("{base}/api/performance/queries"))
            .send()
            .unwrap()
            .bytes()
            .unwrap(),
    )
    .unwrap();
    assert!(
        queries["fingerprints"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["sql"]
                .as_str()
                .unwrap()
                .starts_with("select id, title, mood")),
        "{queries:#}"
    );
    // The memory report sees the tracking allocator the binary installs.
    let memory: serde_json::Value = serde_json::from_slice(
        &c.get(format!("{base}/api/performance/memory"))
            .send()
            .unwrap()
            .bytes()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(memory["allocator_installed"], true, "{memory:#}");
    // The script is served from the binary, versioned.
    let page = c
        .get(format!("{base}/about"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let src = page
        .split("src=\"/_perf/vitals.js?v=")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the vitals script tag");
    let res = c
        .get(format!("{base}/_perf/vitals.js?v={src}"))
        .send()
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
}

#[test]
fn a_bad_setting_stops_start_up_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_example-app"))
        .current_dir(dir.path())
        .env("PORT", "0")
        .env("PERF_MONITORING", "perhaps")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("PERF_MONITORING=\"perhaps\""), "{stderr}");
}

#[test]
fn a_listener_other_hosts_reach_needs_a_monitor_token() {
    let dir = tempfile::tempdir().unwrap();
    let start = |extra: &[(&str, &str)]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_example-app"));
        cmd.current_dir(dir.path())
            .env("HOST", "0.0.0.0")
            .env("PORT", "0")
            .env_remove("PERF_MONITOR_TOKEN")
            .env_remove("PERF_MONITOR_ALLOW_NO_TOKEN")
            .env_remove("PERF_REDIS_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd.spawn().unwrap()
    };
    let out = start(&[]).wait_with_output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("0.0.0.0") && stderr.contains("PERF_MONITOR_TOKEN"),
        "{stderr}"
    );
    // With a token it starts and says where it listens.
    let mut child = start(&[("PERF_MONITOR_TOKEN", "a-token-of-sixteen-chars")]);
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(line.contains("listening on http://0.0.0.0:"), "{line}");
}

/// Every page's reads, uncached so each request runs its queries: no query shape runs twice
/// in one request (the N+1 detector at its strictest, two, stays quiet). A page that read
/// each card's photo or related item with a query of its own would be flagged.
#[test]
fn no_page_runs_a_query_per_item() {
    let pages = [
        "/",
        "/journal",
        "/journal?page=2",
        "/journal?q=walk",
        "/reflections/new",
        "/reflections/5",
        "/reflections/5/edit",
        "/settings",
        "/coach/prompts",
    ];
    let visit = |threshold: &str| {
        let app = start_with(&[
            ("PERF_QUERY_CACHE", "false"),
            ("PERF_N_PLUS_ONE_THRESHOLD", threshold),
        ]);
        let c = client();
        for page in pages {
            let res = c.get(format!("http://{}{page}", app.addr)).send().unwrap();
            assert_eq!(res.status(), 200, "{page}");
        }
        let res = c
            .get(format!("http://{}/api/performance/queries", app.addr))
            .send()
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&res.bytes().unwrap()).unwrap()
    };
    let strict = visit("2");
    assert_eq!(strict["n_plus_one_threshold"], 2, "{strict}");
    // Uncached: every page's queries ran (the landing page's three, the journal's two…).
    assert!(
        strict["total"].as_u64().unwrap() >= pages.len() as u64,
        "{strict}"
    );
    assert_eq!(strict["n_plus_one_total"], 0, "{strict}");
}
