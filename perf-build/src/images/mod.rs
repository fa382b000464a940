//! The image kind: every JPEG, PNG, WebP and GIF becomes responsive variants (the
//! configured widths below its own, plus its own) in AVIF, WebP and its own format
//! recompressed, keeping a variant only when it is smaller than the one it stands in
//! for, with its intrinsic size and a blur-up placeholder for the manifest.
//!
//! An input `img/hero.jpg` 1600 px wide gives `img/hero.jpg` (recompressed, its own
//! width: what CSS `url()`s and the logical URL serve), `img/hero-320w.jpg` …
//! `img/hero-1280w.jpg`, and `img/hero-320w.webp` … `img/hero-1600w.webp` and the same in
//! AVIF. The whole output is a pure function of the bytes and the settings, so the
//! pipeline caches it: an unchanged image costs nothing on the next build.

mod decode;
mod encode;
pub mod manifest;
mod placeholder;
mod resize;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::config::ImageConfig;
use crate::discover::Input;
use crate::transform::{AssetKind, Piece, Transformed};
use decode::SourceFormat;

/// An encoded image format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Format {
    /// AVIF
    Avif,
    /// WebP
    Webp,
    /// JPEG
    Jpeg,
    /// PNG
    Png,
    /// GIF
    Gif,
}

impl Format {
    /// The media type: `image/avif`.
    pub fn mime(self) -> &'static str {
        match self {
            Format::Avif => "image/avif",
            Format::Webp => "image/webp",
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
            Format::Gif => "image/gif",
        }
    }

    /// The file extension: `avif`.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Avif => "avif",
            Format::Webp => "webp",
            Format::Jpeg => "jpg",
            Format::Png => "png",
            Format::Gif => "gif",
        }
    }

    /// The name perf-rt's `ImageFormat` has for it.
    pub fn rust_name(self) -> &'static str {
        match self {
            Format::Avif => "Avif",
            Format::Webp => "Webp",
            Format::Jpeg => "Jpeg",
            Format::Png => "Png",
            Format::Gif => "Gif",
        }
    }
}

/// One encoded variant of an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variant {
    /// Its format.
    pub format: Format,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The logical path of the piece holding it.
    pub logical: String,
}

/// What the manifest knows of an image: carried by its main piece.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageInfo {
    /// Intrinsic width, upright.
    pub width: u32,
    /// Intrinsic height, upright.
    pub height: u32,
    /// The blur-up placeholder (`data:image/png;base64,…`) of an opaque image.
    pub placeholder: Option<String>,
    /// Every variant, the main piece included, by format (best first) then width.
    pub variants: Vec<Variant>,
}

/// One width of an image in one format.
struct Encoded {
    format: Format,
    width: u32,
    height: u32,
    bytes: Vec<u8>,
}

/// The image kind.
pub struct Images {
    config: ImageConfig,
    avif: bool,
}

impl Images {
    /// The kind with the build's image settings.
    pub fn new(config: &ImageConfig) -> Self {
        Images {
            config: config.clone(),
            avif: config.avif_enabled(),
        }
    }
}

/// Whether the image kind takes the file at `logical`.
pub fn accepts(logical: &str) -> bool {
    let ext = logical
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase());
    matches!(
        ext.as_deref(),
        Some("jpg" | "jpeg" | "png" | "webp" | "gif")
    )
}

impl AssetKind for Images {
    fn name(&self) -> &'static str {
        "image"
    }

    fn accepts(&self, logical: &str) -> bool {
        accepts(logical)
    }

    fn options(&self) -> Result<Option<String>, Error> {
        let c = &self.config;
        Ok(Some(format!(
            "widths={:?} webp={} avif={}:{}:{} jpeg={} png={} max={} placeholders={}",
            c.widths,
            c.webp_quality,
            self.avif,
            c.avif_quality,
            c.avif_speed,
            c.jpeg_quality,
            c.png_level,
            c.max_pixels,
            c.placeholders
        )))
    }

    fn transform(&self, input: &Input, raw: &[u8]) -> Result<Transformed, Error> {
        let fail = |message: String| Error::Image {
            path: input.file.clone(),
            message,
        };
        let decoded = decode::decode(raw, self.config.max_pixels).map_err(fail)?;
        self.variants(input, raw, decoded).map_err(fail)
    }
}

/// A piece's logical name for a variant: `img/hero.jpg` → `img/hero-640w.webp`.
fn variant_name(logical: &str, width: u32, format: Format) -> String {
    let stem = match logical.rsplit_once('.') {
        Some((stem, _)) if !stem.ends_with('/') && !stem.is_empty() => stem,
        _ => logical,
    };
    format!("{stem}-{width}w.{}", format.extension())
}

