//! Critical CSS per askama template, through real builds of real files in temporary
//! directories: what the extraction keeps and drops across `extends`/`include`/`block`/
//! `super()`/`import`/`call`, every branch of `if`/`match` and loop bodies; dynamic
//! classes, the safelist and `{# perf:keep #}`; combinators, attributes, pseudo-classes
//! and selector lists; `@media`/`@supports`/`@layer` wrappers, `@font-face`,
//! `@keyframes`, custom properties (transitively) and `@import`; absolute `url()`s; the
//! fold marker; the gzip budget as a warning and as an error that writes nothing; template
//! parse errors with their line; the cache; and the `perf-build critical` command, whose
//! output is byte for byte `Builder::critical_css`'s.
//!
//! Every CSS rule below carries its own `order` value, so no two rules share their
//! declarations (the minifier would merge them) and each is found by its printed text.
//!
//! The tests at the end (after `// Defects`) show defects found while writing these, since
//! fixed: each says what askama renders and what the critical CSS must therefore keep.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::files_in;
use perf_build::{Builder, CriticalConfig, Error, OverBudget, Report};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

/// The stylesheet link of most templates below.
const LINK: &str = r#"<link rel="stylesheet" href="{{ asset_url!("css/app.css") }}">"#;

/// A package root in a temporary directory: `files` are (path relative to it, contents).
fn site(files: &[(&str, &str)]) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        write(dir.path(), path, text);
    }
    dir
}

fn write(root: &Path, path: &str, text: &str) {
    let p = root.join(path);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// A build of `root/static` and `root/templates` into `root/out`, cached in `root/cache`.
fn builder(root: &Path) -> Builder {
    Builder::new()
        .cargo_instructions(false)
        .root(root)
        .static_dir("static")
        .templates_dir("templates")
        .out_dir(root.join("out"))
        .cache_dir(root.join("cache"))
        .check_templates(false)
        .quality(perf_build::Quality::Fast)
}

/// `Builder::critical_css` of a template that links a stylesheet: (CSS, stylesheets).
fn critical_of(b: Builder, root: &Path, template: &str) -> (String, Vec<String>) {
    b.critical_css(template, &root.join("fallback-cache"))
        .unwrap_or_else(|e| panic!("{template}: {e}"))
        .unwrap_or_else(|| panic!("{template} links no stylesheet"))
}

/// The critical CSS of `template` with the default settings.
fn critical(root: &Path, template: &str) -> String {
    critical_of(builder(root), root, template).0
}

/// The critical CSS of `template` as a full build embedded it: the bytes in
/// `out/perf-assets/<sha256>.id`, which the generated code includes.
fn embedded(root: &Path, report: &Report, template: &str) -> String {
    let logical = format!("_perf/critical/{template}.css");
    let asset = report
        .assets
        .iter()
        .find(|a| a.path == logical)
        .unwrap_or_else(|| panic!("no {logical} in the report"));
    let generated = std::fs::read_to_string(root.join("out/perf_assets.rs")).unwrap();
    // `_perf/critical/page.html.<first 8 hex digits of the SHA-256>.css`; the blob is
    // `<SHA-256>.id`.
    let short = asset
        .file
        .strip_suffix(".css")
        .and_then(|f| f.rsplit('.').next())
        .unwrap();
    let blobs: Vec<PathBuf> = files_in(&root.join("out/perf-assets"))
        .into_iter()
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.starts_with(short) && name.ends_with(".id") && generated.contains(name)
        })
        .collect();
    assert_eq!(blobs.len(), 1, "{logical}: {blobs:?}");
    let bytes = std::fs::read(&blobs[0]).unwrap();
    assert_eq!(
        format!("{}.id", hex(&Sha256::digest(&bytes))),
        blobs[0].file_name().unwrap().to_str().unwrap()
    );
    String::from_utf8(bytes).unwrap()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[track_caller]
fn keeps(css: &str, wanted: &[&str]) {
    for w in wanted {
        assert!(
            css.contains(w),
            "expected `{w}` in the critical CSS:\n{css}"
        );
    }
}

#[track_caller]
fn drops(css: &str, unwanted: &[&str]) {
    for u in unwanted {
        assert!(
            !css.contains(u),
            "`{u}` should not be in the critical CSS:\n{css}"
        );
    }
}

/// The critical templates of a report, sorted.
fn critical_templates(report: &Report) -> Vec<String> {
    let mut t: Vec<String> = report
        .assets
        .iter()
        .filter_map(|a| a.critical.as_ref().map(|c| c.template.clone()))
        .collect();
    t.sort();
    t
}

