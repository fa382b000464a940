//! Asset budgets: the most compressed bytes of JavaScript, CSS, critical CSS and images
//! that a page's or a script entry's first load may need (`[package.metadata.perf.budgets]`).
//!
//! A page is an askama template: its figures come from the assets it names
//! (`asset_url!`, `image!` and their filter forms, in every branch and block of the
//! template and those it extends or includes), the chunks its scripts import statically,
//! and its critical CSS with the stylesheets it stands in for. An entry is a script (an
//! entry chunk, a feature or a split point): its first-load chunks. What only Rust code
//! chooses at run time (`ASSETS.picture(name)`) is not seen.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use serde::Serialize;

use crate::Error;
use crate::config::{Budget, BudgetEncoding, Config, OverBudget};
use crate::critical::{self, template::Expr};
use crate::pipeline::Built;

/// One budgeted target's figures, for the report and its table.
#[derive(Debug, Clone, Serialize)]
pub struct BudgetReport {
    /// The page template (`index.html`) or the script (`js/journal.js`).
    pub target: String,
    /// `page` or `entry`.
    pub kind: &'static str,
    /// `gzip` or `brotli`: which compressed size the figures count.
    pub compression: &'static str,
    /// One figure per kind, in the order js, css, critical-css, images, total.
    pub figures: Vec<BudgetFigure>,
}

/// The bytes of one kind against its budget.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct BudgetFigure {
    /// `js`, `css`, `critical-css`, `images` or `total`.
    pub kind: &'static str,
    /// What the first load needs.
    pub bytes: u64,
    /// The budget, when one is set.
    pub budget: Option<u64>,
}

impl BudgetFigure {
    /// Whether the bytes exceed the budget.
    pub fn over(&self) -> bool {
        self.budget.is_some_and(|b| self.bytes > b)
    }
}

/// The budget table: one row per target, `bytes / budget` where a budget is set, `!` before
/// a figure over its budget; the first column `width` wide (at least the targets' width).
pub(crate) fn table(budgets: &[BudgetReport], width: usize) -> String {
    let Some(first) = budgets.first() else {
        return String::new();
    };
    let width = budgets
        .iter()
        .map(|b| b.target.len())
        .chain([width, 24])
        .max()
        .unwrap_or(24);
    let mut out = format!(
        "{:<width$}  {:>19}  {:>19}  {:>19}  {:>19}  {:>19}\n",
        format!("budget ({}; ! over)", first.compression),
        "js",
        "css",
        "critical css",
        "images",
        "total"
    );
    for b in budgets {
        out.push_str(&format!("{:<width$}", b.target));
        for f in &b.figures {
            let cell = match f.budget {
                Some(budget) => format!(
                    "{}{} / {}",
                    if f.over() { "! " } else { "" },
                    kib(f.bytes),
                    kib(budget)
                ),
                None => kib(f.bytes),
            };
            out.push_str(&format!("  {cell:>19}"));
        }
        out.push('\n');
    }
    out
}

/// The chunks loading `start` needs: itself first, then what it imports statically,
/// directly or not, in breadth-first order.
pub(crate) fn first_load(start: &str, by_logical: &HashMap<&str, &Built>) -> Vec<String> {
    let mut chunks = vec![start.to_string()];
    let mut i = 0;
    while i < chunks.len() {
        if let Some(b) = by_logical.get(chunks[i].as_str()) {
            for import in &b.imports {
                if !chunks.contains(import) {
                    chunks.push(import.clone());
                }
            }
        }
        i += 1;
    }
    chunks
}

/// What a target's first load needs, by kind, with the assets behind each figure.
#[derive(Default)]
struct Needs {
    js: BTreeSet<String>,
    css: BTreeSet<String>,
    critical: Option<String>,
    images: BTreeSet<String>,
}

const KINDS: [&str; 5] = ["js", "css", "critical-css", "images", "total"];

