//! Bundling and code splitting of the application's ES modules (rolldown), and the
//! CodeSplitter runtime that loads the chunks on demand.

use std::path::PathBuf;

/// Logical name of the built-in CodeSplitter module.
pub const SPLITTER: &str = "_perf/code-splitter.js";

/// The CodeSplitter module's source, shipped with perf-build.
pub const SPLITTER_SOURCE: &[u8] = include_bytes!("../../assets/code-splitter.js");

/// Where the CodeSplitter source lives (for messages and source maps).
pub fn splitter_path() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/code-splitter.js"))
}