#[test]
fn inheritance_includes_macros_branches_and_loops_all_count() {
    let base = format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
{{% block head %}}{LINK}{{% endblock %}}
</head>
<body class="layout">
<header class="site-header">{{% block header %}}<nav class="base-nav"></nav>{{% endblock %}}</header>
{{% block hero %}}<div class="base-hero"></div>{{% endblock %}}
{{% block content %}}<div class="base-content"></div>{{% endblock %}}
{{% block footer %}}<footer class="base-footer"></footer>{{% endblock %}}
</body>
</html>
"#
    );
    let layout = r#"{% extends "base.html" %}
{% block content %}<div class="layout-wrap">{% block main %}<p class="layout-default"></p>{% endblock %}</div>{% endblock %}
"#;
    let page = r#"{% extends "layout.html" %}
{% import "macros.html" as m %}
{% macro badge(text) %}<span class="badge">{{ text }}</span>{% endmacro %}
{% block header %}{{ super() }}<nav class="page-nav"></nav>{% endblock %}
{% block hero %}<section class="page-hero"></section>{% endblock %}
{% block main %}
{% include "partials/box.html" %}
{% call m::card("Title") %}<em class="call-body"></em>{% endcall %}
{% call badge("new") %}{% endcall %}
{% if user.is_some() %}<b class="if-yes"></b>{% else if admin %}<i class="if-elif"></i>{% else %}<u class="if-else"></u>{% endif %}
{% match mood %}{% when Mood::Calm %}<s class="arm-calm"></s>{% when Mood::Loud %}<s class="arm-loud"></s>{% else %}<s class="arm-else"></s>{% endmatch %}
<ul class="items">{% for item in items %}<li class="item">{{ item }}</li>{% else %}<li class="item-empty"></li>{% endfor %}</ul>
{% endblock %}
"#;
    // A page that replaces the block holding the link (where `critical_css!` would go):
    // the layout's link still names its stylesheet.
    let bare = r#"{% extends "base.html" %}
{% block head %}<title>Bare</title>{% endblock %}
{% block content %}<p class="bare"></p>{% endblock %}
"#;
    let css = "
.layout{order:101}
.site-header{order:102}
.base-nav{order:103}
.page-nav{order:104}
.base-nav+.page-nav{order:105}
.base-hero{order:106}
.page-hero{order:107}
.base-content{order:108}
.layout-wrap{order:109}
.layout-default{order:110}
.layout-wrap>.partial-box{order:111}
.partial-title{order:112}
.card .card-title{order:113}
.call-body{order:114}
.badge{order:115}
.if-yes{order:116}
.if-elif{order:117}
.if-else{order:118}
.arm-calm{order:119}
.arm-loud{order:120}
.arm-else{order:121}
.items>.item{order:122}
.item+.item{order:123}
.item-empty{order:124}
.base-footer{order:125}
.never-written{order:126}
.bare{order:127}
";
    let dir = site(&[
        ("static/css/app.css", css),
        ("templates/base.html", &base),
        ("templates/layout.html", layout),
        ("templates/page.html", page),
        ("templates/bare.html", bare),
        (
            "templates/partials/box.html",
            r#"<aside class="partial-box"><h3 class="partial-title">{{ title }}</h3></aside>"#,
        ),
        (
            "templates/macros.html",
            r#"{% macro card(title) %}<article class="card"><h2 class="card-title">{{ title }}</h2>{{ caller() }}</article>{% endmacro %}"#,
        ),
    ]);
    let root = dir.path();

    let (page_css, sheets) = critical_of(builder(root), root, "page.html");
    assert_eq!(sheets, ["css/app.css"]);
    keeps(
        &page_css,
        &[
            // base.html, its own markup and a block the page extends with super()
            ".layout{order:101}",
            ".site-header{order:102}",
            ".base-nav{order:103}",
            ".page-nav{order:104}",
            ".base-nav+.page-nav{order:105}",
            ".base-footer{order:125}",
            // the page's block replacing the base's
            ".page-hero{order:107}",
            // layout.html's block, around the page's
            ".layout-wrap{order:109}",
            // the include, inside the layout's element
            ".layout-wrap>.partial-box{order:111}",
            ".partial-title{order:112}",
            // the imported macro, the call's body, a macro of the page itself
            ".card .card-title{order:113}",
            ".call-body{order:114}",
            ".badge{order:115}",
            // every branch
            ".if-yes{order:116}",
            ".if-elif{order:117}",
            ".if-else{order:118}",
            ".arm-calm{order:119}",
            ".arm-loud{order:120}",
            ".arm-else{order:121}",
            // a loop body (repeated: an item follows an item) and the loop's else
            ".items>.item{order:122}",
            ".item+.item{order:123}",
            ".item-empty{order:124}",
        ],
    );
    drops(
        &page_css,
        &[
            // blocks replaced without super(): the base's hero and content, the layout's main
            "order:106",
            "order:108",
            "order:110",
            // nowhere
            "order:126",
            // only in another page
            "order:127",
        ],
    );

    let bare_css = critical(root, "bare.html");
    keeps(
        &bare_css,
        &[
            ".bare{order:127}",
            ".base-hero{order:106}",
            ".base-nav{order:103}",
        ],
    );
    drops(&bare_css, &["order:104", "order:108", "order:109"]);

    // A full build: one critical stylesheet per HTML template that links one (through
    // its layouts or not), none for the partial and the macros; each the same bytes as
    // `critical_css` gives.
    let report = builder(root).run().unwrap();
    assert_eq!(
        critical_templates(&report),
        ["bare.html", "base.html", "layout.html", "page.html"]
    );
    let asset = report
        .assets
        .iter()
        .find(|a| a.path == "_perf/critical/page.html.css")
        .unwrap();
    let info = asset.critical.as_ref().unwrap();
    assert_eq!(info.template, "page.html");
    assert_eq!(info.stylesheets, ["css/app.css"]);
    assert!(info.share > 0.0 && info.share < 1.0, "share {}", info.share);
    assert!(asset.url.starts_with("/static/_perf/critical/page.html."));
    assert_eq!(embedded(root, &report, "page.html"), page_css);
    assert_eq!(embedded(root, &report, "bare.html"), bare_css);
    let base_css = embedded(root, &report, "base.html");
    keeps(
        &base_css,
        &[".base-hero{order:106}", ".base-content{order:108}"],
    );
    drops(&base_css, &["order:104", "order:109"]);
}

