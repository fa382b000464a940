//! Responsive images: what perf-build made of each image (its variants by format and
//! width, its intrinsic size, its placeholder), the `<picture>` markup that `image!`
//! renders from it, and the choice of a format from a request's `Accept` header.

use std::fmt::{self, Write as _};

use super::Asset;

/// An encoded image format, in the order browsers are offered them (best first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ImageFormat {
    /// `image/avif`
    Avif,
    /// `image/webp`
    Webp,
    /// `image/jpeg`
    Jpeg,
    /// `image/png`
    Png,
    /// `image/gif`
    Gif,
}

impl ImageFormat {
    /// Every format, best first.
    pub const ALL: [ImageFormat; 5] = [
        ImageFormat::Avif,
        ImageFormat::Webp,
        ImageFormat::Jpeg,
        ImageFormat::Png,
        ImageFormat::Gif,
    ];

    /// The media type.
    pub fn mime(self) -> &'static str {
        match self {
            ImageFormat::Avif => "image/avif",
            ImageFormat::Webp => "image/webp",
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Png => "image/png",
            ImageFormat::Gif => "image/gif",
        }
    }

    /// Every browser takes these without asking.
    fn universal(self) -> bool {
        matches!(
            self,
            ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::Gif
        )
    }
}

/// One encoded variant of an image.
#[derive(Debug)]
pub struct ImageSource {
    /// Its format.
    pub format: ImageFormat,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The asset holding it.
    pub asset: &'static Asset,
}

/// An image perf-build embedded, with every variant it made.
#[derive(Debug)]
pub struct Image {
    /// Intrinsic width, upright.
    pub width: u32,
    /// Intrinsic height, upright.
    pub height: u32,
    /// The class of the placeholder stylesheet (`_perf/images.css`) that paints its
    /// blur-up placeholder; `None` for images with transparency.
    pub placeholder: Option<&'static str>,
    /// Every variant, by format (best first) then width.
    pub sources: &'static [ImageSource],
}

impl Image {
    /// The variants of one format, narrowest first.
    pub fn of(&self, format: ImageFormat) -> impl Iterator<Item = &'static ImageSource> + use<> {
        let sources: &'static [ImageSource] = self.sources;
        sources.iter().filter(move |s| s.format == format)
    }

    /// The formats it has, best first (no allocation: this runs per request on an
    /// image's logical URL).
    pub fn formats(&self) -> impl Iterator<Item = ImageFormat> + use<> {
        let sources: &'static [ImageSource] = self.sources;
        ImageFormat::ALL
            .into_iter()
            .filter(move |f| sources.iter().any(|s| s.format == *f))
    }

    /// The format every browser takes (JPEG, PNG or GIF), present on every image that is
    /// not a WebP.
    pub fn fallback(&self) -> ImageFormat {
        self.formats()
            .find(|f| f.universal())
            .unwrap_or(ImageFormat::Webp)
    }

    /// The variant at full width in the best format that `accept` (an `Accept` header
    /// value) allows, among the formats that have one at full width: the highest q-value wins, ties going to the better format. AVIF
    /// and WebP count only when named (browsers name the modern formats they decode),
    /// JPEG, PNG and GIF also through `image/*` or `*/*`. `None` when the header refuses
    /// every format the image has (`q=0`).
    pub fn negotiate(&self, accept: Option<&str>) -> Option<&'static ImageSource> {
        // Only a variant at the image's own width stands in for it: a format whose
        // full-width variant was dropped (not smaller than the one it would replace)
        // exists at smaller widths only.
        let full = |f: ImageFormat| {
            let sources: &'static [ImageSource] = self.sources;
            sources
                .iter()
                .find(|s| s.format == f && s.width == self.width)
        };
        let weights = super::negotiate::media_weights(accept);
        let mut best: Option<(u16, usize, &'static ImageSource)> = None;
        for (rank, f) in self.formats().enumerate() {
            let q = weights.weight(f.mime(), f.universal());
            if q == 0 {
                continue;
            }
            let Some(source) = full(f) else { continue };
            // Highest weight wins; among equals, the better format (lower rank).
            if best.is_none_or(|(bq, _, _)| q > bq) {
                best = Some((q, rank, source));
            }
        }
        best.map(|(_, _, s)| s)
    }
}

