//! perf-build run in-process on fixtures: broken inputs, template checks, the cache,
//! the generated-code snapshot and the `cargo::` lines of this crate's own build.rs.

mod common;

use std::path::Path;

use common::files_in;

use perf_build::{Builder, Error};

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");

fn builder(static_dir: &str, cache: &Path, out: &Path) -> Builder {
    Builder::new()
        .cargo_instructions(false)
        .root(MANIFEST_DIR)
        .static_dir(static_dir)
        .templates_dir("fixtures/no-templates-here")
        .cache_dir(cache)
        .out_dir(out)
        .quality(perf_build::Quality::Fast)
}

#[test]
fn broken_css_and_js_are_all_reported_with_locations_and_nothing_is_written() {
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let err = builder("fixtures/broken", cache.path(), out.path())
        .run()
        .unwrap_err();
    let text = err.to_string();
    let errors = err.errors();
    // The stylesheet, the script, and the module's missing import (found by the bundler,
    // which does not stop the other inputs from being checked).
    assert_eq!(errors.len(), 3, "{text}");
    assert!(
        errors.iter().any(|e| matches!(
            e,
            Error::MissingReference { reference, line: 1, column: 19, .. } if reference == "./utl.js"
        )),
        "{text}"
    );
    let css = errors
        .iter()
        .find(|e| matches!(e, Error::Css { .. }))
        .unwrap_or_else(|| panic!("{text}"));
    let Error::Css {
        path,
        line,
        column,
        message,
    } = css
    else {
        unreachable!()
    };
    assert!(path.ends_with("fixtures/broken/css/bad.css"), "{text}");
    assert_eq!((*line, *column), (8, 1), "{text}");
    assert!(!message.is_empty());
    let js = errors
        .iter()
        .find(|e| matches!(e, Error::Js { .. }))
        .unwrap_or_else(|| panic!("{text}"));
    let Error::Js {
        path, line, column, ..
    } = js
    else {
        unreachable!()
    };
    assert!(path.ends_with("fixtures/broken/js/bad.js"), "{text}");
    // `broken( {` opens a destructuring pattern; the parser stops at `2` on the next line.
    assert_eq!((*line, *column), (6, 10), "{text}");
    assert!(
        text.contains("bad.css:8:1: CSS error:") && text.contains("bad.js:6:10: JavaScript error:"),
        "{text}"
    );
    assert!(
        files_in(out.path()).is_empty(),
        "nothing written: {:?}",
        files_in(out.path())
    );
}

#[test]
fn a_missing_import_names_the_closest_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("static/js")).unwrap();
    for f in ["missing.js", "util.js"] {
        std::fs::copy(
            Path::new(MANIFEST_DIR).join("fixtures/broken/js").join(f),
            dir.path().join("static/js").join(f),
        )
        .unwrap();
    }
    let out = tempfile::tempdir().unwrap();
    let err = builder("static", &dir.path().join("cache"), out.path())
        .root(dir.path())
        .run()
        .unwrap_err();
    let Error::MissingReference {
        path,
        line,
        column,
        reference,
        hint,
    } = &err
    else {
        panic!("{err}")
    };
    assert!(path.ends_with("static/js/missing.js"));
    assert_eq!((*line, *column), (1, 19));
    assert_eq!(reference, "./utl.js");
    assert_eq!(hint.as_deref(), Some("./util.js"));
    assert!(
        err.to_string().contains("did you mean `./util.js`?"),
        "{err}"
    );
    assert!(files_in(out.path()).is_empty());
}

#[test]
fn a_template_naming_a_missing_asset_fails_at_its_line() {
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let err = builder("fixtures/static", cache.path(), out.path())
        .templates_dir("fixtures/broken-templates")
        .run()
        .unwrap_err();
    let Error::UnknownAsset {
        path,
        line,
        column,
        name,
        hint,
    } = &err
    else {
        panic!("{err}")
    };
    assert!(path.ends_with("fixtures/broken-templates/page.html"));
    assert_eq!((*line, *column), (2, 24));
    assert_eq!(name, "css/ap.css");
    assert_eq!(hint.as_deref(), Some("css/app.css"));
    assert!(files_in(out.path()).is_empty());
}

