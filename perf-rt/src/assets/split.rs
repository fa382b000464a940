//! What the CodeSplitter (`_perf/code-splitter.js`) needs from the server: the build's id,
//! the `410 Gone` answer for a module of an earlier deploy, the `Link` header that
//! preloads an entry's chunks, and the stylesheets of named features.
//!
//! ```ignore
//! perf_rt::include_assets!();
//!
//! async fn journal() -> impl axum::response::IntoResponse {
//!     let mut headers = axum::http::HeaderMap::new();
//!     if let Some(link) = ASSETS.modulepreload_header("js/journal.js") {
//!         headers.insert(axum::http::header::LINK, link.parse().unwrap());
//!     }
//!     (headers, render_journal())
//! }
//! ```
//!
//! A browser that loaded deploy N keeps asking for deploy N's hashed URLs after N+1 is
//! live. When such a URL names a script of the import map that this build still has
//! under another hash, the service answers `410 Gone` with the [`BUILD_HEADER`]; the
//! CodeSplitter, seeing it after a failed `import()`, reloads the page once per build
//! instead of throwing. Everything else that matches no asset stays a `404`.

use http::HeaderName;

use super::{Asset, Assets, path};

/// The response header that carries [`Assets::build_id`] on a `410 Gone` answer for a
/// script of an earlier deploy (`Perf-Build: 3f9a1c2e0b7d5a46`).
pub const BUILD_HEADER: HeaderName = HeaderName::from_static("perf-build");

/// Where named features live under the static dir: `features/<name>.js`, with an optional
/// stylesheet `features/<name>.css`.
pub const FEATURES_DIR: &str = "features/";

/// The `id` of the data block that [`Assets::import_map_tag`] adds when a feature has a
/// stylesheet, and that the CodeSplitter reads.
pub const FEATURE_STYLES_ID: &str = "perf-feature-styles";

impl Assets {
    /// A short, stable id of this build: 16 hex digits folded from every asset's logical
    /// path and content digest, computed once. Two builds of the same files have the same
    /// id; changing, adding or removing any asset changes it.
    ///
    /// It is the value of the [`BUILD_HEADER`] on `410 Gone` answers, which the
    /// CodeSplitter remembers so that it reloads a page at most once per build.
    pub fn build_id(&'static self) -> &'static str {
        self.build_id
            .get_or_init(|| fold(self.list.iter().copied()))
    }

    /// The script that `relative` (a path under the prefix that matched no asset) names
    /// under an earlier hash: `js/app.0badc0de.js` when `js/app.js` is in this build's
    /// import map under another hash. `None` for anything else.
    pub(crate) fn earlier_module(&self, relative: &str) -> Option<&'static Asset> {
        path::unhashed(relative).find_map(|logical| {
            self.get(&logical)
                .filter(|a| a.content_type.starts_with("text/javascript"))
                // The import map lists the scripts, each hashed URL as a JSON string
                // (URLs are percent-encoded: no quote or backslash to escape).
                .filter(|a| self.import_map.contains(&format!("\"{}\"", a.url)))
        })
    }

    /// The value of a `Link` header that preloads exactly what
    /// [`modulepreload_tags`](Assets::modulepreload_tags) preloads for the module at
    /// `entry`: `</static/js/util.3f9a1c2e.js>; rel=modulepreload, </static/…>; rel=…`.
    ///
    /// Sent with the page, it lets the browser start on the chunks before it has parsed the
    /// HTML (and a proxy can turn it into a `103 Early Hints`). `None` when `entry` is not
    /// an embedded asset, or imports nothing, so that no empty header is sent.
    pub fn modulepreload_header(&self, entry: &str) -> Option<String> {
        link_header(&self.preload_graph(entry)?)
    }

