//! Asset budgets (`[package.metadata.perf.budgets]`, `Builder::budgets`): the figures of a
//! page (its scripts and their chunks, stylesheets, critical CSS, images) and of an entry,
//! each checked against the assets the build made; over budget as a warning naming the
//! assets, and as an error that writes nothing; bad targets and sizes as clear errors. The
//! rendering through Cargo, pointing at the budget's line, is in `build_errors.rs`.

use std::collections::HashMap;
use std::path::Path;

use perf_build::{
    Budget, BudgetConfig, BudgetEncoding, Builder, BundleConfig, Error, OverBudget, Report,
};
use tempfile::TempDir;

fn write(root: &Path, path: &str, text: &[u8]) {
    let p = root.join(path);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// A package with two pages sharing a layout: `index.html` names a script that imports a
/// shared module, a stylesheet (inlined as critical CSS) and a responsive photograph;
/// `about.html` a second script and the logo.
fn site() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let filler = |name: &str| {
        (0..60)
            .map(|i| {
                format!(
                    "export const {name}{i} = \"{name} value {i} {}\";\n",
                    i * 7919
                )
            })
            .collect::<String>()
    };
    let files: &[(&str, String)] = &[
        (
            "static/js/index.js",
            "import { shared0 } from \"./shared.js\";\nconsole.log(shared0, \"index\");\n".into(),
        ),
        (
            "static/js/about.js",
            "import { shared1 } from \"./shared.js\";\nconsole.log(shared1, \"about\");\n".into(),
        ),
        ("static/js/shared.js", filler("shared")),
        (
            "static/css/app.css",
            ".hero{color:#123456;order:1}.card{margin:1px;order:2}.unused{padding:3px;order:3}\n"
                .into(),
        ),
        (
            "static/img/logo.svg",
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 10 10\"><circle cx=\"5\" cy=\"5\" r=\"4\" fill=\"#3c6e71\"/></svg>\n".into(),
        ),
        (
            "templates/base.html",
            "<!doctype html><html><head>{% block styles %}<link rel=\"stylesheet\" href=\"{{ asset_url!(\"css/app.css\") }}\">{% endblock %}{% block scripts %}{% endblock %}</head><body>{% block content %}{% endblock %}</body></html>\n".into(),
        ),
        (
            "templates/index.html",
            "{% extends \"base.html\" %}{% block styles %}{{ critical_css!(\"index.html\") }}{% endblock %}{% block scripts %}<script type=\"module\" src=\"{{ asset_url!(\"js/index.js\") }}\"></script>{% endblock %}{% block content %}<div class=\"hero\">{{ image!(\"img/photo.jpg\", alt = \"a photo\") }}</div><p class=\"card\">x</p>{% endblock %}\n".into(),
        ),
        (
            "templates/about.html",
            "{% extends \"base.html\" %}{% block scripts %}<script type=\"module\" src=\"{{ asset_url!(\"js/about.js\") }}\"></script>{% endblock %}{% block content %}<img src=\"{{ asset_url!(\"img/logo.svg\") }}\" alt=\"\">{% endblock %}\n".into(),
        ),
    ];
    for (path, text) in files {
        write(root, path, text.as_bytes());
    }
    let photo =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/static/img/photo.jpg"))
            .unwrap();
    write(root, "static/img/photo.jpg", &photo);
    dir
}

fn builder(root: &Path) -> Builder {
    Builder::new()
        .cargo_instructions(false)
        .root(root)
        .static_dir("static")
        .templates_dir("templates")
        .out_dir(root.join("out"))
        .cache_dir(root.join("cache"))
        .quality(perf_build::Quality::Fast)
        // The shared module becomes a chunk of its own, whatever its size.
        .bundle(BundleConfig {
            min_chunk_size: 0,
            ..BundleConfig::default()
        })
}

fn budgets(over_budget: OverBudget, targets: Vec<Budget>) -> BudgetConfig {
    BudgetConfig {
        over_budget,
        compression: BudgetEncoding::Gzip,
        targets,
    }
}

fn budget(target: &str) -> Budget {
    Budget {
        target: target.into(),
        ..Budget::default()
    }
}

/// Gzip bytes of an asset of the report (its own bytes when no gzip variant is kept).
fn gzip(report: &Report, logical: &str) -> u64 {
    let a = report
        .assets
        .iter()
        .find(|a| a.path == logical)
        .unwrap_or_else(|| panic!("no {logical} in the report"));
    a.bytes.gzip.unwrap_or(a.bytes.minified) as u64
}

