//! Request path checks: turns a request path into a lookup key or a refusal.

use std::borrow::Cow;

use http::StatusCode;

/// Turns the request path into a key relative to the URL prefix.
///
/// The service may be mounted with the prefix kept (`route_service("/static/{*p}")`) or
/// stripped (`nest_service("/static")`): both work. Traversal (`..`), percent-encoded
/// dots, slashes, backslashes and NUL, and invalid percent-encoding are 400; anything
/// longer than the longest embedded key is 404 without further work.
pub(crate) fn relative_key<'a>(
    path: &'a str,
    prefix: &str,
    longest: usize,
) -> Result<Cow<'a, str>, StatusCode> {
    let rest = match path.strip_prefix(prefix) {
        Some(rest) if !prefix.is_empty() && rest.starts_with('/') => rest,
        _ => path,
    };
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    // Percent-encoding can at most triple a key's length.
    if rest.len() > longest.saturating_mul(3) {
        return Err(StatusCode::NOT_FOUND);
    }
    let key = if rest.contains('%') {
        Cow::Owned(decode(rest)?)
    } else {
        Cow::Borrowed(rest)
    };
    if key.len() > longest || key.is_empty() {
        return Err(StatusCode::NOT_FOUND);
    }
    for segment in key.split('/') {
        if segment == ".." || segment == "." {
            return Err(StatusCode::BAD_REQUEST);
        }
    }
    if key.bytes().any(|b| b == 0 || b == b'\\') {
        return Err(StatusCode::BAD_REQUEST);
    }
    Ok(key)
}

/// The names `key` would have without one content hash: for each `.` + 8 lowercase hex
/// digits in its file name that ends the name or comes before another `.`, the key with
/// that segment removed. perf-build inserts the hash exactly so (`js/app.3f9a1c2e.js`,
/// `app.3f9a1c2e.js.map`, `LICENSE.3f9a1c2e`), so one of these is the logical name of an
/// old hashed URL. Most keys have none; none has more than a few.
pub(crate) fn unhashed(key: &str) -> impl Iterator<Item = String> + '_ {
    let file_at = key.rfind('/').map_or(0, |i| i + 1);
    let bytes = key.as_bytes();
    (file_at + 1..bytes.len()).filter_map(move |dot| {
        let end = dot + 9;
        let is_hash = bytes[dot] == b'.'
            && bytes.len() >= end
            && bytes[dot + 1..end]
                .iter()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
            && (end == bytes.len() || bytes[end] == b'.');
        // The segment is ASCII, so both cuts are on character boundaries.
        is_hash.then(|| format!("{}{}", &key[..dot], &key[end..]))
    })
}

/// Percent-decodes a path. An escaped `/`, `\`, `.` or NUL is refused: no embedded name
/// needs one, and they are the usual way around traversal checks.
pub(crate) fn decode(s: &str) -> Result<String, StatusCode> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = |b: u8| (b as char).to_digit(16);
            let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) else {
                return Err(StatusCode::BAD_REQUEST);
            };
            let b = (h * 16 + l) as u8;
            if matches!(b, b'/' | b'\\' | b'.' | 0) {
                return Err(StatusCode::BAD_REQUEST);
            }
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| StatusCode::BAD_REQUEST)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(p: &str) -> Result<String, StatusCode> {
        relative_key(p, "/static", 64).map(|c| c.into_owned())
    }

    #[test]
    fn strips_the_prefix_when_present() {
        assert_eq!(key("/static/css/app.css"), Ok("css/app.css".into()));
        assert_eq!(key("/css/app.css"), Ok("css/app.css".into()));
        assert_eq!(key("/staticfoo/a.css"), Ok("staticfoo/a.css".into()));
        assert_eq!(
            relative_key("/a.css", "", 64).map(|c| c.into_owned()),
            Ok("a.css".into())
        );
    }

    #[test]
    fn decodes_and_refuses_tricks() {
        let bad = Err(StatusCode::BAD_REQUEST);
        assert_eq!(
            key("/static/img/my%20photo.png"),
            Ok("img/my photo.png".into())
        );
        assert_eq!(key("/static/../Cargo.toml"), bad);
        assert_eq!(key("/static/css/../../etc/passwd"), bad);
        assert_eq!(key("/static/%2e%2e/secret"), bad);
        assert_eq!(key("/static/css%2fapp.css"), bad);
        assert_eq!(key("/static/css%5capp.css"), bad);
        assert_eq!(key("/static/a%00.css"), bad);
        assert_eq!(key("/static/a\0.css"), bad);
        assert_eq!(key("/static/a%zz.css"), bad);
        assert_eq!(key("/static/a%e"), bad);
        assert_eq!(key("/static/%ff%fe.css"), bad);
        assert_eq!(key("/static/./a.css"), bad);
    }

    #[test]
    fn overlong_and_empty_are_not_found() {
        let long = format!("/static/{}", "a".repeat(65));
        assert_eq!(key(&long), Err(StatusCode::NOT_FOUND));
        let huge = format!("/static/{}", "%41".repeat(10_000));
        assert_eq!(key(&huge), Err(StatusCode::NOT_FOUND));
        assert_eq!(key("/static/"), Err(StatusCode::NOT_FOUND));
        assert_eq!(key("/"), Err(StatusCode::NOT_FOUND));
    }

    #[test]
    fn unhashed_removes_one_content_hash_at_a_time() {
        let names = |k: &str| unhashed(k).collect::<Vec<_>>();
        assert_eq!(names("js/app.3f9a1c2e.js"), ["js/app.js"]);
        assert_eq!(names("js/app.3f9a1c2e.js.map"), ["js/app.js.map"]);
        assert_eq!(names("LICENSE.3f9a1c2e"), ["LICENSE"]);
        assert_eq!(names("jquery.min.3f9a1c2e.js"), ["jquery.min.js"]);
        assert_eq!(
            names("a.00000000.11111111.js"),
            ["a.11111111.js", "a.00000000.js"]
        );
        // Not a hash: uppercase, too short, too long, a directory, the file name's start.
        for key in [
            "js/app.3F9A1C2E.js",
            "js/app.3f9a1c2.js",
            "js/app.3f9a1c2e0.js",
            "js.3f9a1c2e/app.js",
            ".3f9a1c2e.js",
            "js/app.js",
            "",
            "é.3f9a1c2é",
        ] {
            assert!(names(key).is_empty(), "{key}: {:?}", names(key));
        }
        assert_eq!(names("é/ü.deadbeef.js"), ["é/ü.js"]);
    }
}
