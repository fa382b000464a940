//! `asset_url!`, `asset_integrity!`, `image!` and `critical_css!` with a name that was not embedded must
//! not compile, and must say which file was expected and what the nearest embedded name
//! is. Each case is compiled by the real cargo (see `common`), against the fixtures this
//! crate embeds.

mod common;

use common::Crate;

fn cases() -> Crate {
    let bins = [
        (
            "ok",
            "const URL: &str = perf_tests::asset_url!(\"css/app.css\");\nfn main() { assert!(URL.starts_with(\"/static/css/app.\")); }\n",
        ),
        (
            "typo",
            "fn main() { let _ = perf_tests::asset_url!(\"css/ap.css\"); }\n",
        ),
        (
            "moved",
            "fn main() { let _ = perf_tests::asset_url!(\"styles/app.css\"); }\n",
        ),
        (
            "unrelated",
            "fn main() { let _ = perf_tests::asset_url!(\"fonts/inter.woff2\"); }\n",
        ),
        (
            "not_a_string",
            "fn main() { let _ = perf_tests::asset_url!(42); }\n",
        ),
        (
            "not_a_literal",
            "fn main() { let name = \"css/app.css\"; let _ = perf_tests::asset_url!(name); }\n",
        ),
        (
            "integrity_typo",
            "fn main() { let _ = perf_tests::asset_integrity!(\"js/ap.js\"); }\n",
        ),
        (
            "image_ok",
            "fn main() { let p = perf_tests::image!(\"img/photo.jpg\", alt = \"x\", priority = true).to_string(); assert!(p.starts_with(\"<picture>\")); }\n",
        ),
        (
            "image_typo",
            "fn main() { let _ = perf_tests::image!(\"img/foto.jpg\", alt = \"x\"); }\n",
        ),
        (
            "image_not_an_image",
            "fn main() { let _ = perf_tests::image!(\"css/app.css\"); }\n",
        ),
        (
            "critical_ok",
            "fn main() { let c = perf_tests::critical_css!(\"page.html\").to_string(); assert!(c.starts_with(\"<style data-perf-critical=\\\"page.html\\\">\"), \"{c}\"); }\n",
        ),
        (
            "critical_typo",
            "fn main() { let _ = perf_tests::critical_css!(\"pages.html\"); }\n",
        ),
        (
            "image_unknown_option",
            "fn main() { let _ = perf_tests::image!(\"img/photo.jpg\", colour = \"red\"); }\n",
        ),
    ];
    let files: Vec<(String, String)> = bins
        .iter()
        .map(|(n, src)| (format!("src/bin/{n}.rs"), src.to_string()))
        .collect();
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    Crate::new("perf-compile-fail", &files)
}

fn stderr_of(c: &Crate, bin: &str) -> (bool, String) {
    let out = c.build(&["--bin", bin]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn unknown_asset_names_are_compile_errors_with_hints() {
    let c = cases();
    let (ok, err) = stderr_of(&c, "ok");
    assert!(ok, "a known name compiles:\n{err}");

    let expect_fail = |bin: &str, wanted: &[&str]| {
        let (ok, err) = stderr_of(&c, bin);
        assert!(!ok, "{bin} must not compile");
        for w in wanted {
            assert!(err.contains(w), "{bin}: expected `{w}` in\n{err}");
        }
        assert!(
            err.contains(&format!("src/bin/{bin}.rs")),
            "{bin}: the error points at the call\n{err}"
        );
    };
    expect_fail(
        "typo",
        &[
            "asset_url!(\"css/ap.css\"): no asset named \"css/ap.css\" was embedded (expected the file fixtures/static/css/ap.css)",
            "did you mean \"css/app.css\"?",
        ],
    );
    expect_fail(
        "moved",
        &[
            "no asset named \"styles/app.css\"",
            "did you mean \"css/app.css\"?",
        ],
    );
    expect_fail("unrelated", &["no asset named \"fonts/inter.woff2\""]);
    let (_, unrelated) = stderr_of(&c, "unrelated");
    assert!(
        !unrelated.contains("did you mean"),
        "no far-fetched hint:\n{unrelated}"
    );
    expect_fail(
        "not_a_string",
        &["takes the asset's path as a string literal"],
    );
    expect_fail("not_a_literal", &["asset_url! takes one string literal"]);
    expect_fail(
        "integrity_typo",
        &["no asset named \"js/ap.js\"", "did you mean \"js/app.js\"?"],
    );

    // image!: the same check, over the embedded images only.
    let (ok, err) = stderr_of(&c, "image_ok");
    assert!(ok, "a known image compiles:\n{err}");
    expect_fail(
        "image_typo",
        &[
            "image!(\"img/foto.jpg\"): no asset named \"img/foto.jpg\" was embedded",
            "did you mean \"img/photo.jpg\"?",
        ],
    );
    expect_fail(
        "image_not_an_image",
        &["image!(\"css/app.css\"): no asset named"],
    );
    expect_fail("image_unknown_option", &["colour"]);

    // critical_css!: the templates with critical CSS.
    let (ok, err) = stderr_of(&c, "critical_ok");
    assert!(ok, "a known template compiles:\n{err}");
    expect_fail(
        "critical_typo",
        &[
            "critical_css!(\"pages.html\"): no critical CSS for a template \"pages.html\" (expected the file fixtures/templates/pages.html, linking a stylesheet)",
            "did you mean \"page.html\"?",
        ],
    );
}
