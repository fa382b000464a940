//! Precompression: brotli, gzip and zstd variants, each kept only when smaller than the
//! identity bytes.

use std::io::Write;

use crate::config::Quality;

/// The compressed variants of one asset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Variants {
    /// Brotli.
    pub brotli: Option<Vec<u8>>,
    /// Gzip.
    pub gzip: Option<Vec<u8>>,
    /// Zstandard.
    pub zstd: Option<Vec<u8>>,
}

/// Brotli at quality 11 (`Best`) or 5, with the window sized to the input.
pub fn brotli(bytes: &[u8], quality: Quality) -> Vec<u8> {
    let params = brotli::enc::BrotliEncoderParams {
        quality: match quality {
            Quality::Best => 11,
            Quality::Fast => 5,
        },
        lgwin: window_bits(bytes.len()),
        size_hint: bytes.len(),
        ..Default::default()
    };
    let mut out = Vec::with_capacity(bytes.len() / 3 + 64);
    brotli::BrotliCompress(&mut &bytes[..], &mut out, &params)
        .expect("writing to a Vec cannot fail");
    out
}

/// The smallest brotli window (10..=24 bits) that holds the whole input.
fn window_bits(len: usize) -> i32 {
    let mut bits = 10;
    while bits < 24 && (1usize << bits) - 16 < len {
        bits += 1;
    }
    bits
}

/// Gzip at level 9 (`Best`) or 6.
pub fn gzip(bytes: &[u8], quality: Quality) -> Vec<u8> {
    let level = match quality {
        Quality::Best => flate2::Compression::best(),
        Quality::Fast => flate2::Compression::default(),
    };
    let mut enc = flate2::write::GzEncoder::new(Vec::with_capacity(bytes.len() / 3 + 64), level);
    enc.write_all(bytes).expect("writing to a Vec cannot fail");
    enc.finish().expect("writing to a Vec cannot fail")
}

/// Zstandard at level 19 (`Best`) or 3.
pub fn zstd(bytes: &[u8], quality: Quality) -> Vec<u8> {
    let level = match quality {
        Quality::Best => 19,
        Quality::Fast => 3,
    };
    zstd::bulk::compress(bytes, level).expect("compressing into memory cannot fail")
}

/// All three variants, computed in parallel, each kept only when smaller.
pub fn all(bytes: &[u8], quality: Quality) -> Variants {
    let keep = |v: Vec<u8>| (v.len() < bytes.len()).then_some(v);
    let (br, (gz, zst)) = rayon::join(
        || brotli(bytes, quality),
        || rayon::join(|| gzip(bytes, quality), || zstd(bytes, quality)),
    );
    Variants {
        brotli: keep(br),
        gzip: keep(gz),
        zstd: keep(zst),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn variants_round_trip_and_shrink() {
        let text = "body { color: red; } ".repeat(200);
        let v = all(text.as_bytes(), Quality::Fast);
        let mut out = Vec::new();
        brotli::BrotliDecompress(&mut v.brotli.as_deref().unwrap(), &mut out).unwrap();
        assert_eq!(out, text.as_bytes());
        let mut out = String::new();
        flate2::read::GzDecoder::new(v.gzip.as_deref().unwrap())
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, text);
        assert_eq!(
            zstd::bulk::decompress(v.zstd.as_deref().unwrap(), 1 << 20).unwrap(),
            text.as_bytes()
        );
    }

    #[test]
    fn incompressible_input_keeps_no_variant() {
        let v = all(b"x", Quality::Best);
        assert_eq!(v, Variants::default());
    }

    #[test]
    fn window_fits_input() {
        assert_eq!(window_bits(100), 10);
        assert_eq!(window_bits(5000), 13);
        assert_eq!(window_bits(100 << 20), 24);
    }
}
