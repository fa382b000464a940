//! Content-Security-Policy with a fresh nonce per request.
//!
//! [`ContentSecurityPolicy`] is a tower layer: for each request it makes a random nonce,
//! makes it available to everything that renders during the request through [`nonce`]
//! (so `critical_css!`, [`Assets::import_map_tag`](crate::assets::Assets::import_map_tag)
//! and the other tags carry it with no plumbing), and sends the policy with `{nonce}`
//! replaced by `'nonce-…'`.
//!
//! ```ignore
//! let app = axum::Router::new()
//!     .route("/", axum::routing::get(index))
//!     .layer(perf_rt::csp::ContentSecurityPolicy::strict());
//! ```
//!
//! Without the `csp` feature, [`nonce`] is always `None` and the tags carry no nonce.

/// The nonce of the request being handled, inside a [`ContentSecurityPolicy`] layer.
#[cfg(feature = "csp")]
pub fn nonce() -> Option<std::sync::Arc<str>> {
    NONCE.try_with(|n| n.clone()).ok()
}

/// The nonce of the request being handled: `None` without the `csp` feature.
#[cfg(not(feature = "csp"))]
pub fn nonce() -> Option<std::sync::Arc<str>> {
    None
}

/// ` nonce="…"` for the request being handled, or nothing.
pub(crate) fn nonce_attribute() -> String {
    match nonce() {
        Some(n) => format!(" nonce=\"{n}\""),
        None => String::new(),
    }
}

#[cfg(feature = "csp")]
pub use layer::*;

#[cfg(feature = "csp")]
tokio::task_local! {
    static NONCE: std::sync::Arc<str>;
}

#[cfg(feature = "csp")]
mod layer {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{Context, Poll};

    use base64::Engine as _;
    use http::header::{CONTENT_SECURITY_POLICY, HeaderValue};
    use http::{Request, Response};

    use super::NONCE;

    /// A policy without `'unsafe-inline'`: scripts and styles from the site itself or
    /// carrying the request's nonce; images also from `data:` URLs (the blur-up
    /// placeholders); no plugins, no `<base>`, no framing.
    pub const STRICT: &str = "default-src 'self'; script-src 'self' {nonce}; \
        style-src 'self' {nonce}; img-src 'self' data:; object-src 'none'; \
        base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

    /// The layer: see the [module documentation](super).
    #[derive(Debug, Clone)]
    pub struct ContentSecurityPolicy {
        policy: Arc<str>,
    }

    impl ContentSecurityPolicy {
        /// A policy in which `{nonce}` stands for `'nonce-…'`, the request's nonce.
        pub fn new(policy: impl Into<String>) -> Self {
            ContentSecurityPolicy {
                policy: policy.into().into(),
            }
        }

        /// [`STRICT`].
        pub fn strict() -> Self {
            Self::new(STRICT)
        }
    }

    impl<S> tower_layer::Layer<S> for ContentSecurityPolicy {
        type Service = CspService<S>;

        fn layer(&self, inner: S) -> Self::Service {
            CspService {
                inner,
                policy: self.policy.clone(),
            }
        }
    }

    /// The service of [`ContentSecurityPolicy`].
    #[derive(Debug, Clone)]
    pub struct CspService<S> {
        inner: S,
        policy: Arc<str>,
    }

    /// 128 random bits, base64: what CSP asks of a nonce.
    fn fresh_nonce() -> Arc<str> {
        let mut bytes = [0u8; 16];
        // The OS generator does not fail on the platforms we support; should it, a
        // nonce from the clock and a counter is still unique, if guessable.
        if getrandom::fill(&mut bytes).is_err() {
            use std::sync::atomic::{AtomicU64, Ordering};
            static COUNTER: AtomicU64 = AtomicU64::new(0);
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            bytes[..8].copy_from_slice(&t.to_le_bytes());
            bytes[8..].copy_from_slice(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
        }
        base64::engine::general_purpose::STANDARD
            .encode(bytes)
            .into()
    }

    impl<S, B, RB> tower_service::Service<Request<B>> for CspService<S>
    where
        S: tower_service::Service<Request<B>, Response = Response<RB>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        B: Send + 'static,
    {
        type Response = Response<RB>;
        type Error = S::Error;
        type Future = Pin<Box<dyn Future<Output = Result<Response<RB>, S::Error>> + Send>>;

        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            self.inner.poll_ready(cx)
        }

        fn call(&mut self, req: Request<B>) -> Self::Future {
            let clone = self.inner.clone();
            let mut inner = std::mem::replace(&mut self.inner, clone);
            let nonce = fresh_nonce();
            let header = self.policy.replace("{nonce}", &format!("'nonce-{nonce}'"));
            Box::pin(NONCE.scope(nonce, async move {
                let mut response = inner.call(req).await?;
                if !response.headers().contains_key(CONTENT_SECURITY_POLICY)
                    && let Ok(value) = HeaderValue::from_str(&header)
                {
                    response
                        .headers_mut()
                        .insert(CONTENT_SECURITY_POLICY, value);
                }
                Ok(response)
            }))
        }
    }
}
