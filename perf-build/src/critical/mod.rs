//! Critical CSS per askama template, from the templates' source, at build time: no
//! browser, no rendered page.
//!
//! For each HTML template: [`template`] resolves its `extends`/`include`/`block`/`macro`
//! structure with askama's own parser and flattens every branch; [`markup`] reads the
//! elements, classes, ids and attributes it can produce (up to a `{# perf:fold #}`
//! marker) and the stylesheets it links; [`select`] matches lightningcss's parsed
//! selectors against them; [`extract`] keeps the rules that can apply, with their
//! wrappers and the custom properties, fonts and keyframes they use. Each result is a
//! derived asset, `_perf/critical/<template>.css`, hashed and embedded like any other, that
//! `critical_css!("<template>")` inlines.

mod extract;
mod markup;
mod select;
pub(crate) mod template;

use std::path::{Path, PathBuf};

use lightningcss::targets::Targets;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::cache::Cache;
use crate::compress;
use crate::config::{Config, OverBudget, Quality};
use crate::finish::Final;
use crate::hash;
use crate::images::manifest::{PLACEHOLDERS, placeholder_class};
use crate::pipeline::Unit;
use crate::transform::Piece;

pub use select::Safelist;

/// Bumped with every change to what the extraction keeps (part of the cache key).
const EXTRACTION_VERSION: u32 = 5;

/// Logical path of the script that applies deferred stylesheets.
pub const LOADER: &str = "_perf/critical.js";

/// The loader's source, shipped inside perf-build.
pub const LOADER_SOURCE: &[u8] = include_bytes!("../../assets/critical-loader.js");

/// Where the loader's source lives, for error messages and `rerun-if-changed`.
pub fn loader_path() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/critical-loader.js"
    ))
}

/// The logical path of a template's critical CSS: `_perf/critical/index.html.css`.
pub fn logical(template: &str) -> String {
    format!("_perf/critical/{template}.css")
}

/// What the generated code needs to know of a template's critical CSS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CriticalInfo {
    /// The template, relative to the templates directory: `index.html`.
    pub template: String,
    /// Logical paths of the full stylesheets it stands in for, in the page's order.
    pub stylesheets: Vec<String>,
}

/// One template's result, as cached.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    template: String,
    stylesheets: Vec<String>,
    css: String,
}

/// What the critical stage adds to a build.
#[derive(Default)]
pub struct Outcome {
    /// The critical stylesheets, finished.
    pub derived: Vec<(Unit, Final)>,
    /// Budget warnings.
    pub warnings: Vec<String>,
    /// Whether the result came from the cache (`None`: nothing to do).
    pub cache_hit: Option<bool>,
}

/// Whether the critical stage runs: on, and a templates directory with files.
pub fn wanted(config: &Config, root: &Path) -> bool {
    let dir = root.join(&config.templates_dir);
    config.critical.enabled && std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some())
}