#[test]
fn the_cache_skips_unchanged_inputs_and_outputs_are_not_rewritten() {
    let src = tempfile::tempdir().unwrap();
    let copy = |from: &str, to: &str| {
        let to = src.path().join(to);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(Path::new(MANIFEST_DIR).join(from), to).unwrap();
    };
    copy("fixtures/static/css/app.css", "static/css/app.css");
    copy("fixtures/static/css/base.css", "static/css/base.css");
    copy("fixtures/static/img/logo.svg", "static/img/logo.svg");
    copy("fixtures/static/img/dot.png", "static/img/dot.png");
    copy("fixtures/static/js/util.js", "static/js/util.js");
    let cache = src.path().join("cache");
    let out = tempfile::tempdir().unwrap();
    let run = || {
        builder("static", &cache, out.path())
            .root(src.path())
            .run()
            .unwrap()
    };

    let cold = run();
    // The bundle (util.js is a module: its own entry). Transforms: CSS ×2, JS ×2 (the
    // chunk and the CodeSplitter any script brings), the PNG (an image: its variants and
    // placeholder) and the ImageOptimizer script that any image brings. Compressions:
    // the two stylesheets, the three scripts, the SVG, and the image manifest and
    // placeholder stylesheet derived from the images (images themselves are not
    // compressed).
    assert_eq!((cold.cache_hits, cold.cache_misses), (0, 15));
    let generated = out.path().join("perf_assets.rs");
    let mtime = std::fs::metadata(&generated).unwrap().modified().unwrap();

    let warm = run();
    assert_eq!((warm.cache_hits, warm.cache_misses), (15, 0));
    assert_eq!(
        std::fs::metadata(&generated).unwrap().modified().unwrap(),
        mtime,
        "unchanged code is not rewritten"
    );

    // One changed stylesheet: its transform and compression run, and app.css, which
    // inlines it, is transformed and compressed again; nothing else.
    std::fs::write(src.path().join("static/css/base.css"), "body{margin:1px}").unwrap();
    let edit = run();
    assert_eq!((edit.cache_hits, edit.cache_misses), (11, 4));
    let app = edit
        .assets
        .iter()
        .find(|a| a.path == "css/app.css")
        .unwrap();
    let base = edit
        .assets
        .iter()
        .find(|a| a.path == "css/base.css")
        .unwrap();
    let app_bytes = std::fs::read_to_string(out.path().join("perf_assets.rs")).unwrap();
    assert!(app_bytes.contains(&app.file));
    assert_ne!(
        cold.assets
            .iter()
            .find(|a| a.path == "css/app.css")
            .unwrap()
            .file,
        app.file
    );
    assert!(base.file.starts_with("css/base."));
}

/// The generated code with the development mode's record of the build script (its path
/// and the variables Cargo gave it, which differ between machines) left out.
fn without_recorded_script(text: &str) -> String {
    const START: &str = "#[cfg(debug_assertions)]\nconst __PERF_DEV";
    const END: &str = "#[cfg(not(debug_assertions))]";
    let (Some(start), Some(end)) = (text.find(START), text.find(END)) else {
        return text.to_string();
    };
    let recorded = &text[start..end];
    assert!(recorded.contains("program: \"") && recorded.contains("(\"CARGO_MANIFEST_DIR\", "));
    format!(
        "{}{START}: … = Some(&DevScript {{ program, env }}); // recorded, machine-specific\n{}",
        &text[..start],
        &text[end..]
    )
}

#[test]
fn generated_code_matches_its_snapshot() {
    let bless = std::env::var_os("PERF_BLESS").is_some();
    for name in [
        "perf_assets.rs",
        "perf_asset_url.rs",
        "perf_asset_url_export.rs",
    ] {
        let text = std::fs::read_to_string(Path::new(perf_tests::OUT_DIR).join(name))
            .unwrap()
            .replace(perf_tests::OUT_DIR, "$OUT_DIR");
        let text = without_recorded_script(&text);
        let expected = Path::new(MANIFEST_DIR)
            .join("fixtures/expected")
            .join(format!("{name}.snap"));
        if bless {
            std::fs::write(&expected, &text).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&expected).unwrap_or_else(|_| {
            panic!(
                "{} is missing: run with PERF_BLESS=1 to write it",
                expected.display()
            )
        });
        assert!(
            want == text,
            "{name} differs from {}; if the change is intended, rerun with PERF_BLESS=1\n--- generated ---\n{text}",
            expected.display()
        );
    }
}