#[test]
fn dynamic_classes_the_safelist_and_keep_comments() {
    let css = "
.panel{order:201}
.mood-calm{order:202}
.mood-x{order:203}
.mod-calm{order:204}
.is-open{order:205}
#menu{order:206}
.extra-thing{order:207}
";
    let dir = site(&[
        ("static/css/app.css", css),
        (
            "templates/mood.html",
            &format!(
                "{LINK}\n<div class=\"panel mood-{{{{ mood }}}}\"></div>\n<span class=\"{{{{ extra }}}}\"></span>\n"
            ),
        ),
        (
            "templates/kept.html",
            &format!("{LINK}\n{{# perf:keep is-open mood-* #}}\n<div class=\"panel\"></div>\n"),
        ),
    ]);
    let root = dir.path();

    let mood = critical(root, "mood.html");
    keeps(
        &mood,
        &[
            ".panel{order:201}",
            ".mood-calm{order:202}",
            ".mood-x{order:203}",
        ],
    );
    // `mood-{{ m }}` is no `mod-…`; `class="{{ extra }}"` names nothing by itself; the
    // other template's perf:keep is not this one's.
    drops(&mood, &["order:204", "order:205", "order:206", "order:207"]);

    let kept = critical(root, "kept.html");
    keeps(
        &kept,
        &[
            ".panel{order:201}",
            ".is-open{order:205}",
            ".mood-calm{order:202}",
            ".mood-x{order:203}",
        ],
    );
    drops(&kept, &["order:204", "order:206", "order:207"]);

    // The configured safelist: a class and an id, in every template.
    let safelisted = |template: &str| {
        critical_of(
            builder(root).critical(CriticalConfig {
                safelist: vec!["is-open".into(), "#menu".into()],
                ..CriticalConfig::default()
            }),
            root,
            template,
        )
        .0
    };
    let mood = safelisted("mood.html");
    keeps(&mood, &[".is-open{order:205}", "#menu{order:206}"]);
    drops(&mood, &["order:204", "order:207"]);
    // Both lists at once.
    let kept = safelisted("kept.html");
    keeps(
        &kept,
        &[
            ".is-open{order:205}",
            "#menu{order:206}",
            ".mood-calm{order:202}",
        ],
    );
}

#[test]
fn combinators_attributes_pseudo_classes_and_selector_lists() {
    let css = r#"
.menu .link{order:301}
.menu>ul{order:302}
.menu>.link{order:303}
.note+.after{order:304}
.note~.after{order:305}
.link+.note{order:306}
input[type=email]{order:307}
input[type=password]{order:308}
[data-x]{order:309}
[data-y]{order:310}
.btn:hover{order:311}
.btn:focus{order:312}
.ghost:hover{order:313}
.note::before{content:"n";order:314}
.ghost::before{content:"g";order:315}
input:not([type=email]){order:316}
.ghost:not(.x){order:317}
:is(.menu,.ghost) .link{order:318}
:where(.ghost) .link{order:319}
.item:nth-child(2n+1){order:320}
.ghost:nth-child(2){order:321}
.note,.zzz{order:322}
.zzz,.after{order:323}
.yyy,.zzz{order:324}
"#;
    let page = r#"<link rel="stylesheet" href="/static/css/app.css">
<nav class="menu"><ul><li class="item"><a class="link" href="/">Home</a></li></ul></nav>
<form class="signup"><input type="email" name="email"><input type="text" data-x="1"><button class="btn">Go</button></form>
<p class="note">a</p><p class="after">b</p>
"#;
    let dir = site(&[("static/css/app.css", css), ("templates/form.html", page)]);
    let root = dir.path();
    let (css, sheets) = critical_of(builder(root), root, "form.html");
    assert_eq!(sheets, ["css/app.css"], "a literal /static/… href counts");
    keeps(
        &css,
        &[
            ".menu .link{order:301}",
            ".menu>ul{order:302}",
            ".note+.after{order:304}",
            ".note~.after{order:305}",
            "input[type=email]{order:307}",
            "[data-x]{order:309}",
            ".btn:hover{order:311}",
            ".btn:focus{order:312}",
            "order:314",
            "input:not([type=email]){order:316}",
            "order:318",
            "order:320",
            // lists pruned to what matches
            ".note{order:322}",
            ".after{order:323}",
        ],
    );
    drops(
        &css,
        &[
            "order:303",
            "order:306",
            "order:308",
            "order:310",
            "order:313",
            "order:315",
            "order:317",
            "order:319",
            "order:321",
            "order:324",
            ".zzz",
        ],
    );
    assert!(
        css.contains(".note:before{") || css.contains(".note::before{"),
        "{css}"
    );
    // `:is()` matches when one of its selectors does; its list is left whole.
    assert!(css.contains(":is(.menu,.ghost) .link{"), "{css}");
    assert!(css.contains(".item:nth-child("), "{css}");
}

