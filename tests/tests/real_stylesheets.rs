//! Stylesheets as real projects write them (a BOM, inline SVG data URLs, layered
//! `@import`, `image-set()`, query strings and fragments, nesting), run through the
//! standalone build: every output parses again, keeps every declaration lightningcss
//! itself keeps, points every URL at the right file, and its source map is exact.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use lightningcss::dependencies::{Dependency, DependencyOptions};
use lightningcss::printer::PrinterOptions;
use lightningcss::properties::Property;
use lightningcss::rules::CssRule;
use lightningcss::stylesheet::{MinifyOptions, ParserOptions, StyleSheet};
use lightningcss::targets::{Browsers, Targets};
use perf_build::{Builder, Error};
use sha2::Digest;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/real-stylesheets");

struct Dist {
    dir: tempfile::TempDir,
    _cache: tempfile::TempDir,
    /// logical path → hashed file
    files: HashMap<String, String>,
}

impl Dist {
    fn read(&self, file: &str) -> Vec<u8> {
        std::fs::read(self.dir.path().join(file)).unwrap()
    }

    fn text(&self, logical: &str) -> String {
        String::from_utf8(self.read(&self.files[logical])).unwrap()
    }
}

fn build(minify: bool) -> Dist {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    Builder::new()
        .cargo_instructions(false)
        .root(FIXTURES)
        .static_dir(".")
        .check_templates(false)
        .cache_dir(cache.path())
        .minify(minify)
        .source_maps(true)
        .quality(perf_build::Quality::Fast)
        .build_dist(dir.path(), &|_, _| {})
        .unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("manifest.json")).unwrap()).unwrap();
    let files = manifest
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v["file"].as_str().unwrap().to_string()))
        .collect();
    Dist {
        dir,
        _cache: cache,
        files,
    }
}

fn targets() -> Targets {
    Targets::from(Browsers::from_browserslist(["defaults"]).unwrap())
}

/// What lightningcss itself makes of a source with the same targets: the reference.
fn reference(logical: &str, minify: bool) -> String {
    // perf-build inlines a stylesheet's local `@import`s with lightningcss's bundler: so
    // does the reference, from the fixture files (byte-order marks dropped, as ours are).
    let fixtures = Path::new(FIXTURES);
    let files = Fixtures(
        ["css/app.css", "css/base.css", "css/my theme.css"]
            .iter()
            .map(|l| (fixtures.join(l), source(l)))
            .collect(),
    );
    let mut bundler = lightningcss::bundler::Bundler::new(&files, None, ParserOptions::default());
    let mut sheet = bundler.bundle(&fixtures.join(logical)).unwrap();
    sheet
        .minify(MinifyOptions {
            targets: targets(),
            ..MinifyOptions::default()
        })
        .unwrap();
    sheet
        .to_css(PrinterOptions {
            minify,
            targets: targets(),
            ..PrinterOptions::default()
        })
        .unwrap()
        .code
}

/// The fixture stylesheets, for lightningcss's bundler.
struct Fixtures(std::collections::HashMap<PathBuf, String>);

impl lightningcss::bundler::SourceProvider for Fixtures {
    type Error = std::io::Error;

    fn read<'a>(&'a self, file: &Path) -> Result<&'a str, Self::Error> {
        self.0
            .get(file)
            .map(String::as_str)
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    }

    fn resolve(
        &self,
        specifier: &str,
        originating_file: &Path,
    ) -> Result<lightningcss::bundler::ResolveResult, Self::Error> {
        Ok(lightningcss::bundler::ResolveResult::File(
            originating_file.with_file_name(specifier),
        ))
    }
}

