//! `perf_rt::serve::ZeroCopyListener` over real sockets: large embedded bodies leave
//! through `sendfile`, byte for byte, under pipelining, partial writes, slow and vanishing
//! readers and concurrent clients.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Mutex;
use std::time::Duration;

use perf_rt::serve::{stats, zero_copy, zero_copy_with};
use perf_tests::ASSETS;

/// The `sendfile` counters are the process's: tests that read them run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

struct Server {
    addr: SocketAddr,
    _runtime: tokio::runtime::Runtime,
}

fn server(min_len: Option<usize>) -> Server {
    let runtime = perf_tests::runtime(2);
    let listener = perf_tests::bind(&runtime);
    let listener = match min_len {
        Some(n) => zero_copy_with(listener, n),
        None => zero_copy(listener),
    };
    let addr = perf_tests::serve_on(&runtime, listener, ASSETS.router());
    Server {
        addr,
        _runtime: runtime,
    }
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one response with a `Content-Length` body (no body for `HEAD`).
fn read_response(r: &mut impl BufRead, head_only: bool) -> Response {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {line:?}"));
    let mut headers = Vec::new();
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':').unwrap();
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let mut res = Response {
        status,
        headers,
        body: Vec::new(),
    };
    if !head_only {
        let len: usize = res.header("content-length").unwrap().parse().unwrap();
        res.body = vec![0; len];
        r.read_exact(&mut res.body).unwrap();
    }
    res
}

fn request(path: &str, encoding: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\nAccept-Encoding: {encoding}\r\n\r\n")
}

/// The bytes the server should send for `name` under `encoding` ("identity", "gzip", "br").
fn expected(name: &str, encoding: &str) -> &'static [u8] {
    let a = ASSETS.get(name).unwrap();
    match encoding {
        "gzip" => a.gzip.unwrap(),
        "br" => a.brotli.unwrap(),
        _ => a.identity,
    }
}

/// The counters once they stop moving: the server counts a `sendfile` after it returns,
/// which may be after the client has read the bytes.
fn settled_stats() -> perf_rt::serve::Stats {
    let mut last = stats();
    loop {
        std::thread::sleep(Duration::from_millis(20));
        let now = stats();
        if now == last {
            return now;
        }
        last = now;
    }
}

/// Sends one request on `conn` and reads its response, with the `sendfile` bytes counted
/// meanwhile.
fn counted(
    conn: &mut TcpStream,
    reader: &mut BufReader<TcpStream>,
    req: &str,
    head_only: bool,
) -> (Response, u64) {
    let before = settled_stats();
    conn.write_all(req.as_bytes()).unwrap();
    let res = read_response(reader, head_only);
    (res, settled_stats().bytes - before.bytes)
}

#[test]
fn large_bodies_leave_through_sendfile_and_small_ones_with_the_head() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let large = ASSETS.get("data/large.txt").unwrap();
    let small = ASSETS.get("data/small.txt").unwrap();
    assert!(perf_rt::serve::is_zero_copy(large.identity));
    assert!(perf_rt::serve::is_zero_copy(large.gzip.unwrap()));
    let on_the_heap = large.identity.to_vec();
    assert!(!perf_rt::serve::is_zero_copy(&on_the_heap));
    assert!(large.identity.len() >= perf_rt::serve::DEFAULT_MIN_LEN);
    assert!(large.gzip.unwrap().len() < perf_rt::serve::DEFAULT_MIN_LEN);

    // The default threshold: the 100 KiB identity body through sendfile, the 18 KB gzip
    // one and the small file with their heads.
    let s = server(None);
    let mut conn = TcpStream::connect(s.addr).unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let (res, sent) = counted(
        &mut conn,
        &mut reader,
        &request(large.url, "identity"),
        false,
    );
    assert_eq!(res.status, 200);
    assert!(res.body == large.identity);
    assert!(sent >= large.identity.len() as u64, "{sent}");
    for (asset, encoding) in [(large, "gzip"), (small, "gzip"), (small, "identity")] {
        let (res, sent) = counted(&mut conn, &mut reader, &request(asset.url, encoding), false);
        assert_eq!(res.body, expected(asset.path, encoding));
        assert_eq!(sent, 0, "{} {encoding}", asset.path);
    }
    // HEAD: the head alone.
    let head = format!("HEAD {} HTTP/1.1\r\nHost: x\r\n\r\n", large.url);
    let (res, sent) = counted(&mut conn, &mut reader, &head, true);
    assert_eq!(res.status, 200);
    assert_eq!(sent, 0);
    assert_eq!(
        res.header("content-length"),
        Some(large.identity.len().to_string().as_str())
    );

    // A lower threshold: every encoding of the large file through sendfile.
    let s = server(Some(1024));
    let mut conn = TcpStream::connect(s.addr).unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    for encoding in ["identity", "gzip", "br"] {
        let (res, sent) = counted(&mut conn, &mut reader, &request(large.url, encoding), false);
        assert_eq!(res.status, 200);
        assert_eq!(res.body, expected("data/large.txt", encoding), "{encoding}");
        assert!(sent >= res.body.len() as u64, "{encoding}: {sent}");
    }
    // A range of the identity body is a slice of the same static bytes, at its offset.
    let range = format!(
        "GET {} HTTP/1.1\r\nHost: x\r\nRange: bytes=1000-60999\r\n\r\n",
        large.url
    );
    let (res, sent) = counted(&mut conn, &mut reader, &range, false);
    assert_eq!(res.status, 206);
    assert!(res.body == large.identity[1000..61000]);
    assert!(sent >= 60_000, "{sent}");
}

