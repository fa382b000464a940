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
    /// Inline local `@import`s (on when bundling is).
    inline_imports: bool,
    url_prefix: String,
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
            inline_imports: config.bundle.enabled,
            url_prefix: config.url_prefix.clone(),
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
            "minify={} maps={} inline={} prefix={} targets={}",
            self.minify,
            self.source_maps,
            self.inline_imports,
            self.url_prefix,
            self.targets()?.1
        )))
    }

    fn dependencies(&self, input: &Input, raw: &[u8]) -> Vec<u8> {
        let Ok(source) = std::str::from_utf8(raw) else {
            return Vec::new();
        };
        let Some(imports) = self.imports(input, source) else {
            return Vec::new();
        };
        let mut key = Vec::new();
        for (path, text) in &imports.files {
            if *path != input.file {
                key.extend_from_slice(path.to_string_lossy().as_bytes());
                key.push(0);
                key.extend_from_slice(crate::hash::sha256_hex(text.as_bytes()).as_bytes());
                key.push(0);
            }
        }
        key
    }

    fn transform(&self, input: &Input, raw: &[u8]) -> Result<Transformed, Error> {
        let source = text(raw, |line, column, message| Error::Css {
            path: input.file.clone(),
            line,
            column,
            message,
        })?;
        let imports = self.imports(input, source);
        let (code, refs, map) = transform(
            &input.file,
            &input.logical,
            source,
            self.targets()?.0,
            self.minify,
            self.source_maps,
            imports.as_ref(),
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

impl Css {
    /// The local stylesheets `@import`ed by this one, directly or not, read from disk: what
    /// inlining them needs. `None` when inlining is off or there is nothing to inline.
    fn imports(&self, input: &Input, source: &str) -> Option<Imports> {
        if !self.inline_imports || !source.contains("@import") {
            return None;
        }
        // The static dir: the input's path without its logical path.
        let mut static_dir = input.file.clone();
        for _ in input.logical.split('/') {
            static_dir.pop();
        }
        let mut imports = Imports {
            files: std::collections::BTreeMap::new(),
            logical: std::collections::HashMap::new(),
            url_prefix: self.url_prefix.clone(),
        };
        imports.files.insert(input.file.clone(), source.to_string());
        imports
            .logical
            .insert(input.file.clone(), input.logical.clone());
        let mut stack = vec![(input.logical.clone(), source.to_string())];
        while let Some((logical, text)) = stack.pop() {
            let Ok(sheet) = StyleSheet::parse(&text, ParserOptions::default()) else {
                continue;
            };
            for rule in &sheet.rules.0 {
                let lightningcss::rules::CssRule::Import(import) = rule else {
                    continue;
                };
                let crate::refs::Target::Local {
                    logical: target, ..
                } = crate::refs::classify(
                    &logical,
                    &import.url,
                    &self.url_prefix,
                    crate::refs::Lang::Css,
                )
                else {
                    continue;
                };
                let path = static_dir.join(&target);
                if imports.files.contains_key(&path) {
                    continue;
                }
                let Ok(imported) = std::fs::read_to_string(&path) else {
                    // A missing file stays an `@import`, reported as a missing reference.
                    continue;
                };
                let imported = imported.trim_start_matches('\u{feff}').to_string();
                imports.files.insert(path.clone(), imported.clone());
                imports.logical.insert(path, target.clone());
                stack.push((target, imported));
            }
        }
        (imports.files.len() > 1).then_some(imports)
    }
}

/// A stylesheet and the local stylesheets it imports, for lightningcss's bundler.
struct Imports {
    /// Path → text, the importing stylesheet included.
    files: std::collections::BTreeMap<std::path::PathBuf, String>,
    /// Path → logical path.
    logical: std::collections::HashMap<std::path::PathBuf, String>,
    url_prefix: String,
}

impl lightningcss::bundler::SourceProvider for Imports {
    type Error = std::io::Error;

    fn read<'a>(&'a self, file: &Path) -> Result<&'a str, Self::Error> {
        self.files
            .get(file)
            .map(String::as_str)
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    }

    fn resolve(
        &self,
        specifier: &str,
        originating_file: &Path,
    ) -> Result<lightningcss::bundler::ResolveResult, Self::Error> {
        use lightningcss::bundler::ResolveResult;
        let Some(from) = self.logical.get(originating_file) else {
            return Ok(ResolveResult::External(specifier.to_string()));
        };
        if let crate::refs::Target::Local { logical, .. } =
            crate::refs::classify(from, specifier, &self.url_prefix, crate::refs::Lang::Css)
            && let Some((path, _)) = self.logical.iter().find(|(_, l)| **l == logical)
        {
            return Ok(ResolveResult::File(path.clone()));
        }
        Ok(ResolveResult::External(specifier.to_string()))
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
    imports: Option<&Imports>,
) -> Result<(String, Vec<Reference>, Option<String>), Error> {
    let error = |loc: Option<lightningcss::error::ErrorLocation>, message: String| {
        // An error in an imported stylesheet names that file.
        let path = loc
            .as_ref()
            .and_then(|l| imports?.logical.iter().find(|(_, lg)| **lg == l.filename))
            .map_or_else(|| file.to_path_buf(), |(p, _)| p.clone());
        Error::Css {
            path,
            line: loc.as_ref().map_or(1, |l| l.line + 1),
            column: loc.as_ref().map_or(1, |l| l.column),
            message,
        }
    };
    let options = ParserOptions {
        filename: logical.to_string(),
        ..ParserOptions::default()
    };
    let mut bundle_map = None;
    let mut sheet = match imports {
        None => StyleSheet::parse(source, options).map_err(|e| error(e.loc, e.kind.to_string()))?,
        Some(imports) => {
            // lightningcss's bundler inlines each local `@import` in place, inside the
            // `@media`/`@supports`/`@layer` its import named; external ones stay.
            if source_map {
                bundle_map = Some(parcel_sourcemap::SourceMap::new("/"));
            }
            let mut bundler =
                lightningcss::bundler::Bundler::new(imports, bundle_map.as_mut(), options);
            bundler.bundle(file).map_err(|e| {
                let loc = e.loc.map(|mut l| {
                    // The bundler names files by path: back to logical paths.
                    if let Some(lg) = imports.logical.get(Path::new(&l.filename)) {
                        l.filename = lg.clone();
                    }
                    l
                });
                error(loc, e.kind.to_string())
            })?
        }
    };
    sheet
        .minify(MinifyOptions {
            targets,
            ..MinifyOptions::default()
        })
        .map_err(|e| error(e.loc, e.kind.to_string()))?;
    let mut map = match bundle_map {
        Some(m) => Some(m),
        None => source_map.then(|| {
            let mut m = parcel_sourcemap::SourceMap::new("/");
            let index = m.add_source(logical.rsplit('/').next().unwrap_or(logical));
            let _ = m.set_source_content(index as usize, source);
            m
        }),
    };
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
                specifier: rebase(logical, &d.loc.file_path, d.url, imports),
                line: d.loc.start.line,
                column: d.loc.start.column,
                embed: Embed::CssString {
                    placeholder: d.placeholder,
                },
            },
        })
        .collect();
    let map = match map {
        Some(mut m) => {
            let json = m
                .to_json(None)
                .map_err(|e| error(None, format!("source map: {e:?}")))?;
            Some(match imports {
                Some(imports) => relative_sources(&json, logical, imports),
                None => json,
            })
        }
        None => None,
    };
    Ok((printed.code, refs, map))
}

