//! Every header behaviour of the asset service, over a real socket with a real HTTP
//! client (reqwest), and raw requests where a client would normalise the path first.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use perf_tests::ASSETS;
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};

struct Server {
    addr: SocketAddr,
    _runtime: tokio::runtime::Runtime,
}

fn server() -> Server {
    let runtime = perf_tests::runtime(1);
    let addr = perf_tests::serve(&runtime, ASSETS.router());
    Server {
        addr,
        _runtime: runtime,
    }
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().build().unwrap()
}

struct Got {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Server {
    fn get(&self, path: &str, headers: &[(&str, &str)]) -> Got {
        self.send(reqwest::Method::GET, path, headers)
    }

    fn send(&self, method: reqwest::Method, path: &str, headers: &[(&str, &str)]) -> Got {
        let mut req = client().request(method, format!("http://{}{path}", self.addr));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().unwrap();
        Got {
            status: res.status(),
            headers: res.headers().clone(),
            body: res.bytes().unwrap().to_vec(),
        }
    }

    /// A request written by hand, so the path reaches the server exactly as written.
    fn raw_status(&self, target: &str) -> u16 {
        let mut s = TcpStream::connect(self.addr).unwrap();
        write!(
            s,
            "GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
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

fn h(got: &Got, name: header::HeaderName) -> &str {
    got.headers
        .get(&name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or("")
}

fn unbrotli(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli::BrotliDecompress(&mut &b[..], &mut out).unwrap();
    out
}

fn ungzip(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(b)
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[test]
fn hashed_urls_are_immutable_and_negotiated() {
    let s = server();
    let css = ASSETS.get("css/app.css").unwrap();
    assert_eq!(perf_tests::APP_CSS, css.url);

    let br = s.get(css.url, &[("accept-encoding", "gzip, deflate, br, zstd")]);
    assert_eq!(br.status, StatusCode::OK);
    assert_eq!(h(&br, header::CONTENT_ENCODING), "br");
    assert_eq!(h(&br, header::VARY), "accept-encoding");
    assert_eq!(
        h(&br, header::CACHE_CONTROL),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(h(&br, header::CONTENT_TYPE), "text/css; charset=utf-8");
    assert_eq!(h(&br, header::CONTENT_LENGTH), br.body.len().to_string());
    assert_eq!(unbrotli(&br.body), css.identity);

    let gz = s.get(css.url, &[("accept-encoding", "gzip")]);
    assert_eq!(h(&gz, header::CONTENT_ENCODING), "gzip");
    assert_eq!(ungzip(&gz.body), css.identity);

    let zst = s.get(css.url, &[("accept-encoding", "zstd, gzip;q=0.5")]);
    assert_eq!(h(&zst, header::CONTENT_ENCODING), "zstd");
    assert_eq!(zstd::decode_all(&zst.body[..]).unwrap(), css.identity);

    let q = s.get(css.url, &[("accept-encoding", "br;q=0.1, gzip;q=0.9")]);
    assert_eq!(h(&q, header::CONTENT_ENCODING), "gzip", "q-values decide");

    let plain = s.get(css.url, &[]);
    assert_eq!(h(&plain, header::CONTENT_ENCODING), "");
    assert_eq!(plain.body, css.identity);
    assert_eq!(
        h(&plain, header::VARY),
        "accept-encoding",
        "identity responses vary too"
    );

    // Each representation has its own strong ETag.
    let tags = [
        h(&br, header::ETAG),
        h(&gz, header::ETAG),
        h(&zst, header::ETAG),
        h(&plain, header::ETAG),
    ];
    for (i, a) in tags.iter().enumerate() {
        assert!(a.starts_with('"') && a.ends_with('"'), "{a}");
        for b in &tags[i + 1..] {
            assert_ne!(a, b);
        }
    }
}

#[test]
fn logical_paths_revalidate() {
    let s = server();
    let css = ASSETS.get("css/app.css").unwrap();
    let got = s.get("/static/css/app.css", &[("accept-encoding", "br")]);
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(h(&got, header::CACHE_CONTROL), "no-cache");
    assert_eq!(unbrotli(&got.body), css.identity);
    let etag = h(&got, header::ETAG).to_string();
    let again = s.get(
        "/static/css/app.css",
        &[("accept-encoding", "br"), ("if-none-match", &etag)],
    );
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.body.is_empty());
    assert_eq!(h(&again, header::ETAG), etag);
    assert_eq!(h(&again, header::VARY), "accept-encoding", "304 keeps Vary");
    assert_eq!(h(&again, header::CACHE_CONTROL), "no-cache");
}

#[test]
fn if_none_match_lists_weak_and_star() {
    let s = server();
    let js = ASSETS.get("js/app.js").unwrap();
    let first = s.get(js.url, &[("accept-encoding", "gzip")]);
    let etag = h(&first, header::ETAG).to_string();
    let list = format!("\"nope\", W/{etag}");
    assert_eq!(
        s.get(
            js.url,
            &[("accept-encoding", "gzip"), ("if-none-match", &list)]
        )
        .status,
        StatusCode::NOT_MODIFIED
    );
    assert_eq!(
        s.get(js.url, &[("if-none-match", "*")]).status,
        StatusCode::NOT_MODIFIED
    );
    let other = s.get(js.url, &[("if-none-match", "\"something-else\"")]);
    assert_eq!(other.status, StatusCode::OK);
    assert_eq!(other.body, js.identity);
}

#[test]
fn if_none_match_only_matches_what_this_request_would_get() {
    let s = server();
    let js = ASSETS.get("js/app.js").unwrap();
    let br = s.get(js.url, &[("accept-encoding", "br")]);
    assert_eq!(h(&br, header::CONTENT_ENCODING), "br");
    let br_tag = h(&br, header::ETAG).to_string();
    // A client that accepts gzip only does not hold the brotli bytes: it gets the body.
    let gzip = s.get(
        js.url,
        &[("accept-encoding", "gzip"), ("if-none-match", &br_tag)],
    );
    assert_eq!(gzip.status, StatusCode::OK);
    assert_eq!(h(&gzip, header::CONTENT_ENCODING), "gzip");
    assert_ne!(h(&gzip, header::ETAG), br_tag);
    let identity = s.get(js.url, &[("if-none-match", &br_tag)]);
    assert_eq!(identity.status, StatusCode::OK);
    assert_eq!(identity.body, js.identity);
}

#[test]
fn if_match_is_evaluated() {
    let s = server();
    let js = ASSETS.get("js/app.js").unwrap();
    let first = s.get(js.url, &[("accept-encoding", "br")]);
    let etag = h(&first, header::ETAG).to_string();
    let ok = s.get(js.url, &[("accept-encoding", "br"), ("if-match", &etag)]);
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(
        s.get(js.url, &[("accept-encoding", "br"), ("if-match", "*")])
            .status,
        StatusCode::OK
    );
    for failing in [
        "\"stale\"".to_string(),
        format!("W/{etag}"), // If-Match compares strongly
    ] {
        let got = s.get(
            js.url,
            &[("accept-encoding", "br"), ("if-match", failing.as_str())],
        );
        assert_eq!(got.status, StatusCode::PRECONDITION_FAILED, "{failing}");
        assert!(got.body.is_empty());
    }
    // The tag of another representation fails too: the client would not get those bytes.
    assert_eq!(
        s.get(js.url, &[("if-match", &etag)]).status,
        StatusCode::PRECONDITION_FAILED
    );
}

#[test]
fn head_has_headers_and_no_body() {
    let s = server();
    let large = ASSETS.get("data/large.txt").unwrap();
    let got = s.send(reqwest::Method::HEAD, large.url, &[]);
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(
        h(&got, header::CONTENT_LENGTH),
        large.identity.len().to_string()
    );
    assert_eq!(h(&got, header::CONTENT_TYPE), "text/plain; charset=utf-8");
    assert!(got.body.is_empty());
}

#[test]
fn single_ranges_on_the_identity_body() {
    let s = server();
    let large = ASSETS.get("data/large.txt").unwrap();
    let len = large.identity.len();
    assert_eq!(len, 100 * 1024);

    let part = s.get(
        large.url,
        &[("range", "bytes=100-199"), ("accept-encoding", "br")],
    );
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        h(&part, header::CONTENT_RANGE),
        format!("bytes 100-199/{len}")
    );
    assert_eq!(
        h(&part, header::CONTENT_ENCODING),
        "",
        "ranges apply to identity"
    );
    assert_eq!(part.body, &large.identity[100..200]);

    let tail = s.get(large.url, &[("range", "bytes=-10")]);
    assert_eq!(tail.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(tail.body, &large.identity[len - 10..]);

    let open = s.get(large.url, &[("range", &format!("bytes={}-", len - 5))]);
    assert_eq!(open.body, &large.identity[len - 5..]);

    let past = s.get(large.url, &[("range", &format!("bytes={len}-"))]);
    assert_eq!(past.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(h(&past, header::CONTENT_RANGE), format!("bytes */{len}"));

    let multi = s.get(large.url, &[("range", "bytes=0-1,5-6")]);
    assert_eq!(multi.status, StatusCode::OK, "multiple ranges are ignored");
    assert_eq!(multi.body.len(), len);

    let etag = large.etags[0];
    let fresh = s.get(large.url, &[("range", "bytes=0-9"), ("if-range", etag)]);
    assert_eq!(fresh.status, StatusCode::PARTIAL_CONTENT);
    let stale = s.get(
        large.url,
        &[("range", "bytes=0-9"), ("if-range", "\"old\"")],
    );
    assert_eq!(stale.status, StatusCode::OK);
    assert_eq!(stale.body.len(), len);
}

#[test]
fn content_types_and_incompressible_files() {
    let s = server();
    let png = ASSETS.get("img/dot.png").unwrap();
    assert!(
        png.brotli.is_none() && png.gzip.is_none(),
        "PNG is not precompressed"
    );
    let got = s.get(png.url, &[("accept-encoding", "br, gzip")]);
    assert_eq!(h(&got, header::CONTENT_TYPE), "image/png");
    assert_eq!(h(&got, header::CONTENT_ENCODING), "");
    assert_eq!(h(&got, header::VARY), "", "nothing to negotiate");
    assert_eq!(got.body, png.identity);
    let svg = s.get(ASSETS.url("img/logo.svg").unwrap(), &[]);
    assert_eq!(h(&svg, header::CONTENT_TYPE), "image/svg+xml");
    let refused = s.get(png.url, &[("accept-encoding", "identity;q=0")]);
    assert_eq!(refused.status, StatusCode::NOT_ACCEPTABLE);
}

#[test]
fn methods_and_unknown_paths() {
    let s = server();
    let css = ASSETS.get("css/app.css").unwrap();
    let post = s.send(reqwest::Method::POST, css.url, &[]);
    assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(h(&post, header::ALLOW), "GET, HEAD");
    assert_eq!(
        s.get("/static/css/nope.css", &[]).status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.get("/static/data/my%20notes.txt", &[]).status,
        StatusCode::OK
    );
}

#[test]
fn hostile_paths_get_4xx_and_the_server_keeps_serving() {
    let s = server();
    for (target, status) in [
        ("/static/../Cargo.toml", 400),
        ("/static/css/../../build.rs", 400),
        ("/static/%2e%2e/Cargo.toml", 400),
        ("/static/css%2fapp.css", 400),
        ("/static/css%5capp.css", 400),
        ("/static/a%00.css", 400),
        ("/static/a%zz.css", 400),
        ("/static/%ff.css", 400),
        ("/static/./css/app.css", 400),
    ] {
        assert_eq!(s.raw_status(target), status, "{target}");
    }
    let long = format!("/static/{}", "a".repeat(8000));
    assert_eq!(s.raw_status(&long), 404);
    let many = format!("/static/{}", "%41".repeat(2000));
    assert_eq!(s.raw_status(&many), 404);
    assert_eq!(
        s.raw_status(ASSETS.url("css/app.css").unwrap()),
        200,
        "still serving"
    );
}
