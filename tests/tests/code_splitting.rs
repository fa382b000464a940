//! What the server does for code splitting, over a real socket with a real HTTP client:
//! `410 Gone` with the build's id for an earlier deploy's URL of a module (and `404` for
//! everything else that names no asset), odd paths, the `Link` header that preloads an
//! entry's chunks, and the feature stylesheets that `CodeSplitter.loadFeature` reads.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use perf_rt::assets::Asset;
use perf_tests::ASSETS;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;

struct Server {
    addr: SocketAddr,
    _runtime: tokio::runtime::Runtime,
}

fn server() -> Server {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let addr = perf_tests::serve(&runtime, ASSETS.router());
    Server {
        addr,
        _runtime: runtime,
    }
}

struct Got {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Server {
    fn send(&self, method: reqwest::Method, path: &str) -> Got {
        let res = reqwest::blocking::Client::new()
            .request(method, format!("http://{}{path}", self.addr))
            .header("accept-encoding", "br, gzip")
            .send()
            .unwrap();
        Got {
            status: res.status(),
            headers: res.headers().clone(),
            body: res.bytes().unwrap().to_vec(),
        }
    }

    fn get(&self, path: &str) -> Got {
        self.send(reqwest::Method::GET, path)
    }

    /// A request written by hand, so the path reaches the server exactly as written.
    fn raw_status(&self, target: &[u8]) -> u16 {
        let mut s = TcpStream::connect(self.addr).unwrap();
        s.write_all(b"GET ").unwrap();
        s.write_all(target).unwrap();
        s.write_all(b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        let text = String::from_utf8_lossy(&out);
        text.split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("no status in {text:?}"))
    }
}

fn h<'a>(got: &'a Got, name: &str) -> &'a str {
    got.headers
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or("")
}

fn asset(path: &str) -> &'static Asset {
    ASSETS
        .get(path)
        .unwrap_or_else(|| panic!("{path} is not embedded"))
}

/// The asset's URL with another 8-hex-digit hash: what deploy N-1 called it.
fn earlier_url(a: &Asset) -> String {
    let current = a
        .hashed_path
        .rsplit('/')
        .next()
        .unwrap()
        .split('.')
        .find(|s| s.len() == 8 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(|| panic!("no hash in {}", a.hashed_path));
    let old = if current == "0badc0de" {
        "deadbeef"
    } else {
        "0badc0de"
    };
    let url = a
        .url
        .replacen(&format!(".{current}"), &format!(".{old}"), 1);
    assert_ne!(url, a.url);
    url
}

#[test]
fn the_build_id_is_short_hex_and_stable() {
    let id = ASSETS.build_id();
    assert_eq!(id.len(), 16, "{id}");
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{id}"
    );
    assert!(std::ptr::eq(id, ASSETS.build_id()), "computed once");
}

#[test]
fn an_earlier_deploys_url_of_a_module_is_gone_with_the_build_id() {
    let s = server();
    // Every script in the import map: modules, and classic scripts too.
    for module in [
        "features/greet.js",
        "js/splitter/hover.js",
        "_perf/code-splitter.js",
        "js/legacy.js",
    ] {
        let old = earlier_url(asset(module));
        let got = s.get(&old);
        assert_eq!(got.status, StatusCode::GONE, "{old}");
        assert_eq!(h(&got, "perf-build"), ASSETS.build_id(), "{old}");
        assert_eq!(h(&got, "cache-control"), "no-store");
        assert_eq!(h(&got, "content-type"), "text/plain; charset=utf-8");
        assert_eq!(h(&got, "x-content-type-options"), "nosniff");
        assert_eq!(h(&got, "content-length"), got.body.len().to_string());
        let body = String::from_utf8(got.body).unwrap();
        assert!(body.contains("earlier deploy"), "{body}");
        // What the CodeSplitter asks: HEAD, the same answer without a body.
        let head = s.send(reqwest::Method::HEAD, &old);
        assert_eq!(head.status, StatusCode::GONE);
        assert_eq!(h(&head, "perf-build"), ASSETS.build_id());
        assert!(head.body.is_empty());
    }
    // Through the prefix-less mount too (`nest_service`): the key is the same.
    let old = earlier_url(asset("features/greet.js"));
    let bare = old.strip_prefix("/static").unwrap();
    assert_eq!(
        ASSETS
            .service()
            .respond(&http_get(), bare, &Default::default())
            .status()
            .as_u16(),
        410
    );
}

