//! Errors as rustc shows them: `error: <message>`, the file relative to the package with
//! line and column, a code frame with a caret, and the hint; and as `cargo::error=` lines,
//! so that Cargo fails the build and shows exactly that.

use std::path::Path;

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};

use crate::Error;

/// What a positioned error says, where, and what to do.
struct Located<'a> {
    message: String,
    path: &'a Path,
    line: u32,
    column: u32,
    label: &'static str,
    hint: Option<String>,
}

fn locate(e: &Error) -> Option<Located<'_>> {
    Some(match e {
        Error::MissingPackage {
            path,
            line,
            column,
            specifier,
            package,
            package_dir,
        } => Located {
            message: format!(
                "cannot resolve `{specifier}`: the npm package `{package}` is not installed"
            ),
            path,
            line: *line,
            column: *column,
            label: "imported here",
            hint: Some(match package_dir {
                Some(dir) => format!(
                    "run `npm install {package}` in {} (node_modules is looked up from the importing file upwards)",
                    dir.display()
                ),
                None => format!(
                    "run `npm init -y && npm install {package}` in the package's folder (node_modules is looked up from the importing file upwards)"
                ),
            }),
        },
        Error::Bundle {
            path,
            line,
            column,
            message,
        } if *line > 0 => Located {
            message: message.clone(),
            path,
            line: *line,
            column: *column,
            label: "here",
            hint: None,
        },
        Error::Css {
            path,
            line,
            column,
            message,
        } => Located {
            message: format!("invalid CSS: {message}"),
            path,
            line: *line,
            column: *column,
            label: "here",
            hint: None,
        },
        Error::Js {
            path,
            line,
            column,
            message,
        } => Located {
            message: format!("invalid JavaScript: {message}"),
            path,
            line: *line,
            column: *column,
            label: "here",
            hint: None,
        },
        Error::MissingReference {
            path,
            line,
            column,
            reference,
            hint,
        } => Located {
            message: format!("`{reference}` names no file under the static dir"),
            path,
            line: *line,
            column: *column,
            label: "no such file",
            hint: hint.as_ref().map(|h| format!("did you mean `{h}`?")),
        },
        Error::UnknownAsset {
            path,
            line,
            column,
            name,
            hint,
        } => Located {
            message: format!("asset_url!(\"{name}\") names no embedded asset"),
            path,
            line: *line,
            column: *column,
            label: "not embedded",
            hint: hint.as_ref().map(|h| format!("did you mean \"{h}\"?")),
        },
        Error::Budget {
            path,
            line,
            column,
            message,
            ..
        } if *line > 0 => Located {
            message: format!("over budget: {message}"),
            path,
            line: *line,
            column: *column,
            label: "budget set here",
            hint: Some(
                "make the first load lighter, raise the budget, or set over-budget = \"warn\""
                    .into(),
            ),
        },
        Error::Template {
            path,
            line,
            column,
            message,
        } => Located {
            message: format!("template error: {message}"),
            path,
            line: *line,
            column: *column,
            label: "here",
            hint: None,
        },
        _ => return None,
    })
}

/// The byte range of the character at `line`:`column` (both from 1) in `source`: empty
/// at the end of a line, and clamped to the text.
fn span(source: &str, line: u32, column: u32) -> std::ops::Range<usize> {
    let start = source
        .split_inclusive('\n')
        .take(line.saturating_sub(1) as usize)
        .map(str::len)
        .sum::<usize>()
        .min(source.len());
    let rest = &source[start..];
    let text = rest.split('\n').next().unwrap_or("");
    let at = text
        .char_indices()
        .nth(column.saturating_sub(1) as usize)
        .map_or(text.len(), |(i, _)| i);
    let width = text[at..].chars().next().map_or(0, char::len_utf8);
    start + at..start + at + width
}

