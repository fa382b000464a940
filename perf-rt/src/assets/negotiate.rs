//! Header parsing for content negotiation and conditional and range requests. Pure
//! functions over header values: no allocation on the request path.

use super::Asset;

/// A content encoding the asset service can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// No content encoding.
    Identity,
    /// `br`
    Brotli,
    /// `zstd`
    Zstd,
    /// `gzip`
    Gzip,
}

impl Encoding {
    /// Every encoding, in the order of [`Asset::etags`].
    pub const ALL: [Encoding; 4] = [
        Encoding::Identity,
        Encoding::Brotli,
        Encoding::Zstd,
        Encoding::Gzip,
    ];

    /// The `Content-Encoding` token, `None` for identity.
    pub fn token(self) -> Option<&'static str> {
        match self {
            Encoding::Identity => None,
            Encoding::Brotli => Some("br"),
            Encoding::Zstd => Some("zstd"),
            Encoding::Gzip => Some("gzip"),
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// Splits a header list on commas, trimming blanks and skipping empty items.
fn items(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// Parses a qvalue (`0`, `0.5`, `1.000`) into thousandths; `None` when malformed.
fn qvalue(s: &str) -> Option<u16> {
    let s = s.trim();
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut q: u16 = match int {
        "0" => 0,
        "1" => 1000,
        _ => return None,
    };
    for (i, b) in frac.bytes().enumerate() {
        q += u16::from(b - b'0') * [100, 10, 1][i];
    }
    (q <= 1000).then_some(q)
}

/// One item of an `Accept` or `Accept-Encoding` list: its token and its weight (1 unless
/// a `q` parameter says otherwise); `None` when the qvalue is malformed, which drops the
/// item.
fn weighted(item: &str) -> Option<(&str, u16)> {
    let mut parts = item.split(';');
    let token = parts.next().unwrap_or("").trim();
    let mut q = Some(1000);
    for param in parts {
        if let Some((k, v)) = param.split_once('=')
            && k.trim().eq_ignore_ascii_case("q")
        {
            q = qvalue(v);
        }
    }
    Some((token, q?))
}

/// The weight the client gives each encoding, from an `Accept-Encoding` value.
/// Without the header only identity is acceptable (RFC 9110 §12.5.3).
fn weights(accept: Option<&str>) -> [u16; 4] {
    let Some(accept) = accept else {
        return [1000, 0, 0, 0];
    };
    // Explicit weights, and the `*` weight for codings the client did not name.
    let mut explicit: [Option<u16>; 4] = [None; 4];
    let mut star: Option<u16> = None;
    for item in items(accept) {
        let Some((coding, q)) = weighted(item) else {
            continue;
        };
        let slot = if coding.eq_ignore_ascii_case("br") {
            Some(Encoding::Brotli)
        } else if coding.eq_ignore_ascii_case("zstd") {
            Some(Encoding::Zstd)
        } else if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            Some(Encoding::Gzip)
        } else if coding.eq_ignore_ascii_case("identity") {
            Some(Encoding::Identity)
        } else if coding == "*" {
            star = Some(q);
            None
        } else {
            None
        };
        if let Some(e) = slot {
            // The highest weight wins when a coding is listed twice.
            let w = &mut explicit[e.index()];
            *w = Some(w.map_or(q, |old| old.max(q)));
        }
    }
    let mut out = [0u16; 4];
    for e in Encoding::ALL {
        out[e.index()] = explicit[e.index()].or(star).unwrap_or(match e {
            // identity stays acceptable unless refused explicitly or through `*;q=0`.
            Encoding::Identity => 1,
            _ => 0,
        });
    }
    out
}

/// The weights an `Accept` header gives image media types: parsed on demand, with no
/// allocation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MediaWeights<'a>(Option<&'a str>);

/// Reads an `Accept` header value (or its absence).
pub(crate) fn media_weights(accept: Option<&str>) -> MediaWeights<'_> {
    MediaWeights(accept)
}

impl MediaWeights<'_> {
    /// The weight (thousandths) of `mime`. A modern format (AVIF, WebP) counts only when
    /// the client names it, since clients that decode them say so and a `*/*` from an
    /// old client or a script says nothing about them. A format every browser takes
    /// (`universal`) is acceptable through `image/*` or `*/*` too, and, when the header
    /// names none of those, with the lowest weight: a client that lists only unrelated
    /// types still gets an image rather than a 406. An explicit `q=0` refuses it.
    pub(crate) fn weight(self, mime: &str, universal: bool) -> u16 {
        let Some(accept) = self.0 else {
            return if universal { 1000 } else { 0 };
        };
        let (mut exact, mut image_star, mut star) = (None::<u16>, None::<u16>, None::<u16>);
        for item in items(accept) {
            let Some((range, q)) = weighted(item) else {
                continue;
            };
            let slot = if range.eq_ignore_ascii_case(mime) {
                &mut exact
            } else if range.eq_ignore_ascii_case("image/*") {
                &mut image_star
            } else if range == "*/*" {
                &mut star
            } else {
                continue;
            };
            *slot = Some(slot.map_or(q, |old| old.max(q)));
        }
        match (exact, universal) {
            (Some(q), _) => q,
            (None, false) => 0,
            (None, true) => image_star.or(star).unwrap_or(1),
        }
    }
}