/// The `<picture>` of an image, as `image!` renders it: a `<source>` per modern format
/// with a `srcset` of every width, and an `<img>` with the fallback's `srcset`, the
/// intrinsic `width` and `height` (no layout shift), lazy loading and async decoding
/// unless it is the page's `priority` image, and its placeholder class.
///
/// It writes no inline script and no `style` attribute, so a strict
/// `Content-Security-Policy` holds: the placeholder comes from the `_perf/images.css`
/// stylesheet (`img-src data:` must be allowed for it).
#[derive(Debug, Clone)]
pub struct Picture<'a> {
    image: &'static Image,
    alt: &'a str,
    sizes: &'a str,
    class: &'a str,
    priority: bool,
}

impl<'a> Picture<'a> {
    /// The picture of `image`, with `alt=""` and `sizes="100vw"` until set.
    pub fn new(image: &'static Image) -> Self {
        Picture {
            image,
            alt: "",
            sizes: "100vw",
            class: "",
            priority: false,
        }
    }

    /// The text alternative (escaped when rendered).
    pub fn alt(mut self, alt: &'a str) -> Self {
        self.alt = alt;
        self
    }

    /// The `sizes` attribute: how wide the image is shown.
    pub fn sizes(mut self, sizes: &'a str) -> Self {
        self.sizes = sizes;
        self
    }

    /// More classes for the `<img>`.
    pub fn class(mut self, class: &'a str) -> Self {
        self.class = class;
        self
    }

    /// The page's largest image: `fetchpriority="high"`, loaded eagerly. Pair it with
    /// `image_preload!` in `<head>`.
    pub fn priority(mut self, on: bool) -> Self {
        self.priority = on;
        self
    }

    /// The image this picture shows.
    pub fn image(&self) -> &'static Image {
        self.image
    }

    /// The matching `<link rel="preload" as="image">`.
    pub fn preload(self) -> Preload<'a> {
        Preload(self)
    }

    /// The `srcset` for browsers that take `format`: at every width made, the smallest
    /// variant among `format` and the formats after it (a browser that decodes
    /// AVIF decodes WebP and JPEG too). A width where `format` was dropped, as not
    /// smaller than the format it would replace, then still has a candidate, so a wide
    /// screen is not handed a narrower file to stretch.
    fn srcset(&self, format: ImageFormat) -> String {
        let img = self.image;
        let mut out = String::new();
        let mut widths: Vec<u32> = img.sources.iter().map(|s| s.width).collect();
        widths.sort_unstable();
        widths.dedup();
        for width in widths {
            let best = img
                .sources
                .iter()
                .filter(|s| s.width == width && s.format >= format)
                .min_by_key(|s| s.asset.identity.len());
            let Some(s) = best else { continue };
            if !out.is_empty() {
                out.push_str(", ");
            }
            let _ = write!(out, "{} {}w", attr(s.asset.url), s.width);
        }
        out
    }
}

/// Escapes text for an HTML attribute value in double quotes.
pub(crate) fn attr(s: &str) -> impl fmt::Display + '_ {
    struct Attr<'s>(&'s str);
    impl fmt::Display for Attr<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            for c in self.0.chars() {
                match c {
                    '&' => f.write_str("&amp;")?,
                    '"' => f.write_str("&quot;")?,
                    '<' => f.write_str("&lt;")?,
                    '>' => f.write_str("&gt;")?,
                    c => f.write_char(c)?,
                }
            }
            Ok(())
        }
    }
    Attr(s)
}

impl fmt::Display for Picture<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let img = self.image;
        let fallback = img.fallback();
        let sizes = attr(self.sizes);
        f.write_str("<picture>")?;
        for format in img.formats() {
            if format != fallback {
                write!(
                    f,
                    "<source type=\"{}\" srcset=\"{}\" sizes=\"{sizes}\">",
                    format.mime(),
                    self.srcset(format)
                )?;
            }
        }
        let src = attr(
            img.of(fallback)
                .max_by_key(|s| s.width)
                .map_or("", |s| s.asset.url),
        );
        write!(
            f,
            "<img src=\"{src}\" srcset=\"{}\" sizes=\"{sizes}\" width=\"{}\" height=\"{}\" alt=\"{}\"",
            self.srcset(fallback),
            img.width,
            img.height,
            attr(self.alt)
        )?;
        if self.priority {
            f.write_str(" fetchpriority=\"high\" decoding=\"async\"")?;
        } else {
            f.write_str(" loading=\"lazy\" decoding=\"async\"")?;
        }
        f.write_str(" class=\"perf-img")?;
        if let Some(p) = img.placeholder {
            write!(f, " {p}")?;
        }
        if !self.class.is_empty() {
            write!(f, " {}", attr(self.class))?;
        }
        f.write_str("\"></picture>")
    }
}

