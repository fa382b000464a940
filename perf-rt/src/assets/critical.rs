//! A template's critical CSS, as `critical_css!("index.html")` renders it in `<head>`: the
//! CSS inline, then every full stylesheet loaded without blocking the first paint.

use std::fmt;

use super::Asset;
use super::image::attr;

/// The critical CSS perf-build extracted for one template. Its `Display` is the markup
/// for `<head>`:
///
/// - `<style>` with the critical CSS (and the request's CSP nonce, when
///   [`csp`](crate::csp) set one; otherwise [`Critical::csp_hash`] lets it through a
///   static policy);
/// - for each full stylesheet: `<link rel="preload" as="style">` (fetched early, at high
///   priority), `<link rel="stylesheet" media="print" data-perf-defer>` (applies nothing
///   until the loader switches it to all media, so it blocks nothing) and a `<noscript>`
///   link for browsers without JavaScript;
/// - the loader, an external deferred script: no inline script, no `onload=` attribute.
///
/// The full stylesheets keep their hashed, immutable URLs, so a returning visitor's cache
/// still applies.
#[derive(Debug)]
pub struct Critical {
    /// The template, relative to the templates directory: `index.html`.
    pub template: &'static str,
    /// The critical CSS, minified, URLs absolute.
    pub css: &'static str,
    /// `sha256-…` of [`Critical::css`]: the `style-src` source that allows the inline
    /// `<style>` without a nonce.
    pub csp_hash: &'static str,
    /// The critical CSS as an asset of its own (`_perf/critical/index.html.css`).
    pub asset: &'static Asset,
    /// The full stylesheets, in the page's order.
    pub stylesheets: &'static [&'static Asset],
    /// The script that applies the deferred stylesheets (`_perf/critical.js`).
    pub loader: Option<&'static Asset>,
}

impl Critical {
    /// The markup with an explicit nonce (for applications that make their own).
    pub fn with_nonce<'a>(&'a self, nonce: &'a str) -> WithNonce<'a> {
        WithNonce {
            critical: self,
            nonce: Some(nonce),
        }
    }

    /// The plain render-blocking `<link rel="stylesheet">` of every full stylesheet:
    /// what a page without critical CSS has (for comparisons).
    pub fn blocking_links(&self) -> String {
        let mut out = String::new();
        for s in self.stylesheets {
            out.push_str(&format!(
                "<link rel=\"stylesheet\" href=\"{}\" integrity=\"{}\">",
                s.url, s.integrity
            ));
        }
        out
    }

    fn render(&self, f: &mut fmt::Formatter<'_>, nonce: Option<&str>) -> fmt::Result {
        let nonce_attr = |f: &mut fmt::Formatter<'_>| match nonce {
            Some(n) => write!(f, " nonce=\"{}\"", attr(n)),
            None => Ok(()),
        };
        f.write_str("<style")?;
        nonce_attr(f)?;
        write!(f, " data-perf-critical=\"{}\">", attr(self.template))?;
        // perf-build escapes `</style` inside the CSS.
        f.write_str(self.css)?;
        f.write_str("</style>")?;
        for s in self.stylesheets {
            write!(
                f,
                "<link rel=\"preload\" as=\"style\" href=\"{0}\" integrity=\"{1}\">\
                 <link rel=\"stylesheet\" href=\"{0}\" integrity=\"{1}\" media=\"print\" data-perf-defer>",
                s.url, s.integrity
            )?;
        }
        f.write_str("<noscript>")?;
        for s in self.stylesheets {
            write!(
                f,
                "<link rel=\"stylesheet\" href=\"{}\" integrity=\"{}\">",
                s.url, s.integrity
            )?;
        }
        f.write_str("</noscript>")?;
        if let Some(loader) = self.loader {
            write!(
                f,
                "<script src=\"{}\" integrity=\"{}\" defer",
                loader.url, loader.integrity
            )?;
            nonce_attr(f)?;
            f.write_str("></script>")?;
        }
        Ok(())
    }
}

impl fmt::Display for Critical {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nonce = crate::csp::nonce();
        self.render(f, nonce.as_deref())
    }
}

/// [`Critical`] with an explicit nonce.
#[derive(Debug, Clone, Copy)]
pub struct WithNonce<'a> {
    critical: &'a Critical,
    nonce: Option<&'a str>,
}

impl fmt::Display for WithNonce<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.critical.render(f, self.nonce)
    }
}

#[cfg(feature = "askama")]
impl askama::filters::HtmlSafe for Critical {}
#[cfg(feature = "askama")]
impl askama::filters::HtmlSafe for WithNonce<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    const fn asset(url: &'static str, integrity: &'static str) -> Asset {
        Asset {
            url,
            content_type: "text/css",
            integrity,
            ..crate::assets::TEST_ASSET
        }
    }

    static APP: Asset = asset("/static/css/app.1.css", "sha384-a");
    static IMAGES: Asset = asset("/static/_perf/images.2.css", "sha384-b");
    static LOADER: Asset = asset("/static/_perf/critical.3.js", "sha384-c");
    static SELF: Asset = asset("/static/_perf/critical/index.html.4.css", "");
    static CRITICAL: Critical = Critical {
        template: "index.html",
        css: "body{margin:0}",
        csp_hash: "sha256-x",
        asset: &SELF,
        stylesheets: &[&APP, &IMAGES],
        loader: Some(&LOADER),
    };

    #[test]
    fn renders_inline_css_deferred_stylesheets_and_the_loader() {
        let html = CRITICAL.with_nonce("n\"1").to_string();
        assert!(html.starts_with(
            "<style nonce=\"n&quot;1\" data-perf-critical=\"index.html\">body{margin:0}</style>"
        ));
        for (url, sri) in [(APP.url, "sha384-a"), (IMAGES.url, "sha384-b")] {
            assert!(html.contains(&format!(
                "<link rel=\"preload\" as=\"style\" href=\"{url}\" integrity=\"{sri}\">"
            )));
            assert!(html.contains(&format!(
                "<link rel=\"stylesheet\" href=\"{url}\" integrity=\"{sri}\" media=\"print\" data-perf-defer>"
            )));
        }
        assert!(html.contains("<noscript><link rel=\"stylesheet\" href=\"/static/css/app.1.css\""));
        assert!(html.ends_with(
            "<script src=\"/static/_perf/critical.3.js\" integrity=\"sha384-c\" defer nonce=\"n&quot;1\"></script>"
        ));
        assert!(!html.contains("onload"));
        // Outside a CSP layer: no nonce attribute at all.
        let plain = CRITICAL.to_string();
        assert!(plain.starts_with("<style data-perf-critical="), "{plain}");
        assert!(!plain.contains("nonce"));
        assert_eq!(
            CRITICAL.blocking_links(),
            "<link rel=\"stylesheet\" href=\"/static/css/app.1.css\" integrity=\"sha384-a\"><link rel=\"stylesheet\" href=\"/static/_perf/images.2.css\" integrity=\"sha384-b\">"
        );
    }
}
