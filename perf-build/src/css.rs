//! CSS: lightningcss parses, lowers and prefixes for the browser targets, and prints
//! (minified or not). Every `url()` and `@import` is left as a placeholder with its
//! location, so the output does not depend on other files' hashes and can be cached on its
//! own; [`crate::finish`] fills the placeholders in once every referenced asset is hashed.

use std::path::Path;
use std::sync::OnceLock;

use lightningcss::dependencies::{Dependency, DependencyOptions};
use lightningcss::printer::PrinterOptions;
use lightningcss::stylesheet::{MinifyOptions, ParserOptions, StyleSheet};
use lightningcss::targets::{Browsers, Targets};

use crate::Error;
use crate::config::Config;
use crate::discover::Input;
use crate::transform::{
    AssetKind, Embed, MapComment, Piece, Reference, SourceMap, Transformed, text,
};

/// Stylesheets: `.css`.
pub struct Css {
    queries: Vec<String>,
    minify: bool,
    source_maps: bool,
    // Resolving browserslist queries costs milliseconds: only a build with a stylesheet
    // pays it, once.
    targets: OnceLock<Result<(Targets, String), String>>,
}

impl Css {
    /// The CSS kind for `config`.
    pub fn new(config: &Config) -> Self {
        Css {
            queries: config.targets.clone(),
            minify: config.minify,
            source_maps: config.source_maps,
            targets: OnceLock::new(),
        }
    }

    /// The resolved targets, and a description of the browsers they name (for cache keys:
    /// the same query names other browsers once the browser data is updated).
    fn targets(&self) -> Result<&(Targets, String), Error> {
        self.targets
            .get_or_init(|| {
                let browsers = Browsers::from_browserslist(&self.queries)
                    .map_err(|e| format!("{e}: write a browserslist query such as \"defaults\""))?;
                let described = format!("{browsers:?}");
                Ok((Targets::from(browsers), described))
            })
            .as_ref()
            .map_err(|message| Error::Config {
                source_of_value: "Cargo.toml [package.metadata.perf] targets".into(),
                message: message.clone(),
            })
    }
}

impl AssetKind for Css {
    fn name(&self) -> &'static str {
        "css"
    }

    fn accepts(&self, logical: &str) -> bool {
        crate::mime::extension(logical).eq_ignore_ascii_case("css")
    }

    fn options(&self) -> Result<Option<String>, Error> {
        Ok(Some(format!(
            "minify={} maps={} targets={}",
            self.minify,
            self.source_maps,
            self.targets()?.1
        )))
    }

    fn transform(&self, input: &Input, raw: &[u8]) -> Result<Transformed, Error> {
        let source = text(raw, |line, column, message| Error::Css {
            path: input.file.clone(),
            line,
            column,
            message,
        })?;
        let (code, refs, map) = transform(
            &input.file,
            &input.logical,
            source,
            self.targets()?.0,
            self.minify,
            self.source_maps,
        )?;
        Ok(Transformed::single(Piece {
            logical: input.logical.clone(),
            bytes: code.into_bytes(),
            refs,
            map: map.map(|json| SourceMap {
                json,
                comment: MapComment::Css,
            }),
            module: false,
        }))
    }
}

