//! Blur-up placeholders: a ThumbHash of the image (about 25 bytes), rendered back into a
//! tiny PNG and written as a `data:` URI that stands in while the image loads.

use base64::Engine;

/// The placeholder of an opaque image, `data:image/png;base64,…` (a few hundred bytes).
pub fn data_uri(rgba: &[u8], width: u32, height: u32) -> Result<String, String> {
    // ThumbHash takes at most 100 × 100 pixels.
    let scale = 100.0 / f64::from(width.max(height));
    let (w, h) = if scale < 1.0 {
        (
            ((f64::from(width) * scale).round() as u32).max(1),
            ((f64::from(height) * scale).round() as u32).max(1),
        )
    } else {
        (width, height)
    };
    let small = super::resize::resize(rgba, (width, height), (w, h));
    let hash = thumbhash::rgba_to_thumb_hash(w as usize, h as usize, &small);
    let (pw, ph, pixels) =
        thumbhash::thumb_hash_to_rgba(&hash).map_err(|()| "the placeholder did not decode")?;
    let png = super::encode::plain_png(
        &super::encode::opaque_rgb(&pixels),
        pw as u32,
        ph as u32,
        image::ExtendedColorType::Rgb8,
        image::codecs::png::CompressionType::Best,
    )
    .map_err(|e| format!("placeholder: {e}"))?;
    Ok(format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    ))
}