/// The critical CSS of every HTML template under the templates directory that links a
/// stylesheet, cached by the templates' text, the finished stylesheets and the settings.
pub fn derive(
    units: &[Unit],
    finals: &[Final],
    config: &Config,
    root: &Path,
    cache: &Cache,
    targets: Targets,
) -> Result<Outcome, Error> {
    if !wanted(config, root) {
        return Ok(Outcome::default());
    }
    let dir = root.join(&config.templates_dir);
    let templates = template::Templates::load(&dir)?;
    let settings = &config.critical;
    // The version names the extraction's own logic: a change to it must not be served
    // from the cache.
    let options = format!(
        "{}|{:?}|{}|{EXTRACTION_VERSION}",
        config.url_prefix,
        settings.safelist,
        env!("CARGO_PKG_VERSION")
    );
    let mut parts: Vec<&[u8]> = vec![options.as_bytes()];
    for (name, text) in templates.iter() {
        parts.push(name.as_bytes());
        parts.push(text.as_bytes());
    }
    let css: Vec<&Final> = finals
        .iter()
        .filter(|f| f.logical.ends_with(".css"))
        .collect();
    for f in &css {
        parts.push(f.logical.as_bytes());
        parts.push(f.hashed.as_bytes());
    }
    let key = Cache::key("critical", &parts);
    let cached: Option<Vec<Entry>> = cache
        .get(&key)
        .and_then(|b| serde_json::from_slice(&b).ok());
    let hit = cached.is_some();
    let entries = match cached {
        Some(e) => e,
        None => {
            let e = compute(&templates, &known(units, finals), config, targets, None)?;
            if let Ok(json) = serde_json::to_vec(&e) {
                cache.put(&key, &json);
            }
            e
        }
    };
    let mut outcome = Outcome {
        cache_hit: Some(hit),
        ..Outcome::default()
    };
    for e in entries {
        let file = templates
            .path(&e.template)
            .map(Path::to_path_buf)
            .unwrap_or_else(|| dir.join(&e.template));
        let gzip = compress::gzip(e.css.as_bytes(), Quality::Best).len() as u64;
        if gzip > settings.budget {
            let message = format!(
                "critical CSS of {} is {} gzip, over the budget of {} ([package.metadata.perf.critical] budget)",
                e.template,
                kib(gzip),
                kib(settings.budget)
            );
            match settings.over_budget {
                OverBudget::Warn => outcome.warnings.push(message),
                OverBudget::Error => {
                    return Err(Error::CriticalBudget {
                        path: file,
                        template: e.template,
                        gzip,
                        budget: settings.budget,
                    });
                }
            }
        }
        let logical = logical(&e.template);
        let bytes = e.css.into_bytes();
        let fin = Final {
            logical: logical.clone(),
            hashed: hash::hashed_name(&logical, &hash::sha256_hex(&bytes)),
            bytes: bytes.clone(),
            map: None,
        };
        let unit = Unit {
            raw_len: bytes.len(),
            piece: Piece {
                logical,
                bytes,
                refs: Vec::new(),
                map: None,
                module: false,
                image: None,
                critical: Some(CriticalInfo {
                    template: e.template,
                    stylesheets: e.stylesheets,
                }),
            },
            file,
        };
        outcome.derived.push((unit, fin));
    }
    Ok(outcome)
}

/// A size for a message: bytes below 1 KiB (a budget of 10 bytes is not "0.0 KiB").
fn kib(bytes: u64) -> String {
    match bytes {
        1 => "1 byte".to_string(),
        0..1024 => format!("{bytes} bytes"),
        _ => format!("{:.1} KiB", bytes as f64 / 1024.0),
    }
}

/// A finished asset as the critical stage sees it.
pub(crate) struct Known<'a> {
    /// Logical path.
    pub logical: &'a str,
    /// Hashed path.
    pub hashed: &'a str,
    /// Final bytes.
    pub bytes: &'a [u8],
    /// Source file.
    pub file: &'a Path,
    /// An image with a blur-up placeholder.
    pub placeholder: bool,
}

/// The assets of a build in progress.
fn known<'a>(units: &'a [Unit], finals: &'a [Final]) -> Vec<Known<'a>> {
    units
        .iter()
        .zip(finals)
        .map(|(u, f)| Known {
            logical: &f.logical,
            hashed: &f.hashed,
            bytes: &f.bytes,
            file: &u.file,
            placeholder: u
                .piece
                .image
                .as_ref()
                .is_some_and(|i| i.placeholder.is_some()),
        })
        .collect()
}

