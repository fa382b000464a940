//! The tower [`Service`] that answers asset requests from the generated map.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use tower_service::Service;

use super::negotiate::{self, Encoding, NoneMatch, Range};
use super::{Asset, Assets, BUILD_HEADER, path};

const IMMUTABLE: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");
const NO_CACHE: HeaderValue = HeaderValue::from_static("no-cache");
const VARY: HeaderValue = HeaderValue::from_static("accept-encoding");
const VARY_ACCEPT: HeaderValue = HeaderValue::from_static("accept");
const VARY_BOTH: HeaderValue = HeaderValue::from_static("accept, accept-encoding");
const BYTES: HeaderValue = HeaderValue::from_static("bytes");
const NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");
const ALLOW: HeaderValue = HeaderValue::from_static("GET, HEAD");
const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");
const PLAIN_TEXT: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");
/// The most headers a response of `serve` carries.
const HEADERS: usize = 9;
const GONE_BODY: &[u8] =
    b"This file belongs to an earlier deploy of this application: reload the page.\n";

/// Serves embedded assets. Cheap to clone: it holds one `&'static` reference.
///
/// The response body borrows the embedded bytes (`Bytes::from_static`): nothing is
/// copied, allocated per byte or read from disk.
#[derive(Debug, Clone, Copy)]
pub struct AssetService {
    assets: &'static Assets,
}

impl AssetService {
    /// A service over `assets`.
    pub fn new(assets: &'static Assets) -> Self {
        AssetService { assets }
    }

    /// Answers one request. Public so that other servers than tower's can call it.
    ///
    /// Every response carries the [`Embedded`](super::Embedded) extension, so that response
    /// compression leaves the already-compressed bytes alone.
    pub fn respond(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
    ) -> Response<Full<Bytes>> {
        let mut res = self.answer(method, path, headers);
        res.extensions_mut().insert(super::Embedded);
        res
    }

    fn answer(&self, method: &Method, path: &str, headers: &HeaderMap) -> Response<Full<Bytes>> {
        let head = match *method {
            Method::GET => false,
            Method::HEAD => true,
            _ => {
                let mut res = status(StatusCode::METHOD_NOT_ALLOWED);
                res.headers_mut().insert(header::ALLOW, ALLOW);
                return res;
            }
        };
        let key = match path::relative_key(path, self.assets.prefix(), self.assets.longest_key()) {
            Ok(key) => key,
            Err(code) => return status(code),
        };
        let Some(entry) = self.assets.lookup(&key) else {
            return self.missing(&key, head);
        };
        // An image's logical URL (a CSS background, user content) is answered in the best
        // format the client accepts, at full width; its hashed URLs name one file each.
        let (asset, by_accept) = match entry.asset.image {
            Some(image) if !entry.hashed => match image.negotiate(text(headers, header::ACCEPT)) {
                Some(source) => (source.asset, true),
                None => {
                    let mut res = status(StatusCode::NOT_ACCEPTABLE);
                    res.headers_mut().insert(header::VARY, VARY_ACCEPT);
                    return res;
                }
            },
            _ => (entry.asset, false),
        };
        serve(asset, entry.hashed, by_accept, head, headers)
    }
}

impl AssetService {
    /// No asset has this key: `410 Gone` when it is an earlier deploy's hashed URL of a
    /// script (of the import map) this build still has, so that the CodeSplitter can tell a stale page from a
    /// broken link; `404` otherwise. Never cached: the next deploy may have the file.
    fn missing(&self, key: &str, head: bool) -> Response<Full<Bytes>> {
        if self.assets.earlier_module(key).is_none() {
            return status(StatusCode::NOT_FOUND);
        }
        let mut res = status(StatusCode::GONE);
        let h = res.headers_mut();
        h.insert(
            BUILD_HEADER,
            HeaderValue::from_static(self.assets.build_id()),
        );
        h.insert(header::CACHE_CONTROL, NO_STORE);
        h.insert(header::CONTENT_TYPE, PLAIN_TEXT);
        h.insert(header::X_CONTENT_TYPE_OPTIONS, NOSNIFF);
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(GONE_BODY.len()));
        if !head {
            *res.body_mut() = Full::new(Bytes::from_static(GONE_BODY));
        }
        res
    }
}

