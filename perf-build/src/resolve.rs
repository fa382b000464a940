//! Resolving every piece's references into links to other pieces (or to the outside
//! world), and the static import graph of the modules.

use std::collections::HashMap;

use crate::Error;
use crate::refs::{self, Lang, Target};
use crate::transform::Embed;

use crate::pipeline::Unit;

/// A reference whose URL goes into its piece's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// Not a file of ours (`data:`, `https:`, a fragment): the URL as written.
    External {
        /// The stand-in text in the bytes.
        placeholder: String,
        /// The URL as written.
        url: String,
    },
    /// Another piece: its hashed name, relative to this one, plus the `?query#fragment`
    /// written after the path.
    Piece {
        /// The stand-in text in the bytes.
        placeholder: String,
        /// Index of the piece in the pipeline's list.
        target: usize,
        /// `?v=2#icon`, or empty.
        suffix: String,
    },
}

/// The references of every piece, by piece index.
#[derive(Debug, Default)]
pub struct Graph {
    /// Links whose URLs go into the bytes.
    pub links: Vec<Vec<Link>>,
    /// Logical paths of the JavaScript modules each piece imports statically: what a
    /// `modulepreload` list names. JSON or CSS modules are left out: the browser loads them
    /// through the import, and a preload of a hashed name would fetch them twice.
    pub imports: Vec<Vec<String>>,
}

/// Resolves every reference; a local name with no file is an error naming the file, line
/// and column of the reference and the nearest existing name.
pub fn resolve(units: &[Unit], url_prefix: &str) -> Result<Graph, Error> {
    let index: HashMap<&str, usize> = units
        .iter()
        .enumerate()
        .map(|(i, u)| (u.piece.logical.as_str(), i))
        .collect();
    let mut graph = Graph {
        links: vec![Vec::new(); units.len()],
        imports: vec![Vec::new(); units.len()],
    };
    let mut errors = Vec::new();
    for (i, unit) in units.iter().enumerate() {
        let from = &unit.piece.logical;
        for r in &unit.piece.refs {
            let lang = match r.embed {
                Embed::CssString { .. } => Lang::Css,
                Embed::Import | Embed::DynamicImport => Lang::Js,
            };
            let missing = |hint: Option<String>| Error::MissingReference {
                path: unit.file.clone(),
                line: r.line,
                column: r.column,
                reference: r.specifier.clone(),
                hint,
            };
            match (
                refs::classify(from, &r.specifier, url_prefix, lang),
                &r.embed,
            ) {
                (Target::External, Embed::CssString { placeholder }) => {
                    graph.links[i].push(Link::External {
                        placeholder: placeholder.clone(),
                        url: r.specifier.clone(),
                    });
                }
                (Target::External, _) => {}
                (Target::Local { logical, suffix }, embed) => {
                    let Some(&target) = index.get(logical.as_str()) else {
                        let near = refs::closest(&logical, index.keys().copied());
                        errors.push(missing(near.map(|n| refs::relative(from, n))));
                        continue;
                    };
                    match embed {
                        Embed::CssString { placeholder } => graph.links[i].push(Link::Piece {
                            placeholder: placeholder.clone(),
                            target,
                            suffix,
                        }),
                        Embed::Import => {
                            if units[target].piece.module && !graph.imports[i].contains(&logical) {
                                graph.imports[i].push(logical);
                            }
                        }
                        Embed::DynamicImport => {}
                    }
                }
                (Target::Outside, _) => errors.push(missing(None)),
            }
        }
    }
    Error::collect(errors)?;
    Ok(graph)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::{Piece, Reference};

    fn unit(logical: &str, module: bool, refs: Vec<Reference>) -> Unit {
        Unit {
            piece: Piece {
                logical: logical.into(),
                bytes: Vec::new(),
                refs,
                map: None,
                module,
                image: None,
                critical: None,
            },
            file: format!("static/{logical}").into(),
            raw_len: 0,
        }
    }

    fn import(specifier: &str, embed: Embed) -> Reference {
        Reference {
            specifier: specifier.into(),
            line: 1,
            column: 1,
            embed,
        }
    }

    #[test]
    fn only_javascript_modules_are_preloaded() {
        let units = [
            unit(
                "js/app.js",
                true,
                vec![
                    import("./util.js", Embed::Import),
                    import("./data.json", Embed::Import),
                    import("../css/card.css", Embed::Import),
                    import("./lazy.js", Embed::DynamicImport),
                    import("lodash", Embed::Import),
                ],
            ),
            unit("js/util.js", true, vec![]),
            unit("js/lazy.js", true, vec![]),
            unit("js/data.json", false, vec![]),
            unit("css/card.css", false, vec![]),
        ];
        let graph = resolve(&units, "/static").unwrap();
        assert_eq!(graph.imports[0], ["js/util.js"]);
        assert!(graph.links[0].is_empty());
    }

    #[test]
    fn missing_files_are_named_with_a_hint() {
        let units = [
            unit("js/app.js", true, vec![import("./utl.js", Embed::Import)]),
            unit("js/util.js", true, vec![]),
        ];
        let e = resolve(&units, "/static").unwrap_err().to_string();
        assert!(
            e.contains("`./utl.js` names no file") && e.contains("./util.js"),
            "{e}"
        );
    }
}