    /// Every module that the module at `entry` imports statically, directly or not, each
    /// once, in a stable order; `None` for an unknown entry.
    pub(crate) fn preload_graph(&self, entry: &str) -> Option<Vec<&'static Asset>> {
        Some(imported(self.get(entry)?, |p| self.get(p)))
    }

    /// The stylesheets of named features as JSON, computed once: each
    /// `features/<name>.css` beside a `features/<name>.js`, by name, with its hashed URL
    /// and Subresource Integrity value:
    /// `{"chat":{"href":"/static/features/chat.3f9a1c2e.css","integrity":"sha384-…"}}`.
    ///
    /// [`import_map_tag`](Assets::import_map_tag) carries it in a
    /// `<script type="application/json" id="perf-feature-styles">` when it is not empty
    /// (`{}`), so `CodeSplitter.loadFeature(name)` knows whether a feature has a stylesheet
    /// without asking the server for one that does not exist. A data block is not script:
    /// a Content-Security-Policy needs no nonce or hash for it.
    pub fn feature_styles_json(&'static self) -> &'static str {
        self.feature_styles()
    }

    /// [`feature_styles_json`](Assets::feature_styles_json), for any borrow.
    pub(crate) fn feature_styles(&self) -> &str {
        self.feature_styles
            .get_or_init(|| feature_styles(self.list.iter().copied(), |js| self.get(js).is_some()))
    }
}

/// FNV-1a (64 bits) over every asset's logical path and SRI digest (SHA-384 of its
/// bytes), as 16 hex digits. Not for security: it tells deploys apart.
fn fold<'a>(assets: impl Iterator<Item = &'a Asset>) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for a in assets {
        eat(a.path.as_bytes());
        eat(&[0]);
        eat(a.integrity.as_bytes());
        eat(b"\n");
    }
    format!("{h:016x}")
}

/// Every asset `entry` imports, directly or not, once each (a cycle included), depth
/// first in the order the imports are written; `get` looks up a logical path.
fn imported<'a>(entry: &'a Asset, get: impl Fn(&str) -> Option<&'a Asset>) -> Vec<&'a Asset> {
    let mut found: Vec<&Asset> = Vec::new();
    let mut stack: Vec<&str> = entry.imports.iter().rev().copied().collect();
    while let Some(p) = stack.pop() {
        if let Some(a) = get(p)
            && !std::ptr::eq(a, entry)
            && !found.iter().any(|f| std::ptr::eq(*f, a))
        {
            found.push(a);
            stack.extend(a.imports.iter().rev().copied());
        }
    }
    found
}

/// `<url>; rel=modulepreload` for each asset, comma-separated; `None` for none.
fn link_header(assets: &[&Asset]) -> Option<String> {
    if assets.is_empty() {
        return None;
    }
    let parts: Vec<String> = assets
        .iter()
        .map(|a| format!("<{}>; rel=modulepreload", a.url))
        .collect();
    Some(parts.join(", "))
}

/// The JSON of [`Assets::feature_styles_json`]: `has_js(logical)` says whether a
/// feature's module exists.
fn feature_styles<'a>(
    assets: impl Iterator<Item = &'a Asset>,
    has_js: impl Fn(&str) -> bool,
) -> String {
    let mut out = String::from("{");
    for a in assets {
        let Some(name) = a
            .path
            .strip_prefix(FEATURES_DIR)
            .and_then(|p| p.strip_suffix(".css"))
        else {
            continue;
        };
        if name.is_empty() || !has_js(&format!("{FEATURES_DIR}{name}.js")) {
            continue;
        }
        if out.len() > 1 {
            out.push(',');
        }
        out.push_str(&format!(
            "{}:{{\"href\":{},\"integrity\":{}}}",
            json_string(name),
            json_string(a.url),
            json_string(a.integrity)
        ));
    }
    out.push('}');
    out
}

