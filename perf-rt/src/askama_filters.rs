//! askama filters for asset names known only at run time, the seed's filter form:
//! `{{ "css/app.css"|asset_url }}` and `{{ "img/hero.jpg"|image(alt = "…", sizes = "50vw") }}`.
//!
//! Literal names are better written with `asset_url!` and `image!`, which are checked at
//! compile time; these look the name up when the page renders, so an unknown name is a
//! render error (perf-build's template check still reports a literal one at build time).
//! Bring them into the module of your templates:
//!
//! ```ignore
//! mod filters {
//!     pub use perf_rt::askama_filters::*;
//! }
//! ```
//!
//! They read the assets that [`Assets::service`] or [`Assets::router`](crate::assets::Assets)
//! was first called on, or that [`use_assets`] names.

// `#[askama::filter_fn]` generates a builder struct per filter, without docs.
#![allow(missing_docs)]

use std::fmt::Display;
use std::sync::OnceLock;

use askama::filters::Safe;

use crate::assets::Assets;

static ASSETS: OnceLock<&'static Assets> = OnceLock::new();

/// The assets the filters look names up in. The first call wins; serving the assets
/// (`ASSETS.router()`, `ASSETS.service()`) calls it too.
pub fn use_assets(assets: &'static Assets) {
    let _ = ASSETS.set(assets);
}

fn lookup<T>(
    filter: &str,
    name: &str,
    found: impl FnOnce(&'static Assets) -> Option<T>,
) -> askama::Result<T> {
    let assets = ASSETS.get().copied().ok_or_else(|| {
        askama::Error::custom(format!(
            "{filter}: no assets to look \"{name}\" up in: serve them first (ASSETS.router()) or call perf_rt::askama_filters::use_assets(&ASSETS)"
        ))
    })?;
    found(assets).ok_or_else(|| {
        askama::Error::custom(format!(
            "{filter}: no {} named \"{name}\" was embedded",
            if filter == "image" { "image" } else { "asset" }
        ))
    })
}

/// `{{ name|asset_url }}`: the hashed URL of an embedded asset.
#[askama::filter_fn]
pub fn asset_url(name: impl Display, _: &dyn askama::Values) -> askama::Result<&'static str> {
    let name = name.to_string();
    lookup("asset_url", &name, |a| a.url(&name))
}

/// `{{ name|image(alt = "…", sizes = "…", priority = true) }}`: the `<picture>` that
/// `image!` renders, for an image named at run time.
#[askama::filter_fn]
pub fn image(
    name: impl Display,
    _: &dyn askama::Values,
    #[optional("")] alt: &str,
    #[optional("100vw")] sizes: &str,
    #[optional(false)] priority: bool,
) -> askama::Result<Safe<String>> {
    let name = name.to_string();
    let picture = lookup("image", &name, |a| a.picture(&name))?;
    Ok(Safe(
        picture.alt(alt).sizes(sizes).priority(priority).to_string(),
    ))
}
