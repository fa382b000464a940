//! What a kind of asset hands to the rest of the pipeline: the files it produced from one
//! input ([`Piece`]s), each with the references it makes to other files.

use serde::{Deserialize, Serialize};

use crate::discover::Input;

/// How a reference appears in its piece's bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Embed {
    /// The bytes hold `placeholder` inside a CSS string (`url("…")`, `@import "…"`):
    /// the resolved URL replaces it, escaped as a CSS string.
    CssString {
        /// The stand-in text.
        placeholder: String,
    },
    /// A static module import, kept as written: the import map resolves it.
    Import,
    /// A dynamic `import()`, kept as written and loaded on demand.
    DynamicImport,
}

/// A reference from one asset to another, as written in the source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference {
    /// The URL or module specifier as written.
    pub specifier: String,
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1.
    pub column: u32,
    /// Where the reference sits in the output.
    pub embed: Embed,
}

/// How a piece points at its source map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MapComment {
    /// `/*# sourceMappingURL=… */`
    Css,
    /// `//# sourceMappingURL=…`
    Js,
}

/// A source map of a piece, before the piece's references are filled in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceMap {
    /// The map's JSON.
    pub json: String,
    /// The comment that links the piece to it.
    pub comment: MapComment,
}

/// One file produced by a kind of asset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Piece {
    /// Logical path it is served under: the input's own for its main output.
    pub logical: String,
    /// The bytes (stored apart from the JSON header in the cache).
    #[serde(skip)]
    pub bytes: Vec<u8>,
    /// References to other files, in source order.
    pub refs: Vec<Reference>,
    /// Its source map, if one was asked for.
    pub map: Option<SourceMap>,
    /// A JavaScript module or script: it goes into the import map.
    pub module: bool,
    /// An image's size, placeholder and variants (on its main piece).
    #[serde(default)]
    pub image: Option<crate::images::ImageInfo>,
    /// A template's critical CSS: the template and the stylesheets it stands in for.
    #[serde(default)]
    pub critical: Option<crate::critical::CriticalInfo>,
}

/// The output of a kind for one input: a pure function of the input bytes and the kind's
/// options, so it is cached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transformed {
    /// The files produced, the input's own logical path first.
    pub pieces: Vec<Piece>,
}

impl Transformed {
    /// One piece served under the input's own name.
    pub fn single(piece: Piece) -> Self {
        Transformed {
            pieces: vec![piece],
        }
    }

    /// One stylesheet or script served under the input's own name, with its map.
    pub fn code(
        logical: &str,
        code: String,
        refs: Vec<Reference>,
        map: Option<String>,
        comment: MapComment,
        module: bool,
    ) -> Self {
        Transformed::single(Piece {
            logical: logical.to_string(),
            bytes: code.into_bytes(),
            refs,
            map: map.map(|json| SourceMap { json, comment }),
            module,
            image: None,
            critical: None,
        })
    }

    /// Cache format: the JSON header, then each piece's bytes, all length-prefixed, so
    /// binary outputs are stored as they are.
    pub fn encode(&self) -> Vec<u8> {
        let header = serde_json::to_vec(self).expect("serialisable");
        let mut out = Vec::with_capacity(
            header.len() + 8 + self.pieces.iter().map(|p| p.bytes.len() + 8).sum::<usize>(),
        );
        for part in std::iter::once(&header[..]).chain(self.pieces.iter().map(|p| &p.bytes[..])) {
            out.extend_from_slice(&(part.len() as u64).to_le_bytes());
            out.extend_from_slice(part);
        }
        out
    }

    /// Reads [`Transformed::encode`]'s format; `None` for anything else.
    pub fn decode(mut b: &[u8]) -> Option<Self> {
        let mut next = || {
            let n = usize::try_from(u64::from_le_bytes(b.get(..8)?.try_into().ok()?)).ok()?;
            let part = b.get(8..8usize.checked_add(n)?)?;
            b = &b[8 + n..];
            Some(part)
        };
        let mut t: Transformed = serde_json::from_slice(next()?).ok()?;
        for p in &mut t.pieces {
            p.bytes = next()?.to_vec();
        }
        next().is_none().then_some(t)
    }
}

/// The text of a stylesheet or script: UTF-8, without a leading byte-order mark (which
/// would otherwise become part of the first selector or statement). `error` builds the
/// kind's error from a line, a column and a message.
pub fn text<E>(raw: &[u8], error: impl Fn(u32, u32, String) -> E) -> Result<&str, E> {
    let text = std::str::from_utf8(raw).map_err(|e| {
        let before = &raw[..e.valid_up_to()];
        let line = before.iter().filter(|b| **b == b'\n').count() as u32 + 1;
        let line_start = before
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |p| p + 1);
        let column = (before.len() - line_start) as u32 + 1;
        error(line, column, "the file is not valid UTF-8".to_string())
    })?;
    Ok(text.strip_prefix('\u{feff}').unwrap_or(text))
}

/// A kind of asset: CSS, JavaScript, images, everything else. Adding a kind means adding
/// a module with one of these, not editing the pipeline.
pub trait AssetKind: Sync {
    /// Names the kind in cache keys: `css`.
    fn name(&self) -> &'static str;
    /// Whether this kind handles the file at `logical`.
    fn accepts(&self, logical: &str) -> bool;
    /// Everything besides the input bytes that decides the output (options, resolved
    /// browser targets), or `None` when the output is the input and nothing is cached.
    fn options(&self) -> Result<Option<String>, crate::Error>;
    /// Turns one input into its pieces.
    fn transform(&self, input: &Input, raw: &[u8]) -> Result<Transformed, crate::Error>;
    /// The bytes of the other files the output depends on (a stylesheet's `@import`s),
    /// for the cache key; empty when it depends on the input alone.
    fn dependencies(&self, _input: &Input, _raw: &[u8]) -> Vec<u8> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_format_round_trips() {
        let t = Transformed {
            pieces: vec![
                Piece {
                    logical: "css/a.css".into(),
                    bytes: b"a{color:red}".to_vec(),
                    refs: vec![Reference {
                        specifier: "x.png".into(),
                        line: 1,
                        column: 2,
                        embed: Embed::CssString {
                            placeholder: "abc".into(),
                        },
                    }],
                    map: Some(SourceMap {
                        json: "{}".into(),
                        comment: MapComment::Css,
                    }),
                    module: false,
                    image: None,
                    critical: None,
                },
                Piece {
                    logical: "img/a.webp".into(),
                    bytes: vec![0, 255, 1],
                    refs: vec![],
                    map: None,
                    module: false,
                    image: None,
                    critical: None,
                },
            ],
        };
        let encoded = t.encode();
        assert_eq!(Transformed::decode(&encoded), Some(t));
        assert_eq!(Transformed::decode(&encoded[..encoded.len() - 1]), None);
        assert_eq!(Transformed::decode(b"garbage"), None);
    }

    #[test]
    fn text_strips_a_bom_and_locates_bad_bytes() {
        let e = |l, c, m| (l, c, m);
        assert_eq!(text(b"\xef\xbb\xbfa{}", e).unwrap(), "a{}");
        assert_eq!(
            text(b"a{}\nb{\xff}", e).unwrap_err(),
            (2, 3, "the file is not valid UTF-8".to_string())
        );
    }
}
