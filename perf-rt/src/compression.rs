//! Response compression for dynamic responses: tower-http's compression layer (br, zstd,
//! gzip, chosen from `Accept-Encoding`), with a predicate that knows what must not be
//! compressed again.
//!
//! ```
//! use axum::{Router, routing::get};
//!
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "<!doctype html>…" }))
//!     .layer(perf_rt::compression::layer());
//! ```
//!
//! Left alone:
//! - embedded assets (they carry [`Embedded`]): perf-build already compressed them at the
//!   highest levels, and an identity answer means the client or the asset wants it so;
//! - responses that already have a `Content-Encoding`, partial content (206, or a
//!   `Content-Range`), and `Cache-Control: no-transform`;
//! - Server-Sent Events (`text/event-stream`): an encoder holds bytes back until its
//!   buffer fills, so compressing a stream would delay every event;
//! - images other than SVG, gRPC, and bodies smaller than the minimum size (256 bytes by
//!   default: below that the encoding's framing costs more than it saves).
//!
//! Levels are tower-http's defaults for on-the-fly compression: brotli 4, gzip 6, zstd 3.
//!
//! A request without `Accept-Encoding` goes straight to the inner service: its answer is
//! never compressed, so it is spared tower-http's body wrapper (it still gets the `Vary`
//! header tower-http would add, so caches keep the answers apart).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::Either;
use pin_project_lite::pin_project;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::compression::{Compression, CompressionBody};
pub use tower_http::compression::{CompressionLayer, CompressionLevel};
use tower_service::Service;

use crate::assets::Embedded;

/// Whether a response should be compressed; see the [module docs](self).
#[derive(Debug, Clone, Copy)]
pub struct ShouldCompress {
    min_size: u16,
}

impl ShouldCompress {
    /// Compresses bodies of at least `min_size` bytes (bodies of unknown size included).
    pub fn new(min_size: u16) -> Self {
        Self { min_size }
    }
}

impl Default for ShouldCompress {
    fn default() -> Self {
        Self::new(256)
    }
}

impl Predicate for ShouldCompress {
    fn should_compress<B>(&self, response: &Response<B>) -> bool
    where
        B: http_body::Body,
    {
        // The cheapest test first: most small answers stop here.
        if response
            .body()
            .size_hint()
            .exact()
            .is_some_and(|n| n < u64::from(self.min_size))
        {
            return false;
        }
        if response.extensions().get::<Embedded>().is_some()
            || response.status() == StatusCode::PARTIAL_CONTENT
            || response.headers().contains_key(header::CONTENT_RANGE)
        {
            return false;
        }
        let no_transform = response
            .headers()
            .get_all(header::CACHE_CONTROL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|d| d.trim().eq_ignore_ascii_case("no-transform"));
        !no_transform
            && SizeAbove::new(self.min_size)
                .and(NotForContentType::GRPC)
                .and(NotForContentType::IMAGES)
                .and(NotForContentType::SSE)
                .should_compress(response)
    }
}

/// The compression layer with [`ShouldCompress`] (256 bytes minimum) and every encoding.
pub fn layer() -> ResponseCompressionLayer {
    layer_with(ShouldCompress::default())
}

/// The compression layer with a custom predicate.
pub fn layer_with(predicate: ShouldCompress) -> ResponseCompressionLayer {
    ResponseCompressionLayer { predicate }
}

/// tower-http's compression with [`ShouldCompress`], bypassed for requests without
/// `Accept-Encoding`; made by [`layer`] and [`layer_with`].
///
/// The compressing body is boxed: its encoder states are inline and large, and every
/// answer, compressed or not, is moved several times on its way out (a measured 2,300
/// instructions of `memcpy` per request when unboxed).
#[derive(Debug, Clone, Copy)]
pub struct ResponseCompressionLayer {
    predicate: ShouldCompress,
}

impl<S> tower_layer::Layer<S> for ResponseCompressionLayer {
    type Service = ResponseCompression<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ResponseCompression {
            inner: Compression::new(inner).compress_when(self.predicate),
            predicate: self.predicate,
        }
    }
}

/// The service of [`ResponseCompressionLayer`].
#[derive(Clone, Copy)]
pub struct ResponseCompression<S> {
    inner: Compression<S, ShouldCompress>,
    /// The predicate inside `inner`, which tower-http does not expose.
    predicate: ShouldCompress,
}

impl<S: std::fmt::Debug> std::fmt::Debug for ResponseCompression<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseCompression")
            .field("inner", self.inner.get_ref())
            .field("predicate", &self.predicate)
            .finish()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ResponseCompression<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: http_body::Body,
{
    type Response = Response<Either<Pin<Box<CompressionBody<ResBody>>>, ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<
        <Compression<S, ShouldCompress> as Service<Request<ReqBody>>>::Future,
        S::Future,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // tower-http's service is ready when the inner one is: either path may follow.
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        if req.headers().contains_key(header::ACCEPT_ENCODING) {
            ResponseFuture {
                kind: Kind::Compressed {
                    future: self.inner.call(req),
                },
            }
        } else {
            ResponseFuture {
                kind: Kind::Identity {
                    future: self.inner.get_mut().call(req),
                    predicate: self.predicate,
                },
            }
        }
    }
}