/// Every declaration of a stylesheet, in order: the property and whether its value was
/// understood (a value broken by bad escaping is kept as an unparsed token list).
fn declarations(css: &str) -> Vec<(String, bool)> {
    fn walk(rules: &[CssRule], out: &mut Vec<(String, bool)>) {
        for rule in rules {
            match rule {
                CssRule::Style(s) => {
                    for p in s
                        .declarations
                        .declarations
                        .iter()
                        .chain(&s.declarations.important_declarations)
                    {
                        out.push((
                            p.property_id().name().to_string(),
                            matches!(p, Property::Unparsed(_)),
                        ));
                    }
                    walk(&s.rules.0, out);
                }
                CssRule::Media(m) => walk(&m.rules.0, out),
                CssRule::Supports(s) => walk(&s.rules.0, out),
                CssRule::LayerBlock(l) => walk(&l.rules.0, out),
                CssRule::FontFace(f) => {
                    out.extend(f.properties.iter().map(|p| {
                        let name = format!("{p:?}");
                        (
                            name[..name.find('(').unwrap_or(name.len())].to_string(),
                            false,
                        )
                    }));
                }
                _ => {}
            }
        }
    }
    let sheet = StyleSheet::parse(
        css,
        ParserOptions {
            error_recovery: false,
            ..ParserOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("does not parse again: {e}\n{css}"));
    let mut out = Vec::new();
    walk(&sheet.rules.0, &mut out);
    out
}

/// The URLs of a stylesheet, as written, in order.
fn urls(css: &str) -> Vec<String> {
    let sheet = StyleSheet::parse(css, ParserOptions::default()).unwrap();
    sheet
        .to_css(PrinterOptions {
            analyze_dependencies: Some(DependencyOptions {
                remove_imports: false,
            }),
            ..PrinterOptions::default()
        })
        .unwrap()
        .dependencies
        .unwrap()
        .into_iter()
        .map(|d| match d {
            Dependency::Import(d) => d.url,
            Dependency::Url(d) => d.url,
        })
        .collect()
}

fn source(logical: &str) -> String {
    let text = std::fs::read_to_string(Path::new(FIXTURES).join(logical)).unwrap();
    text.trim_start_matches('\u{feff}').to_string()
}

fn is_external(url: &str) -> bool {
    url.starts_with("data:") || url.starts_with("https:")
}

/// `dir/../x%20y.css?v#f` → the path `x y.css` under the dist folder, and the suffix.
fn resolve(from_file: &str, url: &str) -> (PathBuf, String) {
    let cut = url.find(['?', '#']).unwrap_or(url.len());
    let (path, suffix) = url.split_at(cut);
    let mut parts: Vec<String> = from_file.split('/').map(String::from).collect();
    parts.pop();
    for seg in path.split('/') {
        match seg {
            "." | "" => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s.replace("%20", " ").replace("%27", "'")),
        }
    }
    (PathBuf::from(parts.join("/")), suffix.to_string())
}

#[test]
fn every_stylesheet_parses_again_with_every_declaration_and_the_right_urls() {
    for minify in [true, false] {
        let dist = build(minify);
        // `_perf/images.css` is derived from the fixtures' images (their placeholders),
        // with no source to compare against.
        let stylesheets: Vec<&String> = dist
            .files
            .keys()
            .filter(|k| k.ends_with(".css") && !k.starts_with("_perf/"))
            .collect();
        assert_eq!(stylesheets.len(), 3, "{:?}", dist.files.keys());
        for logical in stylesheets {
            let ours = dist.text(logical);
            assert!(!ours.contains('\u{feff}'), "{logical}: the BOM is kept");
            let reference = reference(logical, minify);
            assert_eq!(
                declarations(&ours),
                declarations(&reference),
                "{logical} (minify {minify}): declarations differ\nours: {ours}\nreference: {reference}"
            );
            let (ours_urls, reference_urls) = (urls(&ours), urls(&reference));
            assert_eq!(ours_urls.len(), reference_urls.len(), "{logical}: {ours}");
            for (o, r) in ours_urls.iter().zip(&reference_urls) {
                if is_external(r) {
                    assert_eq!(o, r, "{logical}: external URL changed");
                    continue;
                }
                let (file, suffix) = resolve(&dist.files[logical], o);
                let (wanted, wanted_suffix) = resolve(logical, r);
                let wanted = &dist.files[wanted.to_str().unwrap()];
                assert_eq!(suffix, wanted_suffix, "{logical}: {o} for {r}");
                assert_eq!(
                    file.to_str().unwrap(),
                    wanted,
                    "{logical}: {o} names another file than {r}"
                );
            }
        }
    }
}