/// A `url()` written in an imported stylesheet is relative to that stylesheet: rewritten
/// relative to the one it is inlined into.
fn rebase(root: &str, written_in: &str, url: String, imports: Option<&Imports>) -> String {
    let Some(from) = imports.and_then(|i| i.logical.get(Path::new(written_in))) else {
        return url;
    };
    if from == root {
        return url;
    }
    match crate::refs::classify(from, &url, "", crate::refs::Lang::Css) {
        crate::refs::Target::Local { logical, suffix } if !url.starts_with('/') => {
            format!("{}{suffix}", crate::refs::relative(root, &logical))
        }
        _ => url,
    }
}

/// The bundler names sources by path: a map's sources become paths relative to the
/// stylesheet, as the browser's devtools resolve them.
fn relative_sources(json: &str, root: &str, imports: &Imports) -> String {
    let Ok(mut value) = serde_json::from_str::<serde_json::Value>(json) else {
        return json.to_string();
    };
    if let Some(sources) = value.get_mut("sources").and_then(|s| s.as_array_mut()) {
        for source in sources {
            if let Some(logical) = source.as_str().and_then(|s| {
                imports
                    .logical
                    .get(Path::new(s.trim_start_matches("/")))
                    .or_else(|| imports.logical.get(Path::new(s)))
            }) {
                *source = serde_json::Value::String(crate::refs::relative(root, logical));
            }
        }
    }
    value.to_string()
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