pin_project! {
    /// The response future of [`ResponseCompression`].
    pub struct ResponseFuture<C, I> {
        #[pin]
        kind: Kind<C, I>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<C, I> {
        // Through tower-http's compression.
        Compressed { #[pin] future: C },
        // Straight from the inner service: the client accepts no encoding.
        Identity { #[pin] future: I, predicate: ShouldCompress },
    }
}

impl<C, I, B, E> Future for ResponseFuture<C, I>
where
    C: Future<Output = Result<Response<CompressionBody<B>>, E>>,
    I: Future<Output = Result<Response<B>, E>>,
    B: http_body::Body,
{
    type Output = Result<Response<Either<Pin<Box<CompressionBody<B>>>, B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Compressed { future } => Poll::Ready(
                ready!(future.poll(cx)).map(|res| res.map(|b| Either::Left(Box::pin(b)))),
            ),
            KindProj::Identity { future, predicate } => {
                let mut res = ready!(future.poll(cx))?;
                // What tower-http does for an identity answer it would have compressed
                // for another client: say that the answer depends on `Accept-Encoding`.
                // The predicate first: its size test settles small answers at once.
                let compressible = predicate.should_compress(&res)
                    && !res.headers().contains_key(header::CONTENT_ENCODING)
                    && !res.headers().contains_key(header::CONTENT_RANGE);
                if compressible && !varies_by_encoding(res.headers()) {
                    res.headers_mut()
                        .append(header::VARY, HeaderValue::from_static("accept-encoding"));
                }
                Poll::Ready(Ok(res.map(Either::Right)))
            }
        }
    }
}

/// Whether a `Vary` header already names `Accept-Encoding`.
fn varies_by_encoding(headers: &http::HeaderMap) -> bool {
    headers.get_all(header::VARY).iter().any(|v| {
        v.as_bytes()
            .windows(header::ACCEPT_ENCODING.as_str().len())
            .any(|w| w.eq_ignore_ascii_case(header::ACCEPT_ENCODING.as_str().as_bytes()))
    })
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use http_body_util::BodyExt;
    use tower::ServiceExt;
    use tower_layer::Layer;

    use super::*;

    fn answer(
        size: usize,
    ) -> impl Service<
        Request<String>,
        Response = Response<String>,
        Error = Infallible,
        Future = impl Future<Output = Result<Response<String>, Infallible>>,
    > + Clone {
        tower::service_fn(move |_: Request<String>| async move {
            Ok::<_, Infallible>(
                Response::builder()
                    .header(header::CONTENT_TYPE, "text/html")
                    .body("<p>reflection</p>".repeat(size / 17 + 1))
                    .unwrap(),
            )
        })
    }

    fn request(accept: Option<&str>) -> Request<String> {
        let mut req = Request::builder().uri("/page");
        if let Some(accept) = accept {
            req = req.header(header::ACCEPT_ENCODING, accept);
        }
        req.body(String::new()).unwrap()
    }

    #[tokio::test]
    async fn without_accept_encoding_the_answer_bypasses_tower_http_unchanged() {
        for size in [10, 300, 20_000] {
            let ours = layer()
                .layer(answer(size))
                .oneshot(request(None))
                .await
                .unwrap();
            let theirs = CompressionLayer::new()
                .compress_when(ShouldCompress::default())
                .layer(answer(size))
                .oneshot(request(None))
                .await
                .unwrap();
            // The bypass: the inner body itself, no compression wrapper.
            assert!(matches!(ours.body(), Either::Right(_)), "{size} bytes");
            assert_eq!(ours.status(), theirs.status());
            // Same headers as tower-http's identity answer, `Vary` included.
            assert_eq!(ours.headers(), theirs.headers(), "{size} bytes");
            assert_eq!(
                ours.headers().contains_key(header::VARY),
                size >= 256,
                "{size} bytes"
            );
            let ours = ours.into_body().collect().await.unwrap().to_bytes();
            let theirs = theirs.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(ours, theirs);
        }
    }

    #[tokio::test]
    async fn with_accept_encoding_the_answer_goes_through_tower_http() {
        for accept in ["gzip", "identity", "br;q=0"] {
            let res = layer()
                .layer(answer(20_000))
                .oneshot(request(Some(accept)))
                .await
                .unwrap();
            assert!(matches!(res.body(), Either::Left(_)), "{accept}");
            assert_eq!(res.headers()[header::VARY], "accept-encoding");
            assert_eq!(
                res.headers().get(header::CONTENT_ENCODING).is_some(),
                accept == "gzip",
                "{accept}"
            );
        }
    }
}
