//! axum integration.

use super::Assets;

impl Assets {
    /// An axum router serving every asset under [`Assets::prefix`], to `merge` into the
    /// application's router.
    pub fn router<S>(&'static self) -> axum::Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let prefix = if self.prefix().is_empty() {
            ""
        } else {
            self.prefix()
        };
        axum::Router::new().route_service(&format!("{prefix}/{{*path}}"), self.service())
    }
}
