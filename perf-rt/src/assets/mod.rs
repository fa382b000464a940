//! Serves the assets that perf-build embedded into the binary: no filesystem, no copies.
//!
//! Every request is a [`phf`] lookup followed by header work; the body is the embedded
//! `&'static [u8]` of the chosen encoding. Hashed URLs (`/static/css/app.3f9a1c2e.css`)
//! are cached for a year as `immutable`; the logical path (`/static/css/app.css`) stays
//! reachable with `no-cache`, so it revalidates with the ETag.
//!
//! ```ignore
//! perf_rt::include_assets!(); // defines ASSETS and asset_url!
//!
//! let app: axum::Router = axum::Router::new()
//!     .route("/", axum::routing::get(index))
//!     .merge(ASSETS.router());
//! ```
//!
//! Behaviour, in order: `GET`/`HEAD` only (405 otherwise); path checks (400 for `..`,
//! percent-encoded dots, slashes or NUL; 404 for unknown or overlong paths); a single
//! `Range` on the identity body (206/416, honouring `If-Range`); `Accept-Encoding`
//! negotiation with q-values over brotli, zstd, gzip and identity (406 when the client
//! refuses every one); `If-None-Match` (lists, weak comparison, `*`) → 304. A path that
//! names no asset is 404, except an earlier deploy's hashed URL of a script this build
//! still has: 410 with the build's id, for the CodeSplitter (see [`Assets::build_id`]).

use std::sync::OnceLock;

mod critical;
#[cfg(all(feature = "dev", debug_assertions))]
mod dev;
mod image;
mod negotiate;
mod path;
mod service;
mod split;

#[cfg(feature = "axum")]
mod router;

pub use critical::{Critical, WithNonce};
pub use image::{Image, ImageFormat, ImageSource, Picture, Preload};
pub use negotiate::Encoding;
pub use service::AssetService;
pub use split::{BUILD_HEADER, FEATURE_STYLES_ID, FEATURES_DIR};

/// Marks a response of the [`AssetService`] (a response extension): its body is already
/// compressed as well as it can be, so response compression must leave it alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Embedded;

/// One embedded asset. Built by the generated code; read through [`Assets`].
#[derive(Debug)]
pub struct Asset {
    /// Logical path under the static dir, as written in `asset_url!`: `css/app.css`.
    pub path: &'static str,
    /// Hashed path under the static dir: `css/app.3f9a1c2e.css`.
    pub hashed_path: &'static str,
    /// Public URL of the hashed path: `/static/css/app.3f9a1c2e.css`.
    pub url: &'static str,
    /// `Content-Type` header value, with a charset for text.
    pub content_type: &'static str,
    /// Subresource Integrity value of the identity bytes: `sha384-…`.
    pub integrity: &'static str,
    /// Strong ETags (quoted), one per [`Encoding`], in [`Encoding::ALL`] order.
    pub etags: [&'static str; 4],
    /// The bytes as served without a content encoding.
    pub identity: &'static [u8],
    /// Brotli-compressed bytes, when smaller than identity.
    pub brotli: Option<&'static [u8]>,
    /// Zstandard-compressed bytes, when smaller than identity.
    pub zstd: Option<&'static [u8]>,
    /// Gzip-compressed bytes, when smaller than identity.
    pub gzip: Option<&'static [u8]>,
    /// Logical paths of the local modules this JavaScript module imports statically.
    pub imports: &'static [&'static str],
    /// For an image's main asset (served at its logical path): every variant perf-build
    /// made of it.
    pub image: Option<&'static Image>,
    /// For a template's critical CSS (`_perf/critical/<template>.css`): what
    /// `critical_css!` renders.
    pub critical: Option<&'static Critical>,
}

/// An asset with every field empty, for unit tests to fill in what they need.
#[cfg(test)]
pub(crate) const TEST_ASSET: Asset = Asset {
    path: "",
    hashed_path: "",
    url: "",
    content_type: "",
    integrity: "",
    etags: ["", "", "", ""],
    identity: b"",
    brotli: None,
    zstd: None,
    gzip: None,
    imports: &[],
    image: None,
    critical: None,
};

impl Asset {
    /// The body for `encoding`, if this asset has it.
    pub fn body(&self, encoding: Encoding) -> Option<&'static [u8]> {
        match encoding {
            Encoding::Identity => Some(self.identity),
            Encoding::Brotli => self.brotli,
            Encoding::Zstd => self.zstd,
            Encoding::Gzip => self.gzip,
        }
    }

    /// Whether more than one encoding exists, so responses vary on `Accept-Encoding`.
    pub fn is_negotiable(&self) -> bool {
        self.brotli.is_some() || self.zstd.is_some() || self.gzip.is_some()
    }
}

