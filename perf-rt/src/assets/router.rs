//! axum integration.

use super::Assets;

impl Assets {
    /// An axum router serving every asset under [`Assets::prefix`], to `merge` into the
    /// application's router.
    ///
    /// In [development mode](Assets::dev_mode) (a debug build run with `PERF_DEV=1`) it
    /// serves the latest development build instead, and the live-reload events; add
    /// [`Assets::dev_html`] to the application's pages (the suite does).
    pub fn router<S>(&'static self) -> axum::Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let route = format!("{}/{{*path}}", self.prefix());
        #[cfg(all(feature = "dev", debug_assertions))]
        if let Some(dev) = self.dev() {
            return axum::Router::new().route(
                &route,
                axum::routing::any(move |req: axum::extract::Request| {
                    let dev = dev.clone();
                    async move {
                        dev.respond(req.method(), req.uri().path(), req.headers())
                            .await
                    }
                }),
            );
        }
        axum::Router::new().route_service(&route, self.service())
    }

    /// In [development mode](Assets::dev_mode), a page as the latest development build
    /// would have it: the embedded build's asset URLs and integrity values replaced by the
    /// latest build's, each `critical_css!` by the latest critical CSS, and the live-reload
    /// script added (with the page's CSP nonce). Any other response, and every response
    /// outside development mode, is returned as it is.
    ///
    /// [`init_performance_suite`](crate::suite::init_performance_suite) installs it when
    /// development mode is on; without the suite:
    ///
    /// ```ignore
    /// let app = app.merge(ASSETS.router());
    /// let app = if ASSETS.dev_mode() {
    ///     app.layer(axum::middleware::map_response(|r: axum::response::Response| {
    ///         ASSETS.dev_html(r)
    ///     }))
    /// } else {
    ///     app
    /// };
    /// ```
    pub async fn dev_html(
        &'static self,
        response: axum::response::Response,
    ) -> axum::response::Response {
        #[cfg(all(feature = "dev", debug_assertions))]
        if let Some(dev) = self.dev() {
            return dev.html(response).await;
        }
        response
    }
}