impl Error {
    /// The errors as rustc would print them, one report each, with paths relative to
    /// `root` (the package).
    pub fn render(&self, root: &Path) -> String {
        let renderer = Renderer::plain().term_width(120);
        let mut out = String::new();
        for e in self.errors() {
            if !out.is_empty() {
                out.push_str("\n\n");
            }
            let Some(at) = locate(e) else {
                out.push_str(
                    &renderer
                        .render(&[Group::with_title(Level::ERROR.primary_title(e.to_string()))]),
                );
                continue;
            };
            let shown = at.path.strip_prefix(root).unwrap_or(at.path);
            let shown = shown.to_string_lossy().replace('\\', "/");
            let source = std::fs::read(at.path)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            let source = source.strip_prefix('\u{feff}').unwrap_or(&source);
            let mut group = Level::ERROR.primary_title(at.message).element(
                Snippet::source(source)
                    .path(shown.as_str())
                    .fold(true)
                    .annotation(
                        AnnotationKind::Primary
                            .span(span(source, at.line, at.column))
                            .label(at.label),
                    ),
            );
            if let Some(hint) = &at.hint {
                group = group.element(Level::HELP.message(hint.as_str()));
            }
            if let Error::Budget { table, .. } = e
                && !table.is_empty()
            {
                group = group.element(Level::NOTE.message(table.trim_end()));
            }
            out.push_str(&renderer.render(&[group]));
        }
        out
    }

    /// Prints the errors for Cargo as `cargo::error=` lines: Cargo then fails the build
    /// and shows them as `error: …` with the code frames, without a panic, a backtrace or
    /// the build script's other output. The body of a `build.rs`'s `main`:
    ///
    /// ```no_run
    /// if let Err(e) = perf_build::run() {
    ///     e.emit();
    /// }
    /// ```
    pub fn emit(&self) {
        let root = std::env::var_os("CARGO_MANIFEST_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_default();
        for line in cargo_lines(&self.render(&root)) {
            println!("{line}");
        }
    }
}

/// One `cargo::error=` line per line of text; Cargo writes `error: ` before each, so the
/// renderer's own is dropped from the headlines.
fn cargo_lines(rendered: &str) -> Vec<String> {
    rendered
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| format!("cargo::error={}", l.strip_prefix("error: ").unwrap_or(l)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positioned_errors_have_a_code_frame_and_a_hint() {
        let dir = tempfile::tempdir().unwrap();
        let css = dir.path().join("static/css/app.css");
        std::fs::create_dir_all(css.parent().unwrap()).unwrap();
        std::fs::write(
            &css,
            ".a {\n  color: red;\n  background: url(\"../img/lgo.png\");\n}\n",
        )
        .unwrap();
        let e = Error::Multiple(vec![
            Error::MissingReference {
                path: css.clone(),
                line: 3,
                column: 19,
                reference: "../img/lgo.png".into(),
                hint: Some("../img/logo.png".into()),
            },
            Error::Config {
                source_of_value: "Builder::url_prefix".into(),
                message: "`static` is not a URL path prefix".into(),
            },
        ]);
        let text = e.render(dir.path());
        let expected = r#"error: `../img/lgo.png` names no file under the static dir
 --> static/css/app.css:3:19
  |
3 |   background: url("../img/lgo.png");
  |                   ^ no such file
  |
  = help: did you mean `../img/logo.png`?

error: Builder::url_prefix: `static` is not a URL path prefix"#;
        assert_eq!(text, expected);
        let lines = cargo_lines(&text);
        assert_eq!(
            lines[0],
            "cargo::error=`../img/lgo.png` names no file under the static dir"
        );
        assert!(lines.iter().all(|l| l.starts_with("cargo::error=")));
    }

    /// A budget set in code has no line in the manifest: no `:0:0` after its path.
    #[test]
    fn a_budget_without_a_line_names_only_the_file() {
        let budget = |line, column| Error::Budget {
            path: "Cargo.toml".into(),
            line,
            column,
            message: "js of page.html is 120 kB, 20 kB over".into(),
            table: String::new(),
        };
        assert_eq!(
            budget(0, 0).to_string(),
            "Cargo.toml: over budget: js of page.html is 120 kB, 20 kB over"
        );
        assert_eq!(
            budget(0, 0).render(Path::new(".")),
            "error: Cargo.toml: over budget: js of page.html is 120 kB, 20 kB over"
        );
        assert_eq!(
            budget(12, 3).to_string(),
            "Cargo.toml:12:3: over budget: js of page.html is 120 kB, 20 kB over"
        );
    }

    #[test]
    fn spans_count_characters_and_clamp() {
        let s = "ab\nçd\n";
        assert_eq!(span(s, 2, 2), 5..6);
        assert_eq!(span(s, 2, 9), 6..6);
        assert_eq!(span(s, 9, 1), 7..7);
    }
}
