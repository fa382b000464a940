//! The whole promise, as a user meets it: a new application crate depends on perf-build
//! and perf-rt by path, `cargo build` builds it, and its binary, copied alone into an
//! empty folder, serves a page and the page's assets.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::Crate;

const MAIN: &str = r#"
perf_rt::include_assets!();

use axum::response::Html;

async fn index() -> Html<String> {
    Html(format!(
        "<!doctype html><link rel=stylesheet href=\"{}\" integrity=\"{}\"><script type=module src=\"{}\"></script>{}",
        asset_url!("css/site.css"),
        asset_integrity!("css/site.css"),
        asset_url!("js/site.js"),
        ASSETS.import_map_tag(),
    ))
}

#[tokio::main]
async fn main() {
    let app = axum::Router::new().route("/", axum::routing::get(index)).merge(ASSETS.router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("listening on {}", listener.local_addr().unwrap());
    axum::serve(listener, app).await.unwrap();
}
"#;

#[test]
fn a_new_app_builds_and_its_binary_serves_alone() {
    let app = Crate::new(
        "perf-e2e-app",
        &[
            (
                "build.rs",
                "fn main() { perf_build::run().expect(\"asset build failed\"); }\n",
            ),
            ("src/main.rs", MAIN),
            (
                "static/css/site.css",
                "body {\n  color: #ff0000;\n  background: url(\"../img/bg.svg\");\n}\n",
            ),
            (
                "static/img/bg.svg",
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"8\" height=\"8\"><rect width=\"8\" height=\"8\" fill=\"#eee\"/></svg>\n",
            ),
            (
                "static/js/site.js",
                "import { greet } from './greet.js';\nconst someLongName = greet('world');\nconsole.log(someLongName);\n",
            ),
            (
                "static/js/greet.js",
                "export function greet(who) {\n  return `hello ${who}`;\n}\n",
            ),
        ],
    );
    let out = app.build(&[]);
    assert!(
        out.status.success(),
        "cargo build failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The binary alone, in an empty folder: no static dir, no source tree.
    let bin = common::target_dir().join("debug/perf-e2e-app");
    let empty = tempfile::tempdir().unwrap();
    let copied = empty.path().join("app");
    std::fs::copy(&bin, &copied).unwrap();
    let mut child = Command::new(&copied)
        .current_dir(empty.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{line}"))
        .to_string();

    let result = std::panic::catch_unwind(|| {
        let client = reqwest::blocking::Client::new();
        let page = client
            .get(format!("http://{addr}/"))
            .send()
            .unwrap()
            .text()
            .unwrap();
        let css_url = page
            .split("href=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_string();
        assert!(
            css_url.starts_with("/static/css/site.") && css_url.ends_with(".css"),
            "{page}"
        );
        // greet.js, imported by site.js alone, is bundled into it.
        assert!(
            page.contains("\"/static/js/site.js\":\"/static/js/site.")
                && !page.contains("/static/js/greet.js"),
            "import map: {page}"
        );
        let css = client
            .get(format!("http://{addr}{css_url}"))
            .send()
            .unwrap();
        assert_eq!(css.status(), 200);
        assert_eq!(
            css.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
        let css = css.text().unwrap();
        assert!(
            css.starts_with("body{color:red;background:url(") && css.contains("../img/bg."),
            "{css}"
        );
        let js_url = page
            .split("src=")
            .nth(1)
            .unwrap()
            .split('>')
            .next()
            .unwrap()
            .trim_matches('"')
            .to_string();
        let js = client
            .get(format!("http://{addr}{js_url}"))
            .send()
            .unwrap()
            .text()
            .unwrap();
        assert!(
            js.contains("hello ") && !js.contains("greet.js") && !js.contains("someLongName"),
            "{js}"
        );
    });
    let _ = child.kill();
    let _ = child.wait();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}
