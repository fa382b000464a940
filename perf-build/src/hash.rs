//! Content hashes: the hashed file name, the ETag and the Subresource Integrity value.

use base64::Engine;
use sha2::{Digest, Sha256, Sha384};

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// `sha384-…`, the value of an `integrity` attribute.
pub fn integrity(bytes: &[u8]) -> String {
    format!(
        "sha384-{}",
        base64::engine::general_purpose::STANDARD.encode(Sha384::digest(bytes))
    )
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Inserts the first 8 hex digits of the hash before the extension:
/// `css/app.css` → `css/app.3f9a1c2e.css`; a name without extension gets it at the end.
pub fn hashed_name(logical: &str, hash_hex: &str) -> String {
    let short = &hash_hex[..8];
    let (dir, file) = match logical.rsplit_once('/') {
        Some((d, f)) => (format!("{d}/"), f),
        None => (String::new(), logical),
    };
    // `.css.map` and `.tar.gz` style double extensions keep both parts.
    match file.find('.').filter(|&i| i > 0) {
        Some(i) => format!("{dir}{}.{short}{}", &file[..i], &file[i..]),
        None => format!("{dir}{file}.{short}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_digests() {
        let h = sha256_hex(b"abc");
        assert_eq!(
            h,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(hashed_name("css/app.css", &h), "css/app.ba7816bf.css");
        assert_eq!(hashed_name("app.css.map", &h), "app.ba7816bf.css.map");
        assert_eq!(hashed_name("LICENSE", &h), "LICENSE.ba7816bf");
        assert_eq!(hashed_name("img/.hidden", &h), "img/.hidden.ba7816bf");
        // The value browsers compute for "abc" (see the SRI spec's examples).
        assert_eq!(
            integrity(b"abc"),
            "sha384-ywB1P0WjXou1oD1pmsZQBycsMqsO3tFjGotgWkP/W+2AhgcroefMI1i67KE0yCWn"
        );
    }
}