/// A size for a message: bytes below 1 KiB, MiB from 1 MiB.
fn kib(n: u64) -> String {
    if n < 1024 {
        format!("{n} B")
    } else if n < 1024 * 1024 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", n as f64 / (1024.0 * 1024.0))
    }
}

/// Checks every budget: the figures of each target, warnings for those over a budget set
/// to warn, and an error (naming the budget's line in `Cargo.toml`) for those set to fail.
pub(crate) fn check(
    assets: &[Built],
    config: &Config,
    root: &Path,
) -> Result<(Vec<BudgetReport>, Vec<String>), Error> {
    let settings = &config.budgets;
    if settings.targets.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let by_logical: HashMap<&str, &Built> =
        assets.iter().map(|a| (a.logical.as_str(), a)).collect();
    let templates = critical::template::Templates::load(&root.join(&config.templates_dir))?;
    let parsed = templates.parse();
    let size = |b: &Built| -> u64 {
        let compressed = match settings.compression {
            BudgetEncoding::Gzip => b.variants.gzip.as_ref(),
            BudgetEncoding::Brotli => b.variants.brotli.as_ref(),
        };
        compressed.map_or(b.identity.len(), Vec::len) as u64
    };
    let manifest = root.join("Cargo.toml");
    let manifest_text = std::fs::read_to_string(&manifest).unwrap_or_default();
    let mut reports = Vec::new();
    let mut warnings = Vec::new();
    let mut errors = Vec::new();
    for budget in &settings.targets {
        let page = templates.path(&budget.target).is_some();
        let needs = if page {
            page_needs(&parsed.flatten(&budget.target)?, &by_logical)
        } else {
            entry_needs(budget, &by_logical, &templates)?
        };
        let sum = |names: &BTreeSet<String>| -> u64 {
            names
                .iter()
                .filter_map(|n| by_logical.get(n.as_str()))
                .map(|b| size(b))
                .sum()
        };
        let critical_bytes = needs
            .critical
            .as_deref()
            .and_then(|c| by_logical.get(c))
            .map_or(0, |b| size(b));
        let bytes = [
            sum(&needs.js),
            sum(&needs.css),
            critical_bytes,
            sum(&needs.images),
        ];
        let total = bytes.iter().sum();
        let limits = [
            budget.js,
            budget.css,
            budget.critical_css,
            budget.images,
            budget.total,
        ];
        let figures: Vec<BudgetFigure> = KINDS
            .iter()
            .zip(bytes.iter().chain([&total]))
            .zip(limits)
            .map(|((kind, bytes), budget)| BudgetFigure {
                kind,
                bytes: *bytes,
                budget,
            })
            .collect();
        let compression = match settings.compression {
            BudgetEncoding::Gzip => "gzip",
            BudgetEncoding::Brotli => "brotli",
        };
        for f in figures.iter().filter(|f| f.over()) {
            // The assets behind the figure; for the total, the kinds.
            let assets = |names: &mut dyn Iterator<Item = &String>| -> Vec<String> {
                names
                    .filter_map(|p| Some(format!("{p} {}", kib(size(by_logical.get(p.as_str())?)))))
                    .collect()
            };
            let parts: Vec<String> = match f.kind {
                "js" => assets(&mut needs.js.iter()),
                "css" => assets(&mut needs.css.iter()),
                "critical-css" => assets(&mut needs.critical.iter()),
                "images" => assets(&mut needs.images.iter()),
                _ => figures
                    .iter()
                    .filter(|k| k.kind != "total" && k.bytes > 0)
                    .map(|k| format!("{} {}", k.kind, kib(k.bytes)))
                    .collect(),
            };
            let message = format!(
                "{} of {} is {} {compression}, over its budget of {}{}",
                f.kind,
                budget.target,
                kib(f.bytes),
                kib(f.budget.unwrap_or(0)),
                if parts.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", parts.join(", "))
                }
            );
            match budget.over_budget.unwrap_or(settings.over_budget) {
                OverBudget::Warn => warnings.push(format!(
                    "{message} ([package.metadata.perf.budgets.\"{}\"] {})",
                    budget.target, f.kind
                )),
                OverBudget::Error => {
                    let (line, column) = locate(&manifest_text, &budget.target, f.kind);
                    errors.push(Error::Budget {
                        path: manifest.clone(),
                        line,
                        column,
                        message,
                        table: String::new(),
                    });
                }
            }
        }
        reports.push(BudgetReport {
            target: budget.target.clone(),
            kind: if page { "page" } else { "entry" },
            compression,
            figures,
        });
    }
    // Every failing budget shows the whole table, as the size table shows every asset.
    if !errors.is_empty() {
        let table = table(&reports, 0);
        for e in &mut errors {
            if let Error::Budget { table: t, .. } = e {
                t.clone_from(&table);
            }
        }
    }
    Error::collect(errors)?;
    Ok((reports, warnings))
}