#[test]
fn build_script_prints_rerun_lines_for_every_input() {
    // Cargo keeps what a build script printed in `output`, beside OUT_DIR.
    let output = std::fs::read_to_string(
        Path::new(perf_tests::OUT_DIR)
            .parent()
            .unwrap()
            .join("output"),
    )
    .unwrap();
    let lines: Vec<&str> = output.lines().collect();
    let has = |l: String| assert!(lines.contains(&l.as_str()), "missing `{l}` in\n{output}");
    has(format!("cargo::rerun-if-changed={MANIFEST_DIR}/Cargo.toml"));
    has(format!(
        "cargo::rerun-if-changed={MANIFEST_DIR}/fixtures/static"
    ));
    has(format!(
        "cargo::rerun-if-changed={MANIFEST_DIR}/fixtures/templates"
    ));
    // Every input under the static dir; what the build derives from them (image
    // variants, `_perf/`) has its input's line, and the ImageOptimizer ships inside
    // perf-build.
    let static_dir = Path::new(MANIFEST_DIR).join("fixtures/static");
    for asset in perf_tests::ASSETS
        .iter()
        .filter(|a| static_dir.join(a.path).exists())
    {
        has(format!(
            "cargo::rerun-if-changed={MANIFEST_DIR}/fixtures/static/{}",
            asset.path
        ));
    }
    for var in [
        "PERF_BUILD_STATIC_DIR",
        "PERF_BUILD_URL_PREFIX",
        "PERF_BUILD_SOURCE_MAPS",
        "PERF_BUILD_TARGETS",
        "PERF_BUILD_MINIFY",
        "PERF_BUILD_PRECOMPRESS",
        "PERF_BUILD_QUALITY",
        "PERF_BUILD_TEMPLATES_DIR",
        "PERF_BUILD_CACHE_DIR",
        "PERF_BUILD_IMAGES_WIDTHS",
        "PERF_BUILD_IMAGES_AVIF",
        "PERF_BUILD_IMAGES_MAX_PIXELS",
    ] {
        has(format!("cargo::rerun-if-env-changed={var}"));
    }
}

#[test]
fn stylesheets_inline_their_imports_and_reference_hashed_files_and_modules_are_bundled() {
    let assets = &perf_tests::ASSETS;
    let css = std::str::from_utf8(assets.get("css/app.css").unwrap().identity).unwrap();
    let logo = assets.get("img/logo.svg").unwrap();
    let dot = assets.get("img/dot.png").unwrap();
    let file = |p: &str| p.rsplit('/').next().unwrap().to_string();
    assert!(
        css.contains(&format!("../img/{}", file(logo.hashed_path))),
        "{css}"
    );
    assert!(
        css.contains(&format!("../img/{}?v=2#frag", file(dot.hashed_path))),
        "{css}"
    );
    // `@import "base.css"` is inlined in place: one request; base.css stays an asset for
    // the pages that link it alone.
    assert!(!css.contains("@import"), "{css}");
    assert!(css.starts_with(":root{--fg:#222}body{"), "{css}");
    assert!(assets.get("css/base.css").is_some());
    assert!(
        css.contains("data:image/gif;base64,R0lGODlhAQABAAAAACw="),
        "{css}"
    );
    assert!(css.contains("https://cdn.example.invalid/x.png"), "{css}");
    assert!(
        css.contains("-webkit-user-select:none"),
        "prefixed for the default targets: {css}"
    );
    assert!(!css.contains("Fixture"), "comments stripped: {css}");

    // util.js, shared by the entries app.js and second.js, goes to a shared chunk both
    // import; lazy.js, imported with `import()`, is a chunk of its own under its own
    // name; legacy.js is a classic script.
    let app = assets.get("js/app.js").unwrap();
    assert_eq!(app.imports, ["_perf/chunks/util.js"], "static imports only");
    assert_eq!(assets.get("js/second.js").unwrap().imports, app.imports);
    assert!(assets.get("js/util.js").is_none());
    let map: serde_json::Value = serde_json::from_str(assets.import_map()).unwrap();
    assert!(map["imports"].get("/static/js/util.js").is_none(), "{map}");
    for m in [
        "js/app.js",
        "js/lazy.js",
        "js/legacy.js",
        "_perf/code-splitter.js",
    ] {
        assert_eq!(
            map["imports"][format!("/static/{m}")],
            assets.url(m).unwrap(),
            "{m}"
        );
    }
    let js = std::str::from_utf8(app.identity).unwrap();
    assert!(!js.contains("someLongLocalName"), "{js}");
    assert!(js.contains("import(\"./lazy.js\")"), "{js}");
    let legacy = std::str::from_utf8(assets.get("js/legacy.js").unwrap().identity).unwrap();
    assert!(
        legacy.contains("legacyCounter") && legacy.contains("legacyIncrement"),
        "{legacy}"
    );
    assert!(
        assets
            .modulepreload_tags("js/app.js")
            .contains(assets.url("_perf/chunks/util.js").unwrap())
    );
    assert_eq!(perf_tests::asset_integrity!("js/app.js"), app.integrity);
}