/// A value of the generated lookup map: the asset, and whether the key was its hashed
/// path (served `immutable`) or its logical path (served `no-cache`).
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// The asset.
    pub asset: &'static Asset,
    /// `true` when the key is the hashed path.
    pub hashed: bool,
}

/// How perf-rt's development mode runs the application's build script again: recorded by
/// perf-build in the generated code of debug builds (`None` in release builds).
#[doc(hidden)]
#[derive(Debug)]
pub struct DevScript {
    /// The build script's executable.
    pub program: &'static str,
    /// The variables Cargo gave it (and the `PERF_BUILD_*` ones), sorted.
    pub env: &'static [(&'static str, &'static str)],
}

/// Every embedded asset of an application: the `ASSETS` static that
/// [`include_assets!`](crate::include_assets) defines.
#[derive(Debug)]
pub struct Assets {
    map: &'static phf::Map<&'static str, Entry>,
    list: &'static [&'static Asset],
    prefix: &'static str,
    import_map: &'static str,
    longest_key: usize,
    build_id: OnceLock<String>,
    feature_styles: OnceLock<String>,
    dev_script: Option<&'static DevScript>,
    #[cfg(all(feature = "dev", debug_assertions))]
    dev: OnceLock<Option<std::sync::Arc<dev::Dev>>>,
}

