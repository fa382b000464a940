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
use crate::cache::Cache;
use crate::config::Config;
use crate::discover::Input;
use crate::transform::{AssetKind, Embed, MapComment, Reference, Transformed, text};

/// Stylesheets: `.css`.
pub struct Css {
    queries: Vec<String>,
    minify: bool,
    source_maps: bool,
    cache: Cache,
    // Resolving browserslist queries costs milliseconds: only a build with a stylesheet
    // pays it, once.
    targets: OnceLock<Result<(Targets, String), String>>,
}

impl Css {
    /// The CSS kind for `config`; `cache` keeps the resolved targets between builds.
    pub fn new(config: &Config, cache: &Cache) -> Self {
        Css {
            queries: config.targets.clone(),
            minify: config.minify,
            source_maps: config.source_maps,
            cache: cache.clone(),
            targets: OnceLock::new(),
        }
    }

    /// The resolved targets, and a description of the browsers they name (for cache keys:
    /// the same query names other browsers once the browser data is updated).
    pub(crate) fn targets(&self) -> Result<&(Targets, String), Error> {
        self.targets
            .get_or_init(|| {
                let browsers = self.browsers()?;
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

impl Css {
    /// The browsers the queries name. Resolving costs about a millisecond, as much as the
    /// rest of an unchanged build, so the answer is cached for the day (queries such as
    /// `last 2 years` move with the date; the browser data is part of every cache key).
    fn browsers(&self) -> Result<Option<Browsers>, String> {
        let day = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() / 86_400);
        let key = Cache::key(
            "targets",
            &[self.queries.join("\n").as_bytes(), &day.to_le_bytes()],
        );
        if let Some(cached) = self.cache.get(&key).and_then(|b| decode_browsers(&b)) {
            return Ok(cached);
        }
        let browsers = Browsers::from_browserslist(&self.queries)
            .map_err(|e| format!("{e}: write a browserslist query such as \"defaults\""))?;
        self.cache.put(&key, encode_browsers(browsers).as_bytes());
        Ok(browsers)
    }
}

fn versions(b: &Browsers) -> [Option<u32>; 9] {
    [
        b.android, b.chrome, b.edge, b.firefox, b.ie, b.ios_saf, b.opera, b.safari, b.samsung,
    ]
}

/// `none`, or nine versions (`-` for a browser left out), comma-separated.
fn encode_browsers(browsers: Option<Browsers>) -> String {
    match browsers {
        None => "none".into(),
        Some(b) => versions(&b)
            .iter()
            .map(|v| v.map_or("-".into(), |v| v.to_string()))
            .collect::<Vec<_>>()
            .join(","),
    }
}

fn decode_browsers(bytes: &[u8]) -> Option<Option<Browsers>> {
    let text = std::str::from_utf8(bytes).ok()?;
    if text == "none" {
        return Some(None);
    }
    let v: Vec<Option<u32>> = text
        .split(',')
        .map(|f| {
            if f == "-" {
                Ok(None)
            } else {
                f.parse().map(Some)
            }
        })
        .collect::<Result<_, _>>()
        .ok()?;
    let [
        android,
        chrome,
        edge,
        firefox,
        ie,
        ios_saf,
        opera,
        safari,
        samsung,
    ] = v[..]
    else {
        return None;
    };
    Some(Some(Browsers {
        android,
        chrome,
        edge,
        firefox,
        ie,
        ios_saf,
        opera,
        safari,
        samsung,
    }))
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
        Ok(Transformed::code(
            &input.logical,
            code,
            refs,
            map,
            MapComment::Css,
            false,
        ))
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
        let css = Css::new(&Config::default(), &Cache::new(None));
        let input = Input {
            logical: "css/a.css".into(),
            file: "static/css/a.css".into(),
            builtin: None,
            made: None,
            map: None,
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
            Css::new(&config, &Cache::new(None))
                .options()
                .unwrap()
                .unwrap()
        };
        let defaults = options(&["defaults"]);
        assert!(!defaults.contains("defaults"), "{defaults}");
        assert_eq!(defaults, options(&["defaults", "defaults"]));
        assert_ne!(defaults, options(&["chrome 100"]));
        let e = Css::new(
            &Config {
                targets: vec!["no such browser 3".into()],
                ..Config::default()
            },
            &Cache::new(None),
        )
        .options()
        .unwrap_err();
        assert!(e.to_string().contains("targets"), "{e}");
    }

    #[test]
    fn resolved_targets_are_cached() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(Some(dir.path().to_path_buf()));
        let config = Config::default();
        let first = Css::new(&config, &cache).options().unwrap();
        assert!(std::fs::read_dir(dir.path()).unwrap().count() > 0);
        assert_eq!(Css::new(&config, &cache).options().unwrap(), first);
        let b = Browsers::from_browserslist(["defaults"]).unwrap();
        assert_eq!(decode_browsers(encode_browsers(b).as_bytes()), Some(b));
        assert_eq!(decode_browsers(b"none"), Some(None));
        assert_eq!(decode_browsers(b"1,2"), None);
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