/// The figures of one budgeted target, by kind.
fn figures(report: &Report, target: &str) -> HashMap<&'static str, (u64, Option<u64>)> {
    report
        .budgets
        .iter()
        .find(|b| b.target == target)
        .unwrap_or_else(|| panic!("no budget for {target}"))
        .figures
        .iter()
        .map(|f| (f.kind, (f.bytes, f.budget)))
        .collect()
}

#[test]
fn a_page_counts_its_chunks_stylesheets_critical_css_and_widest_image() {
    let dir = site();
    let root = dir.path();
    let report = builder(root)
        .budgets(budgets(
            OverBudget::Error,
            vec![
                Budget {
                    js: Some(1_000_000),
                    images: Some(10_000_000),
                    ..budget("index.html")
                },
                budget("about.html"),
                Budget {
                    js: Some(1_000_000),
                    ..budget("js/about.js")
                },
            ],
        ))
        .run()
        .unwrap();
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);

    // The shared module is a chunk of its own, which both entries import.
    let shared: Vec<&str> = report
        .assets
        .iter()
        .filter(|a| a.chunk.as_ref().is_some_and(|c| c.kind == "shared"))
        .map(|a| a.path.as_str())
        .collect();
    assert_eq!(shared.len(), 1, "{shared:?}");
    let shared = shared[0];

    // The widest variant of the photograph in the best format.
    let photo = report
        .assets
        .iter()
        .find(|a| a.path == "img/photo.jpg")
        .and_then(|a| a.image.as_ref())
        .unwrap();
    let best = photo.variants[0].format;
    let widest = photo
        .variants
        .iter()
        .filter(|v| v.format == best)
        .max_by_key(|v| v.width)
        .unwrap();
    assert!(photo.variants.len() > 1, "{:?}", photo.variants);

    let index = figures(&report, "index.html");
    let js =
        gzip(&report, "js/index.js") + gzip(&report, shared) + gzip(&report, "_perf/critical.js");
    // The stylesheets the critical CSS stands in for: the page's and the images'
    // placeholders.
    let critical_report = report
        .assets
        .iter()
        .find(|a| a.path == "_perf/critical/index.html.css")
        .and_then(|a| a.critical.as_ref())
        .unwrap();
    assert!(
        critical_report
            .stylesheets
            .contains(&"css/app.css".to_string()),
        "{:?}",
        critical_report.stylesheets
    );
    let css: u64 = critical_report
        .stylesheets
        .iter()
        .map(|s| gzip(&report, s))
        .sum();
    let critical = gzip(&report, "_perf/critical/index.html.css");
    let images = widest.bytes as u64;
    assert_eq!(index["js"], (js, Some(1_000_000)));
    assert_eq!(index["css"], (css, None));
    assert_eq!(index["critical-css"], (critical, None));
    assert_eq!(index["images"], (images, Some(10_000_000)));
    assert_eq!(index["total"], (js + css + critical + images, None));
    assert!(critical > 0, "{critical}");

    // No critical CSS in the layout's block: the stylesheet itself, and the SVG's gzip.
    let about = figures(&report, "about.html");
    assert_eq!(
        about["js"].0,
        gzip(&report, "js/about.js") + gzip(&report, shared)
    );
    assert_eq!(about["css"].0, gzip(&report, "css/app.css"));
    assert_eq!(about["critical-css"].0, 0);
    assert_eq!(about["images"].0, gzip(&report, "img/logo.svg"));

    // An entry: its first-load chunks.
    let entry = figures(&report, "js/about.js");
    assert_eq!(entry["js"].0, about["js"].0);
    assert_eq!(entry["total"].0, about["js"].0);

    // The size table lists every target.
    let table = report.table();
    for wanted in [
        "budget (gzip; ! over)",
        "index.html",
        "about.html",
        "js/about.js",
    ] {
        assert!(table.contains(wanted), "{wanted} in\n{table}");
    }
    let rows: Vec<&str> = table
        .lines()
        .skip_while(|l| !l.starts_with("budget ("))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    assert_eq!(rows.len(), 3, "{table}");
    assert!(
        rows.iter().all(|r| !r.contains('!')),
        "nothing is over:\n{table}"
    );
}