/// Chooses the encoding to send: the highest q-value among the encodings the asset has,
/// ties broken by size (brotli, zstd, gzip, identity). `None` when the client refuses
/// every available encoding (a 406).
pub(crate) fn choose_encoding(asset: &Asset, accept: Option<&str>) -> Option<Encoding> {
    let w = weights(accept);
    let mut best: Option<(u16, Encoding)> = None;
    for e in [
        Encoding::Brotli,
        Encoding::Zstd,
        Encoding::Gzip,
        Encoding::Identity,
    ] {
        if asset.body(e).is_none() || w[e.index()] == 0 {
            continue;
        }
        if best.is_none_or(|(q, _)| w[e.index()] > q) {
            best = Some((w[e.index()], e));
        }
    }
    best.map(|(_, e)| e)
}

/// Result of `If-None-Match` against an asset.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum NoneMatch {
    /// The client holds a current representation: answer 304 with this ETag.
    NotModified(&'static str),
    /// Send the body.
    Modified,
}

/// Evaluates `If-None-Match` with the weak comparison RFC 9110 §13.1.2 requires, against
/// the representation this request would get (`chosen`): a tag of another encoding does
/// not match, since the client does not hold what it would be sent.
pub(crate) fn if_none_match(asset: &Asset, value: &str, chosen: Encoding) -> NoneMatch {
    let current = asset.etags[chosen.index()];
    if value.trim() == "*" {
        return NoneMatch::NotModified(current);
    }
    for tag in items(value) {
        if tag.strip_prefix("W/").unwrap_or(tag) == current {
            return NoneMatch::NotModified(current);
        }
    }
    NoneMatch::Modified
}

/// Evaluates `If-Match` (RFC 9110 §13.1.1) against the representation this request would
/// get: `*`, or one of the listed tags under the strong comparison (a weak tag never
/// matches). `false` means 412 Precondition Failed.
pub(crate) fn if_match(asset: &Asset, value: &str, chosen: Encoding) -> bool {
    let current = asset.etags[chosen.index()];
    value.trim() == "*" || items(value).any(|tag| tag == current)
}

/// A byte range request against a body of known length.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Range {
    /// Inclusive start and end.
    Satisfiable(u64, u64),
    /// 416.
    Unsatisfiable,
}

/// Parses a `Range` header holding a single byte range. Multiple ranges, other units and
/// malformed values return `None`: the server may ignore such a header (RFC 9110 §14.2)
/// and send the whole body.
pub(crate) fn parse_range(value: &str, len: u64) -> Option<Range> {
    let spec = value.trim().strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    let digits = |s: &str| !s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit());
    if first.is_empty() {
        // Suffix range: the last N bytes.
        if !digits(last) {
            return None;
        }
        let n: u64 = last.parse().ok()?;
        if n == 0 || len == 0 {
            return Some(Range::Unsatisfiable);
        }
        return Some(Range::Satisfiable(len.saturating_sub(n), len - 1));
    }
    if !digits(first) || !(last.is_empty() || digits(last)) {
        return None;
    }
    let start: u64 = first.parse().ok()?;
    let end: u64 = if last.is_empty() {
        u64::MAX
    } else {
        last.parse().ok()?
    };
    if end < start {
        return None;
    }
    if start >= len {
        return Some(Range::Unsatisfiable);
    }
    Some(Range::Satisfiable(start, end.min(len - 1)))
}

/// Whether `If-Range` allows the range: only a strong match with the identity ETag (we
/// send no `Last-Modified`, so a date never matches).
pub(crate) fn if_range_matches(asset: &Asset, value: &str) -> bool {
    let value = value.trim();
    !value.starts_with("W/") && value == asset.etags[Encoding::Identity.index()]
}

#[cfg(test)]
mod tests {
    use super::*;

    static ASSET: Asset = Asset {
        path: "a.css",
        hashed_path: "a.0011aabb.css",
        url: "/static/a.0011aabb.css",
        content_type: "text/css; charset=utf-8",
        integrity: "sha384-x",
        etags: ["\"h\"", "\"h-br\"", "\"h-zst\"", "\"h-gz\""],
        identity: b"0123456789",
        brotli: Some(b"b"),
        zstd: Some(b"z"),
        gzip: Some(b"g"),
        imports: &[],
        image: None,
        critical: None,
    };

    static PLAIN: Asset = Asset {
        brotli: None,
        zstd: None,
        gzip: Some(b"g"),
        ..ASSET
    };

