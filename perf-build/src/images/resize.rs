//! Resizing with a Lanczos3 convolution (fast_image_resize: SIMD, alpha-aware), the
//! resampler sharp and libvips use by default.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

/// `rgba` (width × height, RGBA8) resized to `width` × `height`.
pub fn resize(rgba: &[u8], from: (u32, u32), to: (u32, u32)) -> Vec<u8> {
    if from == to {
        return rgba.to_vec();
    }
    let src = ImageRef::new(from.0, from.1, rgba, PixelType::U8x4).expect("an RGBA8 buffer");
    let mut dst = Image::new(to.0, to.1, PixelType::U8x4);
    Resizer::new()
        .resize(
            &src,
            &mut dst,
            &ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3)),
        )
        .expect("same pixel type on both sides");
    dst.into_vec()
}

/// The height of a variant `width` wide, keeping the aspect ratio (at least 1).
pub fn height_for(width: u32, from: (u32, u32)) -> u32 {
    ((u64::from(from.1) * u64::from(width) + u64::from(from.0) / 2) / u64::from(from.0)).max(1)
        as u32
}
