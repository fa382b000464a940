//! The one error type of perf-build. Every variant names the file it is about, and the
//! line and column where there is one.

use std::fmt;
use std::path::PathBuf;

/// Everything that can make an asset build fail.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A stylesheet does not parse or cannot be printed.
    #[error("{}:{line}:{column}: CSS error: {message}", path.display())]
    Css {
        /// The stylesheet.
        path: PathBuf,
        /// Line, from 1.
        line: u32,
        /// Column, from 1.
        column: u32,
        /// What the parser said.
        message: String,
    },
    /// A script does not parse.
    #[error("{}:{line}:{column}: JavaScript error: {message}", path.display())]
    Js {
        /// The script.
        path: PathBuf,
        /// Line, from 1.
        line: u32,
        /// Column, from 1.
        column: u32,
        /// What the parser said.
        message: String,
    },
    /// A stylesheet `url()`/`@import` or a module import names a local file that does not
    /// exist under the static dir.
    #[error(
        "{}:{line}:{column}: `{reference}` names no file under the static dir{}",
        path.display(),
        hint.as_deref().map(|h| format!("; did you mean `{h}`?")).unwrap_or_default()
    )]
    MissingReference {
        /// The file holding the reference.
        path: PathBuf,
        /// Line, from 1.
        line: u32,
        /// Column, from 1.
        column: u32,
        /// The reference as written.
        reference: String,
        /// The closest existing reference, written the same way.
        hint: Option<String>,
    },
    /// A module imports an npm package that is not installed.
    #[error("{}:{line}:{column}: cannot resolve the package `{package}` (`{specifier}`): run `npm install {package}`", path.display())]
    MissingPackage {
        /// The importing module.
        path: PathBuf,
        /// Line, from 1.
        line: u32,
        /// Column, from 1.
        column: u32,
        /// The specifier as written: `d3-array/src/max.js`.
        specifier: String,
        /// The package it names: `d3-array`.
        package: String,
        /// The folder holding the application's `package.json`, if there is one.
        package_dir: Option<PathBuf>,
    },
    /// The bundler refused the modules (a missing export, an invalid annotation…).
    #[error("{}:{line}:{column}: {message}", path.display())]
    Bundle {
        /// The module.
        path: PathBuf,
        /// Line, from 1 (0 when the bundler gave no position).
        line: u32,
        /// Column, from 1.
        column: u32,
        /// What the bundler said.
        message: String,
    },
    /// An image cannot be decoded or encoded.
    #[error("{}: image error: {message}", path.display())]
    Image {
        /// The image.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Stylesheets import each other in a cycle, so none of them can be hashed first.
    #[error("{}: @import cycle: {}", path.display(), cycle.join(" -> "))]
    ImportCycle {
        /// The first stylesheet of the cycle.
        path: PathBuf,
        /// The logical paths in the cycle.
        cycle: Vec<String>,
    },
    /// Two files would be served under one logical name: a vendored `x.js.map` beside the
    /// map generated for `x.js`, say.
    #[error(
        "{}: `{logical}` is also produced from {}; rename or remove one (a generated source map is named after its file plus `.map`)",
        path.display(),
        other.display()
    )]
    DuplicateAsset {
        /// One of the two files.
        path: std::path::PathBuf,
        /// The other file.
        other: std::path::PathBuf,
        /// The logical name they share.
        logical: String,
    },
    /// A template calls `asset_url!` with a name that is not an embedded asset.
    #[error(
        "{}:{line}:{column}: asset_url!(\"{name}\") names no embedded asset{}",
        path.display(),
        hint.as_deref().map(|h| format!("; did you mean \"{h}\"?")).unwrap_or_default()
    )]
    UnknownAsset {
        /// The template.
        path: PathBuf,
        /// Line, from 1.
        line: u32,
        /// Column, from 1.
        column: u32,
        /// The name as written.
        name: String,
        /// The closest embedded asset.
        hint: Option<String>,
    },
    /// A template cannot be read for its critical CSS (askama cannot parse it, or it
    /// names a template that does not exist).
    #[error("{}:{line}:{column}: template error: {message}", path.display())]
    Template {
        /// The template.
        path: PathBuf,
        /// Line, from 1.
        line: u32,
        /// Column, from 1.
        column: u32,
        /// What is wrong.
        message: String,
    },
    /// A template's critical CSS is over its budget and the budget is set to fail.
    #[error(
        "{}: critical CSS of {template} is {gzip} bytes gzip, over the budget of {budget} ([package.metadata.perf.critical] budget; over-budget = \"error\")",
        path.display()
    )]
    CriticalBudget {
        /// The template's file.
        path: PathBuf,
        /// The template's name.
        template: String,
        /// Its critical CSS, gzip-compressed, in bytes.
        gzip: u64,
        /// The budget, in bytes.
        budget: u64,
    },
    /// A page or an entry is over an asset budget set to fail the build.
    #[error("{}: over budget: {message}", Place(path, *line, *column))]
    Budget {
        /// The manifest that sets the budget.
        path: PathBuf,
        /// Line of the budget, from 1 (0 when set in code).
        line: u32,
        /// Column, from 1.
        column: u32,
        /// What is over, by how much, and which assets make it up.
        message: String,
        /// The budget table of every budgeted target.
        table: String,
    },
    /// A configuration value is invalid.
    #[error("{}: {message}", source_of_value)]
    Config {
        /// Where the value came from: `Cargo.toml [package.metadata.perf] key` or
        /// `environment variable NAME`.
        source_of_value: String,
        /// What is wrong and what to write instead.
        message: String,
    },
    /// `cargo metadata` failed.
    #[error("{}: reading [package.metadata.perf] with cargo metadata failed: {message}", path.display())]
    Metadata {
        /// The manifest.
        path: PathBuf,
        /// What cargo said.
        message: String,
    },
    /// Several inputs failed; each is reported.
    #[error("{}", Multiple(.0))]
    Multiple(Vec<Error>),
}

/// A file, with its line and column when there are any (`0` when the value was set in
/// code rather than read from the file).
struct Place<'a>(&'a std::path::Path, u32, u32);

impl fmt::Display for Place<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Place(path, 0, _) => write!(f, "{}", path.display()),
            Place(path, line, column) => write!(f, "{}:{line}:{column}", path.display()),
        }
    }
}

struct Multiple<'a>(&'a [Error]);

impl fmt::Display for Multiple<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} assets failed to build:", self.0.len())?;
        for e in self.0 {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Collapses a list of errors: `Ok` when empty, the error itself when alone.
    pub(crate) fn collect(mut errors: Vec<Error>) -> Result<(), Error> {
        errors.sort_by_key(|e| e.to_string());
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.pop().expect("one error")),
            _ => Err(Error::Multiple(errors)),
        }
    }

    /// The individual errors: itself, or each of a [`Error::Multiple`].
    pub fn errors(&self) -> &[Error] {
        match self {
            Error::Multiple(v) => v,
            e => std::slice::from_ref(e),
        }
    }
}