#[test]
fn over_budget_warns_naming_the_assets_or_fails_and_writes_nothing() {
    let dir = site();
    let root = dir.path();
    let tight = |over_budget| {
        budgets(
            over_budget,
            vec![Budget {
                js: Some(100),
                css: Some(1_000_000),
                ..budget("index.html")
            }],
        )
    };
    let warned = builder(root)
        .budgets(tight(OverBudget::Warn))
        .run()
        .unwrap();
    assert_eq!(warned.warnings.len(), 1, "{:?}", warned.warnings);
    let w = &warned.warnings[0];
    for wanted in [
        "js of index.html is",
        "over its budget of 100 B",
        "js/index.js ",
        "_perf/critical.js ",
        "[package.metadata.perf.budgets.\"index.html\"] js",
    ] {
        assert!(w.contains(wanted), "`{wanted}` in {w}");
    }
    let table = warned.table();
    let row = table
        .lines()
        .find(|l| l.starts_with("index.html ") && l.contains(" / "))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(row.contains("! "), "{table}");
    let generated = root.join("out/perf_assets.rs");
    let before = std::fs::read(&generated).unwrap();

    // Changing a script would change the generated code; over an "error" budget, the
    // build fails and the previous output stays as it was.
    write(
        root,
        "static/js/index.js",
        b"import { shared0 } from \"./shared.js\";\nconsole.log(shared0, \"changed\");\n",
    );
    let err = builder(root)
        .budgets(tight(OverBudget::Error))
        .run()
        .unwrap_err();
    match &err {
        Error::Budget {
            message,
            line,
            table,
            ..
        } => {
            assert!(message.starts_with("js of index.html is"), "{message}");
            let row = table
                .lines()
                .find(|l| l.starts_with("index.html "))
                .unwrap_or_else(|| panic!("{table}"));
            assert!(row.contains("! ") && row.contains("/ 100 B"), "{table}");
            // Set in code: no line of Cargo.toml to point at.
            assert_eq!(*line, 0);
        }
        other => panic!("not a budget error: {other:?}"),
    }
    assert_eq!(std::fs::read(&generated).unwrap(), before);

    // A target's own setting wins over the table's.
    let mut lenient = tight(OverBudget::Error);
    lenient.targets[0].over_budget = Some(OverBudget::Warn);
    let report = builder(root).budgets(lenient).run().unwrap();
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    assert_ne!(std::fs::read(&generated).unwrap(), before);
}

#[test]
fn brotli_budgets_count_brotli_bytes() {
    let dir = site();
    let root = dir.path();
    let mut config = budgets(OverBudget::Error, vec![budget("js/index.js")]);
    config.compression = BudgetEncoding::Brotli;
    let report = builder(root).budgets(config).run().unwrap();
    let br = |logical: &str| {
        let a = report.assets.iter().find(|a| a.path == logical).unwrap();
        a.bytes.brotli.unwrap_or(a.bytes.minified) as u64
    };
    let chunks = report
        .assets
        .iter()
        .find(|a| a.path == "js/index.js")
        .and_then(|a| a.chunk.as_ref()?.first_load.as_ref())
        .unwrap()
        .chunks
        .clone();
    assert_eq!(chunks.len(), 2, "{chunks:?}");
    let expected: u64 = chunks.iter().map(|c| br(c)).sum();
    assert_eq!(figures(&report, "js/index.js")["js"].0, expected);
    assert_eq!(report.budgets[0].compression, "brotli");
}

#[test]
fn a_budget_must_name_a_page_or_a_script() {
    let dir = site();
    let root = dir.path();
    let err = builder(root)
        .budgets(budgets(OverBudget::Warn, vec![budget("index.htm")]))
        .run()
        .unwrap_err()
        .to_string();
    for wanted in [
        "budgets] \"index.htm\"",
        "names neither a template nor a script",
        "did you mean \"index.html\"?",
        "js/about.js",
    ] {
        assert!(err.contains(wanted), "`{wanted}` in {err}");
    }
    let err = builder(root)
        .budgets(budgets(
            OverBudget::Warn,
            vec![Budget {
                css: Some(1),
                ..budget("js/index.js")
            }],
        ))
        .run()
        .unwrap_err()
        .to_string();
    assert!(err.contains("JavaScript only"), "{err}");
}
