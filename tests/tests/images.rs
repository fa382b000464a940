//! Images through the whole build and the server: decoding (EXIF orientation, alpha,
//! animation), the variants kept and their metadata, the cache across builds and target
//! directories, bad inputs, the `image!` markup, and the `Accept` negotiation of an
//! image's logical URL over a real socket.

mod common;

use common::files_in;
use std::io::Cursor;
use std::net::SocketAddr;
use std::path::Path;

use image::{ImageDecoder, ImageEncoder, Rgba, RgbaImage};
use perf_build::{Builder, ImageConfig};
use perf_tests::ASSETS;
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};
use serde_json::Value;

fn builder(root: &Path, cache: &Path) -> Builder {
    Builder::new()
        .cargo_instructions(false)
        .root(root)
        .static_dir("static")
        .templates_dir("no-templates")
        .check_templates(false)
        .cache_dir(cache)
        .quality(perf_build::Quality::Fast)
        .images(ImageConfig {
            widths: vec![100, 250],
            ..ImageConfig::default()
        })
}

fn write(root: &Path, logical: &str, bytes: &[u8]) {
    let path = root.join("static").join(logical);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// A 400 × 200 JPEG, left half red and right half blue, whose EXIF says "rotate 90°
/// clockwise to display" (orientation 6), with a camera make in its metadata.
fn rotated_jpeg() -> Vec<u8> {
    let img = RgbaImage::from_fn(400, 200, |x, _| {
        if x < 200 {
            Rgba([220, 20, 20, 255])
        } else {
            Rgba([20, 20, 220, 255])
        }
    });
    let rgb = image::DynamicImage::ImageRgba8(img).into_rgb8();
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95)
        .write_image(&rgb, 400, 200, image::ExtendedColorType::Rgb8)
        .unwrap();
    // APP1 Exif: a little-endian TIFF with one IFD holding Make ("Camera") and
    // Orientation (6).
    let mut tiff = Vec::new();
    tiff.extend_from_slice(b"II*\0");
    tiff.extend_from_slice(&8u32.to_le_bytes());
    tiff.extend_from_slice(&2u16.to_le_bytes());
    // Make: ASCII, 7 bytes, stored after the IFD (offset 8 + 2 + 2×12 + 4 = 38).
    tiff.extend_from_slice(&0x010Fu16.to_le_bytes());
    tiff.extend_from_slice(&2u16.to_le_bytes());
    tiff.extend_from_slice(&7u32.to_le_bytes());
    tiff.extend_from_slice(&38u32.to_le_bytes());
    // Orientation: SHORT, 1, value 6.
    tiff.extend_from_slice(&0x0112u16.to_le_bytes());
    tiff.extend_from_slice(&3u16.to_le_bytes());
    tiff.extend_from_slice(&1u32.to_le_bytes());
    tiff.extend_from_slice(&6u16.to_le_bytes());
    tiff.extend_from_slice(&0u16.to_le_bytes());
    tiff.extend_from_slice(&0u32.to_le_bytes());
    tiff.extend_from_slice(b"Camera\0");
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

fn png(img: &RgbaImage) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(
            img,
            img.width(),
            img.height(),
            image::ExtendedColorType::Rgba8,
        )
        .unwrap();
    out
}

fn gif(frames: usize) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = image::codecs::gif::GifEncoder::new(&mut out);
        for i in 0..frames {
            let img = RgbaImage::from_pixel(60, 40, Rgba([(i * 90) as u8, 120, 40, 255]));
            enc.encode_frame(image::Frame::new(img)).unwrap();
        }
    }
    out
}

fn lossless_webp() -> Vec<u8> {
    let img = RgbaImage::from_fn(500, 300, |x, y| {
        Rgba([(x % 256) as u8, (y % 256) as u8, 90, 255])
    });
    let mut out = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut out)
        .write_image(&img, 500, 300, image::ExtendedColorType::Rgba8)
        .unwrap();
    out
}

fn decode(bytes: &[u8]) -> image::DynamicImage {
    image::load_from_memory(bytes).unwrap()
}