#[test]
fn pipelined_requests_of_every_size_come_back_in_order() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // A low threshold, so small bodies take the sendfile path too and a vectored write
    // mixes heads, small bodies and a file slice.
    for min_len in [None, Some(1)] {
        let s = server(min_len);
        let plan = [
            ("data/small.txt", "identity"),
            ("data/large.txt", "gzip"),
            ("data/small.txt", "br"),
            ("data/large.txt", "identity"),
            ("data/large.txt", "br"),
            ("css/app.css", "gzip"),
            ("data/small.txt", "gzip"),
        ];
        let mut conn = TcpStream::connect(s.addr).unwrap();
        let all: String = plan
            .iter()
            .map(|(name, enc)| request(ASSETS.get(name).unwrap().url, enc))
            .collect();
        conn.write_all(all.as_bytes()).unwrap();
        let mut reader = BufReader::new(conn);
        for (name, enc) in plan {
            let res = read_response(&mut reader, false);
            assert_eq!(res.status, 200, "{name} {enc} ({min_len:?})");
            assert_eq!(res.body, expected(name, enc), "{name} {enc} ({min_len:?})");
        }
    }
}

#[test]
fn a_slow_reader_gets_every_byte_through_partial_sends() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let s = server(None);
    let large = ASSETS.get("data/large.txt").unwrap();
    // 64 pipelined 100 KiB bodies: 6.4 MB, far beyond the socket buffers, so sendfile
    // stops short and waits for the reader again and again.
    let n = 64;
    let mut conn = TcpStream::connect(s.addr).unwrap();
    let all: String = (0..n).map(|_| request(large.url, "identity")).collect();
    conn.write_all(all.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let mut reader = BufReader::with_capacity(4096, conn);
    for i in 0..n {
        let res = read_response(&mut reader, false);
        assert_eq!(res.status, 200);
        assert!(res.body == large.identity, "response {i} differs");
        if i % 8 == 0 {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn a_reader_that_hangs_up_mid_body_leaves_the_server_serving() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let s = server(None);
    let large = ASSETS.get("data/large.txt").unwrap();
    for _ in 0..20 {
        let mut conn = TcpStream::connect(s.addr).unwrap();
        let all: String = (0..16).map(|_| request(large.url, "identity")).collect();
        conn.write_all(all.as_bytes()).unwrap();
        let mut part = vec![0; 30_000];
        conn.read_exact(&mut part).unwrap();
        // Dropped with most of 1.6 MB unread: the server sees a reset mid-sendfile.
    }
    let mut conn = TcpStream::connect(s.addr).unwrap();
    conn.write_all(request(large.url, "br").as_bytes()).unwrap();
    let res = read_response(&mut BufReader::new(conn), false);
    assert_eq!(res.body, expected("data/large.txt", "br"));
}

#[test]
fn concurrent_clients_each_get_their_own_bytes() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let s = server(Some(1024));
    let names = ["data/large.txt", "data/small.txt", "css/app.css"];
    let encodings = ["identity", "gzip", "br"];
    std::thread::scope(|scope| {
        for t in 0..8 {
            let addr = s.addr;
            scope.spawn(move || {
                let mut conn = TcpStream::connect(addr).unwrap();
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                for i in 0..60 {
                    let name = names[(t + i) % names.len()];
                    let enc = encodings[(t * 7 + i) % encodings.len()];
                    conn.write_all(request(ASSETS.get(name).unwrap().url, enc).as_bytes())
                        .unwrap();
                    let res = read_response(&mut reader, false);
                    assert_eq!(res.status, 200);
                    assert!(
                        res.body == expected(name, enc),
                        "thread {t} request {i}: {name} {enc}"
                    );
                }
            });
        }
    });
}

#[test]
fn connect_info_reaches_handlers() {
    use axum::extract::ConnectInfo;
    let runtime = perf_tests::runtime(0);
    // A further tap (TCP_NODELAY here) keeps the connect info.
    let listener = axum::serve::ListenerExt::tap_io(
        zero_copy(perf_tests::bind(&runtime)),
        |s: &mut perf_rt::serve::ZeroCopyStream| s.get_ref().set_nodelay(true).unwrap(),
    );
    let app = axum::Router::new().route(
        "/peer",
        axum::routing::get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move {
            peer.ip().to_string()
        }),
    );
    let addr = perf_tests::serve_on(&runtime, listener, app);
    let _guard = runtime.enter();
    let conn = std::thread::spawn(move || {
        let mut conn = TcpStream::connect(addr).unwrap();
        conn.write_all(b"GET /peer HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        read_response(&mut BufReader::new(conn), false)
    });
    let res = runtime.block_on(async {
        loop {
            if conn.is_finished() {
                break conn.join().unwrap();
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    assert_eq!(res.status, 200);
    assert_eq!(res.body, b"127.0.0.1");
}