impl Assets {
    #[doc(hidden)]
    pub const fn new(
        map: &'static phf::Map<&'static str, Entry>,
        list: &'static [&'static Asset],
        prefix: &'static str,
        import_map: &'static str,
        longest_key: usize,
        dev_script: Option<&'static DevScript>,
    ) -> Self {
        Assets {
            map,
            list,
            prefix,
            import_map,
            longest_key,
            build_id: OnceLock::new(),
            feature_styles: OnceLock::new(),
            dev_script,
            #[cfg(all(feature = "dev", debug_assertions))]
            dev: OnceLock::new(),
        }
    }

    /// Whether the assets are served in development mode: a debug build with perf-rt's
    /// `dev` feature, run with `PERF_DEV=1`, whose build script could start (see
    /// [`Assets::router`]). Always `false` in a release build. Starts the development
    /// build on first call.
    pub fn dev_mode(&'static self) -> bool {
        #[cfg(all(feature = "dev", debug_assertions))]
        {
            self.dev().is_some()
        }
        #[cfg(not(all(feature = "dev", debug_assertions)))]
        {
            let _ = self.dev_script;
            false
        }
    }

    #[cfg(all(feature = "dev", debug_assertions))]
    pub(crate) fn dev(&'static self) -> Option<std::sync::Arc<dev::Dev>> {
        self.dev
            .get_or_init(|| {
                if !dev::wanted() {
                    return None;
                }
                match self.dev_script {
                    Some(script) => dev::Dev::start(self, script),
                    None => {
                        eprintln!(
                            "perf-rt: PERF_DEV is set but these assets were not embedded by a \
                             Cargo build script; serving the embedded assets"
                        );
                        None
                    }
                }
            })
            .clone()
    }

    /// The asset at a logical path (`css/app.css`), for names only known at run time.
    /// Use `asset_url!` for literal names: it is checked at compile time.
    pub fn get(&self, path: &str) -> Option<&'static Asset> {
        self.map
            .get(path.trim_start_matches('/'))
            .filter(|e| !e.hashed)
            .map(|e| e.asset)
    }

    /// The hashed URL of the asset at a logical path.
    pub fn url(&self, path: &str) -> Option<&'static str> {
        self.get(path).map(|a| a.url)
    }

    /// Looks up a path relative to the URL prefix, hashed or logical.
    pub fn lookup(&self, relative: &str) -> Option<Entry> {
        self.map.get(relative).copied()
    }

    /// All assets, sorted by logical path.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &'static Asset> + use<> {
        self.list.iter().copied()
    }

    /// Number of assets.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether no asset was embedded.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The URL prefix the assets are served under, without a trailing slash: `/static`.
    pub fn prefix(&self) -> &'static str {
        self.prefix
    }

    /// The import map (JSON) from every JavaScript module's logical URL to its hashed URL.
    ///
    /// Modules import each other by logical path (`import "./util.js"`); the browser
    /// resolves those through this map, so a changed module changes only its own URL and
    /// its importers stay cached.
    pub fn import_map(&self) -> &'static str {
        self.import_map
    }

    /// A `<script type="importmap">` element carrying [`Assets::import_map`], to place in
    /// `<head>` before any module script; with the request's CSP nonce inside a
    /// [`ContentSecurityPolicy`](crate::csp) layer.
    ///
    /// When a named feature has a stylesheet, a data block with
    /// [`Assets::feature_styles_json`] follows it
    /// (`<script type="application/json" id="perf-feature-styles">`), for
    /// `CodeSplitter.loadFeature`.
    pub fn import_map_tag(&self) -> String {
        let mut tag = format!(
            "<script type=\"importmap\"{}>{}</script>",
            crate::csp::nonce_attribute(),
            self.import_map.replace("</", "<\\/")
        );
        let styles = self.feature_styles();
        if styles != "{}" {
            tag.push_str(&format!(
                "<script type=\"application/json\" id=\"{FEATURE_STYLES_ID}\">{styles}</script>"
            ));
        }
        tag
    }

    /// The critical CSS of a template (relative to the templates directory), for names
    /// chosen at run time; `critical_css!("index.html")` checks literal names at compile
    /// time.
    pub fn critical(&self, template: &str) -> Option<&'static Critical> {
        self.get(&format!("_perf/critical/{template}.css"))
            .and_then(|a| a.critical)
    }

    /// The `style-src` sources (`'sha256-…'`, space-separated) that let every template's
    /// inline critical CSS through a static Content-Security-Policy without nonces.
    pub fn critical_csp_hashes(&self) -> String {
        self.list
            .iter()
            .filter_map(|a| a.critical)
            .map(|c| format!("'{}'", c.csp_hash))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// `<link rel="modulepreload">` elements for every local module that the module at
    /// `path` imports, directly or not, so the browser fetches the graph in parallel;
    /// empty for an unknown module. [`Assets::modulepreload_header`] lists the same
    /// modules.
    ///
    /// The links carry the modules' `integrity` and no `crossorigin`: the assets are
    /// served from the page's own origin, where a module script without `crossorigin`
    /// is fetched with the same credentials mode as a preload without it, so the preloaded
    /// response is the one the import uses.
    pub fn modulepreload_tags(&self, path: &str) -> String {
        let mut out = String::new();
        for a in self.preload_graph(path).unwrap_or_default() {
            out.push_str(&format!(
                "<link rel=\"modulepreload\" href=\"{}\" integrity=\"{}\">",
                a.url, a.integrity
            ));
        }
        out
    }

    /// The embedded image at a logical path (`img/hero.jpg`), for names only known at run
    /// time (user content); `image!` checks literal names at compile time.
    pub fn image(&self, path: &str) -> Option<&'static Image> {
        self.get(path).and_then(|a| a.image)
    }

    /// The `<picture>` of the embedded image at a logical path, as `image!` renders it.
    pub fn picture(&self, path: &str) -> Option<Picture<'static>> {
        self.image(path).map(Picture::new)
    }

    /// The `<link rel="stylesheet">` of the blur-up placeholders that `image!` pictures
    /// use (`_perf/images.css`), for `<head>`; empty when no image was embedded.
    pub fn image_placeholders_tag(&self) -> String {
        self.get("_perf/images.css")
            .map(|a| format!("<link rel=\"stylesheet\" href=\"{}\">", a.url))
            .unwrap_or_default()
    }

    /// The `<script>` of the ImageOptimizer (`globalThis.ImageOptimizer`:
    /// `optimizeImages`, `preloadCriticalImages`), deferred, with the image manifest's
    /// URL in `data-manifest`; empty when no image was embedded.
    pub fn image_optimizer_tag(&self) -> String {
        match (
            self.get("_perf/image-optimizer.js"),
            self.get("_perf/images.json"),
        ) {
            (Some(script), Some(manifest)) => format!(
                "<script src=\"{}\" integrity=\"{}\" data-manifest=\"{}\" defer{}></script>",
                script.url,
                script.integrity,
                manifest.url,
                crate::csp::nonce_attribute()
            ),
            _ => String::new(),
        }
    }

    /// The tower service that serves these assets.
    pub fn service(&'static self) -> AssetService {
        #[cfg(feature = "askama")]
        crate::askama_filters::use_assets(self);
        AssetService::new(self)
    }

    pub(crate) fn longest_key(&self) -> usize {
        self.longest_key
    }
}