#[test]
fn browser_targets_apply_without_minification() {
    let dist = build(false);
    let app = dist.text("css/app.css");
    assert!(
        app.contains("-webkit-user-select: none"),
        "no prefix for the default targets:\n{app}"
    );
    assert!(
        app.contains(".hero .title"),
        "nesting is not lowered:\n{app}"
    );
    assert!(app.contains('\n'), "minify = false keeps whitespace");
}

#[test]
fn source_maps_are_exact_content_addressed_and_encoded() {
    let dist = build(true);
    for (logical, needles) in [
        ("css/app.css", &[".select", ".after-urls", ".last-rule"][..]),
        ("css/my theme.css", &[".theme-after"][..]),
    ] {
        let css = dist.text(logical);
        let (code, comment) = css.rsplit_once('\n').unwrap();
        let map_file = &dist.files[&format!("{logical}.map")];
        let map_name = map_file.rsplit('/').next().unwrap();
        assert_eq!(
            comment,
            format!("/*# sourceMappingURL={} */", map_name.replace(' ', "%20")),
            "{logical}"
        );
        let map_bytes = dist.read(map_file);
        let digest = sha2::Sha256::digest(&map_bytes);
        let short: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
        assert!(
            map_name.contains(&format!(".{short}.")),
            "{map_name} is not named by its content ({short})"
        );
        let mut map =
            parcel_sourcemap::SourceMap::from_json("/", std::str::from_utf8(&map_bytes).unwrap())
                .unwrap();
        let original = source(logical);
        for needle in needles {
            let column = code
                .find(needle)
                .unwrap_or_else(|| panic!("{needle} in {code}"));
            let m = map
                .find_closest_mapping(0, column as u32)
                .unwrap_or_else(|| panic!("no mapping for {needle}"));
            let at = m.original.expect("an original position");
            let line = original
                .lines()
                .position(|l| l.trim_start().starts_with(needle))
                .unwrap();
            assert_eq!(
                (m.generated_column as usize, at.original_line as usize),
                (column, line),
                "{logical}: {needle} maps to the wrong place"
            );
        }
    }
}

#[test]
fn a_vendored_map_beside_a_generated_one_is_an_error_naming_both() {
    let root = tempfile::tempdir().unwrap();
    let js = root.path().join("static/js");
    std::fs::create_dir_all(&js).unwrap();
    std::fs::write(js.join("x.min.js"), "export const x = 1;\n").unwrap();
    std::fs::write(js.join("x.min.js.map"), "{\"version\":3}").unwrap();
    let dist = tempfile::tempdir().unwrap();
    let err = Builder::new()
        .cargo_instructions(false)
        .root(root.path())
        .check_templates(false)
        .cache_dir(root.path().join("cache"))
        .source_maps(true)
        .build_dist(dist.path(), &|_, _| {})
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, Error::DuplicateAsset { ref logical, .. } if logical == "js/x.min.js.map"),
        "{text}"
    );
    assert!(
        text.contains("x.min.js.map") && text.contains("static/js/x.min.js"),
        "{text}"
    );
    assert!(!dist.path().join("manifest.json").exists());
}

#[test]
fn builder_setters_are_validated_like_the_manifest() {
    let dist = tempfile::tempdir().unwrap();
    let err = Builder::new()
        .cargo_instructions(false)
        .root(FIXTURES)
        .static_dir(".")
        .check_templates(false)
        .url_prefix("static")
        .build_dist(dist.path(), &|_, _| {})
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("Builder::url_prefix: `static` is not a URL path prefix"),
        "{err}"
    );
}
