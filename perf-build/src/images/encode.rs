//! The encoders, each the best measured for its format (BENCHMARKS.md): libwebp for lossy
//! WebP, rav1e through ravif for AVIF, mozjpeg for JPEG, oxipng for PNG. Each takes
//! upright sRGB RGBA8 pixels and writes no metadata.

use rgb::FromSlice;

/// Lossy WebP at `quality` (libwebp, method 4 as cwebp and sharp use by default).
pub fn webp(
    rgba: &[u8],
    width: u32,
    height: u32,
    quality: f32,
    alpha: bool,
) -> Result<Vec<u8>, String> {
    let rgb;
    let encoder = if alpha {
        webp::Encoder::from_rgba(rgba, width, height)
    } else {
        rgb = opaque_rgb(rgba);
        webp::Encoder::from_rgb(&rgb, width, height)
    };
    let mut config =
        webp::WebPConfig::new().map_err(|_| "libwebp refused its default configuration")?;
    config.quality = quality;
    config.method = 4;
    config.alpha_compression = 1;
    encoder
        .encode_advanced(&config)
        .map(|m| m.to_vec())
        .map_err(|e| format!("WebP encoding failed: {e:?}"))
}

/// AVIF at `quality` and `speed` (rav1e through ravif; 10-bit, alpha kept only when some
/// pixel is not opaque).
pub fn avif(
    rgba: &[u8],
    width: u32,
    height: u32,
    quality: f32,
    speed: u8,
) -> Result<Vec<u8>, String> {
    let pixels = ravif::Img::new(rgba.as_rgba(), width as usize, height as usize);
    ravif::Encoder::new()
        .with_quality(quality)
        .with_alpha_quality(quality)
        .with_speed(speed)
        .with_alpha_color_mode(ravif::AlphaColorMode::UnassociatedClean)
        .encode_rgba(pixels)
        .map(|e| e.avif_file)
        .map_err(|e| format!("AVIF encoding failed: {e}"))
}

/// A progressive, trellis-quantised JPEG at `quality` (mozjpeg's defaults otherwise).
pub fn jpeg(rgba: &[u8], width: u32, height: u32, quality: f32) -> Result<Vec<u8>, String> {
    let rgb = opaque_rgb(rgba);
    std::panic::catch_unwind(|| -> std::io::Result<Vec<u8>> {
        let mut c = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
        c.set_size(width as usize, height as usize);
        c.set_quality(quality);
        c.set_progressive_mode();
        c.set_optimize_scans(true);
        c.set_optimize_coding(true);
        let mut started = c.start_compress(Vec::new())?;
        started.write_scanlines(&rgb)?;
        started.finish()
    })
    .map_err(|_| "mozjpeg failed".to_string())?
    .map_err(|e| format!("JPEG encoding failed: {e}"))
}

/// A plain PNG of `pixels` (`color` says their layout) from the `image` crate.
pub(super) fn plain_png(
    pixels: &[u8],
    width: u32,
    height: u32,
    color: image::ExtendedColorType,
    compression: image::codecs::png::CompressionType,
) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    image::ImageEncoder::write_image(
        image::codecs::png::PngEncoder::new_with_quality(
            &mut out,
            compression,
            image::codecs::png::FilterType::Adaptive,
        ),
        pixels,
        width,
        height,
        color,
    )
    .map_err(|e| format!("PNG encoding failed: {e}"))?;
    Ok(out)
}

/// A losslessly optimised PNG (oxipng at `level`, every ancillary chunk stripped).
pub fn png(rgba: &[u8], width: u32, height: u32, level: u8) -> Result<Vec<u8>, String> {
    let raw = plain_png(
        rgba,
        width,
        height,
        image::ExtendedColorType::Rgba8,
        image::codecs::png::CompressionType::Fast,
    )?;
    let mut options = oxipng::Options::from_preset(level);
    options.strip = oxipng::StripChunks::All;
    oxipng::optimize_from_memory(&raw, &options)
        .map_err(|e| format!("PNG optimisation failed: {e}"))
}

/// The RGB bytes of RGBA pixels, alpha dropped.
pub(super) fn opaque_rgb(rgba: &[u8]) -> Vec<u8> {
    rgba.chunks_exact(4)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect()
}