/// Lowers for `targets` and prints one stylesheet, minified or not (as the lightningcss
/// CLI does: `minify` decides whitespace only, the targets always apply), with its
/// references and, when asked, its source map.
fn transform(
    file: &Path,
    logical: &str,
    source: &str,
    targets: Targets,
    minify: bool,
    source_map: bool,
) -> Result<(String, Vec<Reference>, Option<String>), Error> {
    let error = |loc: Option<lightningcss::error::ErrorLocation>, message: String| Error::Css {
        path: file.to_path_buf(),
        line: loc.as_ref().map_or(1, |l| l.line + 1),
        column: loc.as_ref().map_or(1, |l| l.column),
        message,
    };
    let options = ParserOptions {
        filename: logical.to_string(),
        ..ParserOptions::default()
    };
    let mut sheet =
        StyleSheet::parse(source, options).map_err(|e| error(e.loc, e.kind.to_string()))?;
    sheet
        .minify(MinifyOptions {
            targets,
            ..MinifyOptions::default()
        })
        .map_err(|e| error(e.loc, e.kind.to_string()))?;
    let mut map = source_map.then(|| {
        let mut m = parcel_sourcemap::SourceMap::new("/");
        let index = m.add_source(logical.rsplit('/').next().unwrap_or(logical));
        let _ = m.set_source_content(index as usize, source);
        m
    });
    let printed = sheet
        .to_css(PrinterOptions {
            minify,
            targets,
            source_map: map.as_mut(),
            analyze_dependencies: Some(DependencyOptions {
                remove_imports: false,
            }),
            ..PrinterOptions::default()
        })
        .map_err(|e| error(e.loc, e.kind.to_string()))?;
    let refs = printed
        .dependencies
        .unwrap_or_default()
        .into_iter()
        .map(|d| match d {
            Dependency::Import(d) => Reference {
                specifier: d.url,
                line: d.loc.start.line,
                column: d.loc.start.column,
                embed: Embed::CssString {
                    placeholder: d.placeholder,
                },
            },
            Dependency::Url(d) => Reference {
                specifier: d.url,
                line: d.loc.start.line,
                column: d.loc.start.column,
                embed: Embed::CssString {
                    placeholder: d.placeholder,
                },
            },
        })
        .collect();
    let map = match map {
        Some(mut m) => Some(
            m.to_json(None)
                .map_err(|e| error(None, format!("source map: {e:?}")))?,
        ),
        None => None,
    };
    Ok((printed.code, refs, map))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Out {
        code: String,
        refs: Vec<Reference>,
    }

    fn t(src: &str) -> Result<Out, Error> {
        let css = Css::new(&Config::default());
        let input = Input {
            logical: "css/a.css".into(),
            file: "static/css/a.css".into(),
        };
        let piece = css.transform(&input, src.as_bytes())?.pieces.remove(0);
        Ok(Out {
            code: String::from_utf8(piece.bytes).unwrap(),
            refs: piece.refs,
        })
    }

    fn placeholder(r: &Reference) -> &str {
        match &r.embed {
            Embed::CssString { placeholder } => placeholder,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn minifies_and_records_references() {
        let out = t("@import 'base.css';\n.a {\n  color: #ff0000;\n  background: url(\"../img/x.png\");\n}\n").unwrap();
        assert!(!out.code.contains('\n'), "{}", out.code);
        assert!(out.code.contains("color:red"), "{}", out.code);
        let specs: Vec<_> = out.refs.iter().map(|r| r.specifier.as_str()).collect();
        assert_eq!(specs, ["base.css", "../img/x.png"]);
        for r in &out.refs {
            assert!(
                out.code.contains(placeholder(r)),
                "{} lacks {}",
                out.code,
                placeholder(r)
            );
        }
        assert_eq!(
            (out.refs[1].line, out.refs[1].column),
            (4, 19),
            "points at the URL string"
        );
    }

    #[test]
    fn options_name_the_browsers_not_the_query() {
        let options = |queries: &[&str]| {
            let config = Config {
                targets: queries.iter().map(|q| q.to_string()).collect(),
                ..Config::default()
            };
            Css::new(&config).options().unwrap().unwrap()
        };
        let defaults = options(&["defaults"]);
        assert!(!defaults.contains("defaults"), "{defaults}");
        assert_eq!(defaults, options(&["defaults", "defaults"]));
        assert_ne!(defaults, options(&["chrome 100"]));
        let e = Css::new(&Config {
            targets: vec!["no such browser 3".into()],
            ..Config::default()
        })
        .options()
        .unwrap_err();
        assert!(e.to_string().contains("targets"), "{e}");
    }

    #[test]
    fn reports_line_and_column() {
        let e = t(".a {\n  color: red;\n}\n}\n.b { color: }").unwrap_err();
        let Error::Css { line, column, .. } = e else {
            panic!("{e}")
        };
        assert!(line >= 4, "line {line}");
        assert!(column >= 1);
    }
}