/// A JSON string literal that is also safe inside a `<script>` element: `<` is escaped,
/// so no `</script>` or `<!--` can end or change the element.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '<' => out.push_str("\\u003c"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn asset(path: &'static str, url: &'static str, integrity: &'static str) -> Asset {
        Asset {
            path,
            url,
            content_type: "text/css; charset=utf-8",
            integrity,
            ..crate::assets::TEST_ASSET
        }
    }

    static APP: Asset = asset("css/app.css", "/static/css/app.11111111.css", "sha384-a");
    static CHAT: Asset = asset(
        "features/chat.css",
        "/static/features/chat.22222222.css",
        "sha384-b",
    );
    static ODD: Asset = asset(
        "features/<odd\">.css",
        "/static/features/%3Codd%22%3E.33333333.css",
        "sha384-c",
    );
    static ORPHAN: Asset = asset(
        "features/orphan.css",
        "/static/features/orphan.44444444.css",
        "sha384-d",
    );

    #[test]
    fn the_build_id_is_stable_and_changes_with_any_asset() {
        let a = fold([&APP, &CHAT].into_iter());
        assert_eq!(a.len(), 16);
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(a, fold([&APP, &CHAT].into_iter()));
        assert_ne!(a, fold([&APP].into_iter()));
        assert_ne!(a, fold([&APP, &ODD].into_iter()));
        // Same paths, other bytes.
        static CHANGED: Asset = asset("css/app.css", "/static/css/app.55555555.css", "sha384-z");
        assert_ne!(a, fold([&CHANGED, &CHAT].into_iter()));
        assert_ne!(fold(std::iter::empty()), a);
    }

    const fn module(path: &'static str, imports: &'static [&'static str]) -> Asset {
        Asset {
            path,
            url: path,
            content_type: "text/javascript; charset=utf-8",
            imports,
            ..crate::assets::TEST_ASSET
        }
    }

    #[test]
    fn the_preload_graph_is_transitive_and_lists_each_module_once() {
        // entry -> a -> (c, b), entry -> b -> (entry, d), c -> a: cycles both ways, a
        // shared module, and an import with no asset.
        static ENTRY: Asset = module("entry", &["a", "b"]);
        static A: Asset = module("a", &["c", "b"]);
        static B: Asset = module("b", &["entry", "d", "gone"]);
        static C: Asset = module("c", &["a"]);
        static D: Asset = module("d", &[]);
        static ALL: [&Asset; 5] = [&ENTRY, &A, &B, &C, &D];
        let get = |p: &str| ALL.iter().copied().find(|a| a.path == p);
        let names = |entry: &'static Asset| -> Vec<&str> {
            imported(entry, get).iter().map(|a| a.path).collect()
        };
        assert_eq!(names(&ENTRY), ["a", "c", "b", "d"]);
        assert_eq!(names(&C), ["a", "b", "entry", "d"]);
        assert!(names(&D).is_empty());
    }

    #[test]
    fn link_header_lists_each_url_as_a_modulepreload() {
        assert_eq!(link_header(&[]), None);
        assert_eq!(
            link_header(&[&APP, &CHAT]).unwrap(),
            "</static/css/app.11111111.css>; rel=modulepreload, \
             </static/features/chat.22222222.css>; rel=modulepreload"
        );
    }

    #[test]
    fn feature_styles_name_each_feature_stylesheet_beside_its_module() {
        let json = feature_styles([&APP, &CHAT, &ODD, &ORPHAN].into_iter(), |js| {
            js != "features/orphan.js"
        });
        assert_eq!(
            json,
            "{\"chat\":{\"href\":\"/static/features/chat.22222222.css\",\"integrity\":\"sha384-b\"},\
             \"\\u003codd\\\">\":{\"href\":\"/static/features/%3Codd%22%3E.33333333.css\",\"integrity\":\"sha384-c\"}}"
        );
        assert_eq!(feature_styles([&APP].into_iter(), |_| true), "{}");
    }

    #[test]
    fn json_strings_cannot_end_a_script_element() {
        assert_eq!(
            json_string("a</script><!--"),
            "\"a\\u003c/script>\\u003c!--\""
        );
        assert_eq!(json_string("q\"b\\\n"), "\"q\\\"b\\\\\\u000a\"");
    }
}