/// What a page needs: the assets its flattened template names, the chunks its scripts
/// import, the critical CSS it inlines, the stylesheets that stands in for and the loader
/// script.
fn page_needs(flat: &critical::template::Flat, by_logical: &HashMap<&str, &Built>) -> Needs {
    let mut needs = Needs::default();
    let script = |needs: &mut Needs, name: &str| {
        for chunk in first_load(name, by_logical) {
            needs.js.insert(chunk);
        }
    };
    for e in &flat.exprs {
        match e {
            Expr::AssetUrl(name) => {
                if crate::js::is_script(name) {
                    script(&mut needs, name);
                } else if name.ends_with(".css") {
                    needs.css.insert(name.clone());
                } else if by_logical
                    .get(name.as_str())
                    .is_some_and(|b| b.content_type.starts_with("image/"))
                {
                    needs.images.insert(name.clone());
                }
            }
            Expr::Image { name, .. } => {
                // The widest variant in the best format: what a wide screen fetches.
                let widest = by_logical
                    .get(name.as_str())
                    .and_then(|b| b.image.as_ref())
                    .and_then(|info| {
                        let best = info.variants.first()?.format;
                        info.variants
                            .iter()
                            .filter(|v| v.format == best)
                            .max_by_key(|v| v.width)
                    });
                match widest {
                    Some(v) => needs.images.insert(v.logical.clone()),
                    None => needs.images.insert(name.clone()),
                };
            }
            Expr::Critical(template) => {
                let critical = critical::logical(template);
                if let Some(b) = by_logical.get(critical.as_str()) {
                    if let Some(info) = &b.critical {
                        needs.css.extend(info.stylesheets.iter().cloned());
                    }
                    needs.critical = Some(critical);
                    script(&mut needs, critical::LOADER);
                }
            }
            Expr::Other => {}
        }
    }
    needs
}

/// What a script entry needs: its first-load chunks. Anything but a script is an error
/// that lists the pages and entries a budget may name.
fn entry_needs(
    budget: &Budget,
    by_logical: &HashMap<&str, &Built>,
    templates: &critical::template::Templates,
) -> Result<Needs, Error> {
    let target = budget.target.as_str();
    let source_of_value = format!("Cargo.toml [package.metadata.perf.budgets] \"{target}\"");
    if !by_logical.get(target).is_some_and(|b| b.is_js) {
        let mut known: Vec<&str> = templates.pages();
        known.extend(
            by_logical
                .values()
                .filter(|b| b.chunk.is_some() || (b.is_js && !b.logical.starts_with("_perf/")))
                .map(|b| b.logical.as_str()),
        );
        known.sort_unstable();
        let near = known
            .iter()
            .map(|k| (strsim::levenshtein(k, target), *k))
            .min()
            .filter(|(d, _)| *d <= 3)
            .map(|(_, k)| format!(" (did you mean \"{k}\"?)"))
            .unwrap_or_default();
        return Err(Error::Config {
            source_of_value,
            message: format!(
                "names neither a template nor a script{near}; budgets may name {}",
                known.join(", ")
            ),
        });
    }
    if budget.css.is_some() || budget.critical_css.is_some() || budget.images.is_some() {
        return Err(Error::Config {
            source_of_value,
            message: "a script's first load is JavaScript only: set js (or total), or budget the pages that load it".into(),
        });
    }
    Ok(Needs {
        js: first_load(target, by_logical).into_iter().collect(),
        ..Needs::default()
    })
}

