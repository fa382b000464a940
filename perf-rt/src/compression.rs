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

use http::{Response, StatusCode, header};
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
pub use tower_http::compression::{CompressionLayer, CompressionLevel};

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
pub fn layer() -> CompressionLayer<ShouldCompress> {
    layer_with(ShouldCompress::default())
}

/// The compression layer with a custom predicate.
pub fn layer_with(predicate: ShouldCompress) -> CompressionLayer<ShouldCompress> {
    CompressionLayer::new().compress_when(predicate)
}