fn http_get() -> axum::http::Method {
    axum::http::Method::GET
}

#[test]
fn everything_else_that_names_no_asset_is_still_not_found() {
    let s = server();
    let greet = asset("features/greet.js");
    let hash_of = |a: &Asset| {
        a.url
            .rsplit('/')
            .next()
            .unwrap()
            .split('.')
            .nth(1)
            .unwrap()
            .to_string()
    };
    let mut missing = vec![
        // Not a script: a stylesheet, an image, a manifest of an earlier deploy.
        earlier_url(asset("features/greet.css")),
        earlier_url(asset("img/logo.svg")),
        earlier_url(asset("_perf/images.json")),
        // JavaScript, but not in the import map.
        earlier_url(asset("js/splitter/not-a-module.cjs")),
        // No such module, hashed or not.
        "/static/js/nothing.0badc0de.js".to_string(),
        "/static/js/nothing.js".to_string(),
        // Not a hash as perf-build writes one.
        greet
            .url
            .replace(&hash_of(greet), &hash_of(greet).to_uppercase()),
        greet.url.replace(&hash_of(greet), "0badc0d"),
        greet.url.replace(&hash_of(greet), "0badc0de0"),
        greet.url.replace(&hash_of(greet), "0badc0dg"),
        "/static/features/.0badc0de.js".to_string(),
        "/static/features/greet.0badc0de".to_string(),
        // A module's source map of an earlier deploy is not a module.
        format!("{}.map", earlier_url(greet)),
    ];
    // Many hash-like segments, none of which leaves a known name.
    missing.push(format!("/static/js/{}js", "0badc0de.".repeat(10)));
    for path in &missing {
        let got = s.get(path);
        assert_eq!(got.status, StatusCode::NOT_FOUND, "{path}");
        assert!(got.headers.get("perf-build").is_none(), "{path}");
    }
}

#[test]
fn a_current_url_is_served_as_before() {
    let s = server();
    let greet = asset("features/greet.js");
    let got = s.get(greet.url);
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(
        h(&got, "cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(h(&got, "content-type"), greet.content_type);
    assert!(got.headers.get("perf-build").is_none());
    let logical = s.get("/static/features/greet.js");
    assert_eq!(logical.status, StatusCode::OK);
    assert_eq!(h(&logical, "cache-control"), "no-cache");
}

#[test]
fn odd_paths_are_refused_without_harm() {
    let s = server();
    let long = format!("/static/js/{}.0badc0de.js", "a".repeat(5000));
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (b"/static/../Cargo.toml".to_vec(), 400),
        (b"/static/features/../../etc/passwd".to_vec(), 400),
        (b"/static/features/%2e%2e/greet.0badc0de.js".to_vec(), 400),
        (b"/static/features%2fgreet.0badc0de.js".to_vec(), 400),
        (b"/static/features/greet.0badc0de%ff%fe.js".to_vec(), 400),
        (b"/static/features/%c3%28.0badc0de.js".to_vec(), 400),
        (b"/static/features/greet.0badc0de.js%".to_vec(), 400),
        (b"/static/features/greet.0badc0de.js%00".to_vec(), 400),
        (long.into_bytes(), 404),
        (b"/static/.0badc0de".to_vec(), 404),
        (b"/static/0badc0de.".to_vec(), 404),
        (b"/static/a/.0badc0de.0badc0de.".to_vec(), 404),
    ];
    for (target, want) in &cases {
        assert_eq!(
            s.raw_status(target),
            *want,
            "{}",
            String::from_utf8_lossy(target)
        );
    }
    // Still serving.
    assert_eq!(s.get(asset("features/greet.js").url).status, StatusCode::OK);
}

/// Every module an entry imports statically, directly or not, worked out here from the
/// manifest.
fn graph(entry: &str) -> BTreeSet<&'static str> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<&str> = asset(entry).imports.to_vec();
    while let Some(p) = todo.pop() {
        let a = asset(p);
        if seen.insert(a.url) {
            todo.extend(a.imports);
        }
    }
    seen
}