#[test]
fn at_rules_fonts_keyframes_custom_properties_and_imports() {
    let app = r#"@import "base.css";
@import "screen.css" screen;
@font-face{font-family:Brand;src:local("Brand Sans")}
@font-face{font-family:ViaVar;src:local("Via Var")}
@font-face{font-family:Unused;src:local("Unused Face")}
@keyframes spin{from{transform:rotate(0)}to{transform:rotate(1turn)}}
@keyframes wobble{from{opacity:0}to{opacity:1}}
:root{--font-var:ViaVar;--c:#123456;--d:var(--e);--e:3px;--unused:7px;--only-ghost:9px}
.title{font-family:Brand,sans-serif;order:401}
.sub{font-family:var(--font-var);order:402}
.spinner{animation:spin 1s linear infinite;order:403}
.box{color:var(--c);padding:var(--d);order:404}
.ghost{animation:wobble 1s;font-family:Unused;margin:var(--only-ghost);order:405}
@media (min-width:600px){.title{order:406}.ghost{order:407}}
@media print{.ghost{order:408}}
@supports (display:grid){.box{order:409}}
@supports (display:flex){.ghost{order:410}}
@layer ui{.title{order:411}}
@layer gone{.ghost{order:412}}
"#;
    let dir = site(&[
        ("static/css/app.css", app),
        ("static/css/base.css", ".sub{order:451}.ghost{order:452}"),
        (
            "static/css/screen.css",
            ".title{order:461}.ghost{order:462}",
        ),
        (
            "templates/page.html",
            &format!(
                "{LINK}\n<h1 class=\"title\">x</h1><p class=\"sub\"></p><div class=\"spinner\"></div><div class=\"box\"></div>\n"
            ),
        ),
    ]);
    let root = dir.path();
    let css = critical(root, "page.html");
    keeps(
        &css,
        &[
            "font-family:Brand,sans-serif",
            "order:401",
            "order:402",
            "order:403",
            "order:404",
            // wrappers around kept rules
            "{.title{order:406}}",
            "@supports (display:grid){.box{order:409}}",
            "@layer ui{.title{order:411}}",
            // fonts: directly, through a custom property
            "@font-face{font-family:Brand;",
            "@font-face{font-family:ViaVar;",
            "@keyframes spin",
            // custom properties, transitively
            "--font-var:ViaVar",
            "--c:#123456",
            "--d:var(--e)",
            "--e:3px",
            // the imported sheets' critical rules, with the import's condition
            ".sub{order:451}",
            "@media screen{.title{order:461}}",
        ],
    );
    drops(
        &css,
        &[
            ".ghost",
            "order:407",
            "order:408",
            "@media print",
            "order:410",
            "display:flex",
            "@layer gone",
            "Unused",
            "wobble",
            "--unused",
            "--only-ghost",
            "order:452",
            "order:462",
        ],
    );
    // The imports' parts come first, in their order, before the sheet's own rules.
    let at = |s: &str| css.find(s).unwrap_or_else(|| panic!("no `{s}` in {css}"));
    assert!(at(".sub{order:451}") < at("@media screen{.title{order:461}}"));
    assert!(at("@media screen{.title{order:461}}") < at("@font-face"));
    assert!(at("@font-face") < at(".title{order:401"));
    // The media query as lightningcss prints it for the default targets.
    assert!(
        css.contains("@media (min-width:600px){.title{order:406}}")
            || css.contains("@media (width>=600px){.title{order:406}}"),
        "{css}"
    );
}

#[test]
fn urls_become_absolute_under_the_prefix_and_data_uris_stay() {
    let dir = site(&[
        (
            "static/css/app.css",
            ".hero{background:url(../img/x.svg) no-repeat;order:501}\n\
             .dot{background-image:url(\"data:image/gif;base64,R0lGODlhAQABAAAAACw=\");order:502}\n\
             .ghost{background:url(../img/y.svg);order:503}\n",
        ),
        (
            "static/img/x.svg",
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"1\" height=\"1\"/>",
        ),
        (
            "static/img/y.svg",
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"2\" height=\"2\"/>",
        ),
        (
            "templates/page.html",
            &format!("{LINK}\n<div class=\"hero\"></div><i class=\"dot\"></i>\n"),
        ),
    ]);
    let root = dir.path();
    for prefix in ["/static", "/assets"] {
        let report = builder(root).url_prefix(prefix).run().unwrap();
        let x = report
            .assets
            .iter()
            .find(|a| a.path == "img/x.svg")
            .unwrap();
        assert!(x.url.starts_with(&format!("{prefix}/img/x.")), "{}", x.url);
        assert_ne!(x.url, format!("{prefix}/img/x.svg"), "hashed");
        let css = embedded(root, &report, "page.html");
        keeps(
            &css,
            &[
                &format!("url({})", x.url),
                "url(data:image/gif;base64,R0lGODlhAQABAAAAACw=)",
                "order:501",
                "order:502",
            ],
        );
        drops(&css, &["../", "img/y.", "order:503"]);
        assert_eq!(
            css,
            critical_of(builder(root).url_prefix(prefix), root, "page.html").0
        );
    }
}

#[test]
fn the_fold_marker_ends_the_critical_part() {
    let css = ".top{order:601}\n.bottom{order:602}\n";
    let dir = site(&[
        ("static/css/app.css", css),
        (
            "templates/askama.html",
            &format!(
                "{LINK}\n<header class=\"top\"></header>\n{{# perf:fold #}}\n<footer class=\"bottom\"></footer>\n"
            ),
        ),
        (
            "templates/comment.html",
            &format!(
                "{LINK}\n<header class=\"top\"></header>\n<!-- perf:fold -->\n<footer class=\"bottom\"></footer>\n"
            ),
        ),
        (
            "templates/whole.html",
            &format!(
                "{LINK}\n<header class=\"top\"></header>\n<footer class=\"bottom\"></footer>\n"
            ),
        ),
    ]);
    let root = dir.path();
    for template in ["askama.html", "comment.html"] {
        let css = critical(root, template);
        keeps(&css, &[".top{order:601}"]);
        drops(&css, &["order:602"]);
    }
    keeps(
        &critical(root, "whole.html"),
        &[".top{order:601}", ".bottom{order:602}"],
    );
}

fn budget_site() -> TempDir {
    site(&[
        (
            "static/css/app.css",
            ".a{color:red;order:701}.b{margin:1px;order:702}",
        ),
        (
            "templates/page.html",
            &format!("{LINK}\n<p class=\"a\"></p><p class=\"b\"></p>\n"),
        ),
    ])
}

#[test]
fn over_budget_warns_or_fails_and_then_writes_nothing() {
    let dir = budget_site();
    let root = dir.path();
    let tiny = |over_budget| CriticalConfig {
        budget: 10,
        over_budget,
        ..CriticalConfig::default()
    };

    let fine = builder(root).run().unwrap();
    assert!(fine.warnings.is_empty(), "{:?}", fine.warnings);

    let warned = builder(root)
        .critical(tiny(OverBudget::Warn))
        .run()
        .unwrap();
    assert_eq!(warned.warnings.len(), 1, "{:?}", warned.warnings);
    assert!(
        warned.warnings[0].contains("page.html") && warned.warnings[0].contains("budget"),
        "{:?}",
        warned.warnings
    );
    assert!(
        warned
            .assets
            .iter()
            .any(|a| a.path == "_perf/critical/page.html.css"),
        "a warning still embeds the critical CSS"
    );

    let out = tempfile::tempdir().unwrap();
    let err = builder(root)
        .out_dir(out.path())
        .critical(tiny(OverBudget::Error))
        .run()
        .unwrap_err();
    let Error::CriticalBudget {
        path,
        template,
        gzip,
        budget,
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(template, "page.html");
    assert!(path.ends_with("templates/page.html"), "{}", path.display());
    assert_eq!(*budget, 10);
    assert!(*gzip > 10, "{gzip}");
    assert!(err.to_string().contains("page.html"), "{err}");
    assert!(
        !out.path().join("perf_assets.rs").exists() && files_in(out.path()).is_empty(),
        "nothing written: {:?}",
        files_in(out.path())
    );
}

#[test]
fn a_template_askama_cannot_parse_fails_at_its_line() {
    let dir = site(&[
        ("static/css/app.css", ".a{order:801}"),
        (
            "templates/bad.html",
            &format!("{LINK}\n<p class=\"a\">\n  {{% if %}}\n</p>\n"),
        ),
    ]);
    let root = dir.path();
    let out = tempfile::tempdir().unwrap();
    let err = builder(root).out_dir(out.path()).run().unwrap_err();
    let Error::Template {
        path, line, column, ..
    } = &err
    else {
        panic!("{err}")
    };
    assert!(path.ends_with("templates/bad.html"), "{}", path.display());
    // askama stops at the `%` of `%}`, where it wanted the condition.
    assert_eq!((*line, *column), (3, 9), "{err}");
    assert!(err.to_string().contains("bad.html:3:"), "{err}");
    assert!(
        files_in(out.path()).is_empty(),
        "{:?}",
        files_in(out.path())
    );

    // Without critical CSS nothing reads the templates (the template check is off here).
    builder(root)
        .out_dir(out.path())
        .critical(CriticalConfig {
            enabled: false,
            ..CriticalConfig::default()
        })
        .run()
        .unwrap();
}

#[test]
fn an_unchanged_tree_is_cached_and_an_edit_changes_only_its_template() {
    let dir = site(&[
        (
            "static/css/app.css",
            ".a{order:901}.b{order:902}.c{order:903}",
        ),
        (
            "templates/one.html",
            &format!("{LINK}\n<p class=\"a\"></p>\n"),
        ),
        (
            "templates/two.html",
            &format!("{LINK}\n<p class=\"c\"></p>\n"),
        ),
    ]);
    let root = dir.path();
    let run = || builder(root).run().unwrap();
    let url = |r: &Report, t: &str| {
        r.assets
            .iter()
            .find(|a| a.path == format!("_perf/critical/{t}.css"))
            .unwrap()
            .url
            .clone()
    };

    let cold = run();
    // Transforms: app.css and the stylesheet loader; the critical stage; compressions:
    // app.css, the loader and the two critical stylesheets.
    assert_eq!((cold.cache_hits, cold.cache_misses), (0, 7));
    let warm = run();
    assert_eq!((warm.cache_hits, warm.cache_misses), (7, 0));
    assert_eq!(url(&warm, "one.html"), url(&cold, "one.html"));

    // One template edited: the critical stage runs again, and only that template's
    // critical CSS is new (one new compression).
    write(
        root,
        "templates/one.html",
        &format!("{LINK}\n<p class=\"b\"></p>\n"),
    );
    let edit = run();
    assert_eq!((edit.cache_hits, edit.cache_misses), (5, 2));
    assert_ne!(url(&edit, "one.html"), url(&cold, "one.html"));
    assert_eq!(url(&edit, "two.html"), url(&cold, "two.html"));
    let css = embedded(root, &edit, "one.html");
    keeps(&css, &[".b{order:902}"]);
    drops(&css, &["order:901"]);
    keeps(&embedded(root, &edit, "two.html"), &[".c{order:903}"]);
}

/// `target/debug/perf-build`, built first: `cargo test --test critical` builds the
/// binaries of the tests' own package only. With every workspace member selected, as the
/// test build has them, Cargo resolves the same features and builds nothing new when
/// the binary is fresh.
fn perf_build_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let out = Command::new(env!("CARGO"))
            .args(["build", "--offline", "--workspace", "--bin", "perf-build"])
            .current_dir(common::WORKSPACE)
            .env("CARGO_TARGET_DIR", common::target_dir())
            .env("CARGO_TERM_COLOR", "never")
            .env_remove("CARGO_MANIFEST_DIR")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bin = common::target_dir().join("debug/perf-build");
        assert!(bin.is_file(), "{}", bin.display());
        bin
    })
}

