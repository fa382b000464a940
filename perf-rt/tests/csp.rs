//! The Content-Security-Policy layer over a real socket: a fresh nonce per request, the
//! same one in the header and in what the handler renders, none outside the layer, and a
//! policy the handler set itself left alone.

#![cfg(feature = "csp")]

use axum::Router;
use axum::http::header::CONTENT_SECURITY_POLICY;
use axum::response::IntoResponse;
use axum::routing::get;
use perf_rt::csp::{self, ContentSecurityPolicy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn page() -> String {
    format!("nonce={}", csp::nonce().as_deref().unwrap_or("none"))
}

async fn own_policy() -> impl IntoResponse {
    ([(CONTENT_SECURITY_POLICY, "default-src 'none'")], "mine")
}

/// One HTTP/1.1 request over a new connection: (headers, body).
async fn get_raw(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    (head.to_ascii_lowercase(), body.to_string())
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
}

#[tokio::test]
async fn each_request_gets_its_own_nonce_in_header_and_markup() {
    let app = Router::new()
        .route("/", get(page))
        .route("/own", get(own_policy))
        .layer(ContentSecurityPolicy::strict())
        .route("/outside", get(page));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let mut seen = Vec::new();
    let requests: Vec<_> = (0..20).map(|_| tokio::spawn(get_raw(addr, "/"))).collect();
    for r in requests {
        let (head, body) = r.await.unwrap();
        let nonce = body.strip_prefix("nonce=").unwrap().to_string();
        assert_ne!(nonce, "none", "no nonce inside the layer");
        // 128 bits, base64.
        assert_eq!(nonce.len(), 24, "{nonce}");
        let policy = header(&head, "content-security-policy").expect("a policy");
        assert!(
            policy.contains(&format!(
                "script-src 'self' 'nonce-{}'",
                nonce.to_ascii_lowercase()
            )) && policy.contains("style-src 'self' 'nonce-"),
            "{policy}"
        );
        assert!(!policy.contains("unsafe-inline"), "{policy}");
        seen.push(nonce);
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 20, "a nonce was used twice");

    let (head, body) = get_raw(addr, "/outside").await;
    assert_eq!(body, "nonce=none");
    assert!(header(&head, "content-security-policy").is_none());

    let (head, _) = get_raw(addr, "/own").await;
    assert_eq!(
        header(&head, "content-security-policy"),
        Some("default-src 'none'")
    );
}
