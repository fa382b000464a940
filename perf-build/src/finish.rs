//! Finishing: every piece, after the pieces it links to, gets its references filled in,
//! its source map brought in line with the filled-in bytes, and its hashed name.

use crate::Error;
use crate::hash;
use crate::pipeline::Unit;
use crate::refs;
use crate::resolve::Link;
use crate::transform::MapComment;

/// A piece with its final bytes and hashed name.
#[derive(Debug)]
pub struct Final {
    /// Logical path: `css/app.css`.
    pub logical: String,
    /// Hashed path: `css/app.3f9a1c2e.css`.
    pub hashed: String,
    /// The bytes served.
    pub bytes: Vec<u8>,
    /// Its source map, an asset of its own named by its own content.
    pub map: Option<Box<Final>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Visit {
    New,
    Active,
    Done,
}

/// Finishes every unit, each after the units it links to; a cycle of links (stylesheets
/// importing each other) is an error, since none of them can be hashed first.
pub fn finish(units: &[Unit], links: &[Vec<Link>]) -> Result<Vec<Final>, Error> {
    let mut finals: Vec<Option<Final>> = (0..units.len()).map(|_| None).collect();
    let mut state = vec![Visit::New; units.len()];
    for i in 0..units.len() {
        visit(i, units, links, &mut finals, &mut state, &mut Vec::new())?;
    }
    Ok(finals
        .into_iter()
        .map(|f| f.expect("every unit was finished"))
        .collect())
}

fn visit(
    i: usize,
    units: &[Unit],
    links: &[Vec<Link>],
    finals: &mut Vec<Option<Final>>,
    state: &mut Vec<Visit>,
    path: &mut Vec<usize>,
) -> Result<(), Error> {
    match state[i] {
        Visit::Done => return Ok(()),
        Visit::Active => {
            let start = path.iter().position(|&p| p == i).unwrap_or(0);
            let cycle: Vec<String> = path[start..]
                .iter()
                .chain([&i])
                .map(|&c| units[c].piece.logical.clone())
                .collect();
            return Err(Error::ImportCycle {
                path: units[path[start]].file.clone(),
                cycle,
            });
        }
        Visit::New => {}
    }
    state[i] = Visit::Active;
    path.push(i);
    for link in &links[i] {
        if let Link::Piece { target, .. } = link {
            visit(*target, units, links, finals, state, path)?;
        }
    }
    path.pop();
    let piece = &units[i].piece;
    let mut edits = Vec::new();
    for link in &links[i] {
        let (placeholder, url) = match link {
            Link::External { placeholder, url } => (placeholder, url.clone()),
            Link::Piece {
                placeholder,
                target,
                suffix,
            } => {
                let target = finals[*target]
                    .as_ref()
                    .expect("linked pieces finish first");
                let rel = refs::relative(&piece.logical, &target.hashed);
                let rel = rel.strip_prefix("./").unwrap_or(&rel);
                (placeholder, format!("{}{suffix}", refs::url_encode(rel)))
            }
        };
        edits.push((placeholder.as_str(), css_string_body(&url)));
    }
    let (mut bytes, moved) = substitute(&piece.bytes, &edits);
    let map = match &piece.map {
        None => None,
        Some(map) => {
            let json = shift_map(&map.json, &moved).map_err(|message| Error::Css {
                path: units[i].file.clone(),
                line: 1,
                column: 1,
                message: format!("source map: {message}"),
            })?;
            let logical = format!("{}.map", piece.logical);
            let hashed = hash::hashed_name(&logical, &hash::sha256_hex(json.as_bytes()));
            let file = hashed.rsplit('/').next().unwrap_or(&hashed);
            let url = refs::url_encode(file);
            bytes.extend_from_slice(
                match map.comment {
                    MapComment::Css => format!("\n/*# sourceMappingURL={url} */"),
                    MapComment::Js => format!("\n//# sourceMappingURL={url}"),
                }
                .as_bytes(),
            );
            Some(Box::new(Final {
                logical,
                hashed,
                bytes: json.into_bytes(),
                map: None,
            }))
        }
    };
    let hashed = hash::hashed_name(&piece.logical, &hash::sha256_hex(&bytes));
    finals[i] = Some(Final {
        logical: piece.logical.clone(),
        hashed,
        bytes,
        map,
    });
    state[i] = Visit::Done;
    Ok(())
}

/// The body of a double-quoted CSS string holding `value` (CSS Syntax §4.3.5 in reverse):
/// quotes and backslashes escaped, control characters and newlines as hex escapes.
pub fn css_string_body(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push('\u{fffd}'),
            c if c.is_control() => out.push_str(&format!("\\{:x} ", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Where a substitution changed the length of a line: on `line` (from 0), bytes from
/// `column` on (in the bytes before the change) moved by `delta`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Moved {
    line: u32,
    column: u32,
    delta: i64,
}

/// Replaces every occurrence of each placeholder, in one pass over the bytes.
fn substitute(bytes: &[u8], edits: &[(&str, String)]) -> (Vec<u8>, Vec<Moved>) {
    if edits.is_empty() {
        return (bytes.to_vec(), Vec::new());
    }
    let text = String::from_utf8_lossy(bytes);
    let mut hits: Vec<(usize, usize, &str)> = Vec::new();
    for (placeholder, url) in edits {
        if placeholder.is_empty() {
            continue;
        }
        for (at, _) in text.match_indices(placeholder) {
            hits.push((at, placeholder.len(), url));
        }
    }
    hits.sort_by_key(|h| h.0);
    hits.dedup_by_key(|h| h.0);
    let mut out = Vec::with_capacity(bytes.len());
    let mut moved = Vec::with_capacity(hits.len());
    let (mut done, mut line, mut line_start) = (0, 0u32, 0usize);
    for (at, len, url) in hits {
        if at < done {
            continue; // overlapping placeholders: the first one wins
        }
        let between = &bytes[done..at];
        for (k, b) in between.iter().enumerate() {
            if *b == b'\n' {
                line += 1;
                line_start = done + k + 1;
            }
        }
        out.extend_from_slice(between);
        out.extend_from_slice(url.as_bytes());
        moved.push(Moved {
            line,
            column: (at + len - line_start) as u32,
            delta: url.len() as i64 - len as i64,
        });
        done = at + len;
    }
    out.extend_from_slice(&bytes[done..]);
    (out, moved)
}

/// Moves the generated columns of `json`'s mappings by the substitutions made on their
/// lines, so that the map describes the filled-in bytes exactly.
fn shift_map(json: &str, moved: &[Moved]) -> Result<String, String> {
    if moved.iter().all(|m| m.delta == 0) {
        return Ok(json.to_string());
    }
    let old = parcel_sourcemap::SourceMap::from_json("/", json).map_err(|e| format!("{e:?}"))?;
    let mut new = parcel_sourcemap::SourceMap::new("/");
    for (i, source) in old.get_sources().iter().enumerate() {
        new.add_source(source);
        if let Ok(content) = old.get_source_content(i as u32) {
            let _ = new.set_source_content(i, content);
        }
    }
    new.add_names(old.get_names().clone());
    for m in old.get_mappings() {
        let shift: i64 = moved
            .iter()
            .filter(|s| s.line == m.generated_line && s.column <= m.generated_column)
            .map(|s| s.delta)
            .sum();
        let column = (m.generated_column as i64 + shift).max(0) as u32;
        new.add_mapping(m.generated_line, column, m.original);
    }
    new.to_json(None).map_err(|e| format!("{e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn css_strings_are_escaped() {
        assert_eq!(
            css_string_body(r#"data:image/svg+xml,<svg xmlns="http://www.w3.org/2000/svg"/>"#),
            r#"data:image/svg+xml,<svg xmlns=\"http://www.w3.org/2000/svg\"/>"#
        );
        assert_eq!(css_string_body("a\\b\nc"), "a\\\\b\\a c");
        assert_eq!(css_string_body("img/a.png?v=1#x"), "img/a.png?v=1#x");
    }

    #[test]
    fn substitution_records_column_moves() {
        let (out, moved) = substitute(
            b"a{b:url(\"PH1\")}\nc{d:url(\"PH2\");e:url(\"PH1\")}",
            &[("PH1", "x/y.png".into()), ("PH2", "z".into())],
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a{b:url(\"x/y.png\")}\nc{d:url(\"z\");e:url(\"x/y.png\")}"
        );
        assert_eq!(
            moved,
            [
                Moved {
                    line: 0,
                    column: 12,
                    delta: 4
                },
                Moved {
                    line: 1,
                    column: 12,
                    delta: -2
                },
                Moved {
                    line: 1,
                    column: 25,
                    delta: 4
                },
            ]
        );
    }
}
