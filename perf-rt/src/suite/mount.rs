//! Mounting the embedded assets into an application's router that may already serve them.
//!
//! The README shows both `.merge(ASSETS.router())` in the application and
//! `Config::assets(&ASSETS)` for the suite, and a reader may well write both. axum panics
//! on a second route at `/static/{*path}`, so the suite first asks the router whether it
//! already serves these very assets (the answer is the embedded bytes' ETag), and only
//! mounts them when it does not. A route of the application's own that conflicts is
//! reported as an error naming what to remove, not a panic.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use http::{Method, Request, header};
use tower_service::Service;

use crate::assets::{Assets, Embedded};

/// Whether `router` answers `assets`' first hashed URL with those very bytes: the
/// application merged `assets.router()` itself.
pub(super) async fn serves(router: &Router, assets: &'static Assets) -> bool {
    let Some(asset) = assets.iter().next() else {
        // Nothing to serve: mounting changes nothing either way.
        return true;
    };
    let Ok(request) = Request::builder()
        .method(Method::HEAD)
        .uri(asset.url)
        .body(Body::empty())
    else {
        return false;
    };
    // With a fallback of our own, the probe runs none of the application's code unless a
    // route of its own matches the asset's URL (its fallback may render a page, and a
    // page may read settings the application fills in only after start-up). HEAD is the
    // safe method a crawler would send anyway.
    let mut service = router
        .clone()
        .fallback(|| async { http::StatusCode::NOT_FOUND });
    let Ok(response) = service.call(request).await;
    // In development mode the latest development build answers, with ETags of its own.
    response.extensions().get::<Embedded>().is_some()
        && (assets.dev_mode()
            || response
                .headers()
                .get(header::ETAG)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|etag| asset.etags.contains(&etag)))
}

thread_local! {
    /// Set while [`merge`] runs on this thread: the panic hook stays quiet, since the
    /// panic becomes an error.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// `router.merge(other)`, with axum's panic on a conflicting route turned into its
/// message. (Under `panic = "abort"` a conflict still aborts: [`serves`] keeps the
/// README's combinations away from it.)
pub(super) fn merge(router: Router, other: Router) -> Result<Router, String> {
    let previous = Arc::new(std::panic::take_hook());
    let chained = previous.clone();
    std::panic::set_hook(Box::new(move |info| {
        if !QUIET.get() {
            chained(info);
        }
    }));
    QUIET.set(true);
    let merged = catch_unwind(AssertUnwindSafe(|| router.merge(other)));
    QUIET.set(false);
    // Back to the hook the application had, the very one once ours (holding the other
    // reference) is dropped. (Like any pair of `set_hook` calls, this races with another
    // thread setting a hook during the merge; the hook it set would be lost.)
    drop(std::panic::take_hook());
    match Arc::try_unwrap(previous) {
        Ok(hook) => std::panic::set_hook(hook),
        Err(previous) => std::panic::set_hook(Box::new(move |info| previous(info))),
    }
    merged.map_err(|payload| {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "a route conflict".into())
    })
}
