//! Checks every asset name written as a literal in the templates at build time
//! (`asset_url!("…")`, `image!("…")`, `"…"|asset_url`, `"…"|image`), so a typo is reported
//! at the template's own line and column: rustc would point at the `#[derive]`, and the
//! filters would only fail when the page renders.

use std::collections::HashSet;
use std::path::Path;

use crate::{Error, discover::discover, refs};

/// Every `asset_url!`/`asset_integrity!` literal in the files under `dir` must name an
/// asset in `known`.
pub fn templates(dir: &Path, known: &HashSet<&str>) -> Result<(), Error> {
    let mut errors = Vec::new();
    for input in discover(dir)? {
        let Ok(text) = std::fs::read_to_string(&input.file) else {
            continue;
        };
        for (name, offset) in calls(&text) {
            if known.contains(name.as_str()) {
                continue;
            }
            let before = &text[..offset];
            let line = before.matches('\n').count() as u32 + 1;
            let column = before.rsplit('\n').next().unwrap_or(before).chars().count() as u32 + 1;
            errors.push(Error::UnknownAsset {
                path: input.file.clone(),
                line,
                column,
                hint: refs::closest(&name, known.iter().copied()).map(str::to_string),
                name,
            });
        }
    }
    Error::collect(errors)
}

/// Every asset name written as a literal in the files under `dir` (the templates), in
/// order of first appearance.
pub fn named_assets(dir: &Path) -> Result<Vec<String>, Error> {
    let mut names = Vec::new();
    for input in discover(dir)? {
        let Ok(text) = std::fs::read_to_string(&input.file) else {
            continue;
        };
        for (name, _) in calls(&text) {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    Ok(names)
}

/// `(name, byte offset of the literal)` for each `asset_url!("name")` (and the other
/// macros) and each `"name"|asset_url` (or `|image`) in `text`.
fn calls(text: &str) -> Vec<(String, usize)> {
    let mut found = Vec::new();
    for pattern in ["|asset_url", "|image"] {
        let mut from = 0;
        while let Some(i) = text[from..].find(pattern) {
            let at = from + i;
            from = at + pattern.len();
            let next = text[from..].chars().next();
            if next.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let before = text[..at].trim_end();
            let Some(inner) = before.strip_suffix('"') else {
                continue;
            };
            let Some(open) = inner.rfind('"') else {
                continue;
            };
            found.push((inner[open + 1..].to_string(), open));
        }
    }
    for pattern in ["asset_url!", "asset_integrity!", "image!", "image_preload!"] {
        let mut from = 0;
        while let Some(i) = text[from..].find(pattern) {
            let start = from + i + pattern.len();
            from = start;
            let rest = &text[start..];
            let trimmed = rest.trim_start();
            let Some(args) = trimmed.strip_prefix('(') else {
                continue;
            };
            let args_trim = args.trim_start();
            let Some(lit) = args_trim.strip_prefix('"') else {
                continue;
            };
            let Some(end) = lit.find('"') else { continue };
            let offset = start + (rest.len() - trimmed.len()) + 1 + (args.len() - args_trim.len());
            found.push((lit[..end].to_string(), offset));
        }
    }
    found.sort_by_key(|(_, o)| *o);
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_literals_with_offsets() {
        let t =
            "<link href=\"{{ asset_url!(\"css/app.css\") }}\">\n{{ asset_url!( \"js/x.js\" ) }}";
        let c = calls(t);
        assert_eq!(c[0].0, "css/app.css");
        assert_eq!(&t[c[0].1..c[0].1 + 5], "\"css/");
        assert_eq!(c[1].0, "js/x.js");
        assert_eq!(&t[c[1].1..c[1].1 + 4], "\"js/");
    }

    #[test]
    fn finds_images_and_filters() {
        let t = "{{ image!(\"img/a.jpg\", alt = \"x\") }}\n{{ \"css/b.css\" |asset_url }} {{ \"img/c.png\"|image(alt = \"y\") }} {{ name|asset_url }} {{ \"x\"|images }}";
        let found = calls(t);
        let names: Vec<&str> = found.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["img/a.jpg", "css/b.css", "img/c.png"]);
        let (_, at) = &found[1];
        assert_eq!(&t[*at..*at + 5], "\"css/");
    }
}