#[test]
fn the_modulepreload_header_names_what_the_tags_preload() {
    let mut with_imports = 0;
    for a in ASSETS.iter() {
        let want = graph(a.path);
        let tags = ASSETS.modulepreload_tags(a.path);
        let in_tags: BTreeSet<&str> = tags
            .split("<link rel=\"modulepreload\" href=\"")
            .skip(1)
            .map(|t| t.split('"').next().unwrap())
            .collect();
        assert_eq!(in_tags, want, "{}: {tags}", a.path);
        assert_eq!(
            tags.matches("<link").count(),
            want.len(),
            "each once: {tags}"
        );
        for url in &want {
            let integrity = ASSETS.iter().find(|m| m.url == *url).unwrap().integrity;
            assert!(
                tags.contains(&format!("href=\"{url}\" integrity=\"{integrity}\">")),
                "{tags}"
            );
        }
        assert!(!tags.contains("crossorigin"), "same-origin: {tags}");
        match ASSETS.modulepreload_header(a.path) {
            None => assert!(want.is_empty(), "{}", a.path),
            Some(value) => {
                with_imports += 1;
                let parts: Vec<&str> = value.split(", ").collect();
                assert_eq!(parts.len(), want.len(), "{value}");
                let urls: BTreeSet<&str> = parts
                    .iter()
                    .map(|p| {
                        p.strip_prefix('<')
                            .and_then(|p| p.strip_suffix(">; rel=modulepreload"))
                            .unwrap_or_else(|| panic!("{p:?} in {value}"))
                    })
                    .collect();
                assert_eq!(urls, want, "{value}");
                // A valid header value, in the same order as the tags.
                axum::http::HeaderValue::from_str(&value).unwrap();
                let order: Vec<&str> = parts.iter().map(|p| &p[1..p.find('>').unwrap()]).collect();
                let tag_order: Vec<&str> = tags
                    .split("href=\"")
                    .skip(1)
                    .map(|t| t.split('"').next().unwrap())
                    .collect();
                assert_eq!(order, tag_order);
            }
        }
    }
    assert!(
        with_imports > 0,
        "no fixture module imports another: the header was never checked"
    );
    assert_eq!(ASSETS.modulepreload_header("js/nothing.js"), None);
    assert_eq!(ASSETS.modulepreload_tags("js/nothing.js"), "");
    assert_eq!(ASSETS.modulepreload_header("features/greet.js"), None);
}

#[test]
fn feature_stylesheets_are_listed_for_the_code_splitter() {
    let css = asset("features/greet.css");
    let json = format!(
        "{{\"greet\":{{\"href\":\"{}\",\"integrity\":\"{}\"}}}}",
        css.url, css.integrity
    );
    assert_eq!(ASSETS.feature_styles_json(), json);
    let parsed: serde_json::Value = serde_json::from_str(ASSETS.feature_styles_json()).unwrap();
    assert_eq!(parsed["greet"]["href"], css.url);
    let tag = ASSETS.import_map_tag();
    assert!(
        tag.ends_with(&format!(
            "</script><script type=\"application/json\" id=\"perf-feature-styles\">{json}</script>"
        )),
        "{tag}"
    );
    assert_eq!(tag.matches("<script").count(), 2, "{tag}");
}