/// The command run as a user would, in `dir`; not under Cargo (`cargo test` sets
/// `OUT_DIR` for this test binary, which the command would inherit).
fn perf_build(dir: &Path, args: &[&str]) -> Output {
    Command::new(perf_build_bin())
        .args(args)
        .current_dir(dir)
        .env_remove("OUT_DIR")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn the_critical_command_writes_what_the_builder_extracts() {
    let dir = site(&[
        (
            "static/css/app.css",
            ".a{order:1001}.b{order:1002}.is-open{order:1003}",
        ),
        (
            "templates/page.html",
            &format!("{LINK}\n<p class=\"a\"></p>\n"),
        ),
        ("templates/plain.html", "<p class=\"b\"></p>\n"),
    ]);
    let root = dir.path();
    let args = |template: &str, out: &str, extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "critical",
            "--static-dir",
            "static",
            "--templates-dir",
            "templates",
            "--template",
            template,
            "--out",
            out,
            "--cache-dir",
            "cli-cache",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let run = |a: Vec<String>| {
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        perf_build(root, &a)
    };

    let out = run(args("page.html", "page.css", &[]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("page.css") && text(&out.stderr).contains("css/app.css"),
        "{}",
        text(&out.stderr)
    );
    let written = std::fs::read_to_string(root.join("page.css")).unwrap();
    let expected = critical(root, "page.html");
    assert_eq!(written, expected);
    keeps(&written, &[".a{order:1001}"]);
    drops(&written, &["order:1002", "order:1003"]);

    // To standard output, with a safelist.
    let out = run(args("page.html", "-", &["--safelist", "is-open"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    assert_eq!(
        printed,
        critical_of(
            builder(root).critical(CriticalConfig {
                safelist: vec!["is-open".into()],
                ..CriticalConfig::default()
            }),
            root,
            "page.html"
        )
        .0
    );
    keeps(&printed, &[".is-open{order:1003}"]);

    // A template that links nothing: an empty file, said so.
    let out = run(args("plain.html", "plain.css", &[]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(root.join("plain.css")).unwrap(), "");
    assert!(
        text(&out.stderr).contains("links no stylesheet"),
        "{}",
        text(&out.stderr)
    );

    // A template that does not exist: an error naming it, no file.
    let out = run(args("nope.html", "nope.css", &[]));
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("nope.html"),
        "{}",
        text(&out.stderr)
    );
    assert!(!root.join("nope.css").exists());
}

#[test]
fn the_command_has_help_and_a_version() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["--help"][..],
        &["critical", "--help"],
        &["help", "critical"],
    ] {
        let out = perf_build(dir.path(), args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert!(
            text(&out.stdout).contains("Usage: perf-build"),
            "{args:?}: {}",
            text(&out.stdout)
        );
    }
    assert!(text(&perf_build(dir.path(), &["--help"]).stdout).contains("critical"));
    let help = text(&perf_build(dir.path(), &["critical", "--help"]).stdout);
    for flag in [
        "--static-dir <DIR>",
        "--templates-dir <DIR>",
        "--template <NAME>",
        "--out <FILE>",
        "--safelist <ENTRY>",
    ] {
        assert!(help.contains(flag), "{flag} in\n{help}");
    }
    for args in [&["--version"][..], &["critical", "--version"]] {
        let out = perf_build(dir.path(), args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        let version = text(&out.stdout);
        assert!(
            version.starts_with("perf-build")
                && version.trim().ends_with(env!("CARGO_PKG_VERSION")),
            "{args:?}: {version}"
        );
    }
}

// Defects: see the module documentation.

#[test]
fn an_include_in_a_page_of_a_subfolder_resolves_next_to_the_page() {
    // askama looks an include up next to the template that writes it first, then in the
    // templates directory (askama_derive's `find_template`); pages/home.html includes
    // pages/card.html.
    let dir = site(&[
        (
            "static/css/app.css",
            ".pcard{order:1101}.rootcard{order:1102}",
        ),
        (
            "templates/base.html",
            &format!(
                "<html><head>{LINK}</head><body>{{% block content %}}{{% endblock %}}</body></html>"
            ),
        ),
        (
            "templates/pages/home.html",
            "{% extends \"base.html\" %}{% block content %}{% include \"card.html\" %}{% endblock %}",
        ),
        ("templates/pages/card.html", "<div class=\"pcard\"></div>"),
    ]);
    let root = dir.path();
    let css = critical(root, "pages/home.html");
    keeps(&css, &[".pcard{order:1101}"]);

    // With a card.html at the top as well, askama still takes the one beside the page.
    write(
        root,
        "templates/card.html",
        "<div class=\"rootcard\"></div>",
    );
    let css = critical(root, "pages/home.html");
    keeps(&css, &[".pcard{order:1101}"]);
    drops(&css, &["order:1102"]);
}

#[test]
fn each_branch_of_a_condition_inside_a_class_attribute_counts() {
    let dir = site(&[
        (
            "static/css/app.css",
            ".btn{order:1201}.btn-primary{order:1202}.btn-secondary{order:1203}.is-on{order:1204}.is-off{order:1205}",
        ),
        (
            "templates/page.html",
            &format!(
                "{LINK}\n<button class=\"btn {{% if primary %}}btn-primary{{% else %}}btn-secondary{{% endif %}}\"></button>\n\
                 <i class=\"{{% match on %}}{{% when true %}}is-on{{% else %}}is-off{{% endmatch %}}\"></i>\n"
            ),
        ),
    ]);
    let css = critical(dir.path(), "page.html");
    keeps(
        &css,
        &[
            ".btn{order:1201}",
            ".btn-primary{order:1202}",
            ".btn-secondary{order:1203}",
            ".is-on{order:1204}",
            ".is-off{order:1205}",
        ],
    );
}

#[test]
fn a_call_body_sits_where_the_macro_calls_caller() {
    let dir = site(&[
        (
            "static/css/app.css",
            ".card>.body{order:1301}.card .body{order:1302}",
        ),
        (
            "templates/macros.html",
            "{% macro card() %}<article class=\"card\">{{ caller() }}</article>{% endmacro %}",
        ),
        (
            "templates/page.html",
            &format!(
                "{LINK}\n{{% import \"macros.html\" as m %}}\n{{% call m::card() %}}<p class=\"body\"></p>{{% endcall %}}\n"
            ),
        ),
    ]);
    let css = critical(dir.path(), "page.html");
    keeps(
        &css,
        &[".card>.body{order:1301}", ".card .body{order:1302}"],
    );
}

#[test]
fn content_inside_a_conditional_wrapper_is_a_child_of_every_branch() {
    let dir = site(&[
        (
            "static/css/app.css",
            ".wide>.in{order:1401}.narrow>.in{order:1402}",
        ),
        (
            "templates/page.html",
            &format!(
                "{LINK}\n{{% if wide %}}<section class=\"wide\">{{% else %}}<div class=\"narrow\">{{% endif %}}\
                 <p class=\"in\"></p>\
                 {{% if wide %}}</section>{{% else %}}</div>{{% endif %}}\n"
            ),
        ),
    ]);
    let css = critical(dir.path(), "page.html");
    keeps(&css, &[".wide>.in{order:1401}", ".narrow>.in{order:1402}"]);
}

#[test]
fn elements_the_html_parser_implies_are_there() {
    // A browser puts <tr> into an implied <tbody>, and a document without <html>/<body>
    // tags still has both elements.
    let dir = site(&[
        (
            "static/css/app.css",
            ".t>tbody>tr{order:1501}tbody .cell{order:1502}body{order:1503}body .x{order:1504}",
        ),
        (
            "templates/page.html",
            &format!(
                "<!doctype html>\n<title>x</title>\n{LINK}\n<p class=\"x\"></p>\n\
                 <table class=\"t\"><tr><td class=\"cell\"></td></tr></table>\n"
            ),
        ),
    ]);
    let css = critical(dir.path(), "page.html");
    keeps(
        &css,
        &[
            ".t>tbody>tr{order:1501}",
            "tbody .cell{order:1502}",
            "body{order:1503}",
            "body .x{order:1504}",
        ],
    );
}

#[test]
fn a_custom_property_used_only_by_dropped_keyframes_is_dropped() {
    let dir = site(&[
        (
            "static/css/app.css",
            ":root{--kf:.5;--kept:2px}@keyframes fade{from{opacity:var(--kf)}to{opacity:1}}\
             .a{margin:var(--kept);order:1601}.ghost{animation:fade 1s;order:1602}",
        ),
        (
            "templates/page.html",
            &format!("{LINK}\n<p class=\"a\"></p>\n"),
        ),
    ]);
    let css = critical(dir.path(), "page.html");
    keeps(&css, &["--kept:2px", "order:1601"]);
    drops(&css, &["fade", "order:1602", "--kf"]);
}

#[test]
fn critical_to_standard_output_is_only_the_css_under_cargo_run() {
    // `cargo run -p perf-build -- critical … --out -` runs the command with OUT_DIR set
    // (perf-build has a build script); Builder::new() then prints
    // `cargo::rerun-if-env-changed=…` lines to standard output, before
    // `.cargo_instructions(false)` can turn them off.
    let dir = site(&[
        ("static/css/app.css", ".a{order:1701}"),
        (
            "templates/page.html",
            &format!("{LINK}\n<p class=\"a\"></p>\n"),
        ),
    ]);
    let root = dir.path();
    let out = Command::new(perf_build_bin())
        .args([
            "critical",
            "--static-dir",
            "static",
            "--templates-dir",
            "templates",
            "--template",
            "page.html",
            "--out",
            "-",
            "--cache-dir",
            "cli-cache",
        ])
        .current_dir(root)
        .env("OUT_DIR", root.join("cargo-out"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), critical(root, "page.html"));
}

/// Input as real projects write it: a stylesheet with a byte-order mark, inline SVG data
/// URLs quoted both ways, a `</style>` inside a string (which must not close the inline
/// `<style>`), and a page under a folder whose name has a space. A template with a
/// byte-order mark before its `extends` is refused, as askama itself refuses it.
#[test]
fn real_project_input_bom_svg_data_urls_and_odd_names() {
    let dir = site(&[
        (
            "static/css/app.css",
            "\u{feff}.icon{background:url(\"data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'%3E%3C/svg%3E\");order:601}\n\
             .tick{background:url('data:image/svg+xml;utf8,<svg xmlns=\"http://www.w3.org/2000/svg\"></svg>');order:602}\n\
             .quote:after{content:\"</style><script>alert(1)</script>\";order:603}\n\
             .unused{order:604}\n",
        ),
        (
            "templates/base.html",
            &format!(
                "<!doctype html><html><head>{LINK}</head><body>{{% block main %}}{{% endblock %}}</body></html>"
            ),
        ),
        (
            "templates/my pages/a page.html",
            "{% extends \"base.html\" %}{% block main %}<i class=\"icon tick\"></i><q class=\"quote\"></q>{% endblock %}",
        ),
    ]);
    let root = dir.path();
    let report = builder(root).run().unwrap();
    let css = embedded(root, &report, "my pages/a page.html");
    keeps(
        &css,
        &["order:601", "order:602", "order:603", "data:image/svg+xml"],
    );
    drops(&css, &["order:604", "\u{feff}"]);
    assert!(
        !css.to_ascii_lowercase().contains("</style"),
        "the CSS could close its <style>: {css}"
    );
    let page = report
        .assets
        .iter()
        .find(|a| a.path == "_perf/critical/my pages/a page.html.css")
        .unwrap();
    assert!(
        page.url
            .starts_with("/static/_perf/critical/my%20pages/a%20page.html."),
        "{}",
        page.url
    );

    write(
        root,
        "templates/my pages/a page.html",
        "\u{feff}{% extends \"base.html\" %}{% block main %}{% endblock %}",
    );
    match builder(root).run() {
        Err(perf_build::Error::Template { path, message, .. }) => {
            assert!(path.ends_with("my pages/a page.html"), "{}", path.display());
            assert!(message.contains("extends"), "{message}");
        }
        other => panic!("a byte-order mark before extends must fail as in askama: {other:?}"),
    }
}
