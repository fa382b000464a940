//! CSS: lightningcss parses, minifies for the browser targets and prints. Every `url()`
//! and `@import` is left as a placeholder with its location, so the output does not
//! depend on other files' hashes and can be cached on its own; [`crate::refs`] fills
//! the placeholders in once every referenced asset is hashed.

use std::path::Path;

use lightningcss::dependencies::{Dependency, DependencyOptions};
use lightningcss::printer::PrinterOptions;
use lightningcss::stylesheet::{MinifyOptions, ParserOptions, StyleSheet};
use lightningcss::targets::{Browsers, Targets};

use crate::Error;
use crate::transform::{Reference, Transformed};

/// Resolves browserslist queries into lightningcss targets.
pub fn targets(queries: &[String]) -> Result<Targets, Error> {
    let browsers = Browsers::from_browserslist(queries).map_err(|e| Error::Config {
        source_of_value: "Cargo.toml [package.metadata.perf] targets".into(),
        message: format!("{e}: write a browserslist query such as \"defaults\""),
    })?;
    Ok(Targets::from(browsers))
}

/// Minifies (or, with `minify` off, reprints) one stylesheet.
pub fn transform(
    file: &Path,
    logical: &str,
    source: &str,
    targets: Targets,
    minify: bool,
    source_map: bool,
) -> Result<Transformed, Error> {
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
    if minify {
        sheet
            .minify(MinifyOptions {
                targets,
                ..MinifyOptions::default()
            })
            .map_err(|e| error(e.loc, e.kind.to_string()))?;
    }
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
                placeholder: d.placeholder,
                specifier: d.url,
                line: d.loc.start.line,
                column: d.loc.start.column,
                dynamic: false,
            },
            Dependency::Url(d) => Reference {
                placeholder: d.placeholder,
                specifier: d.url,
                line: d.loc.start.line,
                column: d.loc.start.column,
                dynamic: false,
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
    Ok(Transformed {
        code: printed.code,
        refs,
        map,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(src: &str) -> Result<Transformed, Error> {
        transform(
            Path::new("static/css/a.css"),
            "css/a.css",
            src,
            targets(&["defaults".into()]).unwrap(),
            true,
            false,
        )
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
                out.code.contains(&r.placeholder),
                "{} lacks {}",
                out.code,
                r.placeholder
            );
        }
        assert_eq!(
            (out.refs[1].line, out.refs[1].column),
            (4, 19),
            "points at the URL string"
        );
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
