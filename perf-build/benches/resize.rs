//! The resampler choice (BENCHMARKS.md, "Images"): fast_image_resize's Lanczos3 against
//! the `image` crate's own Lanczos3, on a 1920 × 1280 photograph of the example app,
//! down to the widths perf-build makes by default.
//!
//!     cargo bench -p perf-build --bench resize

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

fn photo() -> image::RgbaImage {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../example-app/static/img/photos/sunrise.jpg"
    );
    image::open(path)
        .expect("the example app's photograph")
        .into_rgba8()
}

fn resize(c: &mut Criterion) {
    let src = photo();
    let (w, h) = src.dimensions();
    let mut group = c.benchmark_group("lanczos3");
    group.sample_size(10);
    for width in [320u32, 1280] {
        let height = h * width / w;
        group.bench_with_input(
            BenchmarkId::new("fast_image_resize", width),
            &width,
            |b, _| {
                b.iter(|| {
                    let view = ImageRef::new(w, h, src.as_raw(), PixelType::U8x4).unwrap();
                    let mut dst = Image::new(width, height, PixelType::U8x4);
                    Resizer::new()
                        .resize(
                            &view,
                            &mut dst,
                            &ResizeOptions::new()
                                .resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3)),
                        )
                        .unwrap();
                    dst
                })
            },
        );
        group.bench_with_input(BenchmarkId::new("image", width), &width, |b, _| {
            b.iter(|| {
                image::imageops::resize(&src, width, height, image::imageops::FilterType::Lanczos3)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, resize);
criterion_main!(benches);
