//! Content hashes: the hashed file name, the ETag and the Subresource Integrity value.

use base64::Engine;
use sha2::{Digest, Sha256, Sha384};

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `sha384-…`, the value of an `integrity` attribute.
pub fn integrity(bytes: &[u8]) -> String {
    format!(
        "sha384-{}",
        base64::engine::general_purpose::STANDARD.encode(Sha384::digest(bytes))
    )
}

/// `sha256-…`, the source expression that lets an inline `<style>` or `<script>` with
/// exactly these bytes through a Content-Security-Policy.
pub fn csp_sha256(bytes: &[u8]) -> String {
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes))
    )
}

/// Extensions of two parts that stay together after the hash.
const COMPOUND: &[&str] = &[".tar.gz", ".tar.br", ".tar.zst", ".tar.xz", ".d.ts"];

/// Inserts the first 8 hex digits of the hash before the last extension, keeping the
/// whole stem together as Vite, Django and propshaft do: `css/app.css` →
/// `css/app.3f9a1c2e.css`, `jquery.min.js` → `jquery.min.3f9a1c2e.js`. A source map keeps
/// its file's extension after the hash (`app.css.map` → `app.3f9a1c2e.css.map`), as do
/// compound extensions (`.tar.gz`); a name without extension gets the hash at the end.
pub fn hashed_name(logical: &str, hash_hex: &str) -> String {
    let short = &hash_hex[..8];
    let (dir, file) = match logical.rsplit_once('/') {
        Some((d, f)) => (format!("{d}/"), f),
        None => (String::new(), logical),
    };
    let (file, map) = match file.strip_suffix(".map") {
        Some(f) if !f.is_empty() => (f, ".map"),
        _ => (file, ""),
    };
    let ext = COMPOUND
        .iter()
        .find(|c| file.len() > c.len() && file.to_ascii_lowercase().ends_with(*c))
        .map(|c| file.len() - c.len())
        .or_else(|| file.rfind('.').filter(|&i| i > 0));
    match ext {
        Some(i) => format!("{dir}{}.{short}{}{map}", &file[..i], &file[i..]),
        None => format!("{dir}{file}.{short}{map}"),
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
        assert_eq!(
            hashed_name("js/bootstrap.bundle.js", &h),
            "js/bootstrap.bundle.ba7816bf.js"
        );
        assert_eq!(
            hashed_name("vendor/jquery.min.js", &h),
            "vendor/jquery.min.ba7816bf.js"
        );
        assert_eq!(
            hashed_name("vendor/jquery.min.js.map", &h),
            "vendor/jquery.min.ba7816bf.js.map"
        );
        assert_eq!(hashed_name("dl/site.tar.gz", &h), "dl/site.ba7816bf.tar.gz");
        assert_eq!(hashed_name("types/app.d.ts", &h), "types/app.ba7816bf.d.ts");
        assert_eq!(
            hashed_name(".well-known/security.txt", &h),
            ".well-known/security.ba7816bf.txt"
        );
        assert_eq!(hashed_name("notes.map", &h), "notes.ba7816bf.map");
        // The value browsers compute for "abc" (see the SRI spec's examples).
        assert_eq!(
            integrity(b"abc"),
            "sha384-ywB1P0WjXou1oD1pmsZQBycsMqsO3tFjGotgWkP/W+2AhgcroefMI1i67KE0yCWn"
        );
    }
}
