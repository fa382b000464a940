//! Decoding: any JPEG, PNG, WebP or GIF (its first frame) into 8-bit RGBA in sRGB, turned
//! upright by its EXIF orientation, with every piece of metadata left behind.

use std::io::Cursor;

use image::{AnimationDecoder, DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};

/// The formats the image kind reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    /// JPEG
    Jpeg,
    /// PNG
    Png,
    /// WebP
    Webp,
    /// GIF
    Gif,
}

/// A decoded image.
pub struct Decoded {
    /// Upright, sRGB, 8-bit RGBA pixels.
    pub rgba: image::RgbaImage,
    /// Whether any pixel is not fully opaque.
    pub has_alpha: bool,
    /// An animated GIF or WebP: served as it is, since a still variant would lose the
    /// animation.
    pub animated: bool,
    /// What the file was.
    pub format: SourceFormat,
}

/// Decodes `raw`, refusing an image whose declared size exceeds `max_pixels` before any
/// pixel memory is allocated. The error says what is wrong, without the path.
pub fn decode(raw: &[u8], max_pixels: u64) -> Result<Decoded, String> {
    let reader = ImageReader::new(Cursor::new(raw))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    let format = match reader.format() {
        Some(ImageFormat::Jpeg) => SourceFormat::Jpeg,
        Some(ImageFormat::Png) => SourceFormat::Png,
        Some(ImageFormat::WebP) => SourceFormat::Webp,
        Some(ImageFormat::Gif) => SourceFormat::Gif,
        Some(other) => {
            return Err(format!(
                "{other:?} images are not supported: convert it to JPEG, PNG, WebP or GIF"
            ));
        }
        None => {
            return Err(
                "not a JPEG, PNG, WebP or GIF image (its first bytes match none of them)".into(),
            );
        }
    };
    if format == SourceFormat::Jpeg && !has_end_of_image(raw) {
        return Err("the JPEG ends before its end-of-image marker: the file is truncated".into());
    }
    let mut decoder = reader.into_decoder().map_err(|e| e.to_string())?;
    let (width, height) = decoder.dimensions();
    let pixels = u64::from(width) * u64::from(height);
    if pixels > max_pixels {
        return Err(format!(
            "it declares {width}x{height} pixels ({pixels}), more than the limit of {max_pixels} \
             (images.max-pixels)"
        ));
    }
    if pixels == 0 {
        return Err("it declares no pixels".into());
    }
    let mut limits = Limits::default();
    // Room for the decoded frame in the widest sample type, plus the decoders' own buffers.
    limits.max_alloc = Some(max_pixels.saturating_mul(16).saturating_add(64 << 20));
    decoder.set_limits(limits).map_err(|e| e.to_string())?;
    let orientation = decoder.orientation().map_err(|e| e.to_string())?;
    let icc = decoder.icc_profile().ok().flatten();
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| e.to_string())?;
    img.apply_orientation(orientation);
    let mut rgba = img.into_rgba8();
    if let Some(icc) = icc {
        to_srgb(&mut rgba, &icc);
    }
    let has_alpha = rgba.pixels().any(|p| p.0[3] != 255);
    let animated = is_animated(raw, format);
    Ok(Decoded {
        rgba,
        has_alpha,
        animated,
        format,
    })
}

/// Whether a JPEG holds an end-of-image marker: a file cut short has none (inside the
/// entropy-coded data a 0xFF byte is always followed by 0x00).
fn has_end_of_image(raw: &[u8]) -> bool {
    raw.windows(2)
        .rev()
        .take(1 << 16)
        .any(|w| w == [0xFF, 0xD9])
}

/// Whether a GIF or WebP has more than one frame.
fn is_animated(raw: &[u8], format: SourceFormat) -> bool {
    match format {
        SourceFormat::Gif => image::codecs::gif::GifDecoder::new(Cursor::new(raw))
            .map(|d| d.into_frames().take(2).count() > 1)
            .unwrap_or(false),
        SourceFormat::Webp => image::codecs::webp::WebPDecoder::new(Cursor::new(raw))
            .map(|d| d.has_animation())
            .unwrap_or(false),
        _ => false,
    }
}

/// Converts pixels described by an ICC profile to sRGB. A profile that cannot be read
/// or applied (a grey or CMYK profile on RGB data) leaves the pixels as they are: the
/// browser would not have applied it either once the metadata is gone.
fn to_srgb(rgba: &mut image::RgbaImage, icc: &[u8]) {
    use moxcms::{ColorProfile, Layout, TransformOptions};
    let Ok(source) = ColorProfile::new_from_slice(icc) else {
        return;
    };
    let srgb = ColorProfile::new_srgb();
    let Ok(transform) = source.create_transform_8bit(
        Layout::Rgba,
        &srgb,
        Layout::Rgba,
        TransformOptions::default(),
    ) else {
        return;
    };
    let mut out = vec![0u8; rgba.as_raw().len()];
    if transform.transform(rgba.as_raw(), &mut out).is_ok() {
        rgba.copy_from_slice(&out);
    }
}