fn text(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::new()));
    *res.status_mut() = code;
    res
}

fn serve(
    asset: &'static Asset,
    hashed: bool,
    by_accept: bool,
    head: bool,
    headers: &HeaderMap,
) -> Response<Full<Bytes>> {
    let len = asset.identity.len() as u64;
    // A single satisfiable or unsatisfiable range applies to the identity body; any other
    // Range header is ignored and the whole body is negotiated as usual.
    let range = if head {
        None
    } else {
        text(headers, header::RANGE)
            .and_then(|r| negotiate::parse_range(r, len))
            .filter(|_| {
                text(headers, header::IF_RANGE)
                    .is_none_or(|v| negotiate::if_range_matches(asset, v))
            })
    };
    let encoding = if range.is_some() {
        Encoding::Identity
    } else {
        match negotiate::choose_encoding(asset, text(headers, header::ACCEPT_ENCODING)) {
            Some(e) => e,
            None => {
                let mut res = status(StatusCode::NOT_ACCEPTABLE);
                res.headers_mut().insert(header::VARY, VARY);
                return res;
            }
        }
    };

    let mut res = Response::new(Full::new(Bytes::new()));
    // Sized for every header below at once: the default map holds six before it grows
    // (a reallocation and a rehash on every 200).
    *res.headers_mut() = HeaderMap::with_capacity(HEADERS);
    let h = res.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        if hashed { IMMUTABLE } else { NO_CACHE },
    );
    match (by_accept, asset.is_negotiable()) {
        (true, true) => h.insert(header::VARY, VARY_BOTH),
        (true, false) => h.insert(header::VARY, VARY_ACCEPT),
        (false, true) => h.insert(header::VARY, VARY),
        (false, false) => None,
    };

    if let Some(im) = text(headers, header::IF_MATCH)
        && !negotiate::if_match(asset, im, encoding)
    {
        *res.status_mut() = StatusCode::PRECONDITION_FAILED;
        return res;
    }
    if let Some(inm) = text(headers, header::IF_NONE_MATCH)
        && let NoneMatch::NotModified(etag) = negotiate::if_none_match(asset, inm, encoding)
    {
        h.insert(header::ETAG, HeaderValue::from_static(etag));
        *res.status_mut() = StatusCode::NOT_MODIFIED;
        return res;
    }

    h.insert(
        header::ETAG,
        HeaderValue::from_static(asset.etags[encoding.index()]),
    );
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, NOSNIFF);
    h.insert(header::ACCEPT_RANGES, BYTES);
    if let Some(token) = encoding.token() {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(token));
    }
    let body = asset.body(encoding).unwrap_or(asset.identity);
    let mut partial = false;
    let body = match range {
        None => body,
        Some(Range::Unsatisfiable) => {
            h.insert(
                header::CONTENT_RANGE,
                HeaderValue::try_from(format!("bytes */{len}")).expect("digits are a valid header"),
            );
            h.remove(header::CONTENT_TYPE);
            *res.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
            return res;
        }
        Some(Range::Satisfiable(start, end)) => {
            h.insert(
                header::CONTENT_RANGE,
                HeaderValue::try_from(format!("bytes {start}-{end}/{len}"))
                    .expect("digits are a valid header"),
            );
            partial = true;
            &body[start as usize..=end as usize]
        }
    };
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len() as u64));
    if partial {
        *res.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
    if !head {
        *res.body_mut() = Full::new(Bytes::from_static(body));
    }
    res
}

impl<B> Service<Request<B>> for AssetService {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        ready(Ok(self.respond(
            req.method(),
            req.uri().path(),
            req.headers(),
        )))
    }
}