    #[test]
    fn negotiation_honours_q_values() {
        let c = |h| choose_encoding(&ASSET, h);
        assert_eq!(c(None), Some(Encoding::Identity));
        assert_eq!(c(Some("gzip, deflate, br, zstd")), Some(Encoding::Brotli));
        assert_eq!(c(Some("gzip, zstd")), Some(Encoding::Zstd));
        assert_eq!(c(Some("br;q=0.5, gzip;q=0.8")), Some(Encoding::Gzip));
        assert_eq!(c(Some("br;q=0, gzip;q=0")), Some(Encoding::Identity));
        assert_eq!(c(Some("*")), Some(Encoding::Brotli));
        assert_eq!(c(Some("*;q=0.5, br;q=0")), Some(Encoding::Zstd));
        assert_eq!(c(Some("identity;q=0, gzip;q=0")), None);
        assert_eq!(c(Some("BR;Q=1")), Some(Encoding::Brotli));
        assert_eq!(
            c(Some("br;q=2, gzip")),
            Some(Encoding::Gzip),
            "bad qvalue drops the item"
        );
        assert_eq!(c(Some("")), Some(Encoding::Identity));
        assert_eq!(
            choose_encoding(&PLAIN, Some("br")),
            Some(Encoding::Identity)
        );
        assert_eq!(
            choose_encoding(&PLAIN, Some("br, gzip;q=0.1")),
            Some(Encoding::Gzip)
        );
        assert_eq!(choose_encoding(&PLAIN, Some("br, identity;q=0")), None);
    }

    #[test]
    fn qvalues_parse_strictly() {
        assert_eq!(qvalue("1"), Some(1000));
        assert_eq!(qvalue("0.5"), Some(500));
        assert_eq!(qvalue("0.125"), Some(125));
        assert_eq!(qvalue("1.000"), Some(1000));
        assert_eq!(qvalue("1.5"), None);
        assert_eq!(qvalue("0.1234"), None);
        assert_eq!(qvalue("abc"), None);
    }

    #[test]
    fn if_none_match_lists_weak_and_star() {
        use NoneMatch::*;
        let br = Encoding::Brotli;
        assert_eq!(
            if_none_match(&ASSET, "\"h-br\"", br),
            NotModified("\"h-br\"")
        );
        assert_eq!(
            if_none_match(&ASSET, "\"x\", W/\"h-br\"", br),
            NotModified("\"h-br\"")
        );
        assert_eq!(
            if_none_match(&ASSET, "\"h\"", Encoding::Identity),
            NotModified("\"h\"")
        );
        assert_eq!(
            if_none_match(&ASSET, "\"h-br\"", Encoding::Gzip),
            Modified,
            "a brotli tag does not match what a gzip-only client gets"
        );
        assert_eq!(if_none_match(&ASSET, "*", br), NotModified("\"h-br\""));
        assert_eq!(if_none_match(&ASSET, "\"x\", \"y\"", br), Modified);
        assert_eq!(if_none_match(&ASSET, "h", br), Modified);
    }

    #[test]
    fn if_match_is_strong_and_per_representation() {
        let br = Encoding::Brotli;
        assert!(if_match(&ASSET, "*", br));
        assert!(if_match(&ASSET, "\"x\", \"h-br\"", br));
        assert!(!if_match(&ASSET, "W/\"h-br\"", br));
        assert!(!if_match(&ASSET, "\"h\"", br));
        assert!(!if_match(&ASSET, "\"stale\"", Encoding::Identity));
    }

    #[test]
    fn ranges() {
        use Range::*;
        assert_eq!(parse_range("bytes=0-3", 10), Some(Satisfiable(0, 3)));
        assert_eq!(parse_range("bytes=5-", 10), Some(Satisfiable(5, 9)));
        assert_eq!(parse_range("bytes=-4", 10), Some(Satisfiable(6, 9)));
        assert_eq!(parse_range("bytes=-40", 10), Some(Satisfiable(0, 9)));
        assert_eq!(parse_range("bytes=8-100", 10), Some(Satisfiable(8, 9)));
        assert_eq!(parse_range("bytes=10-", 10), Some(Unsatisfiable));
        assert_eq!(parse_range("bytes=-0", 10), Some(Unsatisfiable));
        assert_eq!(parse_range("bytes=0-1,3-4", 10), None);
        assert_eq!(parse_range("bytes=4-2", 10), None);
        assert_eq!(parse_range("items=0-1", 10), None);
        assert_eq!(parse_range("bytes=a-b", 10), None);
        assert_eq!(parse_range("bytes=99999999999999999999-", 10), None);
    }

    #[test]
    fn if_range_is_strong() {
        assert!(if_range_matches(&ASSET, "\"h\""));
        assert!(!if_range_matches(&ASSET, "W/\"h\""));
        assert!(!if_range_matches(&ASSET, "\"h-br\""));
        assert!(!if_range_matches(&ASSET, "Wed, 21 Oct 2015 07:28:00 GMT"));
    }
}