/// The line and column (from 1) of a budget in `Cargo.toml`: its `kind = …` inside the
/// target's table (`[package.metadata.perf.budgets."index.html"]` or an inline table), or
/// else the target's name; (0, 0) when the text does not name it (a `Builder` setting).
fn locate(manifest: &str, target: &str, kind: &str) -> (u32, u32) {
    let quoted = format!("\"{target}\"");
    let lines: Vec<&str> = manifest.lines().collect();
    // Only from the budgets tables on: the same name may stand elsewhere first
    // (`[package.metadata.perf.bundle] entries = ["js/admin.js"]`).
    let Some(budgets) = lines.iter().position(|l| {
        l.trim_start()
            .trim_start_matches('[')
            .trim_start()
            .starts_with("package.metadata.perf.budgets")
    }) else {
        return (0, 0);
    };
    let Some((start, at)) = lines
        .iter()
        .enumerate()
        .skip(budgets)
        .find_map(|(i, l)| Some((i, l.find(&quoted)?)))
    else {
        return (0, 0);
    };
    for (i, line) in lines.iter().enumerate().skip(start) {
        if i > start && line.trim_start().starts_with('[') {
            break;
        }
        let from = if i == start { at + quoted.len() } else { 0 };
        if let Some(c) = key_at(&line[from..], kind) {
            return (i as u32 + 1, (line[..from + c].chars().count() + 1) as u32);
        }
    }
    (
        start as u32 + 1,
        (lines[start][..at].chars().count() + 1) as u32,
    )
}

/// Where `key = ` starts in `text`, as a whole key (so `css` is not found in
/// `critical-css`).
fn key_at(text: &str, key: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = text[from..].find(key) {
        let at = from + i;
        let before = text[..at].chars().next_back();
        let after = text[at + key.len()..].trim_start();
        if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '"')
            && after.starts_with('=')
        {
            return Some(at);
        }
        from = at + key.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_budget_line_in_a_header_table_or_an_inline_one() {
        let manifest = "[package]\nname = \"a\"\n\n[package.metadata.perf.budgets]\nover-budget = \"error\"\n\n[package.metadata.perf.budgets.\"index.html\"]\ncritical-css = 900\ncss = \"4 KiB\"\n\n[package.metadata.perf.budgets.\"about.html\"]\njs = 1\n";
        assert_eq!(locate(manifest, "index.html", "css"), (9, 1));
        assert_eq!(locate(manifest, "index.html", "critical-css"), (8, 1));
        // Not in its table: the target's own line.
        assert_eq!(locate(manifest, "index.html", "js"), (7, 32));
        let inline =
            "[package.metadata.perf.budgets]\n\"js/app.js\" = { js = \"40 KiB\", total = 1 }\n";
        assert_eq!(locate(inline, "js/app.js", "total"), (2, 32));
        assert_eq!(locate(inline, "js/app.js", "js"), (2, 17));
        assert_eq!(locate(inline, "other.html", "js"), (0, 0));
        // The same name earlier in the manifest, outside the budgets, is not the budget.
        let both = "[package.metadata.perf.bundle]\nentries = [\"js/app.js\"]\njs = 1\n\n[package.metadata.perf.budgets.\"js/app.js\"]\njs = \"40 KiB\"\n";
        assert_eq!(locate(both, "js/app.js", "js"), (6, 1));
        assert_eq!(
            locate("[package]\nname = \"js/app.js\"\n", "js/app.js", "js"),
            (0, 0)
        );
    }
}