fn piece(logical: String, bytes: Vec<u8>) -> Piece {
    Piece {
        logical,
        bytes,
        refs: Vec::new(),
        map: None,
        module: false,
        image: None,
        critical: None,
    }
}

impl Images {
    fn variants(
        &self,
        input: &Input,
        raw: &[u8],
        decoded: decode::Decoded,
    ) -> Result<Transformed, String> {
        let c = &self.config;
        let (width, height) = decoded.rgba.dimensions();
        let rgba = decoded.rgba.as_raw();
        let placeholder = if c.placeholders && !decoded.has_alpha {
            Some(placeholder::data_uri(rgba, width, height)?)
        } else {
            None
        };
        let own = match decoded.format {
            SourceFormat::Jpeg => Format::Jpeg,
            SourceFormat::Png => Format::Png,
            SourceFormat::Webp => Format::Webp,
            SourceFormat::Gif => Format::Gif,
        };
        if decoded.animated {
            // A still variant would lose the animation: served as it is.
            let mut main = piece(input.logical.clone(), raw.to_vec());
            main.image = Some(ImageInfo {
                width,
                height,
                placeholder,
                variants: vec![Variant {
                    format: own,
                    width,
                    height,
                    logical: input.logical.clone(),
                }],
            });
            return Ok(Transformed::single(main));
        }
        // The format every browser takes, re-encoded at every width. A still GIF is not
        // re-encoded: its own bytes are the fallback at full width, and its smaller widths
        // exist in the modern formats only.
        let fallback = match own {
            Format::Gif => None,
            f => Some(f),
        };
        let mut widths: Vec<u32> = c.widths.iter().copied().filter(|&w| w < width).collect();
        widths.push(width);
        let mut formats = Vec::new();
        if self.avif {
            formats.push(Format::Avif);
        }
        if own != Format::Webp {
            formats.push(Format::Webp);
        }
        formats.extend(fallback);

        // Every width, then every format of it, in parallel.
        let encoded: Vec<Result<Vec<Encoded>, String>> = widths
            .par_iter()
            .map(|&w| {
                let h = resize::height_for(w, (width, height));
                let pixels = resize::resize(rgba, (width, height), (w, h));
                formats
                    .par_iter()
                    .map(|&f| {
                        let bytes = match f {
                            Format::Avif => {
                                encode::avif(&pixels, w, h, c.avif_quality, c.avif_speed)
                            }
                            Format::Webp => {
                                encode::webp(&pixels, w, h, c.webp_quality, decoded.has_alpha)
                            }
                            Format::Jpeg => encode::jpeg(&pixels, w, h, c.jpeg_quality),
                            Format::Png => encode::png(&pixels, w, h, c.png_level),
                            Format::Gif => unreachable!("GIF is never encoded"),
                        }?;
                        Ok(Encoded {
                            format: f,
                            width: w,
                            height: h,
                            bytes,
                        })
                    })
                    .collect()
            })
            .collect();
        let mut by_width = Vec::with_capacity(widths.len());
        for e in encoded {
            by_width.push(e?);
        }

        let mut pieces = Vec::new();
        let mut variants = Vec::new();
        let mut main_bytes = raw.to_vec();
        for (i, set) in by_width.into_iter().enumerate() {
            let own_width = i == widths.len() - 1;
            let mut kept: Vec<Encoded> = Vec::new();
            // The fallback first (formats run best-first, so reversed), then WebP, then
            // AVIF: each kept only when smaller than the last one kept, which it replaces
            // for the browsers that accept it.
            for e in set.into_iter().rev() {
                let smallest = kept.last().map(|k| k.bytes.len());
                if Some(e.format) == fallback || smallest.is_none_or(|n| e.bytes.len() < n) {
                    kept.push(e);
                }
            }
            for Encoded {
                format: f,
                width: w,
                height: h,
                bytes,
            } in kept.into_iter().rev()
            {
                let logical = if own_width && Some(f) == fallback {
                    // Always the re-encoded image, even where an already optimised
                    // source was smaller: it is the upright one, without EXIF (camera,
                    // GPS) or other metadata.
                    main_bytes = bytes;
                    input.logical.clone()
                } else {
                    let name = variant_name(&input.logical, w, f);
                    pieces.push(piece(name.clone(), bytes));
                    name
                };
                variants.push(Variant {
                    format: f,
                    width: w,
                    height: h,
                    logical,
                });
            }
        }
        if fallback.is_none() {
            variants.push(Variant {
                format: own,
                width,
                height,
                logical: input.logical.clone(),
            });
        }
        variants.sort_by_key(|v| (v.format, v.width));
        let mut main = piece(input.logical.clone(), main_bytes);
        main.image = Some(ImageInfo {
            width,
            height,
            placeholder,
            variants,
        });
        pieces.insert(0, main);
        Ok(Transformed { pieces })
    }
}