/// `<link rel="preload" as="image">` for a [`Picture`]: the best format's `imagesrcset`
/// and `type`, so a browser that cannot decode it skips the preload, and the same
/// `imagesizes` as the picture, so the preloaded file is the one the `<img>` will use.
#[derive(Debug, Clone)]
pub struct Preload<'a>(Picture<'a>);

impl fmt::Display for Preload<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.0;
        let Some(best) = p.image.formats().next() else {
            return Ok(());
        };
        write!(
            f,
            "<link rel=\"preload\" as=\"image\" type=\"{}\" imagesrcset=\"{}\" imagesizes=\"{}\" fetchpriority=\"high\">",
            best.mime(),
            p.srcset(best),
            attr(p.sizes)
        )
    }
}

#[cfg(feature = "askama")]
impl askama::filters::HtmlSafe for Picture<'_> {}
#[cfg(feature = "askama")]
impl askama::filters::HtmlSafe for Preload<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    const fn asset(url: &'static str) -> Asset {
        Asset {
            path: "img/a&b.jpg",
            hashed_path: "img/a&b.0.jpg",
            url,
            content_type: "image/jpeg",
            etags: ["\"a\"", "\"b\"", "\"c\"", "\"d\""],
            ..crate::assets::TEST_ASSET
        }
    }

    static SMALL: Asset = asset("/static/img/a&b-320w.1.avif");
    static FULL: Asset = asset("/static/img/a&b.0.jpg");
    static IMAGE: Image = Image {
        width: 640,
        height: 480,
        placeholder: None,
        sources: &[
            ImageSource {
                format: ImageFormat::Avif,
                width: 320,
                height: 240,
                asset: &SMALL,
            },
            ImageSource {
                format: ImageFormat::Jpeg,
                width: 640,
                height: 480,
                asset: &FULL,
            },
        ],
    };

    #[test]
    fn urls_and_text_are_escaped_in_the_markup() {
        let html = Picture::new(&IMAGE).alt("\"x\" & y").to_string();
        assert!(
            // AVIF was kept at 320 only: at 640 its source offers the JPEG.
            html.contains(
                "<source type=\"image/avif\" srcset=\"/static/img/a&amp;b-320w.1.avif 320w, /static/img/a&amp;b.0.jpg 640w\""
            ),
            "{html}"
        );
        assert!(html.contains("src=\"/static/img/a&amp;b.0.jpg\""), "{html}");
        assert!(html.contains("alt=\"&quot;x&quot; &amp; y\""), "{html}");
        assert!(!html.contains("a&b"), "{html}");
        let preload = Picture::new(&IMAGE).preload().to_string();
        assert!(preload.contains(
            "imagesrcset=\"/static/img/a&amp;b-320w.1.avif 320w, /static/img/a&amp;b.0.jpg 640w\""
        ));
    }

    #[test]
    fn formats_are_listed_best_first_once_each() {
        assert_eq!(
            IMAGE.formats().collect::<Vec<_>>(),
            [ImageFormat::Avif, ImageFormat::Jpeg]
        );
        assert_eq!(IMAGE.fallback(), ImageFormat::Jpeg);
        let chosen = |accept| IMAGE.negotiate(Some(accept)).map(|s| s.format);
        // AVIF exists only at 320 (its full-width variant was not smaller): the logical
        // URL answers at full width, so in JPEG.
        assert_eq!(chosen("image/avif,*/*"), Some(ImageFormat::Jpeg));
        assert_eq!(IMAGE.negotiate(Some("image/avif,*/*")).unwrap().width, 640);
        assert_eq!(chosen("image/webp,*/*"), Some(ImageFormat::Jpeg));
        assert_eq!(chosen("image/avif;q=0,image/jpeg;q=0"), None);
    }
}
