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

/// An asset budget set to fail (`[package.metadata.perf.budgets]`, `over-budget = "error"`):
/// `cargo build` fails pointing at the budget's line in `Cargo.toml`, with the figures and
/// the assets behind them; set to warn, the build passes with a Cargo warning.
#[test]
fn an_error_budget_fails_cargo_build_at_its_line() {
    let c = Crate::new(
        "perf-build-budgets",
        &[
            ("build.rs", BUILD_RS),
            ("src/main.rs", "fn main() {}\n"),
            (
                "static/js/app.js",
                "export const greeting = \"a greeting long enough to be over ten bytes\";\nconsole.log(greeting);\n",
            ),
            (
                "templates/page.html",
                "<!doctype html><title>t</title><script type=\"module\" src=\"{{ asset_url!(\"js/app.js\") }}\"></script>\n",
            ),
        ],
    );
    let manifest = c.dir.path().join("Cargo.toml");
    let base = std::fs::read_to_string(&manifest).unwrap();
    let with = |over: &str| {
        format!(
            "{base}\n[package.metadata.perf.budgets]\nover-budget = \"{over}\"\n\n[package.metadata.perf.budgets.\"page.html\"]\ntotal = \"1 MiB\"\njs = 10\n"
        )
    };
    let text = with("error");
    std::fs::write(&manifest, &text).unwrap();
    let line = text.lines().position(|l| l == "js = 10").unwrap() + 1;
    let out = c.build(&[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for wanted in [
        "error: perf-build-budgets@0.0.0: over budget: js of page.html is ".to_string(),
        "gzip, over its budget of 10 B (js/app.js ".to_string(),
        format!(" --> Cargo.toml:{line}:1"),
        "js = 10".to_string(),
        "^ budget set here".to_string(),
        "= help: make the first load lighter, raise the budget, or set over-budget = \"warn\""
            .to_string(),
        // The budget table, as the size table shows every asset.
        "= note: budget (gzip; ! over)".to_string(),
        "page.html".to_string(),
        "! ".to_string(),
        "/ 1.0 MiB".to_string(),
    ] {
        assert!(stderr.contains(&wanted), "expected `{wanted}` in\n{stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");

    std::fs::write(&manifest, with("warn")).unwrap();
    let out = c.build(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    for wanted in [
        "warning: perf-build-budgets@0.0.0: js of page.html is ",
        "warning: perf-build-budgets@0.0.0: budget (gzip; ! over)",
        "warning: perf-build-budgets@0.0.0: page.html ",
    ] {
        assert!(stderr.contains(wanted), "expected `{wanted}` in\n{stderr}");
    }
}