fn manifest(dist: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dist.join("manifest.json")).unwrap()).unwrap()
}

/// `(format, width, height, file)` of every variant the manifest lists for `logical`.
fn variants(m: &Value, logical: &str) -> Vec<(String, u64, u64, String)> {
    m[logical]["image"]["variants"]
        .as_array()
        .unwrap_or_else(|| panic!("{logical} has no image entry: {}", m[logical]))
        .iter()
        .map(|v| {
            (
                v["format"].as_str().unwrap().to_string(),
                v["width"].as_u64().unwrap(),
                v["height"].as_u64().unwrap(),
                v["file"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn images_become_upright_variants_without_metadata_and_are_cached() {
    let root = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let dist = root.path().join("dist");
    write(root.path(), "img/rotated.jpg", &rotated_jpeg());
    let alpha = RgbaImage::from_fn(300, 150, |x, _| {
        Rgba([30, 160, 90, if x < 150 { 0 } else { 255 }])
    });
    write(root.path(), "img/alpha.png", &png(&alpha));
    write(root.path(), "img/anim.gif", &gif(2));
    write(root.path(), "img/still.gif", &gif(1));
    write(root.path(), "img/photo.webp", &lossless_webp());

    let report = builder(root.path(), cache.path())
        .build_dist(&dist, &|_, _| {})
        .unwrap();
    assert!(report.cache_misses > 0);
    let m = manifest(&dist);

    // Upright: 400 × 200 turned a quarter clockwise is 200 × 400, red on top.
    let rotated = &m["img/rotated.jpg"]["image"];
    assert_eq!(
        (rotated["width"].as_u64(), rotated["height"].as_u64()),
        (Some(200), Some(400))
    );
    let v = variants(&m, "img/rotated.jpg");
    let shape: Vec<(&str, u64, u64)> = v
        .iter()
        .filter(|v| v.0 != "image/avif")
        .map(|(f, w, h, _)| (f.as_str(), *w, *h))
        .collect();
    assert_eq!(
        shape,
        [
            ("image/webp", 100, 200),
            ("image/webp", 200, 400),
            ("image/jpeg", 100, 200),
            ("image/jpeg", 200, 400),
        ],
        "250 is wider than the image: only 100 and its own 200 (AVIF where it is smaller)"
    );
    for (format, w, h, file) in &v {
        let bytes = std::fs::read(dist.join(file)).unwrap();
        match format.as_str() {
            "image/avif" => assert_eq!(&bytes[4..12], b"ftypavif", "{file} is an AVIF"),
            _ => {
                let img = decode(&bytes);
                assert_eq!(
                    (u64::from(img.width()), u64::from(img.height())),
                    (*w, *h),
                    "{file}"
                );
                let top = img
                    .to_rgba8()
                    .get_pixel(img.width() / 2, img.height() / 8)
                    .0;
                let bottom = img
                    .to_rgba8()
                    .get_pixel(img.width() / 2, img.height() * 7 / 8)
                    .0;
                assert!(
                    top[0] > 150 && top[2] < 100,
                    "{file}: red on top, got {top:?}"
                );
                assert!(
                    bottom[2] > 150 && bottom[0] < 100,
                    "{file}: blue below, got {bottom:?}"
                );
            }
        }
        assert!(
            !bytes.windows(6).any(|w| w == b"Exif\0\0" || w == b"Camera"),
            "{file} carries no EXIF"
        );
    }
    let main = std::fs::read(dist.join(m["img/rotated.jpg"]["file"].as_str().unwrap())).unwrap();
    let mut dec = image::codecs::jpeg::JpegDecoder::new(Cursor::new(&main)).unwrap();
    assert_eq!(dec.exif_metadata().unwrap(), None);
    assert_eq!(
        dec.dimensions(),
        (200, 400),
        "the main file is upright at full width"
    );
    let placeholder = rotated["placeholder"].as_str().unwrap();
    assert!(placeholder.starts_with("data:image/png;base64,") && placeholder.len() < 2000);

    // Transparency: kept in the PNG and WebP, no placeholder (it would show through).
    assert!(m["img/alpha.png"]["image"]["placeholder"].is_null());
    for (format, _, _, file) in variants(&m, "img/alpha.png") {
        if format != "image/avif" {
            let img = decode(&std::fs::read(dist.join(&file)).unwrap()).to_rgba8();
            assert!(
                img.pixels().any(|p| p.0[3] < 10),
                "{file} keeps its transparency"
            );
        }
    }
    // An animation is served as it is; a still GIF gets modern variants.
    let anim = variants(&m, "img/anim.gif");
    assert_eq!(anim.len(), 1);
    assert_eq!(std::fs::read(dist.join(&anim[0].3)).unwrap(), gif(2));
    let still: Vec<String> = variants(&m, "img/still.gif")
        .into_iter()
        .map(|v| v.0)
        .collect();
    assert!(still.contains(&"image/webp".to_string()) && still.contains(&"image/gif".to_string()));
    // A WebP source: its own format is the fallback; lossless in, lossy out.
    let webp = variants(&m, "img/photo.webp");
    assert!(
        webp.iter()
            .all(|v| v.0 == "image/avif" || v.0 == "image/webp")
    );
    let main_webp =
        std::fs::read(dist.join(m["img/photo.webp"]["file"].as_str().unwrap())).unwrap();
    assert_eq!(
        &main_webp[12..16],
        b"VP8 ",
        "re-encoded lossy (VP8), not lossless (VP8L)"
    );
    // A variant is kept only when smaller than the one it stands in for at its width:
    // WebP than the fallback, AVIF than the smallest of those two.
    for logical in [
        "img/rotated.jpg",
        "img/photo.webp",
        "img/still.gif",
        "img/alpha.png",
    ] {
        let v = variants(&m, logical);
        let size = |file: &str| std::fs::metadata(dist.join(file)).unwrap().len();
        for (format, w, _, file) in v
            .iter()
            .filter(|v| v.0 == "image/avif" || v.0 == "image/webp")
        {
            for (other_format, _, _, other) in v.iter().filter(|o| o.1 == *w && o.0 != *format) {
                if format == "image/avif" || other_format != "image/avif" {
                    assert!(
                        size(file) < size(other),
                        "{file} ({} B) is kept only when smaller than {other} ({} B)",
                        size(file),
                        size(other)
                    );
                }
            }
        }
    }
    // On a photograph AVIF does win, at every width.
    let photo = ASSETS.image("img/photo.jpg").unwrap();
    let widths = |mime: &str| -> Vec<u32> {
        photo
            .sources
            .iter()
            .filter(|s| s.format.mime() == mime)
            .map(|s| s.width)
            .collect()
    };
    assert_eq!(widths("image/avif"), [320, 640, 960]);
    assert_eq!(widths("image/webp"), [320, 640, 960]);
    assert_eq!(widths("image/jpeg"), [320, 640, 960]);

    // What the browser side reads.
    let json: Value = serde_json::from_slice(
        &std::fs::read(dist.join(m["_perf/images.json"]["file"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    let entry = &json["images"]["img/rotated.jpg"];
    assert_eq!(entry["width"], 200);
    assert_eq!(entry["sources"]["image/webp"][0][0], 100);
    assert!(
        entry["sources"]["image/webp"][0][1]
            .as_str()
            .unwrap()
            .starts_with("/static/img/rotated-100w.")
    );
    assert_eq!(json["prefix"], "/static");
    let css = std::fs::read_to_string(dist.join(m["_perf/images.css"]["file"].as_str().unwrap()))
        .unwrap();
    assert!(css.contains(".perf-img.perf-loaded{background-image:none}"));
    assert_eq!(
        css.matches("data:image/png;base64,").count(),
        4,
        "the four opaque ones; not alpha.png"
    );
    assert!(m["_perf/image-optimizer.js"]["file"].is_string());

    // Warm: nothing is computed again, not even in a fresh output folder (a cold
    // target/ with the cache directory kept).
    let warm = builder(root.path(), cache.path())
        .build_dist(&dist, &|_, _| {})
        .unwrap();
    assert_eq!(warm.cache_misses, 0);
    let fresh = tempfile::tempdir().unwrap();
    let elsewhere = builder(root.path(), cache.path())
        .out_dir(fresh.path())
        .run()
        .unwrap();
    assert_eq!(elsewhere.cache_misses, 0);
    assert!(fresh.path().join("perf_assets.rs").exists());

    // A changed setting is a different output, never a stale one.
    let narrower = builder(root.path(), cache.path())
        .images(ImageConfig {
            widths: vec![50],
            avif: perf_build::AvifWhen::Never,
            ..ImageConfig::default()
        })
        .build_dist(&root.path().join("dist2"), &|_, _| {})
        .unwrap();
    assert!(narrower.cache_misses > 0);
    let m2 = manifest(&root.path().join("dist2"));
    let v2: Vec<(String, u64)> = variants(&m2, "img/rotated.jpg")
        .into_iter()
        .map(|v| (v.0, v.1))
        .collect();
    assert!(v2.contains(&("image/webp".into(), 50)) && !v2.iter().any(|v| v.0 == "image/avif"));
}

/// A PNG whose header declares `width` × `height` (valid CRC) and whose data is tiny.
fn png_bomb(width: u32, height: u32) -> Vec<u8> {
    let small = png(&RgbaImage::from_pixel(1, 1, Rgba([0, 0, 0, 255])));
    let mut out = small.clone();
    out[16..20].copy_from_slice(&width.to_be_bytes());
    out[20..24].copy_from_slice(&height.to_be_bytes());
    let crc = crc32(&out[12..29]);
    out[29..33].copy_from_slice(&crc.to_be_bytes());
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn bad_images_fail_the_build_naming_the_file_and_nothing_is_written() {
    let root = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let jpeg = rotated_jpeg();
    write(root.path(), "img/cut.jpg", &jpeg[..jpeg.len() / 2]);
    write(root.path(), "img/bomb.png", &png_bomb(100_000, 100_000));
    // A Windows bitmap (1 × 1, 24 bits) under a PNG's name.
    let mut bmp = b"BM".to_vec();
    for v in [58u32, 0, 54, 40, 1, 1] {
        bmp.extend_from_slice(&v.to_le_bytes());
    }
    bmp.extend_from_slice(&1u16.to_le_bytes());
    bmp.extend_from_slice(&24u16.to_le_bytes());
    for v in [0u32, 4, 2835, 2835, 0, 0] {
        bmp.extend_from_slice(&v.to_le_bytes());
    }
    bmp.extend_from_slice(&[0, 0, 255, 0]);
    write(root.path(), "img/bitmap.png", &bmp);
    write(
        root.path(),
        "img/notes.jpg",
        b"these are notes, not a photograph",
    );
    write(
        root.path(),
        "css/app.css",
        b"body{background:url(../img/cut.jpg)}",
    );

    let err = builder(root.path(), cache.path())
        .out_dir(out.path())
        .run()
        .unwrap_err()
        .to_string();
    for (file, reason) in [
        ("cut.jpg", "truncated"),
        ("bomb.png", "100000x100000"),
        ("bitmap.png", "not supported"),
        ("notes.jpg", "not a JPEG, PNG, WebP or GIF"),
    ] {
        let line = err
            .lines()
            .find(|l| l.contains(file))
            .unwrap_or_else(|| panic!("no line names {file} in:\n{err}"));
        assert!(
            line.contains(reason),
            "{file}: expected `{reason}` in `{line}`"
        );
        assert!(line.contains("image error"), "{line}");
    }
    assert!(
        files_in(out.path()).is_empty(),
        "nothing written: {:?}",
        files_in(out.path())
    );

    // The decoded size limit is a setting.
    let small = tempfile::tempdir().unwrap();
    write(
        small.path(),
        "img/a.png",
        &png(&RgbaImage::from_pixel(100, 100, Rgba([9, 9, 9, 255]))),
    );
    let err = builder(small.path(), cache.path())
        .images(ImageConfig {
            max_pixels: 1000,
            ..ImageConfig::default()
        })
        .out_dir(out.path())
        .run()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("a.png") && err.contains("more than the limit of 1000"),
        "{err}"
    );
    let ok = builder(small.path(), cache.path())
        .out_dir(out.path())
        .run();
    assert!(ok.is_ok(), "{:?}", ok.err());
}

// ---------------------------------------------------------------------------------------
// The fixture images, embedded by this crate's build script and served over a socket.

fn server() -> (SocketAddr, tokio::runtime::Runtime) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let addr = perf_tests::serve(&runtime, ASSETS.router());
    (addr, runtime)
}

struct Got {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

fn send(addr: SocketAddr, method: reqwest::Method, path: &str, headers: &[(&str, &str)]) -> Got {
    let client = reqwest::blocking::Client::new();
    let mut req = client.request(method, format!("http://{addr}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = req.send().unwrap();
    Got {
        status: res.status(),
        headers: res.headers().clone(),
        body: res.bytes().unwrap().to_vec(),
    }
}

fn h(got: &Got, name: header::HeaderName) -> &str {
    got.headers.get(name).map_or("", |v| v.to_str().unwrap())
}

const CHROME: &str = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
const FIREFOX: &str = "image/avif,image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5";
const OLD_SAFARI: &str = "image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5";

#[test]
fn an_images_logical_url_is_negotiated_by_accept() {
    let (addr, _rt) = server();
    let image = ASSETS
        .image("img/photo.jpg")
        .expect("the fixture photo is an image");
    let full = |mime: &str| {
        image
            .sources
            .iter()
            .filter(|s| s.format.mime() == mime)
            .max_by_key(|s| s.width)
            .unwrap()
            .asset
    };
    let logical = "/static/img/photo.jpg";
    for (accept, expected) in [
        (Some(CHROME), "image/avif"),
        (Some(FIREFOX), "image/avif"),
        (Some(OLD_SAFARI), "image/webp"),
        (Some("image/avif;q=0, image/webp, */*"), "image/webp"),
        (Some("image/webp;q=0.5, image/jpeg"), "image/jpeg"),
        (Some("*/*"), "image/jpeg"),
        (Some("text/html"), "image/jpeg"),
        (None, "image/jpeg"),
    ] {
        let headers: Vec<(&str, &str)> = accept.map(|a| ("accept", a)).into_iter().collect();
        let got = send(addr, reqwest::Method::GET, logical, &headers);
        assert_eq!(got.status, StatusCode::OK, "{accept:?}");
        assert_eq!(h(&got, header::CONTENT_TYPE), expected, "{accept:?}");
        assert_eq!(h(&got, header::VARY), "accept", "{accept:?}");
        assert_eq!(h(&got, header::CACHE_CONTROL), "no-cache");
        let asset = full(expected);
        assert_eq!(
            h(&got, header::ETAG),
            asset.etags[0],
            "one strong ETag per representation"
        );
        assert_eq!(got.body, asset.identity);
        assert_eq!(
            h(&got, header::CONTENT_LENGTH),
            asset.identity.len().to_string()
        );
    }
    assert_ne!(full("image/avif").etags[0], full("image/webp").etags[0]);

    let refused = send(
        addr,
        reqwest::Method::GET,
        logical,
        &[(
            "accept",
            "image/avif;q=0, image/webp;q=0, image/jpeg;q=0, */*;q=0",
        )],
    );
    assert_eq!(refused.status, StatusCode::NOT_ACCEPTABLE);
    assert_eq!(h(&refused, header::VARY), "accept");

    // HEAD: the headers of the GET, no body.
    let head = send(addr, reqwest::Method::HEAD, logical, &[("accept", CHROME)]);
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(h(&head, header::CONTENT_TYPE), "image/avif");
    assert_eq!(
        h(&head, header::CONTENT_LENGTH),
        full("image/avif").identity.len().to_string()
    );
    assert!(head.body.is_empty());

    // 304 only for the representation this request would get.
    let avif_tag = full("image/avif").etags[0];
    let again = send(
        addr,
        reqwest::Method::GET,
        logical,
        &[("accept", CHROME), ("if-none-match", avif_tag)],
    );
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert_eq!(h(&again, header::ETAG), avif_tag);
    assert_eq!(h(&again, header::VARY), "accept");
    let other = send(
        addr,
        reqwest::Method::GET,
        logical,
        &[("accept", OLD_SAFARI), ("if-none-match", avif_tag)],
    );
    assert_eq!(other.status, StatusCode::OK);
    assert_eq!(h(&other, header::CONTENT_TYPE), "image/webp");

    // Hashed URLs name one file each: never negotiated, cached for a year.
    let main = ASSETS.get("img/photo.jpg").unwrap();
    let hashed = send(addr, reqwest::Method::GET, main.url, &[("accept", CHROME)]);
    assert_eq!(h(&hashed, header::CONTENT_TYPE), "image/jpeg");
    assert_eq!(
        h(&hashed, header::CACHE_CONTROL),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(h(&hashed, header::VARY), "");
    for s in image.sources {
        let got = send(
            addr,
            reqwest::Method::GET,
            s.asset.url,
            &[("accept", "*/*")],
        );
        assert_eq!(got.status, StatusCode::OK, "{}", s.asset.url);
        assert_eq!(h(&got, header::CONTENT_TYPE), s.format.mime());
        assert_eq!(got.body, s.asset.identity);
    }
    // The decoded variants have the sizes the manifest says.
    for s in image
        .sources
        .iter()
        .filter(|s| s.format.mime() != "image/avif")
    {
        let img = decode(s.asset.identity);
        assert_eq!((img.width(), img.height()), (s.width, s.height));
    }
}

#[test]
fn image_markup_is_responsive_escaped_and_csp_safe() {
    let image = ASSETS.image("img/photo.jpg").unwrap();
    assert_eq!((image.width, image.height), (960, 640));
    let html = perf_tests::image!(
        "img/photo.jpg",
        alt = "A \"calm\" <sunrise> & sea",
        sizes = "(min-width: 60rem) 50vw, 100vw",
        class = "hero"
    )
    .to_string();
    let avif: Vec<String> = image
        .sources
        .iter()
        .filter(|s| s.format.mime() == "image/avif")
        .map(|s| format!("{} {}w", s.asset.url, s.width))
        .collect();
    assert_eq!(avif.len(), 3, "320, 640 and the image's own 960");
    assert!(
        html.starts_with(&format!(
            "<picture><source type=\"image/avif\" srcset=\"{}\" sizes=\"(min-width: 60rem) 50vw, 100vw\">",
            avif.join(", ")
        )),
        "{html}"
    );
    assert!(
        html.contains("<source type=\"image/webp\" srcset=\""),
        "{html}"
    );
    let main = ASSETS.get("img/photo.jpg").unwrap();
    assert!(
        html.contains(&format!("<img src=\"{}\" srcset=\"", main.url)),
        "{html}"
    );
    assert!(html.contains(&format!("{} 960w\"", main.url)), "{html}");
    assert!(html.contains("width=\"960\" height=\"640\""), "{html}");
    assert!(
        html.contains("alt=\"A &quot;calm&quot; &lt;sunrise&gt; &amp; sea\""),
        "{html}"
    );
    assert!(
        html.contains("loading=\"lazy\" decoding=\"async\""),
        "{html}"
    );
    assert!(!html.contains("fetchpriority"), "{html}");
    let class = image
        .placeholder
        .expect("an opaque photo has a placeholder");
    assert!(
        html.contains(&format!("class=\"perf-img {class} hero\"")),
        "{html}"
    );
    assert!(html.ends_with("\"></picture>"), "{html}");
    assert!(!html.contains("style=") && !html.contains("<script") && !html.contains("onload"));

    let hero = perf_tests::image!("img/photo.jpg", alt = "Sunrise", priority = true).to_string();
    assert!(
        hero.contains("fetchpriority=\"high\"") && !hero.contains("loading="),
        "{hero}"
    );
    let preload = perf_tests::image_preload!("img/photo.jpg", sizes = "100vw").to_string();
    assert_eq!(
        preload,
        format!(
            "<link rel=\"preload\" as=\"image\" type=\"image/avif\" imagesrcset=\"{}\" imagesizes=\"100vw\" fetchpriority=\"high\">",
            avif.join(", ")
        )
    );
    // The run-time form renders what the macro renders.
    assert_eq!(
        ASSETS
            .picture("img/photo.jpg")
            .unwrap()
            .alt("x")
            .to_string(),
        perf_tests::image!("img/photo.jpg", alt = "x").to_string()
    );
    assert!(ASSETS.picture("img/logo.svg").is_none() && ASSETS.picture("img/nope.jpg").is_none());
    let tags = ASSETS.image_placeholders_tag() + &ASSETS.image_optimizer_tag();
    assert!(
        tags.contains("/static/_perf/images.")
            && tags.contains("data-manifest=\"/static/_perf/images.")
    );
}

#[derive(askama::Template)]
#[template(
    source = "<main>{{ perf_tests::image!(\"img/photo.jpg\", alt = self.alt, sizes = \"50vw\") }}</main>",
    ext = "html"
)]
struct Page<'a> {
    alt: &'a str,
}

#[test]
fn askama_renders_the_picture_unescaped_and_the_alt_escaped() {
    let html = askama::Template::render(&Page { alt: "<b>sea</b>" }).unwrap();
    assert!(
        html.starts_with("<main><picture><source type=\"image/avif\""),
        "{html}"
    );
    assert!(html.contains("alt=\"&lt;b&gt;sea&lt;/b&gt;\""), "{html}");
}

mod filters {
    pub use perf_rt::askama_filters::*;
}

#[derive(askama::Template)]
#[template(
    source = "<link href=\"{{ \"css/app.css\"|asset_url }}\">{{ self.name|image(alt = self.alt, sizes = \"50vw\") }}",
    ext = "html"
)]
struct Filtered<'a> {
    name: &'a str,
    alt: &'a str,
}

#[test]
fn the_filter_forms_look_names_up_when_the_page_renders() {
    perf_rt::askama_filters::use_assets(&ASSETS);
    let html = askama::Template::render(&Filtered {
        name: "img/photo.jpg",
        alt: "<sea>",
    })
    .unwrap();
    let expected_picture = perf_tests::image!("img/photo.jpg", alt = "<sea>", sizes = "50vw");
    assert_eq!(
        html,
        format!(
            "<link href=\"{}\">{expected_picture}",
            perf_tests::asset_url!("css/app.css")
        )
    );
    let err = askama::Template::render(&Filtered {
        name: "img/nope.jpg",
        alt: "",
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("no image named \"img/nope.jpg\""), "{err}");
}

#[test]
fn odd_names_are_encoded_and_derived_names_are_not_taken_silently() {
    let root = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let dist = root.path().join("dist");
    let photo = RgbaImage::from_fn(400, 300, |x, y| {
        Rgba([(x % 256) as u8, (y % 256) as u8, 120, 255])
    });
    write(root.path(), "img/my photo & co's.png", &png(&photo));
    builder(root.path(), cache.path())
        .build_dist(&dist, &|_, _| {})
        .unwrap();
    let m = manifest(&dist);
    let json: Value = serde_json::from_slice(
        &std::fs::read(dist.join(m["_perf/images.json"]["file"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    let entry = &json["images"]["img/my photo & co's.png"];
    for list in entry["sources"].as_object().unwrap().values() {
        for pair in list.as_array().unwrap() {
            let url = pair[1].as_str().unwrap();
            assert!(
                url.starts_with("/static/img/my%20photo%20&%20co's-")
                    || url.starts_with("/static/img/my%20photo%20&%20co's."),
                "a srcset candidate holds no space: {url}"
            );
        }
    }
    for (_, _, _, file) in variants(&m, "img/my photo & co's.png") {
        assert!(dist.join(&file).exists(), "{file}");
    }

    // An application file under a derived name is an error naming it, not a panic in
    // the generated map.
    write(root.path(), "_perf/images.json", b"{}");
    let out = tempfile::tempdir().unwrap();
    let err = builder(root.path(), cache.path())
        .out_dir(out.path())
        .run()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`_perf/images.json` is also produced from"),
        "{err}"
    );
    assert!(files_in(out.path()).is_empty());
}