/// Extracts the critical CSS of every page template (or of `only`).
fn compute(
    templates: &template::Templates,
    assets: &[Known],
    config: &Config,
    targets: Targets,
    only: Option<&str>,
) -> Result<Vec<Entry>, Error> {
    let pages: Vec<&str> = match only {
        Some(t) => vec![t],
        None => templates.pages(),
    };
    let parsed = templates.parse();
    let sheets: Vec<extract::Sheet> = assets
        .iter()
        .filter(|a| a.logical.ends_with(".css") && !a.logical.starts_with("_perf/critical/"))
        .filter_map(|a| {
            let css = std::str::from_utf8(a.bytes).ok()?;
            Some(extract::Sheet::new(a.logical, a.hashed, css, a.file))
        })
        .collect();
    let placeholders: std::collections::HashMap<&str, String> = assets
        .iter()
        .filter(|a| a.placeholder)
        .map(|a| (a.logical, placeholder_class(a.logical)))
        .collect();
    let placeholder = |name: &str| placeholders.get(name).cloned();
    let ctx = extract::Context {
        sheets: &sheets,
        prefix: &config.url_prefix,
        targets,
    };
    let safelist = Safelist::new(&config.critical.safelist);
    let mut entries = Vec::new();
    for name in &pages {
        let flat = parsed.flatten(name)?;
        let tree = markup::parse(&flat, &config.url_prefix, &placeholder);
        // The stylesheets: those the page links, and those its layouts link in a block
        // the page replaces (where `critical_css!` now stands).
        let mut stylesheets = tree.stylesheets.clone();
        for raw in parsed.flatten_chain(name)? {
            for s in markup::parse(&raw, &config.url_prefix, &placeholder).stylesheets {
                if !stylesheets.contains(&s) {
                    stylesheets.push(s);
                }
            }
        }
        stylesheets.retain(|s| sheets.iter().any(|sheet| sheet.logical == s));
        if stylesheets.is_empty() {
            continue;
        }
        if sheets.iter().any(|s| s.logical == PLACEHOLDERS)
            && !stylesheets.iter().any(|s| s == PLACEHOLDERS)
        {
            stylesheets.push(PLACEHOLDERS.to_string());
        }
        let local;
        let safelist = if flat.keep.is_empty() {
            &safelist
        } else {
            let mut entries = config.critical.safelist.clone();
            entries.extend(flat.keep.iter().cloned());
            local = Safelist::new(&entries);
            &local
        };
        let matcher = select::Matcher::new(&tree, safelist);
        let mut css = String::new();
        for s in &stylesheets {
            let sheet = sheets
                .iter()
                .find(|sheet| sheet.logical == s)
                .expect("kept only known sheets");
            css.push_str(&extract::extract(sheet, &ctx, &matcher, 0)?);
        }
        let css = extract::finish(&css, targets).map_err(|message| Error::Css {
            path: templates
                .path(name)
                .map(Path::to_path_buf)
                .unwrap_or_default(),
            line: 1,
            column: 1,
            message: format!("critical CSS: {message}"),
        })?;
        // The CSS goes into a <style> element: it must not close it.
        let css = css
            .replace("</style", "<\\/style")
            .replace("</STYLE", "<\\/STYLE");
        entries.push(Entry {
            template: name.to_string(),
            stylesheets,
            css,
        });
    }
    Ok(entries)
}

/// The critical CSS of one template, for the standalone command: (the CSS, the
/// stylesheets it covers). `None` when the template links no stylesheet.
pub(crate) fn one(
    template: &str,
    assets: &[Known],
    config: &Config,
    root: &Path,
    targets: Targets,
) -> Result<Option<(String, Vec<String>)>, Error> {
    let templates = template::Templates::load(&root.join(&config.templates_dir))?;
    if templates.path(template).is_none() {
        return Err(Error::Template {
            path: root.join(&config.templates_dir).join(template),
            line: 1,
            column: 1,
            message: format!("no template `{template}` in the templates directory"),
        });
    }
    let entries = compute(&templates, assets, config, targets, Some(template))?;
    Ok(entries.into_iter().next().map(|e| (e.css, e.stylesheets)))
}

#[cfg(test)]
mod tests {
    use super::kib;
    use super::*;
    use lightningcss::rules::CssRule;
    use lightningcss::stylesheet::{ParserOptions, StyleSheet};

