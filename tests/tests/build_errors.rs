//! A broken asset in an application built with the README's `build.rs`: the real `cargo`
//! prints rustc-style errors (message, file relative to the package, line and column, a
//! code frame with a caret, the hint), and no panic, backtrace or build-script dump.

mod common;

use common::Crate;

const BUILD_RS: &str =
    "fn main() {\n    if let Err(e) = perf_build::run() {\n        e.emit();\n    }\n}\n";

#[test]
fn build_errors_read_like_rustc() {
    let c = Crate::new(
        "perf-build-errors",
        &[
            ("build.rs", BUILD_RS),
            ("src/main.rs", "fn main() {}\n"),
            (
                "static/css/app.css",
                ".a {\n  color: red;\n}\n.b {\n  color: {\n}\n",
            ),
            ("static/js/app.js", "export const ok = 1;\n"),
            (
                "templates/page.html",
                "<link rel=\"stylesheet\" href=\"{{ asset_url!(\"css/app.css\") }}\">\n<script src=\"{{ asset_url!(\"js/ap.js\") }}\"></script>\n",
            ),
        ],
    );
    let out = c.build(&[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for wanted in [
        "error: perf-build-errors@0.0.0: invalid CSS:",
        "error: perf-build-errors@0.0.0:  --> static/css/app.css:5:",
        "error: perf-build-errors@0.0.0: 5 |   color: {",
        "^ here",
        "error: build script logged errors",
    ] {
        assert!(stderr.contains(wanted), "expected `{wanted}` in\n{stderr}");
    }
    for unwanted in [
        "panicked",
        "stack backtrace",
        "--- stdout",
        "rerun-if-changed",
        "Css {",
    ] {
        assert!(!stderr.contains(unwanted), "`{unwanted}` in\n{stderr}");
    }

    // With the stylesheet fixed, the template's misspelt name is reported the same way.
    std::fs::write(
        c.dir.path().join("static/css/app.css"),
        ".a { color: red; }\n",
    )
    .unwrap();
    let out = c.build(&[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for wanted in [
        "asset_url!(\"js/ap.js\") names no embedded asset",
        " --> templates/page.html:2:",
        "= help: did you mean \"js/app.js\"?",
    ] {
        assert!(stderr.contains(wanted), "expected `{wanted}` in\n{stderr}");
    }
}