    /// Pieces of templates as people write them, and as they break them: tags cut short,
    /// stray quotes and markers, multi-byte text, askama tags in odd places.
    const PIECES: &[&str] = &[
        "<div class=\"a b\">",
        "</div>",
        "<p>",
        "</p>",
        "<ul>",
        "<li>",
        "</ul>",
        "<table>",
        "<tr>",
        "<td class=x>",
        "</table>",
        "<img src=\"a.png\" alt=é>",
        "<br/>",
        "<",
        ">",
        "\"",
        "'",
        "=",
        "<!--",
        "-->",
        "<!-- perf:fold -->",
        "<script>",
        "</script>",
        "<style>a<b</style>",
        "{% if a %}",
        "{% else %}",
        "{% endif %}",
        "{% for x in xs %}",
        "{% endfor %}",
        "{{ x }}",
        "class=\"mood-{{ m }}\"",
        "{# perf:fold #}",
        "{# perf:keep a-* #}",
        "é",
        "日本",
        "\u{1F600}",
        "\u{E000}",
        "\u{E001}",
        "\u{E002}",
        "\u{E003}",
        "\u{E004}",
        "\u{E005}",
        "\u{E006}",
        "\u{E007}",
        " ",
        "\n",
        "<a href=\"/static/css/x.css\" rel=stylesheet>",
        "<select><option>",
        "</html>",
        "<body>",
        "{% block b %}",
        "{% endblock %}",
        "{{ image!(\"img/a.jpg\") }}",
    ];

    const CSS: &str = "html,body{margin:0}.a>.b{color:red}.a .b+.c~p{x:y}\
        li:nth-child(2n)::before{content:''}[class^=mood-]:not(.q):is(.a,td){z:1}\
        :root{--k:1}@media (width>1px){.x{y:var(--k)}}#i:has(> p){a:b}table>tbody>tr>td{}";

    #[test]
    fn arbitrary_templates_never_panic() {
        let sheet = StyleSheet::parse(CSS, ParserOptions::default()).unwrap();
        let selectors: Vec<_> = sheet
            .rules
            .0
            .iter()
            .filter_map(|r| match r {
                CssRule::Style(s) => Some(s.selectors.0.to_vec()),
                _ => None,
            })
            .flatten()
            .collect();
        let safelist = Safelist::new(&["a".into(), "mood-*".into()]);
        let dir = tempfile::tempdir().unwrap();
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..1000 {
            let n = (next() % 40) as usize;
            let text: String = (0..n)
                .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
                .collect();
            // The markup reader alone, on text with markers anywhere.
            let flat = template::Flat {
                html: text.clone(),
                ..template::Flat::default()
            };
            let tree = markup::parse(&flat, "/static", &|_| Some("perf-ph-1".into()));
            let matcher = select::Matcher::new(&tree, &safelist);
            for s in &selectors {
                let _ = matcher.any(s);
            }
            // The whole reading of a template, askama's parser first (it may refuse).
            std::fs::write(dir.path().join("t.html"), &text).unwrap();
            std::fs::write(
                dir.path().join("base.html"),
                format!("<html>{{% block b %}}{text}{{% endblock %}}</html>"),
            )
            .unwrap();
            let templates = template::Templates::load(dir.path()).unwrap();
            for name in ["t.html", "base.html"] {
                if let Ok(flats) = templates.flatten(&[name]) {
                    let tree = markup::parse(&flats[0], "/static", &|_| None);
                    let matcher = select::Matcher::new(&tree, &safelist);
                    for s in &selectors {
                        let _ = matcher.any(s);
                    }
                }
                let _ = templates.flatten_chain(name);
            }
        }
    }

    #[test]
    fn sizes_below_a_kib_are_in_bytes() {
        assert_eq!(kib(10), "10 bytes");
        assert_eq!(kib(1), "1 byte");
        assert_eq!(kib(1023), "1023 bytes");
        assert_eq!(kib(1536), "1.5 KiB");
    }
}
